"""Flow ``train-and-promote``: ingest → validate → features → walk-forward → challenger → registry →
champion/challenger on the hold-out window → transactional promotion."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from prefect import flow, runtime
from prefect.artifacts import create_markdown_artifact

from driftline import code_version
from driftline import tags as tagkeys
from driftline.adapters.registry import MlflowStore
from driftline.config import (
    PipelineConfig,
    PipelineSettings,
    Settings,
    data_overrides,
    load_config,
    training_fingerprint,
    with_settings,
)
from driftline.contracts import ValidationReport
from driftline.features import FeatureSet
from driftline.ingest import LoadedData
from driftline.pipeline import Development, Trained, develop
from driftline.report import (
    artifact_key,
    data_timeline,
    render_summary,
    rerun_summary,
    summary_markdown,
    training_summary,
)
from driftline.short_data import DataFit
from driftline.sizing import SizedConfig
from driftline.summary import error_text
from driftline.training import WalkForwardResult
from flows.promotion import promote_with_smoke_test, repair_interrupted_promotion
from flows.walk_forward import walk_forward
from tasks.data import check_contract_task, read_data_task, record_validation_task, stage_data_task
from tasks.events import emit_promoted_event_task
from tasks.outcome import publish
from tasks.promotion import check_champion_question_task, evaluate_task, record_decision_task
from tasks.tracking import (
    FINGERPRINT_TAG,
    aliases_task,
    finish_tracking_task,
    log_challenger_tuning_task,
    log_input_task,
    log_reference_task,
    log_sizes_task,
    log_store_build_task,
    log_walk_forward_task,
    mark_failed_task,
    previous_training_task,
    register_model_task,
    start_tracking_task,
    training_report_task,
)
from tasks.training import (
    build_features_task,
    data_path_task,
    develop_streamed_task,
    fit_best_baseline_task,
    fit_challenger_streamed_task,
    fit_challenger_task,
    fit_to_rows_task,
    fit_windows_task,
    holdout_task,
    size_to_data_task,
    write_canonical_task,
)


@flow(name="train-and-promote")
def train_and_promote(
    config_file: str | None = None,
    data: str | None = None,
    name: str | None = None,
    target: Literal["direction", "volatility", "label"] | None = None,
    time_col: str | None = None,
    price_col: str | None = None,
    symbol_col: str | None = None,
    target_col: str | None = None,
    trigger: str | None = None,
    force: bool = False,
    settings: PipelineSettings | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train every model family walk-forward, register the best as challenger, promote if it earns it.

    Args:
        config_file: pipeline YAML (defaults built in when omitted).
        data: file, glob, folder or s3:// prefix; the bundled demo panel when omitted.
        name: pipeline name; the registered model is ``driftline-<name>``.
        target: direction, volatility or label.
        time_col: time column, when detection is not enough.
        price_col: price (close) column.
        symbol_col: symbol column.
        target_col: label column for ``target=label``.
        trigger: why this run started (schedule, drift event, manual); recorded in MLflow.
        force: train even when a finished run already trained on the same data, config and code.
        settings: the pipeline's main settings (the Prefect UI's form); each one that is set overrides the
            config file and the arguments above.
        overrides: dotted config keys and values (``driftline train --set key=value``) over the config
            file; the arguments above and ``settings`` win over them.
    """
    config = load_config(
        config_file,
        with_settings(
            {"name": name, "target.kind": target, **data_overrides(data, time_col, price_col, symbol_col, target_col)},
            settings,
        ),
        sets=overrides,
    )
    settings = Settings.from_env()
    store = MlflowStore.from_settings(settings)
    run_id = start_tracking_task(store, config, str(runtime.flow_run.id), trigger or "manual")
    started = time.perf_counter()
    try:
        repair_interrupted_promotion(config.model_name, run_id, store)
        check_champion_question_task(store, config)
        staged = stage_data_task(config.data, settings.ingest_dir)
        fingerprint = training_fingerprint(staged.content_hash, config, code_version())
        previous = None if force else previous_training_task(store, config, fingerprint)
        if previous is not None:
            # Same data, config and code as a finished run: its model and decision stand; nothing new is registered.
            summary = rerun_summary(previous, run_id, staged.stats, time.perf_counter() - started)
            finish_tracking_task(store, run_id, "FINISHED", summary.as_dict(), {tagkeys.RERUN_OF: previous["rerun_of"]})
            publish(render_summary(summary))
            return summary.as_dict()
        loaded = read_data_task(config.data, staged, need_target=config.target.needs_label)
        log_input_task(store, run_id, loaded, staged.stats)
        data_path = data_path_task(loaded, config)
        if data_path.path == "streaming":
            workdir = settings.run_dir(run_id) / "streamed"  # the canonical rows and the store: gone after the fit
            try:
                source = write_canonical_task(loaded, workdir / "canonical")
                loaded = loaded.without_rows()  # from here on the rows are read one symbol at a time
                quarantine = settings.run_dir(run_id) / "quarantine"
                trained = _streamed(source, config, store, run_id, workdir, quarantine, loaded.source)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            steps = TrainingSteps(store, run_id, settings.run_dir(run_id))
            developed = develop(loaded, config, steps)
            loaded = loaded.without_rows()  # the rows live on in the features; the lineage is what is left to log
            trained = _in_memory(developed, steps.quarantine_path)
        config, result, model = trained.config, trained.result, trained.model
        development, holdout = trained.development, trained.holdout
        log_challenger_tuning_task(store, run_id, model)
        # The drift reference and the report are written before the version exists: a failed artifact
        # write (a full disk) then leaves no registered version without them.
        log_reference_task(store, run_id, model, development, result, config)
        if config.drift.training_report:
            training_report_task(
                store, run_id, model, development, holdout, config, settings.run_dir(run_id) / "evidently"
            )
        version = register_model_task(
            store, run_id, model, development, config, loaded.content_hash, loaded.source, loaded.columns.classes
        )
        baseline = fit_best_baseline_task(development, result, config)
        decision, champion_before = evaluate_task(store, holdout, version, trained.base_rate, config, baseline, result)
        record_decision_task(store, run_id, version, decision)
        create_markdown_artifact(
            decision.markdown(f"{version.name} v{version.version}"), key=artifact_key("decision", config.name)
        )
        if decision.promote:
            reason = "; ".join(map(str, decision.reasons))
            promote_with_smoke_test(version.name, version.version, champion_before, reason, run_id, holdout.X, store)
            emit_promoted_event_task(config.name, version.name, version.version, champion_before, reason, run_id)
        summary = training_summary(
            trained,
            run_id=run_id,
            version=version,
            aliases=aliases_task(store, version, run_id),
            decision=decision,
            champion_before=champion_before,
            loaded=loaded,
            ingest=staged.stats,
            data_seconds=time.perf_counter() - started,
            data_path=data_path.as_dict(),
        )
        publish(
            render_summary(summary),
            summary_markdown(summary),
            key=artifact_key("training", config.name),
            description="Training summary",
        )
        finish_tracking_task(store, run_id, "FINISHED", summary.as_dict(), {FINGERPRINT_TAG: fingerprint})
    except BaseException as exc:
        mark_failed_task(store, run_id, error_text(exc))
        raise
    return summary.as_dict()


