"""The GX data contract: which rows break it, why, and what each policy does with them.

Great Expectations costs several seconds to import once; every later validation of a small frame is a
fraction of a second, so each case validates its own 60-row frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.config import ContractConfig, DataConfig
from driftline.contracts import (
    AHEAD_SECONDS,
    PREV_MAX_TIME,
    STEP_SECONDS,
    WEEKDAY,
    ValidationReport,
    build_suite,
    contract_to_yaml,
    derive_columns,
    enforce_contract,
    source_column,
    unparsed_column,
    validate_frame,
)
from driftline.errors import InsufficientDataError, ValidationFailed
from driftline.ingest import detect_columns, normalise_frame
from driftline.synthetic import make_ohlcv_panel

ROWS_PER_SYMBOL = 30
NOW = pd.Timestamp("2030-01-01")  # the synthetic panel is in 2015; "now" is injected, never the clock
CONTRACTS = Path(__file__).resolve().parents[2] / "configs" / "contracts"


def _canonical(raw: pd.DataFrame) -> pd.DataFrame:
    return normalise_frame(raw, detect_columns(raw, DataConfig(), "mem", False), "mem")


@pytest.fixture(scope="module")
def clean_frame() -> pd.DataFrame:
    """Canonical two-symbol frame, as ingest leaves it: sorted by (symbol, timestamp), index = source row.

    The source interleaves the symbols day by day, so index labels differ from positions (the mapping is
    tested) while each symbol's rows are in time order in the source.
    """
    raw = make_ohlcv_panel(n_symbols=2, n_days=ROWS_PER_SYMBOL, seed=4)
    raw = raw.sort_values(["Date", "Symbol"], kind="stable").reset_index(drop=True)
    frame = _canonical(raw)
    assert not frame.index.is_monotonic_increasing
    return frame


def _validate(frame: pd.DataFrame, contract: ContractConfig | None = None, **kwargs) -> ValidationReport:
    return validate_frame(frame, contract or ContractConfig(), "unit", now=kwargs.pop("now", NOW), **kwargs)


@pytest.fixture(scope="module")
def clean_report(clean_frame) -> ValidationReport:
    return _validate(clean_frame)


def _row(frame: pd.DataFrame, symbol: str, position: int) -> int:
    """Index label (source row) of the ``position``-th row of ``symbol`` in time order."""
    return int(frame.index[frame["symbol"] == symbol][position])


def _stamp(frame: pd.DataFrame, label: int) -> str:
    return frame.loc[label, "timestamp"].strftime("%Y-%m-%d")  # daily rows: messages show the date alone


def _assert_partition(report: ValidationReport, frame: pd.DataFrame) -> None:
    """rows_in == clean + quarantined; every source row exactly once; quarantined rows are the frame's rows."""
    assert report.rows_in == len(frame) == report.rows_clean + report.rows_quarantined
    quarantined = list(report.quarantined["source_row"])
    assert len(set(quarantined)) == len(quarantined)
    assert not set(quarantined) & set(report.clean.index)
    assert set(quarantined) | set(report.clean.index) == set(frame.index)
    pd.testing.assert_frame_equal(report.clean, frame.drop(index=quarantined))
    pd.testing.assert_frame_equal(
        report.quarantined.set_index("source_row").drop(columns="reason").sort_index(),
        frame.loc[sorted(quarantined)].rename_axis("source_row"),
    )


# --- defects: what each check catches, with which reason -------------------------------------------------------


@dataclass(frozen=True)
class Defect:
    """A defect planted in a clean frame; ``mutate`` returns {source row: expected reason}."""

    mutate: Callable[[pd.DataFrame], dict[int, str]]
    check: str
    column: str
    policy_key: str  # the contract key whose policy governs the check
    problem: str  # how the failure message names the problem
    extra: tuple[tuple[str, object], ...] = ()  # contract keys that switch the check on


def _negative_close(frame):
    label = _row(frame, "SYM0", 5)
    # open and low go negative too, so the bar stays consistent and only the range checks fire.
    frame.loc[label, ["open", "low", "close"]] = [-1.0, -1.0, -1.0]
    return {label: "open: must be > 0 (got -1.0); low: must be > 0 (got -1.0); close: must be > 0 (got -1.0)"}


def _null_close(frame):
    label = _row(frame, "SYM1", 7)
    frame.loc[label, "close"] = np.nan
    return {label: "close: missing"}


def _negative_volume(frame):
    label = _row(frame, "SYM1", 12)
    frame.loc[label, "volume"] = -10.0
    return {label: "volume: must be >= 0 (got -10.0)"}


def _duplicate_key(frame):
    first, second = _row(frame, "SYM0", 9), _row(frame, "SYM0", 10)
    frame.loc[second, "timestamp"] = frame.loc[first, "timestamp"]
    return {second: f"duplicate of source row {first} for (SYM0, {_stamp(frame, first)})"}


def _null_timestamp(frame):
    label = _row(frame, "SYM0", 20)
    frame.loc[label, "timestamp"] = pd.NaT
    return {label: "timestamp: missing"}


def _weekend(frame):
    fridays = frame.index[(frame["symbol"] == "SYM1") & (frame["timestamp"].dt.dayofweek == 4)]
    label = int(fridays[1])
    frame.loc[label, "timestamp"] += pd.Timedelta(days=1)
    return {label: f"timestamp: on a Saturday ({_stamp(frame, label)})"}


def _future(frame):
    label = _row(frame, "SYM1", ROWS_PER_SYMBOL - 1)
    frame.loc[label, "timestamp"] = pd.Timestamp("2031-01-01")
    return {label: "timestamp: in the future (2031-01-01)"}


def _close_above_high(frame):
    label = _row(frame, "SYM0", 14)
    high = float(frame.loc[label, "high"])
    frame.loc[label, "close"] = high + 1.0
    return {label: f"close: above high (close {high + 1.0!r}, high {high!r})"}


def _out_of_order(frame):
    """In the source, SYM0's row 11 claims a time before its predecessors (duplicates none)."""
    label = _row(frame, "SYM0", 11)
    earlier = frame.loc[_row(frame, "SYM0", 0), "timestamp"] - pd.Timedelta(days=3)
    before = _stamp(frame, _row(frame, "SYM0", 10))
    frame.loc[label, "timestamp"] = earlier
    moved = earlier.strftime("%Y-%m-%d")
    return {label: f"timestamp: out of time order for SYM0 ({moved} comes after {before} in the source)"}


