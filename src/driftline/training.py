"""Walk-forward evaluation of every model family and the final challenger fit."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftline.calibration import CalibratedModel
from driftline.config import CalibrationConfig, MetricsConfig, ModelsConfig, SplitConfig, ThresholdConfig
from driftline.features import FeatureSet
from driftline.metrics import classification_metrics, expected_calibration_error, strategy_metrics
from driftline.models import family_names, make_estimator
from driftline.splits import WalkForwardSplit

logger = logging.getLogger(__name__)

SELECTION_METRIC = "log_loss"
SUMMARY_METRICS = ("accuracy", "auc", "brier", "log_loss", "ece", "precision_at_k", "brier_skill")


@dataclass(frozen=True)
class FoldResult:
    fold: int
    family: str
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    n_train: int
    n_test: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class WalkForwardResult:
    """Per-fold and pooled out-of-sample results of every family, and which one became the challenger."""

    folds: list[FoldResult]
    pooled: dict[str, dict[str, float]]
    selected: str
    predictions: pd.DataFrame = field(repr=False)  # fold, family, y, p, p_uncalibrated + meta columns

    def selection_reason(self) -> str:
        ranked = sorted(self.pooled, key=lambda f: self.pooled[f][SELECTION_METRIC])
        scores = ", ".join(f"{f} {self.pooled[f][SELECTION_METRIC]:.4f}" for f in ranked)
        return f"lowest pooled out-of-sample {SELECTION_METRIC}: {scores}"

    def selected_folds(self) -> list[FoldResult]:
        return [f for f in self.folds if f.family == self.selected]

    def selected_predictions(self) -> pd.DataFrame:
        return self.predictions[self.predictions["family"] == self.selected]

    def summary_metrics(self) -> dict[str, float]:
        return {k: self.pooled[self.selected][k] for k in SUMMARY_METRICS}


def _fold_metrics(
    y: np.ndarray, p: np.ndarray, p_raw: np.ndarray, meta: pd.DataFrame, metrics: MetricsConfig, price_target: bool
) -> dict[str, float]:
    values = classification_metrics(y, p, metrics)
    values["brier_uncalibrated"] = float(np.mean((p_raw - y) ** 2))
    values["ece_uncalibrated"] = expected_calibration_error(y, p_raw, metrics.ece_bins)
    if price_target and "next_return" in meta.columns:
        values.update(strategy_metrics(p, meta, metrics))
    return values


def _day(value: Any) -> str:
    return pd.Timestamp(value).isoformat()


def run_walk_forward(
    features: FeatureSet,
    splits: SplitConfig,
    gap: int,
    calibration: CalibrationConfig,
    models: ModelsConfig,
    metrics: MetricsConfig,
    price_target: bool,
) -> WalkForwardResult:
    """Fit and calibrate every family on each walk-forward fold; score the test rows.

    Raises:
        InsufficientDataError: too little data for the folds, or a fold or calibration slice with one class.
    """
    splitter = WalkForwardSplit.from_config(splits, gap)
    times = features.times
    families = family_names(models)
    fold_results: list[FoldResult] = []
    predictions: list[pd.DataFrame] = []
    for fold, (train, test) in enumerate(splitter.split(features.X, features.y, groups=times), start=1):
        X_train, y_train = features.X.iloc[train], features.y.to_numpy()[train]
        X_test, y_test = features.X.iloc[test], features.y.to_numpy()[test]
        for family in families:
            model = CalibratedModel.from_config(make_estimator(family, models), calibration, gap)
            model.fit(X_train, y_train, times[train])
            p = model.predict_proba(X_test)[:, 1]
            p_raw = model.predict_proba_uncalibrated(X_test)[:, 1]
            meta = features.meta.iloc[test]
            fold_results.append(
                FoldResult(
                    fold=fold,
                    family=family,
                    train_start=_day(times[train[0]]),
                    train_end=_day(times[train[-1]]),
                    test_start=_day(times[test[0]]),
                    test_end=_day(times[test[-1]]),
                    n_train=len(train),
                    n_test=len(test),
                    metrics=_fold_metrics(y_test, p, p_raw, meta, metrics, price_target),
                )
            )
            predictions.append(meta.assign(fold=fold, family=family, y=y_test, p=p, p_uncalibrated=p_raw))
            logger.info("fold %d %s: %s", fold, family, fold_results[-1].metrics)
    table = pd.concat(predictions, ignore_index=True)
    pooled = {}
    for family, rows in table.groupby("family", sort=False):
        pooled[str(family)] = _fold_metrics(
            rows["y"].to_numpy(), rows["p"].to_numpy(), rows["p_uncalibrated"].to_numpy(), rows, metrics, price_target
        )
    selected = min(pooled, key=lambda f: pooled[f][SELECTION_METRIC])
    return WalkForwardResult(folds=fold_results, pooled=pooled, selected=selected, predictions=table)


def fit_challenger(
    features: FeatureSet,
    family: str,
    calibration: CalibrationConfig,
    models: ModelsConfig,
    gap: int,
    threshold: ThresholdConfig | None = None,
) -> CalibratedModel:
    """Refit ``family`` on every development row; calibrator and action threshold on the newest slice."""
    model = CalibratedModel.from_config(make_estimator(family, models), calibration, gap, threshold)
    return model.fit(features.X, features.y.to_numpy(), features.times, returns=features.returns)


def fold_table(result: WalkForwardResult) -> list[dict[str, Any]]:
    """The selected family's folds as plain rows (for summaries and JSON)."""
    rows = []
    for fold in result.selected_folds():
        row = {k: v for k, v in asdict(fold).items() if k != "metrics"}
        row.update({k: fold.metrics[k] for k in (*SUMMARY_METRICS, "brier_uncalibrated", "ece_uncalibrated")})
        rows.append(row)
    return rows
