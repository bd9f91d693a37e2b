"""The signed-webhook relay: signatures (and rotation), staleness, replays (on disk), size, media type, read
deadline and closed-schema limits, the registry lookup and the events API's state (503 without burning the
signature), and that the secret never reaches the logs. Accepted calls land in a real outbox (SQLite in a
temp folder)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from driftline.app import webhook
from driftline.app.outbox import Outbox, event_id_for
from driftline.app.webhook import (
    MAX_AGE_SECONDS,
    MAX_BODY_BYTES,
    MIN_SECRET_BYTES,
    REJECTION_REASONS,
    RateLimit,
    TokenBuckets,
    create_app,
    parse_rate_limit,
    parse_secrets,
    sign,
)

SECRET = "s3cr3t-webhook-key-never-logged-9f27c1"
OLD_SECRET = "0ld-s3cr3t-still-valid-during-rotation"
NOW = 1_700_000_000
MODELS = {"demo", "fx.daily"}
JSON = {"Content-Type": "application/json"}


@dataclass
class FakeClock:
    now: float = float(NOW)

    def __call__(self) -> float:
        return self.now


@dataclass
class Relay:
    client: TestClient
    outbox: Outbox
    clock: FakeClock
    looked_up: list[str]
    events_up: dict[str, bool] = field(default_factory=lambda: {"up": True})

    @property
    def emitted(self) -> list[tuple[str, dict[str, Any]]]:
        """What the outbox holds to deliver: (model, payload), oldest first."""
        return [(e.model, e.payload) for e in self.outbox.pending()]

    def post(self, body: bytes, timestamp: str | None = None, secret: str = SECRET, headers: dict | None = None, **kw):
        timestamp = str(int(self.clock.now)) if timestamp is None else timestamp
        signed = {
            **JSON,
            "X-Driftline-Timestamp": timestamp,
            "X-Driftline-Signature": sign(secret.encode(), timestamp, body),
        }
        return self.client.post("/v1/drift", content=body, headers={**signed, **(headers or {})}, **kw)


_TMP: list[Path] = []


@pytest.fixture(autouse=True)
def _outbox_folder(tmp_path: Path):
    _TMP.append(tmp_path)
    yield
    _TMP.pop()


def new_outbox() -> Outbox:
    folder = _TMP[-1]
    return Outbox(folder / f"outbox-{len(list(folder.glob('outbox-*.db')))}.db", max_age=MAX_AGE_SECONDS)


def make_relay(secrets: list[bytes] | None = None, model_exists: Any = None, **options: Any) -> Relay:
    clock, looked_up, events_up = FakeClock(), [], {"up": True}

    def registered(name: str) -> bool:
        looked_up.append(name)
        return name in MODELS

    outbox = options.pop("outbox", None) or new_outbox()
    app = create_app(
        secrets or [SECRET.encode()],
        outbox,
        model_exists=model_exists or registered,
        clock=clock,
        events_reachable=lambda: events_up["up"],
        **options,
    )
    return Relay(TestClient(app, raise_server_exceptions=False), outbox, clock, looked_up, events_up)


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics, parsed: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def rejections(samples: dict) -> dict[str, float]:
    return {
        dict(labels)["reason"]: v for (name, labels), v in samples.items() if name == "driftline_relay_rejections_total"
    }


@pytest.fixture
def relay() -> Relay:
    return make_relay()


def body_of(**fields: Any) -> bytes:
    return json.dumps({"model": "demo", **fields}).encode()


# --- the route itself --------------------------------------------------------------------------------------------


def test_route_resolves_the_request_parameter():
    """Regression: with ``from __future__ import annotations`` in webhook.py and ``Request`` imported inside
    ``create_app``, FastAPI could not resolve ``request: "Request"`` and made it a required query parameter,
    so every POST /v1/drift answered 422 ("query.request: Field required")."""
    relay = make_relay()
    response = relay.post(body_of(reason="vendor PSI 0.4"))
    assert response.status_code == 202, response.text
    assert len(relay.emitted) == 1


# --- accepted calls -----------------------------------------------------------------------------------------------


def test_valid_signed_call_is_accepted_and_emitted_once(relay):
    body = body_of(
        reason="vendor monitor: PSI 0.4",
        drift_share=0.5,
        features=["rv_5", "ret_1"],
        details={"vendor_run": "r-17", "psi": 0.41, "ok": False, "note": None},
    )
    response = relay.post(body)
    assert response.status_code == 202, response.text
    signature = sign(SECRET.encode(), str(NOW), body)
    # The event id is derived from the signature: a resend after a crash carries the same id.
    assert response.json() == {"event_id": event_id_for(signature), "model": "demo"}
    assert len(relay.emitted) == 1
    model, payload = relay.emitted[0]
    assert model == "demo"
    assert payload["model"] == "demo"
    assert payload["reason"] == "vendor monitor: PSI 0.4"
    assert payload["drift_share"] == 0.5
    assert payload["features"] == ["rv_5", "ret_1"]
    assert payload["details"] == {"vendor_run": "r-17", "psi": 0.41, "ok": False, "note": None}
    assert payload["source"] == "webhook"
    assert payload["received_at"] == NOW
    assert relay.looked_up == ["demo"]


def test_defaults_fill_optional_fields(relay):
    response = relay.post(body_of())
    assert response.status_code == 202
    payload = relay.emitted[0][1]
    assert payload["reason"] == "external monitor" and payload["drift_share"] is None and payload["features"] == []


def test_body_cannot_override_source(relay):
    assert relay.post(body_of(source="forged", received_at=0)).status_code == 422  # not fields of the schema
    assert relay.post(body_of()).status_code == 202
    payload = relay.emitted[0][1]
    assert payload["source"] == "webhook" and payload["received_at"] == NOW


def test_old_secret_is_accepted_during_rotation():
    relay = make_relay(parse_secrets(f"{SECRET},{OLD_SECRET}"))
    assert relay.post(body_of(reason="new"), secret=SECRET).status_code == 202
    assert relay.post(body_of(reason="old"), secret=OLD_SECRET).status_code == 202
    assert relay.post(body_of(reason="other"), secret="neither").status_code == 401
    assert [p["reason"] for _, p in relay.emitted] == ["new", "old"]


def test_timestamp_at_the_edge_of_the_window_is_accepted(relay):
    assert relay.post(body_of(reason="old"), timestamp=str(NOW - MAX_AGE_SECONDS)).status_code == 202
    assert relay.post(body_of(reason="future"), timestamp=str(NOW + MAX_AGE_SECONDS)).status_code == 202
    assert len(relay.emitted) == 2


def test_body_of_exactly_the_limit_is_accepted(relay):
    body = body_of()
    body = body + b" " * (MAX_BODY_BYTES - len(body))
    assert len(body) == MAX_BODY_BYTES
    assert relay.post(body).status_code == 202


def test_healthz():
    response = make_relay().client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


# --- parse_secrets ------------------------------------------------------------------------------------------------


NEW32, OLD32 = "n" * 32, "o" * 40


def test_parse_secrets():
    assert parse_secrets(f"{NEW32},{OLD32}") == [NEW32.encode(), OLD32.encode()]
    assert parse_secrets(f" {NEW32} , ,{OLD32} ") == [NEW32.encode(), OLD32.encode()]
    assert parse_secrets(NEW32) == [NEW32.encode()]


@pytest.mark.parametrize("raw, which", [("x", "the secret"), ("s" * 31, "the secret"), (f"{NEW32},short", "secret 2")])
def test_short_secrets_are_refused_without_showing_them(raw, which):
    with pytest.raises(ValueError, match=f"{which} is shorter than {MIN_SECRET_BYTES} bytes") as refused:
        parse_secrets(raw)
    assert "short" not in str(refused.value).replace("shorter", "") and "sss" not in str(refused.value)
    with pytest.raises(ValueError, match="shorter than"):
        create_app([b"x" * 31], new_outbox(), model_exists=lambda n: True)


@pytest.mark.parametrize("raw", ["", None, " , ", ",", "   "])
def test_parse_secrets_refuses_no_secret(raw):
    with pytest.raises(ValueError, match=webhook.SECRET_ENV):
        parse_secrets(raw)


# --- refused: authentication --------------------------------------------------------------------------------------


def test_missing_headers_are_refused(relay):
    body = body_of()
    for headers in (
        {},
        {"X-Driftline-Timestamp": str(NOW)},
        {"X-Driftline-Signature": sign(SECRET.encode(), str(NOW), body)},
    ):
        response = relay.client.post("/v1/drift", content=body, headers={**JSON, **headers})
        assert response.status_code == 401, headers
    assert relay.emitted == []


@pytest.mark.parametrize(
    "timestamp, signature",
    [
        ("not-a-time", None),  # non-numeric timestamp
        ("-5", None),  # negative
        ("1.7e9", None),  # not an integer
        ("9" * 309, None),  # overflowed float(now) - int(ts): was a 500 with a traceback
        ("0" * 300 + str(NOW), None),  # the right time, padded: no number of that length is a timestamp
        ("9" * 13, None),
        (f"+{NOW}", None),
        (f" {NOW}", None),
        (str(NOW), "md5=abc"),  # wrong scheme
        (str(NOW), "SHA256=0000"),  # scheme is case-sensitive
        (str(NOW), "bare-hex-without-scheme"),
        (str(NOW), "sha256="),
        (str(NOW), "sha256=zz"),
    ],
)
def test_malformed_signature_headers_are_refused(relay, timestamp, signature):
    body = body_of()
    signature = signature or sign(SECRET.encode(), str(NOW), body)
    response = relay.client.post(
        "/v1/drift",
        content=body,
        headers={**JSON, "X-Driftline-Timestamp": timestamp, "X-Driftline-Signature": signature},
    )
    assert response.status_code == 401
    assert relay.emitted == []


def test_wrong_secret_is_refused(relay):
    assert relay.post(body_of(), secret="not-the-secret").status_code == 401
    assert relay.emitted == []


def test_body_tampered_after_signing_is_refused(relay):
    signed_body = body_of(drift_share=0.1)
    timestamp = str(NOW)
    headers = {
        "X-Driftline-Timestamp": timestamp,
        "X-Driftline-Signature": sign(SECRET.encode(), timestamp, signed_body),
    }
    response = relay.client.post("/v1/drift", content=body_of(drift_share=0.9), headers={**JSON, **headers})
    assert response.status_code == 401
    assert relay.emitted == []


def test_timestamp_swapped_after_signing_is_refused(relay):
    body = body_of()
    headers = {"X-Driftline-Timestamp": str(NOW - 1), "X-Driftline-Signature": sign(SECRET.encode(), str(NOW), body)}
    assert relay.client.post("/v1/drift", content=body, headers={**JSON, **headers}).status_code == 401
    assert relay.emitted == []


@pytest.mark.parametrize("offset", [-(MAX_AGE_SECONDS + 1), MAX_AGE_SECONDS + 1, -86_400, 86_400])
def test_stale_or_future_timestamps_are_refused(relay, offset):
    response = relay.post(body_of(), timestamp=str(NOW + offset))
    assert response.status_code == 401
    assert relay.emitted == []


def test_replayed_call_is_refused(relay):
    body = body_of(reason="once")
    timestamp = str(NOW)
    assert relay.post(body, timestamp=timestamp).status_code == 202
    relay.clock.now += 10
    assert relay.post(body, timestamp=timestamp).status_code == 401
    assert len(relay.emitted) == 1


def test_replay_after_the_guard_forgets_is_refused_as_stale(relay):
    body = body_of()
    timestamp = str(NOW + MAX_AGE_SECONDS)  # as far in the future as is accepted
    assert relay.post(body, timestamp=timestamp).status_code == 202
    relay.clock.now = NOW + 2 * MAX_AGE_SECONDS + 1  # the guard has forgotten it: staleness must still hold
    assert relay.post(body, timestamp=timestamp).status_code == 401
    assert len(relay.emitted) == 1


def test_non_ascii_digit_timestamp_is_refused_not_a_server_error():
    """``"\\xb2"`` (superscript two, latin-1) passes ``str.isdigit`` but not ``int()``: must be 401, not 500.

    httpx cannot send a raw 0xB2 header byte, so the ASGI app is called directly, as uvicorn would.
    """
    outbox = new_outbox()
    app = create_app([SECRET.encode()], outbox, model_exists=lambda n: True, clock=FakeClock())
    body = body_of()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/drift",
        "raw_path": b"/v1/drift",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"x-driftline-timestamp", b"\xb2"),
            (b"x-driftline-signature", b"sha256=" + b"0" * 64),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    # Answered, not raised: an unhandled error would reach here (Starlette re-raises after sending its 500).
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    assert status == 401
    assert outbox.pending() == []


# --- refused: lookup, size, schema --------------------------------------------------------------------------------


def test_unknown_model_is_404(relay):
    response = relay.post(json.dumps({"model": "nobody"}).encode())
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]
    assert relay.looked_up == ["nobody"]
    assert relay.emitted == []


def test_body_over_limit_by_content_length_is_413(relay):
    body = body_of(reason="x") + b" " * MAX_BODY_BYTES
    response = relay.post(body)
    assert response.request.headers["content-length"] == str(len(body))
    assert response.status_code == 413
    assert relay.emitted == []


def test_streamed_body_over_limit_is_413(relay):
    def chunks():
        yield b'{"model": "demo", "reason": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    headers = {"X-Driftline-Timestamp": str(NOW), "X-Driftline-Signature": "sha256=" + "0" * 64}
    response = relay.client.post("/v1/drift", content=chunks(), headers={**JSON, **headers})
    assert "content-length" not in response.request.headers  # chunked: only the streaming check can catch it
    assert response.status_code == 413
    assert relay.emitted == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"\xff\xfe not utf-8",
        b"[]",
        b'"demo"',
        json.dumps({"reason": "no model"}).encode(),
        json.dumps({"model": "demo", "drift_share": 2.0}).encode(),
        json.dumps({"model": "demo", "drift_share": -0.1}).encode(),
        b'{"model": "demo", "drift_share": NaN}',
        json.dumps({"model": "../etc/passwd"}).encode(),
        json.dumps({"model": ""}).encode(),
        json.dumps({"model": "demo", "features": "rv_5"}).encode(),
        json.dumps({"model": "demo", "features": [f"f{i}" for i in range(201)]}).encode(),
        json.dumps({"model": "demo", "reason": "r" * 2001}).encode(),
    ],
)
def test_malformed_or_schema_invalid_body_is_422(relay, body):
    response = relay.post(body)
    assert response.status_code == 422, response.text
    assert relay.emitted == []
    assert relay.looked_up == []


def test_deeply_nested_json_is_422_not_a_server_error(relay):
    """``json.loads`` raises RecursionError (not ValueError) on deep nesting; the relay should still say 422."""
    body = b"[" * 20_000 + b"]" * 20_000
    assert len(body) <= MAX_BODY_BYTES
    response = relay.post(body)
    assert response.status_code == 422, response.status_code
    assert relay.emitted == []


# --- logging ------------------------------------------------------------------------------------------------------


def test_secret_never_appears_in_logs(relay, caplog):
    caplog.set_level(logging.DEBUG)
    assert relay.post(body_of()).status_code == 202
    assert relay.post(body_of(), secret="wrong").status_code == 401
    assert relay.post(body_of(drift_share=7)).status_code == 422
    assert relay.post(json.dumps({"model": "nobody"}).encode()).status_code == 404
    assert caplog.records, "the relay should log accepted and refused calls"
    assert any(r.name == webhook.logger.name for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        assert SECRET not in text
    assert SECRET not in caplog.text


# --- import purity ------------------------------------------------------------------------------------------------


def test_importing_the_relay_does_not_import_prefect_mlflow_or_fastapi():
    code = (
        "import json, sys\n"
        "import driftline.app.webhook\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'mlflow', 'fastapi'})))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


# --- metrics --------------------------------------------------------------------------------------------------------


def test_metrics_count_requests_events_and_every_rejection_reason():
    relay = make_relay(rate_limit=RateLimit(burst=2, per_seconds=60))
    assert set(rejections(scrape(relay.client))) == set(REJECTION_REASONS)  # every reason is exported from the start
    assert all(v == 0 for v in rejections(scrape(relay.client)).values())

    assert relay.post(body_of(reason="one")).status_code == 202
    assert relay.post(body_of(reason="two")).status_code == 202
    assert relay.post(body_of(reason="three")).status_code == 429  # rate_limited
    assert relay.post(body_of(), secret="forged").status_code == 401  # bad_signature
    assert (
        relay.client.post("/v1/drift", content=body_of(), headers=JSON).status_code == 401
    )  # no signature: bad_signature
    assert relay.post(body_of(), timestamp=str(NOW - 10 * MAX_AGE_SECONDS)).status_code == 401  # stale
    replayed = body_of(reason="one")
    assert relay.post(replayed).status_code == 401  # replay (same body and timestamp as the first call)
    assert relay.post(body_of(reason="x") + b" " * MAX_BODY_BYTES).status_code == 413  # too_large
    assert relay.post(json.dumps({"model": "nobody"}).encode()).status_code == 404  # unknown_source
    assert relay.post(b"{not json").status_code == 422  # bad_payload
    assert relay.post(body_of(reason="plain"), headers={"Content-Type": "text/plain"}).status_code == 415

    samples = scrape(relay.client)
    assert rejections(samples) == {
        "bad_signature": 2,
        "stale": 1,
        "replay": 1,
        "too_large": 1,
        "unknown_source": 1,
        "rate_limited": 1,
        "bad_payload": 1,
        "unsupported_media_type": 1,
        "slow_body": 0,
    }
    assert samples[("driftline_relay_events_emitted_total", ())] == len(relay.emitted) == 2
    by_code = {
        dict(labels)["code"]: v
        for (n, labels), v in samples.items()
        if n == "driftline_relay_requests_total" and dict(labels)["path"] == "/v1/drift"
    }
    assert by_code == {"202": 2, "401": 4, "413": 1, "404": 1, "415": 1, "422": 1, "429": 1}
    assert samples[("driftline_relay_request_seconds_count", ())] == 11
    assert samples[("driftline_relay_outbox_pending", ())] == 2
    # The two earlier scrapes are counted; the one being answered is not yet.
    assert samples[("driftline_relay_requests_total", (("code", "200"), ("path", "/metrics")))] == 2


def test_metrics_registries_are_per_app():
    first, second = make_relay(), make_relay()
    assert first.post(body_of()).status_code == 202
    assert scrape(first.client)[("driftline_relay_events_emitted_total", ())] == 1
    assert scrape(second.client)[("driftline_relay_events_emitted_total", ())] == 0


def test_unknown_paths_share_one_label():
    relay = make_relay()
    for path in ("/admin", "/.env", "/wp-login.php"):
        assert relay.client.get(path).status_code == 404
    samples = scrape(relay.client)
    assert samples[("driftline_relay_requests_total", (("code", "404"), ("path", "other")))] == 3
    assert not any("/admin" in str(labels) for _, labels in samples)


def test_metrics_bearer_token_when_configured():
    relay = make_relay(metrics_token="scrape-token")
    assert relay.client.get("/metrics").status_code == 401
    assert relay.client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert relay.client.get("/metrics", headers={"Authorization": "scrape-token"}).status_code == 401
    samples = scrape(relay.client, Authorization="Bearer scrape-token")
    assert samples[("driftline_relay_requests_total", (("code", "401"), ("path", "/metrics")))] == 3
    assert make_relay().client.get("/metrics").status_code == 200  # no token configured: open


# --- rate limit -----------------------------------------------------------------------------------------------------


def test_rate_limit_is_per_source_with_retry_after_and_refills():
    relay = make_relay(rate_limit=RateLimit(burst=2, per_seconds=60))  # one token every 30 s
    assert [relay.post(body_of(reason=str(i))).status_code for i in range(3)] == [202, 202, 429]
    refused = relay.post(body_of(reason="again"))
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    other = json.dumps({"model": "fx.daily"}).encode()
    assert relay.post(other).status_code == 202  # another source has its own bucket
    relay.clock.now += 15
    assert relay.post(body_of(reason="half")).headers["retry-after"] == "15"
    relay.clock.now += 15
    assert relay.post(body_of(reason="refilled")).status_code == 202
    assert [m for m, _ in relay.emitted] == ["demo", "demo", "fx.daily", "demo"]


def test_rate_limited_call_can_be_retried_with_the_same_signature():
    """A 429 emitted nothing, so the sender's retry of the very same signed call is not a replay."""
    relay = make_relay(rate_limit=RateLimit(burst=1, per_seconds=10))
    assert relay.post(body_of(reason="first")).status_code == 202
    body, timestamp = body_of(reason="retried"), str(NOW)
    assert relay.post(body, timestamp=timestamp).status_code == 429
    relay.clock.now += 10
    assert relay.post(body, timestamp=timestamp).status_code == 202
    assert relay.post(body, timestamp=timestamp).status_code == 401  # once accepted, a replay again
    assert [p["reason"] for _, p in relay.emitted] == ["first", "retried"]


