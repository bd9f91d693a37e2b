"""Drill: the webhook relay's durable outbox, on real processes — ``driftline webhook`` (uvicorn), the shared
``prefect server start`` (tests/conftest.py) and an ``mlflow server`` stopped and restarted on its port.

One test, so the servers start once (about 60-90 s on 2 shared cores):

1. Two poison events are in the outbox when the relay starts (as an older relay, whose schema was open, left
   them): one nested 300 levels (cannot even be encoded as an event) and one nested 250 levels (Prefect's
   ``POST /events`` answers 204, then its consumers fail to parse it and nothing is stored, the case that
   jammed the websocket client in issue 17). Both end in the dead letters with their reason; neither
   delays the events behind them.
2. A burst of signed calls; the relay is SIGKILLed while calls are in flight. The senders retry a 503 after
   its Retry-After until then (on a loaded machine the first lookups can time out: a burst sent once was all
   503 when the registry stalled for a minute, and nothing was accepted).
3. The registry (``mlflow server``) stops as well; the relay starts again on the same outbox. A call for a
   model not looked up before is answered 503 with Retry-After within 5 s. Every call answered 202 before
   the kill is stored by Prefect meanwhile (delivery needs no registry), and replays of them are refused
   (the guard survived the restart). The registry comes back (started in the background).
4. The sender retries what got no answer or a 503: calls accepted before the kill are replays (401), the
   others, and the very same call refused with 503, are accepted. In the end every call of the burst is
   stored exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from benchmarks.relay_load import Call, send_all, signed_call, stored_events
from driftline.app.outbox import Outbox, event_id_for
from tests import warm
from tests.servers import free_port, fresh_mlflow_store, mlflow_server, wait_until

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SECRET = "drill-secret-" + "5c1e9a7d3b" * 4
BURST = 120
KILL_AFTER = 40  # 202 answers before the SIGKILL; the rest of the burst is in flight or not sent yet


def nested(depth: int) -> dict:
    value: object = "deep"
    for _ in range(depth):
        value = {"a": value}
    return {"model": "poison", "reason": "left by an older relay", "nested": value}


class Relay:
    """``driftline webhook`` in a session of its own, on a given outbox; SIGKILLed or stopped by the drill."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env, self.port = root, env, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: warm.Process | subprocess.Popen | None = None

    def start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = warm.popen(  # forked from the suite's warm parent (tests/warm.py)
            [str(BIN / "driftline"), "webhook", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=self.root / "relay.log",
            start_new_session=True,
        )

        def up() -> bool:
            assert self.process.poll() is None, (self.root / "relay.log").read_text()[-3000:]
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 120, "the relay to answer /healthz", every=0.2)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def dead_letters(outbox: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT event_id, reason FROM dead_letter").fetchall())


def test_relay_outbox_survives_sigkill_poison_replay_and_a_registry_outage(tmp_path, prefect_api):
    from mlflow import MlflowClient

    phases: dict[str, float] = {}
    clock = [time.monotonic()]

    def mark(name: str) -> None:
        now = time.monotonic()
        phases[name] = round(now - clock[0], 1)
        clock[0] = now

    pipeline = f"drill-{uuid.uuid4().hex[:8]}"
    later = f"{pipeline}-b"  # registered, first asked for while the registry is down
    mlflow_port, mlflow_dir = free_port(), tmp_path / "mlflow"
    backend = fresh_mlflow_store(mlflow_dir / "mlflow.db")
    tracking = f"http://127.0.0.1:{mlflow_port}"
    registry = ExitStack()
    # The registry and the relay start side by side (the relay's start-up lookup fails fast meanwhile).
    registry_up = threading.Thread(
        target=lambda: registry.enter_context(mlflow_server(mlflow_dir, backend, port=mlflow_port))
    )
    registry_up.start()
    relay: Relay | None = None
    try:
        outbox = tmp_path / "home" / "relay" / "outbox.db"
        seed = Outbox(outbox, max_age=300)
        poison_ids = [seed.accept(f"poison-{depth}", pipeline, nested(depth), time.time()) for depth in (300, 250)]
        seed.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLINE_"))}
        env.update(
            PREFECT_API_URL=prefect_api,
            PREFECT_HOME=str(tmp_path / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            MLFLOW_TRACKING_URI=tracking,
            MLFLOW_DISABLE_TELEMETRY="true",
            DRIFTLINE_HOME=str(tmp_path / "home"),
            DRIFTLINE_WEBHOOK_SECRET=SECRET,
            # Short, so the 250-level poison (taken, never stored) is dead-lettered within the drill.
            DRIFTLINE_WEBHOOK_CONFIRM_SECONDS="4",
            DRIFTLINE_WEBHOOK_MAX_ATTEMPTS="2",
        )
        relay = Relay(tmp_path, env)
        relay.start()
        registry_up.join(240)
        assert httpx.get(f"{tracking}/health", timeout=5).status_code == 200, (
            mlflow_dir / "mlflow-server.log"
        ).read_text()[-3000:]
        for name in (pipeline, later):
            MlflowClient(tracking_uri=tracking, registry_uri=tracking).create_registered_model(f"driftline-{name}")
        mark("relay_and_registry_start")

        # --- 2. SIGKILL mid-burst ---------------------------------------------------------------------------
        calls = [signed_call(SECRET, pipeline) for _ in range(BURST)]
        accepted: dict[str, str] = {}  # token -> event id from the 202
        answers: dict[int, int] = {}  # status -> count, to say what the relay answered if too few are accepted
        answered = threading.Event()
        lock = threading.Lock()

        def sender(chunk: list[Call]) -> None:
            """A sender as the relay expects one: until the kill is due, a 503 (the registry or the events API
            slow on a loaded machine) is retried after its Retry-After; a call with no answer (the kill) or
            a 503 after that is left for the retries below. Every call is sent, so some are in flight at the
            kill."""
            with httpx.Client(timeout=30) as client:
                for call in chunk:
                    while True:
                        try:
                            response = client.post(f"{relay.url}/v1/drift", content=call.body, headers=call.headers)
                        except httpx.HTTPError:
                            break  # the relay died under us: no answer, the sender will retry
                        with lock:
                            answers[response.status_code] = answers.get(response.status_code, 0) + 1
                            if response.status_code == 202:
                                accepted[call.token] = response.json()["event_id"]
                                if len(accepted) >= KILL_AFTER:
                                    answered.set()
                        if response.status_code != 503 or answered.is_set():
                            break
                        answered.wait(float(response.headers.get("retry-after", "1")))

        threads = [threading.Thread(target=sender, args=(calls[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        if not answered.wait(120):
            answered.set()  # the senders stop retrying
            failures = [
                line for line in httpx.get(f"{relay.url}/metrics", timeout=10).text.splitlines() if "failures" in line
            ]
            raise AssertionError(
                f"only {len(accepted)} calls accepted; answers by status {answers}; {failures}\n"
                + (tmp_path / "relay.log").read_text()[-3000:]
            )
        relay.kill()
        for thread in threads:
            thread.join(60)
        killed_with = dict(accepted)
        assert KILL_AFTER <= len(killed_with) < BURST, len(killed_with)
        assert all(
            accepted[c.token] == event_id_for(c.headers["X-Driftline-Signature"]) for c in calls if c.token in accepted
        )

        mark("burst_and_kill")

        # --- 4. the registry stops too; relay B starts on the same outbox while it is away -------------------
        registry.close()
        relay.start()  # the same outbox (DRIFTLINE_HOME); its start-up lookup fails fast
        mark("registry_stop_and_relay_restart")
        call = signed_call(SECRET, later)
        began = time.monotonic()
        [down] = send_all(relay.url, [call], concurrency=1)[0]
        refused_in = time.monotonic() - began
        assert down.status == 503 and down.headers.get("retry-after"), (down.status, down.json)
        assert refused_in < 5.0, refused_in
        registry = ExitStack()
        registry_up = threading.Thread(
            target=lambda: registry.enter_context(mlflow_server(mlflow_dir, backend, port=mlflow_port))
        )
        registry_up.start()  # back in 20-30 s; meanwhile the outbox delivers (it needs no registry)

        acked = set(killed_with.values())
        wait_until(
            lambda: acked <= {e["id"] for e in stored_events(prefect_api, pipeline)},
            90,
            "every call answered 202 before the SIGKILL to be stored",
            every=1.0,
        )
        mark("acked_stored")

        # --- 3. replays after the restart (refused before any lookup, so even with the registry away) ------
        again, _ = send_all(relay.url, [c for c in calls if c.token in killed_with][:5], concurrency=5)
        assert [a.status for a in again] == [401] * 5, [a.json for a in again]

        # --- 1. the poison events ----------------------------------------------------------------------------
        def both_dead() -> dict[str, str] | None:
            letters = dead_letters(outbox)
            return letters if set(poison_ids) <= set(letters) else None

        dead = wait_until(both_dead, 60, "both poison events in the dead letters", every=1.0)
        assert "cannot be encoded" in dead[poison_ids[0]], dead
        assert "not stored by the server" in dead[poison_ids[1]], dead
        mark("poison_dead")

        # The sender retries, as a 503's Retry-After says, what got no answer or a 503: a call accepted
        # before the kill is a replay (401); the rest are accepted once the registry answers again.
        waiting = [c for c in calls if c.token not in killed_with] + [call]
        outcome: dict[str, int] = {}
        deadline = time.monotonic() + 120
        while waiting:
            assert time.monotonic() < deadline, f"{len(waiting)} calls still refused"
            answers, _ = send_all(relay.url, waiting, concurrency=8)
            outcome.update((a.call.token, a.status) for a in answers if a.status != 503)
            waiting = [a.call for a in answers if a.status == 503]
            if waiting:
                time.sleep(1.0)
        registry_up.join(60)
        mark("registry_back_and_retried")
        assert set(outcome.values()) <= {202, 401}, outcome
        assert outcome[call.token] == 202  # the signature was not burned by the 503
        everything = {event_id_for(c.headers["X-Driftline-Signature"]) for c in calls}

        def all_stored() -> list[dict] | None:
            events = stored_events(prefect_api, pipeline)
            return events if everything <= {e["id"] for e in events} else None

        wait_until(all_stored, 90, "every call of the burst to be stored", every=1.0)
        wait_until(
            lambda: (
                event_id_for(call.headers["X-Driftline-Signature"])
                in {e["id"] for e in stored_events(prefect_api, later)}
            ),
            60,
            "the call accepted after the outage to be stored",
        )
        time.sleep(1)  # a duplicate would arrive with the rest
        events = stored_events(prefect_api, pipeline)
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids)) == BURST, (len(ids), len(set(ids)))  # exactly once each, poison not stored
        assert set(ids) == everything
        assert sorted(e["payload"]["reason"] for e in events) == sorted(f"load {c.token}" for c in calls)
        mark("all_stored_once")
        metrics = httpx.get(f"{relay.url}/metrics", timeout=10).text
        assert 'driftline_relay_failures_total{stage="lookup"} 0.0' not in metrics  # the outage was counted
        log = (tmp_path / "relay.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        print(
            json.dumps(
                {
                    "phases_s": phases,
                    "accepted_before_kill": len(killed_with),
                    "retried": len(outcome),
                    "retried_202": sum(v == 202 for v in outcome.values()),
                    "registry_down_503_s": round(refused_in, 2),
                }
            )
        )
    finally:
        if relay is not None:
            relay.stop()
        registry.close()
