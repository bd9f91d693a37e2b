"""The Prefect event that drift emits and deployment triggers listen for."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

DRIFT_EVENT = "driftline.drift.detected"


def model_resource(model_name: str) -> dict[str, str]:
    return {"prefect.resource.id": f"driftline.model.{model_name}", "prefect.resource.name": model_name}


def emit_drift_event(model_name: str, payload: dict[str, Any]) -> str:
    """Emit ``driftline.drift.detected`` for ``driftline.model.<name>``; returns the event id.

    Raises:
        RuntimeError: Prefect has no events client configured (no API to send to).
    """
    from prefect.events import emit_event

    event = emit_event(event=DRIFT_EVENT, resource=model_resource(model_name), payload=payload)
    if event is None:
        raise RuntimeError("Prefect events are not enabled here; set PREFECT_API_URL to a Prefect server")
    return str(event.id)


@task(name="emit-drift-event", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def emit_drift_event_task(model_name: str, payload: dict[str, Any]) -> str:
    """Tell Prefect (and so the retrain deployment's trigger) that this model's data drifted."""
    return emit_drift_event(model_name, payload)