def test_unsigned_or_forged_floods_do_not_spend_a_sources_budget():
    relay = make_relay(rate_limit=RateLimit(burst=1, per_seconds=3600))
    for i in range(50):
        assert relay.post(body_of(reason=str(i)), secret="forged").status_code == 401
        assert relay.client.post("/v1/drift", content=body_of(), headers=JSON).status_code == 401
    assert relay.post(body_of(reason="genuine")).status_code == 202
    assert rejections(scrape(relay.client))["rate_limited"] == 0


def test_no_rate_limit_by_default():
    relay = make_relay()
    assert all(relay.post(body_of(reason=str(i))).status_code == 202 for i in range(100))


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, None),
        ("", None),
        ("off", None),
        ("0", None),
        ("60/60", RateLimit(60, 60.0)),
        ("5", RateLimit(5, 1.0)),
        (" 10/0.5 ", RateLimit(10, 0.5)),
    ],
)
def test_parse_rate_limit(raw, expected):
    assert parse_rate_limit(raw) == expected


@pytest.mark.parametrize("raw", ["lots", "10/", "-1/60", "10/0", "10/-5", "1.5/60", "10/inf", "10/nan"])
def test_parse_rate_limit_refuses_nonsense(raw):
    with pytest.raises(ValueError, match=webhook.RATE_LIMIT_ENV):
        parse_rate_limit(raw)


