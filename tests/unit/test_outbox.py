"""The relay's outbox: durable before the 202 (a SIGKILLed writer loses nothing it acknowledged), the replay
guard in the same transaction, and the delivery loop: batches, confirmation, poison events to the dead
letters without blocking the rest, no attempts counted while the events API is unreachable."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from driftline.app.outbox import DeliveryLoop, Outbox, PendingEvent, Rejected, Unreachable, event_id_for

MAX_AGE = 300


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    store = Outbox(tmp_path / "relay" / "outbox.db", max_age=MAX_AGE)
    yield store
    store.close()


def test_the_database_is_wal_with_full_sync(outbox):
    with sqlite3.connect(outbox.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync at every commit


def test_accept_records_the_event_and_the_signature_together(outbox):
    event_id = outbox.accept("sig-1", "demo", {"reason": "r"}, now=100.0)
    assert event_id == event_id_for("sig-1") and outbox.seen("sig-1")
    assert outbox.accept("sig-1", "demo", {"reason": "again"}, now=101.0) is None  # a replay: nothing added
    assert [(e.event_id, e.payload) for e in outbox.pending()] == [(event_id, {"reason": "r"})]
    assert not outbox.seen("sig-2")


def test_event_ids_are_deterministic_and_distinct():
    assert event_id_for("a") == event_id_for("a") != event_id_for("b")


def test_a_payload_that_is_not_json_is_refused_and_leaves_nothing(outbox):
    with pytest.raises(ValueError):
        outbox.accept("sig-nan", "demo", {"x": float("nan")}, now=1.0)
    assert outbox.pending() == [] and not outbox.seen("sig-nan")  # the transaction was rolled back


WRITER = """
import os, signal, sys
from pathlib import Path
from driftline.app.outbox import Outbox
store = Outbox(Path(sys.argv[1]), max_age=300)
for i in range(int(sys.argv[2])):
    store.accept(f"sig-{i}", "demo", {"i": i}, now=1.0)
    print(i, flush=True)  # "acknowledged": what a 202 would say
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_every_acknowledged_accept_survives_a_sigkill(tmp_path):
    path = tmp_path / "outbox.db"
    done = subprocess.run([sys.executable, "-c", WRITER, str(path), "40"], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    acknowledged = [int(line) for line in done.stdout.split()]
    assert acknowledged == list(range(40))
    store = Outbox(path, max_age=MAX_AGE)
    assert sorted(e.payload["i"] for e in store.pending()) == acknowledged
    assert all(store.seen(f"sig-{i}") for i in acknowledged)  # and the replay guard with them
    store.close()


def test_prune_forgets_old_signatures_and_old_delivered_events(outbox):
    outbox.accept("old", "demo", {}, now=0.0)
    outbox.accept("new", "demo", {}, now=1000.0)
    outbox.mark_sent([event_id_for("old")], now=1.0)
    outbox.mark_delivered([event_id_for("old")], now=1.0)
    outbox.prune(now=1000.0)
    assert not outbox.seen("old") and outbox.seen("new")  # 1000 s > 2 x max_age
    assert outbox.counts() == {"pending": 1, "delivered": 1, "dead": 0}
    outbox.prune(now=8 * 24 * 3600)
    assert outbox.counts() == {"pending": 1, "delivered": 0, "dead": 0}


# --- the delivery loop --------------------------------------------------------------------------------------------


class EventsApi:
    """An events API in memory, with the behaviours of a real one: it refuses (4xx) any batch holding a
    poison event, takes a batch and may not store some of it (``drop``), or gives no answer at all."""

    def __init__(self) -> None:
        self.stored: list[str] = []  # in arrival order, duplicates kept: the server's own dedup is not ours to assume
        self.batches: list[int] = []
        self.down = False
        self.drop: set[str] = set()

    def send(self, batch: list[PendingEvent]) -> None:
        if self.down:
            raise Unreachable("ConnectError", refused=True)
        self.batches.append(len(batch))
        if any(e.payload.get("poison") for e in batch):
            raise Rejected(422, "payload: nested too deeply")
        self.stored += [e.event_id for e in batch if e.event_id not in self.drop]

    def confirm(self, batch: list[PendingEvent]) -> set[str]:
        if self.down:
            raise Unreachable("ConnectError", refused=True)
        return {e.event_id for e in batch} & set(self.stored)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(loop: DeliveryLoop, clock: Clock, passes: int = 50) -> None:
    for _ in range(passes):
        loop.run_once()
        clock.now += 1.5


def test_a_poison_event_goes_to_the_dead_letters_and_never_blocks_the_rest(outbox):
    api, clock = EventsApi(), Clock()
    outbox.accept("sig-poison", "demo", {"poison": True}, now=clock.now)
    for i in range(120):
        outbox.accept(f"sig-{i}", "demo", {"i": i}, now=clock.now)
    loop = DeliveryLoop(outbox, api.send, api.confirm, clock=clock)
    drain(loop, clock, passes=10)
    assert sorted(api.stored) == sorted(event_id_for(f"sig-{i}") for i in range(120))  # each exactly once
    assert outbox.counts() == {"pending": 0, "delivered": 120, "dead": 1}
    [dead] = outbox.dead_letters()
    assert dead["event_id"] == event_id_for("sig-poison") and dead["attempts"] == 1
    assert dead["reason"] == "HTTP 422: payload: nested too deeply"
    assert api.batches[0] == 50 and max(api.batches[1:]) <= 50


def test_an_unreachable_api_counts_no_attempts_and_is_reported(outbox):
    api, clock = EventsApi(), Clock()
    api.down = True
    outbox.accept("sig-1", "demo", {}, now=clock.now)
    loop = DeliveryLoop(outbox, api.send, api.confirm, clock=clock)
    drain(loop, clock, passes=20)
    assert not loop.reachable
    assert outbox.pending()[0].attempts == 0 and outbox.counts()["dead"] == 0
    api.down = False
    drain(loop, clock, passes=3)
    assert loop.reachable and api.stored == [event_id_for("sig-1")]
    assert outbox.counts() == {"pending": 0, "delivered": 1, "dead": 0}


def test_an_event_taken_but_not_stored_is_sent_again_then_dead_lettered(outbox):
    """The server answers 204 before it writes; an event it then drops (or loses in a crash) is not
    delivered: sent again after ``confirm_seconds``, and dead-lettered after ``max_attempts``."""
    api, clock = EventsApi(), Clock()
    outbox.accept("sig-dropped", "demo", {}, now=clock.now)
    outbox.accept("sig-fine", "demo", {}, now=clock.now)
    api.drop.add(event_id_for("sig-dropped"))
    loop = DeliveryLoop(outbox, api.send, api.confirm, confirm_seconds=5, max_attempts=3, clock=clock)
    drain(loop, clock, passes=40)
    assert api.stored == [event_id_for("sig-fine")]
    assert api.batches == [2, 1, 1]  # sent three times in all
    [dead] = outbox.dead_letters()
    assert dead["event_id"] == event_id_for("sig-dropped") and dead["attempts"] == 3
    assert "not stored by the server within 5 s" in dead["reason"]


def test_a_transient_error_answer_is_retried_with_backoff(outbox):
    api, clock = EventsApi(), Clock()
    outbox.accept("sig-1", "demo", {}, now=clock.now)
    failures = {"left": 2}
    send = api.send

    def flaky(batch: list[PendingEvent]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise Rejected(500, "Internal Server Error")
        send(batch)

    loop = DeliveryLoop(outbox, flaky, api.confirm, clock=clock)
    loop.run_once()
    [event] = outbox.pending()
    assert event.attempts == 1 and outbox.due(clock.now) == []  # waits before the next attempt
    drain(loop, clock, passes=20)
    assert api.stored == [event_id_for("sig-1")] and outbox.counts()["dead"] == 0


def test_pending_events_survive_a_restart_of_the_loop(tmp_path):
    path = tmp_path / "outbox.db"
    first = Outbox(path, max_age=MAX_AGE)
    for i in range(5):
        first.accept(f"sig-{i}", "demo", {"i": i}, now=1000.0)
    first.close()
    api, clock = EventsApi(), Clock()
    second = Outbox(path, max_age=MAX_AGE)
    drain(DeliveryLoop(second, api.send, api.confirm, clock=clock), clock, passes=5)
    assert sorted(api.stored) == sorted(event_id_for(f"sig-{i}") for i in range(5))
    assert json.loads(json.dumps(second.counts())) == {"pending": 0, "delivered": 5, "dead": 0}
    second.close()


def test_the_loop_thread_delivers_when_woken_and_stops(outbox):
    api = EventsApi()
    loop = DeliveryLoop(outbox, api.send, api.confirm, idle_seconds=5.0)
    loop.start()
    try:
        outbox.accept("sig-1", "demo", {}, now=1.0)
        loop.wake()
        import time

        deadline = time.monotonic() + 10
        while outbox.counts()["delivered"] < 1:
            assert time.monotonic() < deadline, outbox.counts()
            loop.wake()
            time.sleep(0.05)
    finally:
        loop.stop()
    assert api.stored == [event_id_for("sig-1")]


def test_a_slow_api_is_unreachable_only_after_failing_for_a_while(outbox):
    """Timeouts and 503s from a loaded server are retried quietly; the relay starts refusing calls (503)
    only when no good answer came for ``slow_seconds``, or at once when the connection is refused."""
    loop = DeliveryLoop(outbox, send=lambda batch: None, confirm=lambda batch: set())
    loop._set_reachable(False, Unreachable("ReadTimeout"))
    assert loop.reachable
    loop._last_answer -= loop.slow_seconds
    loop._set_reachable(False, Unreachable("ReadTimeout"))
    assert not loop.reachable
    loop._set_reachable(True)
    loop._set_reachable(False, Unreachable("ConnectError", refused=True))
    assert not loop.reachable


def test_concurrent_accepts_share_commits_and_each_signature_is_accepted_once(outbox):
    """Group commit under 16 threads: every distinct signature accepted exactly once (the same call sent
    twice at once included), each thread told the truth about its own call."""
    from concurrent.futures import ThreadPoolExecutor

    signatures = [f"sig-{i % 150}" for i in range(300)]  # every call sent twice
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda s: (s, outbox.accept(s, "demo", {"s": s}, now=1.0)), signatures))
    accepted = [s for s, event_id in results if event_id is not None]
    assert sorted(accepted) == sorted(set(signatures))
    assert all(event_id == event_id_for(s) for s, event_id in results if event_id is not None)
    assert outbox.counts()["pending"] == 150 and all(outbox.seen(s) for s in set(signatures))
