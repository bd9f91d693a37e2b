"""Feature building, walk-forward evaluation and the challenger fit.

The fits are cached on the content of the feature set they see (which already reflects the data, the
contract, the feature and target settings and the hold-out window), the fit spec they are given
(``PipelineConfig.fit_spec``: everything else that shapes a fit) and the code version. Where the fits
run (``runner``) is not part of any key: every runner gives the same result, so a result cached by one
serves the others.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from driftline.baselines import BaselineModel
from driftline.calibration import CalibratedModel
from driftline.config import FitSpec, PipelineConfig
from driftline.features import FeatureSet
from driftline.ingest import LoadedData
from driftline.pipeline import (
    StreamedDevelopment,
    data_path_of,
    develop_streamed,
    features_of,
    hold_out,
    walk_forward_of,
    write_canonical,
)
from driftline.report import artifact_key
from driftline.short_data import DataFit, fit_to_rows, fit_windows
from driftline.sizing import SizedConfig
from driftline.streaming import DataPath, dask_fitter, fit_challenger_streaming, streaming_client
from driftline.training import (
    FoldJob,
    FoldOutcome,
    WalkForwardResult,
    combine_fold_results,
    fit_best_baseline,
    fit_challenger,
    run_fold_job,
)
from tasks._task import driftline_task
from tasks.caching import fit_cache_key


@driftline_task("build-features")
def build_features_task(loaded: LoadedData, clean: pd.DataFrame, config: PipelineConfig) -> FeatureSet:
    """Point-in-time features and the target from the clean rows."""
    return features_of(loaded, clean, config)


_DIGESTS: dict[int, str] = {}


def features_hash(features: FeatureSet) -> str:
    """SHA-256 of what a fit sees: feature names and values, labels and meta columns (~0.2 s per 1M x 50).

    Computed once per feature set object: the walk-forward and challenger cache keys both ask for it.
    """
    known = _DIGESTS.get(id(features))
    if known is None:
        known = _DIGESTS[id(features)] = _features_hash(features)
        weakref.finalize(features, _DIGESTS.pop, id(features), None)
    return known


def _features_hash(features: FeatureSet) -> str:
    digest = hashlib.sha256()
    values = features.X.to_numpy()
    digest.update(repr((list(features.X.columns), str(values.dtype), values.shape)).encode())
    digest.update(values.T if values.flags.f_contiguous else np.ascontiguousarray(values))
    digest.update(pd.util.hash_pandas_object(features.y, index=False).to_numpy())
    digest.update(repr(list(features.meta.columns)).encode())
    digest.update(pd.util.hash_pandas_object(features.meta, index=False).to_numpy())
    return digest.hexdigest()


def walk_forward_key(spec: FitSpec, features_digest: str) -> str:
    """The walk-forward stage's cache key, whichever runner computes it."""
    return fit_cache_key("walk-forward", features_digest, spec)


def _walk_forward_key(context: Any, parameters: dict[str, Any]) -> str:
    return walk_forward_key(parameters["spec"], features_hash(parameters["features"]))


@driftline_task("walk-forward", cache_key_fn=_walk_forward_key)
def walk_forward_task(
    features: FeatureSet,
    spec: FitSpec,
    pipeline: str,
    on_cluster: Callable[..., WalkForwardResult] | None = None,
) -> WalkForwardResult:
    """Fit, calibrate and score every model family on each fold (cached on the features, fit spec and code).

    ``on_cluster(features, features_digest=...)`` runs the fits elsewhere (the Dask subflow of
    ``flows/walk_forward.py``); without it they run here, one after another. Neither it nor ``pipeline`` (the
    progress artifact's name) shapes a fit or is part of the key: a result cached by one runner serves the
    other, and a cache hit starts no cluster.
    """
    if on_cluster is not None:
        return on_cluster(features, features_digest=features_hash(features))
    return walk_forward_of(features, spec, progress=walk_forward_progress(pipeline))


def walk_forward_progress(name: str) -> Callable[[int, int], None]:
    """A Prefect progress artifact (percent of fits done) that the walk-forward updates after each fit."""
    artifact_id = create_progress_artifact(
        0.0, key=artifact_key("walk-forward", name), description="walk-forward fits done (%)"
    )

    def update(done: int, total: int) -> None:
        update_progress_artifact(
            artifact_id, 100.0 * done / total, description=f"walk-forward: {done} of {total} fits done"
        )

    return update


def fold_key(job: FoldJob, spec: FitSpec, features_digest: str) -> str:
    """One (fold, family) fit's cache key: its rows and family, the features' hash and the fit spec."""
    rows = [
        r if isinstance(r, slice) else hashlib.sha256(np.ascontiguousarray(r)).hexdigest()
        for r in (job.train, job.test)
    ]
    return fit_cache_key("fit-fold", features_digest, spec, [job.fold, job.family, *(str(r) for r in rows)])


