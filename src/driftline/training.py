"""Walk-forward evaluation of every model family and the final challenger fit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from driftline.baselines import (
    BASE_RATE,
    BaselineModel,
    baseline_names,
    fit_baseline,
    is_baseline,
    known_labels,
    smoothed_share,
)
from driftline.calibration import (
    CalibratedModel,
    Calibrator,
    fit_slice_calibration,
    forms_for,
    level_shift,
    pooled_calibrator,
    select_fold_calibration,
    shift_level,
    shrink_folds,
    shrink_toward,
    window_column,
)
from driftline.config import AUTO, CalibrationConfig, FitSpec, MetricsConfig, ModelsConfig
from driftline.errors import InsufficientDataError
from driftline.features import FeatureSet, model_inputs
from driftline.metrics import (
    BinnedEce,
    binned_ece,
    classification_metrics,
    expected_calibration_error,
    strategy_metrics,
)
from driftline.models import ENSEMBLE, family_names, make_estimator
from driftline.splits import WalkForwardSplit, calibration_cut
from driftline.tuning import TuningResult, tune_window

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
    calibration: str = ""  # which calibrator scored the test rows, e.g. window-sigmoid or pooled-beta
    tuning: TuningResult | None = field(default=None, repr=False)  # the search on this fold's window (models.tuning)
    shrinkage: float = 1.0  # weight kept of the calibrated probability against the base rate (calibration.shrink)


EDGE_BOOTSTRAP = 2000  # block resamples behind the walk-forward edge's interval (promotion's default)


@dataclass(frozen=True)
class Edge:
    """The challenger family's pooled walk-forward log loss against the base rate's, row by row on the same
    test rows (``calibration.require_edge``): the mean difference and its two-sided interval at ``level``
    (``driftline.promotion.paired_difference_ci``, a moving-block bootstrap over timestamps)."""

    family: str
    diff: float
    low: float
    high: float
    level: float
    block_length: int
    rows: int
    against: str = BASE_RATE

    @property
    def shown(self) -> bool:
        """The whole interval lies below 0: the family beat the base rate out of sample."""
        return self.high < 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shown": self.shown}

    def describe(self) -> str:
        return (
            f"{self.family} - {self.against} log loss {self.diff:+.5f}, {self.level:.0%} CI [{self.low:+.5f}, "
            f"{self.high:+.5f}] over {self.rows} walk-forward rows (block {self.block_length})"
        )


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
    calibration: dict[str, str] = field(default_factory=dict)  # family -> the challenger's calibrator (auto)
    shrinkage: dict[str, float] = field(default_factory=dict)  # family -> the challenger's weight (calibration.shrink)
    edge: Edge | None = None  # the challenger family against the base rate (calibration.require_edge)

    @property
    def without_edge(self) -> bool:
        """The walk-forward showed no edge of the challenger family over the base rate: the challenger then
        predicts the development rows' positive share (``fit_challenger``)."""
        return self.edge is not None and not self.edge.shown

    def flattens(self, family: str) -> bool:
        """``family``'s challenger is the base rate: it is the selected family, and it showed no edge."""
        return self.without_edge and family == self.selected

    @property
    def best_baseline(self) -> str | None:
        """The baseline with the lowest pooled walk-forward log loss (None when none ran)."""
        if not self.baselines:
            return None
        return min(self.baselines, key=lambda b: self.baselines[b][SELECTION_METRIC])

    def selection_reason(self) -> str:
        ranked = sorted(self.pooled, key=lambda f: self.pooled[f][SELECTION_METRIC])
        scores = ", ".join(f"{f} {self.pooled[f][SELECTION_METRIC]:.4f}" for f in ranked)
        reason = f"lowest pooled out-of-sample {SELECTION_METRIC}: {scores}"
        if self.without_edge:
            reason += (
                f"; no walk-forward edge over the base rate ({self.edge.describe()}), "  # type: ignore[union-attr]
                "so the challenger predicts the development rows' positive share"
            )
        return reason

    def selected_folds(self) -> list[FoldResult]:
        return [f for f in self.folds if f.family == self.selected]

    def selected_predictions(self) -> pd.DataFrame:
        return self.predictions[self.predictions["family"] == self.selected]

    def tuning(self) -> list[TuningResult]:
        """Every search behind the folds (``models.tuning``), fold by fold; empty when tuning is off."""
        return [f.tuning for f in sorted(self.folds, key=lambda f: f.fold) if f.tuning is not None]

    def gate_ece(self, max_bins: int) -> BinnedEce:
        """The challenger's pooled walk-forward ECE as the promotion gate judges it: over at most ``max_bins``
        equal-mass bins of 100 rows or more (the reported ``ece`` always uses ``metrics.ece_bins``)."""
        rows = self.selected_predictions()
        return binned_ece(rows["y"].to_numpy(), rows["p"].to_numpy(), max_bins)

    def summary_metrics(self) -> dict[str, float]:
        """The challenger family's pooled metrics, and its worst fold's ECE (``ece_worst_fold``)."""
        return {k: self.pooled[self.selected][k] for k in (*SUMMARY_METRICS, "ece_worst_fold")}


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
    # An ensemble member's base-model probability and the labels on its window's calibration slice: the
    # ensemble's calibrator is fitted on the members' mean there (``ensemble_fold_outcomes``).
    calibration_slice: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)


