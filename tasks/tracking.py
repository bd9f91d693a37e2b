"""MLflow logging, registration and alias moves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger

from driftline import provenance
from driftline import tags as tagkeys
from driftline.adapters import registry
from driftline.calibration import CalibratedModel
from driftline.config import PipelineConfig, config_to_yaml, flatten_config
from driftline.drift import build_reference, evidently_report, scored_sample
from driftline.explain import SUMMARY_ROWS, explain_model, summary_rows
from driftline.feature_store import StoreBuild
from driftline.features import FeatureSet
from driftline.ingest import LoadedData
from driftline.metrics import strategy_book
from driftline.models import effective_params, native_importance
from driftline.plots import (
    equity_figure,
    fold_metrics_figure,
    importance_figure,
    pr_figure,
    reliability_figure,
    roc_figure,
    shap_summary_figure,
)
from driftline.sizing import AUTOMATIC_SIZES, FITTED_KEYS, SizedConfig
from driftline.sources import IngestStats
from driftline.summary import TrainingSummary
from driftline.training import WalkForwardResult
from driftline.tuning import TuningResult
from tasks._task import driftline_task

REFERENCE_PROFILE = "reference/profile.json"
REFERENCE_SAMPLE = "reference/sample.parquet"


FINGERPRINT_TAG = tagkeys.FINGERPRINT


@driftline_task("previous-training", io=True)
def previous_training_task(store: registry.MlflowStore, config: PipelineConfig, fingerprint: str) -> dict | None:
    """The summary of a finished run with the same data, config and code whose version still exists."""
    return store.finished_training(config.model_name, fingerprint)


@driftline_task("start-tracking", io=True)
def start_tracking_task(
    store: registry.MlflowStore,
    config: PipelineConfig,
    flow_run_id: str,
    trigger: str = "manual",
    fingerprint: str = "",
) -> str:
    """Open the parent MLflow run for this flow run and log the resolved config.

    The sizes and windows fitted to the data (``FITTED_KEYS``) are logged by ``log_sizes_task`` once the data is
    known: an MLflow param cannot change value.
    """
    experiment_id = store.ensure_experiment(config.model_name)
    tags = {
        "prefect.flow_run_id": flow_run_id,
        tagkeys.TARGET: config.target.kind,
        tagkeys.TRIGGER: trigger[:5000],
        FINGERPRINT_TAG: fingerprint,
    }
    run_id = store.start_run(experiment_id, f"train-{config.name}", tags)
    store.log_params(run_id, {k: v for k, v in flatten_config(config).items() if k not in FITTED_KEYS})
    store.log_text(run_id, config_to_yaml(config), "config/pipeline.yaml")
    return run_id


@driftline_task("log-sizes", io=True)
def log_sizes_task(store: registry.MlflowStore, run_id: str, sized: SizedConfig) -> None:
    """Log the sizes and windows the run uses as params, and the effective config in place of the one logged
    at the start."""
    store.log_params(run_id, sized.params())
    store.log_text(run_id, config_to_yaml(sized.config), "config/pipeline.yaml")
    store.log_dict(run_id, {"automatic": list(sized.automatic)}, AUTOMATIC_SIZES)  # what a retrain sizes again
    if sized.adjustments:
        store.log_dict(run_id, sized.adjusted, "config/adjusted.json")
        store.set_tags(run_id, {tagkeys.ADJUSTED: ", ".join(a.key for a in sized.adjustments)})


@driftline_task("log-input", io=True)
def log_input_task(
    store: registry.MlflowStore, run_id: str, loaded: LoadedData, ingest: IngestStats | None = None
) -> None:
    """Record the dataset (source, sha256, rows, schema, files read) as lineage."""
    ingest = ingest or loaded.stats
    stats = ingest.as_dict() if ingest else {}
    tags = {
        "rows": str(len(loaded.frame)),
        "objects": str(stats.get("objects", len(loaded.files))),
        "objects_read": str(stats.get("read", "")),
    }
    store.log_dataset(run_id, loaded.frame, loaded.source, loaded.content_hash, "input", tags)
    store.set_tags(run_id, {tagkeys.DATA_SHA256: loaded.content_hash, tagkeys.SOURCE: loaded.source})
    if stats:
        store.log_dict(run_id, stats, "input/ingest.json")


def log_tuning(
    store: registry.MlflowStore, parent_run_id: str, tuning: TuningResult, tags: dict[str, str] | None = None
) -> None:
    """One hyperparameter search (``models.tuning``) as a child run of ``parent_run_id``: the chosen
    parameters, the inner-validation log loss of the best and of the configured parameters, the trials."""
    child = store.start_child_run(
        parent_run_id, f"tune-{tuning.family}", {tagkeys.TUNING: tuning.family, **(tags or {})}
    )
    store.log_params(
        child,
        {
            **tuning.best_params,
            "inner_train_rows": tuning.inner_train_rows,
            "inner_validation_rows": tuning.inner_validation_rows,
        },
    )
    store.log_metrics(
        child,
        {
            "inner_log_loss": tuning.best_value,
            "inner_log_loss_configured": tuning.default_value,
            "trials": tuning.n_trials,
            "search_seconds": tuning.seconds,
        },
    )
    store.log_dict(child, tuning.trials, "tuning/trials.json")
    store.finish_run(child)


@driftline_task("log-challenger-tuning", io=True)
def log_challenger_tuning_task(store: registry.MlflowStore, run_id: str, model: CalibratedModel) -> None:
    """The challenger's own search (``models.tuning``), as a child run ``tune-<family>`` tagged challenger."""
    tuning = getattr(model, "tuning_", None)
    if tuning is not None:
        log_tuning(store, run_id, tuning, {tagkeys.FOLD: "challenger"})


