"""Smoke test of benchmarks/drift_detection.py: the trials run through the real drift code, the report has the
structure it should, and shifted columns are flagged more often than unshifted ones.

The benchmark itself (100 trials of 10k + 10k rows, plus the Evidently comparison) is run by hand; here a few
small trials are enough, and Evidently is never imported.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.drift_detection import (
    CATEGORIES,
    COLUMNS,
    NUMERIC,
    draw,
    main,
    make_frames,
    population_mean_sd,
    run_trials,
    summarise,
    wilson,
)

TRIALS, ROWS = 6, 3000


@pytest.fixture(scope="module")
def trial_run() -> tuple[list[dict], list[float], dict]:
    records, seconds = run_trials(TRIALS, ROWS, seed=0)
    return records, seconds, summarise(records)


def test_shifts_do_what_they_say():
    rng = np.random.default_rng(0)
    n = 200_000
    for distribution in NUMERIC:
        mean, sd = population_mean_sd(distribution)
        base = draw(distribution, "none", rng, n)
        moved = draw(distribution, "mean", rng, n)
        wider = draw(distribution, "variance", rng, n)
        assert moved.mean() - base.mean() == pytest.approx(0.2 * sd, abs=0.05 * sd), distribution
        assert wider.mean() == pytest.approx(mean, abs=0.05 * sd), distribution
        assert wider.var() / base.var() == pytest.approx(1.5, rel=0.15), distribution
    assert draw("poisson", "variance", rng, 10).dtype.kind == "i"
    mix = draw("categorical", "category_mix", rng, n)
    assert set(mix) == set(CATEGORIES) and np.mean(mix == "e") == pytest.approx(0.15, abs=0.01)


def test_frames_are_seeded_and_carry_one_column_per_spec():
    reference, current = make_frames(3, 1, 500)
    again, _ = make_frames(3, 1, 500)
    other, _ = make_frames(3, 2, 500)
    assert list(reference.columns) == list(current.columns) == [c.name for c in COLUMNS]
    assert len(reference) == len(current) == 500
    assert reference.equals(again) and not reference.equals(other)
    assert reference["none__categorical"].dtype == object and reference["none__poisson"].dtype.kind == "i"


def test_records_and_summary_have_the_reported_structure(trial_run):
    records, seconds, summary = trial_run
    assert len(records) == TRIALS * len(COLUMNS) and len(seconds) == TRIALS and min(seconds) > 0
    assert {r["column"] for r in records} == {c.name for c in COLUMNS}
    assert [g["key"] for g in summary["groups"]] == ["mean", "variance", "category_mix", "all_shifted", "unshifted"]
    for group in summary["groups"]:
        assert 0 <= group["flagged"] <= group["columns"]
        assert group["rate"] == group["flagged"] / group["columns"]
        low, high = group["wilson_95"]
        assert low <= group["rate"] <= high
        assert group["target"] == ("<= 5%" if group["key"] == "unshifted" else ">= 95%")
        assert isinstance(group["passed"], bool)
    assert summary["all_targets_met"] == all(g["passed"] for g in summary["groups"])
    by_key = {g["key"]: g for g in summary["groups"]}
    assert by_key["all_shifted"]["columns"] == TRIALS * sum(c.shifted for c in COLUMNS)
    assert [c["column"] for c in summary["columns"]] == [c.name for c in COLUMNS]


def test_shifted_columns_are_flagged_more_often_than_unshifted(trial_run):
    records, _, summary = trial_run
    by_key = {g["key"]: g for g in summary["groups"]}
    unshifted = by_key["unshifted"]["rate"]
    for key in ("mean", "variance", "category_mix", "all_shifted"):
        assert by_key[key]["rate"] > unshifted, key
        assert by_key[key]["mean_psi"] > by_key["unshifted"]["mean_psi"], key
    shifted_psi = np.median([r["psi"] for r in records if r["shifted"]])
    unshifted_psi = np.median([r["psi"] for r in records if not r["shifted"]])
    assert shifted_psi > unshifted_psi


def test_wilson_interval():
    low, high = wilson(95, 100)
    assert low < 0.95 < high and low >= 0 and high <= 1


def test_main_writes_the_json_report_without_evidently(tmp_path, capsys):
    out = tmp_path / "drift.json"
    code = main(["--trials", "2", "--rows", "1000", "--seed", "1", "--skip-evidently", "--output", str(out)])
    report = json.loads(out.read_text())
    assert code == (0 if report["all_targets_met"] else 1)
    assert {"platform", "cpu_count", "python", "numpy"} <= set(report["machine"])
    assert report["seed"] == 1 and report["trials"] == 2 and report["rows_reference"] == report["rows_current"] == 1000
    assert report["wall_time_seconds"] > 0 and "--trials 2" in report["command"]
    assert report["evidently"] == {"skipped": True, "error": None}
    assert report["decision"]["drift_config"]["min_psi"] == 0.02
    assert [g["key"] for g in report["groups"]][-1] == "unshifted"
    printed = capsys.readouterr().out
    assert "95% Wilson" in printed and "category mix" in printed and "Evidently" not in printed


# --- benchmarks/drift_real.py: the rules it compares and its report (the series themselves run in `make bench`)


def test_drift_real_baselines_are_the_rules_they_claim():
    from benchmarks.drift_real import rule_config
    from driftline.drift import build_reference, column_drift

    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(size=4000)})
    current = pd.DataFrame({"a": rng.normal(0.15, 1, size=4000), "b": rng.normal(1.5, 1, size=4000)})
    profile = build_reference(reference, None, {})
    fixed = column_drift(profile, current, rule_config("fixed_psi", {})).set_index("feature")
    old = column_drift(profile, current, rule_config("chi2", {})).set_index("feature")
    assert fixed.loc["a", "psi"] < 0.25 <= fixed.loc["b", "psi"]
    assert fixed["drifted"].to_dict() == {"a": False, "b": True}  # PSI >= 0.25 and nothing else
    assert old["drifted"].to_dict() == {"a": True, "b": True}  # the chi-square rule also calls the small shift
    assert rule_config("null", {"min_rows": 15}).min_rows == 15 and rule_config("null", {}).method == "null"


def test_drift_real_report_keeps_every_window_and_the_wrong_ones_in_full():
    from benchmarks.drift_real import RULES, WINDOW_FIELDS, render_json

    def record(kind: str, null: bool) -> dict:
        verdicts = {rule: {"detected": null if rule == "null" else True, "drift_share": 0.5} for rule in RULES}
        return {
            "series": "s",
            "kind": kind,
            "start": "2001-01-01",
            "end": "2001-02-01",
            "timestamps": 21,
            "rows": 84,
            "event": "e",
            **verdicts,
        }

    records = [record("calm", False), record("calm", True), record("break", True), record("break", False)]
    report = json.loads(render_json({"summary": {}, "records": records}))
    assert report["window_fields"] == list(WINDOW_FIELDS) and len(report["windows"]) == 4
    assert [row[WINDOW_FIELDS.index("null")] for row in report["windows"]] == [0, 1, 1, 0]
    assert [(r["kind"], r["null"]["detected"]) for r in report["null_rule_wrong"]] == [("calm", True), ("break", False)]


def test_drift_real_pools_only_the_targets_series_and_reports_earlier_recessions_apart():
    """The earlier recessions (``EARLIER_RECESSIONS``) have their own rates per series; the pooled rates the
    targets judge are those of ``SERIES`` alone."""
    from benchmarks.drift_real import EARLIER_RECESSIONS, RULES, SERIES, summarise

    def record(series: str, kind: str, detected: bool) -> dict:
        return {"series": series, "kind": kind, **{rule: {"detected": detected} for rule in RULES}}

    judged, extra = SERIES[0].name, EARLIER_RECESSIONS[0].name
    assert not EARLIER_RECESSIONS[0].judged and all(s.judged for s in SERIES)
    records = [record(judged, "break", True), record(judged, "calm", False)]
    records += [record(extra, "break", False)] * 3 + [record(extra, "calm", True)]
    null = summarise(records)["null"]
    assert (null["detection"]["flagged"], null["detection"]["windows"]) == (1, 1)
    assert (null["false_alarm"]["flagged"], null["false_alarm"]["windows"]) == (0, 1)
    assert (
        null["per_series"][extra]["detection"]["windows"] == 3 and null["per_series"][extra]["false_alarm"]["rate"] == 1
    )