def _compact(rows: np.ndarray) -> slice | np.ndarray:
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def walk_forward_jobs(features: FeatureSet, spec: FitSpec) -> list[FoldJob]:
    """Every (fold, family) fit of the walk-forward evaluation, fold by fold; each runs on its own.

    Each fold's model families come first, then the naive baselines the features support
    (``driftline.baselines.baseline_names``) on the same rows. The soft-vote ensemble is no job: it is
    built from its members' fold predictions (``ensemble_fold_outcomes``), not refitted.

    Raises:
        InsufficientDataError: too little data for the folds, or a fold with a single class.
    """
    splitter = WalkForwardSplit.from_config(spec.splits, spec.gap)
    families = [*(f for f in family_names(spec.models) if f != ENSEMBLE), *baseline_names(features)]
    return [
        FoldJob(fold=fold, family=family, train=_compact(train), test=_compact(test))
        for fold, (train, test) in enumerate(splitter.split(features.X, features.y, groups=features.times), start=1)
        for family in families
    ]


# A series' own column is named when most of the walk-forward's test rows (pooled over the folds) lie beyond every
# value of their fold's training rows: a level that grows or drifts (a total, a price, an index), not a reading
# that moves within a range (the bundled real series' readings: at most 1.2% of test rows; a seasonal temperature
# in its first year 36%; GDP, CPI and a ride's distance 89-100%).
BEYOND_SHARE = 0.5


def beyond_training_range(features: FeatureSet, spec: FitSpec, columns: Sequence[str]) -> dict[str, float]:
    """For each of ``columns``: the share of the walk-forward's test rows whose value lies below or above every
    value of their fold's training rows (the folds ``walk_forward_jobs`` fits; missing values never count).

    Raises:
        InsufficientDataError: as ``walk_forward_jobs`` (too little data for the folds).
    """
    splitter = WalkForwardSplit.from_config(spec.splits, spec.gap)
    values = {c: features.X[c].to_numpy(dtype=float) for c in columns}
    outside = dict.fromkeys(columns, 0)
    tested = 0
    for train, test in splitter.split(features.X, features.y, groups=features.times):
        tested += len(test)
        for column, column_values in values.items():
            past, now = column_values[train], column_values[test]
            if np.isnan(past).all():
                continue
            outside[column] += int(((now < np.nanmin(past)) | (now > np.nanmax(past))).sum())
    return {c: outside[c] / tested for c in columns} if tested else {}


def say_beyond_training_range(features: FeatureSet, spec: FitSpec, columns: Sequence[str], prefix: str = "") -> None:
    """A warning naming the series' own ``columns`` that most walk-forward test rows held beyond their training
    values (``BEYOND_SHARE``), with what to give instead and the key that leaves them out: no model learns
    from a level what it will do past the values it saw."""
    shares = beyond_training_range(features, spec, columns)
    found = sorted((c for c, share in shares.items() if share >= BEYOND_SHARE), key=lambda c: (-shares[c], c))
    if not found:
        return
    named = ", ".join(f"{c!r} ({shares[c]:.0%})" for c in found)
    logger.warning(
        "%s%s: most walk-forward test rows held values beyond every value of their fold's training rows "
        "(share of test rows in brackets): a level that grows or drifts (a total, a price, an index) is "
        "extrapolated blindly by a linear model (logreg, and the boosted trees on its base: models.linear_base) and "
        "not at all by a tree; give its change instead (a difference, or a ratio to an earlier row), or leave it "
        "out with --set data.exclude_cols=[%s]",
        prefix,
        named,
        ", ".join(found),
    )


