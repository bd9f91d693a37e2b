"""Walk-forward training that streams from a feature store (``driftline.feature_store``).

The folds, purge gaps and calibration slices are those of the in-memory path: they are cut on the store's
timestamps (held in memory, with the labels: 16 bytes a row) by the same ``WalkForwardSplit`` and
``calibration_cut``. Only feature rows stream, a batch of whole timestamps at a time:

- XGBoost: a ``QuantileDMatrix`` built from a ``DataIter`` over the batches (one byte per value once
  quantised) and ``xgboost.train`` with the in-memory path's parameters.
- LightGBM: a ``Dataset`` built from ``lightgbm.Sequence`` objects, one per batch, read when LightGBM
  samples the bin boundaries and again when it bins the rows (the same sample rows as from an array).
- logistic regression: a streamed ``StandardScaler.partial_fit`` pass, then ``SGDClassifier(loss="log_loss")``
  ``partial_fit`` epochs over the batches (the in-memory path's L-BFGS solver needs every row at once).

An in-process run reads its windows about a dozen times over, so it first copies the store's rows once into
a scratch folder beside the store (``FeatureStore.spilled``: row-major float32, removed afterwards), and every
later read is a contiguous slice of that file instead of a Parquet decode.

Base-model probabilities on the calibration slice and the test rows are predicted batch by batch; the
calibrators (their level moved toward the training window's share, ``calibration.level``), fold metrics,
pooled metrics, ``auto`` calibration and family selection are the in-memory path's own
(``fit_slice_calibration``, ``level_shift``, ``combine_fold_results``) applied to those 1-d predictions.

With a Dask client, the boosted trees train with ``xgboost.dask`` / ``lightgbm.dask`` instead, every worker
reading its own symbols' files of the store (``dask_fit``).

When the target asks for an edge over the base rate (``calibration.require_edge``: by default a direction
target), the base rate runs through the same folds too (``run_base_rate_streaming``: each training window's
Laplace-smoothed share, from the labels in memory), only for that test: its results are not kept as a
baseline (the other baselines need every label row of a symbol in memory, and the hold-out comparison of a
first model is against the development rows' share, ``Trained.base_rate``). A challenger without an edge
predicts that share exactly, so it ties the comparison and is not promoted.

The challenger (``fit_challenger_streaming``) is the selected family refitted on every development row the
same way, calibrated on the newest slice as ``CalibratedModel.fit`` cuts it; its booster becomes a
``driftline.models.BoosterClassifier`` so that the registry, scoring and SHAP take it like any other model.
The training flow goes this way by itself above ``scale.streaming_above_cells`` (``driftline.pipeline``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from driftline.baselines import BASE_RATE, smoothed_share
from driftline.calibration import (
    ONE_CLASS_HINT,
    ONE_CLASS_SLICE,
    CalibratedModel,
    fit_slice_calibration,
    level_shift,
    shift_level,
    window_column,
)
from driftline.config import FitSpec, ModelsConfig, RunnerConfig, ScaleConfig
from driftline.errors import InsufficientDataError
from driftline.feature_store import FeatureStore
from driftline.features import FeatureSet
from driftline.models import ENSEMBLE, BoosterClassifier, family_names, leaf_weight, model_params
from driftline.splits import WalkForwardSplit, calibration_cut
from driftline.training import (
    FoldOutcome,
    FoldResult,
    WalkForwardResult,
    _fold_metrics,
    challenger_calibration,
    combine_fold_results,
)

logger = logging.getLogger(__name__)

STREAMING_FAMILIES = ("logreg", "xgboost", "lightgbm")
BATCH_ROWS = 500_000
# Passes of SGD over the rows: many on small data (cheap, and SGD needs them to come near L-BFGS's
# optimum: 0.6695 against 0.6666 in-sample log loss on 532 rows after 20 passes, 0.6722 after 5; with the
# 0/1 lagged-label columns, the streamed walk-forward's log loss was 0.0108 from L-BFGS's after 60 passes,
# within 0.01 after 100: tests/unit/test_streaming.py), at least 5 on large data, where each pass reads the
# store again; never more than SGD_ROWS_PER_RUN rows in all.
SGD_MIN_EPOCHS, SGD_MAX_EPOCHS, SGD_ROWS_PER_RUN = 5, 100, 2_000_000


def sgd_epochs(n_rows: int) -> int:
    return max(SGD_MIN_EPOCHS, min(SGD_MAX_EPOCHS, SGD_ROWS_PER_RUN // max(n_rows, 1)))


class StreamedModel:
    """A fitted base model that predicts a batch's probability of class 1."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], booster: Any = None):
        self._predict = predict
        self.booster = booster

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(X), dtype=float)