def test_token_bucket_never_exceeds_its_burst():
    buckets = TokenBuckets(RateLimit(burst=3, per_seconds=3))
    assert [buckets.take("a", 0.0) for _ in range(4)] == [0, 0, 0, 1.0]
    assert [buckets.take("a", 1000.0) == 0 for _ in range(4)] == [True, True, True, False]  # long idle: still 3


# --- the event could not be sent ------------------------------------------------------------------------------------


def test_events_api_down_is_503_fast_and_the_same_call_is_accepted_once_it_is_back(caplog):
    relay = make_relay()
    relay.events_up["up"] = False
    body, timestamp = body_of(), str(NOW)
    started = time.perf_counter()
    response = relay.post(body, timestamp=timestamp)
    assert response.status_code == 503 and 1 <= int(response.headers["retry-after"]) <= 5
    assert time.perf_counter() - started < 1.0
    assert relay.emitted == [] and relay.looked_up == []  # nothing stored, the registry not even asked
    relay.events_up["up"] = True
    assert relay.post(body, timestamp=timestamp).status_code == 202  # the signature was not burned
    assert relay.post(body, timestamp=timestamp).status_code == 401  # now it is
    samples = scrape(relay.client)
    assert samples[("driftline_relay_failures_total", (("stage", "events"),))] == 1
    assert samples[("driftline_relay_events_emitted_total", ())] == 1 and len(relay.emitted) == 1