@contextmanager
def _thread_budget(threads: int | None) -> Iterator[None]:
    """Cap BLAS/OpenMP pools too (logreg's linear algebra), not only the learners' own ``n_jobs``."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


def run_fold_job(job: FoldJob, features: FeatureSet, spec: FitSpec, threads: int | None = None) -> FoldOutcome:
    """Fit and calibrate ``job.family`` on the fold's training rows; score its test rows.

    A baseline (``driftline.baselines``) is fitted on the same rows and scored the same way, uncalibrated.

    Args:
        threads: threads the learner may use (1 when several jobs share the cores); None keeps the
            configured ``n_jobs``.

    Raises:
        InsufficientDataError: the fitting part or the calibration slice of the window holds one class.
    """
    calibration, models, gap = spec.calibration, spec.models, spec.gap
    times = features.times
    train_times, test_times = times[job.train], times[job.test]
    X_train, y_train = features.X.iloc[job.train], features.y.to_numpy()[job.train]
    X_test, y_test = features.X.iloc[job.test], features.y.to_numpy()[job.test]
    window: dict[str, np.ndarray] = {}
    shrink_columns: dict[str, Any] = {}
    calibration_slice = None
    tuning = None
    if is_baseline(job.family):
        known = known_labels(features)
        baseline = BaselineModel(job.family, models.seed)
        baseline.fit(X_train, y_train, None if known is None else known[job.train])
        p = p_raw = baseline.predict_proba(X_test, None if known is None else known[job.test])
        calibrated_by = "none"
    else:
        with _thread_budget(threads):
            # models.tuning: searched on this window's fitting rows only, never a calibration or test row.
            fit_models, tuning = tune_window(
                job.family, model_inputs(X_train), y_train, train_times, models, calibration, gap, threads
            )
            model = CalibratedModel.from_config(make_estimator(job.family, fit_models, threads), calibration, gap)
            try:
                model.fit(X_train, y_train, train_times)
            except InsufficientDataError as exc:
                raise InsufficientDataError(f"fold {job.fold} ({job.family}): {exc}") from None
            p = model.predict_proba(X_test)[:, 1]
            p_raw = model.predict_proba_uncalibrated(X_test)[:, 1]
            # calibration.shrink: the weight is fitted again per fold on earlier folds' rows (shrink_folds).
            shrink_columns = {
                "p_calibrated": model.predict_proba_calibrated(X_test),
                "base_rate": model.base_rate_,
                "shrink_target": model.shrink_targets(X_test),
                "slice_shrinkage": model.slice_shrinkage_,
            }
            if job.family != ENSEMBLE and ENSEMBLE in family_names(models):
                # One predict on the slice rows instead of refitting every member for the ensemble.
                _, cal_rows = calibration_cut(train_times, calibration.fraction, gap)
                calibration_slice = (model.predict_proba_uncalibrated(X_train.iloc[cal_rows])[:, 1], y_train[cal_rows])
        # auto: every window-slice form's test predictions, compared on later folds by combine_fold_results.
        if calibration.method == "auto":
            window = {window_column(form): c.predict(p_raw) for form, c in model.window_calibrators_.items()}
        calibrated_by = model.calibration_
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
        metrics=_fold_metrics(y_test, p, p_raw, meta, spec.metrics, spec.is_direction),
        calibration=calibrated_by,
        tuning=tuning,
        shrinkage=shrink_columns.get("slice_shrinkage", 1.0),
    )
    logger.info("fold %d %s: %s", job.fold, job.family, result.metrics)
    predictions = meta.assign(
        fold=job.fold, family=job.family, y=y_test, p=p, p_uncalibrated=p_raw, **shrink_columns, **window
    )
    return FoldOutcome(result=result, predictions=predictions, calibration_slice=calibration_slice)


def ensemble_fold_outcomes(
    outcomes: Sequence[FoldOutcome],
    members: Sequence[str],
    calibration: CalibrationConfig,
    metrics: MetricsConfig,
    price_target: bool,
) -> list[FoldOutcome]:
    """The soft-vote ensemble of ``members`` on every fold, from the members' own fold outcomes.

    A soft vote's probability is the mean of its members' probabilities, and each member was fitted on
    the same rows, with the same seed, in its own job; so the ensemble's base probability on the test
    rows and on the calibration slice is the members' mean, and its calibrator is fitted on the slice as
    ``CalibratedModel`` would (``fit_slice_calibration``). The same result as refitting a
    ``VotingClassifier`` per fold, for the cost of a calibrator.

    Raises:
        ValueError: a fold lacks a member, or a member's outcome has no calibration slice.
    """
    by_fold: dict[int, dict[str, FoldOutcome]] = {}
    for outcome in outcomes:
        if outcome.result.family in members:
            by_fold.setdefault(outcome.result.fold, {})[outcome.result.family] = outcome
    built = []
    for fold, found in sorted(by_fold.items()):
        missing = [m for m in members if m not in found or found[m].calibration_slice is None]
        if missing:
            raise ValueError(f"fold {fold}: no predictions (or calibration slice) of ensemble member(s) {missing}")
        parts = [found[m] for m in members]
        first = parts[0]
        p_raw = np.mean([o.predictions["p_uncalibrated"].to_numpy() for o in parts], axis=0)
        slice_raw = np.mean([o.calibration_slice[0] for o in parts], axis=0)  # type: ignore[index]
        sliced = fit_slice_calibration(slice_raw, first.calibration_slice[1], calibration.method)  # type: ignore[index]
        p = sliced.calibrator.predict(p_raw)
        if calibration.method != "auto" and "base_rate" in first.predictions.columns:
            # The slice calibrator's level moved toward the window's, as in CalibratedModel.
            window_share = float(first.predictions["base_rate"].iloc[0])
            slice_share = float(np.mean(first.calibration_slice[1]))  # type: ignore[index]
            p = shift_level(p, level_shift(window_share, slice_share, calibration.level))
        window = (
            {window_column(form): c.predict(p_raw) for form, c in sliced.window.items()}
            if calibration.method == "auto"
            else {}
        )
        kept = [c for c in first.predictions.columns if not c.startswith("p_window_")]
        shrink_columns: dict[str, Any] = {}
        if "slice_shrinkage" in first.predictions.columns:
            # The members' slice weights averaged: the slice evidence of their mean, without refitting.
            weight = float(np.mean([o.predictions["slice_shrinkage"].iloc[0] for o in parts]))
            shrink_columns = {"p_calibrated": p, "slice_shrinkage": weight}
            p = shrink_toward(p, first.predictions[_shrink_target(first.predictions)].to_numpy(), weight)
        predictions = first.predictions[kept].assign(
            family=ENSEMBLE, p=p, p_uncalibrated=p_raw, **shrink_columns, **window
        )
        y = predictions["y"].to_numpy()
        result = replace(
            first.result,
            family=ENSEMBLE,
            metrics=_fold_metrics(y, p, p_raw, predictions, metrics, price_target),
            calibration=sliced.name,
        )
        built.append(FoldOutcome(result=result, predictions=predictions))
    return built


def _instants(values: Any) -> np.ndarray:
    """Timestamps as UTC nanoseconds (naive ones read as UTC), comparable whatever their dtype."""
    instants: np.ndarray = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").values.view("i8")
    return instants


def _challenger_slice_rows(folds: Sequence[FoldResult], fraction: float) -> int:
    """About the rows of the challenger's calibration slice: its window is the development rows, at least
    the last fold's training window plus its test rows."""
    last = folds[-1]
    return round((last.n_train + last.n_test) * fraction)


