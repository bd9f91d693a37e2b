"""The training summary (the CLI's --summary-json contract), its text form and artifact keys."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.promotion import Decision, Reason
from driftline.report import artifact_key, render_history, render_summary, summary_markdown, training_summary
from driftline.summary import TrainingSummary

CONTRACT_KEYS = {
    "run_id",
    "model_name",
    "model_version",
    "aliases",
    "decision",
    "reasons",
    "data_hash",
    "rows_in",
    "rows_clean",
    "rows_quarantined",
    "metrics",
    "folds",
}
METRIC_KEYS = {"accuracy", "auc", "brier", "log_loss", "ece", "ece_worst_fold", "precision_at_k", "brier_skill"}


def _decision(compared: bool) -> Decision:
    reasons = [
        Reason("min-rows", True, "600 evaluation rows (need 200)", 600, 200),
        Reason("log_loss-better", compared, "log_loss difference -0.01000", -0.002, 0.0),
    ]
    comparison = (
        {
            "baseline": "base rate 0.480",
            "metric": "log_loss",
            "diff": -0.01,
            "ci_low": -0.02,
            "ci_high": -0.002,
            "rows": 600,
        }
        if compared
        else {}
    )
    return Decision("promote" if compared else "reject", reasons, comparison, {})


def _trained(
    walk_forward_run,
    rows_clean: int = 3990,
    adjusted: dict | None = None,
    timeline: dict | None = None,
    zone: str | None = None,
) -> SimpleNamespace:
    """What the flow hands the summary (``driftline.pipeline.Trained``), with only the fields it reads."""
    return SimpleNamespace(
        result=walk_forward_run.result,
        report=SimpleNamespace(rows_in=4000, rows_clean=rows_clean, rows_quarantined=4000 - rows_clean),
        quarantine_path=None,
        timeline=timeline or {"data_start": "2000-01-03T00:00:00", "data_end": None, "training_cutoff": None},
        sized=SimpleNamespace(adjusted=adjusted or {}),
        config=SimpleNamespace(target=SimpleNamespace(kind="volatility"), data=SimpleNamespace(timezone=zone)),
    )


def _summary(
    walk_forward_run, version: str | None = "3", compared: bool = True, trained: SimpleNamespace | None = None
) -> TrainingSummary:
    return training_summary(
        trained or _trained(walk_forward_run),
        run_id="abc123",
        version=SimpleNamespace(name="driftline-demo", version=version),
        aliases={"held": ["challenger", "champion"] if version else [], "champion": version},
        decision=_decision(compared),
        champion_before=None,
        loaded=SimpleNamespace(content_hash="f" * 64, source="/data/prices.csv"),
    )


def test_summary_has_the_cli_contract_keys(walk_forward_run):
    summary = _summary(walk_forward_run)
    assert set(summary.as_dict()) >= CONTRACT_KEYS
    assert set(summary.metrics) == METRIC_KEYS
    result = walk_forward_run.result
    assert summary.metrics == {k: result.pooled[result.selected][k] for k in METRIC_KEYS}
    assert summary.model_name == "driftline-demo" and summary.model_version == "3"
    assert summary.aliases == ["challenger", "champion"]
    assert summary.decision == "promote"
    assert summary.reasons == [
        "PASS min-rows: 600 evaluation rows (need 200)",
        "PASS log_loss-better: log_loss difference -0.01000",
    ]
    assert (summary.rows_in, summary.rows_clean, summary.rows_quarantined) == (4000, 3990, 10)
    assert summary.data_hash == "f" * 64
    assert (summary.target, summary.data_start, summary.data_end) == ("volatility", "2000-01-03T00:00:00", None)
    assert [f["fold"] for f in summary.folds] == [1, 2, 3]
    assert all(f["family"] == result.selected for f in summary.folds)
    # The CLI writes it as JSON.
    assert json.loads(summary.to_json())["metrics"].keys() == METRIC_KEYS


def test_render_summary_shows_the_fold_table_and_the_version(walk_forward_run):
    summary = _summary(walk_forward_run)
    text = render_summary(summary)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["fold", "test_start", "test_end"])
    assert set(lines[header + 1]) <= {"-", " "}
    fold_lines = lines[header + 2 : header + 2 + len(summary.folds)]
    for fold, line in zip(summary.folds, fold_lines, strict=True):
        cells = line.split()
        assert cells[0] == str(fold["fold"])
        assert cells[1] == fold["test_start"][:10] and cells[2] == fold["test_end"][:10]
        assert cells[3] == str(fold["n_train"])
        assert float(cells[5]) == pytest.approx(fold["accuracy"], abs=5e-5)
        assert float(cells[6]) == pytest.approx(fold["auc"], abs=5e-5)
    assert "Registered driftline-demo version 3, aliases: challenger, champion" in text
    assert "Decision: promote" in text
    assert "CI [-0.02000, -0.00200]" in text
    assert "MLflow run abc123" in text


def test_a_model_of_local_clock_times_prints_its_times_on_that_clock(walk_forward_run):
    """``data.timezone``: rows are kept as UTC (so is the summary's JSON); the text shows the data's own clock,
    with its offset, as the score file does; a midnight there is a date."""
    timeline = {
        "data_start": "2021-03-27T23:00:00",  # midnight in Berlin (UTC+1)
        "data_end": "2021-03-28T09:30:00",  # 11:30 in Berlin, summer time since 02:00
        "training_cutoff": "2021-03-28T00:30:00",
    }
    zone = "Europe/Berlin"
    summary = _summary(walk_forward_run, trained=_trained(walk_forward_run, timeline=timeline, zone=zone))
    assert (summary.timezone, summary.data_start) == (zone, "2021-03-27T23:00:00")  # the JSON stays UTC
    text = render_summary(summary)
    assert (
        "rows 2021-03-28 .. 2021-03-28T11:30:00+02:00, trained up to 2021-03-28T01:30:00+01:00 (training cutoff), "
        "times in Europe/Berlin" in text
    )
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["fold", "test_start", "test_end"])
    for fold, line in zip(summary.folds, lines[header + 2 :], strict=False):
        shown = pd.Timestamp(fold["test_start"]).tz_localize("UTC").tz_convert(zone)
        assert line.split()[1] in (shown.isoformat(), shown.date().isoformat())
    utc = render_summary(_summary(walk_forward_run, trained=_trained(walk_forward_run, timeline=timeline)))
    assert (
        "rows 2021-03-27T23:00:00 .. 2021-03-28T09:30:00, trained up to 2021-03-28T00:30:00 (training cutoff)\n" in utc
    )


def test_summary_lists_the_baselines_apart_from_the_families(walk_forward_run):
    summary = _summary(walk_forward_run)
    result = walk_forward_run.result
    assert set(summary.baselines) == {"base_rate", "persistence", "lagged_labels"}
    assert not set(summary.baselines) & set(summary.families)
    assert summary.baselines["persistence"]["log_loss"] == result.baselines["persistence"]["log_loss"]
    assert summary.best_baseline == min(result.baselines, key=lambda b: result.baselines[b]["log_loss"])
    assert {(row["fold"], row["baseline"]) for row in summary.baseline_folds} == {
        (k, b) for k in (1, 2, 3) for b in ("base_rate", "persistence", "lagged_labels")
    }
    text = render_summary(json.loads(summary.to_json()))
    assert "Naive baselines on the same folds (not models; never the challenger):" in text
    pooled = text[text.index("Pooled out-of-sample, naive baselines") :].splitlines()
    best = next(line for line in pooled if line.split()[0] == summary.best_baseline)
    assert "(best)" in best
    assert float(best.split()[2]) == pytest.approx(summary.baselines[summary.best_baseline]["accuracy"], abs=5e-5)


def test_summary_carries_the_sizes_adjusted_to_short_data_and_the_data_warnings(walk_forward_run):
    warning = "/data/MSFT.csv: no 'Adj Close' values; prices of MSFT come from 'Close'"

    def summarised(adjusted: dict[str, dict[str, object]]) -> TrainingSummary:
        return training_summary(
            _trained(walk_forward_run, rows_clean=4000, adjusted=adjusted),
            run_id="abc123",
            version=SimpleNamespace(name="driftline-demo", version="3"),
            aliases={"held": ["challenger"], "champion": None},
            decision=_decision(True),
            champion_before=None,
            loaded=SimpleNamespace(content_hash="f" * 64, source="/data", warnings=(warning,)),
        )

    adjusted = {"evaluation.window": {"from": 500, "to": 241, "reason": "a shorter hold-out leaves room"}}
    summary = summarised(adjusted)
    assert json.loads(summary.to_json())["adjusted"] == adjusted
    assert summary.data_warnings == [warning]
    text = render_summary(summary)
    assert "warning: short data: evaluation.window 500 -> 241 (a shorter hold-out leaves room)" in text
    assert f"warning: {warning}" in text
    # Long data: the hold-out grown, a note rather than a warning.
    grown = render_summary(summarised({"evaluation.window": {"from": 500, "to": 2000, "reason": "40000 timestamps"}}))
    assert "note: long data: evaluation.window 500 -> 2000 (40000 timestamps)" in grown and "short data" not in grown
    assert _summary(walk_forward_run).as_dict()["adjusted"] == {}  # nothing changed: an empty entry, always present


def test_render_summary_without_version_or_comparison(walk_forward_run):
    text = render_summary(_summary(walk_forward_run, version=None, compared=False))
    assert "Registered driftline-demo version -, aliases: -" in text
    assert "Hold-out comparison: not run" in text
    assert "Decision: reject" in text


def test_summary_markdown_has_one_row_per_fold(walk_forward_run):
    summary = _summary(walk_forward_run)
    markdown = summary_markdown(summary)
    table_rows = [line for line in markdown.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(table_rows) == len(summary.folds)
    assert markdown.startswith("## driftline-demo v3 — promote")
    assert f"{summary.best_baseline} " in markdown and "(best)" in markdown


def test_artifact_key_examples():
    assert artifact_key("training-summary", "Driftline_Demo v2") == "training-summary-driftline-demo-v2"
    assert artifact_key("Data Contract", "s3://bucket/Prices.CSV") == "data-contract-s3-bucket-prices-csv"
    assert artifact_key("", "__x__") == "x"


@given(st.text(), st.text())
def test_artifact_key_only_has_lowercase_letters_digits_and_dashes(prefix, name):
    key = artifact_key(prefix, name)
    assert re.fullmatch(r"[a-z0-9-]*", key)
    assert not key.startswith("-") and not key.endswith("-")


def test_render_history_lists_alias_moves_oldest_first():
    events = [
        {
            "at": "2026-01-02T10:00:00.123456",
            "action": "set",
            "alias": "champion",
            "version": "1",
            "run_id": "r" * 32,
            "reason": "first",
        },
        {
            "at": "2026-01-09T10:00:00",
            "action": "set",
            "alias": "champion",
            "previous": "1",
            "version": "2",
            "reason": "better",
        },
    ]
    text = render_history("driftline-demo", events, {"champion": "2", "challenger": None})
    lines = text.splitlines()
    assert lines[0] == "driftline-demo: champion=2, challenger=-"
    first, second = lines[3].split(), lines[4].split()
    assert first[0] == "2026-01-02" and first[1].startswith("10:00:00")
    assert first[2:7] == ["set", "champion", "-", "1", "r" * 12]
    assert second[0] == "2026-01-09" and second[2:6] == ["set", "champion", "1", "2"]
    assert "(no alias moves recorded)" in render_history("m", [], {"champion": None})


def test_a_history_reason_names_a_promotions_checks_instead_of_cutting_the_first_one_in_half():
    """Before: the first 90 characters, "PASS min-rows: 2000 evaluation rows (need 200); PASS log_loss-better:
    log_loss difference " for every promotion."""
    from driftline.report import history_reason

    passed = (
        "PASS min-rows: 2000 evaluation rows (need 200); PASS log_loss-better: log_loss difference -0.04 vs "
        "best baseline persistence, 95% CI [-0.08, -0.001] (block 10); PASS ece-cap: hold-out ECE 0.05 (cap 0.1)"
    )
    assert history_reason(passed) == "passed 3 checks: min-rows, log_loss-better, ece-cap"
    failed = passed.replace("PASS log_loss-better", "FAIL log_loss-better")
    assert history_reason(failed) == "failed log_loss-better; passed 2 of 3"
    assert history_reason("manual rollback") == "manual rollback"
    long = "v1 broke on live data " * 6
    assert len(history_reason(long)) == 90 and history_reason(long).endswith("…")
    assert history_reason("") == ""


def test_summary_json_is_strict_nan_is_null(walk_forward_run):
    """A metric that cannot be computed (NaN: e.g. AUC on one class) is null in the file: bare NaN is not JSON."""
    summary = _summary(walk_forward_run)
    family = summary.selected_family
    broken = summary.model_copy(
        update={
            "metrics": {**summary.metrics, "auc": float("nan")},
            "families": {**summary.families, family: {**summary.families[family], "auc": float("inf")}},
        }
    )
    text = broken.to_json()
    assert "NaN" not in text and "Infinity" not in text
    parsed = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert parsed["metrics"]["auc"] is None and parsed["families"][family]["auc"] is None
    assert parsed["metrics"]["log_loss"] == summary.metrics["log_loss"]
    assert "auc n/a" in render_summary(broken)
    # What the flow returns (and MLflow stores) is the same JSON-safe mapping; it reads back to the same record.
    assert TrainingSummary.model_validate(broken.as_dict()).to_json() == text
    assert list(parsed) == list(TrainingSummary.model_fields)


def test_a_failed_run_has_a_summary_with_its_status_and_error():
    failed = json.loads(TrainingSummary.failed("prices.csv: file is empty", model_name="driftline-prices").to_json())
    assert failed["status"] == "failed" and failed["error"] == "prices.csv: file is empty"
    assert failed["model_name"] == "driftline-prices" and failed["model_version"] is None and failed["metrics"] == {}


def test_the_columns_line_says_what_detection_chose():
    from driftline.ingest import ColumnMap
    from driftline.report import _columns_line

    panel = ColumnMap(time="year", symbol="country", prices={"close": "life_expectancy"}, period="quarter")
    assert _columns_line(panel.describe()) == [
        "       columns time 'year' + 'quarter', symbol 'country', close 'life_expectancy'"
    ]
    labelled = ColumnMap(time="ts", symbol=None, target="y", extra=("x0", "x1"))
    assert _columns_line(labelled.describe()) == ["       columns time 'ts', target 'y', 2 feature columns"]
    named = ColumnMap(time="ts", symbol=None, target="y", extra=("x0",), classes=("calm", "storm"))
    assert _columns_line(named.describe()) == [
        "       columns time 'ts', target 'y' ('storm' is 1, 'calm' 0), 1 feature columns"
    ]
    tickers = ("AAPL", "FB", "GOOG", "IBM", "MSFT", "^GSPC")
    wide = ColumnMap(time="Date", symbol="symbol", prices={"close": "close"}, wide=tickers)  # as read long
    assert _columns_line(wide.describe()) == [
        "       columns time 'Date', a close per symbol's column (AAPL, FB, GOOG, IBM, MSFT and 1 more)"
    ]
    per_file = ColumnMap(time="time", symbol="symbol", prices={"close": "close"}, symbol_from="each file's name")
    assert _columns_line(per_file.describe()) == ["       columns time 'time', symbol each file's name, close 'close'"]
    assert _columns_line({}) == []