def test_registry_down_is_503_without_burning_the_signature(caplog):
    down = {"on": True}

    def model_exists(name: str) -> bool:
        if down["on"]:
            raise ConnectionError(f"cannot reach http://user:{SECRET}@mlflow:5000")
        return name == "demo"

    relay = make_relay(model_exists=model_exists)
    body, timestamp = body_of(), str(NOW)
    response = relay.post(body, timestamp=timestamp)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert SECRET not in response.text and SECRET not in caplog.text
    down["on"] = False
    assert relay.post(body, timestamp=timestamp).status_code == 202
    assert scrape(relay.client)[("driftline_relay_failures_total", (("stage", "lookup"),))] == 1


def test_a_stalled_registry_is_503_within_the_lookup_timeout_and_holds_few_threads():
    release = threading.Event()
    started: list[str] = []

    def model_exists(name: str) -> bool:
        started.append(name)
        release.wait(30)
        return True

    relay = make_relay(model_exists=model_exists, lookup_timeout=0.2)
    with relay.client:  # one event loop for every request, as under uvicorn
        try:
            began = time.perf_counter()
            codes = [relay.post(body_of(reason="same model")).status_code for _ in range(3)]
            assert codes == [503] * 3 and started == ["demo"]  # the calls for one model share one lookup
            names = [f"m{i}" for i in range(webhook.MAX_LOOKUPS_IN_FLIGHT + 3)]
            codes = [relay.post(json.dumps({"model": name}).encode()).status_code for name in names]
            assert codes == [503] * len(codes)
            # Only MAX_LOOKUPS_IN_FLIGHT lookups were started (demo's included); the calls after them were
            # refused at once.
            assert started == ["demo", *names[: webhook.MAX_LOOKUPS_IN_FLIGHT - 1]]
            assert time.perf_counter() - began < (webhook.MAX_LOOKUPS_IN_FLIGHT + 3) * 0.2 + 2.0
            release.set()
            deadline = time.monotonic() + 10
            while relay.post(body_of(reason="after")).status_code != 202:  # the stalled lookups end, the slots free
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert relay.emitted[-1][1]["reason"] == "after"
        finally:
            release.set()


