"""CalibratedModel: base model on the earlier rows, calibrator on the latest slice, honest probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import log_loss
from sklearn.naive_bayes import GaussianNB

from driftline.calibration import (
    MIN_ROWS,
    ONE_CLASS_SLICE,
    PROBABILITY_FLOOR,
    CalibratedModel,
    Calibrator,
    fit_shrinkage,
    forms_for,
    level_shift,
    pooled_calibrator,
    select_fold_calibration,
    shift_level,
    shrink_folds,
    shrink_toward,
)
from driftline.config import CalibrationConfig
from driftline.errors import InsufficientDataError
from driftline.features import LEVEL_COLUMN
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
        return (
            CalibratedModel(GaussianNB(), method="sigmoid", fraction=0.2, gap=gap).fit(X, labels).predict_proba(probe)
        )

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


def test_a_single_class_calibration_slice_leaves_the_base_model_uncalibrated(overconfident):
    """A short window whose last fifth saw one regime: no calibrator can be fitted there, so the base model's
    own probability stands (no level shift toward a slice share of 0 or 1), named as such. ``auto``, which
    compares its slice forms on later folds, still stops."""
    X, y = overconfident
    X, y = X.iloc[:500], y[:500].copy()
    y[-100:] = 1
    model = CalibratedModel(GaussianNB(), fraction=0.2).fit(X, y)
    assert model.calibration_ == ONE_CLASS_SLICE and model.level_shift_ == 0.0 and model.shrinkage_ == 1.0
    raw = model.predict_proba_uncalibrated(X)[:, 1]
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], np.clip(raw, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR))
    with pytest.raises(InsufficientDataError, match="calibration part"):
        CalibratedModel(GaussianNB(), method="auto", fraction=0.2).fit(X, y)


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


# --- auto: the calibrator per fold, chosen on earlier rows only -------------------------------------------------------

FOLD_ROWS, N_FOLDS, GAP, FIRST_TEST = 400, 5, 5, 1000


def _folds(seed: int = 0, fold_rows: int = FOLD_ROWS) -> dict[str, object]:
    """The test rows of a walk-forward: an overconfident base model (its logit three times the truth's) and a
    window-slice sigmoid that is noisier than a calibrator fitted on many pooled rows."""
    rng = np.random.default_rng(seed)
    n = N_FOLDS * fold_rows
    z = rng.standard_normal(n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    p_raw = 1 / (1 + np.exp(-3 * z))
    fold = np.repeat(np.arange(1, N_FOLDS + 1), fold_rows)
    times = FIRST_TEST + np.arange(n)
    train_end = {k: FIRST_TEST + (k - 1) * fold_rows - GAP - 1 for k in range(1, N_FOLDS + 1)}
    window = {"sigmoid": 1 / (1 + np.exp(-(1.6 * z + 0.4)))}  # a slice's calibrator: too steep, biased
    return {"fold": fold, "times": times, "y": y, "p_raw": p_raw, "window": window, "train_end": train_end}


def test_auto_never_uses_a_folds_test_rows_or_its_purge_gap():
    data = _folds()
    base = select_fold_calibration(**data)
    for k in range(1, N_FOLDS + 1):
        # Every label from fold k's purge gap on (its test rows and all later ones) turned upside down.
        later = data["times"] > data["train_end"][k]
        flipped = select_fold_calibration(**{**data, "y": np.where(later, 1 - data["y"], data["y"])})
        rows = data["fold"] == k
        assert flipped.chosen[k] == base.chosen[k], f"fold {k}: the choice saw rows at or after its purge gap"
        np.testing.assert_array_equal(flipped.p[rows], base.p[rows], err_msg=f"fold {k}: its calibrator saw them")
        if k < N_FOLDS:
            # The labels do matter: the next fold's pooled calibrator learns from the flipped rows.
            nxt = data["fold"] == k + 1
            assert not np.allclose(flipped.candidates["pooled-sigmoid"][nxt], base.candidates["pooled-sigmoid"][nxt])


def test_auto_prefers_the_pooled_calibrator_once_earlier_folds_show_it_holds():
    """The pooled calibrator must have beaten the base model's own probability on two earlier folds."""
    data = _folds()
    choice = select_fold_calibration(**data)
    assert choice.chosen[1] == choice.chosen[2] == "none"  # no earlier evidence yet: the base model's probability
    assert choice.chosen[N_FOLDS].startswith("pooled-")
    assert choice.challenger.startswith("pooled-")
    y, p = data["y"], choice.p
    late = data["fold"] == N_FOLDS
    window_p, raw = data["window"]["sigmoid"], data["p_raw"]

    def loss(q: np.ndarray) -> float:
        return log_loss(y[late], q[late])

    assert loss(p) < loss(window_p) and loss(p) < loss(raw) - 0.05
    assert np.isfinite(p).all() and p.min() >= PROBABILITY_FLOOR


def test_auto_picks_sigmoid_on_few_rows(overconfident):
    assert forms_for(MIN_ROWS["beta"] - 1) == ("sigmoid",)
    assert forms_for(MIN_ROWS["isotonic"] - 1) == ("sigmoid", "beta")
    assert forms_for(MIN_ROWS["isotonic"]) == ("sigmoid", "beta", "isotonic")
    X, y = overconfident
    # A 600-row window: its 120-row calibration slice has rows for a sigmoid only, too few to trust over the
    # base model's own probability without walk-forward evidence. A 720-row slice adds beta, not isotonic.
    model = CalibratedModel(GaussianNB(), method="auto", fraction=0.2).fit(X.iloc[:600], y[:600])
    assert list(model.window_calibrators_) == ["sigmoid"] and model.calibration_ == "none"
    np.testing.assert_allclose(
        model.predict_proba(X.iloc[600:])[:, 1],
        np.clip(model.predict_proba_uncalibrated(X.iloc[600:])[:, 1], PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR),
    )
    model = CalibratedModel(GaussianNB(), method="auto", fraction=0.45).fit(X.iloc[:], y[:])
    assert list(model.window_calibrators_) == ["sigmoid", "beta"] and model.calibration_ == "none"
    # Folds of 150 rows: no pooled beta or isotonic until the earlier folds hold enough rows for them.
    choice = select_fold_calibration(**_folds(fold_rows=150))
    assert set(choice.chosen.values()) <= {"none", "window-sigmoid", "pooled-sigmoid"}
    assert np.isnan(choice.candidates["pooled-isotonic"]).all()
    assert np.isnan(choice.candidates["pooled-beta"][: 2 * 150]).all()


def test_beta_fits_an_asymmetric_distortion_better_than_a_sigmoid():
    rng = np.random.default_rng(3)
    q = rng.uniform(0.01, 0.99, 20_000)
    y = (rng.uniform(size=q.size) < q).astype(int)
    p = q**3  # an under-forecast that a logistic in logit p cannot undo, a beta map (q = p^(1/3)) can
    fitted = {form: Calibrator(form).fit(p[:10_000], y[:10_000]).predict(p[10_000:]) for form in ("sigmoid", "beta")}
    ece = {form: expected_calibration_error(y[10_000:], values) for form, values in fitted.items()}
    assert ece["beta"] < 0.02 < ece["sigmoid"]
    assert pooled_calibrator("window-beta", p, y) is None
    assert pooled_calibrator("pooled-beta", p, y).form == "beta"


@pytest.mark.parametrize("form", ["sigmoid", "beta"])
def test_a_slice_that_ranks_its_few_positives_backwards_gives_its_share_not_a_falling_map(form):
    """A rare label (16 positives in 3,116 slice rows) whose positives fell among the lowest scores: a Platt
    fit of -3.6 on logit p sent every lower score of the next fold to ~1 (LightGBM's log loss 0.93 against
    the base rate's 0.17 on half-hourly sea temperature spikes). The calibrator keeps the model's order."""
    rng = np.random.default_rng(11)
    p = rng.uniform(0.01, 0.08, 3116)
    y = np.zeros(p.size, dtype=int)
    y[np.argsort(p)[:16]] = 1  # the positives hold the lowest scores
    calibrator = Calibrator(form).fit(p, y)
    later = np.array([1e-4, 1e-3, 0.01, 0.05, 0.2])  # lower scores than any in the slice, and higher ones
    predicted = calibrator.predict(later)
    assert np.allclose(predicted, y.mean(), rtol=1e-3), predicted  # the slice's share of positives
    # A slice that ranks them the right way keeps an increasing map.
    y_right = np.zeros(p.size, dtype=int)
    y_right[np.argsort(p)[-16:]] = 1
    rising = Calibrator(form).fit(p, y_right).predict(later)
    assert (np.diff(rising) >= 0).all() and rising[-1] > rising[0] + 0.5


# --- shrinkage toward the base rate, fitted out of sample ------------------------------------------------------------


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(log_loss(y, p, labels=[0, 1]))


def test_shrinkage_ends_are_the_probability_and_the_base_rate():
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(shrink_toward(p, 0.3, 1.0), p)
    np.testing.assert_allclose(shrink_toward(p, 0.3, 0.0), 0.3)
    half = shrink_toward(p, 0.3, 0.5)
    assert (np.abs(half - 0.3) < np.abs(p - 0.3)).all() and (np.sign(half - 0.3) == np.sign(p - 0.3)).all()


def test_shrinkage_goes_to_the_base_rate_without_signal_and_stays_with_it():
    rng = np.random.default_rng(3)
    n = 2000
    z = rng.standard_normal(n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    base = float(y.mean())
    # A forecast that moves but knows nothing (a slice-fitted calibrator on noise): no weight.
    noise = 1 / (1 + np.exp(-(0.4 * rng.standard_normal(n) - 0.3)))
    assert fit_shrinkage(noise, base, y) < 0.05
    assert _log_loss(y, shrink_toward(noise, base, fit_shrinkage(noise, base, y))) < _log_loss(y, noise) - 0.02
    # The true probability: kept whole.
    assert fit_shrinkage(1 / (1 + np.exp(-z)), base, y) > 0.9
    # Too few rows, or one class: no evidence, no shrinkage.
    assert fit_shrinkage(noise[:50], base, y[:50]) == 1.0
    assert fit_shrinkage(noise, base, np.ones(n)) == 1.0


def test_shrink_folds_uses_only_earlier_folds_and_the_first_folds_slice():
    rng = np.random.default_rng(5)
    fold_rows, n_folds, gap = 300, 4, 5
    n = fold_rows * n_folds
    y = (rng.uniform(size=n) < 0.55).astype(int)  # no signal at all
    p = 1 / (1 + np.exp(-rng.normal(0.0, 0.8, n)))  # an over-confident calibrated forecast of noise
    fold = np.repeat(np.arange(1, n_folds + 1), fold_rows)
    times = 1000 + np.arange(n)
    train_end = {k: 1000 + (k - 1) * fold_rows - gap - 1 for k in range(1, n_folds + 1)}
    args = {"fold": fold, "times": times, "p": p, "base_rate": np.full(n, 0.55), "train_end": train_end}
    shrunk = shrink_folds(y=y, slice_weight={1: 0.25}, **args)
    assert shrunk.weights[1] == 0.25  # no earlier fold: the slice's weight
    assert all(shrunk.weights[k] < 0.1 for k in range(2, n_folds + 1))
    assert shrunk.challenger < 0.1
    later = fold > 1
    assert _log_loss(y[later], shrunk.p[later]) < _log_loss(y[later], p[later]) - 0.05
    for k in range(1, n_folds + 1):
        # Every label from fold k's test rows on turned upside down: fold k's predictions must not move.
        flipped = shrink_folds(y=np.where(times > train_end[k], 1 - y, y), slice_weight={1: 0.25}, **args)
        rows = fold == k
        np.testing.assert_array_equal(flipped.p[rows], shrunk.p[rows], err_msg=f"fold {k} saw its own labels")


def test_shrink_folds_keeps_a_model_whose_first_fold_gave_no_reason_to_shrink():
    """A real signal that loses to the base rate on one early fold (a regime it had not seen): without a
    record of shrinkage helping, the later folds keep the calibrated probability whole."""
    rng = np.random.default_rng(6)
    fold_rows, n_folds = 400, 4
    n = fold_rows * n_folds
    fold = np.repeat(np.arange(1, n_folds + 1), fold_rows)
    z = rng.standard_normal(n)
    p = 1 / (1 + np.exp(-z))
    y = (rng.uniform(size=n) < p).astype(int)
    y[fold == 1] = (rng.uniform(size=fold_rows) < 0.5).astype(int)  # fold 1: the signal failed there
    times = np.arange(n)
    train_end = {k: (k - 1) * fold_rows - 1 for k in range(1, n_folds + 1)}
    shrunk = shrink_folds(fold, times, y, p, np.full(n, 0.5), {1: 1.0}, train_end)
    assert shrunk.weights == dict.fromkeys(range(1, n_folds + 1), 1.0)
    np.testing.assert_allclose(shrunk.p, np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR))
    # The same folds when the first fold's slice had shrunk and that helped: fold 2 fits a weight on fold 1.
    started = shrink_folds(fold, times, y, p, np.full(n, 0.5), {1: 0.0}, train_end)
    assert started.weights[2] < 0.5


def test_calibrated_model_shrinks_a_forecast_of_noise_to_the_base_rate_and_keeps_a_real_one():
    rng = np.random.default_rng(10)
    n = 3000
    X = pd.DataFrame(rng.standard_normal((n, 6)), columns=[f"f{i}" for i in range(6)])
    noise_y = (rng.uniform(size=n) < 0.55).astype(int)
    signal_y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * X["f0"].to_numpy()))).astype(int)
    fitted = {}
    for name, y in (("noise", noise_y), ("signal", signal_y)):
        for shrink in (False, True):
            model = CalibratedModel(GaussianNB(), method="sigmoid", fraction=0.2, gap=5, shrink=shrink)
            fitted[name, shrink] = model.fit(X.iloc[:2000], y[:2000])
    later = X.iloc[2000:]
    shrunk = fitted["noise", True]
    assert shrunk.shrinkage_ == shrunk.slice_shrinkage_ < 0.2
    assert shrunk.base_rate_ == pytest.approx(noise_y[:2000].mean())
    p_shrunk = shrunk.predict_proba(later)[:, 1]
    unshrunk = fitted["noise", False].predict_proba(later)[:, 1]
    np.testing.assert_allclose(shrunk.predict_proba_calibrated(later), unshrunk)
    # On this seed the slice's sigmoid rises (noise that looks like signal there; a falling one would be
    # replaced by the slice's share, test above), so there is a spread for the shrinkage to take away.
    assert np.ptp(unshrunk) > 0.01
    assert np.ptp(p_shrunk) < 0.5 * np.ptp(unshrunk)
    assert _log_loss(noise_y[2000:], p_shrunk) <= _log_loss(
        noise_y[2000:], fitted["noise", False].predict_proba(later)[:, 1]
    )
    kept = fitted["signal", True]
    assert kept.shrinkage_ > 0.8
    assert fitted["noise", False].shrinkage_ == 1.0  # off: the calibrated probability as it was
    # A weight given (the walk-forward's) wins over the slice's.
    given = CalibratedModel(GaussianNB(), method="sigmoid", fraction=0.2, gap=5, shrink=True, shrinkage=0.0)
    np.testing.assert_allclose(
        given.fit(X.iloc[:2000], signal_y[:2000]).predict_proba(later)[:, 1], signal_y[:2000].mean()
    )