def calibrate_folds(
    folds: list[FoldResult],
    table: pd.DataFrame,
    calibration: CalibrationConfig,
    gap: int,
    metrics: MetricsConfig,
    price_target: bool,
) -> tuple[list[FoldResult], pd.DataFrame, dict[str, str]]:
    """``calibration.method: auto``: per family and fold, the calibrator chosen on earlier folds' rows
    (``select_fold_calibration``); the test rows' ``p`` and the fold metrics follow it.

    Returns the folds, the table with ``p`` replaced, and each family's choice for its challenger.
    """
    forms = [c.removeprefix("p_window_") for c in table.columns if c.startswith("p_window_")]
    chosen: dict[tuple[str, int], str] = {}
    challenger: dict[str, str] = {}
    table = table.copy()
    for family, index in table.groupby("family", sort=False, observed=True).groups.items():
        rows = table.loc[index]
        family_folds = [f for f in folds if f.family == family]
        choice = select_fold_calibration(
            rows["fold"].to_numpy(),
            _instants(rows["timestamp"]),
            rows["y"].to_numpy(),
            rows["p_uncalibrated"].to_numpy(),
            {form: rows[window_column(form)].to_numpy() for form in forms},
            {f.fold: _instants([f.train_end])[0] for f in family_folds},
            forms_for(_challenger_slice_rows(family_folds, calibration.fraction)),
            {f.fold: round(f.n_train * calibration.fraction) for f in family_folds},
            _challenger_slice_rows(family_folds, calibration.fraction),
        )
        table.loc[index, "p"] = choice.p
        chosen.update({(str(family), k): v for k, v in choice.chosen.items()})
        challenger[str(family)] = choice.challenger
    updated = []
    for fold in folds:
        rows = table[(table["family"] == fold.family) & (table["fold"] == fold.fold)]
        values = _fold_metrics(
            rows["y"].to_numpy(), rows["p"].to_numpy(), rows["p_uncalibrated"].to_numpy(), rows, metrics, price_target
        )
        updated.append(replace(fold, metrics=values, calibration=chosen[(fold.family, fold.fold)]))
    return updated, table, challenger