def test_a_failed_outbox_write_is_503_and_gives_its_rate_limit_token_back(monkeypatch):
    import sqlite3

    relay = make_relay(rate_limit=RateLimit(burst=1, per_seconds=3600))
    real = relay.outbox.accept

    def disk_full(*args: Any) -> str:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(relay.outbox, "accept", disk_full)
    body, timestamp = body_of(), str(NOW)
    assert relay.post(body, timestamp=timestamp).status_code == 503
    monkeypatch.setattr(relay.outbox, "accept", real)
    assert relay.post(body, timestamp=timestamp).status_code == 202  # not a replay, not charged twice
    assert relay.post(body_of(reason="next")).status_code == 429
    assert scrape(relay.client)[("driftline_relay_failures_total", (("stage", "store"),))] == 1


def test_replay_is_refused_after_a_restart():
    """The replay guard is the outbox's table: a new app on the same file still knows the signature."""
    first = make_relay()
    body = body_of(reason="once")
    assert first.post(body).status_code == 202
    first.outbox.close()
    second = make_relay(outbox=Outbox(first.outbox.path, max_age=MAX_AGE_SECONDS))
    second.clock.now += 30
    assert second.post(body, timestamp=str(NOW)).status_code == 401
    assert [p["reason"] for _, p in second.emitted] == ["once"]


