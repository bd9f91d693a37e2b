"""Secret scan: with a known webhook secret (two, rotating), a metrics token, AWS credentials and a Prefect auth
string in the environment, none of them appears in anything the relay writes or answers — the real process's
stdout and stderr at debug level, every response, and the in-process logs (caplog) on the failure paths where
an exception's text quotes a credential. One CLI path (``driftline history``) and the relay's start-up refusal
are scanned too."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from benchmarks.relay_load import relay_stack, send_all, signed_call, wait_for_outbox
from driftline.app.outbox import Outbox
from driftline.app.webhook import RateLimit, create_app, parse_secrets, sign

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
NEW_SECRET = "whsec-new-5b7e0c1d9a-3f6b2e8d41c0a7f9"
OLD_SECRET = "whsec-old-88f1e2a4c3-9d0e5b7a2c6f1e48"
METRICS_TOKEN = "metrics-token-3c9d7e"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAQ7SECRETSCAN0001",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETSCAN1",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLESESSIONTOKENSECRETSCAN",
    "PREFECT_API_AUTH_STRING": "admin:prefect-auth-secret-6a1f",
}
NEEDLES = [NEW_SECRET, OLD_SECRET, METRICS_TOKEN, *CREDENTIALS.values(), "prefect-auth-secret-6a1f"]


def assert_clean(text: str, where: str) -> None:
    found = [needle for needle in NEEDLES if needle in text]
    assert not found, f"{where} contains {found}"


def test_the_running_relay_never_writes_or_answers_a_secret(tmp_path, prefect_api):
    env = {
        **CREDENTIALS,
        "DRIFTLINE_METRICS_TOKEN": METRICS_TOKEN,
        "DRIFTLINE_WEBHOOK_RATE_LIMIT": "3/3600",
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "PREFECT_LOGGING_ROOT_LEVEL": "DEBUG",  # every library's debug lines (httpcore's included) are scanned too
        "PREFECT_LOGGING_EXTRA_LOGGERS": "driftline",
    }
    with relay_stack(tmp_path, f"{NEW_SECRET},{OLD_SECRET}", api_url=prefect_api, extra_env=env) as relay:
        pipeline = relay.pipeline
        calls = [
            signed_call(NEW_SECRET, pipeline),
            signed_call(OLD_SECRET, pipeline, kind="old-secret"),
            signed_call("not-the-secret", pipeline, kind="forged"),
            signed_call(NEW_SECRET, pipeline, kind="stale", timestamp=int(time.time()) - 3600),
            signed_call(NEW_SECRET, "nobody", kind="unknown"),
            signed_call(NEW_SECRET, pipeline, kind="bad_payload", drift_share="NaN?"),
            signed_call(NEW_SECRET, pipeline, kind="too_large", padding="x" * 70_000),
        ]
        answers, _ = send_all(relay.url, calls, concurrency=1)
        answers += send_all(relay.url, [calls[0]], concurrency=1)[0]  # replay
        answers += send_all(relay.url, [signed_call(NEW_SECRET, pipeline) for _ in range(3)], concurrency=1)[0]  # 429
        statuses = [a.status for a in answers]
        assert statuses == [202, 202, 401, 401, 404, 422, 413, 401, 202, 429, 429], statuses
        with httpx.Client(base_url=relay.url) as client:
            scrapes = [
                client.get("/metrics"),
                client.get("/metrics", headers={"Authorization": "Bearer wrong"}),
                client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}),
                client.get("/healthz"),
                client.get("/docs"),
                client.get("/openapi.json"),
            ]
        assert [r.status_code for r in scrapes] == [401, 401, 200, 200, 404, 404]
        wait_for_outbox(relay.url, METRICS_TOKEN)  # delivered: the sender has written what it writes at debug level
    log = relay.log.read_text()
    assert "webhook refused" in log  # the relay's own log lines are in the capture
    # and the outbox's delivery at debug level (it sends with PREFECT_API_AUTH_STRING in its headers)
    assert "DEBUG" in log and re.search(r"outbox: \d+ events confirmed stored", log), log[-3000:]
    assert_clean(log, "the relay's stdout/stderr")
    for answer in answers:
        assert_clean(json.dumps(answer.json) + json.dumps(answer.headers), f"the answer to a {answer.call.kind} call")
    for response in scrapes:
        assert_clean(response.text + json.dumps(dict(response.headers)), f"GET {response.request.url.path}")


def test_cli_paths_never_print_a_secret(tmp_path):
    env = {
        **{
            k: v for k, v in __import__("os").environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLINE_"))
        },
        **CREDENTIALS,
        "DRIFTLINE_WEBHOOK_SECRET": f"{NEW_SECRET},{OLD_SECRET}",
        "DRIFTLINE_METRICS_TOKEN": METRICS_TOKEN,
        "DRIFTLINE_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "DRIFTLINE_FORK_SERVER": "0",  # `history` in a process of its own (tests/conftest.py)
    }
    refused = subprocess.run(
        [str(BIN / "driftline"), "webhook", "--port", "1"],
        env={**env, "DRIFTLINE_WEBHOOK_RATE_LIMIT": "lots"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "DRIFTLINE_WEBHOOK_RATE_LIMIT" in refused.stdout + refused.stderr
    assert_clean(refused.stdout + refused.stderr, "driftline webhook (bad rate limit)")
    short = "tiny-secret-7q"  # a relay with a guessable key refuses to start, and does not print it
    too_short = subprocess.run(
        [str(BIN / "driftline"), "webhook", "--port", "1"],
        env={**env, "DRIFTLINE_WEBHOOK_SECRET": f"{NEW_SECRET},{short}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = too_short.stdout + too_short.stderr
    assert too_short.returncode == 2 and "secret 2 is shorter than 32 bytes" in said, said
    assert short not in said
    assert_clean(said, "driftline webhook (short secret)")
    history = subprocess.run(
        [str(BIN / "driftline"), "history", "--name", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert history.stdout + history.stderr  # it said something (an error for an unknown model)
    assert_clean(history.stdout + history.stderr, "driftline history")


def test_failure_paths_never_log_a_secret(caplog, monkeypatch, tmp_path):
    """In-process, every logger at DEBUG: the registry and the outbox's disk fail with credentials in their
    exceptions' text (as a URL with user:password would); only the exception type reaches the log."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    caplog.set_level(logging.DEBUG)
    leak = f"https://{CREDENTIALS['AWS_ACCESS_KEY_ID']}:{CREDENTIALS['AWS_SECRET_ACCESS_KEY']}@host/{NEW_SECRET}"
    fail = {"lookup": True, "store": True}

    def model_exists(name: str) -> bool:
        if fail["lookup"]:
            fail["lookup"] = False
            raise ConnectionError(f"registry unreachable at {leak}")
        return name == "demo"

    outbox = Outbox(tmp_path / "outbox.db", max_age=300)
    accept = outbox.accept

    def failing_accept(*args: Any) -> str | None:
        if fail["store"]:
            fail["store"] = False
            raise OSError(f"cannot write {leak}")
        return accept(*args)

    monkeypatch.setattr(outbox, "accept", failing_accept)
    app = create_app(
        parse_secrets(f"{NEW_SECRET},{OLD_SECRET}"),
        outbox,
        model_exists=model_exists,
        rate_limit=RateLimit(1, 3600),
        metrics_token=METRICS_TOKEN,
    )
    client = TestClient(app, raise_server_exceptions=False)
    body = json.dumps({"model": "demo"}).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Driftline-Timestamp": ts,
        "X-Driftline-Signature": sign(NEW_SECRET.encode(), ts, body),
    }
    responses = [
        client.post("/v1/drift", content=body, headers=headers),  # lookup fails: 503
        client.post("/v1/drift", content=body, headers=headers),  # the disk fails: 503 (same call, retried)
        client.post("/v1/drift", content=body, headers=headers),  # 202
        client.post("/v1/drift", content=body, headers=headers),  # replay
        client.post("/v1/drift", content=body, headers={**headers, "X-Driftline-Signature": sign(b"x", ts, body)}),
        client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}),
        client.get("/metrics", headers={"Authorization": f"Bearer {NEW_SECRET}"}),
    ]
    assert [r.status_code for r in responses] == [503, 503, 202, 401, 401, 200, 401]
    assert caplog.records
    for record in caplog.records:
        assert_clean(
            record.getMessage() + repr(record.args) + repr(record.exc_info) + repr(record.__dict__),
            f"log record {record.name}",
        )
    assert_clean(caplog.text, "caplog")
    for response in responses:
        assert_clean(response.text + json.dumps(dict(response.headers)), f"response {response.status_code}")