DEFECTS = {
    "negative_price": Defect(_negative_close, "range", "close", "on_violation", "close: must be > 0 and <= 1e+12"),
    "null_close": Defect(_null_close, "missing", "close", "on_violation", "close: missing"),
    "negative_volume": Defect(_negative_volume, "range", "volume", "on_violation", "volume: must be >= 0 and <= 1e+18"),
    "duplicate": Defect(_duplicate_key, "unique", "symbol,timestamp", "unique", "(symbol, timestamp): duplicate"),
    "null_timestamp": Defect(_null_timestamp, "missing", "timestamp", "on_violation", "timestamp: missing"),
    "weekend": Defect(
        _weekend, "calendar", "timestamp", "calendar_policy", "timestamp: on a weekend", (("calendar", "weekdays"),)
    ),
    "future": Defect(_future, "future", "timestamp", "future_policy", "timestamp: in the future"),
    "close_above_high": Defect(
        _close_above_high, "price_consistency", "close", "price_consistency", "close: above high"
    ),
    "out_of_order": Defect(
        _out_of_order, "monotonic_time", "timestamp", "monotonic_time", "timestamp: out of time order"
    ),
}


def _contract(defect: Defect, policy: str, **kwargs) -> ContractConfig:
    return ContractConfig(**{defect.policy_key: policy, "min_rows_per_symbol": 1, **dict(defect.extra), **kwargs})


def test_clean_frame_passes(clean_frame, clean_report):
    assert clean_report.success
    assert all(check.success and check.action == "none" for check in clean_report.checks)
    assert clean_report.warnings == []
    assert clean_report.rows_in == clean_report.rows_clean == len(clean_frame)
    assert clean_report.rows_quarantined == 0
    pd.testing.assert_frame_equal(clean_report.clean, clean_frame)
    checked = {(c.check, c.expectation, c.column) for c in clean_report.checks}
    assert ("range", "expect_column_values_to_be_between", "close") in checked
    assert ("unique", "expect_compound_columns_to_be_unique", "symbol,timestamp") in checked
    assert ("future", "expect_column_values_to_be_between", "timestamp") in checked
    assert clean_report.gx_result["success"] is True


def test_clean_frame_passes_every_optional_check(clean_frame):
    contract = ContractConfig(calendar="weekdays", max_gap="4D", max_gap_policy="fail", monotonic_time="fail")
    report = _validate(clean_frame, contract)
    assert report.success and report.warnings == [] and report.rows_quarantined == 0
    assert {"calendar", "max_gap", "monotonic_time", "price_consistency"} <= {c.check for c in report.checks}


@pytest.mark.parametrize("name", DEFECTS)
def test_quarantine_moves_exactly_the_offending_rows_with_their_reason(clean_frame, name):
    defect = DEFECTS[name]
    frame = clean_frame.copy()
    expected = defect.mutate(frame)
    report = _validate(frame, _contract(defect, "quarantine"))

    failed = [c for c in report.checks if not c.success]
    assert {(c.check, c.column) for c in failed} == {(defect.check, defect.column)} | (
        {("range", "open"), ("range", "low")} if name == "negative_price" else set()
    )
    assert all(c.action == "quarantine" and c.policy == "quarantine" for c in failed)
    assert report.success
    assert dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True)) == expected
    # No warn-policy warning; a row set aside inside its series is a hole, said once (test below).
    assert [w for w in report.warnings if "across a hole" not in w] == []
    _assert_partition(report, frame)
    clean = enforce_contract(report, _contract(defect, "quarantine", max_quarantine_fraction=0.5), "prices.csv")
    pd.testing.assert_frame_equal(clean, frame.drop(index=list(expected)))


@pytest.mark.parametrize("name", DEFECTS)
def test_warn_keeps_the_rows_and_records_a_warning(clean_frame, name, caplog):
    defect = DEFECTS[name]
    frame = clean_frame.copy()
    expected = defect.mutate(frame)
    report = _validate(frame, _contract(defect, "warn"))

    assert report.rows_quarantined == 0 and report.rows_clean == len(frame)
    assert report.success
    assert len(report.warnings) == (3 if name == "negative_price" else 1)
    warning = next(w for w in report.warnings if w.startswith(defect.problem))
    assert f": {len(expected)} row" in warning or "1 later duplicate" in warning
    assert f"source row {next(iter(expected))}" in warning
    with caplog.at_level(logging.WARNING, logger="driftline.contracts"):
        clean = enforce_contract(report, _contract(defect, "warn"), "prices.csv")
    pd.testing.assert_frame_equal(clean, frame)
    assert any(
        defect.problem in record.getMessage() and "prices.csv" in record.getMessage() for record in caplog.records
    )


@pytest.mark.parametrize("name", DEFECTS)
def test_fail_raises_naming_the_file_column_problem_count_and_example(clean_frame, name):
    defect = DEFECTS[name]
    frame = clean_frame.copy()
    expected = defect.mutate(frame)
    report = _validate(frame, _contract(defect, "fail"), source="prices.csv")

    assert not report.success
    # The batch stops; its offending rows are set aside with their reasons, to show what stopped it.
    assert dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True)) == expected
    _assert_partition(report, frame)
    with pytest.raises(ValidationFailed) as info:
        enforce_contract(report, _contract(defect, "fail"), "prices.csv")
    message = str(info.value)
    assert message.startswith("prices.csv: data contract failed: ")
    assert defect.problem in message
    assert defect.column.split(",")[0] in message
    assert "1 row" in message or "1 later duplicate" in message
    assert f"source row {next(iter(expected))}" in message
    assert "\n" not in message
    assert info.value.report is report


def test_fail_message_quotes_up_to_three_example_values(clean_frame):
    frame = clean_frame.copy()
    labels = [_row(frame, "SYM0", p) for p in (2, 4, 6, 8)]
    frame.loc[labels, "volume"] = [-1.0, -2.0, -3.0, -4.0]
    report = _validate(frame, ContractConfig(on_violation="fail"))
    with pytest.raises(ValidationFailed) as info:
        enforce_contract(report, ContractConfig(), "prices.csv")
    message = str(info.value)
    assert "volume: must be >= 0 and <= 1e+18: 4 rows, e.g. " in message
    assert all(f"-{k}.0 (source row {labels[k - 1]})" in message for k in (1, 2, 3))
    assert "-4.0" not in message


def test_the_policy_of_a_column_overrides_on_violation(clean_frame):
    frame = clean_frame.copy()
    volume = _negative_volume(frame)
    close = _null_close(frame)
    contract = ContractConfig(on_violation="fail", columns={"volume": {"policy": "quarantine"}}, min_rows_per_symbol=1)
    report = _validate(frame, contract)
    assert dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True)) == {**volume, **close}
    assert [(c.column, c.action) for c in report.checks if not c.success] == [
        ("close", "fail"),
        ("volume", "quarantine"),
    ]
    assert [c.column for c in report.failures] == ["close"]
    with pytest.raises(ValidationFailed, match=f"close: missing: 1 row, e.g. source row {next(iter(close))}"):
        enforce_contract(report, contract, "prices.csv")


