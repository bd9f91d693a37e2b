"""The Prefect events Driftline emits: deployment triggers (retrain) and notification automations listen for them."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from tasks._task import driftline_task

DRIFT_EVENT = "driftline.drift.detected"
PROMOTED_EVENT = "driftline.model.promoted"
ROLLED_BACK_EVENT = "driftline.model.rolled-back"
RETRAINED_EVENT = "driftline.model.retrained"


def model_resource(model_name: str) -> dict[str, str]:
    return {"prefect.resource.id": f"driftline.model.{model_name}", "prefect.resource.name": model_name}


def emit_model_event(event: str, model_name: str, payload: dict[str, Any]) -> str:
    """Emit ``event`` for the resource ``driftline.model.<pipeline name>``; returns the event id.

    Raises:
        RuntimeError: Prefect has no events client configured (no API to send to).
    """
    from prefect.events import emit_event

    emitted = emit_event(event=event, resource=model_resource(model_name), payload=payload)
    if emitted is None:
        raise RuntimeError("Prefect events are not enabled here; set PREFECT_API_URL to a Prefect server")
    return str(emitted.id)


def emit_drift_event(model_name: str, payload: dict[str, Any]) -> str:
    """Emit ``driftline.drift.detected`` for ``driftline.model.<name>``; returns the event id.

    Raises:
        RuntimeError: Prefect has no events client configured (no API to send to).
    """
    return emit_model_event(DRIFT_EVENT, model_name, payload)


def rollback_payload(registered: str, version: str, previous: str | None, reason: str) -> dict[str, Any]:
    return {"model": registered, "version": version, "previous_version": previous, "reason": reason}


@driftline_task("emit-drift-event", retries=2)
def emit_drift_event_task(model_name: str, payload: dict[str, Any]) -> str:
    """Tell Prefect (and so the retrain deployment's trigger) that this model's data drifted."""
    return emit_drift_event(model_name, payload)


@driftline_task("emit-promoted-event")
def emit_promoted_event_task(
    model_name: str, registered: str, version: str, previous: str | None, reason: str, run_id: str
) -> str | None:
    """``driftline.model.promoted`` for notifications; the promotion is committed already, so a missing
    events API is a warning, not a failed run."""
    payload = {
        "model": registered,
        "version": version,
        "previous_version": previous,
        "reason": reason,
        "run_id": run_id,
    }
    try:
        return emit_model_event(PROMOTED_EVENT, model_name, payload)
    except RuntimeError as exc:
        get_run_logger().warning("%s v%s promoted, but no event was sent: %s", registered, version, exc)
        return None


def retrained_payload(registered: str, summary: dict[str, Any], trigger: str) -> dict[str, Any]:
    """What a retrain decided, on which rows: the notification's and the audit's view of one retrain."""
    keys = (
        "model_version",
        "decision",
        "champion_version_after",
        "training_cutoff",
        "data_start",
        "data_end",
        "source",
        "skipped",
        "why",
    )
    return {
        "model": registered,
        "trigger": trigger,
        **{key: summary.get(key) for key in keys},
        "reasons": "; ".join(summary.get("reasons") or [])[:2000],
    }


@driftline_task("emit-retrained-event")
def emit_retrained_event_task(model_name: str, payload: dict[str, Any]) -> str | None:
    """``driftline.model.retrained`` (the decision of a retrain, or its skip) for notifications; the
    retrain's outcome is recorded in MLflow already, so a missing events API is a warning."""
    try:
        return emit_model_event(RETRAINED_EVENT, model_name, payload)
    except RuntimeError as exc:
        get_run_logger().warning("%s retrained, but no event was sent: %s", payload["model"], exc)
        return None
