"""Probability calibration that holds on later rows.

The base model is fitted on the earlier part of each training window; a calibrator maps its probability
to a calibrated one. Where that calibrator learns, and its form, are chosen by what holds out of sample:

* ``window``: fitted on the last ``fraction`` of the training window (after a purge gap), rows the base
  model never trained on;
* ``pooled``: fitted on the out-of-fold predictions of the earlier walk-forward folds that lie inside the
  fold's training window (far more rows than one window's slice);
* ``none``: the base model's own probability.

Forms: ``sigmoid`` (Platt: a logistic regression on logit p, 2 parameters), ``beta`` (Kull et al.
2017: a logistic regression on log p and -log(1-p), 3 parameters; at least 200 rows) and ``isotonic`` (a
monotone step function; it overfits on few rows, so at least ``MIN_ROWS["isotonic"]`` = 1000).

``calibration.method: auto`` decides per fold (``select_fold_calibration``) from the earlier folds' test
rows inside the fold's training window only: never a row of the fold's own test period, nor of the purge
gap before it. The incumbent (``none``, or the slice's sigmoid when the slice has 1000 rows) is kept
unless a candidate lowered the log loss on every earlier fold, at least two. On daily volatility regimes
the base rate moves from one fold to the next and a calibrator fitted on a short slice mostly learns the
slice's regime: there the base model's own probability holds best, and this rule keeps it. The
challenger's calibrator follows the same rule over all the folds.

Shrinkage toward the base rate (``calibration.shrink``): after calibration, the probability is pulled
toward the training window's positive share in logit space, ``logit b + w (logit p - logit b)``, with a
weight ``w`` in [0, 1] fitted out of sample: per fold on the earlier folds' calibrated out-of-fold rows
(``shrink_folds``), for the first fold (no earlier rows) on the window's calibration slice, comparing the
base model with the fitting part's positive share (``slice_shrinkage``). On a series with signal ``w``
stays near 1; on one without (the sign of a 5-day stock return) it goes to 0 and the forecast is the base
rate, where a sigmoid fitted on a short slice mostly learned that slice's share of positives and lost log
loss against the base rate on the next rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

from driftline.config import CalibrationConfig, ThresholdConfig
from driftline.errors import InsufficientDataError
from driftline.features import LEVEL_COLUMN, model_inputs
from driftline.models import with_label_defaults
from driftline.splits import calibration_cut
from driftline.thresholds import tune_threshold

# Isotonic steps can reach exactly 0 or 1; one such row would make log loss infinite.
PROBABILITY_FLOOR = 1e-4
FORMS = ("sigmoid", "beta", "isotonic")
# Fewest calibration rows per form: more parameters need more rows. Isotonic below ~1000 rows fits the
# noise of its slice (scikit-learn's user guide says the same); beta's third parameter needs a few hundred.
MIN_ROWS = {"sigmoid": 1, "beta": 200, "isotonic": 1000}
# Fewest earlier out-of-fold rows (both classes present) before a pooled calibrator is a candidate, and
# fewest common earlier rows on which candidates are compared.
MIN_POOLED_ROWS = 200
NO_CALIBRATION = "none"  # the base model's own probability, kept until a calibrator has held better
ONE_CLASS_SLICE = "none-one-class-slice"  # the base model's own probability: the window's slice held one class
MIN_FOLDS_HELD = 2  # earlier folds on which a candidate must have beaten the incumbent
TRUSTED_SLICE_ROWS = 1000  # a window slice this long makes its sigmoid the incumbent (as for isotonic)
_EPS = 1e-6
MIN_SHRINK_ROWS = 100  # fewest out-of-sample rows on which a shrinkage weight is fitted (else 1: none)


def forms_for(n_rows: int) -> tuple[str, ...]:
    """The calibrator forms that may be fitted on ``n_rows`` rows (``MIN_ROWS``)."""
    return tuple(form for form in FORMS if n_rows >= MIN_ROWS[form])


def _logit_features(p: np.ndarray, form: str) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    if form == "sigmoid":
        logits: np.ndarray = np.log(p / (1 - p))[:, None]
        return logits
    return np.column_stack([np.log(p), -np.log(1 - p)])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))


def _logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))  # type: ignore[no-any-return]


def shrink_toward(p: np.ndarray, base_rate: np.ndarray | float, weight: float) -> np.ndarray:
    """``p`` pulled toward ``base_rate`` in logit space: weight 1 keeps ``p``, 0 gives the base rate."""
    b = _logit(base_rate)
    shrunk: np.ndarray = np.clip(_sigmoid(b + weight * (_logit(p) - b)), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return shrunk


def level_shift(window_share: float, slice_share: float, weight: float) -> float:
    """The logit-space shift that moves a slice-fitted calibrator's level toward the whole window's.

    A calibrator fitted on the window's last slice sets the forecast's *level* to that slice's share of
    positives: a few hundred rows of the latest regime, a noisy estimate of the next period's share. The
    whole window's share is a longer but older estimate. ``weight`` blends them in logit space: 0 keeps the
    slice's level, 1 moves it to the window's, ``weight * (logit window share - logit slice share)``.
    """
    if weight == 0.0:
        return 0.0
    return float(weight * (_logit(window_share) - _logit(slice_share)))


def shift_level(p: np.ndarray, shift: float) -> np.ndarray:
    """``p`` moved by ``shift`` in logit space (0: unchanged), clipped like every calibrated probability."""
    if shift == 0.0:
        return np.asarray(p, dtype=float)
    shifted: np.ndarray = np.clip(_sigmoid(_logit(p) + shift), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return shifted


def row_levels(X: pd.DataFrame, fallback: float) -> np.ndarray | float:
    """Each row's shrinkage target: its series' share of positives among its last known labels
    (``LEVEL_COLUMN``, ``features.level_window``), ``fallback`` (the training window's share) where the
    series has no known label yet or the features carry no such column."""
    if LEVEL_COLUMN not in X.columns:
        return fallback
    levels = X[LEVEL_COLUMN].to_numpy(dtype=float)
    return np.where(np.isnan(levels), fallback, levels)


def fit_shrinkage(p: np.ndarray, base_rate: np.ndarray | float, y: np.ndarray) -> float:
    """The weight in [0, 1] of ``shrink_toward`` that minimises the log loss of ``p`` on labels ``y``.

    ``p`` and ``base_rate`` must be out of sample for ``y`` (else the weight only measures the fit): rows
    of later periods than the ones the model, its calibrator and the base rate learned from. Fewer than
    ``MIN_SHRINK_ROWS`` rows or a single class: 1 (no evidence, no shrinkage).
    """
    y = np.asarray(y, dtype=float)
    if len(y) < MIN_SHRINK_ROWS or len(np.unique(y)) < 2:
        return 1.0
    from scipy.optimize import minimize_scalar

    base = np.broadcast_to(np.asarray(base_rate, dtype=float), np.shape(p))
    found = minimize_scalar(
        lambda w: _log_loss(y, shrink_toward(p, base, w)), bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-4}
    )
    weight = float(found.x)
    # The bounded search never evaluates the ends exactly; an end that is no worse wins (0: pure base rate).
    for end in (0.0, 1.0):
        if _log_loss(y, shrink_toward(p, base, end)) <= _log_loss(y, shrink_toward(p, base, weight)):
            weight = end
    return weight


def _fit_logistic(X: np.ndarray, y: np.ndarray, ridge: float = 1e-4, steps: int = 100) -> np.ndarray:
    """Intercept and slopes of a logistic regression by Newton's method (one or two inputs: a 3x3 solve a
    step, where scikit-learn's general solvers spend most of their time on checks and line searches)."""
    design = np.column_stack([np.ones(len(y)), X])
    weights = np.zeros(design.shape[1])
    penalty = ridge * np.eye(len(weights))
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(steps):
        p = _sigmoid(design @ weights)
        gradient = design.T @ (p - y) + penalty @ weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design + penalty + 1e-9 * np.eye(len(weights))
        step = np.linalg.solve(hessian, gradient)
        step *= min(1.0, 5.0 / max(np.abs(step).max(), 1e-12))  # bounded steps: (near-)separable slices
        weights -= step
        if np.abs(step).max() < 1e-10:
            break
    return weights


class Calibrator(BaseEstimator):
    """A fitted map from a base model's probability of class 1 to a calibrated probability.

    Args:
        form: ``sigmoid``, ``beta`` or ``isotonic``.
    """

    def __init__(self, form: str = "sigmoid"):
        if form not in (*FORMS, "identity"):
            raise ValueError(f"unknown calibrator form {form!r}; known: {[*FORMS, 'identity']}")
        self.form = form

    def fit(self, p: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on base-model probabilities ``p`` and labels ``y`` (both classes must be present).

        Raises:
            InsufficientDataError: ``y`` holds a single class (any form but ``identity``).
        """
        y = np.asarray(y, dtype=int)
        self.n_rows_ = len(y)
        self.model_: Any = None  # isotonic: the fitted regression; sigmoid/beta: intercept and slopes
        if self.form == "identity":  # learns nothing: any labels
            return self
        if len(np.unique(y)) < 2:
            raise InsufficientDataError(f"a {self.form} calibrator needs both classes; {len(y)} rows hold one")
        if self.form == "isotonic":
            self.model_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
                np.asarray(p, dtype=float), y
            )
            return self
        X = _logit_features(p, self.form)
        self.columns_ = [0] if self.form == "sigmoid" else [0, 1]
        self.model_ = _fit_logistic(X, y)
        if self.form == "beta" and (self.model_[1:] < 0).any():
            # Beta calibration's maps are monotone only with both slopes >= 0: drop a negative one and refit
            # (Kull et al. 2017, as their reference implementation does).
            self.columns_ = [int(np.argmax(self.model_[1:]))]
            self.model_ = _fit_logistic(X[:, self.columns_], y)
        if (self.model_[1:] < 0).any():
            # A calibrator keeps the model's order: a falling map says the slice ranked its few positives
            # backwards (16 of 3,116 rows: slope -3.6), and it sends every lower score of later rows towards
            # 1. The slice's own share stands instead (intercept only).
            self.columns_ = []
            self.model_ = _fit_logistic(X[:, []], y)
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probability of class 1, clipped to [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]."""
        check_is_fitted(self, "n_rows_")
        if self.form == "identity":
            q = np.asarray(p, dtype=float)
        elif self.form == "isotonic":
            q = self.model_.predict(np.asarray(p, dtype=float))
        else:
            q = _sigmoid(self.model_[0] + _logit_features(p, self.form)[:, self.columns_] @ self.model_[1:])
        clipped: np.ndarray = np.clip(q, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
        return clipped


@dataclass(frozen=True)
class SliceCalibration:
    """What a calibration slice gave: every window form fitted there, the calibrator in use and its name."""

    window: dict[str, Calibrator]
    calibrator: Calibrator
    name: str


def fit_slice_calibration(
    raw: np.ndarray, y: np.ndarray, method: str, given: Calibrator | None = None, given_name: str | None = None
) -> SliceCalibration:
    """The calibrators of one training window's slice: ``raw`` is the base model's probability there.

    ``method`` as ``CalibratedModel``'s; a ``given`` calibrator is used instead of the slice's. Shared by
    ``CalibratedModel.fit`` and the walk-forward's ensemble, which is built from its members' slice
    predictions instead of refitting them.
    """
    one_class = len(np.unique(y)) < 2
    if one_class and given is None and method != "auto":
        # A short window whose slice saw one regime: no calibrator can be fitted there, so the base model's own
        # probability stands (auto raises: its forms are compared on later folds).
        return SliceCalibration({}, Calibrator("identity").fit(raw, y), ONE_CLASS_SLICE)
    forms = () if one_class and given is not None else forms_for(len(y)) if method == "auto" else (method,)
    window = {form: Calibrator(form).fit(raw, y) for form in forms}
    if given is not None:
        return SliceCalibration(window, given, given_name or f"given-{given.form}")
    if method == "auto":  # no walk-forward evidence: the incumbent of select_fold_calibration
        name = _incumbent(len(y))
        return SliceCalibration(
            window, window["sigmoid"] if name != NO_CALIBRATION else Calibrator("identity").fit(raw, y), name
        )
    return SliceCalibration(window, window[method], f"window-{method}")


ONE_CLASS_HINT = (
    "a longer first training window (splits.min_train_size) or a larger calibration.fraction gives it more rows"
)
"""What to change when a window's fitting part or calibration slice holds a single class (short windows)."""


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A base classifier plus its calibrator: fitted on the end of its training window, or given (pooled).

    Args:
        estimator: unfitted scikit-learn classifier.
        method: ``sigmoid``, ``beta``, ``isotonic`` or ``auto``; ``auto`` fits every form the calibration
            slice has rows for (``window_calibrators_``, compared later on out-of-fold rows) and, without a
            given calibrator, uses the incumbent: the slice's sigmoid from 1000 slice rows, else none.
        fraction: share of the window's timestamps used to calibrate.
        gap: timestamps purged between the fitting part and the calibration slice.
        threshold_objective: what the action threshold maximises on the calibration slice
            (``none``, ``f1``, ``precision_at_k``, ``strategy_return``).
        threshold_bounds: the range the threshold may take.
        calibrator: a fitted ``Calibrator`` (e.g. on pooled out-of-fold predictions) used instead of one
            fitted on the slice; the slice then only tunes the threshold.
        calibration_name: what ``calibrator`` is, for the record (e.g. ``pooled-beta``).
        shrink: pull the calibrated probability toward the window's positive share (``shrink_toward``) by
            ``shrinkage``, or without it by the weight the slice supports: the base model against the
            fitting part's positive share on the slice rows (``slice_shrinkage_``).
        shrinkage: a weight fitted out of sample elsewhere (e.g. on the walk-forward's out-of-fold rows).
        level: with a calibrator fitted on the slice (``sigmoid``, ``beta``, ``isotonic``; not ``auto`` and
            not a given one), the weight of the whole window's positive share in the calibrated level
            against the slice's (``level_shift``; ``level_shift_``): 0 keeps the slice's level.
    """

    def __init__(
        self,
        estimator: ClassifierMixin,
        method: str = "isotonic",
        fraction: float = 0.2,
        gap: int = 0,
        threshold_objective: str = "none",
        threshold_bounds: tuple[float, float] = (0.3, 0.7),
        calibrator: Calibrator | None = None,
        calibration_name: str | None = None,
        shrink: bool = False,
        shrinkage: float | None = None,
        level: float = 0.0,
    ):
        self.estimator = estimator
        self.method = method
        self.fraction = fraction
        self.gap = gap
        self.threshold_objective = threshold_objective
        self.threshold_bounds = threshold_bounds
        self.calibrator = calibrator
        self.calibration_name = calibration_name
        self.shrink = shrink
        self.shrinkage = shrinkage
        self.level = level

    @classmethod
    def from_config(
        cls,
        estimator: ClassifierMixin,
        calibration: CalibrationConfig,
        gap: int,
        threshold: ThresholdConfig | None = None,
        calibrator: Calibrator | None = None,
        calibration_name: str | None = None,
        shrinkage: float | None = None,
    ) -> CalibratedModel:
        threshold = threshold or ThresholdConfig(objective="none")
        return cls(
            estimator,
            method=calibration.method,
            fraction=calibration.fraction,
            gap=gap,
            threshold_objective=threshold.objective,
            threshold_bounds=(threshold.min, threshold.max),
            calibrator=calibrator,
            calibration_name=calibration_name,
            # auto: a fold's model finds its slice's weight too; the walk-forward decides which family keeps it
            shrink=calibration.shrink is not False,
            shrinkage=shrinkage,
            level=calibration.level,
        )

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        times: np.ndarray | None = None,
        returns: np.ndarray | None = None,
    ) -> CalibratedModel:
        """Fit the base model on the earlier rows; the calibrator (unless given) and the action threshold on
        the last slice.

        Raises:
            InsufficientDataError: the fitting part holds a single class, or (``auto``) the calibration slice.
        """
        y = np.asarray(y)
        times = np.arange(len(y)) if times is None else np.asarray(times)
        fit_rows, cal_rows = calibration_cut(times, self.fraction, self.gap)
        # A one-class slice leaves the base model uncalibrated (fit_slice_calibration), except for auto.
        parts = (
            (("fitting", fit_rows), ("calibration", cal_rows)) if self.method == "auto" else (("fitting", fit_rows),)
        )
        for part, rows in parts:
            if len(np.unique(y[rows])) < 2:
                raise InsufficientDataError(
                    f"the {part} part of a training window ({len(rows)} rows) holds a single class; {ONE_CLASS_HINT}"
                )
        inputs = model_inputs(X)
        base = with_label_defaults(clone(self.estimator), y[fit_rows]).fit(inputs.iloc[fit_rows], y[fit_rows])
        raw = base.predict_proba(inputs.iloc[cal_rows])[:, 1]
        fitting_share = float(np.mean(y[fit_rows]))
        return self.fit_on_slice(
            base,
            list(inputs.columns),
            raw,
            y[cal_rows],
            base_rate=float(np.mean(y)),
            fitting_share=fitting_share,
            returns=None if returns is None else np.asarray(returns)[cal_rows],
            slice_levels=row_levels(X.iloc[cal_rows], fitting_share) if LEVEL_COLUMN in X.columns else None,
        )

    def fit_on_slice(
        self,
        base: Any,
        columns: list[str],
        raw: np.ndarray,
        y_slice: np.ndarray,
        *,
        base_rate: float,
        fitting_share: float,
        returns: np.ndarray | None = None,
        slice_levels: np.ndarray | float | None = None,
    ) -> CalibratedModel:
        """Around a base model already fitted on the fitting part (``fit``, or batch by batch on the streamed
        path): the calibrator (unless given), the level, the shrinkage weight and the action threshold, from the
        base model's probabilities ``raw`` on the calibration slice and its labels ``y_slice``.

        Args:
            base_rate: the positive share of the whole window (fitting part and slice).
            fitting_share: the positive share of the fitting part.
            returns: the slice's next-period returns (price targets), for the strategy threshold.
            slice_levels: the slice rows' shrinkage targets (``row_levels``) when the features carry the
                series' recent share of known labels: the model then shrinks each row toward its own series'
                recent share instead of the window's (``level_column_``).
        """
        self.base_estimator_ = base
        self.classes_ = base.classes_
        slice_fit = fit_slice_calibration(raw, y_slice, self.method, self.calibrator, self.calibration_name)
        self.window_calibrators_, self.calibrator_, self.calibration_ = (
            slice_fit.window,
            slice_fit.calibrator,
            slice_fit.name,
        )
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_calibration_rows_ = len(y_slice)
        self.base_rate_ = base_rate
        self.level_column_ = None if slice_levels is None else LEVEL_COLUMN
        target = fitting_share if slice_levels is None else slice_levels
        # Only a calibrator fitted on this slice carries the slice's level (auto compares its window forms
        # unshifted on later folds; a given calibrator learned elsewhere).
        own = self.calibrator is None and self.method != "auto" and self.calibration_ != ONE_CLASS_SLICE
        self.level_shift_ = level_shift(self.base_rate_, float(np.mean(y_slice)), self.level) if own else 0.0
        # Out of sample on the slice: the base model and the fitting part's share both learned before it.
        self.slice_shrinkage_ = fit_shrinkage(raw, target, y_slice) if self.shrink else 1.0
        self.shrinkage_ = (
            1.0 if not self.shrink else self.slice_shrinkage_ if self.shrinkage is None else float(self.shrinkage)
        )
        objective = self.threshold_objective
        if objective == "strategy_return" and returns is None:
            objective = "f1"  # no returns (not a price target): fall back to the classification objective
        self.threshold_ = tune_threshold(
            y_slice,
            self._shrunk(self._calibrate(raw), base_rate if slice_levels is None else slice_levels),
            objective,
            *self.threshold_bounds,
            returns=returns,
        )
        return self

    def flatten(self, share: float) -> CalibratedModel:
        """From now on, predict ``share`` for every row: shrinkage all the way (weight 0) toward it, not toward
        each series' recent level. For a challenger whose family showed no edge over the base rate on the
        walk-forward (``calibration.require_edge``): a series' recent share is a forecast too, and no evidence
        stood behind it either."""
        check_is_fitted(self, "calibrator_")
        self.shrinkage_, self.level_column_, self.base_rate_ = 0.0, None, float(share)
        return self

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        # models pickled before the level shift existed: none
        return shift_level(self.calibrator_.predict(raw), getattr(self, "level_shift_", 0.0))

    def _shrunk(self, calibrated: np.ndarray, target: np.ndarray | float) -> np.ndarray:
        weight = getattr(self, "shrinkage_", 1.0)  # models pickled before shrinkage existed: none
        return calibrated if weight >= 1.0 else shrink_toward(calibrated, target, weight)

    def shrink_targets(self, X: pd.DataFrame) -> np.ndarray | float:
        """What each row of ``X`` is shrunk toward: its series' recent share of known labels when the model
        learned with one (``level_column_``), else the training window's share."""
        if getattr(self, "level_column_", None) is None:  # models pickled before it existed: the window's
            return float(self.base_rate_)
        return row_levels(X, self.base_rate_)

    def map_probability(self, p_base: np.ndarray, target: np.ndarray | float | None = None) -> np.ndarray:
        """The monotone map from the base model's probability of class 1 to the one a user is given: the
        calibrator (its level moved by ``level_shift_``), then the shrinkage toward ``target`` (the rows'
        ``shrink_targets``; default the window's share; weight >= 0, so still monotone)."""
        check_is_fitted(self, "calibrator_")
        return self._shrunk(self._calibrate(p_base), self.base_rate_ if target is None else target)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        positive = self._shrunk(self.predict_proba_calibrated(X), self.shrink_targets(X))
        return np.column_stack([1 - positive, positive])

    def predict_proba_calibrated(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of class 1 after the calibrator, before any shrinkage toward the base rate."""
        check_is_fitted(self, "calibrator_")
        calibrated: np.ndarray = self._calibrate(self.base_estimator_.predict_proba(model_inputs(X))[:, 1])
        return calibrated

    def predict_proba_uncalibrated(self, X: pd.DataFrame) -> np.ndarray:
        """The base model's probabilities, for before/after comparisons."""
        check_is_fitted(self, "base_estimator_")
        raw: np.ndarray = self.base_estimator_.predict_proba(model_inputs(X))
        return raw

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Act (class 1) when the calibrated probability reaches the tuned threshold."""
        decisions: np.ndarray = self.classes_[(self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)]
        return decisions


# --- choosing the calibrator per fold from earlier rows only ------------------------------------------------


def window_column(form: str) -> str:
    """The fold-table column holding a window-slice calibrator's test predictions."""
    return f"p_window_{form}"


@dataclass(frozen=True)
class FoldCalibration:
    """What ``auto`` chose for one family: the calibrated test predictions, the choice per fold, and the
    choice for a model fitted after the last fold (the challenger)."""

    p: np.ndarray
    chosen: dict[int, str]
    challenger: str
    candidates: dict[str, np.ndarray] = field(repr=False)  # every candidate's honest test predictions (NaN: none)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _choose(
    candidates: dict[str, np.ndarray],
    eligible: Sequence[str],
    history: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    incumbent: str,
) -> str:
    """The incumbent unless another candidate held better on the history rows: it must lower the log loss
    against the incumbent on every earlier fold it has predictions for, at least ``MIN_FOLDS_HELD`` of them
    (a calibrator that helps in one regime and hurts in the next does not hold), on at least
    ``MIN_POOLED_ROWS`` rows; of those, the largest mean gain wins."""
    best, best_gain = incumbent, 0.0
    reference = candidates[incumbent]
    for name in eligible:
        values = candidates[name]
        rows = history & np.isfinite(values) & np.isfinite(reference)
        if name == incumbent or rows.sum() < MIN_POOLED_ROWS:
            continue
        per_fold = [
            _log_loss(y[part], reference[part]) - _log_loss(y[part], values[part])
            for part in (rows & (fold == k) for k in np.unique(fold[rows]))
        ]
        gain = _log_loss(y[rows], reference[rows]) - _log_loss(y[rows], values[rows])
        if len(per_fold) >= MIN_FOLDS_HELD and min(per_fold) > 0 and gain > best_gain:
            best, best_gain = name, gain
    return best


def select_fold_calibration(
    fold: np.ndarray,
    times: np.ndarray,
    y: np.ndarray,
    p_raw: np.ndarray,
    window: dict[str, np.ndarray],
    train_end: dict[int, object],
    challenger_forms: Sequence[str] = FORMS,
    slice_rows: dict[int, int] | None = None,
    challenger_slice_rows: int = 0,
) -> FoldCalibration:
    """Choose each fold's calibrator from rows before its test rows; calibrate its test rows with it.

    For fold k the candidates are the window-slice calibrators fitted in fold k (``window[form]``: their
    predictions on every fold's test rows, NaN where that form was not fitted) and calibrators of each form
    fitted on the pooled out-of-fold rows of earlier folds with timestamps up to fold k's training end
    (``train_end[k]``: so the purge gap before the test rows is respected). Among them, the one with the
    lowest log loss on those same earlier rows (each candidate's own honest predictions there) is chosen,
    if it beat the incumbent on every earlier fold, at least ``MIN_FOLDS_HELD`` of them (``_choose``). The
    incumbent is the window slice's sigmoid when the slice has ``TRUSTED_SLICE_ROWS`` rows, else the base
    model's own probability (``none``): a calibrator fitted on a few dozen rows is mostly noise.

    Args:
        fold: each row's fold number (rows are the folds' test rows of one family).
        times: each row's timestamp.
        y: labels.
        p_raw: the fold's base model's probability.
        window: form -> window-slice calibrated probability per row.
        train_end: fold -> last training timestamp of that fold.
        challenger_forms: window forms the challenger's own slice will have rows for.
        slice_rows: fold -> rows of its calibration slice; challenger_slice_rows: the challenger's.
    """
    fold, times, y, p_raw = (np.asarray(a) for a in (fold, times, y, p_raw))
    y = y.astype(float)
    candidates = {f"window-{form}": np.asarray(values, dtype=float) for form, values in window.items()}
    candidates.update({f"pooled-{form}": np.full(len(y), np.nan) for form in FORMS})
    candidates[NO_CALIBRATION] = np.clip(p_raw.astype(float), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    p = np.full(len(y), np.nan)
    chosen: dict[int, str] = {}
    for k in sorted(np.unique(fold).tolist()):
        rows = fold == k
        history = (fold < k) & (times <= np.asarray(train_end[k], dtype=times.dtype))
        for form in _pooled_forms(history, y):
            candidates[f"pooled-{form}"][rows] = Calibrator(form).fit(p_raw[history], y[history]).predict(p_raw[rows])
        eligible = [c for c, values in candidates.items() if np.isfinite(values[rows]).all()]
        chosen[k] = _choose(candidates, eligible, history, y, fold, _incumbent((slice_rows or {}).get(k, 0)))
        p[rows] = candidates[chosen[k]][rows]
    everything = np.ones(len(y), dtype=bool)
    final = [f"window-{form}" for form in challenger_forms if f"window-{form}" in candidates]
    final += [f"pooled-{form}" for form in _pooled_forms(everything, y)] + [NO_CALIBRATION]
    return FoldCalibration(
        p=p,
        chosen=chosen,
        challenger=_choose(candidates, final, everything, y, fold, _incumbent(challenger_slice_rows)),
        candidates=candidates,
    )


def _incumbent(slice_rows: int) -> str:
    return "window-sigmoid" if slice_rows >= TRUSTED_SLICE_ROWS else NO_CALIBRATION


def _pooled_forms(history: np.ndarray, y: np.ndarray) -> tuple[str, ...]:
    n = int(history.sum())
    if n < MIN_POOLED_ROWS or len(np.unique(y[history])) < 2:
        return ()
    return forms_for(n)


def pooled_calibrator(choice: str, p_raw: np.ndarray, y: np.ndarray) -> Calibrator | None:
    """The calibrator a ``pooled-<form>`` choice stands for, fitted on all the out-of-fold rows given (the
    identity for ``none``); None for a ``window-<form>`` choice (the model fits that on its own slice)."""
    if choice == NO_CALIBRATION:
        return Calibrator("identity").fit(np.asarray(p_raw, dtype=float), np.asarray(y))
    source, _, form = choice.partition("-")
    if source != "pooled":
        return None
    return Calibrator(form).fit(np.asarray(p_raw, dtype=float), np.asarray(y))


# --- shrinkage toward the base rate, per fold from earlier rows only ----------------------------------------


@dataclass(frozen=True)
class FoldShrinkage:
    """What ``shrink_folds`` did for one family: the shrunk test predictions, each fold's weight, and the
    weight for a model fitted after the last fold (the challenger: fitted on every out-of-fold row)."""

    p: np.ndarray
    weights: dict[int, float]
    challenger: float


def _row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    losses: np.ndarray = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    return losses


def shrink_folds(
    fold: np.ndarray,
    times: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    base_rate: np.ndarray,
    slice_weight: dict[int, float],
    train_end: dict[int, object],
) -> FoldShrinkage:
    """Each fold's calibrated test predictions shrunk toward its training window's positive share, while
    shrinkage has held out of sample.

    The first fold (fewer than ``MIN_SHRINK_ROWS`` earlier rows) takes the weight its own calibration
    slice supports (``slice_weight``). Fold k then uses the weight fitted (``fit_shrinkage``) on the
    earlier folds' rows with timestamps up to its training end (never its test rows nor the purge gap
    before them), each row shrunk toward its own fold's base rate — but only while the shrinkage *as it
    was applied* to those rows lowered their log loss in total; otherwise none (weight 1). A weight
    fitted on one or two folds where the model happened to lose to the base rate would otherwise flatten
    a model that earns its place on the next folds (daily volatility regimes: pooled log loss 0.609 ->
    0.620); on a series without signal the first fold's slice starts the record and it stays positive.
    The challenger's weight follows the same rule over every fold.

    Args:
        fold: each row's fold; times: its timestamp; y: labels; p: calibrated, unshrunk probabilities.
        base_rate: the positive share of each row's fold's training window.
        slice_weight: fold -> the weight its calibration slice supports (``CalibratedModel.slice_shrinkage_``).
        train_end: fold -> last training timestamp of that fold.
    """
    fold, times, y, p, base_rate = (np.asarray(a) for a in (fold, times, y, p, base_rate))
    y = y.astype(float)
    out = np.full(len(y), np.nan)
    weights: dict[int, float] = {}

    def weight_on(history: np.ndarray) -> float:
        shrunk = history & np.isin(fold, [k for k, w in weights.items() if w < 1.0])  # the record: rows shrunk
        gain = float(np.sum(_row_log_loss(y[shrunk], p[shrunk]) - _row_log_loss(y[shrunk], out[shrunk])))
        return fit_shrinkage(p[history], base_rate[history], y[history]) if gain > 0 else 1.0

    for k in sorted(np.unique(fold).tolist()):
        rows = fold == k
        history = (fold < k) & (times <= np.asarray(train_end[k], dtype=times.dtype))
        if history.sum() >= MIN_SHRINK_ROWS and len(np.unique(y[history])) == 2:
            weights[k] = weight_on(history)
        else:
            weights[k] = float(slice_weight.get(k, 1.0))
        out[rows] = shrink_toward(p[rows], base_rate[rows], weights[k])
    return FoldShrinkage(p=out, weights=weights, challenger=weight_on(np.ones(len(y), dtype=bool)))