def test_several_defects_on_one_row_give_one_quarantined_row_with_every_reason(clean_frame):
    frame = clean_frame.copy()
    label = _row(frame, "SYM1", 3)
    high, low = float(frame.loc[label, "high"]), float(frame.loc[label, "low"])
    frame.loc[label, ["volume", "high"]] = [-3.0, low - 1.0]
    other = _null_close(frame)
    report = _validate(frame)
    assert report.rows_quarantined == 2
    reasons = dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True))
    # In the contract's order: column rules, then the row checks.
    assert reasons[label].split("; ") == [
        "volume: must be >= 0 (got -3.0)",
        f"high: below low (high {low - 1.0!r}, low {low!r})",
        f"open: above high (open {float(frame.loc[label, 'open'])!r}, high {low - 1.0!r})",
        f"close: above high (close {float(frame.loc[label, 'close'])!r}, high {low - 1.0!r})",
    ]
    assert reasons[next(iter(other))] == "close: missing"
    assert high > low
    _assert_partition(report, frame)


def test_summary_and_markdown_name_the_failures(clean_frame):
    frame = clean_frame.copy()
    bad = _negative_volume(frame)
    report = _validate(frame)
    summary = report.summary()
    assert "rows in 60, clean 59, quarantined 1" in summary
    assert (
        f"[quarantine] volume: must be >= 0 and <= 1e+18: 1 row, e.g. -10.0 (source row {next(iter(bad))})" in summary
    )
    markdown = report.markdown()
    assert "**QUARANTINE** | range | `expect_column_values_to_be_between` | volume | quarantine | 1 | 1 |" in markdown


# --- duplicates, time order, gaps, calendar ------------------------------------------------------------------


def test_duplicates_keep_the_lowest_source_row_whatever_the_frame_order(clean_frame):
    frame = clean_frame.copy()
    a, b, c = (_row(frame, "SYM1", p) for p in (4, 5, 6))
    stamp = frame.loc[b, "timestamp"]
    frame.loc[[a, c], "timestamp"] = stamp
    # Put the latest source row first in the frame: "first" means source order, not frame order.
    frame = pd.concat([frame.loc[[c]], frame.drop(index=c)])
    report = _validate(frame, ContractConfig(monotonic_time="quarantine"))
    reasons = dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True))
    keep = min(a, b, c)
    assert keep not in reasons
    dropped = {a, b, c} - {keep}
    expected = f"duplicate of source row {keep} for (SYM1, {stamp:%Y-%m-%d})"
    assert {r: reasons[r].split("; ")[0] for r in dropped} == dict.fromkeys(dropped, expected)
    unique = next(c for c in report.checks if c.check == "unique")
    assert unique.unexpected_count == 3 and unique.rows_quarantined == 2
    _assert_partition(report, frame)


def test_rows_at_one_time_with_other_values_are_named_as_events_a_repeated_row_is_not(clean_frame):
    """A log of events (trades, alerts) has rows at one time that are not repeats: the message says how to keep
    them; a row written twice (a file appended to itself) is a duplicate, said as before."""
    frame = clean_frame.copy()
    a, b = (_row(frame, "SYM1", p) for p in (4, 5))
    repeated = frame.copy()
    repeated.loc[b, frame.columns.drop(["symbol"])] = frame.loc[a, frame.columns.drop(["symbol"])]
    events = frame.copy()
    events.loc[b, "timestamp"] = frame.loc[a, "timestamp"]  # the same time, other prices
    hint = "some hold other values than the row kept, as events at one time do"
    for case, expected in ((repeated, False), (events, True)):
        report = _validate(case)
        unique = next(c for c in report.checks if c.check == "unique")
        assert unique.rows_quarantined == 1 and (hint in unique.message) is expected, unique.message
        assert ("contract.unique: warn keeps them" in unique.message) is expected


def test_rows_with_a_missing_timestamp_are_not_duplicates_of_each_other(clean_frame):
    frame = clean_frame.copy()
    labels = [_row(frame, "SYM0", p) for p in (3, 4)]
    frame.loc[labels, "timestamp"] = pd.NaT
    report = _validate(frame)
    assert set(report.quarantined["reason"]) == {"timestamp: missing"}
    assert sorted(report.quarantined["source_row"]) == sorted(labels)


def test_time_order_is_judged_in_source_order_per_symbol():
    """A source that lists a symbol out of order: every row earlier than one already seen is out of order."""
    raw = make_ohlcv_panel(n_symbols=2, n_days=ROWS_PER_SYMBOL, seed=4)
    raw = raw.sample(frac=1.0, random_state=1).reset_index(drop=True)
    frame = _canonical(raw)
    expected = set()
    for _, rows in frame.sort_index().groupby("symbol"):
        later_seen = rows["timestamp"].cummax().shift(1)
        expected |= set(rows.index[rows["timestamp"] < later_seen])
    assert expected

    warned = _validate(frame)
    check = next(c for c in warned.checks if c.check == "monotonic_time")
    assert check.action == "warn" and check.unexpected_count == len(expected)
    assert warned.rows_quarantined == 0 and len(warned.warnings) == 1

    quarantined = _validate(frame, ContractConfig(monotonic_time="quarantine", max_quarantine_fraction=1.0))
    assert set(quarantined.quarantined["source_row"]) == expected
    assert quarantined.quarantined["reason"].str.startswith("timestamp: out of time order for SYM").all()


def test_a_source_in_descending_time_order_is_named_as_such():
    # Many exports list the newest row first: every row but each symbol's first is then "out of order".
    raw = make_ohlcv_panel(n_symbols=2, n_days=ROWS_PER_SYMBOL, seed=4)
    newest_first = _canonical(raw.iloc[::-1].reset_index(drop=True))
    check = next(c for c in _validate(newest_first).checks if c.check == "monotonic_time")
    assert check.action == "warn" and check.unexpected_count == 2 * (ROWS_PER_SYMBOL - 1)
    assert check.message.endswith("— the source lists every symbol's rows newest first")
    shuffled = _canonical(raw.sample(frac=1.0, random_state=1).reset_index(drop=True))
    assert "newest first" not in next(c for c in _validate(shuffled).checks if c.check == "monotonic_time").message
    # One series without a symbol column: its examples go by time alone, not by the internal name "series".
    single = newest_first[newest_first["symbol"] == newest_first["symbol"].iloc[0]].assign(symbol="series")
    message = next(c for c in _validate(single).checks if c.check == "monotonic_time").message
    assert "e.g. 20" in message and "series 20" not in message, message


def test_gaps_report_count_and_the_largest_with_symbol_and_time(clean_frame):
    frame = clean_frame.copy()
    sym0 = frame.index[frame["symbol"] == "SYM0"]
    sym1 = frame.index[frame["symbol"] == "SYM1"]
    frame = frame.drop(index=list(sym0[10:20]) + list(sym1[5:9]))  # 11 and 5 business days: > 4 days both
    largest = frame.loc[sym0[20], "timestamp"] - frame.loc[sym0[9], "timestamp"]
    assert largest > pd.Timedelta(days=14)

    report = _validate(frame, ContractConfig(max_gap="4D"))
    gap = next(c for c in report.checks if c.check == "max_gap")
    assert gap.action == "warn" and gap.unexpected_count == 2
    assert report.rows_quarantined == 0
    assert report.warnings == [
        (
            f"timestamp: gap longer than 4D within a symbol: 2 gaps, largest {largest} for SYM0 before "
            f"{frame.loc[sym0[20], 'timestamp']:%Y-%m-%d} (rows kept, policy warn)"
        )
    ]
    assert _validate(frame, ContractConfig(max_gap=str(largest))).warnings == []  # the limit itself is fine

    failed = _validate(frame, ContractConfig(max_gap="4D", max_gap_policy="fail"))
    with pytest.raises(ValidationFailed, match=rf"prices.csv: .*2 gaps, largest {largest} for SYM0"):
        enforce_contract(failed, ContractConfig(min_rows_per_symbol=1), "prices.csv")


