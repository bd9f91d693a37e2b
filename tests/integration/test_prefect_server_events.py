"""The project's Prefect server (``python -m deployments.server``, what `make serve` and every test server run)
stores new events that arrive beside events it stored already, as clients send them after a server restart."""

from __future__ import annotations

import time
import uuid

import pytest

from benchmarks.relay_load import stored_events
from driftline.app.events_api import drift_event_json
from tests.servers import api_call, free_port, prefect_server, wait_until

pytestmark = pytest.mark.slow

# One flush takes everything queued (up to 1000 events, every second), so the resent events and the new ones
# share a flush, as the burst after a restart does with the default settings (44 events in one flush, seen
# in the server-restart drill's log).
PERSISTER = {
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "1000",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
}


def _events(pipeline: str, count: int) -> list[dict]:
    return [drift_event_json(pipeline, str(uuid.uuid4()), {"reason": f"call {i}"}, time.time()) for i in range(count)]


def test_new_events_sent_beside_stored_ones_are_stored_and_none_is_dropped(tmp_path):
    """Prefect 3.8.8 alone fails the insert of a batch whose events are all stored already, retries the whole
    flush and drops it, the new events with it (run against Prefect's own writer, this test timed out)."""
    pipeline = f"events-{uuid.uuid4().hex[:8]}"
    port = free_port()
    first = _events(pipeline, 60)
    with prefect_server(tmp_path / "server", port=port, env=PERSISTER) as api:
        api_call("POST", f"{api}/events", json=first)
        wait_until(lambda: len(stored_events(api, pipeline)) == 60, 30, "the first 60 events to be stored")
    # Restarted: a running server drops a resent event before storage (its messaging remembers recent ids).
    with prefect_server(tmp_path / "server", port=port, env=PERSISTER) as api:
        new = _events(pipeline, 5)
        api_call("POST", f"{api}/events", json=first + new)  # sent again (a client after a restart), then new
        expected = {e["id"] for e in first + new}

        def all_stored() -> list[dict] | None:
            events = stored_events(api, pipeline)
            return events if {e["id"] for e in events} == expected else None

        events = wait_until(all_stored, 30, "the 5 new events to be stored beside the 60 sent again")
        assert sorted(e["id"] for e in events) == sorted(expected)  # each once
    log = (tmp_path / "server" / "prefect-server.log").read_text()
    assert "dropping" not in log and "NOT NULL constraint failed" not in log, log[-3000:]
