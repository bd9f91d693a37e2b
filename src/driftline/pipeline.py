"""The training pipeline's data steps called plainly, in the flow's order, without Prefect or MLflow.

Used where a run must not touch the registry or the task cache: ``driftline reproduce`` retrains from
a version's recorded inputs and compares the walk-forward metrics.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from driftline.config import PipelineConfig
from driftline.contracts import enforce_contract, validate_frame
from driftline.evaluation import holdout_split
from driftline.features import build_features
from driftline.ingest import load_data
from driftline.sizing import size_to_data
from driftline.streaming import DataPath
from driftline.training import WalkForwardResult, run_walk_forward


@dataclass(frozen=True)
class WalkForwardRun:
    data_sha256: str
    source: str
    result: WalkForwardResult


def walk_forward_from_source(config: PipelineConfig, stage_root: Path | None = None) -> WalkForwardRun:
    """Read, validate, build features, hold out the evaluation window and walk forward, as training does."""
    with tempfile.TemporaryDirectory() as scratch:
        loaded = load_data(config.data, need_target=config.target.needs_label, stage_root=stage_root or Path(scratch))
    report = validate_frame(
        loaded.frame, config.contract, config.model_name, source_values=loaded.source_values(), source=loaded.source
    )
    clean = enforce_contract(report, config.contract, loaded.source)
    features = build_features(
        clean, config.features, config.target, source=loaded.source, target_name=loaded.columns.target
    )
    config = size_to_data(config, features.times).config
    development, _ = holdout_split(features, config.evaluation.window, config.gap)
    spec = config.fit_spec  # what the training flow's walk-forward task is given
    result = run_walk_forward(
        development, spec.splits, spec.gap, spec.calibration, spec.models, spec.metrics, price_target=spec.is_direction
    )
    return WalkForwardRun(loaded.content_hash, loaded.source, result)


@dataclass(frozen=True)
class ScaledRun:
    """A walk-forward from a canonical Parquet dataset on the path ``scale`` chose, with why."""

    result: WalkForwardResult
    data_path: DataPath
    rows_in: int
    rows_quarantined: int
    n_development: int


def walk_forward_from_parquet(
    config: PipelineConfig, source: str | Path, workdir: Path, client: object | None = None
) -> ScaledRun:
    """Validate, build features, hold out the evaluation window and walk forward, in memory or streamed.

    The choice (``driftline.streaming.choose_data_path``) is made before anything is read in full: the row
    count comes from the Parquet footers, the feature count from the first symbol's first rows.
    Streaming builds a feature store in ``workdir`` and, with a Dask ``client``, trains the boosted trees on
    its cluster.

    Raises:
        DataError, ValidationFailed, InsufficientDataError: as the in-memory steps.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from driftline.feature_store import build_feature_store
    from driftline.features import feature_table
    from driftline.splits import tail_cut
    from driftline.streaming import choose_data_path, dask_fitter, run_walk_forward_streaming

    dataset = ds.dataset(str(source), format="parquet", partitioning="hive")
    n_rows = dataset.count_rows()
    head = dataset.head(2_000, filter=pc.field("symbol") == dataset.head(1, columns=["symbol"]).column(0)[0])
    head_frame = head.to_pandas()
    head_frame["symbol"] = head_frame["symbol"].astype(str)
    n_features = len(feature_table(head_frame, config.features, config.target)[1])
    data_path = choose_data_path(n_rows, n_features, config.scale)
    if data_path.path == "memory":
        frame = dataset.to_table().to_pandas()
        frame["symbol"] = frame["symbol"].astype(str)
        frame = frame.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
        report = validate_frame(frame, config.contract, config.model_name, source=str(source))
        clean = enforce_contract(report, config.contract, str(source))
        features = build_features(clean, config.features, config.target, source=str(source))
        config = size_to_data(config, features.times).config
        development, _ = holdout_split(features, config.evaluation.window, config.gap)
        spec = config.fit_spec
        result = run_walk_forward(
            development, spec.splits, spec.gap, spec.calibration, spec.models, spec.metrics, spec.is_direction
        )
        return ScaledRun(result, data_path, report.rows_in, report.rows_quarantined, len(development.y))
    built = build_feature_store(
        source, workdir / "features", config.contract, config.features, config.target,
        suite_name=config.model_name, quarantine_dir=workdir / "quarantine",
    )  # fmt: skip
    store = built.store
    config = size_to_data(config, store.times).config
    dev_rows, _ = tail_cut(
        store.times,
        config.evaluation.window,
        config.gap,
        "an evaluation window",
        "; lower evaluation.window or add data",
    )
    spec = config.fit_spec
    result = run_walk_forward_streaming(
        store, spec.splits, spec.gap, spec.calibration, spec.models, spec.metrics, spec.is_direction,
        stop=len(dev_rows), batch_rows=spec.scale.batch_rows,
        fitter=None if client is None else dask_fitter(client, store, spec.scale.batch_rows),
    )  # fmt: skip
    return ScaledRun(result, data_path, built.rows_in, built.rows_quarantined, len(dev_rows))