def _fold_key(context: Any, parameters: dict[str, Any]) -> str:
    return fold_key(parameters["job"], parameters["spec"], parameters["features_digest"])


@driftline_task("fit-fold", task_run_name="fit-fold-{job.fold}-{job.family}", cache_key_fn=_fold_key)
def fit_fold_task(job: FoldJob, features: FeatureSet, spec: FitSpec, features_digest: str) -> FoldOutcome:
    """Fit, calibrate and score one family on one fold, single-threaded (cached on the features' hash and fit spec)."""
    return run_fold_job(job, features, spec, threads=1)


@driftline_task("combine-folds")
def combine_folds_task(outcomes: list[FoldOutcome], spec: FitSpec) -> WalkForwardResult:
    """Pool every family's out-of-sample predictions and pick the challenger family."""
    return combine_fold_results(outcomes, spec)


def challenger_key(features: FeatureSet, family: str, spec: FitSpec) -> str:
    """The challenger fit's cache key: the features' hash, the family and the fit spec."""
    return fit_cache_key("challenger", features_hash(features), spec, family)


def _challenger_key(context: Any, parameters: dict[str, Any]) -> str:
    return challenger_key(parameters["features"], parameters["family"], parameters["spec"])


@driftline_task("fit-challenger", cache_key_fn=_challenger_key)
def fit_challenger_task(
    features: FeatureSet, family: str, spec: FitSpec, walk_forward: WalkForwardResult | None = None
) -> CalibratedModel:
    """Refit the selected family on all labelled rows (cached on the features, fit spec and code).

    ``walk_forward`` is the result of the same features and spec (its auto calibration choice), so it adds
    nothing to the key.
    """
    return fit_challenger(features, family, spec, walk_forward)


@driftline_task("fit-best-baseline")
def fit_best_baseline_task(
    features: FeatureSet, result: WalkForwardResult, config: PipelineConfig
) -> BaselineModel | None:
    """Refit the best walk-forward baseline on all development rows: what a first model faces on the hold-out."""
    return fit_best_baseline(features, result, config.models)


@driftline_task("fit-to-rows")
def fit_to_rows_task(loaded: LoadedData, config: PipelineConfig) -> DataFit:
    """The contract's minimum rows per symbol, lowered when no symbol has that many (unless the user set it),
    and a symbol column found by its rows, pinned in the config."""
    return fit_to_rows(config, loaded)


@driftline_task("fit-windows")
def fit_windows_task(clean: pd.DataFrame, fitted: DataFit) -> DataFit:
    """Feature windows whose warm-up leaves data the sizes fit (windows the user set are kept)."""
    return fit_windows(fitted, clean)


@driftline_task("size-to-data")
def size_to_data_task(features: FeatureSet, windowed: DataFit) -> SizedConfig:
    """Folds, evaluation window and first training window that fit the data (sizes the user set are kept)."""
    return windowed.sized(features.times, features.y.to_numpy())


@driftline_task("hold-out-window")
def holdout_task(features: FeatureSet, config: PipelineConfig) -> tuple[FeatureSet, FeatureSet]:
    """Development rows, and the evaluation window the challenger never trains on."""
    return hold_out(features, config)


# --- out of core (scale): the development steps and the challenger streamed from a feature store -----------


@driftline_task("choose-data-path")
def data_path_task(loaded: LoadedData, config: PipelineConfig) -> DataPath:
    """In memory or streamed (``scale``), from the row count and the features of one symbol's first rows."""
    return data_path_of(loaded.frame, config)


@driftline_task("write-canonical")
def write_canonical_task(loaded: LoadedData, out: Path) -> Path:
    """The loaded rows as a Parquet dataset partitioned by symbol, for the streamed steps to read."""
    return write_canonical(loaded, out)


@driftline_task("develop-streamed")
def develop_streamed_task(
    source: Path, config: PipelineConfig, workdir: Path, quarantine_dir: Path, label: str
) -> StreamedDevelopment:
    """Contract and features per symbol into a feature store, sizes, hold-out and the walk-forward streamed
    from it (the boosted trees on the Dask cluster ``runner`` names, when it names one), its progress in the
    walk-forward progress artifact. Messages name the user's source, ``label``."""
    with streaming_client(config.runner) as client:
        return develop_streamed(
            source, config, workdir, client, quarantine_dir, progress=walk_forward_progress(config.name), label=label
        )


@driftline_task("fit-challenger-streamed")
def fit_challenger_streamed_task(streamed: StreamedDevelopment) -> CalibratedModel:
    """The selected family refitted on every development row of the store, streamed."""
    config, store = streamed.config, streamed.build.store
    spec = config.fit_spec
    with streaming_client(config.runner) as client:
        fitter = None if client is None else dask_fitter(client, store, spec.scale.batch_rows)
        return fit_challenger_streaming(
            store, streamed.n_development, streamed.result.selected, spec, streamed.result, fitter
        )
