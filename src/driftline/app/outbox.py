"""The webhook relay's durable outbox: accepted calls on disk before the 202, delivered by a loop that retries.

One SQLite file (WAL, ``synchronous=FULL``: a commit is on disk when it returns) holds three tables:

* ``outbox``: every accepted call as the event it becomes, with a deterministic id (a UUID derived from the
  call's signature). The loop sends it (``sent_at``), then asks the events API whether it is stored; only
  then is it marked delivered (kept a while for audit). An event the server took (HTTP 204) but did not
  store within ``confirm_seconds`` is sent again: the server acknowledges before it writes, and can lose
  or drop (a payload it cannot parse) what it acknowledged.
* ``dead_letter``: events the events API refused (a 4xx, or one that cannot even be encoded), or that
  failed ``max_attempts`` times (an error answer, or sent and never stored): moved aside with the reason,
  so they never block the events behind them.
* ``seen``: the replay guard, the signatures of accepted calls within the age window. A signature is
  written in the same transaction as its event, so a call is either accepted (both) or not (neither):
  a call refused for any reason (registry down, rate limit) can be retried with the same signature.

Delivery is at least once: a crash after the events API stored an event and before the outbox marked it
delivered sends it again after the restart, with the same id; the Prefect server stores an event id once
and its triggers act on an id once, so a retrain is not started twice.

The sender is injected (``send(batch)``): this module imports neither Prefect nor an HTTP client.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The namespace of event ids: uuid5(EVENT_NAMESPACE, signature). Fixed forever, or a restarted relay
# would give an event it already sent a new id and the server would store it twice.
EVENT_NAMESPACE = uuid.UUID("5f0e8c3a-6b1d-4f7e-9a2c-d7e1b4a90c21")
MAX_ATTEMPTS = 5  # error answers (5xx), or sends never stored, before an event goes to the dead letters
BATCH = 50
CONFIRM_SECONDS = 30.0  # a sent event not stored by then is sent again (the server flushes every 5 s)
KEEP_DELIVERED_SECONDS = 7 * 24 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    payload TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (delivered_at, sent_at, next_attempt_at, seq);
CREATE TABLE IF NOT EXISTS dead_letter (
    event_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    payload TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    dead_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    signature TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_at ON seen (seen_at);
"""


def event_id_for(signature: str) -> str:
    """The event id of the call signed ``signature``: the same call always becomes the same event."""
    return str(uuid.uuid5(EVENT_NAMESPACE, signature))


@dataclass(frozen=True)
class PendingEvent:
    """An accepted call waiting to be delivered."""

    event_id: str
    model: str
    payload: dict[str, Any]
    accepted_at: float
    attempts: int
    sent_at: float | None = None


