"""Flows ``monitor-drift`` and ``retrain``: drift is measured, an event is emitted, retraining follows."""

from __future__ import annotations

from typing import Any

from prefect import flow, runtime
from prefect.artifacts import create_markdown_artifact

from driftline import tags as tagkeys
from driftline.adapters.registry import MlflowStore
from driftline.config import (
    PipelineSettings,
    Settings,
    data_overrides,
    load_config,
    reading_overrides,
    with_settings,
)
from driftline.drift import event_payload
from driftline.report import artifact_key, render_monitoring
from driftline.timeline import RETRAIN_KEYS, nothing_to_judge
from flows.training import train_and_promote
from tasks.data import load_data_task
from tasks.events import emit_drift_event_task, emit_retrained_event_task, retrained_payload
from tasks.monitoring import (
    cooldown_task,
    load_reference_task,
    measure_drift_task,
    record_retrain_failure_task,
    record_retrain_task,
    report_task,
    resolve_monitored_task,
    retrain_basis_task,
    retrain_source_task,
    select_window_task,
    start_monitoring_task,
    version_config_file_task,
)
from tasks.outcome import publish
from tasks.scoring import score_task, scoring_rows_task, training_config_task
from tasks.tracking import finish_tracking_task


@flow(name="monitor-drift")
def monitor_drift(
    data: str | None = None,
    name: str | None = None,
    retrain_on_drift: bool = False,
    time_col: str | None = None,
    price_col: str | None = None,
    symbol_col: str | None = None,
    target_col: str | None = None,
    since: str | None = None,
    until: str | None = None,
    settings: PipelineSettings | None = None,
    sets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Judge the rows of ``data`` after the champion's training cutoff (or in ``[since, until]``) against
    its training reference; on drift, emit driftline.drift.detected (with the window and the source a
    retrain should train on).

    Args:
        data: the pipeline's source (file, folder, glob or s3:// prefix); the champion's recorded source
            when omitted. Rows before the window serve only as feature history.
        name: pipeline name (model driftline-<name>); derived from ``data`` when omitted.
        retrain_on_drift: also retrain in this process when drift is found (local use, no server).
        time_col: time column.
        price_col: price (close) column.
        symbol_col: symbol column.
        target_col: label column (label-target models).
        since: first timestamp to judge (ISO 8601, inclusive); with ``until``, replaces the default window.
        until: last timestamp to judge (inclusive).
        settings: drift thresholds for this check (training settings come from the monitored version).
        sets: ``--set`` keys for reading the rows (data.*, contract.*: ``config.reading_overrides``).
    """
    data = data or None  # a deployment form or a template may send ""
    drift_overrides = settings.drift_overrides() if settings else {}
    reading = reading_overrides(sets, "monitor")
    model_name = load_config(None, {"name": name, "data.path": data}).model_name
    hint = (
        "" if name else f" (the name was derived from --data {data}; pass --name to pick the pipeline)" if data else ""
    )
    environment = Settings.from_env()
    store = MlflowStore.from_settings(environment)
    monitored, note, cutoff = resolve_monitored_task(store, model_name, hint)
    champion_config = training_config_task(store, monitored, {})
    config = training_config_task(
        store,
        monitored,
        {**data_overrides(data, time_col, price_col, symbol_col, target_col), **reading, **drift_overrides},
    )
    source = config.data.path or "the bundled demo panel"
    run_id = start_monitoring_task(store, monitored, source, str(runtime.flow_run.id))
    base = {
        "model_name": monitored.name,
        "model_version": monitored.version,
        "monitored": note or "champion",
        "run_id": run_id,
        "source": source,
    }
    try:
        loaded = load_data_task(config.data, need_target=config.target.needs_label, stage_root=environment.ingest_dir)
        zone = loaded.shown_zone(config.data)
        base["timezone"] = zone  # the window's times are UTC; the CLI shows them on this clock
        rows, _ = scoring_rows_task(store, loaded, config, monitored)
        window = select_window_task(rows, since, until, cutoff, monitored.version, zone)
        timeline = window.to_dict(rows["timestamp"])
        if window.empty:
            finish_tracking_task(store, run_id, "FINISHED", None, {tagkeys.ROWS_JUDGED: "0"})
            nothing = {**base, **timeline, **nothing_to_judge(window.empty_reason(rows["timestamp"], loaded.source))}
            publish(render_monitoring(nothing))
            return nothing
        judged = rows.loc[window.mask].reset_index(drop=True)
        profile, reference = load_reference_task(store, monitored)
        scores = score_task(store, judged, monitored)
        summary = measure_drift_task(profile, judged, scores, config)
        out_dir = environment.home / "monitoring" / run_id
        report = report_task(store, run_id, reference, judged, scores, summary, config, out_dir)
        create_markdown_artifact(
            summary.markdown(report),
            key=artifact_key("drift", monitored.name.removeprefix("driftline-")),
            description=f"Drift of {monitored.name}",
        )
        retrain_source = (
            retrain_source_task(environment, champion_config, loaded, until, monitored.name)
            if summary.drift_detected
            else None
        )
        payload = event_payload(
            summary, report, monitored.version, timeline, retrain_source["data"] if retrain_source else None
        )
        event_id = (
            emit_drift_event_task(monitored.name.removeprefix("driftline-"), payload)
            if summary.drift_detected
            else None
        )
        finish_tracking_task(
            store,
            run_id,
            "FINISHED",
            None,
            {tagkeys.ROWS_JUDGED: str(window.rows), **{tagkeys.run_tag(k): str(v) for k, v in timeline.items() if v}},
        )
    except BaseException:
        finish_tracking_task(store, run_id, "FAILED")
        raise
    result = {
        **{k: v for k, v in summary.to_dict().items() if k != "columns"},
        "verdict": "drift" if summary.drift_detected else "no drift",
        **base,
        **timeline,
        "report_html": str(out_dir / "drift_report.html"),
        "report_uri": report,
        "event_id": event_id,
        "retrain_data": retrain_source,  # on drift: what a retrain trains on (the event's data)
    }
    publish(render_monitoring(result))  # a retrain below logs its own outcome (its own flow run)
    if retrain_on_drift and summary.drift_detected:
        retrained = retrain(
            name=monitored.name.removeprefix("driftline-"),
            reason=payload["reason"],
            data=retrain_source["data"],
            window_start=timeline["window_start"],
            window_end=timeline["window_end"],
        )
        result["retrain"] = {**retrained, "data_used": retrain_source}
    return result


@flow(name="retrain")
def retrain(
    name: str | None = None,
    reason: str = "manual",
    config_file: str | None = None,
    data: str | None = None,
    window_start: str | None = None,
    window_end: str | None = None,
    settings: PipelineSettings | None = None,
) -> dict[str, Any]:
    """Training plus champion/challenger, unless the last retrain was too recent (recorded either way).

    Args:
        name: pipeline name (model driftline-<name>); derived from ``data`` when omitted.
        reason: why (the drift event's reason is passed in by the deployment trigger).
        config_file: pipeline YAML; by default the config the current champion was trained with (without a
            champion, the newest version's: the one a monitor then watches).
        data: training data, the new rows included (a drift event carries it); the config's data.path
            (or the bundled demo) when omitted.
        window_start: first timestamp of the rows whose drift started this retrain (recorded).
        window_end: last timestamp of those rows (recorded).
        settings: the pipeline's main settings; each one that is set overrides the config.
    """
    data = data or None  # an event without a source renders as None or ""
    model_name = load_config(None, {"name": name, "data.path": data}).model_name
    name = model_name.removeprefix("driftline-")
    environment = Settings.from_env()
    store = MlflowStore.from_settings(environment)
    if config_file is None:  # the champion's config, else the newest version's (a label model, a label target)
        basis = retrain_basis_task(store, model_name)
        config_file = version_config_file_task(store, basis, environment.home) if basis else None
    config = load_config(config_file, with_settings({"name": name, "data.path": data}, settings))
    window = {"window_start": window_start or None, "window_end": window_end or None}
    allowed, why = cooldown_task(store, config.model_name, config.drift.min_hours_between_retrains, reason)
    if not allowed:
        publish(
            f"retrain of {config.model_name}: skipped, {why}",
            f"Retrain of {config.model_name} skipped: {why}.\n\nTrigger: {reason}",
            key=artifact_key("retrain", name),
        )
        skipped = {"skipped": True, "why": why, "trigger": reason, **window, **dict.fromkeys(RETRAIN_KEYS)}
        emit_retrained_event_task(name, retrained_payload(config.model_name, skipped, reason))
        return skipped
    # A retrain is asked for: train even when the data has not changed since the champion's run (the
    # cooldown above limits how often); unchanged validation and features still come from Prefect's cache.
    judged = f" (rows judged {window['window_start']} .. {window['window_end']})" if window["window_start"] else ""
    try:
        summary = train_and_promote(
            config_file=config_file,
            data=data,
            name=name,
            trigger=f"retrain: {reason}{judged}"[:5000],
            force=True,
            settings=settings,
        )
    except Exception as exc:
        record_retrain_failure_task(store, config.model_name, f"{type(exc).__name__}: {exc}")  # the next waits
        raise
    record_retrain_task(store, config.model_name)
    result = {"skipped": False, "why": why, "trigger": reason, **window, **summary}
    emit_retrained_event_task(name, retrained_payload(config.model_name, result, reason))
    return result
