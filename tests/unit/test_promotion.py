"""Champion/challenger decisions: who gets promoted, who is rejected, and the numbers behind it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftline.config import DecisionSpec, PromotionConfig
from driftline.metrics import BinnedEce
from driftline.promotion import (
    Decision,
    EvaluationSet,
    Reason,
    Scores,
    constant_scores,
    decide_promotion,
    keep_champion,
    moving_block_bootstrap,
    paired_difference_ci,
    row_losses,
)

N_TIMES = 400
PROMOTION = PromotionConfig(n_bootstrap=300, min_rows=200)
BLOCK = 10


@pytest.fixture(scope="module")
def evaluation() -> tuple[EvaluationSet, np.ndarray]:
    """Two symbols on 400 timestamps; labels drawn from known true probabilities."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.1, 0.9, 2 * N_TIMES)
    y = (rng.uniform(size=truth.size) < truth).astype(int)
    rows = EvaluationSet(y=y, times=np.repeat(np.arange(N_TIMES), 2), symbols=np.tile(["A", "B"], N_TIMES))
    return rows, truth


def _scores(name: str, p: np.ndarray) -> Scores:
    return Scores(name, np.asarray(p, dtype=float), (np.asarray(p) >= 0.5).astype(int))


def _decide(rows: EvaluationSet, challenger: np.ndarray, champion: np.ndarray | None, **config) -> Decision:
    """Against the champion's scores; without one, a first model against the base rate."""
    return decide_promotion(
        rows,
        _scores("challenger", challenger),
        constant_scores(float(rows.y.mean()), len(rows)) if champion is None else _scores("champion v1", champion),
        DecisionSpec(promotion=PROMOTION.model_copy(update=config), block_length=BLOCK),
        first_model=champion is None,
    )


def _reason(decision: Decision, check: str) -> Reason:
    return next(r for r in decision.reasons if r.check == check)


# --- first model: against the base rate ------------------------------------------------------------------------------


def test_first_model_that_beats_the_base_rate_is_promoted(evaluation):
    rows, truth = evaluation
    decision = _decide(rows, truth, None)
    assert decision.action == "promote" and decision.promote
    assert all(r.passed for r in decision.reasons)
    better = _reason(decision, "log_loss-better")
    # Reasons carry their numbers: the upper CI bound against 0, and the same numbers in the text.
    assert better.value == pytest.approx(decision.comparison["ci_high"]) and better.value < 0
    assert better.threshold == 0.0
    assert f"{decision.comparison['diff']:+.5f}" in better.detail
    assert decision.comparison["baseline"].startswith("base rate")
    assert decision.comparison["ci_low"] <= decision.comparison["diff"] <= decision.comparison["ci_high"]
    rows_reason = _reason(decision, "min-rows")
    assert (rows_reason.value, rows_reason.threshold) == (len(rows), PROMOTION.min_rows)
    assert str(len(rows)) in str(rows_reason)
    ece = _reason(decision, "ece-cap")
    assert ece.value == pytest.approx(decision.scores["challenger"]["ece"]) and ece.threshold == PROMOTION.ece_cap


def test_first_model_worse_than_the_base_rate_is_rejected(evaluation):
    rows, truth = evaluation
    decision = _decide(rows, 1 - truth, None)
    assert decision.action == "reject" and not decision.promote
    better = _reason(decision, "log_loss-better")
    assert not better.passed and better.value > 0
    assert str(better).startswith("FAIL log_loss-better")


def test_comparison_diff_is_the_mean_per_timestamp_loss_difference(evaluation):
    rows, truth = evaluation
    decision = _decide(rows, truth, None)
    ours = row_losses(rows.y, truth)["log_loss"]
    base = row_losses(rows.y, np.full(len(rows), rows.y.mean()))["log_loss"]
    per_time = (ours - base).reshape(N_TIMES, 2).mean(axis=1)
    assert decision.comparison["diff"] == pytest.approx(per_time.mean())
    assert decision.scores["challenger"]["log_loss"] == pytest.approx(ours.mean())


# --- with a champion --------------------------------------------------------------------------------------------------


def test_challenger_no_better_than_the_champion_keeps_the_champion(evaluation):
    rows, truth = evaluation
    decision = _decide(rows, truth, truth)
    assert decision.action == "keep-champion"
    assert decision.comparison["diff"] == 0.0
    assert not _reason(decision, "log_loss-better").passed