def _in_memory(developed: Development, quarantine_path: str | None) -> Trained:
    """The challenger refitted on the development rows in memory (cached on the features and fit spec)."""
    development, holdout = developed.development, developed.holdout
    model = fit_challenger_task(development, developed.result.selected, developed.config.fit_spec, developed.result)
    return Trained(
        sized=developed.sized,
        result=developed.result,
        model=model,
        development=development,
        holdout=holdout,
        report=developed.report,
        quarantine_path=quarantine_path,
        base_rate=float(development.y.mean()),
        timeline=data_timeline(development.times, holdout.times),
    )


def _streamed(
    source: Path,
    config: PipelineConfig,
    store: MlflowStore,
    run_id: str,
    workdir: Path,
    quarantine_dir: Path,
    label: str,
) -> Trained:
    """Out of core: a feature store built per symbol (in ``workdir``) from the canonical Parquet ``source``,
    the walk-forward and the challenger streamed from it."""
    streamed = develop_streamed_task(source, config, workdir, quarantine_dir, label)
    log_sizes_task(store, run_id, streamed.sized)
    log_store_build_task(store, run_id, streamed.build)
    log_walk_forward_task(store, run_id, streamed.result, streamed.development, streamed.config)
    model = fit_challenger_streamed_task(streamed)
    times = streamed.build.store.times[: streamed.n_development]
    labels = streamed.build.store.labels[: streamed.n_development]
    return Trained(
        sized=streamed.sized,
        result=streamed.result,
        model=model,
        development=streamed.development,
        holdout=streamed.holdout,
        report=streamed.build,
        quarantine_path=streamed.build.quarantine_path,
        base_rate=float(labels.mean()),
        timeline=data_timeline(times, streamed.holdout.times),
    )


class TrainingSteps:
    """The development steps (``driftline.pipeline.develop``) as this flow's tasks, each recording what it
    returns in the run: the contract's findings and quarantine, the sizes, the walk-forward."""

    def __init__(self, store: MlflowStore, run_id: str, quarantine_dir: Path) -> None:
        self.store, self.run_id, self.quarantine_dir = store, run_id, quarantine_dir
        self.quarantine_path: str | None = None

    def check_contract(self, loaded: LoadedData, config: PipelineConfig) -> ValidationReport:
        return check_contract_task(loaded, config.contract, config.model_name)

    def apply_contract(self, loaded: LoadedData, report: ValidationReport, config: PipelineConfig) -> pd.DataFrame:
        clean, self.quarantine_path = record_validation_task(
            self.store, loaded, report, config.contract, self.run_id, self.quarantine_dir
        )
        return clean

    def fit_to_rows(self, loaded: LoadedData, config: PipelineConfig) -> DataFit:
        return fit_to_rows_task(loaded, config)

    def fit_windows(self, clean: pd.DataFrame, fitted: DataFit) -> DataFit:
        return fit_windows_task(clean, fitted)

    def build_features(self, loaded: LoadedData, clean: pd.DataFrame, config: PipelineConfig) -> FeatureSet:
        return build_features_task(loaded, clean, config)

    def size_to_data(self, features: FeatureSet, windowed: DataFit) -> SizedConfig:
        sized = size_to_data_task(features, windowed)
        log_sizes_task(self.store, self.run_id, sized)
        return sized

    def hold_out(self, features: FeatureSet, config: PipelineConfig) -> tuple[FeatureSet, FeatureSet]:
        return holdout_task(features, config)

    def walk_forward(self, development: FeatureSet, config: PipelineConfig) -> WalkForwardResult:
        result = walk_forward(development, config)
        log_walk_forward_task(self.store, self.run_id, result, development, config)
        return result