@driftline_task("log-store-build", io=True)
def log_store_build_task(store: registry.MlflowStore, run_id: str, build: StoreBuild) -> None:
    """A streamed run's contract accounting over every symbol (rows in, kept, quarantined), rows kept per
    symbol, and the quarantined rows (one Parquet file per symbol) when there are any."""
    store.log_metrics(
        run_id, {"rows_in": build.rows_in, "rows_clean": build.rows_clean, "rows_quarantined": build.rows_quarantined}
    )
    store.log_dict(run_id, build.symbols, "validation/rows_per_symbol.json")
    if build.quarantine_path is not None:
        for part in sorted(Path(build.quarantine_path).glob("symbol=*/rows.parquet")):
            store.log_file(run_id, part, f"validation/quarantine/{part.parent.name}")


@driftline_task("log-walk-forward", io=True)
def log_walk_forward_task(
    store: registry.MlflowStore, run_id: str, result: WalkForwardResult, features: FeatureSet, config: PipelineConfig
) -> None:
    """Nested run per fold, pooled metrics per family, plots and the selection."""
    for fold in sorted({f.fold for f in result.folds}):
        rows = [f for f in result.folds if f.fold == fold]
        child = store.start_child_run(run_id, f"fold-{fold}", {tagkeys.FOLD: str(fold)})
        store.log_params(
            child,
            {
                k: getattr(rows[0], k)
                for k in ("train_start", "train_end", "test_start", "test_end", "n_train", "n_test")
            },
        )
        store.log_metrics(child, {f"{r.family}.{k}": v for r in rows for k, v in r.metrics.items()})
        baselines = [f for f in result.baseline_folds if f.fold == fold]
        store.log_metrics(child, {f"baseline.{r.family}.{k}": v for r in baselines for k, v in r.metrics.items()})
        for row in rows:
            if row.tuning is not None:
                log_tuning(store, child, row.tuning, {tagkeys.FOLD: str(fold)})
        store.finish_run(child)
    store.log_metrics(run_id, {f"{family}.{k}": v for family, m in result.pooled.items() for k, v in m.items()})
    store.log_metrics(run_id, {f"baseline.{name}.{k}": v for name, m in result.baselines.items() for k, v in m.items()})
    store.log_metrics(run_id, result.pooled[result.selected])
    store.set_tags(run_id, {tagkeys.FAMILY: result.selected, tagkeys.SELECTION: result.selection_reason()})
    if result.best_baseline:
        store.set_tags(run_id, {tagkeys.BEST_BASELINE: result.best_baseline})
    if result.edge is not None:  # calibration.require_edge: the challenger family against the base rate
        edge = result.edge
        store.log_metrics(run_id, {"edge.diff": edge.diff, "edge.ci_low": edge.low, "edge.ci_high": edge.high})
    store.log_dict(run_id, list(features.feature_names), "features.json")
    chosen = result.selected_predictions()
    y, p, p_raw = chosen["y"].to_numpy(), chosen["p"].to_numpy(), chosen["p_uncalibrated"].to_numpy()
    store.log_figure(run_id, reliability_figure(y, p, p_raw, config.metrics.ece_bins), "plots/reliability.png")
    store.log_figure(run_id, roc_figure(y, p), "plots/roc.png")
    store.log_figure(run_id, pr_figure(y, p), "plots/precision_recall.png")
    per_fold = pd.DataFrame([{"family": f.family, "test_end": f.test_end, **f.metrics} for f in result.folds])
    store.log_figure(run_id, fold_metrics_figure(per_fold), "plots/metrics_per_fold.png")
    if config.target.is_direction:
        # The book behind the walk-forward Sharpe and drawdown metrics (long above 0.5).
        store.log_figure(run_id, equity_figure(strategy_book(p, chosen, config.metrics)), "plots/equity.png")
    store.log_frame(run_id, result.predictions, "predictions/out_of_sample.parquet")


