"""Batch scoring with the champion, shadow scoring with the challenger, and the A/B comparison."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from driftline.errors import DriftlineError
from driftline.synthetic import make_labelled_series

pytestmark = pytest.mark.slow
LABELLED = {"target": "label", "target_col": "y"}


@pytest.fixture
def trained(prefect_api, tracking, fast_config, labelled_csv, tmp_path):
    """Champion v1 trained on one sample, challenger v2 on another of the same process."""
    from flows.training import train_and_promote

    first = train_and_promote(config_file=str(fast_config), data=str(labelled_csv), **LABELLED)
    other = tmp_path / "other.csv"
    make_labelled_series(n_rows=1500, seed=12).to_csv(other, index=False)
    second = train_and_promote(config_file=str(fast_config), data=str(other), **LABELLED)
    assert first["champion_version_after"] == "1" and second["model_version"] == "2"
    fresh = tmp_path / "fresh.csv"
    make_labelled_series(n_rows=400, seed=13, start="2021-01-01").to_csv(fresh, index=False)
    return fresh


def test_score_writes_one_row_per_row_with_history_and_lists_the_rest(trained, tracking, tmp_path, labelled_csv):
    from mlflow.tracking import MlflowClient

    from flows.scoring import score_batch

    # The first `--new-only` batch (nothing logged yet) of the champion's own training file: only the rows
    # after its training cutoff are new to it. Before, every row was scored and logged, in-sample ones too.
    cutoff = pd.Timestamp(MlflowClient().get_model_version("driftline-it", "1").tags["driftline.train_cutoff"])
    first = score_batch(data=str(labelled_csv), name="it", target_col="y", new_rows_only=True)
    later_than_cutoff = int((pd.to_datetime(pd.read_csv(labelled_csv)["timestamp"]) > cutoff).sum())
    assert 0 < first["rows_scored"] == later_than_cutoff - first["rows_skipped"]
    assert pd.read_parquet(first["out"])["timestamp"].min() > cutoff
    assert first["from_cutoff"]["cutoff"] == cutoff.isoformat() and len(first["from_cutoff"]["series"]) == 1

    out = tmp_path / "scores" / "out.parquet"
    summary = score_batch(data=str(trained), out=str(out), name="it", target_col="y")

    scored = pd.read_parquet(out)
    skipped = pd.read_csv(summary["skipped_file"])
    assert summary["rows_in"] == 400
    assert len(scored) == summary["rows_scored"] and len(skipped) == summary["rows_skipped"]
    assert len(scored) + len(skipped) == 400
    # Label lags 1, 2 and 5 behind a label_delay of 1: the first 5 rows cannot have every feature.
    assert len(skipped) == 5 and skipped["reason"].str.contains("target_lag_5").all()
    assert scored["probability"].between(0, 1).all() and set(scored["decision"]) <= {0, 1}
    assert (scored["model_version"].astype(str) == "1").all()
    assert not set(zip(scored["symbol"], scored["timestamp"], strict=True)) & set(
        zip(skipped["symbol"], pd.to_datetime(skipped["timestamp"]), strict=True)
    )
    log = pd.read_parquet(summary["log_file"])
    assert len(log) == len(scored) and "scored_at" in log

    # The daily `score` deployment: the same file plus 60 later rows scores only those 60, the earlier
    # rows serving as feature history. Nothing new: nothing scored, nothing appended to the log.
    fresh = pd.read_csv(trained)
    later = make_labelled_series(
        n_rows=60, seed=14, start=str(pd.Timestamp(fresh["timestamp"].iloc[-1]) + pd.Timedelta(hours=1))
    )
    grown = tmp_path / "grown.csv"
    pd.concat([fresh, later], ignore_index=True).to_csv(grown, index=False)
    daily = score_batch(data=str(grown), name="it", target_col="y", new_rows_only=True)
    new_rows = pd.read_parquet(daily["out"])
    assert daily["rows_scored"] == 60 and len(new_rows) == 60
    assert new_rows["timestamp"].min() == pd.Timestamp(later["timestamp"].iloc[0])
    assert score_batch(data=str(grown), name="it", target_col="y", new_rows_only=True)["log_file"] is None

    # A backfill (`driftline score --since`) rescores rows from that time on, logged or not.
    since = later["timestamp"].iloc[30]
    backfill = score_batch(data=str(grown), name="it", target_col="y", since=since)
    assert backfill["rows_scored"] == 30 and pd.read_parquet(backfill["out"])["timestamp"].min() == pd.Timestamp(since)
    assert len(pd.read_parquet(backfill["log_file"])) == 30

    # Every batch is a run in the model's MLflow experiment: rows, mean probability, champion version.
    client = MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("driftline-it").experiment_id], "tags.`driftline.kind` = 'score'"
    )
    by_rows = {r.data.metrics["rows"]: r for r in runs}
    assert sorted(by_rows) == sorted([0.0, 30.0, 60.0, float(first["rows_scored"]), float(len(scored))])
    assert by_rows[60.0].data.metrics["mean_probability"] == pytest.approx(new_rows["probability"].mean())
    assert by_rows[60.0].data.tags["driftline.champion_version"] == "1" and by_rows[30.0].data.params[
        "since"
    ].startswith(str(pd.Timestamp(since).date()))


def test_shadow_scoring_and_the_ab_comparison(trained, tracking, tmp_path, labelled_csv):
    from flows.scoring import compare_shadow_flow, score_batch

    summary = score_batch(data=str(trained), out=str(tmp_path / "s.csv"), name="it", shadow=True, target_col="y")
    scored = pd.read_csv(tmp_path / "s.csv")
    assert summary["challenger_version"] == "2"
    assert {"challenger_probability", "challenger_decision", "challenger_version"} <= set(scored.columns)
    assert not scored["probability"].equals(scored["challenger_probability"])

    verdict = compare_shadow_flow(data=str(trained), name="it", target_col="y")
    comparison = verdict["comparison"]
    assert comparison["baseline"] == "champion v1" and comparison["rows"] == len(scored)
    assert comparison["left_out"] is None  # every row is later than both versions' training cutoffs
    assert comparison["ci_low"] <= comparison["diff"] <= comparison["ci_high"]
    assert {r["check"] for r in verdict["reasons"]} >= {"min-rows", "log_loss-better", "ece-cap", "auc"}
    # v1 and v2 are the same pipeline fitted on two samples of one process: neither is better in truth, so
    # the 95% CI of the log-loss difference holds zero and the champion stays.
    failed = {r["check"] for r in verdict["reasons"] if not r["passed"]}
    assert verdict["action"] == "keep-champion" and "log_loss-better" in failed, verdict["reasons"]
    assert comparison["ci_low"] < 0 < comparison["ci_high"]
    # Without data: the champion's recorded source, here grown by the scored rows (as a deployed source grows):
    # the same shadow rows with the same labels, the same verdict.
    grown = pd.concat([pd.read_csv(labelled_csv), pd.read_csv(trained)], ignore_index=True)
    grown.to_csv(labelled_csv, index=False)
    assert compare_shadow_flow(name="it")["comparison"] == comparison


def test_scoring_without_a_champion_is_a_clear_error(prefect_api, tracking, tmp_path):
    from flows.scoring import score_batch

    make_labelled_series(n_rows=100, seed=1).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DriftlineError, match="no model driftline-nobody in the registry at "):
        score_batch(data=str(tmp_path / "x.csv"), out=str(tmp_path / "o.csv"), name="nobody")
    assert not Path(tmp_path / "o.csv").exists()