def test_future_uses_the_injected_clock_and_tolerance(clean_frame):
    frame = clean_frame.copy()
    last = frame["timestamp"].max()
    assert _validate(frame, now=last - pd.Timedelta(hours=23)).rows_quarantined == 0  # within max_future 1D
    late = _validate(frame, now=last - pd.Timedelta(days=2))
    assert set(late.quarantined["reason"]) == {f"timestamp: in the future ({last:%Y-%m-%d})"}
    assert late.rows_quarantined == (frame["timestamp"] == last).sum() == 2
    assert _validate(frame, ContractConfig(max_future=None), now=last - pd.Timedelta(days=2)).rows_quarantined == 0
    # A tz-aware clock is read as UTC.
    aware = _validate(frame, now=(last - pd.Timedelta(days=2)).tz_localize("UTC").tz_convert("America/New_York"))
    assert aware.rows_quarantined == 2


def test_centuries_of_yearly_rows_are_checked_against_the_clock_without_overflow(clean_frame):
    # 1700 to 2008 (statsmodels' yearly sunspots): "now" minus the first row is over 292 years, more than a
    # nanosecond int64 holds; it raised OverflowError before the contract could say anything.
    years = pd.date_range("1700-01-01", periods=309, freq="YS")
    frame = pd.DataFrame({"symbol": "sun", "timestamp": years, "close": np.arange(1.0, 310.0)})
    report = _validate(frame, ContractConfig(max_gap="400D"), now=pd.Timestamp("2026-12-05"))
    assert report.rows_quarantined == 0 and report.warnings == []
    ahead = _validate(frame, now=pd.Timestamp("2007-06-01"))  # the 2008 row is in the future
    assert list(ahead.quarantined["reason"]) == ["timestamp: in the future (2008-01-01)"]


def test_price_consistency_tolerates_round_off_only(clean_frame):
    frame = clean_frame.copy()
    a, b, c = _row(frame, "SYM0", 3), _row(frame, "SYM0", 4), _row(frame, "SYM1", 4)
    frame.loc[a, "close"] = frame.loc[a, "high"] * (1 + 1e-12)  # float noise: fine
    frame.loc[c, "open"] = frame.loc[c, "low"] * (1 - 1e-12)
    frame.loc[b, "open"] = frame.loc[b, "low"] * (1 - 1e-6)  # a real violation
    report = _validate(frame)
    assert list(report.quarantined["source_row"]) == [b]
    assert report.quarantined["reason"].iloc[0].startswith("open: below low (open ")


# --- type: missing vs not a number ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_with_bad_values() -> pd.DataFrame:
    raw = make_ohlcv_panel(n_symbols=1, n_days=12, seed=2).astype({"Close": object, "Date": object})
    raw.loc[3, "Close"] = "abc"
    raw.loc[5, "Close"] = "  "
    raw.loc[6, "Close"] = None
    raw.loc[7, "Close"] = "inf"
    raw.loc[9, "Date"] = "2015-13-45"
    return raw


def test_source_values_tell_not_a_number_from_missing(raw_with_bad_values):
    raw = raw_with_bad_values
    frame = _canonical(raw)
    report = _validate(frame, source_values={"close": raw["Close"], "timestamp": raw["Date"]})
    reasons = dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True))
    assert reasons == {
        3: "close: not a number ('abc')",
        5: "close: missing",
        6: "close: missing",
        7: "close: not a number ('inf')",
        9: "timestamp: not a timestamp ('2015-13-45')",
    }
    _assert_partition(report, frame)


def test_without_source_values_nan_is_missing(raw_with_bad_values):
    frame = _canonical(raw_with_bad_values)
    report = _validate(frame)
    reasons = dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True))
    assert reasons == {
        3: "close: missing",
        5: "close: missing",
        6: "close: missing",
        7: "close: missing",
        9: "timestamp: missing",
    }


def test_not_a_number_with_policy_fail_quotes_the_raw_value(raw_with_bad_values):
    raw = raw_with_bad_values
    frame = _canonical(raw)
    report = _validate(frame, ContractConfig(on_violation="fail"), source_values={"close": raw["Close"]})
    with pytest.raises(ValidationFailed) as info:
        enforce_contract(report, ContractConfig(), "prices.csv")
    assert "close: not a number: 2 rows, e.g. 'abc' (source row 3), 'inf' (source row 7)" in str(info.value)
    assert "close: missing: 2 rows" in str(info.value)


def test_integer_and_allowed_values(clean_frame):
    frame = clean_frame.copy()
    a, b = _row(frame, "SYM0", 1), _row(frame, "SYM1", 2)
    frame.loc[a, "volume"] = 10.5
    contract = ContractConfig(
        columns={"volume": {"type": "integer"}, "symbol": {"allowed_values": ["SYM0"]}}, max_quarantine_fraction=1.0
    )
    report = _validate(frame, contract)
    reasons = dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True))
    assert reasons[a] == "volume: not a whole number (got 10.5)"
    assert reasons[b] == "symbol: not an allowed value ('SYM1')"
    assert set(reasons) == {a} | set(frame.index[frame["symbol"] == "SYM1"])


def test_nullable_column_rule_lets_missing_values_through(clean_frame):
    frame = clean_frame.copy()
    _null_close(frame)
    report = _validate(frame, ContractConfig(columns={"close": {"nullable": True}}))
    assert report.rows_quarantined == 0 and report.success


# --- batch-level failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["quarantine", "warn"])
def test_missing_required_column_fails_whatever_the_policy(clean_frame, policy):
    report = _validate(clean_frame.drop(columns="timestamp"), ContractConfig(on_violation=policy))
    assert not report.success
    failed = [(c.check, c.column, c.action) for c in report.failures]
    assert failed == [("required", "timestamp", "fail")]
    with pytest.raises(ValidationFailed) as info:
        enforce_contract(report, ContractConfig(min_rows_per_symbol=1), "prices.csv")
    assert str(info.value).startswith("prices.csv: data contract failed: timestamp: required column is missing")
    assert "columns are symbol, open, high, low, close, volume" in str(info.value)


def test_a_column_the_contract_makes_required(clean_frame):
    contract = ContractConfig(columns={"adj_close": {"required": True}})
    with pytest.raises(ValidationFailed, match="adj_close: required column is missing"):
        enforce_contract(_validate(clean_frame, contract), contract, "prices.csv")
    # Not required (the default): an absent column's rules are skipped.
    assert _validate(clean_frame).success


