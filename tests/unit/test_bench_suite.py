"""The benchmark harness: targets judged the right way round, missing parts reported as not run."""

from __future__ import annotations

import json

from benchmarks import run as bench


def test_targets_compare_in_their_direction():
    speed = next(t for t in bench.TARGETS if t.key == "drift_speedup_vs_evidently")
    ratio = next(t for t in bench.TARGETS if t.key == "cached_rerun_ratio")
    assert speed.met(60) and not speed.met(49.9)
    assert ratio.met(0.01) and not ratio.met(0.06)
    assert speed.met(None) is None


def test_every_key_the_issue_names_is_a_target():
    keys = {t.key for t in bench.TARGETS}
    assert {
        "drift_speedup_vs_evidently",
        "drift_verdict_agreement",
        "flow_overhead_ratio",
        "cached_rerun_ratio",
        "scale_1m_seconds",
        "scale_1m_peak_rss_gib",
        "scale_growth_ratio",
        "dask_speedup",
        "false_promotion_rate",
        "promotion_power",
        "drift_detection_rate",
        "drift_false_alarm_rate",
        "cli_help_seconds",
        "local_overhead_ratio",
    } <= keys


def test_a_missed_target_fails_unless_no_fail_and_a_broken_part_always_fails(tmp_path, monkeypatch):
    # dask_speedup is a timing, not robust at quick size: --no-fail only reports its miss.
    monkeypatch.setattr(bench, "PARTS", {"fake": lambda quick: {"dask_speedup": 1.0}})
    out = tmp_path / "latest.json"
    assert bench.main(["--output", str(out)]) == 1
    payload = json.loads(out.read_text())
    assert payload["targets"]["dask_speedup"]["met"] is False and payload["machine"] and payload["generated_at"]
    assert bench.main(["--output", str(out), "--no-fail"]) == 0

    def broken(quick):
        raise RuntimeError("boom")

    monkeypatch.setattr(bench, "PARTS", {"fake": broken})
    assert bench.main(["--output", str(out), "--no-fail"]) == 2
    assert json.loads(out.read_text())["errors"]["fake"] == "RuntimeError: boom"


def test_a_part_not_built_is_reported_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "PARTS", {"ghost": bench._module("no_such_benchmark")})
    out = tmp_path / "latest.json"
    assert bench.main(["--output", str(out), "--no-fail"]) == 0
    payload = json.loads(out.read_text())
    assert "ghost" in payload["not_built"] and payload["targets"]["dask_speedup"]["met"] is None


def test_update_refreshes_some_parts_and_keeps_the_others(tmp_path, monkeypatch):
    out = tmp_path / "latest.json"
    monkeypatch.setattr(
        bench, "PARTS", {"a": lambda quick: {"cli_help_seconds": 0.3}, "b": lambda quick: {"dask_speedup": 1.0}}
    )
    assert bench.main(["--output", str(out), "--no-fail"]) == 0
    monkeypatch.setattr(
        bench, "PARTS", {"a": lambda quick: {"cli_help_seconds": 0.3}, "b": lambda quick: {"dask_speedup": 1.8}}
    )
    assert bench.main(["--output", str(out), "--only", "b", "--update"]) == 0
    payload = json.loads(out.read_text())
    assert payload["cli_help_seconds"] == 0.3 and payload["dask_speedup"] == 1.8
    assert payload["targets"]["dask_speedup"]["met"] is True
    assert [r["command"].endswith("--update") for r in payload["runs"]] == [False, True]
    # Each run records the run-to-run timings it measured itself, not the ones --update kept.
    assert [r["figures"] for r in payload["runs"]] == [{"cli_help_seconds": 0.3}, {}]
    # Without --update the file holds only what this invocation measured.
    assert bench.main(["--output", str(out), "--only", "b", "--no-fail"]) == 0
    assert "cli_help_seconds" not in json.loads(out.read_text())


def test_the_relay_load_part_is_registered():
    assert "relay" in bench.PARTS
    target = next(t for t in bench.TARGETS if t.key == "relay_5xx")
    assert target.met(0) and not target.met(1)
    delivery = next(t for t in bench.TARGETS if t.key == "relay_delivery_errors")
    assert delivery.met(0) and not delivery.met(1) and delivery.robust_at_quick  # one lost event is a bug at any size


def test_quick_runs_two_parts_at_once(tmp_path, monkeypatch):
    import threading

    both_running = threading.Barrier(2, timeout=10)  # serial parts would break it: the first waits alone

    def part(key):
        def measure(quick):
            both_running.wait()
            return {key: 1.0}

        return measure

    monkeypatch.setattr(
        bench, "PARTS", {"promotion": part("promotion_power"), "detection": part("drift_detection_rate")}
    )
    out = tmp_path / "latest-quick.json"
    assert bench.main(["--quick", "--output", str(out), "--no-fail"]) == 0
    payload = json.loads(out.read_text())
    assert payload["errors"] == {} and payload["jobs"] == 2 and payload["shared_prefect_api"] is False
    assert payload["promotion_power"] == 1.0 and payload["drift_detection_rate"] == 1.0
    assert (
        bench.main(["--quick", "--jobs", "1", "--output", str(out), "--no-fail"]) == 2
    )  # one at a time: the barrier breaks
