"""CalibratedModel: base model on the earlier rows, calibrator on the latest slice, honest probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.naive_bayes import GaussianNB

from driftline.calibration import PROBABILITY_FLOOR, CalibratedModel
from driftline.config import CalibrationConfig
from driftline.errors import InsufficientDataError
from driftline.metrics import expected_calibration_error

N_TRAIN = 1000


@pytest.fixture(scope="module")
def overconfident() -> tuple[pd.DataFrame, np.ndarray]:
    """One latent signal seen through 12 noisy copies: naive Bayes counts it 12 times and is overconfident."""
    rng = np.random.default_rng(0)
    n = 1600
    signal = rng.standard_normal(n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-signal))).astype(int)
    X = pd.DataFrame(signal[:, None] + 0.3 * rng.standard_normal((n, 12)), columns=[f"f{i}" for i in range(12)])
    return X, y


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_lowers_ece_on_later_rows(overconfident, method):
    X, y = overconfident
    model = CalibratedModel(GaussianNB(), method=method, fraction=0.3, gap=5)
    model.fit(X.iloc[:N_TRAIN], y[:N_TRAIN])
    later_X, later_y = X.iloc[N_TRAIN:], y[N_TRAIN:]
    raw = model.predict_proba_uncalibrated(later_X)[:, 1]
    calibrated = model.predict_proba(later_X)[:, 1]
    ece_raw = expected_calibration_error(later_y, raw)
    ece_calibrated = expected_calibration_error(later_y, calibrated)
    assert ece_raw > 0.15, "the base model should be clearly miscalibrated for this test to mean anything"
    assert ece_calibrated < 0.6 * ece_raw


def test_base_model_and_calibrator_see_disjoint_slices(overconfident):
    X, y = overconfident
    X, y = X.iloc[:N_TRAIN], y[:N_TRAIN]
    gap = 10
    model = CalibratedModel(GaussianNB(), method="sigmoid", fraction=0.2, gap=gap).fit(X, y)
    n_cal = round(N_TRAIN * 0.2)
    fit_end = N_TRAIN - n_cal - gap
    assert model.n_calibration_rows_ == n_cal
    # The base model is exactly a model fitted on the rows before the purge gap.
    reference = GaussianNB().fit(X.iloc[:fit_end], y[:fit_end])
    np.testing.assert_allclose(model.base_estimator_.theta_, reference.theta_)
    probe = X.iloc[:50]

    def refit(labels: np.ndarray) -> np.ndarray:
        return CalibratedModel(GaussianNB(), method="sigmoid", fraction=0.2, gap=gap).fit(X, labels).predict_proba(probe)

    baseline = model.predict_proba(probe)
    purged = y.copy()
    purged[fit_end : fit_end + gap] = 1 - purged[fit_end : fit_end + gap]
    np.testing.assert_array_equal(refit(purged), baseline)  # rows in the gap are used by nobody
    calibration_changed = y.copy()
    calibration_changed[-n_cal:] = 1 - calibration_changed[-n_cal:]
    assert not np.allclose(refit(calibration_changed), baseline)  # the calibrator does learn from the last slice


def test_calibration_slice_is_counted_in_timestamps(overconfident):
    X, y = overconfident
    X, y = X.iloc[:400], y[:400]
    times = np.repeat(np.arange(200), 2)  # a two-symbol panel
    model = CalibratedModel(GaussianNB(), fraction=0.25).fit(X, y, times)
    assert model.n_calibration_rows_ == 2 * 50


def test_probabilities_stay_inside_the_floor():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(400)
    X = pd.DataFrame({"x": x})
    y = (x > 0).astype(int)  # separable: isotonic maps whole regions to exactly 0 and 1
    model = CalibratedModel(GaussianNB(), method="isotonic", fraction=0.3).fit(X, y)
    proba = model.predict_proba(pd.DataFrame({"x": np.linspace(-4, 4, 200)}))
    positive = proba[:, 1]
    assert positive.min() >= PROBABILITY_FLOOR and positive.max() <= 1 - PROBABILITY_FLOOR
    # Class 0 is 1 - p: the same bounds up to float rounding of the subtraction.
    assert proba.min() >= PROBABILITY_FLOOR - 1e-12 and proba.max() <= 1 - PROBABILITY_FLOOR + 1e-12
    assert np.isclose(proba[:, 1].min(), PROBABILITY_FLOOR) and np.isclose(proba[:, 1].max(), 1 - PROBABILITY_FLOOR)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_single_class_calibration_slice(overconfident):
    X, y = overconfident
    X, y = X.iloc[:500], y[:500].copy()
    y[-100:] = 1
    with pytest.raises(InsufficientDataError, match="calibration part"):
        CalibratedModel(GaussianNB(), fraction=0.2).fit(X, y)


def test_single_class_fitting_part(overconfident):
    X, y = overconfident
    X, y = X.iloc[:500], y[:500].copy()
    y[:400] = 0
    with pytest.raises(InsufficientDataError, match="fitting part"):
        CalibratedModel(GaussianNB(), fraction=0.2).fit(X, y)


def test_sklearn_conventions(overconfident):
    X, y = overconfident
    model = CalibratedModel(GaussianNB(), method="isotonic", fraction=0.25, gap=3)
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    with pytest.raises(NotFittedError):
        model.predict_proba_uncalibrated(X)
    assert model.fit(X.iloc[:600], y[:600]) is model
    assert list(model.classes_) == [0, 1]
    assert list(model.feature_names_in_) == list(X.columns)
    proba = model.predict_proba(X.iloc[600:700])
    np.testing.assert_array_equal(model.predict(X.iloc[600:700]), (proba[:, 1] >= 0.5).astype(int))
    twin = clone(model)
    assert twin.get_params()["method"] == "isotonic" and twin.get_params()["gap"] == 3
    assert not hasattr(twin, "calibrator_")


def test_from_config():
    model = CalibratedModel.from_config(GaussianNB(), CalibrationConfig(method="isotonic", fraction=0.3), gap=7)
    assert (model.method, model.fraction, model.gap) == ("isotonic", 0.3, 7)
