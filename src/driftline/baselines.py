"""Naive baselines: the obvious predictors a model must beat to earn its place.

They run through the same walk-forward folds and metrics as the model families, are reported beside them
and are never the challenger. The best of them (lowest pooled walk-forward log loss) is what a first
model faces on the hold-out window.

- ``base_rate``: the training window's positive share, Laplace-smoothed ((positives + 1) / (rows + 2)),
  for every row: a window of one class gives a probability inside (0, 1), so a finite log loss.
- ``persistence``: the newest label known at prediction time (``label_delay`` rows back), as the
  probability P(y=1 | that label) on the training window, Laplace-smoothed: its accuracy is that of
  "predict the last label" whenever the series is persistent, and its log loss is finite.
- ``lagged_labels``: a logistic regression on the lagged known labels only (``target.label_lags``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from driftline.features import KNOWN_LABEL, LAG_PREFIX, FeatureSet

BASE_RATE = "base_rate"
PERSISTENCE = "persistence"
LAGGED_LABELS = "lagged_labels"
BASELINES = (BASE_RATE, PERSISTENCE, LAGGED_LABELS)
LAPLACE = 1.0  # pseudo-count per class: base rate and persistence never predict exactly 0 or 1


def is_baseline(name: str) -> bool:
    return name in BASELINES


def lag_columns(columns: Sequence[str]) -> list[str]:
    """The lagged-label feature columns."""
    return [c for c in columns if str(c).startswith(LAG_PREFIX)]


def baseline_names(features: FeatureSet) -> list[str]:
    """The baselines this feature set supports: persistence needs the known label, lagged_labels the lags."""
    names = [BASE_RATE]
    if KNOWN_LABEL in features.meta.columns:
        names.append(PERSISTENCE)
    if lag_columns(features.feature_names):
        names.append(LAGGED_LABELS)
    return names


class BaselineModel:
    """One naive predictor: ``fit`` on a training window's rows, ``predict_proba`` of class 1 for others.

    Args:
        name: ``base_rate``, ``persistence`` or ``lagged_labels``.
        seed: for the logistic regression's solver.
    """

    def __init__(self, name: str, seed: int = 42) -> None:
        if not is_baseline(name):
            raise ValueError(f"unknown baseline {name!r}; known: {list(BASELINES)}")
        self.name = name
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: np.ndarray, known: np.ndarray | None) -> BaselineModel:
        y = np.asarray(y, dtype=float)
        self.base_rate_ = smoothed_share(y)
        if self.name == PERSISTENCE:
            known = _known(known, len(y))
            # P(y=1 | last known label), Laplace-smoothed; rows with no known label yet get the base rate.
            self.table_ = {state: smoothed_share(y[known == state]) for state in (0.0, 1.0)}
        elif self.name == LAGGED_LABELS:
            from sklearn.linear_model import LogisticRegression

            self.columns_ = lag_columns(list(X.columns))
            if not self.columns_:
                raise ValueError("the lagged_labels baseline needs lagged-label columns (target_lag_*)")
            self.model_ = LogisticRegression(C=1.0, max_iter=1000, random_state=self.seed)
            self.model_.fit(X[self.columns_].to_numpy(dtype=float), y.astype(int))
        return self

    def predict_proba(self, X: pd.DataFrame, known: np.ndarray | None) -> np.ndarray:
        """Probability of class 1 per row."""
        n = len(X)
        if self.name == BASE_RATE:
            return np.full(n, self.base_rate_)
        if self.name == PERSISTENCE:
            known = _known(known, n)
            return np.select([known == 1.0, known == 0.0], [self.table_[1.0], self.table_[0.0]], self.base_rate_)
        probability: np.ndarray = self.model_.predict_proba(X[self.columns_].to_numpy(dtype=float))[:, 1]
        return probability


def smoothed_share(y: np.ndarray) -> float:
    """The positive share of ``y``, Laplace-smoothed: (positives + 1) / (rows + 2), inside (0, 1) always."""
    return float((y.sum() + LAPLACE) / (len(y) + 2 * LAPLACE))


def _known(known: np.ndarray | None, n: int) -> np.ndarray:
    if known is None:
        return np.full(n, np.nan)
    return np.asarray(known, dtype=float)


def known_labels(features: FeatureSet) -> np.ndarray | None:
    """Each row's newest known label (NaN where none is known yet), or None when the set has none."""
    return features.meta[KNOWN_LABEL].to_numpy(dtype=float) if KNOWN_LABEL in features.meta.columns else None


def fit_baseline(name: str, features: FeatureSet, seed: int = 42) -> BaselineModel:
    """Fit baseline ``name`` on every row of ``features`` (e.g. the development rows, for the hold-out)."""
    return BaselineModel(name, seed).fit(features.X, features.y.to_numpy(), known_labels(features))