def test_clearly_better_challenger_replaces_the_champion(evaluation):
    rows, truth = evaluation
    timid_champion = 0.5 + 0.3 * (truth - 0.5)  # same ranking, probabilities squeezed towards 0.5
    decision = _decide(rows, truth, timid_champion)
    assert decision.action == "promote"
    auc = _reason(decision, "auc")
    assert auc.passed and auc.threshold == pytest.approx(decision.scores["baseline"]["auc"] - PROMOTION.auc_tolerance)


def test_worse_challenger_keeps_the_champion(evaluation):
    rows, truth = evaluation
    decision = _decide(rows, 1 - truth, truth)
    assert decision.action == "keep-champion"
    assert {r.check for r in decision.reasons if not r.passed} >= {"log_loss-better", "auc"}


def test_a_challenger_that_ranks_nothing_fails_the_auc_floor_saying_why(evaluation):
    # Before: "AUC nan vs champion v1 0.7... (floor 0.7...)": a constant forecast (a tree of one leaf on a short
    # window) has no AUC.
    rows, truth = evaluation
    decision = _decide(rows, np.full(len(truth), 0.3), truth)
    auc = _reason(decision, "auc")
    assert not auc.passed and decision.action == "keep-champion"
    assert auc.detail.startswith("AUC undefined: every row gets the same probability (0.3000), ranking none against")
    assert "nan" not in auc.detail


def test_a_guardrail_alone_blocks_promotion(evaluation):
    rows, truth = evaluation
    skewed = truth**3  # ranks perfectly, but far from calibrated
    decision = _decide(rows, skewed, 1 - truth)
    assert _reason(decision, "log_loss-better").passed
    assert not _reason(decision, "ece-cap").passed
    assert decision.action == "keep-champion"


def test_too_few_evaluation_rows(evaluation):
    rows, truth = evaluation
    decision = _decide(rows, truth, None, min_rows=10_000)
    assert decision.action == "reject"
    assert not _reason(decision, "min-rows").passed
    assert _reason(decision, "log_loss-better").passed  # it was only the row count


def test_single_class_evaluation_rows():
    rows = EvaluationSet(y=np.ones(300, dtype=int), times=np.arange(300), symbols=np.full(300, "A"))
    p = np.full(300, 0.8)
    assert _decide(rows, p, None).action == "reject"
    decision = _decide(rows, p, p)
    assert decision.action == "keep-champion"
    assert _reason(decision, "two-classes").passed is False


def test_price_target_adds_strategy_guardrails(evaluation):
    rows, truth = evaluation
    priced = EvaluationSet(
        y=rows.y, times=rows.times, symbols=rows.symbols, next_return=np.where(rows.y == 1, 0.01, -0.01)
    )
    spec = DecisionSpec(promotion=PROMOTION, block_length=BLOCK, is_direction=True)
    decision = decide_promotion(priced, _scores("c", truth), _scores("champion v1", 1 - truth), spec)
    assert {"sharpe", "max-drawdown"} <= {r.check for r in decision.reasons}
    assert decision.scores["challenger"]["sharpe"] > decision.scores["baseline"]["sharpe"]
    assert decision.action == "promote"


def test_a_first_models_drawdown_is_held_to_the_assets_when_the_baseline_never_trades(evaluation):
    # Persistence on a falling series is never long: its drawdown is 0, and capping a first model at 0 + 0.05
    # rejected a model that beat it on every other count (the monthly US unemployment rate: hold-out log loss
    # 0.148 lower, AUC 0.81, Sharpe 5.7, drawdown 0.085). Its risk is now held to the asset's own.
    rows, truth = evaluation
    priced = EvaluationSet(
        y=rows.y, times=rows.times, symbols=rows.symbols, next_return=np.where(rows.y == 1, 0.03, -0.03)
    )
    spec = DecisionSpec(promotion=PROMOTION, block_length=BLOCK, is_direction=True)
    never_long = _scores("persistence", np.full(rows.y.size, 0.3))

    def first(p: np.ndarray) -> Decision:
        return decide_promotion(priced, _scores("c", p), never_long, spec, first_model=True)

    good = first(truth)
    risk = _reason(good, "max-drawdown")
    assert good.scores["baseline"]["max_drawdown"] == 0.0
    assert PROMOTION.drawdown_tolerance < risk.value < risk.threshold - PROMOTION.drawdown_tolerance
    assert risk.passed and "vs holding the asset" in risk.detail and good.action == "promote"
    # Bad timing (long when a fall is likely) loses more than holding through everything: still rejected.
    bad = _reason(first(1 - truth), "max-drawdown")
    assert not bad.passed and "vs holding the asset" in bad.detail
    # Against a champion, the champion's own drawdown stays the reference.
    kept = decide_promotion(priced, _scores("c", truth), _scores("champion v1", np.full(rows.y.size, 0.3)), spec)
    assert not _reason(kept, "max-drawdown").passed and "vs champion v1 0.000" in _reason(kept, "max-drawdown").detail