@driftline_task("register-model", io=True)
def register_model_task(
    store: registry.MlflowStore,
    run_id: str,
    model: CalibratedModel,
    features: FeatureSet,
    config: PipelineConfig,
    data_sha256: str,
    source: str,
    classes: tuple[str, str] | None = None,
) -> registry.RegisteredVersion:
    """Log the calibrated model as pyfunc and register it as the challenger, with its training cutoff and
    provenance (git commit, uv.lock hash, code version, config and data hashes); ``classes``: the label's names
    of 0 and 1 (each score's ``class``)."""
    version = store.log_model(run_id, model, list(features.feature_names), features.X, config.model_name, classes)
    # What the challenger learnt with, beside the config the run logged: library defaults and the values
    # the labels set (XGBoost's leaf weight from their positive share) are in no config key.
    store.log_params(run_id, {f"challenger.{k}": v for k, v in effective_params(model.base_estimator_).items()})
    aliases = store.models()
    aliases.tag_version(
        config.model_name,
        version.version,
        {
            tagkeys.RUN_ID: run_id,
            tagkeys.TRAIN_CUTOFF: pd.Timestamp(features.times.max()).isoformat(),
            tagkeys.THRESHOLD: f"{model.threshold_:.4f}",
            tagkeys.THRESHOLD_OBJECTIVE: config.threshold.objective,
            **provenance.collect(config_to_yaml(config), data_sha256, source),
        },
    )
    aliases.set_alias(config.model_name, "challenger", version.version, f"trained by run {run_id}", run_id)
    return version


@driftline_task("log-reference", io=True)
def log_reference_task(
    store: registry.MlflowStore,
    run_id: str,
    model: CalibratedModel,
    features: FeatureSet,
    result: WalkForwardResult,
    config: PipelineConfig,
) -> None:
    """The drift reference stored with the model: feature and score profiles, a capped sample; the model's
    importance and its SHAP summary plot (driftline.explain, on at most SUMMARY_ROWS training rows)."""
    scores = model.predict_proba(features.X)[:, 1]
    pooled = result.pooled[result.selected]
    profile = build_reference(
        features.X,
        scores,
        {"brier": pooled["brier"], "ece": pooled["ece"]},
        config.drift.bins,
        times=features.times,
        null_windows=config.drift.null_windows,
    )
    store.log_dict(run_id, profile.to_dict(), REFERENCE_PROFILE)
    sample = features.X.sample(min(len(features.X), config.drift.report_sample), random_state=0).sort_index()
    store.log_frame(
        run_id, sample.assign(probability=scores[sample.index], y=features.y.to_numpy()[sample.index]), REFERENCE_SAMPLE
    )
    importance, what = native_importance(model.base_estimator_, list(model.feature_names_in_))  # its inputs
    store.log_figure(run_id, importance_figure(importance, what), "plots/feature_importance.png")
    store.log_dict(run_id, importance.sort_values(ascending=False).to_dict(), "feature_importance.json")
    rows = summary_rows(features.X, SUMMARY_ROWS)
    explanation = explain_model(model, rows)
    store.log_figure(
        run_id,
        shap_summary_figure(explanation.frame(), rows, explanation.space, explanation.method),
        "plots/shap_summary.png",
    )
    store.log_dict(
        run_id, explanation.frame().abs().mean().sort_values(ascending=False).to_dict(), "shap_importance.json"
    )


@driftline_task("training-report", io=True)
def training_report_task(
    store: registry.MlflowStore,
    run_id: str,
    model: CalibratedModel,
    development: FeatureSet,
    holdout: FeatureSet,
    config: PipelineConfig,
    out_dir: Path,
) -> str:
    """Evidently's data drift and classification report, training window (reference) against the
    hold-out window (current), each with the challenger's probabilities; saved to the run as HTML."""
    cap = config.drift.report_sample
    html, data = evidently_report(
        scored_sample(development, model, cap), scored_sample(holdout, model, cap), cap, out_dir
    )
    store.log_file(run_id, data, "evidently")
    return store.log_file(run_id, html, "evidently")


@driftline_task("read-aliases")
def aliases_task(store: registry.MlflowStore, version: registry.RegisteredVersion, run_id: str = "") -> dict:
    """Where the aliases point now, which ones this version holds, and its links in the MLflow UI."""
    aliases = store.models()
    return {
        "held": aliases.aliases(version.name, version.version),
        "champion": aliases.alias_version(version.name, "champion"),
        "links": store.ui_links(run_id, version.name, version.version) if run_id else {},
    }


@driftline_task("mark-run-failed")
def mark_failed_task(store: registry.MlflowStore, run_id: str, error: str | None = None) -> None:
    """Mark the MLflow run FAILED (with a ``status: failed`` summary naming ``error``) if the tracking server
    answers; never hides the error that failed the flow."""
    try:
        if error is not None:
            store.log_dict(run_id, TrainingSummary.failed(error, run_id=run_id).as_dict(), "summary.json")
        store.finish_run(run_id, "FAILED")
    except Exception as exc:  # noqa: BLE001 - the flow's own error is the one to report
        get_run_logger().warning("could not mark MLflow run %s FAILED: %s: %s", run_id, type(exc).__name__, exc)


@driftline_task("finish-tracking")
def finish_tracking_task(
    store: registry.MlflowStore,
    run_id: str,
    status: str,
    summary: dict | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Close the parent run (FAILED when the flow failed)."""
    if summary is not None:
        store.log_dict(run_id, summary, "summary.json")
    if tags:
        store.set_tags(run_id, tags)
    store.finish_run(run_id, status)