def test_a_check_that_cannot_run_fails_the_batch_with_gx_error(clean_frame):
    frame = clean_frame.assign(exchange="XNYS")
    report = _validate(frame, ContractConfig(columns={"exchange": {"min": 0}}))
    errored = [c for c in report.checks if c.column == "exchange"]
    assert len(errored) == 1 and errored[0].action == "fail" and not errored[0].success
    assert errored[0].examples and "same type" in errored[0].examples[0]  # GX's exception message
    with pytest.raises(ValidationFailed, match="exchange: must be >= 0"):
        enforce_contract(report, ContractConfig(min_rows_per_symbol=1), "prices.csv")


def test_wrong_dtype_is_a_column_level_failure(clean_frame):
    frame = clean_frame.assign(timestamp=clean_frame["timestamp"].astype("int64"))
    report = _validate(frame)
    assert [(c.check, c.column) for c in report.failures] == [("type", "timestamp")]
    assert "dtype int64" in report.failures[0].message


def test_quarantine_above_the_limit_fails_naming_the_worst_problems(clean_frame):
    frame = clean_frame.copy()
    volume = [_row(frame, "SYM0", p) for p in (1, 2, 3, 4)]
    frame.loc[volume, "volume"] = -1.0
    _null_close(frame)
    report = _validate(frame, ContractConfig(max_quarantine_fraction=0.05))
    assert report.rows_quarantined == 5 and not report.success
    with pytest.raises(ValidationFailed) as info:
        enforce_contract(report, ContractConfig(max_quarantine_fraction=0.05), "prices.csv")
    message = str(info.value)
    assert message.startswith(
        "prices.csv: data contract failed: 5 of 60 rows (8.3%) would be quarantined, "
        "more than max_quarantine_fraction 0.05; most rows: volume: must be >= 0"
    )
    assert message.index("volume:") < message.index("close: missing: 1 row")
    assert "symbols" not in message  # every symbol keeps rows: no symbol to leave out
    # At the limit or under it, the clean rows go on.
    assert (
        len(enforce_contract(report, ContractConfig(max_quarantine_fraction=5 / 60, min_rows_per_symbol=1), "x")) == 55
    )


def test_a_bar_without_its_volume_is_kept_and_said_a_mark_in_a_price_is_not(clean_frame):
    # Yahoo's `null` (read as missing) and an exchange's `-` or `n/a` in the volume: the bar's prices are good, so
    # it is kept (before: "volume: not a number ('-')" or "volume: missing", a hole in the series each time).
    frame = clean_frame.copy()
    raw_volume, raw_close = frame["volume"].astype(object), frame["close"].astype(object)
    dash, na, null, typo, bad_close = (_row(frame, "SYM0", p) for p in (3, 4, 5, 6, 7))
    for label, text in ((dash, "-"), (na, " n/a "), (typo, "12O")):
        frame.loc[label, "volume"], raw_volume.loc[label] = np.nan, text
    frame.loc[null, "volume"] = raw_volume.loc[null] = np.nan
    frame.loc[bad_close, "close"], raw_close.loc[bad_close] = np.nan, "-"
    report = _validate(
        frame, ContractConfig(max_quarantine_fraction=1.0), source_values={"volume": raw_volume, "close": raw_close}
    )
    reasons = dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True))
    assert reasons == {typo: "volume: not a number ('12O')", bad_close: "close: not a number ('-')"}
    assert {dash, na, null} <= set(report.clean.index)
    (note,) = [w for w in report.warnings if w.startswith("volume:")]
    assert note.startswith(f"volume: no value in 3 of {len(frame) - 2} kept rows (e.g. source row ")
    assert "the volume feature is its series' last known one for up to features.carry_limit rows" in note
    assert note.endswith("(0 in a series without any volume)")
    # Where the volume may not be missing, a mark is a missing value, and the bar goes.
    strict = _validate(
        frame,
        ContractConfig(max_quarantine_fraction=1.0, columns={"volume": {"nullable": False}}),
        source_values={"volume": raw_volume},
    )
    assert {dash, na, null} <= set(strict.quarantined["source_row"])


def test_a_bar_with_its_close_and_no_high_or_low_is_kept_and_said(clean_frame):
    """An index quoted at its close only that day, a vendor's `null` in open, high and low: the close is the
    series, so the bar is kept (before: "high: missing", a hole in the series each time); a bar without its
    close still goes, and a high below its low is still a broken bar."""
    frame = clean_frame.copy()
    raw = {c: frame[c].astype(object) for c in ("open", "high", "low")}
    closing_only, no_low, no_close, crossed = (_row(frame, "SYM0", p) for p in (3, 4, 5, 6))
    for column in ("open", "high", "low"):
        frame.loc[closing_only, column], raw[column].loc[closing_only] = np.nan, "null"
    frame.loc[no_low, "low"] = raw["low"].loc[no_low] = np.nan
    frame.loc[no_close, "close"] = np.nan
    frame.loc[crossed, "low"] = raw["low"].loc[crossed] = frame.loc[crossed, "high"] * 2
    report = _validate(frame, ContractConfig(max_quarantine_fraction=1.0), source_values=raw)
    reasons = dict(zip(report.quarantined["source_row"], report.quarantined["reason"], strict=True))
    assert set(reasons) == {no_close, crossed} and reasons[no_close] == "close: missing", reasons
    assert {closing_only, no_low} <= set(report.clean.index)
    (note,) = [w for w in report.warnings if w.startswith("high, low:")]
    assert note.startswith(f"high, low: no value in 2 of {len(frame) - 2} kept rows (e.g. source row ")
    assert note.endswith("are their series' last known ones for up to features.carry_limit rows")


def test_a_row_with_a_time_and_nothing_else_is_a_day_without_trading_not_a_hole(clean_frame):
    # Yahoo writes a holiday as `2000-04-21,null,null,...`: set aside as before, but not a hole to fill (before:
    # "leaving 118 holes ... fill those values in the source", which would make a holiday a bar without a move).
    frame = clean_frame.copy()
    bars = [c for c in ("open", "high", "low", "close", "adj_close", "volume") if c in frame.columns]
    holidays = [_row(frame, "SYM0", p) for p in (5, 9)]
    frame.loc[holidays, bars] = np.nan
    raw_volume = frame["volume"].astype(object)
    raw_volume.loc[holidays[1]] = "-"  # a mark is no value either
    holidays.append(_row(frame, "SYM0", 14))
    frame.loc[holidays[-1], [c for c in bars if c != "volume"]] = np.nan
    frame.loc[holidays[-1], "volume"] = raw_volume.loc[holidays[-1]] = 0.0  # nor is a volume of 0
    hole = _row(frame, "SYM1", 12)
    frame.loc[hole, "close"] = np.nan  # a bar that lost its close: a hole
    report = _validate(frame, ContractConfig(max_quarantine_fraction=1.0), source_values={"volume": raw_volume})
    assert set(report.quarantined["source_row"]) == {*holidays, hole}
    (blank,) = [w for w in report.warnings if "no price or volume" in w]
    assert blank.startswith(f"3 rows have a time and no price or volume at all (e.g. source row {holidays[0]} (SYM0 ")
    (holes,) = [w for w in report.warnings if "inside" in w]
    assert holes.startswith(f"a quarantined row was inside its series (SYM1 {_stamp(frame, hole)})")


