"""The relay's way into Prefect: the events API its durable outbox (``driftline.app.outbox``) delivers to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tasks.events import DRIFT_EVENT, model_resource


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
    """What the relay's outbox needs from a Prefect server (``driftline.app.outbox.DeliveryLoop``)."""

    send: Callable[[list[Any]], None]
    confirm: Callable[[list[Any]], set[str]]
    probe: Callable[[], None]
    close: Callable[[], None]


def events_api(timeout: float = 5.0) -> EventsApi:
    """The Prefect server's events API for the relay's outbox: ``send(batch)`` POSTs a batch of
    ``driftline.app.outbox.PendingEvent`` to ``/events`` and returns when it answered 2xx; ``confirm(batch)``
    reads back which of them are stored (``/events/filter`` by id); ``probe()`` asks ``/health``. Prefect's
    own client is not used: it retries with backoff for minutes, where the outbox needs a quick answer and
    does its own retrying.

    Raises:
        RuntimeError: no PREFECT_API_URL (the relay needs a Prefect server to send to).
    """
    import base64

    import httpx
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

    from driftline.app.outbox import Rejected, Unreachable

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
