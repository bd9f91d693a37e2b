"""Flows ``monitor-drift`` and ``retrain``: drift is measured, an event is emitted, retraining follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, runtime
from prefect.artifacts import create_markdown_artifact

from driftline.config import PipelineSettings, Settings, data_overrides, load_config, with_settings
from driftline.drift import event_payload
from driftline.report import artifact_key
from flows.training import train_and_promote
from tasks.data import load_data_task
from tasks.events import emit_drift_event_task
from tasks.monitoring import champion_config_file_task, cooldown_task, load_reference_task, measure_drift_task, report_task, start_monitoring_task
from tasks.scoring import resolve_champion_task, resolve_models_task, score_task, scoring_rows_task, training_config_task
from tasks.tracking import finish_tracking_task


@flow(name="monitor-drift")
def monitor_drift(
    data: str,
    name: str = "demo",
    retrain_on_drift: bool = False,
    time_col: str | None = None,
    price_col: str | None = None,
    symbol_col: str | None = None,
    target_col: str | None = None,
    settings: PipelineSettings | None = None,
) -> dict[str, Any]:
    """Compare new data with the champion's training reference; on drift, emit driftline.drift.detected.

    Args:
        data: new rows (file or folder), with the history their features need.
        name: pipeline name (model driftline-<name>).
        retrain_on_drift: also retrain in this process when drift is found (local use, no server).
        time_col: time column.
        price_col: price (close) column.
        symbol_col: symbol column.
        target_col: label column (label-target models).
        settings: drift thresholds for this check (training settings come from the champion).
    """
    drift_overrides = settings.drift_overrides() if settings else {}
    champion, _ = resolve_models_task(load_config(None, {"name": name}).model_name, False)
    config = training_config_task(champion, {**data_overrides(data, time_col, price_col, symbol_col, target_col), **drift_overrides})
    run_id = start_monitoring_task(champion, data, str(runtime.flow_run.id))
    try:
        loaded = load_data_task(config.data, need_target=config.target.kind == "label", stage_root=Settings.from_env().ingest_dir)
        rows, _ = scoring_rows_task(loaded, config, champion)
        profile, reference = load_reference_task(champion)
        scores = score_task(rows, champion)
        summary = measure_drift_task(profile, rows, scores, config)
        out_dir = Settings.from_env().home / "monitoring" / run_id
        report = report_task(run_id, reference, rows, scores, summary, config, out_dir)
        create_markdown_artifact(summary.markdown(report), key=artifact_key("drift", name), description=f"Drift of {champion.name}")
        payload = event_payload(summary, report, champion.version)
        event_id = emit_drift_event_task(name, payload) if summary.drift_detected else None
        finish_tracking_task(run_id, "FINISHED")
    except BaseException:
        finish_tracking_task(run_id, "FAILED")
        raise
    result = {
        **{k: v for k, v in summary.to_dict().items() if k != "columns"},
        "model_name": champion.name,
        "model_version": champion.version,
        "report_html": str(out_dir / "drift_report.html"),
        "report_uri": report,
        "event_id": event_id,
        "run_id": run_id,
    }
    if retrain_on_drift and summary.drift_detected:
        result["retrain"] = retrain(name=name, reason=payload["reason"])
    return result


@flow(name="retrain")
def retrain(
    name: str = "demo",
    reason: str = "manual",
    config_file: str | None = None,
    data: str | None = None,
    settings: PipelineSettings | None = None,
) -> dict[str, Any]:
    """Training plus champion/challenger, unless the last retrain was too recent (recorded either way).

    Args:
        name: pipeline name (model driftline-<name>).
        reason: why (the drift event's reason is passed in by the deployment trigger).
        config_file: pipeline YAML; by default the config the current champion was trained with.
        data: training data; the config's data.path (or the bundled demo) when omitted.
        settings: the pipeline's main settings; each one that is set overrides the config.
    """
    if config_file is None:
        champion = resolve_champion_task(load_config(None, {"name": name}).model_name)
        config_file = champion_config_file_task(champion) if champion else None
    config = load_config(config_file, with_settings({"name": name, "data.path": data}, settings))
    allowed, why = cooldown_task(config.model_name, config.drift.min_hours_between_retrains, reason)
    if not allowed:
        create_markdown_artifact(f"Retrain of {config.model_name} skipped: {why}.\n\nTrigger: {reason}", key=artifact_key("retrain", name))
        return {"skipped": True, "why": why, "trigger": reason}
    # A retrain is asked for: train even when the data has not changed since the champion's run (the
    # cooldown above limits how often); unchanged validation and features still come from Prefect's cache.
    summary = train_and_promote(config_file=config_file, data=data, name=name, trigger=f"retrain: {reason}", force=True, settings=settings)
    return {"skipped": False, "why": why, "trigger": reason, **summary}
