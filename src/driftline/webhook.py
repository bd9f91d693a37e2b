"""Signed-webhook relay: outside monitors POST drift here; valid calls become Prefect events.

Prefect's own webhooks are a Cloud feature. This small FastAPI app checks an HMAC-SHA256 signature over
``"<timestamp>.<raw body>"`` (``X-Driftline-Timestamp`` / ``X-Driftline-Signature: sha256=<hex>``) with
one of the configured secrets (two during a rotation), refuses stale or replayed calls, and only then
hands the call to an injected ``emit`` function. The app imports neither Prefect nor MLflow: the CLI
injects both the emitter and the model lookup.

Checks run cheapest-first and authentication comes before anything that spends a budget: size, headers,
age, signature, replay, body schema, model lookup, the per-source rate limit, then the event. A source is
the pipeline (model) a call names; only a correctly signed call for a registered model reaches its bucket,
so an unsigned flood cannot exhaust a source's budget and the buckets are bounded by the registry.
``GET /metrics`` serves Prometheus counters from a registry of the app's own.
"""


import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# No ``from __future__ import annotations`` here: FastAPI must resolve the handler's ``Request``
# annotation, which is imported inside ``create_app`` to keep this module's import light.
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_AGE_SECONDS = 300
SECRET_ENV = "DRIFTLINE_WEBHOOK_SECRET"
RATE_LIMIT_ENV = "DRIFTLINE_WEBHOOK_RATE_LIMIT"
METRICS_TOKEN_ENV = "DRIFTLINE_METRICS_TOKEN"

# Every reason a call is refused; the rejection counter carries exactly these labels (all start at 0).
REJECTION_REASONS = (
    "bad_signature", "stale", "replay", "too_large", "unknown_source", "rate_limited", "bad_payload",
)
# Paths the request counter names; anything else is counted as "other" (no label per scanned URL).
METRIC_PATHS = ("/v1/drift", "/healthz", "/metrics")


class DriftCall(BaseModel):
    """The body an outside monitor sends."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="pipeline name")
    reason: str = Field(default="external monitor", max_length=2000)
    drift_share: float | None = Field(default=None, ge=0.0, le=1.0)
    features: list[str] = Field(default_factory=list, max_length=200)


def parse_secrets(raw: str | None) -> list[bytes]:
    """``"new,old"`` -> both accepted (rotation). Empty entries are ignored.

    Raises:
        ValueError: no secret at all; a relay without one would accept anything.
    """
    secrets = [s.strip().encode() for s in (raw or "").split(",") if s.strip()]
    if not secrets:
        raise ValueError(f"{SECRET_ENV} is empty: set one secret (or two, comma-separated, while rotating)")
    return secrets


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The header value a sender computes."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per source: ``burst`` calls at once, refilled at ``burst / per_seconds`` a second."""

    burst: int
    per_seconds: float

    @property
    def refill_per_second(self) -> float:
        return self.burst / self.per_seconds


def parse_rate_limit(raw: str | None) -> RateLimit | None:
    """``"60/60"`` -> 60 calls per source per 60 s (bursts of up to 60); empty or ``"off"`` -> no limit.

    Raises:
        ValueError: anything else, naming the variable and the expected form.
    """
    text = (raw or "").strip().lower()
    if text in ("", "off", "none", "0"):
        return None
    calls, sep, seconds = text.partition("/")
    try:
        limit = RateLimit(burst=int(calls), per_seconds=float(seconds) if sep else 1.0)
    except ValueError:
        limit = None
    if limit is None or limit.burst < 1 or not (0 < limit.per_seconds < math.inf):
        raise ValueError(f"{RATE_LIMIT_ENV}={raw!r}: expected '<calls>/<seconds>' such as '60/60', or 'off'")
    return limit


class TokenBuckets:
    """One token bucket per source; thread-safe."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, source: str, now: float) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        with self._lock:
            tokens, at = self._buckets.get(source, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + max(0.0, now - at) * self.limit.refill_per_second)
            if tokens >= 1.0:
                self._buckets[source] = (tokens - 1.0, now)
                return 0.0
            self._buckets[source] = (tokens, now)
            return (1.0 - tokens) / self.limit.refill_per_second

    def refund(self, source: str) -> None:
        """Give back a token spent on a call that produced no event (the emitter failed)."""
        with self._lock:
            if source in self._buckets:
                tokens, at = self._buckets[source]
                self._buckets[source] = (min(float(self.limit.burst), tokens + 1.0), at)


def remember_found(lookup: Callable[[str], bool], ttl: float, clock: Callable[[], float] = time.monotonic) -> Callable[[str], bool]:
    """``lookup`` with its positive answers remembered for ``ttl`` seconds; negative answers are never kept.

    A registry lookup costs milliseconds of CPU on every call; models are registered far more often than
    deleted. So a new model is found at once, and a deleted one is still accepted for up to ``ttl``.
    """
    found: dict[str, float] = {}
    lock = threading.Lock()

    def cached(name: str) -> bool:
        now = clock()
        with lock:
            if now - found.get(name, -math.inf) < ttl:
                return True
        if not lookup(name):
            return False
        with lock:
            found[name] = now
        return True

    return cached


class ReplayGuard:
    """Remembers signatures seen within the allowed age; thread-safe."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: float) -> bool:
        with self._lock:
            # Insertion order is time order, so expired entries are at the front: pruning costs what it
            # removes, not the size of the window (a full scan per call is quadratic under sustained load).
            expired = []
            for key, seen_at in self._seen.items():
                if now - seen_at <= 2 * self.max_age:
                    break
                expired.append(key)
            for key in expired:
                del self._seen[key]
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True

    def forget(self, signature: str) -> None:
        """A claimed call that produced no event (rate-limited, emitter down): the sender may retry it."""
        with self._lock:
            self._seen.pop(signature, None)


