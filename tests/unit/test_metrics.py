"""Metrics on hand-made inputs whose answers can be worked out on paper."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftline.config import MetricsConfig
from driftline.metrics import (
    classification_metrics,
    expected_calibration_error,
    precision_at_k,
    reliability_curve,
    strategy_metrics,
)

# --- calibration error -------------------------------------------------------------------------------------------


def test_ece_is_zero_when_every_bin_is_calibrated():
    # Two equal-mass bins: p = 0.25 with one positive in four, p = 0.75 with three in four.
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([0, 1, 0, 0, 1, 1, 0, 1])
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.0, abs=1e-12)


def test_ece_is_large_for_inverted_probabilities():
    y = np.array([0] * 5 + [1] * 5)
    inverted = np.where(y == 1, 0.1, 0.9)
    assert expected_calibration_error(y, inverted, n_bins=2) == pytest.approx(0.9)
    assert expected_calibration_error(y, 1 - inverted, n_bins=2) == pytest.approx(0.1)


def test_ece_weights_bins_by_rows():
    p = np.array([0.5, 0.5, 0.5, 0.9])
    y = np.array([1, 1, 1, 1])
    # one bin per row here (n_bins > rows): |1 - 0.5| three times, |1 - 0.9| once
    assert expected_calibration_error(y, p, n_bins=10) == pytest.approx((3 * 0.5 + 0.1) / 4)


def test_reliability_curve_bins():
    p = np.array([0.1, 0.2, 0.8, 0.9])
    y = np.array([0, 1, 1, 1])
    curve = reliability_curve(y, p, n_bins=2)
    assert curve["rows"].tolist() == [2, 2]
    np.testing.assert_allclose(curve["mean_predicted"], [0.15, 0.85])
    np.testing.assert_allclose(curve["observed_rate"], [0.5, 1.0])


# --- precision@K -------------------------------------------------------------------------------------------------


def test_precision_at_k_by_hand():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.05, 0.15, 0.25])
    # Top 30% = 3 rows: p 0.9 (y 1), 0.8 (y 0), 0.7 (y 1) -> 2/3.
    assert precision_at_k(y, p, 0.3) == pytest.approx(2 / 3)
    # Top 10% = 1 row: the 0.9 -> 1.0; top 50% = 5 rows: adds 0.4 (0) and 0.3 (1) -> 3/5.
    assert precision_at_k(y, p, 0.1) == 1.0
    assert precision_at_k(y, p, 0.5) == pytest.approx(3 / 5)
    # K rounds up and is at least one row.
    assert precision_at_k(y, p, 0.01) == 1.0
    assert precision_at_k(y, p, 0.25) == pytest.approx(2 / 3)


# --- classification metrics ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outcomes() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=truth.size) < truth).astype(int)
    return y, truth


def test_informative_predictor_has_skill(outcomes):
    y, truth = outcomes
    values = classification_metrics(y, truth, MetricsConfig())
    assert values["brier_skill"] > 0.1
    assert values["auc"] > 0.7
    assert values["ece"] < 0.05
    assert values["brier"] < values["base_brier"]
    assert values["base_rate"] == pytest.approx(y.mean())
    assert values["rows"] == len(y)
    assert values["accuracy"] == pytest.approx(np.mean((truth >= 0.5) == y))
    assert set(values) >= {"accuracy", "auc", "brier", "log_loss", "ece", "precision_at_k", "brier_skill"}


def test_constant_base_rate_has_no_skill(outcomes):
    y, _ = outcomes
    constant = np.full(len(y), y.mean())
    values = classification_metrics(y, constant, MetricsConfig())
    assert values["brier_skill"] <= 1e-12
    assert values["brier"] == pytest.approx(values["base_brier"])
    assert values["auc"] == pytest.approx(0.5)


def test_worse_than_base_rate_has_negative_skill(outcomes):
    y, truth = outcomes
    assert classification_metrics(y, 1 - truth, MetricsConfig())["brier_skill"] < 0


def test_single_class_rows_have_no_auc():
    values = classification_metrics(np.ones(5, dtype=int), np.full(5, 0.7), MetricsConfig())
    assert math.isnan(values["auc"])
    assert math.isnan(values["brier_skill"])  # the base rate predicts perfectly
    assert values["log_loss"] == pytest.approx(-math.log(0.7))


# --- strategy -------------------------------------------------------------------------------------------------------


def _meta(returns: list[float], symbol: str = "A") -> pd.DataFrame:
    return pd.DataFrame(
        {"symbol": symbol, "timestamp": pd.bdate_range("2022-01-03", periods=len(returns)), "next_return": returns}
    )


def test_strategy_on_a_known_path():
    returns = [0.10, -0.20, 0.05, 0.03]
    meta = _meta(returns)
    p = np.array([0.9, 0.9, 0.9, 0.9])  # always long: equity follows the asset
    values = strategy_metrics(p, meta, MetricsConfig(periods_per_year=252))
    log_equity = np.cumsum(returns)  # 0.10, -0.10, -0.05, -0.02
    # Peak 0.10 after day one, trough -0.10 after day two: a fall of 1 - exp(-0.20).
    assert values["max_drawdown"] == pytest.approx(1 - math.exp(-0.20))
    assert 0 < values["max_drawdown"] < 1
    assert values["total_log_return"] == pytest.approx(log_equity[-1])
    expected_sharpe = np.mean(returns) / np.std(returns, ddof=1) * math.sqrt(252)
    assert values["sharpe"] == pytest.approx(expected_sharpe)
    assert values["exposure"] == 1.0
    assert values["hit_rate"] == pytest.approx(3 / 4)


def test_sharpe_sign_follows_the_positions():
    returns = [0.01, -0.02, 0.015, -0.01, 0.02, -0.005]
    meta = _meta(returns)
    right = np.array([0.9 if r > 0 else 0.1 for r in returns])
    wrong = 1 - right
    assert strategy_metrics(right, meta, MetricsConfig())["sharpe"] > 0
    # Long only on the losing days: every held period loses.
    assert strategy_metrics(wrong, meta, MetricsConfig())["sharpe"] < 0
    assert strategy_metrics(wrong, meta, MetricsConfig())["hit_rate"] == 0.0


def test_drawdown_from_the_start_counts():
    values = strategy_metrics(np.array([0.9]), _meta([-0.1]), MetricsConfig())
    assert values["max_drawdown"] == pytest.approx(1 - math.exp(-0.1))


def test_flat_strategy():
    values = strategy_metrics(np.zeros(4), _meta([0.1, -0.1, 0.2, 0.0]), MetricsConfig())
    assert values["sharpe"] == 0.0 and values["max_drawdown"] == 0.0 and values["exposure"] == 0.0
    assert math.isnan(values["hit_rate"])
    assert values["turnover"] == 0.0


def test_turnover_counts_position_changes():
    # Positions 1, 1, 0, 1, 0: entering counts, then changes on days 3, 4, 5 -> 4 trades in 5 periods.
    p = np.array([0.8, 0.7, 0.2, 0.9, 0.1])
    values = strategy_metrics(p, _meta([0.0] * 5), MetricsConfig())
    assert values["turnover"] == pytest.approx(4 / 5)
    assert values["exposure"] == pytest.approx(3 / 5)


def test_turnover_and_pnl_are_per_symbol_then_averaged():
    a = _meta([0.01, 0.02, 0.03], "A")
    b = _meta([-0.01, -0.02, -0.03], "B")
    meta = pd.concat([b, a], ignore_index=True)  # rows not in symbol order
    p = np.array([0.9, 0.1, 0.9, 0.9, 0.9, 0.9])  # B flips twice after entering, A holds
    values = strategy_metrics(p, meta, MetricsConfig())
    # Per timestamp: trades (A, B) = (1, 1), (0, 1), (0, 1) -> means 1, 0.5, 0.5.
    assert values["turnover"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    # Book return per timestamp is the mean over symbols of position * return.
    book = [(0.01 - 0.01) / 2, (0.02 + 0) / 2, (0.03 - 0.03) / 2]
    assert values["total_log_return"] == pytest.approx(sum(book))


def test_costs_reduce_the_return_by_turnover():
    meta = _meta([0.01, 0.02, -0.01, 0.03])
    p = np.array([0.9, 0.1, 0.9, 0.9])  # trades: 1, 1, 1, 0
    free = strategy_metrics(p, meta, MetricsConfig(cost_bps=0.0))
    costly = strategy_metrics(p, meta, MetricsConfig(cost_bps=10.0))
    assert free["total_log_return"] - costly["total_log_return"] == pytest.approx(3 * 10 / 1e4)


@pytest.mark.parametrize(
    "times, per_year",
    [
        (pd.bdate_range("2010-01-01", "2013-12-31"), 261),  # business days
        (pd.date_range("2010-01-01", periods=40, freq="YS"), 1),
        (pd.date_range("2020-01-01", periods=500, freq="30min"), 17532),
    ],
)
def test_the_sharpe_ratio_is_annualised_by_the_datas_own_timestamps_per_year(times, per_year):
    from driftline.metrics import timestamps_per_year

    assert timestamps_per_year(pd.Index(times)) == pytest.approx(per_year, rel=0.01)
    rng = np.random.default_rng(3)
    meta = pd.DataFrame({"symbol": "A", "timestamp": times, "next_return": rng.normal(0.001, 0.01, len(times))})
    p = np.full(len(times), 0.9)  # always long
    auto = strategy_metrics(p, meta, MetricsConfig())["sharpe"]
    fixed = strategy_metrics(p, meta, MetricsConfig(periods_per_year=252))["sharpe"]
    assert auto == pytest.approx(fixed * math.sqrt(timestamps_per_year(pd.Index(times)) / 252))


def test_row_numbers_for_times_annualise_as_daily():
    from driftline.metrics import timestamps_per_year

    assert timestamps_per_year(pd.Index(np.arange(500))) == 252.0