def _first_per_fold(rows: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's number and its first value of ``column`` (constant within a fold)."""
    first = rows.groupby("fold")[column].first()
    return first.index.to_numpy(), first.to_numpy()


def _shrink_target(rows: pd.DataFrame) -> str:
    """The column of what each row is shrunk toward (``CalibratedModel.shrink_targets``); the streamed path's
    folds have none (their store holds no series level): the window's share."""
    return "shrink_target" if "shrink_target" in rows.columns else "base_rate"


def shrink_fold_predictions(
    folds: list[FoldResult], table: pd.DataFrame, metrics: MetricsConfig, price_target: bool
) -> tuple[list[FoldResult], pd.DataFrame, dict[str, float]]:
    """``calibration.shrink``: per family and fold, the calibrated probability pulled toward each row's
    series' recent share of known labels (``features.level_window``; else the training window's positive
    share) by a weight fitted on earlier folds' rows (``shrink_folds``); the test rows' ``p`` and the fold
    metrics follow it.

    Returns the folds, the table with ``p`` replaced, and each family's weight for its challenger.
    """
    table = table.copy()
    weights: dict[tuple[str, int], float] = {}
    challenger: dict[str, float] = {}
    for family, index in table.groupby("family", sort=False, observed=True).groups.items():
        rows = table.loc[index]
        family_folds = [f for f in folds if f.family == family]
        fold_ids = rows["fold"].to_numpy()
        shrunk = shrink_folds(
            fold_ids,
            _instants(rows["timestamp"]),
            rows["y"].to_numpy(),
            rows["p_calibrated"].to_numpy(),
            rows[_shrink_target(rows)].to_numpy(),
            {int(k): float(w) for k, w in zip(*_first_per_fold(rows, "slice_shrinkage"), strict=True)},
            {f.fold: _instants([f.train_end])[0] for f in family_folds},
        )
        table.loc[index, "p"] = shrunk.p
        weights.update({(str(family), k): w for k, w in shrunk.weights.items()})
        challenger[str(family)] = shrunk.challenger
    return _refresh_fold_metrics(folds, table, metrics, price_target, weights), table, challenger


def _refresh_fold_metrics(
    folds: list[FoldResult],
    table: pd.DataFrame,
    metrics: MetricsConfig,
    price_target: bool,
    weights: dict[tuple[str, int], float] | None = None,
) -> list[FoldResult]:
    """The folds with their metrics scored again on the table's ``p`` and their shrinkage weight (``weights``
    by (family, fold); None: 1, unshrunk)."""
    updated = []
    for fold in folds:
        rows = table[(table["family"] == fold.family) & (table["fold"] == fold.fold)]
        values = _fold_metrics(
            rows["y"].to_numpy(), rows["p"].to_numpy(), rows["p_uncalibrated"].to_numpy(), rows, metrics, price_target
        )
        weight = 1.0 if weights is None else weights[(fold.family, fold.fold)]
        updated.append(replace(fold, metrics=values, shrinkage=weight))
    return updated


def shrink_families_that_lost(
    folds: list[FoldResult],
    table: pd.DataFrame,
    baselines: dict[str, dict[str, float]],
    metrics: MetricsConfig,
    price_target: bool,
) -> tuple[list[FoldResult], pd.DataFrame, dict[str, float]]:
    """``calibration.shrink: auto``: a family whose calibrated walk-forward predictions lost to the base
    rate (pooled out-of-sample log loss), the forecast shrinkage pulls toward, is shrunk as ``shrink: true``
    does (``shrink_fold_predictions``: weights fitted on earlier folds); every other family keeps its
    calibrated probability, unshrunk.

    A family that beat the base rate has earned its spread, and a weight learnt on early folds can erase it
    on later ones (the reason ``shrink`` is not simply on); one that did not has shown nothing a weight could
    erase, and without shrinkage it stays worse than the base rate (the sign of a stock's 5-day return: every
    family's log loss above the base rate's). Losing to persistence alone is no reason: pulling toward the
    base rate does not bring a model nearer the last label (a cyclist's speed, volatility target: the first
    fold's slice weight 0 turned each tree family into the training window's share, 0.327 on a fold with
    0.563 positives, its log loss 0.686 -> 0.802). The decision is made on the same pooled walk-forward rows
    that choose the challenger family, as that choice is. Without the base rate's (the streamed path)
    nothing is shrunk.

    Returns the folds, the table with ``p`` replaced, and the shrunk families' weights for their challenger.
    """
    plain_table = table.copy()
    plain_table["p"] = plain_table["p_calibrated"]
    plain_folds = _refresh_fold_metrics(folds, plain_table, metrics, price_target)
    if BASE_RATE not in baselines:
        return plain_folds, plain_table, {}
    floor = baselines[BASE_RATE][SELECTION_METRIC]
    plain = _pooled(plain_table, plain_folds, metrics, price_target)
    lost = {family for family, values in plain.items() if values[SELECTION_METRIC] > floor}
    if not lost:
        return plain_folds, plain_table, {}
    shrunk_folds, shrunk_table, weights = shrink_fold_predictions(folds, table, metrics, price_target)
    in_lost = plain_table["family"].astype(str).isin(lost).to_numpy()
    plain_table.loc[in_lost, "p"] = shrunk_table.loc[in_lost, "p"]
    chosen = [s if s.family in lost else p for s, p in zip(shrunk_folds, plain_folds, strict=True)]
    return chosen, plain_table, {family: weights[family] for family in lost}


def combine_fold_results(outcomes: Sequence[FoldOutcome], spec: FitSpec) -> WalkForwardResult:
    """Pool the jobs' out-of-sample predictions per family and pick the challenger family; the baselines
    are pooled apart and never picked.

    ``outcomes`` in job order (``walk_forward_jobs``), wherever the jobs ran. With ``calibration.method:
    auto`` each fold's calibrator is chosen here, from earlier folds' rows (``calibrate_folds``). When
    ``spec.models`` enables the ensemble, its folds are built here from its members'
    (``ensemble_fold_outcomes``) and it competes like any family.
    """
    calibration, metrics, price_target = spec.calibration, spec.metrics, spec.is_direction
    models = [o for o in outcomes if not is_baseline(o.result.family)]
    if ENSEMBLE in family_names(spec.models) and not any(o.result.family == ENSEMBLE for o in models):
        models = _after_members(
            models, ensemble_fold_outcomes(models, spec.models.families, calibration, metrics, price_target)
        )
    baselines = [o for o in outcomes if is_baseline(o.result.family)]
    table = pd.concat([outcome.predictions for outcome in models], ignore_index=True)
    table["family"] = table["family"].astype("category")  # a code per row, not a string: smaller to pickle and cache
    folds = [o.result for o in models]
    challenger_calibration: dict[str, str] = {}
    if calibration.method == "auto":
        folds, table, challenger_calibration = calibrate_folds(
            folds, table, calibration, spec.gap, metrics, price_target
        )
        if "p_calibrated" in table.columns:
            table["p_calibrated"] = table["p"]  # the chosen calibrator's, before shrinkage
    baseline_folds = [o.result for o in baselines]
    baseline_table = pd.concat([o.predictions for o in baselines], ignore_index=True) if baselines else None
    pooled_baselines = {} if baseline_table is None else _pooled(baseline_table, baseline_folds, metrics, price_target)
    challenger_shrinkage: dict[str, float] = {}
    if calibration.shrink == AUTO and "p_calibrated" in table.columns:
        folds, table, challenger_shrinkage = shrink_families_that_lost(
            folds, table, pooled_baselines, metrics, price_target
        )
    elif calibration.shrink is True and "p_calibrated" in table.columns:
        folds, table, challenger_shrinkage = shrink_fold_predictions(folds, table, metrics, price_target)
    pooled = _pooled(table, folds, metrics, price_target)
    selected = min(pooled, key=lambda f: pooled[f][SELECTION_METRIC])
    edge = None
    if spec.edge_level is not None and baseline_table is not None:
        edge = walk_forward_edge(table, baseline_table, selected, spec)
    return WalkForwardResult(
        folds=folds,
        pooled=pooled,
        selected=selected,
        predictions=table,
        baselines=pooled_baselines,
        baseline_folds=baseline_folds,
        calibration=challenger_calibration,
        shrinkage=challenger_shrinkage,
        edge=edge,
    )


def walk_forward_edge(table: pd.DataFrame, baseline_table: pd.DataFrame, family: str, spec: FitSpec) -> Edge | None:
    """``family``'s walk-forward predictions (``p``) against the base rate's on the same test rows: the mean row
    log-loss difference and its interval at ``calibration.require_edge`` (None without the base rate's rows).

    Each job's rows are its fold's test rows in the features' order, for a family and a baseline alike, so the
    two tables line up fold by fold."""
    level = spec.edge_level
    base = baseline_table[baseline_table["family"] == BASE_RATE]
    if level is None or base.empty:
        return None
    ours = table[table["family"] == family]
    ours, base = (rows.sort_values("fold", kind="stable") for rows in (ours, base))
    y = ours["y"].to_numpy(dtype=float)
    if len(ours) != len(base) or not np.array_equal(y, base["y"].to_numpy(dtype=float)):
        raise ValueError(f"{family}'s walk-forward rows do not line up with the base rate's")
    return edge_over(
        family,
        y,
        ours["p"].to_numpy(),
        base["p"].to_numpy(),
        ours["timestamp"].to_numpy(),
        level,
        spec.block_length,
        spec.models.seed,
    )


def edge_over(
    family: str,
    y: np.ndarray,
    p: np.ndarray,
    p_base: np.ndarray | float,
    times: np.ndarray,
    level: float,
    block_length: int,
    seed: int,
) -> Edge:
    """Predictions ``p`` against the base rate's ``p_base`` on the same rows: the mean row log-loss difference
    and its two-sided interval at ``level`` (``driftline.promotion.paired_difference_ci``, per timestamp)."""
    from driftline.promotion import paired_difference_ci, row_losses

    y = np.asarray(y, dtype=float)
    base = np.broadcast_to(np.asarray(p_base, dtype=float), y.shape)
    diff, low, high = paired_difference_ci(
        row_losses(y, p)["log_loss"], row_losses(y, base)["log_loss"], times, block_length, EDGE_BOOTSTRAP, level, seed
    )
    return Edge(family, diff, low, high, level, block_length, len(y))


def _after_members(outcomes: list[FoldOutcome], ensemble: list[FoldOutcome]) -> list[FoldOutcome]:
    """Each fold's ensemble outcome right after that fold's families, as a job of its own would be."""
    extra = {o.result.fold: o for o in ensemble}
    ordered: list[FoldOutcome] = []
    for i, outcome in enumerate(outcomes):
        ordered.append(outcome)
        last_of_fold = i + 1 == len(outcomes) or outcomes[i + 1].result.fold != outcome.result.fold
        if last_of_fold and outcome.result.fold in extra:
            ordered.append(extra.pop(outcome.result.fold))
    return ordered + list(extra.values())


def _pooled(
    table: pd.DataFrame, folds: list[FoldResult], metrics: MetricsConfig, price_target: bool
) -> dict[str, dict[str, float]]:
    pooled = {}
    for family, rows in table.groupby("family", sort=False, observed=True):
        pooled[str(family)] = _fold_metrics(
            rows["y"].to_numpy(), rows["p"].to_numpy(), rows["p_uncalibrated"].to_numpy(), rows, metrics, price_target
        )
        pooled[str(family)]["ece_worst_fold"] = max(f.metrics["ece"] for f in folds if f.family == family)
    return pooled


def run_walk_forward(
    features: FeatureSet,
    spec: FitSpec,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WalkForwardResult:
    """Fit and calibrate every family on each walk-forward fold, one job after another; score the test rows.

    Args:
        progress: called with (fits done, fits in all) after each fit.

    Raises:
        InsufficientDataError: too little data for the folds, or a fold or calibration slice with one class.
    """
    jobs = walk_forward_jobs(features, spec)
    outcomes = []
    for job in jobs:
        outcomes.append(run_fold_job(job, features, spec, threads))
        if progress is not None:
            progress(len(outcomes), len(jobs))
    return combine_fold_results(outcomes, spec)


def fit_challenger(
    features: FeatureSet, family: str, spec: FitSpec, walk_forward: WalkForwardResult | None = None
) -> CalibratedModel:
    """Refit ``family`` on every development row; calibrator and action threshold on the newest slice.

    With ``calibration.method: auto`` and the walk-forward result, the calibrator is the one that held best
    over the folds: a form fitted on the newest slice, or one fitted on all the family's out-of-fold
    predictions (``pooled-<form>``).

    With ``models.tuning`` the hyperparameters are searched again, on the development rows' own inner split
    (the same rule as in each fold: fitting rows before the calibration slice, inner validation at their
    end), and the search is kept as ``model.tuning_``. Not the last fold's best: the walk-forward measured
    the *procedure* "search on the window, then refit", and this applies that procedure to the rows the
    challenger learns from (the nested cross-validation argument). Early stopping then also counts the
    trees for this many rows, where the last fold's count was found on a window one test fold shorter.
    It costs one more search per training run, and the challenger needs no walk-forward result to refit.

    With ``calibration.shrink`` and the walk-forward result, the calibrated probability is pulled toward the
    development rows' positive share by the weight the family's out-of-fold rows support
    (``WalkForwardResult.shrinkage``); without it, by the weight its own calibration slice supports.

    With ``calibration.require_edge``, when the walk-forward showed no edge of ``family`` over the base rate
    (``WalkForwardResult.flattens``), the model is fitted as always, then flattened (``CalibratedModel.flatten``)
    to the development rows' smoothed positive share: it predicts what the ``base_rate`` baseline predicts.
    """
    calibration, given, choice, shrinkage = challenger_calibration(family, spec.calibration, walk_forward)
    y = features.y.to_numpy()
    fit_models, tuning = tune_window(
        family, model_inputs(features.X), y, features.times, spec.models, calibration, spec.gap
    )
    model = CalibratedModel.from_config(
        make_estimator(family, fit_models), calibration, spec.gap, spec.threshold, given, choice, shrinkage
    )
    model.fit(features.X, y, features.times, returns=features.returns)
    if walk_forward is not None and walk_forward.flattens(family):  # calibration.require_edge
        model.flatten(smoothed_share(y))  # what the base_rate baseline predicts, to the digit
    model.tuning_ = tuning
    return model


def challenger_calibration(
    family: str, calibration: CalibrationConfig, walk_forward: WalkForwardResult | None
) -> tuple[CalibrationConfig, Calibrator | None, str | None, float | None]:
    """What the walk-forward decided for the challenger's calibration (``fit_challenger``): the calibration
    section to fit with, a calibrator fitted on the pooled out-of-fold rows (or None), its name, and the
    shrinkage weight (or None)."""
    choice = (
        (walk_forward.calibration.get(family) if walk_forward is not None else None)
        if calibration.method == "auto"
        else None
    )
    given = None
    if choice is not None:
        rows = walk_forward.predictions[walk_forward.predictions["family"] == family]  # type: ignore[union-attr]
        given = pooled_calibrator(choice, rows["p_uncalibrated"].to_numpy(), rows["y"].to_numpy())
        if given is None:  # window-<form>: that form on the newest slice
            calibration = calibration.model_copy(update={"method": choice.removeprefix("window-")})
    # calibration.shrink: the weight every out-of-fold row of the family supports (else its own slice's).
    shrinkage = walk_forward.shrinkage.get(family) if walk_forward is not None and calibration.shrink else None
    if calibration.shrink == AUTO:  # only a family the walk-forward shrank (it lost to a naive baseline)
        calibration = calibration.model_copy(update={"shrink": shrinkage is not None})
    return calibration, given, choice, shrinkage


def fold_table(result: WalkForwardResult) -> list[dict[str, Any]]:
    """The selected family's folds as plain rows (for summaries and JSON)."""
    rows = []
    for fold in result.selected_folds():
        row = {k: v for k, v in asdict(fold).items() if k not in ("metrics", "tuning")}
        row.update({k: fold.metrics[k] for k in (*SUMMARY_METRICS, "brier_uncalibrated", "ece_uncalibrated")})
        rows.append(row)
    return rows


def baseline_fold_table(result: WalkForwardResult) -> list[dict[str, Any]]:
    """The baselines' folds as plain rows, fold by fold (``baseline`` names the predictor)."""
    rows = []
    for fold in sorted(result.baseline_folds, key=lambda f: f.fold):
        row = {"baseline" if k == "family" else k: v for k, v in asdict(fold).items() if k not in ("metrics", "tuning")}
        row.update({k: fold.metrics[k] for k in SUMMARY_METRICS})
        rows.append(row)
    return rows


def fit_best_baseline(features: FeatureSet, result: WalkForwardResult, models: ModelsConfig) -> BaselineModel | None:
    """The best walk-forward baseline refitted on every development row (None when no baseline ran)."""
    name = result.best_baseline
    return None if name is None else fit_baseline(name, features, models.seed)