# --- media type, read deadline --------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_non_json_content_type_is_415(relay, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    if content_type is None:
        relay.client.headers.pop("content-type", None)
    response = (
        relay.post(body_of(), headers=headers)
        if content_type
        else relay.client.post(
            "/v1/drift",
            content=body_of(),
            headers={
                "X-Driftline-Timestamp": str(NOW),
                "X-Driftline-Signature": sign(SECRET.encode(), str(NOW), body_of()),
            },
        )
    )
    assert response.status_code == 415, response.text
    assert relay.emitted == []


def test_json_content_type_with_charset_is_accepted(relay):
    assert relay.post(body_of(), headers={"Content-Type": "Application/JSON; charset=utf-8"}).status_code == 202


def _asgi_post(app: Any, headers: list[tuple[bytes, bytes]], receive: Any) -> int:
    """Call the ASGI app as uvicorn would; the status it answers."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/drift",
        "raw_path": b"/v1/drift",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_a_body_trickling_in_past_the_read_timeout_is_408():
    outbox = new_outbox()
    app = create_app([SECRET.encode()], outbox, model_exists=lambda n: True, clock=FakeClock(), read_timeout=0.3)
    body = body_of()
    chunks = [body[:5]]

    async def receive() -> dict:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(), "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes (1 byte a minute, say)

    started = time.perf_counter()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    assert _asgi_post(app, headers, receive) == 408
    assert time.perf_counter() - started < 2.0
    assert outbox.pending() == []


def test_the_server_closes_a_connection_whose_headers_trickle_in():
    """The uvicorn protocol wrapper: a client that sends half a request line and stops is cut off after the
    deadline; a normal request on the same server is answered."""
    import socket

    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    relay = make_relay()
    port_socket = socket.socket()
    port_socket.bind(("127.0.0.1", 0))
    port = port_socket.getsockname()[1]
    port_socket.close()
    config = uvicorn.Config(
        relay.client.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=webhook.read_timeout_protocol(AutoHTTPProtocol, 0.5),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        import httpx

        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"POST /v1/drift HTTP/1.1\r\nHost: x\r\n")
            began = time.perf_counter()
            assert slow.recv(1024) == b""  # closed by the server, no answer
            assert 0.3 < time.perf_counter() - began < 3.0
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- the closed schema ----------------------------------------------------------------------------------------------


def _nested(depth: int) -> dict:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "fields",
    [
        {"vendor_run": "r-17"},  # any unknown field
        {"details": _nested(3)},  # details is flat
        {"details": {"x": [1, 2]}},
        {"details": {f"k{i}": i for i in range(21)}},
        {"details": {"k": "v" * 201}},
        {"details": {"bad key!": 1}},
        {"features": [""]},
        {"features": ["f" * 201]},
        {"payload": _nested(250)},  # the nesting that jammed Prefect's event stream (issue 17)
    ],
)
def test_the_schema_is_closed_and_bounded(relay, fields):
    response = relay.post(body_of(**fields))
    assert response.status_code == 422, response.text
    assert relay.emitted == [] and not relay.outbox.seen(sign(SECRET.encode(), str(NOW), body_of(**fields)))


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_422_anywhere(relay, text):
    for body in (f'{{"model": "demo", "drift_share": {text}}}', f'{{"model": "demo", "details": {{"psi": {text}}}}}'):
        assert relay.post(body.encode()).status_code == 422
    assert relay.emitted == []


def test_huge_finite_numbers_are_refused_or_kept_finite(relay):
    assert relay.post(b'{"model": "demo", "details": {"psi": 1e999}}').status_code == 422  # parses as inf
    assert relay.post(b'{"model": "demo", "details": {"psi": 1e300}}').status_code == 202
    assert relay.emitted[0][1]["details"] == {"psi": 1e300}


# --- constant-time comparison -----------------------------------------------------------------------------------------


def test_signatures_are_decided_by_hmac_compare_digest_alone(monkeypatch):
    """Behaviour, not source text: the verdict follows ``hmac.compare_digest`` whatever it says, so no other
    (early-exit) comparison takes part; and it is handed the presented signature for every secret."""
    import hmac as hmac_module

    real = hmac_module.compare_digest
    seen: list[tuple[str, str]] = []

    def always(result: bool):
        def compare(a, b):
            seen.append((a, b))
            return result

        return compare

    relay = make_relay(parse_secrets(f"{SECRET},{OLD_SECRET}"))
    monkeypatch.setattr(hmac_module, "compare_digest", always(True))
    forged = "sha256=" + "0" * 64
    response = relay.client.post(
        "/v1/drift",
        content=body_of(),
        headers={**JSON, "X-Driftline-Timestamp": str(NOW), "X-Driftline-Signature": forged},
    )
    assert response.status_code == 202  # compare_digest said equal: accepted, though forged
    assert (sign(SECRET.encode(), str(NOW), body_of()), forged) in seen

    seen.clear()
    monkeypatch.setattr(hmac_module, "compare_digest", always(False))
    assert relay.post(body_of(reason="genuine")).status_code == 401  # genuine, but compare_digest said no
    assert len(seen) == 2  # one comparison per secret
    assert {b for _, b in seen} == {sign(SECRET.encode(), str(NOW), body_of(reason="genuine"))}
    monkeypatch.setattr(hmac_module, "compare_digest", real)
    assert relay.post(body_of(reason="genuine")).status_code == 202


def test_remember_found_keeps_positive_lookups_for_the_ttl_only():
    asked: list[str] = []
    registered = {"demo"}
    clock = FakeClock(0.0)

    def lookup(name: str) -> bool:
        asked.append(name)
        return name in registered

    cached = webhook.remember_found(lookup, ttl=60, clock=clock)
    assert cached("demo") and cached("demo") and asked == ["demo"]
    assert not cached("new") and not cached("new") and asked == ["demo", "new", "new"]  # misses are not kept
    registered.add("new")
    assert cached("new")  # registered since: found at once
    registered.discard("demo")
    clock.now = 59.9
    assert cached("demo")  # deleted, still remembered within the ttl
    clock.now = 60.0
    assert not cached("demo")