def test_decision_serialises(evaluation):
    """decision.json is written from to_dict(): each check's ``passed`` must stay a real JSON boolean."""
    rows, truth = evaluation
    decision = _decide(rows, truth, None)
    assert all(type(r["passed"]) is bool for r in decision.to_dict()["reasons"])
    payload = json.loads(json.dumps(decision.to_dict()))
    assert payload["action"] == "promote" and payload["promote"] is True
    assert [r["check"] for r in payload["reasons"]] == [r.check for r in decision.reasons]
    assert "**promote**" in decision.markdown("Promotion")


def test_keep_champion_helper():
    decision = keep_champion("champion version 3 cannot score this run's rows")
    assert decision.action == "keep-champion" and not decision.promote
    assert str(decision.reasons[0]) == "FAIL comparable: champion version 3 cannot score this run's rows"


# --- statistics -----------------------------------------------------------------------------------------------------


def test_row_losses_by_hand():
    losses = row_losses(np.array([1, 0]), np.array([0.8, 0.25]))
    np.testing.assert_allclose(losses["log_loss"], [-np.log(0.8), -np.log(0.75)])
    np.testing.assert_allclose(losses["brier"], [0.04, 0.0625])
    assert np.isfinite(row_losses(np.array([1]), np.array([0.0]))["log_loss"]).all()


def test_block_as_long_as_the_series_resamples_the_series_itself():
    series = np.array([1.0, 5.0, 2.0, 8.0])
    means = moving_block_bootstrap(series, block_length=10, n_boot=50, rng=np.random.default_rng(0))
    np.testing.assert_allclose(means, series.mean())


def test_bootstrap_is_seeded_and_centred():
    series = np.random.default_rng(1).normal(0.3, 1.0, 500)
    first = moving_block_bootstrap(series, 5, 400, np.random.default_rng(3))
    second = moving_block_bootstrap(series, 5, 400, np.random.default_rng(3))
    np.testing.assert_array_equal(first, second)
    assert first.shape == (400,)
    assert abs(first.mean() - series.mean()) < 0.02
    assert 0.02 < first.std() < 0.09  # about 1/sqrt(500) for iid data


def test_paired_difference_averages_per_timestamp_first():
    times = np.array([0, 0, 0, 1])
    diff, low, high = paired_difference_ci(np.array([1.0, 1.0, 1.0, 0.0]), np.zeros(4), times, 1, 200, 0.95, 0)
    assert diff == pytest.approx(0.5)  # per timestamp: 1 and 0 (a row mean would say 0.75)
    assert low < diff < high  # two timestamps that disagree: a wide, non-degenerate interval


def test_interval_is_wider_than_the_bootstrap_percentiles_with_few_blocks():
    rng = np.random.default_rng(3)
    loss = rng.normal(0, 1, 120)
    diff, low, high = paired_difference_ci(loss, np.zeros(120), np.arange(120), 10, 2000, 0.95, 0)
    means = moving_block_bootstrap(loss, 10, 2000, np.random.default_rng(0))
    assert high - low > np.quantile(means, 0.975) - np.quantile(means, 0.025)
    assert low < diff < high


def test_constant_difference_has_a_degenerate_interval():
    diff, low, high = paired_difference_ci(np.full(50, 0.3), np.full(50, 0.1), np.arange(50), 5, 200, 0.9, 0)
    assert diff == pytest.approx(0.2) and low == pytest.approx(0.2) and high == pytest.approx(0.2)


# --- walk-forward calibration -----------------------------------------------------------------------------------------