def test_a_panel_whose_source_misses_whole_symbols_is_told_which_and_how_to_go_on(caplog):
    # gapminder's life expectancy: 40 of 244 countries have no value at all, 17% of the rows.
    frame = _canonical(make_ohlcv_panel(n_symbols=4, n_days=ROWS_PER_SYMBOL, seed=4))
    frame.loc[frame["symbol"] == "SYM3", "close"] = np.nan
    report = _validate(frame, ContractConfig(min_rows_per_symbol=10))
    with pytest.raises(ValidationFailed) as info:
        enforce_contract(report, ContractConfig(min_rows_per_symbol=10), "panel.csv")
    assert str(info.value).endswith(
        f"— {ROWS_PER_SYMBOL} of those rows are the whole of 1 of the 4 symbols, left with nothing to train on "
        "(SYM3: series the data does not cover); the other symbols lose 0.0% of the rows, within the limit. Leave "
        "those symbols out of the data, or let the run set them aside (into the quarantine file, with reasons) "
        "with --set contract.max_quarantine_fraction=0.25"
    )
    # Taken up, the run goes on without the symbol, which is named; its rows are in the quarantine.
    with caplog.at_level(logging.WARNING, logger="driftline.contracts"):
        clean = enforce_contract(
            report, ContractConfig(min_rows_per_symbol=10, max_quarantine_fraction=0.25), "panel.csv"
        )
    assert sorted(clean["symbol"].unique()) == ["SYM0", "SYM1", "SYM2"]
    assert set(report.quarantined["symbol"]) == {"SYM3"}
    assert "symbols with no clean row left, not trained on: SYM3" in caplog.text


def test_too_few_rows_per_symbol(clean_report):
    contract = ContractConfig(min_rows_per_symbol=ROWS_PER_SYMBOL + 1)
    with pytest.raises(InsufficientDataError, match=f"need {ROWS_PER_SYMBOL + 1}") as info:
        enforce_contract(clean_report, contract, "prices.csv")
    assert f"SYM0: {ROWS_PER_SYMBOL}" in str(info.value) and f"SYM1: {ROWS_PER_SYMBOL}" in str(info.value)


def test_quarantine_that_leaves_a_symbol_short_names_only_that_symbol(clean_frame):
    frame = clean_frame.copy()
    _negative_volume(frame)  # SYM1
    frame.loc[frame["symbol"] == "SYM0", "timestamp"] = pd.Timestamp("2031-01-01")  # every SYM0 row in the future
    report = _validate(frame, ContractConfig(max_quarantine_fraction=1.0))
    strict = ContractConfig(max_quarantine_fraction=1.0, min_rows_per_symbol=ROWS_PER_SYMBOL - 1, short_symbols="fail")
    with pytest.raises(InsufficientDataError) as info:
        enforce_contract(report, strict, "p.csv")
    assert (
        str(info.value)
        == f"p.csv: too few clean rows per symbol (need {ROWS_PER_SYMBOL - 1}, contract.min_rows_per_symbol): SYM0: 0"
    )
    # short_symbols: quarantine (the default): SYM0's rows are all in the quarantine, with their reasons; SYM1 goes on.
    kept = enforce_contract(report, strict.model_copy(update={"short_symbols": "quarantine"}), "p.csv")
    assert set(kept["symbol"]) == {"SYM1"} and len(kept) == ROWS_PER_SYMBOL - 1


def test_a_short_symbol_of_a_panel_is_set_aside_with_its_reason_and_the_others_train(clean_frame, caplog):
    """A universe of stocks always holds recent listings: one short symbol must not stop the others."""
    frame = clean_frame.copy()
    late = frame.index[frame["symbol"] == "SYM0"][:10]
    frame.loc[late, "timestamp"] = pd.Timestamp("2031-01-01")  # 10 of SYM0's rows in the future: 20 left
    contract = ContractConfig(min_rows_per_symbol=25, max_quarantine_fraction=1.0)
    report = _validate(frame, contract)
    assert report.rows_clean == ROWS_PER_SYMBOL and set(report.clean["symbol"]) == {"SYM1"}
    aside = report.quarantined.set_index("source_row")["reason"]
    assert len(aside) == ROWS_PER_SYMBOL  # the 10 future rows and the 20 clean ones
    assert aside.drop(late).eq("symbol SYM0: 20 clean rows, fewer than contract.min_rows_per_symbol (25)").all()
    [check] = [c for c in report.checks if c.check == "min_rows_per_symbol"]
    assert check.action == "quarantine" and check.rows_quarantined == 20 and "SYM0: 20" in check.message
    with caplog.at_level("WARNING", logger="driftline.contracts"):
        kept = enforce_contract(report, contract, "p.csv")
    assert kept.equals(report.clean)
    assert "set aside: SYM0: 20" in caplog.text and "no clean row left" not in caplog.text  # said once
    # The quarantined share counts those rows too; and with short_symbols: fail they stop the run as before.
    with pytest.raises(ValidationFailed, match=r"would be quarantined.*fewer than 25 clean rows"):
        enforce_contract(report, contract.model_copy(update={"max_quarantine_fraction": 0.4}), "p.csv")
    strict = contract.model_copy(update={"short_symbols": "fail"})
    with pytest.raises(InsufficientDataError, match=r"need 25, contract.min_rows_per_symbol\): SYM0: 20$"):
        enforce_contract(_validate(frame, strict), strict, "p.csv")
    # No symbol long enough: nothing is set aside, and the error names them all.
    everyone = ContractConfig(min_rows_per_symbol=ROWS_PER_SYMBOL + 1, max_quarantine_fraction=1.0)
    report = _validate(frame, everyone)
    assert report.rows_quarantined == 10
    with pytest.raises(InsufficientDataError, match=r"SYM0: 20, SYM1: 30$"):
        enforce_contract(report, everyone, "p.csv")


