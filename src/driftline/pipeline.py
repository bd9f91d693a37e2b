"""The training pipeline's development steps, listed once: the training flow runs them as Prefect tasks,
``driftline reproduce`` plainly (no Prefect, no MLflow, no cache).

``develop`` is the one list: fit to the rows (the contract's minimum, an inferred symbol column) → validate →
record/enforce the contract → fit the feature windows → features → sizes → hold-out → walk-forward. How each
step runs is a ``Steps`` object: ``PlainSteps`` calls the core functions; the flow's steps
(``flows/training.py``) wrap the same functions as tasks and log what they return.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from driftline.calibration import CalibratedModel
from driftline.config import ContractConfig, FitSpec, PipelineConfig
from driftline.contracts import ValidationReport, enforce_contract, validate_frame
from driftline.errors import InsufficientDataError
from driftline.evaluation import holdout_split
from driftline.feature_store import StoreBuild
from driftline.features import FeatureSet, Where, build_features, warm_up_note
from driftline.ingest import LoadedData, load_data
from driftline.short_data import DataFit, fit_min_rows, fit_to_rows, fit_windows
from driftline.sizing import SizedConfig, size_to_data
from driftline.sources import LINE_COLUMN, OBJECT_COLUMN
from driftline.streaming import DataPath
from driftline.training import WalkForwardResult, run_walk_forward, say_beyond_training_range

logger = logging.getLogger(__name__)


def validate_loaded(loaded: LoadedData, contract: ContractConfig, suite_name: str) -> ValidationReport:
    """The contract on a loaded source, its messages quoting the values as the source spelled them."""
    return validate_frame(
        loaded.frame,
        contract,
        suite_name,
        source_values=loaded.source_values(),
        source=loaded.source,
        labels=loaded.column_labels(),
        locate=loaded.locate,
    )


def features_of(loaded: LoadedData, clean: pd.DataFrame, config: PipelineConfig) -> FeatureSet:
    """Point-in-time features and the target from the rows the contract kept."""
    return build_features(clean, config.features, config.target, Where(loaded.source, loaded.columns.target))


def hold_out(features: FeatureSet, config: PipelineConfig) -> tuple[FeatureSet, FeatureSet]:
    """Development rows, and the evaluation window the challenger never trains on."""
    return holdout_split(features, config.evaluation.window, config.gap)


def walk_forward_of(
    features: FeatureSet, spec: FitSpec, progress: Callable[[int, int], None] | None = None
) -> WalkForwardResult:
    """Every family on every walk-forward fold, as the fit spec says, one fit after another."""
    return run_walk_forward(features, spec, progress=progress)


class Steps(Protocol):
    """How each development step runs (plainly, or as a Prefect task that also records what it returns)."""

    def check_contract(self, loaded: LoadedData, config: PipelineConfig) -> ValidationReport: ...

    def apply_contract(self, loaded: LoadedData, report: ValidationReport, config: PipelineConfig) -> pd.DataFrame: ...

    def fit_to_rows(self, loaded: LoadedData, config: PipelineConfig) -> DataFit: ...

    def fit_windows(self, clean: pd.DataFrame, fitted: DataFit) -> DataFit: ...

    def build_features(self, loaded: LoadedData, clean: pd.DataFrame, config: PipelineConfig) -> FeatureSet: ...

    def size_to_data(self, features: FeatureSet, windowed: DataFit) -> SizedConfig: ...

    def hold_out(self, features: FeatureSet, config: PipelineConfig) -> tuple[FeatureSet, FeatureSet]: ...

    def walk_forward(self, development: FeatureSet, config: PipelineConfig) -> WalkForwardResult: ...


class PlainSteps:
    """The steps as plain core calls: what ``reproduce`` runs."""

    def check_contract(self, loaded: LoadedData, config: PipelineConfig) -> ValidationReport:
        return validate_loaded(loaded, config.contract, config.model_name)

    def apply_contract(self, loaded: LoadedData, report: ValidationReport, config: PipelineConfig) -> pd.DataFrame:
        return enforce_contract(report, config.contract, loaded.source)

    def fit_to_rows(self, loaded: LoadedData, config: PipelineConfig) -> DataFit:
        return fit_to_rows(config, loaded)

    def fit_windows(self, clean: pd.DataFrame, fitted: DataFit) -> DataFit:
        return fit_windows(fitted, clean)

    def build_features(self, loaded: LoadedData, clean: pd.DataFrame, config: PipelineConfig) -> FeatureSet:
        return features_of(loaded, clean, config)

    def size_to_data(self, features: FeatureSet, windowed: DataFit) -> SizedConfig:
        return windowed.sized(features.times, features.y.to_numpy())

    def hold_out(self, features: FeatureSet, config: PipelineConfig) -> tuple[FeatureSet, FeatureSet]:
        return hold_out(features, config)

    def walk_forward(self, development: FeatureSet, config: PipelineConfig) -> WalkForwardResult:
        return walk_forward_of(development, config.fit_spec)


@dataclass(frozen=True)
class Development:
    """What the development steps produced: the contract's report, the features, the sized config, the
    development rows and the hold-out window, and the walk-forward on the development rows."""

    report: ValidationReport
    features: FeatureSet
    sized: SizedConfig
    development: FeatureSet
    holdout: FeatureSet
    result: WalkForwardResult

    @property
    def config(self) -> PipelineConfig:
        """The config the run uses from here on (sizes fitted to the data)."""
        return self.sized.config


@dataclass(frozen=True)
class Trained:
    """What the development steps and the challenger fit hand on, in memory or streamed."""

    sized: SizedConfig
    result: WalkForwardResult
    model: CalibratedModel
    development: FeatureSet  # streamed: the newest development rows (the drift reference, the model's example)
    holdout: FeatureSet
    report: Any  # rows_in, rows_clean, rows_quarantined (a ValidationReport, or the feature store's StoreBuild)
    quarantine_path: str | None
    base_rate: float  # of every development row
    timeline: dict[str, str | None]  # data_start, data_end, training_cutoff (``report.data_timeline``)

    @property
    def config(self) -> PipelineConfig:
        """The config the run uses from here on (sizes fitted to the data)."""
        return self.sized.config


def say_unread_settings(config: PipelineConfig) -> None:
    """A warning for a setting that was given and that nothing reads (a label target's ``horizon``)."""
    unread = config.target.unread_horizon()
    if unread:
        logger.warning("%s", unread)


def develop(loaded: LoadedData, config: PipelineConfig, steps: Steps) -> Development:
    """The development steps in their one order, each run by ``steps``."""
    say_unread_settings(config)
    # Short data: the minimum rows per symbol, the windows and the sizes the user did not set shrink to fit,
    # before anything is cached or logged with them (and a symbol column found by its rows is pinned).
    fitted = steps.fit_to_rows(loaded, config)
    report = steps.check_contract(loaded, fitted.config)
    clean = steps.apply_contract(loaded, report, fitted.config)
    windowed = steps.fit_windows(clean, fitted)
    features = steps.build_features(loaded, clean, windowed.config)
    try:
        sized = steps.size_to_data(features, windowed)
    except InsufficientDataError as exc:
        count_in, count_left = int(clean["timestamp"].nunique()), len(pd.unique(features.times))
        raise InsufficientDataError(f"{exc}{warm_up_note(count_in, count_left, windowed.config.features)}") from None
    development, holdout = steps.hold_out(features, sized.config)
    result = steps.walk_forward(development, sized.config)
    own = [n for n in development.feature_names if n in clean.columns]  # not the lags and calendar built here
    say_beyond_training_range(development, sized.config.fit_spec, own, Where(loaded.source).prefix)
    return Development(report, features, sized, development, holdout, result)


@dataclass(frozen=True)
class WalkForwardRun:
    data_sha256: str
    source: str
    result: WalkForwardResult


def walk_forward_from_source(config: PipelineConfig, stage_root: Path | None = None) -> WalkForwardRun:
    """Read the source and run the development steps plainly, as training runs them."""
    with tempfile.TemporaryDirectory() as scratch:
        loaded = load_data(config.data, need_target=config.target.needs_label, stage_root=stage_root or Path(scratch))
    return WalkForwardRun(loaded.content_hash, loaded.source, develop(loaded, config, PlainSteps()).result)


@dataclass(frozen=True)
class ScaledRun:
    """A walk-forward from a canonical Parquet dataset on the path ``scale`` chose, with why."""

    result: WalkForwardResult
    data_path: DataPath
    rows_in: int
    rows_quarantined: int
    n_development: int


REFERENCE_ROWS = 200_000
"""Streamed runs: the newest development rows held in memory for the drift reference, the training report
and the registered model's input example (the in-memory path uses every development row)."""


def feature_count(frame: pd.DataFrame, config: PipelineConfig) -> int:
    """How many feature columns ``config`` builds, from the first symbol's first 2,000 rows of ``frame``.

    The rows are not validated yet: bad values are left for the contract to quarantine (no warning here),
    and rows the features refuse (a label that is not 0/1) leave the count at the frame's other columns.
    """
    import numpy as np

    from driftline.errors import DataError
    from driftline.features import META_COLUMNS, feature_table

    first = frame["symbol"].iloc[0]
    head = frame[frame["symbol"] == first].head(2_000)
    try:
        with np.errstate(all="ignore"):
            return len(feature_table(head, config.features, config.target)[1])
    except DataError:
        return len([c for c in frame.columns if c not in (*META_COLUMNS, "target")])


def data_path_of(frame: pd.DataFrame, config: PipelineConfig) -> DataPath:
    """In memory or streamed for the canonical rows ``frame``, decided before any feature is built; what
    streaming leaves out (``streamable``) is said in the reason.

    Raises:
        ConfigError: ``scale.path: streaming`` with a family or setting the streamed path does not have.
    """
    from driftline.streaming import choose_data_path

    chosen = choose_data_path(len(frame), feature_count(frame, config), config.scale)
    if chosen.path == "memory":
        return chosen
    _, left_out = streamable(config)
    return DataPath(chosen.path, f"{chosen.reason}; {left_out}") if left_out else chosen


def streamable(config: PipelineConfig) -> tuple[PipelineConfig, str]:
    """``config`` without what the streamed path does not have (families without a streaming learner,
    tuning, boosters on a linear base), and what was left out ("" when nothing). Under ``scale.path: auto``
    the families and tuning are left out; a forced ``streaming`` with them is refused. A booster in
    ``models.linear_base`` (a default) streams as a plain booster either way, and the reason says so.

    Raises:
        ConfigError: ``scale.path: streaming`` with such a family or with tuning on.
    """
    from driftline.errors import ConfigError
    from driftline.streaming import STREAMING_FAMILIES

    families = config.models.families
    kept = tuple(f for f in families if f in STREAMING_FAMILIES)
    dropped = [f for f in families if f not in kept]
    tuning = config.models.tuning.enabled
    plain = [f for f in config.models.linear_base if f in kept]
    unsupported = [
        *([f"models.families {dropped} (no streaming learner)"] if dropped else []),
        *(["models.tuning"] if tuning else []),
    ]
    if unsupported and (config.scale.path == "streaming" or not kept):
        raise ConfigError(
            f"scale.path: streaming does not support {', '.join(unsupported)}; "
            f"streaming families: {list(STREAMING_FAMILIES)}"
        )
    left_out = [*unsupported, *([f"the linear base of models.linear_base {plain} (plain boosters)"] if plain else [])]
    if not left_out:
        return config, ""
    models = config.models.model_copy(
        update={
            "families": kept,
            "linear_base": (),
            "tuning": config.models.tuning.model_copy(update={"enabled": False}),
        }
    )
    return config.model_copy(update={"models": models}), f"streaming leaves out {', '.join(left_out)}"


@dataclass(frozen=True)
class StreamedDevelopment:
    """The development steps streamed from a feature store (``scale``): what training goes on with."""

    sized: SizedConfig
    build: StoreBuild  # the store, and the contract's accounting over every symbol (rows in, kept, quarantined)
    result: WalkForwardResult
    n_development: int  # the store's first rows; the hold-out window follows them
    development: FeatureSet  # the newest REFERENCE_ROWS development rows, in memory
    holdout: FeatureSet  # the whole evaluation window, in memory

    @property
    def config(self) -> PipelineConfig:
        return self.sized.config


def develop_streamed(
    source: str | Path,
    config: PipelineConfig,
    workdir: Path,
    client: object | None = None,
    quarantine_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    label: str | None = None,
) -> StreamedDevelopment:
    """``develop`` out of core: the contract and the features per symbol into a feature store in ``workdir``,
    the sizes, the hold-out window and the walk-forward streamed from it (on the Dask cluster of ``client``
    for the boosted trees; ``progress`` after each fit). The canonical Parquet dataset ``source`` is read one
    symbol at a time; messages name it ``label`` (the user's source) when given.

    Raises:
        DataError, ValidationFailed, InsufficientDataError: as the in-memory steps.
    """
    from driftline.feature_store import build_feature_store
    from driftline.splits import tail_cut
    from driftline.streaming import dask_fitter, feature_set, run_walk_forward_streaming

    say_unread_settings(config)
    config, left_out = streamable(config)
    if left_out:
        logger.warning("%s", left_out)
    built = build_feature_store(
        source, workdir / "features", config.contract, config.features, config.target,
        suite_name=config.model_name, quarantine_dir=quarantine_dir or workdir / "quarantine", label=label,
    )  # fmt: skip
    store = built.store
    sized = size_to_data(config, store.times)
    config = sized.config
    hint = "; lower evaluation.window or add data"
    dev_rows, hold_rows = tail_cut(store.times, config.evaluation.window, config.gap, "an evaluation window", hint)
    spec = config.fit_spec
    n_development = len(dev_rows)
    result = run_walk_forward_streaming(
        store,
        spec,
        stop=n_development,
        fitter=None if client is None else dask_fitter(client, store, spec.scale.batch_rows),
        progress=progress,
    )
    return StreamedDevelopment(
        sized=sized,
        build=built,
        result=result,
        n_development=n_development,
        development=feature_set(store, max(0, n_development - REFERENCE_ROWS), n_development),
        holdout=feature_set(store, int(hold_rows[0]), int(hold_rows[-1]) + 1),
    )


def write_canonical(loaded: LoadedData, out: Path) -> Path:
    """The canonical rows as a Parquet dataset partitioned by symbol (what ``develop_streamed`` reads), each
    with the file and line it came from (``sources.OBJECT_COLUMN``, ``LINE_COLUMN``): the streamed contract's
    messages and quarantine name them as the in-memory path's do."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Through Arrow, as pandas' to_parquet does, with the two columns appended there: no copy of the frame.
    table = pa.Table.from_pandas(loaded.frame, preserve_index=False)
    if {OBJECT_COLUMN, LINE_COLUMN} <= set(loaded.raw.columns):
        where = loaded.raw[[OBJECT_COLUMN, LINE_COLUMN]].reindex(loaded.frame.index)
        for column in (OBJECT_COLUMN, LINE_COLUMN):
            table = table.append_column(column, pa.array(where[column].to_numpy(), from_pandas=True))
    pq.write_to_dataset(table, out, partition_cols=["symbol"])
    return out


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

    from driftline.streaming import choose_data_path

    dataset = ds.dataset(str(source), format="parquet", partitioning="hive")
    n_rows = dataset.count_rows()
    head = dataset.head(2_000, filter=pc.field("symbol") == dataset.head(1, columns=["symbol"]).column(0)[0])
    head_frame = head.to_pandas()
    head_frame["symbol"] = head_frame["symbol"].astype(str)
    data_path = choose_data_path(n_rows, feature_count(head_frame, config), config.scale)
    if data_path.path == "memory":
        frame = dataset.to_table().to_pandas()
        frame["symbol"] = frame["symbol"].astype(str)
        frame = frame.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
        fitted = fit_min_rows(config, frame)
        report = validate_frame(frame, fitted.config.contract, config.model_name, source=str(source))
        clean = enforce_contract(report, fitted.config.contract, str(source))
        windowed = fit_windows(fitted, clean)
        features = build_features(clean, windowed.config.features, windowed.config.target, Where(str(source)))
        config = windowed.sized(features.times, features.y.to_numpy()).config
        development, _ = hold_out(features, config)
        result = walk_forward_of(development, config.fit_spec)
        return ScaledRun(result, data_path, report.rows_in, report.rows_quarantined, len(development.y))
    streamed = develop_streamed(source, config, workdir, client)
    return ScaledRun(
        streamed.result, data_path, streamed.build.rows_in, streamed.build.rows_quarantined, streamed.n_development
    )
