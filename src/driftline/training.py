"""Walk-forward evaluation of every model family and the final challenger fit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftline.baselines import BaselineModel, baseline_names, fit_baseline, is_baseline, known_labels
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
    """Per-fold and pooled out-of-sample results of every family, and which one became the challenger.

    The naive baselines (``driftline.baselines``) ran through the same folds; their results are kept
    apart (``baselines``, ``baseline_folds``) so that no baseline is ever selected.
    """

    folds: list[FoldResult]
    pooled: dict[str, dict[str, float]]
    selected: str
    predictions: pd.DataFrame = field(repr=False)  # fold, family, y, p, p_uncalibrated + meta columns
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    baseline_folds: list[FoldResult] = field(default_factory=list)

    @property
    def best_baseline(self) -> str | None:
        """The baseline with the lowest pooled walk-forward log loss (None when none ran)."""
        if not self.baselines:
            return None
        return min(self.baselines, key=lambda b: self.baselines[b][SELECTION_METRIC])

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


@dataclass(frozen=True)
class FoldJob:
    """One family on one walk-forward fold: fit on the ``train`` rows, score the ``test`` rows.

    Rows are positions in the feature set; a slice when they are contiguous (features are in time order,
    so they are), which keeps a job a few bytes wherever it is sent.
    """

    fold: int
    family: str
    train: slice | np.ndarray
    test: slice | np.ndarray


@dataclass(frozen=True)
class FoldOutcome:
    """What one job produced: its fold result and its test rows' predictions."""

    result: FoldResult
    predictions: pd.DataFrame = field(repr=False)  # meta columns + fold, family, y, p, p_uncalibrated


def _compact(rows: np.ndarray) -> slice | np.ndarray:
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def walk_forward_jobs(features: FeatureSet, splits: SplitConfig, gap: int, models: ModelsConfig) -> list[FoldJob]:
    """Every (fold, family) fit of the walk-forward evaluation, fold by fold; each runs on its own.

    Each fold's model families come first, then the naive baselines the features support
    (``driftline.baselines.baseline_names``) on the same rows.

    Raises:
        InsufficientDataError: too little data for the folds, or a fold with a single class.
    """
    splitter = WalkForwardSplit.from_config(splits, gap)
    families = [*family_names(models), *baseline_names(features)]
    return [
        FoldJob(fold=fold, family=family, train=_compact(train), test=_compact(test))
        for fold, (train, test) in enumerate(splitter.split(features.X, features.y, groups=features.times), start=1)
        for family in families
    ]


