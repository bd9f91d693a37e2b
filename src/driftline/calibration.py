"""Probability calibration on a temporal slice at the end of each training window.

The base model is fitted on the earlier part of the window; scikit-learn's ``CalibratedClassifierCV``
(isotonic or sigmoid, on the frozen base model) is fitted on the later slice, so the calibrator only
sees rows the base model never trained on, and never a test row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from driftline.config import CalibrationConfig, ThresholdConfig
from driftline.errors import InsufficientDataError
from driftline.splits import calibration_cut
from driftline.thresholds import tune_threshold

# Isotonic steps can reach exactly 0 or 1; one such row would make log loss infinite.
PROBABILITY_FLOOR = 1e-4


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A base classifier plus the calibrator fitted on the end of its training window.

    Args:
        estimator: unfitted scikit-learn classifier.
        method: ``isotonic`` or ``sigmoid``.
        fraction: share of the window's timestamps used to calibrate.
        gap: timestamps purged between the fitting part and the calibration slice.
        threshold_objective: what the action threshold maximises on the calibration slice
            (``none``, ``f1``, ``precision_at_k``, ``strategy_return``).
        threshold_bounds: the range the threshold may take.
    """

    def __init__(
        self,
        estimator: ClassifierMixin,
        method: str = "isotonic",
        fraction: float = 0.2,
        gap: int = 0,
        threshold_objective: str = "none",
        threshold_bounds: tuple[float, float] = (0.3, 0.7),
    ):
        self.estimator = estimator
        self.method = method
        self.fraction = fraction
        self.gap = gap
        self.threshold_objective = threshold_objective
        self.threshold_bounds = threshold_bounds

    @classmethod
    def from_config(
        cls, estimator: ClassifierMixin, calibration: CalibrationConfig, gap: int, threshold: ThresholdConfig | None = None
    ) -> CalibratedModel:
        threshold = threshold or ThresholdConfig(objective="none")
        return cls(
            estimator,
            method=calibration.method,
            fraction=calibration.fraction,
            gap=gap,
            threshold_objective=threshold.objective,
            threshold_bounds=(threshold.min, threshold.max),
        )

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        times: np.ndarray | None = None,
        returns: np.ndarray | None = None,
    ) -> CalibratedModel:
        """Fit the base model on the earlier rows, the calibrator and the action threshold on the last slice.

        Raises:
            InsufficientDataError: the fitting part or the calibration slice holds a single class.
        """
        y = np.asarray(y)
        times = np.arange(len(y)) if times is None else np.asarray(times)
        fit_rows, cal_rows = calibration_cut(times, self.fraction, self.gap)
        for part, rows in (("fitting", fit_rows), ("calibration", cal_rows)):
            if len(np.unique(y[rows])) < 2:
                raise InsufficientDataError(
                    f"the {part} part of a training window ({len(rows)} rows) holds a single class"
                )
        self.base_estimator_ = clone(self.estimator).fit(X.iloc[fit_rows], y[fit_rows])
        self.calibrator_ = CalibratedClassifierCV(FrozenEstimator(self.base_estimator_), method=self.method)
        self.calibrator_.fit(X.iloc[cal_rows], y[cal_rows])
        self.classes_ = self.calibrator_.classes_
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_calibration_rows_ = len(cal_rows)
        objective = self.threshold_objective
        if objective == "strategy_return" and returns is None:
            objective = "f1"  # no returns (not a price target): fall back to the classification objective
        self.threshold_ = tune_threshold(
            y[cal_rows],
            self.predict_proba(X.iloc[cal_rows])[:, 1],
            objective,
            *self.threshold_bounds,
            returns=None if returns is None else np.asarray(returns)[cal_rows],
        )
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        positive = np.clip(self.calibrator_.predict_proba(X)[:, 1], PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
        return np.column_stack([1 - positive, positive])

    def predict_proba_uncalibrated(self, X: pd.DataFrame) -> np.ndarray:
        """The base model's probabilities, for before/after comparisons."""
        check_is_fitted(self, "base_estimator_")
        return self.base_estimator_.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Act (class 1) when the calibrated probability reaches the tuned threshold."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)]