def test_bad_walk_forward_ece_fails_the_gate_even_with_a_good_hold_out_ece(evaluation):
    rows, truth = evaluation
    good = np.clip(truth, 0.02, 0.98)  # calibrated on the hold-out: hold-out ECE passes, the loss test too

    def decide(walk_forward_ece: BinnedEce | None) -> Decision:
        return decide_promotion(
            rows,
            _scores("challenger", good),
            constant_scores(float(rows.y.mean()), len(rows)),
            DecisionSpec(promotion=PROMOTION, block_length=BLOCK),
            first_model=True,
            walk_forward_ece=walk_forward_ece,
        )

    bad = decide(BinnedEce(0.123, 10, 4000))
    assert not bad.promote and bad.action == "reject"
    assert _reason(bad, "ece-cap").passed
    failed = [r.check for r in bad.reasons if not r.passed]
    assert failed == ["walk-forward-ece-cap"]
    assert "walk-forward ECE 0.1230 over 10 equal-mass bins of 4000 rows" in str(_reason(bad, "walk-forward-ece-cap"))
    assert decide(BinnedEce(0.02, 10, 4000)).promote  # the same model with a calibrated walk-forward passes
    # Without a walk-forward number (the promotion benchmark's simulated windows) the check is not made.
    assert "walk-forward-ece-cap" not in [r.check for r in decide(None).reasons]


def test_a_champion_for_another_question_is_refused_naming_what_differs():
    from driftline.config import load_config
    from driftline.errors import ConfigError
    from driftline.promotion import check_same_question, prediction_question

    volatility = load_config(None, {"name": "demo"})
    assert prediction_question(volatility) == {"target": "volatility", "horizon": 5, "median_window": 250}
    # Settings that change how the label is predicted, not what it is, keep the question.
    check_same_question(
        "driftline-demo", "1", volatility, load_config(None, {"name": "demo"}, sets={"splits.n_splits": 3})
    )
    check_same_question("driftline-demo", "1", volatility, load_config(None, {"name": "demo", "target.label_delay": 7}))

    direction = load_config(None, {"name": "demo", "target.kind": "direction"})
    with pytest.raises(
        ConfigError,
        match=r"version 1\) predicts a different question than this run \(target 'volatility' -> 'direction', "
        r"median_window 250 -> None, dead_band None -> 0.0\).*--name demo-direction",
    ):
        check_same_question("driftline-demo", "1", volatility, direction)
    longer = load_config(None, {"name": "demo", "target.horizon": 10})
    with pytest.raises(ConfigError, match=r"horizon 5 -> 10.*--name demo-2"):
        check_same_question("driftline-demo", "1", volatility, longer)
    labels = [load_config(None, {"name": "x", "target.kind": "label", "data.target_col": col}) for col in ("y", "z")]
    with pytest.raises(ConfigError, match="label column 'y' -> 'z'"):
        check_same_question("driftline-x", "4", *labels)
    # One class against the rest, and a label some rows on, are questions of their own.
    flat, up = (
        load_config(None, {"name": "x", "target.kind": "label", "data.target_col": "y", "data.positive_label": c})
        for c in ("flat", "up")
    )
    with pytest.raises(ConfigError, match="positive class 'flat' -> 'up'"):
        check_same_question("driftline-x", "4", flat, up)
    later = load_config(None, {"name": "x", "target.kind": "label", "data.target_col": "y", "target.ahead": 6})
    with pytest.raises(ConfigError, match="rows ahead None -> 6"):
        check_same_question("driftline-x", "4", labels[0], later)


def test_a_hold_out_no_longer_than_one_block_still_gets_an_interval_with_spread():
    """10 yearly timestamps and the default block of 10: one block resamples only rotations of the series, whose
    means are all the sample's, so the interval had zero width and any sign promoted (a yearly panel did)."""
    from driftline.promotion import effective_block

    rng = np.random.default_rng(5)
    loss = rng.normal(-0.01, 0.05, 10)  # a small edge, 10 timestamps: nothing to be confident about
    diff, low, high = paired_difference_ci(loss, np.zeros(10), np.arange(10), 10, 2000, 0.95, 0)
    assert low < diff < high and high - low > 0.05 and low < 0 < high
    assert effective_block(10, 10) == 5 and effective_block(500, 10) == 10 and effective_block(1, 10) == 1