class Unreachable(Exception):
    """The events API gave no answer (``refused``: not even a connection; else reset, timed out, or a
    502/503/504 "not now"): nothing is counted against the events."""

    def __init__(self, reason: str, refused: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused


class Rejected(Exception):
    """The events API answered a batch with an error (``status``; 0: refused before sending, it cannot be
    encoded). ``permanent``: it will never take it (a 4xx, or 0)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}: {reason}" if status else reason)
        self.status = status
        self.permanent = status == 0 or (400 <= status < 500 and status not in (408, 425, 429))


@dataclass
class _Entry:
    """One call waiting for its group commit."""

    signature: str
    event_id: str
    model: str
    body: str
    now: float
    done: bool = False
    accepted: bool = False
    error: BaseException | None = None


class Outbox:
    """The SQLite store; thread-safe (one connection, one lock: SQLite serialises writers anyway)."""

    def __init__(self, path: Path, max_age: float) -> None:
        self.path = Path(path)
        self.max_age = max_age
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Entry] = []
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._accepted_since_prune = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- the request path ---------------------------------------------------------------------------------------

    def seen(self, signature: str) -> bool:
        """Whether a call with this signature was accepted within the replay window."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM seen WHERE signature = ?", (signature,)).fetchone() is not None

    def accept(self, signature: str, model: str, payload: dict[str, Any], now: float) -> str | None:
        """Record the call and its event durably; the event id, or None for a replay.

        Group commit: calls accepted at the same moment share one transaction (one fsync). Each waits for
        the lock; whoever holds it commits every call queued so far, so none returns before its commit.

        Raises:
            ValueError: the payload is not JSON (NaN, ...). sqlite3.Error / OSError: the write failed (for
            every call of that transaction: none of them was accepted).
        """
        entry = _Entry(
            signature, event_id_for(signature), model, json.dumps(payload, allow_nan=False, separators=(",", ":")), now
        )
        with self._queue_lock:
            self._queue.append(entry)
        with self._lock:
            if not entry.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if entry.error is not None:
            raise entry.error
        return entry.event_id if entry.accepted else None

    def _commit(self, batch: list[_Entry]) -> None:
        """One transaction for ``batch``: a signature seen before (or twice in it) is a replay.

        The caller holds the lock."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for entry in batch:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO seen (signature, seen_at) VALUES (?, ?)", (entry.signature, entry.now)
                )
                entry.accepted = cursor.rowcount == 1
                if entry.accepted:
                    self._db.execute(
                        "INSERT INTO outbox (event_id, model, payload, accepted_at) VALUES (?, ?, ?, ?)",
                        (entry.event_id, entry.model, entry.body, entry.now),
                    )
            self._db.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - rolled back, then handed to every waiting caller
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            for entry in batch:
                entry.accepted, entry.error = False, exc
        finally:
            for entry in batch:
                entry.done = True
        self._accepted_since_prune += len(batch)
        if self._accepted_since_prune >= 1000:
            self._prune(max(entry.now for entry in batch))

    def _prune(self, now: float) -> None:
        """Forget signatures older than twice the age window (a stale timestamp is refused before the replay
        check anyway) and delivered events past their keep time. Caller holds the lock."""
        self._accepted_since_prune = 0
        self._db.execute("DELETE FROM seen WHERE seen_at < ?", (now - 2 * self.max_age,))
        self._db.execute("DELETE FROM outbox WHERE delivered_at < ?", (now - KEEP_DELIVERED_SECONDS,))

    def prune(self, now: float) -> None:
        with self._lock:
            self._prune(now)

    # --- the delivery loop ------------------------------------------------------------------------------------------

    def _select(self, where: str, args: tuple, limit: int) -> list[PendingEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, model, payload, accepted_at, attempts, sent_at FROM outbox "
                f"WHERE {where} ORDER BY seq LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [PendingEvent(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    def due(self, now: float, limit: int = BATCH) -> list[PendingEvent]:
        """Events to send: not sent (or sent and not stored in time), next attempt due; oldest first."""
        return self._select("delivered_at IS NULL AND sent_at IS NULL AND next_attempt_at <= ?", (now,), limit)

    def awaiting(self, sent_before: float, limit: int = BATCH) -> list[PendingEvent]:
        """Events sent before ``sent_before`` whose storage is not confirmed yet; oldest first."""
        return self._select("delivered_at IS NULL AND sent_at IS NOT NULL AND sent_at <= ?", (sent_before,), limit)

    def _update(self, sql: str, rows: list[tuple]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(sql, rows)
            self._db.execute("COMMIT")

    def mark_sent(self, event_ids: Sequence[str], now: float) -> None:
        self._update("UPDATE outbox SET sent_at = ? WHERE event_id = ?", [(now, e) for e in event_ids])

    def mark_delivered(self, event_ids: Sequence[str], now: float) -> None:
        self._update("UPDATE outbox SET delivered_at = ? WHERE event_id = ?", [(now, e) for e in event_ids])

    def mark_failed(self, event: PendingEvent, reason: str, permanent: bool, now: float, max_attempts: int) -> bool:
        """Count a refused attempt; moves the event to the dead letters when it is permanent or the attempts
        are used up (True then), else schedules the next attempt with exponential backoff."""
        attempts = event.attempts + 1
        reason = reason[:500]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            if permanent or attempts >= max_attempts:
                self._db.execute(
                    "INSERT OR REPLACE INTO dead_letter "
                    "(event_id, model, payload, accepted_at, attempts, reason, dead_at) "
                    "SELECT event_id, model, payload, accepted_at, ?, ?, ? FROM outbox WHERE event_id = ?",
                    (attempts, reason, now, event.event_id),
                )
                self._db.execute("DELETE FROM outbox WHERE event_id = ?", (event.event_id,))
                dead = True
            else:
                self._db.execute(
                    "UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ?, sent_at = NULL "
                    "WHERE event_id = ?",
                    (attempts, reason, now + min(60.0, 2.0**attempts), event.event_id),
                )
                dead = False
            self._db.execute("COMMIT")
        return dead

    # --- what is in it ----------------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """``pending``, ``delivered`` and ``dead`` events."""
        with self._lock:
            pending, delivered = self._db.execute(
                "SELECT COUNT(*) - COUNT(delivered_at), COUNT(delivered_at) FROM outbox"
            ).fetchone()
            dead = self._db.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0]
        return {"pending": pending, "delivered": delivered, "dead": dead}

    def pending(self) -> list[PendingEvent]:
        """Every undelivered event (sent or not, due or not), oldest first."""
        return self._select("delivered_at IS NULL", (), -1)

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, model, attempts, reason, dead_at FROM dead_letter ORDER BY dead_at"
            ).fetchall()
        return [dict(zip(("event_id", "model", "attempts", "reason", "dead_at"), r, strict=True)) for r in rows]


class DeliveryLoop:
    """A daemon thread that sends due events in batches, confirms that the server stored them, and records
    the outcome.

    ``send(batch)`` returns when the events API took every event of the batch (2xx), or raises
    :class:`Unreachable` (no answer: wait and try again, nothing counted) or :class:`Rejected` (an error
    answer: the batch is split, and each event refused on its own counts an attempt). ``confirm(batch)``
    returns the ids of those the server has stored. ``reachable`` says whether the last contact with the
    events API got an answer; the relay answers 503 while it did not. ``probe()`` (optional) checks the API
    when there is nothing to send, so an outage is noticed before the next call arrives.
    """

    def __init__(
        self,
        outbox: Outbox,
        send: Callable[[list[PendingEvent]], None],
        confirm: Callable[[list[PendingEvent]], set[str]],
        probe: Callable[[], None] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        confirm_seconds: float = CONFIRM_SECONDS,
        idle_seconds: float = 0.25,
        gather_seconds: float = 0.05,
        probe_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox, self.send, self.confirm, self.probe = outbox, send, confirm, probe
        self.max_attempts, self.confirm_seconds = max_attempts, confirm_seconds
        self.idle_seconds, self.gather_seconds, self.probe_seconds, self.clock = (
            idle_seconds,
            gather_seconds,
            probe_seconds,
            clock,
        )
        self.reachable = True
        self.slow_seconds = 10.0  # answers failing for this long (timeouts, 503s) count as unreachable too
        self._last_answer = time.monotonic()
        self.delivered = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = 0.5
        self._last_confirm = -math.inf

    def start(self) -> None:
        pending = self.outbox.counts()["pending"]
        if pending:
            logger.warning("outbox: %d accepted events from before this start are delivered first", pending)
        self._thread = threading.Thread(target=self._run, name="driftline-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """An event was accepted: send it now rather than after the idle wait."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the pass in flight (up to ``timeout``); what is left stays on disk for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        pending = self.outbox.counts()["pending"]
        if pending:
            logger.warning(
                "outbox: %d accepted events not confirmed delivered yet; they are sent at the next start", pending
            )

    def _run(self) -> None:
        last_probe = -math.inf
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:
                logger.exception("outbox: delivery pass failed")
                worked = False
            if worked:
                continue
            now = time.monotonic()
            if self.probe is not None and now - last_probe >= (self.probe_seconds if self.reachable else 1.0):
                last_probe = now
                self._probe()
            if self._wake.wait(self.idle_seconds if self.reachable else self._backoff) and self.reachable:
                # Woken by an accepted call: let the calls arriving with it join its batch (a burst then costs
                # the server a few POSTs of up to BATCH events, not one POST per call).
                self._stop.wait(self.gather_seconds)
            self._wake.clear()

    def _probe(self) -> None:
        if self.probe is None:
            return
        try:
            self.probe()
        except Exception as exc:  # noqa: BLE001 - any failure to answer means unreachable
            self._set_reachable(False, exc)
        else:
            self._set_reachable(True)

    def _set_reachable(self, reachable: bool, exc: Exception | None = None) -> None:
        """A refused connection means unreachable at once; a slow or busy server only once it has given no
        good answer for ``slow_seconds`` (a loaded server times out now and then and is not down)."""
        now = time.monotonic()
        if reachable:
            self._last_answer = now
        elif not getattr(exc, "refused", True) and now - self._last_answer < self.slow_seconds:
            self._backoff = min(5.0, self._backoff * 2)
            return
        if reachable and not self.reachable:
            logger.info("outbox: the events API answers again")
        if not reachable and self.reachable:
            # The exception's type only: its text may quote a URL with credentials in it.
            logger.error("outbox: the events API is unreachable (%s); accepted events wait on disk", type(exc).__name__)
        self.reachable = reachable
        self._backoff = 0.5 if reachable else min(5.0, self._backoff * 2)

    def run_once(self) -> bool:
        """One pass: send one batch of due events, then confirm what was sent. True when it made progress."""
        worked = False
        batch = self.outbox.due(self.clock())
        if batch:
            try:
                self.send(batch)
            except Unreachable as exc:
                self._set_reachable(False, exc)
                return False
            except Rejected:
                self._set_reachable(True)
                self._send_one_by_one(batch)
            else:
                self._set_reachable(True)
                self.outbox.mark_sent([e.event_id for e in batch], self.clock())
            worked = True
        return self._confirm() or worked

    def _send_one_by_one(self, batch: list[PendingEvent]) -> None:
        """A batch was refused: find the event(s) it was refused for; the others go through."""
        for event in batch:
            try:
                self.send([event])
            except Unreachable as exc:
                self._set_reachable(False, exc)
                return
            except Rejected as exc:
                self._failed(event, str(exc), exc.permanent)
                continue
            self.outbox.mark_sent([event.event_id], self.clock())

    def _failed(self, event: PendingEvent, reason: str, permanent: bool) -> None:
        if self.outbox.mark_failed(event, reason, permanent, self.clock(), self.max_attempts):
            logger.error("outbox: event %s for %s moved to the dead letters: %s", event.event_id, event.model, reason)
        else:
            logger.warning(
                "outbox: event %s for %s failed (attempt %d): %s",
                event.event_id,
                event.model,
                event.attempts + 1,
                reason,
            )

    def _confirm(self) -> bool:
        """Ask (at most once a second) which sent events the server has stored; mark them delivered, and
        send again those not stored within ``confirm_seconds``."""
        now = self.clock()
        if now - self._last_confirm < 1.0:
            return False
        waiting = self.outbox.awaiting(now)
        if not waiting:
            return False
        self._last_confirm = now
        try:
            stored = self.confirm(waiting)
        except Unreachable as exc:
            self._set_reachable(False, exc)
            return False
        done = [e.event_id for e in waiting if e.event_id in stored]
        if done:
            self.outbox.mark_delivered(done, self.clock())
            self.delivered += len(done)
            logger.debug("outbox: %d events confirmed stored by the server", len(done))
        for event in waiting:
            if event.event_id not in stored and now - (event.sent_at or now) >= self.confirm_seconds:
                self._failed(event, f"sent, but not stored by the server within {self.confirm_seconds:g} s", False)
        return bool(done)
