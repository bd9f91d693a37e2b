"""Which rows a scoring batch scores: a backfill from --since, or only rows newer than the prediction log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.errors import ConfigError
from driftline.scoring import (
    ModelRef,
    append_prediction_log,
    assemble_predictions,
    batch_metrics,
    compare_shadow,
    keyed_scores,
    last_scored,
    newest_pair,
    parse_time_bound,
    read_prediction_log,
    rows_in_range,
)


def _rows() -> pd.DataFrame:
    stamps = pd.date_range("2024-01-01", periods=5, freq="D")
    return pd.DataFrame({"symbol": ["A"] * 5 + ["B"] * 5, "timestamp": list(stamps) * 2, "x": range(10)})


def test_since_keeps_rows_from_that_time_on():
    picked = rows_in_range(_rows(), pd.Timestamp("2024-01-04"))
    assert list(picked["x"]) == [3, 4, 8, 9]
    assert rows_in_range(_rows(), None)["x"].tolist() == list(range(10))


def test_new_rows_only_skips_what_the_log_already_has_per_symbol(tmp_path):
    rows = _rows()
    ref = ModelRef("driftline-t", "3", "run")
    logged = rows[(rows.symbol == "A") & (rows.timestamp <= "2024-01-03")]
    scores = pd.DataFrame({"probability": [0.2, 0.4, 0.9], "prediction": [0, 0, 1]})
    append_prediction_log(assemble_predictions(logged, ref, scores), tmp_path, "batch-1")

    after = last_scored(tmp_path)
    assert after.to_dict() == {"A": pd.Timestamp("2024-01-03")}
    picked = rows_in_range(rows, None, after)
    # A: only its two unlogged days; B: never logged, every row.
    assert picked["x"].tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert rows_in_range(rows, pd.Timestamp("2024-01-05"), after)["x"].tolist() == [4, 9]
    assert last_scored(tmp_path / "none").empty
    # With the model's training cutoff: B (nothing logged) from after it; A still from after its log.
    assert rows_in_range(rows, None, after, pd.Timestamp("2024-01-04"))["x"].tolist() == [3, 4, 9]
    assert rows_in_range(rows, None, last_scored(tmp_path / "none"), pd.Timestamp("2024-01-04"))["x"].tolist() == [4, 9]


def test_the_shadow_joins_on_its_own_rows_and_is_empty_where_it_could_not_score(tmp_path):
    # The challenger was trained with other features (longer history): it scores fewer of the batch's rows.
    from driftline.config import DecisionSpec
    from driftline.scoring import compare_shadow, keyed_scores, read_prediction_log

    rows = _rows()
    champion, challenger = ModelRef("driftline-t", "3", "run-3"), ModelRef("driftline-t", "4", "run-4")
    scores = pd.DataFrame({"probability": [0.3] * 10, "prediction": [0] * 10})
    theirs = rows[rows["timestamp"] >= "2024-01-03"].iloc[::-1]  # its own rows, in its own order
    shadow = keyed_scores(theirs, pd.DataFrame({"probability": [0.8] * 6, "prediction": [1] * 6}))
    predictions = assemble_predictions(rows, champion, scores, challenger, shadow)
    scored = predictions["challenger_probability"].notna()
    assert scored.tolist() == [False, False, True, True, True] * 2
    assert predictions.loc[scored, "challenger_decision"].tolist() == [1] * 6
    assert predictions.loc[~scored, "challenger_decision"].isna().all()
    # The log keeps the gaps, and the A/B comparison reads only the rows both scored.
    append_prediction_log(predictions, tmp_path, "batch-1")
    log = read_prediction_log(tmp_path)
    labels = rows[["symbol", "timestamp"]].assign(y=[0, 1] * 5)
    decision = compare_shadow(log, labels, DecisionSpec(block_length=1))
    assert decision.comparison["rows"] == 6
    ece = next(r.detail for r in decision.reasons if r.check == "ece-cap")
    assert ece.startswith("shadow ECE "), ece  # these rows are the logged shadow, not a training hold-out


def test_the_ab_test_judges_the_newest_pair_on_rows_neither_trained_on(tmp_path):
    """Before: every shadow row counted, those of an earlier champion/challenger pair and those the challenger
    had trained on (a retrain's cutoff is later than the champion's: its first weeks of shadow rows were
    in-sample for it, and the comparison flattered it)."""
    from driftline.config import DecisionSpec
    from driftline.errors import InsufficientDataError

    stamps = pd.date_range("2024-01-01", periods=300, freq="D")
    rows = pd.DataFrame({"symbol": "A", "timestamp": stamps})
    y = (np.arange(300) % 3 == 0).astype(int)
    old = ModelRef("driftline-t", "1", "r1"), ModelRef("driftline-t", "2", "r2")
    new = ModelRef("driftline-t", "2", "r2"), ModelRef("driftline-t", "3", "r3")
    flat = pd.DataFrame({"probability": [0.4] * 100, "prediction": [0] * 100})
    for k, (champion, challenger) in enumerate([old, new, new]):
        part = rows.iloc[100 * k : 100 * (k + 1)]
        shadow = keyed_scores(part, flat.assign(probability=np.where(y[part.index] == 1, 0.6, 0.2)))
        predictions = assemble_predictions(part, champion, flat, challenger, shadow)
        append_prediction_log(predictions, tmp_path, f"batch-{k}")
    log = read_prediction_log(tmp_path)
    labels = rows.assign(y=y)
    assert newest_pair(log) == ("2", "3")

    everything = compare_shadow(log, labels, DecisionSpec(block_length=1))
    assert everything.comparison["models"] == "v2 vs v3" and everything.comparison["rows"] == 200
    assert everything.comparison["left_out"] == "100 rows scored by earlier versions"

    cutoffs = {"2": stamps[120], "3": stamps[149]}  # v3 trained up to day 150: its rows up to then are in-sample
    judged = compare_shadow(log, labels, DecisionSpec(block_length=1), cutoffs)
    assert judged.comparison["rows"] == 150
    assert judged.comparison["left_out"] == (
        "100 rows scored by earlier versions; 50 rows up to v3's training cutoff 2024-05-29"
    )
    # The purge gap after the cutoff, as the training run's hold-out comparison leaves it out.
    purged = compare_shadow(log, labels, DecisionSpec(block_length=1, gap=5), cutoffs)
    assert purged.comparison["rows"] == 145 and purged.comparison["left_out"].endswith(
        "55 rows up to v3's training cutoff 2024-05-29 and the 5 after it"
    )
    # The gap counts the data's timeline after the cutoff, not the first shadow rows: rows long after it stay.
    later = compare_shadow(log, labels, DecisionSpec(block_length=1, gap=5), {"2": stamps[10], "3": stamps[20]})
    assert later.comparison["rows"] == 200 and later.comparison["left_out"] == "100 rows scored by earlier versions"
    with pytest.raises(InsufficientDataError, match=r"every shadow prediction .* v3 trained on \(up to 2024-10-26\)"):
        compare_shadow(log, labels, DecisionSpec(block_length=1), {"3": stamps[-1]})
    # The newest pair is judged even while only an earlier pair's rows have outcomes: it is the one to decide on.
    with pytest.raises(InsufficientDataError, match=r"no shadow prediction of v2 vs v3 \(the newest pair\) has"):
        compare_shadow(
            log, labels.assign(y=np.where(labels.index < 100, labels["y"], np.nan)), DecisionSpec(block_length=1)
        )


def test_batch_metrics_summarise_the_scored_rows():
    predictions = pd.DataFrame({"symbol": ["A", "A", "B"], "probability": [0.2, 0.4, 0.9], "decision": [0, 0, 1]})
    metrics = batch_metrics(predictions)
    assert metrics == {
        "rows": 3.0,
        "mean_probability": pytest.approx(0.5),
        "positive_rate": pytest.approx(1 / 3),
        "symbols": 2.0,
    }
    assert batch_metrics(predictions.iloc[0:0]) == {"rows": 0.0}


@pytest.mark.parametrize(
    ("text", "expected"), [("2024-03-01", "2024-03-01 00:00"), ("2024-03-01T16:00+02:00", "2024-03-01 14:00")]
)
def test_time_bounds_are_naive_utc(text, expected):
    assert parse_time_bound(text) == pd.Timestamp(expected)


def test_a_bad_time_bound_names_the_option():
    with pytest.raises(ConfigError, match="--since 'yesterday-ish' is not a date or time"):
        parse_time_bound("yesterday-ish")
    assert parse_time_bound(None) is None and parse_time_bound(" ") is None


def test_scoring_sets_no_short_symbol_aside(tmp_path):
    """min_rows_per_symbol is a training requirement: a batch with a recent listing (40 rows) beside a long
    symbol is scored row by row, where the training contract would set the short one aside."""
    from driftline.config import ContractConfig, DataConfig
    from driftline.ingest import load_data
    from driftline.pipeline import validate_loaded
    from driftline.scoring import scoring_contract
    from driftline.synthetic import make_ohlcv_panel

    panel = make_ohlcv_panel(n_symbols=2, n_days=300, seed=3)
    listing = panel["Symbol"] == sorted(panel["Symbol"].unique())[0]
    panel = panel[~listing | (panel["Date"] >= sorted(panel.loc[listing, "Date"])[-40])]
    panel.to_csv(tmp_path / "batch.csv", index=False)
    loaded = load_data(DataConfig(path=str(tmp_path / "batch.csv")))
    training = validate_loaded(loaded, ContractConfig(), "unit")
    assert training.rows_quarantined == 40  # set aside as a short symbol when training
    scoring = validate_loaded(loaded, scoring_contract(ContractConfig()), "unit")
    assert scoring.rows_quarantined == 0 and scoring.rows_clean == len(panel)


def test_the_newest_row_of_a_label_series_is_scored_though_its_label_is_unknown(tmp_path):
    """Neither training nor scoring quarantines the newest row for its unknown label: that row is the one to
    predict. Training quarantines a label lost between labelled rows; scoring keeps that row too."""
    from driftline.config import ContractConfig, DataConfig, FeatureConfig, TargetConfig
    from driftline.features import scoring_rows
    from driftline.ingest import load_data
    from driftline.pipeline import validate_loaded
    from driftline.scoring import scoring_contract

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {"ts": pd.date_range("2024-01-01", periods=60, freq="h"), "x": rng.normal(size=60), "y": rng.integers(0, 2, 60)}
    )
    frame["y"] = frame["y"].astype(float)
    frame.loc[59, "y"] = np.nan  # the newest hour: its outcome (the next hour's) is not known yet
    frame.loc[30, "y"] = np.nan  # lost
    frame.to_csv(tmp_path / "batch.csv", index=False)
    loaded = load_data(DataConfig(path=str(tmp_path / "batch.csv"), target_col="y"), need_target=True)
    contract = ContractConfig(min_rows_per_symbol=10)
    training = validate_loaded(loaded, contract, "unit")
    assert training.quarantined["source_row"].tolist() == [30]  # training: a lost label, not the newest row
    report = validate_loaded(loaded, scoring_contract(contract), "unit")
    assert report.rows_quarantined == 0
    rows, _ = scoring_rows(report.clean, FeatureConfig(), TargetConfig(kind="label"), ["x", "target_lag_1"])
    newest = rows.loc[rows["timestamp"].idxmax()]
    assert newest["timestamp"] == frame["ts"].iloc[-1] and newest["target_lag_1"] == frame["y"].iloc[58]


def test_the_history_a_row_needs_is_the_number_the_skipped_note_gives(tmp_path):
    """The note on rows without every feature says how many earlier rows a row needs; with exactly that
    many before a date the date's row is scored, with one fewer it is not."""
    import re

    from driftline.config import ContractConfig, DataConfig, FeatureConfig, TargetConfig
    from driftline.features import feature_table, scoring_rows
    from driftline.ingest import load_data
    from driftline.pipeline import validate_loaded
    from driftline.scoring import lacking_summary, scoring_contract
    from driftline.synthetic import make_ohlcv_panel

    panel = make_ohlcv_panel(n_symbols=1, n_days=400, seed=4)

    def clean(frame: pd.DataFrame) -> pd.DataFrame:
        frame.to_csv(tmp_path / "batch.csv", index=False)
        loaded = load_data(DataConfig(path=str(tmp_path / "batch.csv")))
        return validate_loaded(loaded, scoring_contract(ContractConfig()), "unit").clean

    names = list(feature_table(clean(panel), FeatureConfig(), TargetConfig())[1])  # every default feature

    def score(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return scoring_rows(clean(frame), FeatureConfig(), TargetConfig(), names)

    note = lacking_summary(score(panel)[1])
    needed = int(re.search(r"a row needs (\d+) earlier rows", note).group(1))
    assert needed > 20 and note.startswith(f"{needed} rows lacked history"), note  # one series: all warm-up
    assert note.count("last to fill: ") == 1 and "--since DATE" in note

    day = pd.Timestamp(panel["Date"].iloc[300])
    assert score(panel.iloc[300 - needed :])[0]["timestamp"].min() == day
    assert score(panel.iloc[300 - needed + 1 :])[0]["timestamp"].min() > day


def test_the_skipped_note_tells_history_gaps_and_contract_breaks_apart():
    from driftline.features import GAP_REASON, HISTORY_REASON
    from driftline.scoring import lacking_summary

    stamps = pd.date_range("2024-01-01", periods=6, freq="D")
    lacking = pd.DataFrame(
        {
            "symbol": ["A"] * 6,
            "timestamp": stamps,
            "reason": [f"{HISTORY_REASON}ret_5"] * 3 + [f"{GAP_REASON}rsi_14", "'close': missing", "'close': missing"],
        }
    )
    note = lacking_summary(lacking)
    assert note.startswith("3 rows lacked history (the series' first 3; last to fill: ret_5): a row needs 3 ")
    assert "; 1 rows after complete ones had a feature without a value (a missing input), " in note
    assert note.endswith(
        "; 2 rows broke the data contract, e.g. A 2024-01-05 ('close': missing); A 2024-01-06 ('close': missing)"
    )
    assert lacking_summary(lacking.iloc[:0]) == "no row was skipped"
    # A source without a symbol column: its one series is named only internally, so rows go by time alone.
    single = lacking_summary(lacking.assign(symbol="series"))
    assert single.endswith("e.g. 2024-01-05 ('close': missing); 2024-01-06 ('close': missing)"), single


def test_scores_of_rows_read_in_local_clock_time_carry_that_zones_time(tmp_path):
    """``data.timezone``: the rows came as Europe/Berlin clock times and are kept as UTC; the score file gives
    each row's time as it was written (with its offset, so nothing is ambiguous on the autumn night), and it
    reads back to the same UTC times. Without a zone the file holds UTC, as before."""
    from driftline.ingest import parse_timestamps
    from driftline.scoring import write_table

    utc = pd.Series(pd.date_range("2021-10-30 23:00", periods=4, freq="h"))  # 01:00, 02:00, 02:00, 03:00 in Berlin
    scores = pd.DataFrame({"symbol": "series", "timestamp": utc, "probability": [0.1, 0.2, 0.3, 0.4]})
    write_table(scores, tmp_path / "scores.csv", zone="Europe/Berlin")
    written = pd.read_csv(tmp_path / "scores.csv")["timestamp"].tolist()
    assert written == [
        "2021-10-31 01:00:00+02:00",
        "2021-10-31 02:00:00+02:00",
        "2021-10-31 02:00:00+01:00",
        "2021-10-31 03:00:00+01:00",
    ]
    assert parse_timestamps(pd.Series(written)).tolist() == utc.tolist()
    write_table(scores, tmp_path / "scores.parquet", zone="Europe/Berlin")
    assert str(pd.read_parquet(tmp_path / "scores.parquet")["timestamp"].dt.tz) == "Europe/Berlin"
    write_table(scores, tmp_path / "plain.csv")
    assert pd.read_csv(tmp_path / "plain.csv")["timestamp"].iloc[0] == "2021-10-30 23:00:00"