@dataclass(frozen=True)
class DataPath:
    """In memory or streamed, and why (for the run summary)."""

    path: str  # "memory" | "streaming"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def choose_data_path(n_rows: int, n_features: int, scale: ScaleConfig) -> DataPath:
    """``scale.path`` when forced; under ``auto``, streaming above ``scale.streaming_above_cells``."""
    cells = n_rows * n_features
    size = f"{n_rows:,} rows x {n_features} features = {cells:,} cells"
    if scale.path != "auto":
        return DataPath(scale.path, f"scale.path: {scale.path} ({size})")
    if cells > scale.streaming_above_cells:
        return DataPath("streaming", f"{size} > scale.streaming_above_cells {scale.streaming_above_cells:,}")
    return DataPath("memory", f"{size} <= scale.streaming_above_cells {scale.streaming_above_cells:,}")


def _ranges(rows: np.ndarray) -> tuple[int, int]:
    """Fold rows are contiguous positions in time order."""
    if len(rows) == 0 or rows[-1] - rows[0] + 1 != len(rows):
        raise ValueError("streamed rows must be one contiguous range of positions")
    return int(rows[0]), int(rows[-1]) + 1


def _xgb_params(models: ModelsConfig, threads: int | None, share: float) -> tuple[dict[str, Any], int]:
    """The booster's parameters and rounds; ``share``: the positive share of the rows it learns from."""
    params = {"min_child_weight": leaf_weight(share), **model_params("xgboost", models, threads)}
    rounds = int(params.pop("n_estimators", 100))
    threads_param = params.pop("n_jobs", None)
    booster = {"objective": "binary:logistic", "eval_metric": "logloss", "seed": models.seed, **params}
    if threads_param is not None and threads_param > 0:
        booster["nthread"] = threads_param
    return booster, rounds


def _lgb_params(models: ModelsConfig, threads: int | None) -> tuple[dict[str, Any], int]:
    params = dict(model_params("lightgbm", models, threads, linear_base=False))
    rounds = int(params.pop("n_estimators", 100))
    # LGBMClassifier's own translation of its keyword arguments (random_state -> seed, n_jobs ...).
    from lightgbm import LGBMClassifier

    estimator = LGBMClassifier(random_state=models.seed, **params)
    core = estimator._process_params(stage="fit")  # the parameters fit() hands to lightgbm.train
    core = {k: v for k, v in core.items() if k not in ("n_estimators", "num_iterations")}
    core["objective"] = "binary"
    return core, rounds


