"""The Prefect events Driftline emits: deployment triggers (retrain) and notification automations listen for them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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


def drift_event_json(model_name: str, event_id: str, payload: dict[str, Any], occurred: float) -> dict[str, Any]:
    """The JSON of the drift event an outbox entry becomes: its id is the outbox's (the same on every resend)."""
    from prefect.events import Event

    event = Event(
        id=event_id,
        event=DRIFT_EVENT,
        resource=model_resource(model_name),
        payload=payload,
        occurred=datetime.fromtimestamp(occurred, tz=UTC),
    )
    return event.model_dump(mode="json")


@dataclass(frozen=True)
class EventsApi:
    """What the relay's outbox needs from a Prefect server (``driftline.outbox.DeliveryLoop``)."""

    send: Callable[[list[Any]], None]
    confirm: Callable[[list[Any]], set[str]]
    probe: Callable[[], None]
    close: Callable[[], None]


def events_api(timeout: float = 5.0) -> EventsApi:
    """The Prefect server's events API for the relay's outbox: ``send(batch)`` POSTs a batch of
    ``driftline.outbox.PendingEvent`` to ``/events`` and returns when it answered 2xx; ``confirm(batch)``
    reads back which of them are stored (``/events/filter`` by id); ``probe()`` asks ``/health``. Prefect's
    own client is not used: it retries with backoff for minutes, where the outbox needs a quick answer and
    does its own retrying.

    Raises:
        RuntimeError: no PREFECT_API_URL (the relay needs a Prefect server to send to).
    """
    import base64

    import httpx
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

    from driftline.outbox import Rejected, Unreachable

    api = PREFECT_API_URL.value()
    if not api:
        raise RuntimeError("PREFECT_API_URL is not set: the relay sends its events to a Prefect server")
    headers = {}
    if PREFECT_API_AUTH_STRING.value():
        headers["Authorization"] = "Basic " + base64.b64encode(PREFECT_API_AUTH_STRING.value().encode()).decode()
    elif PREFECT_API_KEY.value():
        headers["Authorization"] = f"Bearer {PREFECT_API_KEY.value()}"
    client = httpx.Client(base_url=api.rstrip("/") + "/", headers=headers, timeout=timeout)

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = client.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nobody there
            raise Unreachable(type(exc).__name__, refused=True) from None
        except httpx.TransportError as exc:  # reset, timed out: no answer this time
            raise Unreachable(type(exc).__name__) from None
        if response.status_code in (502, 503, 504):  # the server (or a proxy) is there but cannot take it now
            raise Unreachable(f"HTTP {response.status_code}")
        return response

    def send(batch: list[Any]) -> None:
        events = []
        for e in batch:
            try:
                events.append(drift_event_json(e.model, e.event_id, e.payload, e.accepted_at))
            except (ValueError, TypeError, RecursionError) as exc:  # e.g. nested deeper than the encoder goes
                raise Rejected(0, f"cannot be encoded as an event: {str(exc)[:200]}") from None
        response = call("POST", "events", json=events)
        if response.status_code >= 300:
            raise Rejected(response.status_code, response.text[:300])

    def confirm(batch: list[Any]) -> set[str]:
        oldest = datetime.fromtimestamp(min(e.accepted_at for e in batch) - 60, tz=UTC)
        query = {
            "filter": {
                "id": {"id": [e.event_id for e in batch]},
                "occurred": {"since": oldest.isoformat(), "until": "2999-01-01T00:00:00Z"},
            },
            "limit": len(batch),
        }
        response = call("POST", "events/filter", json=query)
        if response.status_code >= 300:
            raise Unreachable(f"HTTP {response.status_code}")  # cannot tell: ask again later, count nothing
        return {event["id"] for event in response.json()["events"]}

    def probe() -> None:
        call("GET", "health")

    return EventsApi(send, confirm, probe, client.close)


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