# --- the calibrated level: the calibration slice's share blended with the whole window's ----------------------------


def test_level_shift_blends_the_slice_share_toward_the_window_share_in_logit_space():
    def logit(q: float) -> float:
        return float(np.log(q / (1 - q)))

    assert level_shift(0.55, 0.40, 0.0) == 0.0
    assert level_shift(0.55, 0.40, 1.0) == pytest.approx(logit(0.55) - logit(0.40))
    assert level_shift(0.55, 0.40, 0.5) == pytest.approx(0.5 * (logit(0.55) - logit(0.40)))
    assert level_shift(0.40, 0.55, 0.5) < 0 < level_shift(0.55, 0.40, 0.5)
    p = np.array([0.2, 0.4, 0.6])
    np.testing.assert_allclose(shift_level(p, 0.0), p)
    np.testing.assert_allclose(shift_level(p, logit(0.55) - logit(0.40)), [0.3143, 0.55, 0.7333], atol=1e-3)


def test_calibrated_model_level_moves_from_a_regime_slice_toward_the_window_and_wins_on_later_rows():
    """A series whose share of positives dips in the calibration slice (a bear quarter) and comes back: the
    slice's sigmoid alone forecasts the dip's level on the next rows; half the way to the window's share
    loses less, the full way further still here; ``auto`` and a given calibrator keep their own level."""
    rng = np.random.default_rng(11)
    n_window, n_later = 3000, 3000
    n = n_window + n_later
    X = pd.DataFrame(rng.standard_normal((n, 4)), columns=[f"f{i}" for i in range(4)])
    share = np.full(n, 0.55)
    share[int(n_window * 0.8) : n_window] = 0.35  # the slice's regime
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(np.log(share / (1 - share)) + 0.5 * X["f0"].to_numpy())))).astype(int)
    window, later = slice(0, n_window), slice(n_window, n)
    fitted = {}
    for level in (0.0, 0.5, 1.0):
        model = CalibratedModel(GaussianNB(), method="sigmoid", fraction=0.2, gap=5, level=level)
        fitted[level] = model.fit(X.iloc[window], y[window])
    loss = {level: _log_loss(y[later], m.predict_proba(X.iloc[later])[:, 1]) for level, m in fitted.items()}
    assert loss[1.0] < loss[0.5] < loss[0.0] - 0.01
    assert fitted[0.0].level_shift_ == 0.0 < fitted[0.5].level_shift_ < fitted[1.0].level_shift_
    mean = {level: m.predict_proba(X.iloc[later])[:, 1].mean() for level, m in fitted.items()}
    assert mean[0.0] < mean[0.5] < mean[1.0]
    assert abs(mean[0.0] - 0.38) < 0.05 and abs(mean[1.0] - 0.52) < 0.05
    # One map for every path: predict_proba, the calibrated probability and map_probability agree.
    half = fitted[0.5]
    raw = half.predict_proba_uncalibrated(X.iloc[later])[:, 1]
    np.testing.assert_allclose(half.map_probability(raw), half.predict_proba(X.iloc[later])[:, 1])
    np.testing.assert_allclose(half.predict_proba_calibrated(X.iloc[later]), half.predict_proba(X.iloc[later])[:, 1])
    # auto compares its window forms on later folds unshifted; a given calibrator learned elsewhere.
    auto = CalibratedModel(GaussianNB(), method="auto", fraction=0.2, gap=5, level=0.5).fit(X.iloc[window], y[window])
    given = CalibratedModel(
        GaussianNB(), method="sigmoid", fraction=0.2, gap=5, level=0.5, calibrator=half.calibrator_
    ).fit(X.iloc[window], y[window])
    assert auto.level_shift_ == 0.0 and given.level_shift_ == 0.0
    assert CalibratedModel.from_config(GaussianNB(), CalibrationConfig(), gap=5).level == 0.5