def fit_streaming(
    family: str,
    store: FeatureStore,
    rows: tuple[int, int],
    models: ModelsConfig,
    threads: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> StreamedModel:
    """Fit ``family`` on the store's rows ``rows[0]:rows[1]`` (positions in time order), batch by batch.

    Raises:
        ValueError: a family without a streaming learner.
    """
    bounds = store.batch_bounds(*rows, batch_rows)
    if family == "xgboost":
        import xgboost as xgb

        class _Iter(xgb.DataIter):
            def __init__(self) -> None:
                super().__init__(release_data=True)
                self._k = 0

            def next(self, input_data: Callable[..., None]) -> bool:
                if self._k == len(bounds):
                    return False
                # XGBoost passes over the data several times: a window of one batch is read once.
                batch = one if one is not None else store.read(*bounds[self._k])
                input_data(data=batch.X, label=batch.y)
                self._k += 1
                return True

            def reset(self) -> None:
                self._k = 0

        one = store.read(*bounds[0]) if len(bounds) == 1 else None
        params, rounds = _xgb_params(models, threads, float(np.mean(store.labels[rows[0] : rows[1]])))
        matrix = xgb.QuantileDMatrix(_Iter(), max_bin=int(params.get("max_bin", 256)))
        booster = xgb.train(params, matrix, num_boost_round=rounds)
        del matrix, one
        return StreamedModel(lambda X: booster.inplace_predict(X), booster)
    if family == "lightgbm":
        import lightgbm as lgb

        held: dict[int, np.ndarray] = {}  # one batch's features at a time, whichever part asks

        class _Part(lgb.Sequence):
            """One batch of the window, read when LightGBM asks for its rows (sampling, then binning)."""

            def __init__(self, k: int) -> None:
                self._k = k
                self.batch_size = bounds[k][1] - bounds[k][0]

            def __len__(self) -> int:
                return self.batch_size

            def __getitem__(self, idx: Any) -> np.ndarray:
                if self._k not in held:
                    held.clear()
                    held[self._k] = store.read(*bounds[self._k]).X.astype(np.float64)  # LightGBM samples doubles
                return held[self._k][idx]

        labels = store.labels[rows[0] : rows[1]]
        params, rounds = _lgb_params(models, threads)
        # A window that is one batch is in memory anyway: from the array, as the in-memory path builds it
        # (LightGBM's Python-side sampling of a lone short Sequence drew other bins on a 120-row window).
        data = (
            store.read(*bounds[0]).X.astype(np.float64) if len(bounds) == 1 else [_Part(k) for k in range(len(bounds))]
        )
        dataset = lgb.Dataset(data, label=labels, params=params)
        trees = lgb.train(params, dataset, num_boost_round=rounds)
        held.clear()
        del dataset
        return StreamedModel(lambda X: np.asarray(trees.predict(X)), trees)
    if family == "logreg":
        from sklearn.linear_model import SGDClassifier
        from sklearn.preprocessing import StandardScaler

        params = model_params("logreg", models)
        scaler = StandardScaler()
        for bound in bounds:
            scaler.partial_fit(store.read(*bound).X)
        n = rows[1] - rows[0]
        # LogisticRegression's C is 1 / (n * alpha) for SGD's per-row penalty.
        sgd = SGDClassifier(
            loss="log_loss",
            alpha=1.0 / (float(params.get("C", 1.0)) * max(n, 1)),
            random_state=models.seed,
            learning_rate="optimal",
            average=True,
        )
        one = store.read(*bounds[0]) if len(bounds) == 1 else None  # one batch: read it once
        for _ in range(sgd_epochs(n)):
            for bound in bounds:
                batch = one if one is not None else store.read(*bound)
                sgd.partial_fit(scaler.transform(batch.X), batch.y, classes=np.array([0, 1]))
        return StreamedModel(lambda X: sgd.predict_proba(scaler.transform(X))[:, 1], (scaler, sgd))
    raise ValueError(f"no streaming learner for model family {family!r}; streaming families: {STREAMING_FAMILIES}")


def _predict(
    store: FeatureStore, model: StreamedModel, start: int, stop: int, batch_rows: int
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    p, y, meta = [], [], []
    for batch in store.batches(start, stop, batch_rows):
        p.append(model.predict(batch.X))
        y.append(batch.y)
        meta.append(batch.meta)
    return np.concatenate(p), np.concatenate(y), pd.concat(meta, ignore_index=True)


@dataclass(frozen=True)
class StreamingFold:
    fold: int
    train: tuple[int, int]
    fit: tuple[int, int]
    calibration: tuple[int, int]
    test: tuple[int, int]


def _one_class_checked(fit_rows: np.ndarray, cal_rows: np.ndarray, method: str) -> tuple[tuple[str, np.ndarray], ...]:
    """The parts of a window that must hold both classes, as ``CalibratedModel.fit`` checks them: the fitting
    part, and the calibration slice only for ``auto`` (else a one-class slice leaves the window uncalibrated)."""
    return (("fitting", fit_rows), ("calibration", cal_rows)) if method == "auto" else (("fitting", fit_rows),)


def streaming_folds(store: FeatureStore, spec: FitSpec, stop: int | None = None) -> list[StreamingFold]:
    """The walk-forward folds of the store's first ``stop`` rows, cut as the in-memory path cuts them.

    Raises:
        InsufficientDataError: too few timestamps, or a fold or slice with a single class.
    """
    stop = store.n_rows if stop is None else stop
    times, labels = store.times[:stop], store.labels[:stop]
    folds = []
    splitter = WalkForwardSplit.from_config(spec.splits, spec.gap)
    for k, (train, test) in enumerate(splitter.split(times, labels, groups=times), start=1):
        fit_rows, cal_rows = calibration_cut(times[train], spec.calibration.fraction, spec.gap)
        for part, rows in _one_class_checked(fit_rows, cal_rows, spec.calibration.method):
            if len(np.unique(labels[train][rows])) < 2:
                raise InsufficientDataError(
                    f"fold {k}: the {part} part of its training window holds a single class; {ONE_CLASS_HINT}"
                )
        t0 = int(train[0])
        folds.append(
            StreamingFold(
                k,
                _ranges(train),
                (t0 + int(fit_rows[0]), t0 + int(fit_rows[-1]) + 1),
                (t0 + int(cal_rows[0]), t0 + int(cal_rows[-1]) + 1),
                _ranges(test),
            )
        )
    return folds


def _fold_result(
    store: FeatureStore, fold: StreamingFold, family: str, metrics: dict[str, float], calibration: str
) -> FoldResult:
    times = store.times
    return FoldResult(
        fold=fold.fold,
        family=family,
        train_start=pd.Timestamp(times[fold.train[0]]).isoformat(),
        train_end=pd.Timestamp(times[fold.train[1] - 1]).isoformat(),
        test_start=pd.Timestamp(times[fold.test[0]]).isoformat(),
        test_end=pd.Timestamp(times[fold.test[1] - 1]).isoformat(),
        n_train=fold.train[1] - fold.train[0],
        n_test=fold.test[1] - fold.test[0],
        metrics=metrics,
        calibration=calibration,
    )


def run_fold_streaming(
    store: FeatureStore,
    fold: StreamingFold,
    family: str,
    spec: FitSpec,
    threads: int | None = None,
    batch_rows: int = BATCH_ROWS,
    fitter: Callable[..., StreamedModel] | None = None,
) -> FoldOutcome:
    """One family on one fold: fit on the fitting rows, calibrate on the slice, score the test rows.

    ``fitter(family, (start, stop), models, threads)`` replaces the in-process streaming fit (the Dask path).
    """
    calibration, models = spec.calibration, spec.models
    if fitter is None:
        model = fit_streaming(family, store, fold.fit, models, threads, batch_rows)
    else:
        model = fitter(family, fold.fit, models, threads)
    slice_raw, slice_y, _ = _predict(store, model, *fold.calibration, batch_rows)
    sliced = fit_slice_calibration(slice_raw, slice_y, calibration.method)
    p_raw, y, meta = _predict(store, model, *fold.test, batch_rows)
    p = sliced.calibrator.predict(p_raw)
    if calibration.method != "auto" and sliced.name != ONE_CLASS_SLICE:
        # The slice calibrator's level moved toward the window's, as in memory (a one-class slice has none).
        window_share = float(np.mean(store.labels[fold.train[0] : fold.train[1]]))
        p = shift_level(p, level_shift(window_share, float(np.mean(slice_y)), calibration.level))
    window = (
        {window_column(form): c.predict(p_raw) for form, c in sliced.window.items()}
        if calibration.method == "auto"
        else {}
    )
    result = _fold_result(
        store, fold, family, _fold_metrics(y, p, p_raw, meta, spec.metrics, spec.is_direction), sliced.name
    )
    logger.info("fold %d %s (streamed): %s", fold.fold, family, result.metrics)
    predictions = meta.assign(fold=fold.fold, family=family, y=y, p=p, p_uncalibrated=p_raw, **window)
    return FoldOutcome(result=result, predictions=predictions, calibration_slice=(slice_raw, slice_y))


def run_base_rate_streaming(
    store: FeatureStore, fold: StreamingFold, spec: FitSpec, batch_rows: int = BATCH_ROWS
) -> FoldOutcome:
    """The ``base_rate`` baseline on one fold, as the in-memory path scores it: the training window's
    Laplace-smoothed share of positives for every test row (only the test rows' labels and meta are read)."""
    share = smoothed_share(store.labels[fold.train[0] : fold.train[1]])
    batches = list(store.batches(*fold.test, batch_rows))
    y = np.concatenate([batch.y for batch in batches])
    meta = pd.concat([batch.meta for batch in batches], ignore_index=True)
    p = np.full(len(y), share)
    result = _fold_result(store, fold, BASE_RATE, _fold_metrics(y, p, p, meta, spec.metrics, spec.is_direction), "none")
    predictions = meta.assign(fold=fold.fold, family=BASE_RATE, y=y, p=p, p_uncalibrated=p)
    return FoldOutcome(result=result, predictions=predictions)


def run_walk_forward_streaming(
    store: FeatureStore,
    spec: FitSpec,
    *,
    stop: int | None = None,
    threads: int | None = None,
    batch_rows: int | None = None,
    fitter: Callable[..., StreamedModel] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WalkForwardResult:
    """``run_walk_forward`` on a feature store's first ``stop`` rows (the development rows), streamed;
    ``progress(fits done, fits in all)`` after each fit. ``batch_rows``: rows a read holds (default
    ``spec.scale.batch_rows``; tests take batches smaller than a config may set).

    The naive baselines are not kept on this path (they need the whole label history per symbol in memory);
    the base rate runs through the folds only when the target asks for an edge over it (``result.edge``).

    Raises:
        ValueError: a configured family has no streaming learner, or tuning is on.
        InsufficientDataError: as ``run_walk_forward``.
    """
    families = [f for f in family_names(spec.models) if f != ENSEMBLE]
    unknown = [f for f in families if f not in STREAMING_FAMILIES]
    if unknown:
        raise ValueError(
            f"models.families: {unknown} have no streaming learner; streaming families: {list(STREAMING_FAMILIES)}"
        )
    if spec.models.tuning.enabled:
        raise ValueError("models.tuning is not supported on the streaming path")
    batch_rows = spec.scale.batch_rows if batch_rows is None else batch_rows
    folds = streaming_folds(store, spec, stop)
    jobs = [(fold, family) for fold in folds for family in families]
    outcomes = []
    with _local_copy(store, stop, batch_rows, fitter) as source:
        for fold, family in jobs:
            outcomes.append(run_fold_streaming(source, fold, family, spec, threads, batch_rows, fitter))
            if progress is not None:
                progress(len(outcomes), len(jobs))
        if spec.edge_level is None:
            return combine_fold_results(outcomes, spec)
        base_rate = [run_base_rate_streaming(source, fold, spec, batch_rows) for fold in folds]
    # calibration.require_edge: the edge is kept, the base rate's results are not (see the module docstring).
    return replace(combine_fold_results(outcomes + base_rate, spec), baselines={}, baseline_folds=[])


@contextmanager
def _local_copy(
    store: FeatureStore, stop: int | None, batch_rows: int, fitter: Callable[..., StreamedModel] | None
) -> Iterator[FeatureStore]:
    """The store's first ``stop`` rows spilled once (``FeatureStore.spilled``) for the many reads of an
    in-process run; with a Dask ``fitter`` the workers read the store's own files, and this process only
    predicts (about one pass), so the store is read as it is."""
    if fitter is not None:
        yield store
        return
    with store.spilled(stop, batch_rows) as spilled:
        yield spilled


def streamed_estimator(family: str, model: StreamedModel, feature_names: tuple[str, ...]) -> Any:
    """The streamed base model as a fitted scikit-learn-style classifier (what the calibrated model, the
    registry, importance and SHAP take): a ``BoosterClassifier`` for the boosted trees, the scaler and SGD
    model as a ``Pipeline`` for logistic regression."""
    if family == "logreg":
        from sklearn.pipeline import make_pipeline

        scaler, sgd = model.booster
        scaler.feature_names_in_ = np.asarray(feature_names, dtype=object)  # fitted on arrays of these columns
        return make_pipeline(scaler, sgd)
    return BoosterClassifier(model.booster, feature_names)


def fit_challenger_streaming(
    store: FeatureStore,
    stop: int,
    family: str,
    spec: FitSpec,
    walk_forward: WalkForwardResult | None = None,
    fitter: Callable[..., StreamedModel] | None = None,
) -> CalibratedModel:
    """``fit_challenger`` on the store's first ``stop`` rows (the development rows), streamed: the base model
    on the fitting part, then the calibrator, level, shrinkage and action threshold on the newest slice, cut
    as ``CalibratedModel.fit`` cuts it. The walk-forward's calibration choice and shrinkage weight apply as
    in memory (``challenger_calibration``); no tuning on this path.

    Raises:
        InsufficientDataError: the fitting part or the calibration slice holds a single class.
    """
    calibration, given, choice, shrinkage = challenger_calibration(family, spec.calibration, walk_forward)
    times, labels = store.times[:stop], store.labels[:stop]
    fit_rows, cal_rows = calibration_cut(times, calibration.fraction, spec.gap)
    for part, rows in _one_class_checked(fit_rows, cal_rows, calibration.method):
        if len(np.unique(labels[rows])) < 2:
            raise InsufficientDataError(
                f"the {part} part of the development rows ({len(rows)} rows) holds a single class"
            )
    fitting, sliced = _ranges(fit_rows), _ranges(cal_rows)
    batch_rows = spec.scale.batch_rows
    with _local_copy(store, stop, batch_rows, fitter) as source:
        model = (
            fit_streaming(family, source, fitting, spec.models, None, batch_rows)
            if fitter is None
            else fitter(family, fitting, spec.models, None)
        )
        raw, y_slice, meta = _predict(source, model, *sliced, batch_rows)
    challenger = CalibratedModel.from_config(
        streamed_estimator(family, model, store.feature_names),
        calibration,
        spec.gap,
        spec.threshold,
        given,
        choice,
        shrinkage,
    )
    returns = meta["next_return"].to_numpy() if "next_return" in meta else None
    fitted = challenger.fit_on_slice(
        challenger.estimator,
        list(store.feature_names),
        raw,
        y_slice,
        base_rate=float(np.mean(labels)),
        fitting_share=float(np.mean(labels[fit_rows])),
        returns=returns,
    )
    if walk_forward is not None and walk_forward.flattens(family):  # calibration.require_edge
        # The development rows' share as the streamed comparison of a first model states it (Trained.base_rate).
        fitted.flatten(float(np.mean(labels)))
    return fitted


def feature_set(store: FeatureStore, start: int, stop: int) -> FeatureSet:
    """Rows ``start:stop`` of the store as an in-memory ``FeatureSet`` (the hold-out window, or the newest
    development rows the drift reference is built from); no scoring tail."""
    batch = store.read(start, stop)
    names = list(store.feature_names)
    return FeatureSet(
        X=pd.DataFrame(batch.X.astype(np.float64), columns=names),
        y=pd.Series(batch.y),
        meta=batch.meta,
        feature_names=store.feature_names,
        latest=pd.DataFrame(columns=[*names, "symbol", "timestamp"]),
    )


# --- Dask: xgboost.dask / lightgbm.dask on a cluster, every worker reading its own part of the store -------


def _dask_frame(store: FeatureStore, start: int, stop: int) -> Any:
    import dask.dataframe as dd

    lo, hi = store.times[start], store.times[stop - 1]
    columns = [*store.feature_names, "y"]
    frame = dd.read_parquet(
        str(store.path),
        columns=[*columns, "timestamp"],
        filters=[("timestamp", ">=", lo), ("timestamp", "<=", hi)],
        index=False,
    )
    return frame.dropna(subset=columns)


def dask_fitter(client: Any, store: FeatureStore, batch_rows: int = BATCH_ROWS) -> Callable[..., StreamedModel]:
    """A ``fitter`` for ``run_walk_forward_streaming`` that trains the boosted trees on the Dask cluster of
    ``client`` (``xgboost.dask`` / ``lightgbm.dask``), every worker reading its part of the store itself
    (so the store's path must be readable by the workers: a shared disk or an object store), and logistic
    regression in this process, streamed.

    The distributed learners see the rows partitioned by symbol, not in time order, and each worker bins
    its own part: their results match the in-process fit within a tolerance, not bit for bit.
    """

    def fit(family: str, rows: tuple[int, int], models: ModelsConfig, threads: int | None) -> StreamedModel:
        if family not in ("xgboost", "lightgbm"):
            return fit_streaming(family, store, rows, models, threads, batch_rows)
        with client.as_current():  # xgboost.dask looks the client up as the current one
            return _fit_on_dask(client, store, family, rows, models, threads)

    return fit


def _fit_on_dask(
    client: Any, store: FeatureStore, family: str, rows: tuple[int, int], models: ModelsConfig, threads: int | None
) -> StreamedModel:
    """``family`` on the cluster: the window's rows as a Dask DataFrame, one partition per symbol file."""
    frame = _dask_frame(store, *rows)
    X = frame[list(store.feature_names)].astype("float32")
    y = frame["y"].astype("int32")
    if family == "xgboost":
        from xgboost import dask as dxgb

        params, rounds = _xgb_params(models, threads, float(np.mean(store.labels[rows[0] : rows[1]])))
        matrix = dxgb.DaskQuantileDMatrix(client, X, y, max_bin=int(params.get("max_bin", 256)))
        booster = dxgb.train(client, params, matrix, num_boost_round=rounds)["booster"]
        return StreamedModel(lambda X: booster.inplace_predict(X), booster)
    from lightgbm import DaskLGBMClassifier

    params = {k: v for k, v in model_params("lightgbm", models, threads, linear_base=False).items() if k != "n_jobs"}
    estimator = DaskLGBMClassifier(client=client, random_state=models.seed, **params)
    local = estimator.fit(X, y).to_local()
    return StreamedModel(lambda X: np.asarray(local.predict_proba(X))[:, 1], local.booster_)


@contextmanager
def dask_client(runner: RunnerConfig) -> Iterator[Any]:
    """A Dask client of ``runner.address``, or of a local cluster (``runner``'s workers) for as long as the
    context lasts."""
    import distributed

    if runner.address:
        with distributed.Client(runner.address, set_as_default=False) as client:
            yield client
        return
    with (
        distributed.LocalCluster(
            n_workers=runner.n_workers,
            threads_per_worker=runner.threads_per_worker,
            processes=runner.processes,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@contextmanager
def streaming_client(runner: RunnerConfig) -> Iterator[Any]:
    """``dask_client(runner)`` for a Dask runner, None (in this process) for the sequential one."""
    if runner.kind == "sequential":
        yield None
        return
    with dask_client(runner) as client:
        yield client
