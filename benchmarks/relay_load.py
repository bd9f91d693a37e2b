"""The webhook relay under load: the real ``driftline webhook`` (uvicorn) on 127.0.0.1, its events going to a
real ``prefect server start`` and its model lookups to a real MLflow registry (SQLite), driven by a bounded
concurrent loopback client.

Why a real Prefect server and not a stub emitter: the relay's emitter is Prefect's ``emit_event``, which
queues the event for a background websocket client; a stub would measure a different code path and could
not show that every accepted call became exactly one stored event. The server is bounded (its own
``PREFECT_HOME``, SQLite, UI off, stopped at the end) and costs about 20-60 s to start on 2 cores.

* ``relay_requests``: signed calls sent in the measured phase (1000; ``--quick`` 200), after a warm-up.
* ``relay_5xx``: answers with a 5xx status or no answer at all (target 0).
* ``relay_p50_ms`` / ``relay_p99_ms``: client-side latency of one call (loopback, the client shares the CPUs).
* ``relay_rps``: calls answered per second of wall time, ``CONCURRENCY`` in flight.
* ``relay_delivery_errors``: accepted calls not stored exactly once (missing, duplicated or dead-lettered; target 0).
* ``relay_events_stored``: drift events for this run's model that the Prefect server stored (should equal the
  accepted calls, warm-up included); ``relay_events_emitted``: the relay's own counter from ``/metrics``
  (calls accepted into its durable outbox); ``relay_outbox_delivered`` / ``_pending`` / ``_dead``: the
  outbox afterwards (delivered: confirmed stored by the server; all accepted, 0, 0 when it works).

    .venv/bin/python -m benchmarks.relay_load [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.processes import shared_prefect_api
from driftline.app.webhook import sign

BIN = Path(sys.executable).parent
DRIFT_EVENT = "driftline.drift.detected"  # tasks.events.DRIFT_EVENT, without importing Prefect here
CONCURRENCY = 24
WARMUP = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return 0


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}\n{log.read_text()[-3000:]}")
        if _status(url) == 200:
            return
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s\n{log.read_text()[-3000:]}")


@contextmanager
def _process(
    args: list[str], env: dict[str, str], log: Path, health: str, timeout: float
) -> Iterator[subprocess.Popen]:
    """A process group of its own (uvicorn and Prefect start children), always stopped on exit."""
    with log.open("w") as handle:
        process = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_healthy(health, process, log, timeout)
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLINE_"))}
    env.update(
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
    )
    return env


@contextmanager
def prefect_server(workdir: Path) -> Iterator[str]:
    """``prefect server start`` on a free port with its own home; yields the API URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with _process(args, _base_env(workdir), workdir / "prefect-server.log", f"http://127.0.0.1:{port}/api/health", 240):
        yield f"http://127.0.0.1:{port}/api"


@dataclass
class RelayStack:
    url: str
    api_url: str
    pipeline: str
    secret: str
    log: Path
    process: subprocess.Popen


@contextmanager
def relay_stack(
    workdir: Path,
    secret: str,
    api_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[RelayStack]:
    """The real relay (``driftline webhook``) with a registered model to accept calls for.

    Args:
        workdir: homes, the MLflow database and the logs (``relay.log``: the relay's stdout and stderr).
        secret: ``DRIFTLINE_WEBHOOK_SECRET``.
        api_url: a running Prefect API; None starts a Prefect server for the duration.
        extra_env: more environment for the relay (rate limit, metrics token, credentials to scan for).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    pipeline = f"relay-load-{uuid.uuid4().hex[:8]}"
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    # The name the relay looks up: PipelineConfig(name=pipeline).model_name.
    from driftline.config import PipelineConfig

    model_name = PipelineConfig(name=pipeline).model_name
    created = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys; from mlflow import MlflowClient; "
                "MlflowClient(sys.argv[1]).create_registered_model(sys.argv[2])"
            ),
            tracking,
            model_name,
        ],
        env=_base_env(workdir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if created.returncode != 0:
        raise RuntimeError(f"could not register {model_name}: {created.stderr[-2000:]}")
    with ExitStack() as stack:
        if api_url is None:
            api_url = stack.enter_context(prefect_server(workdir / "prefect-server"))
        env = _base_env(workdir)
        env.update(
            PREFECT_API_URL=api_url,
            MLFLOW_TRACKING_URI=tracking,
            DRIFTLINE_HOME=str(workdir / "home"),
            DRIFTLINE_WEBHOOK_SECRET=secret,
            **(extra_env or {}),
        )
        port = free_port()
        log = workdir / "relay.log"
        args = [str(BIN / "driftline"), "webhook", "--host", "127.0.0.1", "--port", str(port)]
        process = stack.enter_context(_process(args, env, log, f"http://127.0.0.1:{port}/healthz", 180))
        yield RelayStack(f"http://127.0.0.1:{port}", api_url, pipeline, secret, log, process)


# --- the client ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request to send: what it is (``kind``), its exact bytes and headers."""

    kind: str
    body: bytes
    headers: dict[str, str]
    token: str = ""  # unique per valid call: find its event on the server


@dataclass
class Answer:
    call: Call
    status: int  # 0: no answer (connection error, timeout)
    seconds: float
    json: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def signed_call(secret: str, pipeline: str, kind: str = "valid", timestamp: int | None = None, **fields: Any) -> Call:
    token = uuid.uuid4().hex
    body = json.dumps({"model": pipeline, "reason": f"load {token}", **fields}).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-Driftline-Timestamp": ts,
        "X-Driftline-Signature": sign(secret.encode(), ts, body),
    }
    return Call(kind, body, headers, token)