def test_many_short_symbols_are_summarised_not_listed():
    from driftline.contracts import short_symbols_text

    counts = pd.Series({f"C{i:03d}": 40 + i // 4 for i in range(200)} | {"Lesotho": 4, "Big": 150})
    text = short_symbols_text(counts[counts < 100], counts)
    assert text.startswith("201 of 202 symbols, the shortest Lesotho: 4, C000: 40, C001: 40")
    assert text.endswith("and 191 more (the longest symbol has 150 rows)") and "C050" not in text


# --- the suite itself ------------------------------------------------------------------------------------------


def test_suite_is_real_gx_expectations_with_meta(clean_frame):
    contract = ContractConfig(calendar="weekdays", max_gap="7D")
    checked = derive_columns(clean_frame, contract, source_values={"close": clean_frame["close"]}, now=NOW)
    assert {
        PREV_MAX_TIME,
        STEP_SECONDS,
        WEEKDAY,
        AHEAD_SECONDS,
        source_column("close"),
        unparsed_column("close"),
    } <= set(checked.columns)
    suite = build_suite(contract, list(checked.columns), "unit")
    kinds = {(e.meta["check"], type(e).__name__) for e in suite.expectations}
    assert {
        ("required", "ExpectColumnToExist"),
        ("missing", "ExpectColumnValuesToNotBeNull"),
        ("unparsed", "ExpectColumnValuesToBeNull"),
        ("range", "ExpectColumnValuesToBeBetween"),
        ("type", "ExpectColumnValuesToBeInTypeList"),
        ("unique", "ExpectCompoundColumnsToBeUnique"),
        ("monotonic_time", "ExpectColumnPairValuesAToBeGreaterThanB"),
        ("max_gap", "ExpectColumnValuesToBeBetween"),
        ("calendar", "ExpectColumnValuesToBeInSet"),
        ("future", "ExpectColumnValuesToBeBetween"),
        ("price_consistency", "ExpectColumnPairValuesAToBeGreaterThanB"),
    } <= kinds
    assert all({"check", "policy", "column", "description"} <= set(e.meta) for e in suite.expectations)
    missing_close = next(e for e in suite.expectations if e.meta["check"] == "missing" and e.meta["column"] == "close")
    assert missing_close.column == source_column("close")  # with source values, "missing" means missing in the source
    # Only the columns present are rendered (existence of required ones always is).
    bare = build_suite(contract, ["symbol", "timestamp", "close"], "unit")
    assert {e.meta["column"] for e in bare.expectations} == {"symbol", "timestamp", "close", "symbol,timestamp"}


def test_gx_result_is_json_and_trimmed(clean_frame, monkeypatch):
    import json

    import driftline.contracts

    monkeypatch.setattr(driftline.contracts, "GX_LIST_LIMIT", 10)
    frame = clean_frame.copy()
    frame["volume"] = -1.0
    report = _validate(frame, ContractConfig(max_quarantine_fraction=1.0))
    assert report.rows_quarantined == 60  # every row, although the stored lists are cut
    json.dumps(report.gx_result)
    (between,) = [
        r
        for r in report.gx_result["results"]
        if r["expectation_config"]["meta"]["column"] == "volume" and r["expectation_config"]["meta"]["check"] == "range"
    ]
    assert between["result"]["unexpected_count"] == 60
    assert len(between["result"]["unexpected_index_list"]) == 10
    # A check that passed keeps its counts in the stored result (GX's BASIC pass; only failed checks list rows).
    (close,) = [
        r
        for r in report.gx_result["results"]
        if r["expectation_config"]["meta"]["column"] == "close" and r["expectation_config"]["meta"]["check"] == "range"
    ]
    assert close["success"] and close["result"]["element_count"] == 60 and close["result"]["unexpected_count"] == 0


def test_contract_to_yaml_round_trips(tmp_path):
    contract = ContractConfig(
        on_violation="warn",
        columns={"volume": None, "rsi": {"min": 0, "max": 100, "policy": "fail"}},
        calendar="weekdays",
        max_gap="3D",
    )
    text = contract_to_yaml(contract)
    assert "file:" not in text and "open:" not in text  # unchanged built-in rules are left out
    path = tmp_path / "contract.yaml"
    path.write_text(text, encoding="utf-8")
    assert ContractConfig(file=str(path)) == contract


# --- the invariant, under random defects ----------------------------------------------------------------------

ROW_LOCAL = ("negative_close", "nan_close", "low_above_high", "future", "weekend", "not_a_number")


def _plant(frame: pd.DataFrame, raw_close: pd.Series, label: int, kind: str) -> None:
    if kind == "negative_close":
        frame.loc[label, ["close", "open", "low"]] = [-1.0, -1.0, -1.0]
    elif kind == "nan_close":  # a missing high is no defect: the bar keeps its close (and the series its step)
        frame.loc[label, "close"] = raw_close.loc[label] = np.nan
    elif kind == "low_above_high":
        frame.loc[label, "low"] = frame.loc[label, "high"] * 2
    elif kind == "future":
        frame.loc[label, "timestamp"] = NOW + pd.Timedelta(days=400 + label)
    elif kind == "weekend" and not pd.isna(frame.loc[label, "timestamp"]):
        frame.loc[label, "timestamp"] += pd.Timedelta(days=5 - frame.loc[label, "timestamp"].dayofweek)
    elif kind == "not_a_number":
        frame.loc[label, "close"] = np.nan
        raw_close.loc[label] = "n/a?"


@settings(max_examples=25)
@given(st.data())
def test_row_local_defects_quarantine_exactly_the_planted_rows(clean_frame, data):
    frame = clean_frame.copy()
    raw_close = frame["close"].astype(object)
    labels = data.draw(st.lists(st.sampled_from(list(frame.index)), unique=True, max_size=12))
    for label in labels:
        _plant(frame, raw_close, label, data.draw(st.sampled_from(ROW_LOCAL)))
    report = _validate(
        frame, ContractConfig(calendar="weekdays", max_quarantine_fraction=1.0), source_values={"close": raw_close}
    )
    assert set(report.quarantined["source_row"]) == set(labels)
    assert report.quarantined["reason"].str.len().gt(0).all()
    _assert_partition(report, frame)


@settings(max_examples=25)
@given(st.data())
def test_any_defects_keep_rows_in_equal_clean_plus_quarantined(clean_frame, data):
    frame = clean_frame.copy()
    raw_close = frame["close"].astype(object)
    labels = list(frame.index)
    for _ in range(data.draw(st.integers(0, 15))):
        label = data.draw(st.sampled_from(labels))
        kind = data.draw(st.sampled_from((*ROW_LOCAL, "copy_time", "nat", "shuffle_time")))
        if kind == "copy_time":
            frame.loc[label, "timestamp"] = frame.loc[data.draw(st.sampled_from(labels)), "timestamp"]
        elif kind == "nat":
            frame.loc[label, "timestamp"] = pd.NaT
        elif kind == "shuffle_time":
            frame.loc[label, "timestamp"] -= pd.Timedelta(days=data.draw(st.integers(1, 40)))
        else:
            _plant(frame, raw_close, label, kind)
    policy = data.draw(st.sampled_from(["quarantine", "warn"]))
    contract = ContractConfig(
        on_violation=policy,
        monotonic_time=data.draw(st.sampled_from(["quarantine", "warn"])),
        calendar="weekdays",
        max_quarantine_fraction=1.0,
    )
    report = _validate(frame, contract, source_values={"close": raw_close})
    _assert_partition(report, frame)
    duplicated = frame.dropna(subset=["timestamp"]).duplicated(["symbol", "timestamp"], keep=False)
    keys = frame.dropna(subset=["timestamp"])[duplicated]
    for _, group in keys.groupby(["symbol", "timestamp"]):
        # Of each duplicated key, every source row but the first is set aside (as a duplicate).
        later = sorted(group.index)[1:]
        assert set(later) <= set(report.quarantined["source_row"])


# --- the bundled demo data --------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbols", [DataConfig().demo_symbols, ("AAPL", "IBM", "MSFT", "GOOG", "FB")])
def test_demo_data_passes_the_default_contract_and_the_example_file(symbols):
    from driftline.ingest import load_data

    loaded = load_data(DataConfig(demo_symbols=symbols))
    values = {canonical: loaded.raw[original] for canonical, original in loaded.columns.prices.items()}
    values["timestamp"] = loaded.raw[loaded.columns.time]
    for contract in (ContractConfig(), ContractConfig(file=str(CONTRACTS / "ohlcv.yaml"))):
        report = validate_frame(loaded.frame, contract, "demo", source_values=values, source=loaded.source)
        assert report.success and report.rows_quarantined == 0 and report.warnings == [], report.summary()
        assert len(enforce_contract(report, contract, loaded.source)) == len(loaded.frame)


def test_messages_name_a_column_as_the_source_does_when_it_was_given_another_name(tmp_path):
    # `--price-col life_expectancy` (bokeh-sampledata's gapminder): "close: missing" named no column the user has.
    from driftline.config import DataConfig
    from driftline.ingest import load_data
    from driftline.pipeline import validate_loaded

    path = tmp_path / "gapminder.csv"
    path.write_text("country,year,life_expectancy\nChad,1990,45.1\nChad,1991,\nChad,1992,46.0\n")
    loaded = load_data(DataConfig(path=str(path), price_col="life_expectancy"))
    report = validate_loaded(loaded, ContractConfig(min_rows_per_symbol=1, max_quarantine_fraction=1.0), "unit")
    assert report.quarantined["reason"].tolist() == ["'life_expectancy' (close): missing"]
    assert any(c.message.startswith("'life_expectancy' (close): missing: 1 row") for c in report.checks)
    path.write_text("Date,Close\n2020-01-01,1.5\n2020-01-02,\n")  # the usual names: no label
    report = validate_loaded(load_data(DataConfig(path=str(path))), ContractConfig(min_rows_per_symbol=1), "unit")
    assert report.quarantined["reason"].tolist() == ["close: missing"]


def test_prices_at_or_below_zero_that_sink_a_batch_suggest_a_label_target(tmp_path):
    # A temperature anomaly read as a price: half its values are below zero, and log returns need > 0.
    from driftline.config import DataConfig
    from driftline.ingest import load_data
    from driftline.pipeline import validate_loaded

    values = np.sin(np.arange(60) / 5.0)
    path = tmp_path / "anomaly.csv"
    pd.DataFrame({"date": pd.date_range("2000-01-01", periods=60, freq="MS"), "anom": values}).to_csv(path, index=False)
    report = validate_loaded(load_data(DataConfig(path=str(path), price_col="anom")), ContractConfig(), "unit")
    with pytest.raises(ValidationFailed, match=r"built on log returns, so a price must be > 0; .* --target label"):
        enforce_contract(report, ContractConfig(min_rows_per_symbol=1), "anomaly.csv")
    # Prices too large are another problem: no such hint.
    path.write_text("date,close\n" + "\n".join(f"2000-01-{d:02d},{2e12 if d % 2 else 10}" for d in range(1, 29)))
    report = validate_loaded(load_data(DataConfig(path=str(path))), ContractConfig(), "unit")
    with pytest.raises(ValidationFailed) as error:
        enforce_contract(report, ContractConfig(min_rows_per_symbol=1), "anomaly.csv")
    assert "must be > 0 and <= 1e+12" in str(error.value) and "log returns" not in str(error.value)


def test_duplicates_that_sink_a_file_read_as_one_series_suggest_its_key_column(tmp_path):
    # Several stations in one file keyed by a number (station 725030): read as one series, every time repeats.
    from driftline.config import DataConfig
    from driftline.ingest import load_data
    from driftline.pipeline import validate_loaded

    rows = [f"{s},2020-01-{d:02d},{10 + d}" for s in (725030, 725035) for d in range(1, 29)]
    path = tmp_path / "stations.csv"
    path.write_text("station_id,date,close\n" + "\n".join(rows) + "\n")
    report = validate_loaded(load_data(DataConfig(path=str(path))), ContractConfig(), "unit")
    with pytest.raises(ValidationFailed, match=r"read as one series .* name the column .* with --symbol-col"):
        enforce_contract(report, ContractConfig(min_rows_per_symbol=1), "stations.csv")
    named = load_data(DataConfig(path=str(path), symbol_col="station_id"))
    report = validate_loaded(named, ContractConfig(), "unit")
    assert len(enforce_contract(report, ContractConfig(min_rows_per_symbol=1), "stations.csv")) == 56


def test_rows_quarantined_inside_a_series_are_reported_as_holes_the_windows_step_over(clean_frame):
    frame = clean_frame.copy()
    stretch = [_row(frame, "SYM0", p) for p in (10, 11, 12)]
    single = _row(frame, "SYM1", 15)
    frame.loc[[*stretch, single], "close"] = np.nan  # inside: 4 rows, 2 holes, the longest 3 rows
    frame.loc[_row(frame, "SYM1", ROWS_PER_SYMBOL - 1), "close"] = np.nan  # the newest row: no hole
    duplicate = _row(frame, "SYM1", 6)
    frame.loc[duplicate, "timestamp"] = frame.loc[_row(frame, "SYM1", 5), "timestamp"]  # a kept time: no hole
    report = _validate(frame)
    assert report.rows_quarantined == 6
    holes = [w for w in report.warnings if "across a hole" in w]
    start = frame.loc[stretch[0], "timestamp"].strftime("%Y-%m-%d")
    expected = (
        f"4 quarantined rows were inside their series, leaving 2 holes (the longest 3 rows, SYM0 from {start}): "
        "the features' windows, the label lags and the target's horizon count rows, so across a hole they reach "
        "further in time; to keep the steps even, fill those values in the source (e.g. carry the last one "
        "forward: a fill from later rows would leak them)"
    )
    assert holes == [expected]
    assert not [w for w in _validate(clean_frame).warnings if "across a hole" in w]
    one = clean_frame.copy()
    one.loc[single, "close"] = np.nan
    when = one.loc[single, "timestamp"].strftime("%Y-%m-%d")
    assert next(w for w in _validate(one).warnings if "across a hole" in w).startswith(
        f"a quarantined row was inside its series (SYM1 {when}): "
    )
    run = clean_frame.copy()
    run.loc[stretch, "close"] = np.nan
    assert next(w for w in _validate(run).warnings if "across a hole" in w).startswith(
        f"3 quarantined rows in a row were inside their series (SYM0 from {start}): "
    )