@contextmanager
def _thread_budget(threads: int | None) -> Iterator[None]:
    """Cap BLAS/OpenMP pools too (logreg's linear algebra), not only the learners' own ``n_jobs``."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


def run_fold_job(
    job: FoldJob,
    features: FeatureSet,
    gap: int,
    calibration: CalibrationConfig,
    models: ModelsConfig,
    metrics: MetricsConfig,
    price_target: bool,
    threads: int | None = None,
) -> FoldOutcome:
    """Fit and calibrate ``job.family`` on the fold's training rows; score its test rows.

    A baseline (``driftline.baselines``) is fitted on the same rows and scored the same way, uncalibrated.

    Args:
        threads: threads the learner may use (1 when several jobs share the cores); None keeps the
            configured ``n_jobs``.

    Raises:
        InsufficientDataError: the fitting part or the calibration slice of the window holds one class.
    """
    times = features.times
    train_times, test_times = times[job.train], times[job.test]
    X_train, y_train = features.X.iloc[job.train], features.y.to_numpy()[job.train]
    X_test, y_test = features.X.iloc[job.test], features.y.to_numpy()[job.test]
    if is_baseline(job.family):
        known = known_labels(features)
        baseline = BaselineModel(job.family, models.seed)
        baseline.fit(X_train, y_train, None if known is None else known[job.train])
        p = p_raw = baseline.predict_proba(X_test, None if known is None else known[job.test])
    else:
        with _thread_budget(threads):
            model = CalibratedModel.from_config(make_estimator(job.family, models, threads), calibration, gap)
            model.fit(X_train, y_train, train_times)
            p = model.predict_proba(X_test)[:, 1]
            p_raw = model.predict_proba_uncalibrated(X_test)[:, 1]
    meta = features.meta.iloc[job.test]
    result = FoldResult(
        fold=job.fold,
        family=job.family,
        train_start=_day(train_times[0]),
        train_end=_day(train_times[-1]),
        test_start=_day(test_times[0]),
        test_end=_day(test_times[-1]),
        n_train=len(train_times),
        n_test=len(test_times),
        metrics=_fold_metrics(y_test, p, p_raw, meta, metrics, price_target),
    )
    logger.info("fold %d %s: %s", job.fold, job.family, result.metrics)
    predictions = meta.assign(fold=job.fold, family=job.family, y=y_test, p=p, p_uncalibrated=p_raw)
    return FoldOutcome(result=result, predictions=predictions)


def combine_fold_results(outcomes: Sequence[FoldOutcome], metrics: MetricsConfig, price_target: bool) -> WalkForwardResult:
    """Pool the jobs' out-of-sample predictions per family and pick the challenger family; the baselines
    are pooled apart and never picked.

    ``outcomes`` in job order (``walk_forward_jobs``), wherever the jobs ran.
    """
    models = [o for o in outcomes if not is_baseline(o.result.family)]
    baselines = [o for o in outcomes if is_baseline(o.result.family)]
    table = pd.concat([outcome.predictions for outcome in models], ignore_index=True)
    table["family"] = table["family"].astype("category")  # a code per row, not a string: smaller to pickle and cache
    pooled = _pooled(table, metrics, price_target)
    selected = min(pooled, key=lambda f: pooled[f][SELECTION_METRIC])
    baseline_pooled = _pooled(pd.concat([o.predictions for o in baselines], ignore_index=True), metrics, price_target) if baselines else {}
    return WalkForwardResult(
        folds=[o.result for o in models],
        pooled=pooled,
        selected=selected,
        predictions=table,
        baselines=baseline_pooled,
        baseline_folds=[o.result for o in baselines],
    )


def _pooled(table: pd.DataFrame, metrics: MetricsConfig, price_target: bool) -> dict[str, dict[str, float]]:
    pooled = {}
    for family, rows in table.groupby("family", sort=False, observed=True):
        pooled[str(family)] = _fold_metrics(
            rows["y"].to_numpy(), rows["p"].to_numpy(), rows["p_uncalibrated"].to_numpy(), rows, metrics, price_target
        )
    return pooled


def run_walk_forward(
    features: FeatureSet,
    splits: SplitConfig,
    gap: int,
    calibration: CalibrationConfig,
    models: ModelsConfig,
    metrics: MetricsConfig,
    price_target: bool,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WalkForwardResult:
    """Fit and calibrate every family on each walk-forward fold, one job after another; score the test rows.

    Args:
        progress: called with (fits done, fits in all) after each fit.

    Raises:
        InsufficientDataError: too little data for the folds, or a fold or calibration slice with one class.
    """
    jobs = walk_forward_jobs(features, splits, gap, models)
    outcomes = []
    for job in jobs:
        outcomes.append(run_fold_job(job, features, gap, calibration, models, metrics, price_target, threads))
        if progress is not None:
            progress(len(outcomes), len(jobs))
    return combine_fold_results(outcomes, metrics, price_target)


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


def baseline_fold_table(result: WalkForwardResult) -> list[dict[str, Any]]:
    """The baselines' folds as plain rows, fold by fold (``baseline`` names the predictor)."""
    rows = []
    for fold in sorted(result.baseline_folds, key=lambda f: f.fold):
        row = {"baseline" if k == "family" else k: v for k, v in asdict(fold).items() if k != "metrics"}
        row.update({k: fold.metrics[k] for k in SUMMARY_METRICS})
        rows.append(row)
    return rows


def fit_best_baseline(features: FeatureSet, result: WalkForwardResult, models: ModelsConfig) -> BaselineModel | None:
    """The best walk-forward baseline refitted on every development row (None when no baseline ran)."""
    name = result.best_baseline
    return None if name is None else fit_baseline(name, features, models.seed)
