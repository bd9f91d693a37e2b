"""Smoke test of benchmarks/promotion_power.py: the simulation runs, reports what it should, and behaves.

The benchmark itself (hundreds of simulations) is run by hand or in CI; here a few dozen are enough to
check the structure and that a real improvement is promoted more often than noise.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

from benchmarks.promotion_power import (
    SCENARIOS,
    World,
    main,
    model_noise,
    model_probability,
    run_scenario,
    simulate_world,
    wilson,
)

SIMS = 20
BY_KEY = {s.key: s for s in SCENARIOS}


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    world = World()
    return {
        key: run_scenario(BY_KEY[key], world, SIMS, seed=0)
        for key in ("null-equal", "null-no-skill-first", "power-better", "power-first")
    }


def test_world_labels_follow_the_true_probability_and_are_autocorrelated():
    world = World(timestamps=100, train_timestamps=100)
    data = simulate_world(world, 50, np.random.default_rng(0))
    p, y = expit(data["logit"]), data["y"]
    assert y.shape == p.shape == (50, 100 + world.gap + 100, world.symbols)
    assert abs(y.mean() - p.mean()) < 0.02
    centred = y - y.mean(axis=1, keepdims=True)
    lag1 = (centred[:, 1:] * centred[:, :-1]).mean() / (centred**2).mean()
    assert lag1 > 0.3  # overlapping-horizon labels: strongly autocorrelated
    calibrated = model_probability(data["logit"], np.zeros_like(data["logit"]), 0.0, world, calibrated=True)
    np.testing.assert_allclose(calibrated, p)
    noise = model_noise(world, 50, np.random.default_rng(1))
    assert noise.shape == (50, world.timestamps, world.symbols) and abs(noise.std() - 1) < 0.1


def test_wilson_interval():
    low, high = wilson(10, 200)
    assert low < 0.05 < high and low >= 0 and high <= 1
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == pytest.approx(1.0)


def test_summaries_carry_the_reported_numbers(results):
    for key, summary in results.items():
        assert summary["key"] == key and summary["sims"] == SIMS
        assert 0 <= summary["promotions"] <= summary["ci_only_promotions"] <= SIMS
        assert summary["rate"] == summary["promotions"] / SIMS
        low, high = summary["wilson_95"]
        assert low <= summary["rate"] <= high
        assert summary["target"] in ("<= 5%", ">= 80%")
        assert isinstance(summary["passed"], bool) and 0 <= summary["naive_rate"] <= 1


def test_a_real_improvement_is_promoted_more_often_than_noise(results):
    worst_null = max(results["null-equal"]["rate"], results["null-no-skill-first"]["rate"])
    assert results["power-better"]["rate"] > worst_null
    assert results["power-first"]["rate"] > worst_null
    # The improvement is real on average, the null is not; the naive rule promotes noise far more often.
    assert results["power-better"]["mean_log_loss_gain_per_row"] > 0.01
    assert abs(results["null-equal"]["mean_log_loss_gain_per_row"]) < 0.02
    assert results["null-equal"]["naive_rate"] > results["null-equal"]["rate"]


def test_main_writes_the_json_report(tmp_path, capsys):
    out = tmp_path / "promotion.json"
    code = main(["--sims", "3", "--seed", "1", "--output", str(out)])
    report = json.loads(out.read_text())
    assert code == (0 if report["all_targets_met"] else 1)
    assert [s["key"] for s in report["scenarios"]] == [s.key for s in SCENARIOS]
    assert {"platform", "cpu_count", "python", "numpy"} <= set(report["machine"])
    assert report["seed"] == 1 and report["sims_per_scenario"] == 3 and report["wall_time_seconds"] > 0
    assert report["decision"]["block_length"] == 10 and report["decision"]["price_target"] is False
    assert "--sims 3" in report["command"]
    printed = capsys.readouterr().out
    assert "null: equally good" in printed and "95% Wilson" in printed


def test_a_challenger_without_an_edge_on_its_training_period_is_judged_as_the_base_rate(results):
    from driftline.config import CalibrationConfig

    # Off by default (calibration.require_edge null): every challenger is judged as it is.
    assert all(summary["without_edge"] == 0 for summary in results.values())
    # On, as the pipeline applies it to its challenger family's walk-forward rows: a no-skill model seldom shows
    # an edge over the base rate on the 500 training timestamps, a skilled one does.
    on = CalibrationConfig(require_edge=0.95)
    no_skill = run_scenario(BY_KEY["null-no-skill-first"], World(), SIMS, seed=0, calibration=on)
    better = run_scenario(BY_KEY["power-better"], World(), SIMS, seed=0, calibration=on)
    assert no_skill["without_edge"] >= 0.8 * SIMS and better["without_edge"] == 0
    assert better["promotions"] == results["power-better"]["promotions"]
    # The base rate judged against itself: never "better", where the no-skill model's noise sometimes looked so.
    assert no_skill["naive_rate"] < results["null-no-skill-first"]["naive_rate"]
