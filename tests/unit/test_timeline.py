"""One data timeline: pipeline names from data, the window a monitor judges, the source a retrain reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.config import DataConfig, load_config
from driftline.errors import DriftlineError
from driftline.promotion import forced_rollback_note
from driftline.synthetic import make_ohlcv_panel
from driftline.timeline import (
    as_source_columns,
    combine_frames,
    monitored_version,
    pipeline_name_from_data,
    same_source,
    select_window,
)

# --- names ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (None, "demo"),
        ("prices.csv", "prices"),
        ("/home/me/data/BTC 1h.csv.gz", "BTC-1h"),
        ("fx.daily.parquet", "fx.daily"),
        ("Portfolio 2024.xlsx", "Portfolio-2024"),  # named "driftline-Portfolio-2024.xlsx" before
        ("ticks.feather", "ticks"),
        ("data/incoming/", "incoming"),
        ("data/*.csv", "data"),
        ("lake/ohlcv/symbol=BTC/", "ohlcv"),
        ("s3://bucket/ohlcv/", "ohlcv"),
        ("demo.csv", "demo-data"),  # user data never lands in the demo model
        ("__.csv", "data"),
        ("ü" * 5 + "x.csv", "x"),
        ("a" * 80 + ".csv", "a" * 64),
    ],
)
def test_pipeline_name_is_the_data_stem_made_a_valid_model_name(data, name):
    assert pipeline_name_from_data(data) == name
    load_config(None, {"name": name})  # a valid pipeline name


def test_config_names_the_pipeline_after_its_data_unless_a_name_is_given(tmp_path):
    assert load_config(None, {"data.path": "x/prices.csv"}).model_name == "driftline-prices"
    assert load_config(None, {"data.path": "x/prices.csv", "name": "btc"}).model_name == "driftline-btc"
    assert load_config().model_name == "driftline-demo"  # the bundled demo panel
    named = tmp_path / "p.yaml"
    named.write_text("name: mine\n")
    assert load_config(named, {"data.path": "x/prices.csv"}).name == "mine"
    unnamed = tmp_path / "q.yaml"
    unnamed.write_text("data:\n  path: s3://b/eurusd/\n")
    assert load_config(unnamed).name == "eurusd"


# --- the judged window ------------------------------------------------------------------------------------------

TIMES = pd.Series(pd.date_range("2020-01-01", periods=10, freq="D"))


def test_default_window_is_strictly_after_the_training_cutoff():
    window = select_window(TIMES, cutoff="2020-01-07", cutoff_of="v3")
    assert window.rows == 3 and not window.mask[6]
    info = window.to_dict(TIMES)
    assert (info["window_start"], info["window_end"]) == ("2020-01-08T00:00:00", "2020-01-10T00:00:00")
    assert "v3's training cutoff 2020-01-07" in info["window_rule"]


def test_explicit_window_is_inclusive_and_replaces_the_cutoff_rule():
    window = select_window(TIMES, since="2020-01-02", until="2020-01-04", cutoff="2020-01-07")
    assert window.mask.tolist() == [False, True, True, True] + [False] * 6
    assert select_window(TIMES, since="2020-01-09").rows == 2  # open end
    assert select_window(TIMES, until="2020-01-02").rows == 2  # open start
    # A zoned bound is compared in UTC, as canonical timestamps are.
    assert select_window(TIMES, since="2020-01-09T01:00:00+02:00").rows == 2


def test_without_a_cutoff_every_row_is_judged_and_an_empty_window_says_why():
    assert select_window(TIMES).rows == 10
    empty = select_window(TIMES, cutoff="2020-01-10")
    assert empty.empty and empty.to_dict(TIMES)["window_start"] is None
    assert empty.empty_reason(TIMES, "prices.csv").startswith("no rows to judge: prices.csv has no rows after")


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [("2020-02-01", "2020-01-01", "is after --until"), ("yesterday-ish", None, "--since 'yesterday-ish'")],
)
def test_bad_window_bounds_are_clear_errors(since, until, message):
    with pytest.raises(DriftlineError, match=message):
        select_window(TIMES, since=since, until=until)


# --- the retrain's source ---------------------------------------------------------------------------------------


def _rows(symbol: str, start: str, n: int, close: float) -> pd.DataFrame:
    return pd.DataFrame({"symbol": symbol, "timestamp": pd.date_range(start, periods=n, freq="D"), "close": close})


def test_combined_source_deduplicates_on_symbol_and_time_and_the_monitored_rows_win():
    existing = pd.concat([_rows("A", "2020-01-01", 5, 1.0), _rows("B", "2020-01-01", 5, 1.0)])
    new = pd.concat([_rows("A", "2020-01-04", 4, 2.0), _rows("C", "2020-01-01", 2, 2.0)])

    combined = combine_frames(existing, new, "old.csv", "new.csv")

    frame = combined.frame
    assert not frame.duplicated(["symbol", "timestamp"]).any()
    assert frame[["symbol", "timestamp"]].equals(frame.sort_values(["symbol", "timestamp"])[["symbol", "timestamp"]])
    a = frame[frame["symbol"] == "A"].set_index("timestamp")["close"]
    assert a.tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]  # 01-04 and 01-05 replaced, 01-06/07 appended
    assert combined.rows == {"champion_source": 10, "monitored": 6, "replaced_by_monitored": 2, "new": 4, "total": 14}
    described = combined.describe("/x.parquet")
    assert described["sources"] == ["old.csv", "new.csv"] and described["data_end"] == "2020-01-07T00:00:00"


def test_combined_source_takes_monitored_rows_only_up_to_the_window_end():
    combined = combine_frames(
        _rows("A", "2020-01-01", 3, 1.0), _rows("A", "2020-01-03", 5, 2.0), "o", "n", until="2020-01-05"
    )
    assert combined.frame["timestamp"].max() == pd.Timestamp("2020-01-05") and combined.rows["monitored"] == 3


def test_combined_frame_written_under_the_source_names_reads_back_the_same(canonical):
    raw = make_ohlcv_panel(n_symbols=2, n_days=30, seed=1)
    data = DataConfig(time_col="Date")
    frame = canonical(raw, data)
    from driftline.ingest import detect_columns

    columns = detect_columns(raw, data, "memory", False)
    written = as_source_columns(frame, columns)

    assert set(written.columns) == set(raw.columns)
    again = canonical(written.reset_index(drop=True), data)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), frame.reset_index(drop=True))


def test_same_source_compares_resolved_locations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert same_source("prices.csv", str(tmp_path / "prices.csv"))
    assert not same_source("prices.csv", "later.csv")
    assert same_source("s3://b/p/", "s3://b/p") and not same_source("s3://b/p/", "s3://b/q/")
    assert not same_source(None, "prices.csv")


# --- which version is monitored, and rollbacks to rejected versions ---------------------------------------------


def test_monitor_watches_the_champion_else_the_newest_version_and_says_so():
    assert monitored_version("3", ["1", "2", "3", "10"], "driftline-x") == ("3", None)
    version, note = monitored_version(None, ["1", "9", "10"], "driftline-x")
    assert version == "10" and "no champion" in note and "v10" in note
    with pytest.raises(DriftlineError, match="no registered version"):
        monitored_version(None, [], "driftline-x")


def test_rollback_to_a_rejected_version_needs_force_and_says_why():
    assert forced_rollback_note("2", "promote", "", force=False, reason="r") is None
    assert forced_rollback_note("2", None, None, force=False, reason="r") is None  # registered by hand
    assert forced_rollback_note("2", "reject", "ECE 0.2 > cap", force=False, reason="r", was_champion=True) is None
    with pytest.raises(DriftlineError, match="--force") as refused:
        forced_rollback_note("2", "keep-champion", "CI includes 0", force=False, reason="r")
    assert "keep-champion" in str(refused.value) and "CI includes 0" in str(refused.value)
    note = forced_rollback_note("2", "reject", "ECE 0.2 > cap", force=True, reason="v3 broke live")
    assert "reject" in note and "v3 broke live" in note


def test_mask_is_a_plain_boolean_array():
    assert select_window(TIMES.to_numpy(), cutoff=np.datetime64("2020-01-05")).mask.dtype == bool


def test_bounds_without_an_offset_are_the_rows_own_clock_when_they_name_a_zone():
    """``--since``/``--until`` for rows read in ``data.timezone`` (local clock times) mean that clock too: 2021-12-30
    is midnight in Berlin, 23:00 UTC the day before; a bound with an offset says its own; the training cutoff
    (recorded in UTC) is not moved."""
    from driftline.timeline import parse_time_bound

    assert parse_time_bound("2021-12-30", zone="Europe/Berlin") == pd.Timestamp("2021-12-29 23:00")
    assert parse_time_bound("2021-07-01 12:00", zone="Europe/Berlin") == pd.Timestamp("2021-07-01 10:00")
    assert parse_time_bound("2021-12-30T00:00Z", zone="Europe/Berlin") == pd.Timestamp("2021-12-30")
    assert parse_time_bound("2021-12-30") == pd.Timestamp("2021-12-30")
    times = pd.Series(pd.date_range("2021-12-29 21:00", periods=6, freq="h"))  # UTC
    window = select_window(times, since="2021-12-30", zone="Europe/Berlin")
    assert times[window.mask].min() == pd.Timestamp("2021-12-29 23:00")
    after = select_window(times, cutoff="2021-12-29T23:00:00", zone="Europe/Berlin")
    assert times[after.mask].min() == pd.Timestamp("2021-12-30 00:00")
    frame = pd.DataFrame({"symbol": "s", "timestamp": times, "x": range(6)})
    end = parse_time_bound("2021-12-30 00:00", "--until", "Europe/Berlin")  # as the retrain's task reads it
    combined = combine_frames(frame.iloc[:2], frame, "old", "new", until=end)
    assert combined.frame["timestamp"].max() == pd.Timestamp("2021-12-29 23:00")