class RelayMetrics:
    """The relay's Prometheus metrics, in a registry of their own (one per app, so tests are independent)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "driftline_relay_requests", "HTTP requests answered, by path and status code", ["path", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "driftline_relay_request_seconds", "Time to answer POST /v1/drift", registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.events = Counter("driftline_relay_events_emitted", "Drift events emitted", registry=self.registry)
        self.rejections = Counter(
            "driftline_relay_rejections", "Calls refused, by reason", ["reason"], registry=self.registry
        )
        self.failures = Counter(
            "driftline_relay_failures", "Calls that could not be served (registry or emitter down), by stage",
            ["stage"], registry=self.registry,
        )
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason=reason)
        for stage in ("lookup", "emit"):
            self.failures.labels(stage=stage)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def create_app(
    secrets: list[bytes],
    emit: Callable[[str, dict[str, Any]], str],
    model_exists: Callable[[str], bool],
    clock: Callable[[], float] = time.time,
    max_age: float = MAX_AGE_SECONDS,
    rate_limit: RateLimit | None = None,
    metrics_token: str | None = None,
) -> Any:
    """The relay. ``emit(pipeline_name, payload) -> event id``; ``model_exists(pipeline_name) -> bool``.

    ``rate_limit``: per-source token bucket (None: no limit). ``metrics_token``: when given, ``GET /metrics``
    needs ``Authorization: Bearer <token>``. ``emit`` and ``model_exists`` are blocking calls; they run in
    the thread pool so one slow lookup does not stall every other connection.
    """
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response

    app = FastAPI(title="Driftline webhook relay", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    replays = ReplayGuard(max_age)
    buckets = TokenBuckets(rate_limit) if rate_limit else None
    metrics = RelayMetrics()
    app.state.metrics = metrics
    token = metrics_token.encode() if metrics_token else None

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable) -> Any:
        started = time.perf_counter()
        path = request.url.path if request.url.path in METRIC_PATHS else "other"
        code = 500  # what the server answers when the handler raises
        try:
            response = await call_next(request)
            code = response.status_code
            return response
        finally:
            metrics.requests.labels(path=path, code=str(code)).inc()
            if path == "/v1/drift":
                metrics.latency.observe(time.perf_counter() - started)

    def refuse(status: int, reason: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
        metrics.rejections.labels(reason=reason).inc()
        logger.warning("webhook refused (%d, %s): %s", status, reason, detail)
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    def unavailable(stage: str, exc: Exception) -> JSONResponse:
        metrics.failures.labels(stage=stage).inc()
        # The exception's type only: its text may quote a URL with credentials in it.
        logger.error("webhook call not served: %s failed (%s)", stage, type(exc).__name__)
        return JSONResponse({"detail": f"{stage} unavailable, retry later"}, status_code=503, headers={"Retry-After": "5"})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    def prometheus(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, b"Bearer " + token):
                return JSONResponse({"detail": "metrics need a bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.post("/v1/drift")
    async def drift(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return refuse(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return refuse(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        timestamp = request.headers.get("x-driftline-timestamp", "")
        signature = request.headers.get("x-driftline-signature", "")
        if not (timestamp.isascii() and timestamp.isdigit()) or not signature.startswith("sha256="):
            return refuse(401, "bad_signature", "missing or malformed signature headers")
        now = clock()
        if abs(now - int(timestamp)) > max_age:
            return refuse(401, "stale", "stale timestamp")
        if not any(hmac.compare_digest(sign(secret, timestamp, body), signature) for secret in secrets):
            return refuse(401, "bad_signature", "bad signature")
        if not replays.first_time(signature, now):
            return refuse(401, "replay", "replayed signature")
        try:
            call = DriftCall.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError) as exc:
            return refuse(422, "bad_payload", f"malformed body: {str(exc).splitlines()[0][:200]}")
        try:
            known = await run_in_threadpool(model_exists, call.model)
        except Exception as exc:  # noqa: BLE001 - registry down: the sender should retry, not lose the call
            replays.forget(signature)
            return unavailable("lookup", exc)
        if not known:
            return refuse(404, "unknown_source", f"unknown model {call.model!r}")
        wait = buckets.take(call.model, clock()) if buckets else 0.0
        if wait > 0:
            replays.forget(signature)  # refused before any event: the same signed call may come back later
            return refuse(429, "rate_limited", f"rate limit for {call.model!r}",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})
        # An outside caller never chooses what the retrain reads: "data" (the training source) is dropped,
        # so a relayed drift retrains on the pipeline's recorded source.
        payload = {**call.model_dump(exclude={"data"}), "source": "webhook", "received_at": now}
        try:
            event_id = await run_in_threadpool(emit, call.model, payload)
        except Exception as exc:  # noqa: BLE001 - the event was not sent: answer 503 so the sender retries
            replays.forget(signature)
            if buckets:
                buckets.refund(call.model)
            return unavailable("emit", exc)
        metrics.events.inc()
        logger.info("webhook accepted for %s: event %s", call.model, event_id)
        return JSONResponse({"event_id": event_id, "model": call.model}, status_code=202)

    return app