# --- a series level: shrinkage toward each row's series' recent share of known labels -------------------------------


def test_a_model_given_a_series_level_shrinks_each_row_toward_it_and_never_learns_from_it():
    """Noise whose share of positives moves (0.3, then 0.7): without signal the weight goes to 0 and each row's
    forecast is its own series level, not the window's share; the base model never sees that column."""
    rng = np.random.default_rng(11)
    n = 3000
    X = pd.DataFrame(rng.standard_normal((n, 4)), columns=[f"f{i}" for i in range(4)])
    share = np.where(np.arange(n) < 1500, 0.3, 0.7)
    y = (rng.uniform(size=n) < share).astype(int)
    X[LEVEL_COLUMN] = pd.Series(y.astype(float)).shift(1).rolling(200, min_periods=1).mean().to_numpy()
    X.loc[2500:2509, LEVEL_COLUMN] = np.nan  # a series with no known label yet: the window's share
    model = CalibratedModel(GaussianNB(), method="sigmoid", fraction=0.2, gap=5, shrink=True, shrinkage=0.0)
    model.fit(X.iloc[:2000], y[:2000])
    assert model.level_column_ == LEVEL_COLUMN
    assert list(model.feature_names_in_) == [f"f{i}" for i in range(4)]
    assert model.base_estimator_.n_features_in_ == 4
    later = X.iloc[2000:]
    expected = later[LEVEL_COLUMN].fillna(model.base_rate_).clip(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    np.testing.assert_allclose(model.predict_proba(later)[:, 1], expected.to_numpy(), rtol=1e-9)
    # Calibrated, unshrunk, the base model's own view: the same with or without the column.
    np.testing.assert_allclose(
        model.predict_proba_calibrated(later), model.predict_proba_calibrated(later.drop(columns=LEVEL_COLUMN))
    )
    # The level tracks the later regime where the window's share (0.3 then 0.7 averaged) does not.
    window = CalibratedModel(GaussianNB(), method="sigmoid", fraction=0.2, gap=5, shrink=True, shrinkage=0.0)
    window.fit(X.iloc[:2000].drop(columns=LEVEL_COLUMN), y[:2000])
    assert window.level_column_ is None
    np.testing.assert_allclose(window.predict_proba(later.drop(columns=LEVEL_COLUMN))[:, 1], window.base_rate_)
    assert (
        _log_loss(y[2000:], model.predict_proba(later)[:, 1])
        < _log_loss(y[2000:], window.predict_proba(later.drop(columns=LEVEL_COLUMN))[:, 1]) - 0.05
    )