async def _send_all(url: str, calls: list[Call], concurrency: int) -> tuple[list[Answer], float]:
    import httpx

    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one(call: Call) -> Answer:
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/drift", content=call.body, headers=call.headers)
                except httpx.HTTPError:
                    return Answer(call, 0, time.perf_counter() - started)
                elapsed = time.perf_counter() - started
                try:
                    payload = response.json()
                except ValueError:
                    payload = {}
                return Answer(call, response.status_code, elapsed, payload, dict(response.headers))

        started = time.perf_counter()
        answers = await asyncio.gather(*(one(c) for c in calls))
        return list(answers), time.perf_counter() - started


def send_all(url: str, calls: list[Call], concurrency: int = CONCURRENCY) -> tuple[list[Answer], float]:
    """Send every call, at most ``concurrency`` in flight; the answers in order and the wall time."""
    return asyncio.run(_send_all(url, calls, concurrency))


def summarise(answers: list[Answer], wall_seconds: float) -> dict[str, Any]:
    latencies = sorted(a.seconds * 1000 for a in answers)
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(answers),
        "5xx": sum(1 for a in answers if a.status >= 500 or a.status == 0),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(quantiles[98], 2),
        "max_ms": round(latencies[-1], 2),
        "rps": round(len(answers) / wall_seconds, 1),
        "statuses": {str(s): sum(1 for a in answers if a.status == s) for s in sorted({a.status for a in answers})},
    }


# --- what the relay and the server say --------------------------------------------------------------------------------


def scrape_metrics(url: str, token: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The relay's ``/metrics``, parsed: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def stored_events(api_url: str, pipeline: str) -> list[dict[str, Any]]:
    """Every drift event the Prefect server has stored for this pipeline (all pages)."""
    import httpx

    query = {
        "filter": {
            "event": {"name": [DRIFT_EVENT]},
            "resource": {"id": [f"driftline.model.{pipeline}"]},
            "occurred": {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
        },
        "limit": 50,
    }
    with httpx.Client(timeout=30) as client:
        page = client.post(f"{api_url}/events/filter", json=query).raise_for_status().json()
        events = list(page["events"])
        while page.get("next_page"):
            page = client.get(page["next_page"]).raise_for_status().json()
            events.extend(page["events"])
    return events


def wait_for_events(api_url: str, pipeline: str, expected: int, timeout: float = 90.0) -> list[dict[str, Any]]:
    """The stored events once ``expected`` have arrived (or whatever is there at the timeout)."""
    deadline = time.monotonic() + timeout
    events = stored_events(api_url, pipeline)
    while len(events) < expected and time.monotonic() < deadline:
        time.sleep(1.0)
        events = stored_events(api_url, pipeline)
    time.sleep(2.0)  # and nothing more comes (a duplicate would arrive with the rest)
    return stored_events(api_url, pipeline)


def wait_for_outbox(
    url: str, token: str | None = None, timeout: float = 60.0
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The relay's metrics once its outbox has nothing left to deliver (confirmed stored or dead-lettered)."""
    deadline = time.monotonic() + timeout
    metrics = scrape_metrics(url, token)
    while metrics[("driftline_relay_outbox_pending", ())] > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        metrics = scrape_metrics(url, token)
    return metrics


# --- the benchmark ----------------------------------------------------------------------------------------------------


def measure(quick: bool = False) -> dict[str, Any]:
    n = 200 if quick else 1000
    secret = uuid.uuid4().hex
    with (
        tempfile.TemporaryDirectory(prefix="driftline-bench-relay-") as tmp,
        relay_stack(Path(tmp), secret, shared_prefect_api()) as relay,
    ):
        warm, _ = send_all(relay.url, [signed_call(secret, relay.pipeline) for _ in range(WARMUP)])
        calls = [signed_call(secret, relay.pipeline) for _ in range(n)]
        answers, wall = send_all(relay.url, calls)
        stats = summarise(answers, wall)
        accepted = sum(1 for a in [*warm, *answers] if a.status == 202)
        events = wait_for_events(relay.api_url, relay.pipeline, accepted)
        metrics = wait_for_outbox(relay.url)
    tokens = [e.get("payload", {}).get("reason", "").removeprefix("load ") for e in events]
    return {
        "relay_requests": stats["requests"],
        "relay_5xx": stats["5xx"],
        "relay_p50_ms": stats["p50_ms"],
        "relay_p99_ms": stats["p99_ms"],
        "relay_max_ms": stats["max_ms"],
        "relay_rps": stats["rps"],
        "relay_statuses": stats["statuses"],
        "relay_concurrency": CONCURRENCY,
        "relay_accepted": accepted,
        "relay_events_emitted": int(metrics[("driftline_relay_events_emitted_total", ())]),
        "relay_events_stored": len(events),
        "relay_events_duplicated": len(tokens) - len(set(tokens)),
        "relay_outbox_delivered": int(metrics[("driftline_relay_outbox_delivered", ())]),
        "relay_outbox_pending": int(metrics[("driftline_relay_outbox_pending", ())]),
        "relay_outbox_dead": int(metrics[("driftline_relay_outbox_dead", ())]),
        # Every accepted call stored exactly once: missing ones, second copies and dead letters all count.
        "relay_delivery_errors": abs(accepted - len(set(tokens)))
        + (len(tokens) - len(set(tokens)))
        + int(metrics[("driftline_relay_outbox_dead", ())]),
    }


if __name__ == "__main__":
    print(json.dumps(measure(quick="--quick" in sys.argv), indent=2))
