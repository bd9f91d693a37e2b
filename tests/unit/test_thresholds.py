"""Action thresholds tuned on the calibration slice, and the calibrated model acting on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.naive_bayes import GaussianNB

from driftline.calibration import CalibratedModel
from driftline.config import CalibrationConfig, ThresholdConfig
from driftline.thresholds import tune_threshold


@pytest.mark.parametrize(("low", "high", "expected"), [(0.3, 0.7, 0.5), (0.6, 0.9, 0.6), (0.1, 0.4, 0.4)])
def test_none_keeps_one_half_within_the_bounds(low, high, expected):
    assert tune_threshold(np.array([0, 1]), np.array([0.2, 0.9]), "none", low, high) == expected


def test_f1_by_hand():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.8, 0.6, 0.55, 0.2])
    # Acting at p >= t: t in (0.55, 0.60] catches both positives and nothing else (F1 = 1); of the tied
    # grid points 0.56..0.60 the one nearest 0.5 wins.
    assert tune_threshold(y, p, "f1", 0.3, 0.7) == pytest.approx(0.56)


def test_strategy_return_by_hand():
    p = np.array([0.35, 0.45, 0.65])
    returns = np.array([-1.0, 2.0, 1.0])
    # Acting on p >= t sums to 2 (t <= .35), 3 (.35 < t <= .45), 1 (.45 < t <= .65), 0 above.
    assert tune_threshold(np.array([0, 1, 1]), p, "strategy_return", 0.3, 0.7, returns=returns) == pytest.approx(0.45)


def test_precision_at_k_acts_on_the_top_rows():
    p = np.linspace(0.0, 1.0, 101)
    assert tune_threshold(np.zeros(101), p, "precision_at_k", 0.1, 0.95, top_k_fraction=0.2) == pytest.approx(0.8)
    assert tune_threshold(np.zeros(101), p, "precision_at_k", 0.3, 0.7, top_k_fraction=0.2) == pytest.approx(0.7)


def test_flat_objective_keeps_one_half():
    assert tune_threshold(np.array([1, 0, 1]), np.array([0.95, 0.96, 0.99]), "f1", 0.3, 0.7) == pytest.approx(0.5)


def test_bad_objectives():
    with pytest.raises(ValueError, match="needs next-period returns"):
        tune_threshold(np.array([0, 1]), np.array([0.4, 0.6]), "strategy_return", 0.3, 0.7)
    with pytest.raises(ValueError, match="unknown threshold objective 'sharpe'"):
        tune_threshold(np.array([0, 1]), np.array([0.4, 0.6]), "sharpe", 0.3, 0.7)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((600, 2))
    y = (rng.uniform(size=600) < 1 / (1 + np.exp(-2 * x[:, 0] + 1.0))).astype(int)  # minority positives
    return pd.DataFrame(x, columns=["a", "b"]), y


def test_model_acts_on_its_tuned_threshold(data):
    X, y = data
    model = CalibratedModel.from_config(
        GaussianNB(),
        CalibrationConfig(fraction=0.3),
        gap=0,
        threshold=ThresholdConfig(objective="f1", min=0.3, max=0.7),
    ).fit(X, y)
    assert 0.3 <= model.threshold_ <= 0.7
    p = model.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(model.predict(X), (p >= model.threshold_).astype(int))
    cal = slice(len(y) - model.n_calibration_rows_, len(y))
    assert model.threshold_ == tune_threshold(y[cal], p[cal], "f1", 0.3, 0.7)


def test_strategy_objective_without_returns_falls_back_to_f1(data):
    X, y = data
    common = dict(method="sigmoid", fraction=0.3, threshold_bounds=(0.3, 0.7))
    f1 = CalibratedModel(GaussianNB(), threshold_objective="f1", **common).fit(X, y)
    strategy = CalibratedModel(GaussianNB(), threshold_objective="strategy_return", **common).fit(X, y)
    assert strategy.threshold_ == f1.threshold_
    with_returns = CalibratedModel(GaussianNB(), threshold_objective="strategy_return", **common)
    returns = np.where(y == 1, 0.01, -0.01)
    assert 0.3 <= with_returns.fit(X, y, returns=returns).threshold_ <= 0.7
