"""Signed-webhook relay: outside monitors POST drift here; valid calls become Prefect events.

Prefect's own webhooks are a Cloud feature. This small FastAPI app checks an HMAC-SHA256 signature over
``"<timestamp>.<raw body>"`` (``X-Driftline-Timestamp`` / ``X-Driftline-Signature: sha256=<hex>``) with
one of the configured secrets (two during a rotation), refuses stale or replayed calls, validates the body
against a closed schema, and only then writes the call to the durable outbox (``driftline.app.outbox``) and
answers 202. A delivery loop sends the outbox to Prefect. The app imports neither Prefect nor MLflow: the
CLI injects the model lookup and the events API's state.

Checks run cheapest-first and authentication comes before anything that spends a budget: size, media
type, the body (read within a deadline), headers, age, signature, replay, body schema, the events API's
state, model lookup, the per-source rate limit, then the outbox. A source is the pipeline (model) a call
names; only a correctly signed call for a registered model reaches its bucket, so an unsigned flood cannot
exhaust a source's budget and the buckets are bounded by the registry. A call refused for any reason
leaves no trace in the replay guard: the sender may retry the very same signed call.
``GET /metrics`` serves Prometheus counters from a registry of the app's own.
"""

import functools
import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

# No ``from __future__ import annotations`` here: FastAPI must resolve the handler's ``Request``
# annotation, which is imported inside ``create_app`` to keep this module's import light.
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from driftline.app.outbox import Outbox

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_AGE_SECONDS = 300
MIN_SECRET_BYTES = 32  # HMAC-SHA256 keys shorter than its output are guessable offline from one signed call
MAX_TIMESTAMP_DIGITS = 12  # unix seconds until the year 33658; longer is malformed, not a number to compare
READ_TIMEOUT_SECONDS = 10.0  # request line + headers, and separately the body: a slow sender is cut off
LOOKUP_TIMEOUT_SECONDS = 4.0  # the registry lookup; past it the call is 503, well inside a sender's 5 s
MAX_LOOKUPS_IN_FLIGHT = 8  # stalled lookups never hold more threads than this
RETRY_AFTER_SECONDS = 5
SECRET_ENV = "DRIFTLINE_WEBHOOK_SECRET"
RATE_LIMIT_ENV = "DRIFTLINE_WEBHOOK_RATE_LIMIT"
METRICS_TOKEN_ENV = "DRIFTLINE_METRICS_TOKEN"

# Every reason a call is refused; the rejection counter carries exactly these labels (all start at 0).
REJECTION_REASONS = (
    "bad_signature",
    "stale",
    "replay",
    "too_large",
    "unknown_source",
    "rate_limited",
    "bad_payload",
    "unsupported_media_type",
    "slow_body",
)
# Why a call could not be served (503): the registry lookup, the events API, or the outbox's disk.
FAILURE_STAGES = ("lookup", "events", "store")
# Paths the request counter names; anything else is counted as "other" (no label per scanned URL).
METRIC_PATHS = ("/v1/drift", "/healthz", "/metrics")


Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
DetailValue = (
    Annotated[str, StringConstraints(max_length=200)] | Annotated[float, Field(allow_inf_nan=False)] | bool | None
)


class DriftCall(BaseModel):
    """The body an outside monitor sends: a closed schema (unknown fields are refused), every string and list
    bounded, numbers finite, nesting at most two levels (``details`` is a flat map)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Name = Field(description="pipeline name")
    reason: str = Field(default="external monitor", max_length=2000)
    drift_share: float | None = Field(default=None, ge=0.0, le=1.0)
    features: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=200
    )
    details: dict[Name, DetailValue] = Field(
        default_factory=dict, max_length=20, description="the monitor's own scalars"
    )


def _no_constant(name: str) -> Any:
    """``json.loads`` takes NaN and Infinity by default; they are not JSON and not finite."""
    raise ValueError(f"{name} is not a JSON number")


def parse_call(body: bytes) -> DriftCall:
    """The validated call.

    Raises:
        ValueError: not JSON, not UTF-8, too deeply nested, or not the schema (pydantic's ValidationError).
    """
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return DriftCall.model_validate(data)


def parse_secrets(raw: str | None) -> list[bytes]:
    """``"new,old"`` -> both accepted (rotation). Empty entries are ignored.

    Raises:
        ValueError: no secret at all (a relay without one would accept anything), or a short one.
    """
    secrets = [s.strip().encode() for s in (raw or "").split(",") if s.strip()]
    if not secrets:
        raise ValueError(f"{SECRET_ENV} is empty: set one secret (or two, comma-separated, while rotating)")
    check_secrets(secrets)
    return secrets


def check_secrets(secrets: list[bytes]) -> None:
    """Raises ValueError for no secret, or one shorter than ``MIN_SECRET_BYTES`` (never showing it)."""
    if not secrets:
        raise ValueError(f"{SECRET_ENV} is empty: set one secret (or two, comma-separated, while rotating)")
    short = [i + 1 for i, secret in enumerate(secrets) if len(secret) < MIN_SECRET_BYTES]
    if short:
        which = "the secret" if len(secrets) == 1 else "secret " + " and ".join(map(str, short))
        raise ValueError(
            f"{SECRET_ENV}: {which} is shorter than {MIN_SECRET_BYTES} bytes; "
            "use a long random one (openssl rand -hex 32)"
        )


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


def remember_found(
    lookup: Callable[[str], bool], ttl: float, clock: Callable[[], float] = time.monotonic
) -> Callable[[str], bool]:
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


class RelayMetrics:
    """The relay's Prometheus metrics, in a registry of their own (one per app, so tests are independent)."""

    def __init__(self, outbox: Outbox | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "driftline_relay_requests",
            "HTTP requests answered, by path and status code",
            ["path", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "driftline_relay_request_seconds",
            "Time to answer POST /v1/drift",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.events = Counter(
            "driftline_relay_events_emitted",
            "Drift events accepted (on disk in the outbox, answered 202)",
            registry=self.registry,
        )
        self.rejections = Counter(
            "driftline_relay_rejections", "Calls refused, by reason", ["reason"], registry=self.registry
        )
        self.failures = Counter(
            "driftline_relay_failures",
            "Calls that could not be served (503: registry, events API or disk), by stage",
            ["stage"],
            registry=self.registry,
        )
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason=reason)
        for stage in FAILURE_STAGES:
            self.failures.labels(stage=stage)
        if outbox is not None:
            for state in ("pending", "delivered", "dead"):
                gauge = Gauge(
                    f"driftline_relay_outbox_{state}", f"Events in the outbox: {state}", registry=self.registry
                )
                gauge.set_function(functools.partial(_outbox_count, outbox, state))

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def create_app(
    secrets: list[bytes],
    outbox: Outbox,
    model_exists: Callable[[str], bool],
    clock: Callable[[], float] = time.time,
    max_age: float = MAX_AGE_SECONDS,
    rate_limit: RateLimit | None = None,
    metrics_token: str | None = None,
    events_reachable: Callable[[], bool] = lambda: True,
    on_accept: Callable[[], None] = lambda: None,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    lookup_timeout: float = LOOKUP_TIMEOUT_SECONDS,
) -> Any:
    """The relay. Accepted calls go to ``outbox`` (then ``on_accept()`` wakes its delivery loop).

    ``model_exists(pipeline_name) -> bool`` (raises when the registry cannot answer) runs in a thread, at
    most ``MAX_LOOKUPS_IN_FLIGHT`` at once, and is given up on after ``lookup_timeout`` s (503).
    ``events_reachable()``: whether the delivery loop last reached the events API; False -> 503, so a
    sender hears about an outage instead of filling the outbox blind. ``rate_limit``: per-source token
    bucket (None: no limit). ``metrics_token``: when given, ``GET /metrics`` needs
    ``Authorization: Bearer <token>``. ``read_timeout``: the body must arrive within it (408).
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response

    check_secrets(secrets)
    app = FastAPI(title="Driftline webhook relay", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    buckets = TokenBuckets(rate_limit) if rate_limit else None
    metrics = RelayMetrics(outbox)
    app.state.metrics = metrics
    token = metrics_token.encode() if metrics_token else None
    lookups = threading.BoundedSemaphore(MAX_LOOKUPS_IN_FLIGHT)
    # Threads of their own: a stalled registry never takes the threads the outbox writes run in.
    lookup_threads = ThreadPoolExecutor(MAX_LOOKUPS_IN_FLIGHT, thread_name_prefix="relay-lookup")
    in_flight: dict[str, asyncio.Future] = {}

    def bounded_lookup(name: str) -> bool:
        try:
            return model_exists(name)
        finally:
            lookups.release()  # when the lookup ends, even long after its callers gave up on it

    async def look_up(name: str) -> bool:
        """One lookup per name at a time, shared by every call waiting for it (a burst for one model costs
        one registry request); at most ``MAX_LOOKUPS_IN_FLIGHT`` names at once.

        Raises:
            LookupError: too many lookups waiting already. TimeoutError: no answer within ``lookup_timeout``.
        """
        future = in_flight.get(name)
        if future is None:
            if not lookups.acquire(blocking=False):
                raise LookupError(f"{MAX_LOOKUPS_IN_FLIGHT} lookups already waiting")
            future = asyncio.get_running_loop().run_in_executor(lookup_threads, bounded_lookup, name)
            in_flight[name] = future

            def done(finished: asyncio.Future) -> None:
                in_flight.pop(name, None)
                if not finished.cancelled():
                    finished.exception()  # retrieved, even when every caller gave up waiting

            future.add_done_callback(done)
        return await asyncio.wait_for(asyncio.shield(future), lookup_timeout)

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

    def unavailable(stage: str, why: str) -> JSONResponse:
        metrics.failures.labels(stage=stage).inc()
        # ``why`` is an exception's type or a fixed text, never its message: that may quote a URL with credentials.
        logger.error("webhook call not served: %s unavailable (%s)", stage, why)
        return JSONResponse(
            {"detail": f"{stage} unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    def prometheus(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, b"Bearer " + token):
                return JSONResponse(
                    {"detail": "metrics need a bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def read_body(request: Request) -> bytes | None:
        """The body, or None once it is over the limit."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return None
        return body

    @app.post("/v1/drift")
    async def drift(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return refuse(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return refuse(415, "unsupported_media_type", "Content-Type must be application/json")
        try:
            body = await asyncio.wait_for(read_body(request), read_timeout)
        except TimeoutError:
            return refuse(
                408, "slow_body", f"body not received within {read_timeout:g} s", headers={"Connection": "close"}
            )
        if body is None:
            return refuse(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        timestamp = request.headers.get("x-driftline-timestamp", "")
        signature = request.headers.get("x-driftline-signature", "")
        well_formed = timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS
        if not well_formed or not signature.startswith("sha256=") or not signature.isascii():
            return refuse(401, "bad_signature", "missing or malformed signature headers")
        now = clock()
        if abs(now - int(timestamp)) > max_age:
            return refuse(401, "stale", "stale timestamp")
        if not any(hmac.compare_digest(sign(secret, timestamp, body), signature) for secret in secrets):
            return refuse(401, "bad_signature", "bad signature")
        if await run_in_threadpool(outbox.seen, signature):
            return refuse(401, "replay", "replayed signature")
        try:
            call = parse_call(body)
        except (ValueError, ValidationError) as exc:
            return refuse(422, "bad_payload", f"malformed body: {str(exc).splitlines()[0][:200]}")
        if not events_reachable():
            return unavailable("events", "the Prefect events API did not answer")
        try:
            known = await look_up(call.model)
        except LookupError as exc:
            return unavailable("lookup", str(exc))
        except TimeoutError:
            return unavailable("lookup", f"no answer within {lookup_timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - registry down: the sender should retry, not lose the call
            return unavailable("lookup", type(exc).__name__)
        if not known:
            return refuse(404, "unknown_source", f"unknown model {call.model!r}")
        wait = buckets.take(call.model, clock()) if buckets else 0.0
        if wait > 0:
            return refuse(
                429,
                "rate_limited",
                f"rate limit for {call.model!r}",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        payload = {**call.model_dump(), "source": "webhook", "received_at": now}
        try:
            event_id = await run_in_threadpool(outbox.accept, signature, call.model, payload, now)
        except Exception as exc:  # noqa: BLE001 - the disk refused the write: nothing was accepted, so 503
            if buckets:
                buckets.refund(call.model)
            return unavailable("store", type(exc).__name__)
        if event_id is None:  # the same call, accepted by a concurrent request since the replay check
            if buckets:
                buckets.refund(call.model)
            return refuse(401, "replay", "replayed signature")
        metrics.events.inc()
        on_accept()
        logger.info("webhook accepted for %s: event %s", call.model, event_id)
        return JSONResponse({"event_id": event_id, "model": call.model}, status_code=202)

    return app


def read_timeout_protocol(base: type, seconds: float) -> type:
    """``base`` (a uvicorn HTTP protocol class) that closes a connection whose request line and headers have
    not all arrived ``seconds`` after it opened or after its previous response (slowloris). The body has
    its own deadline in the app."""

    class ReadTimeoutProtocol(base):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            timer = getattr(self, "_header_deadline", None)
            if timer is not None:
                timer.cancel()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            timer = getattr(self, "_header_deadline", None)
            if timer is not None:
                timer.cancel()
            waiting_since = self.cycle  # a new request (headers complete) replaces the cycle
            self._header_deadline = self.loop.call_later(seconds, self._header_deadline_passed, waiting_since)

        def _header_deadline_passed(self, waiting_since: Any) -> None:
            if self.cycle is waiting_since and not self.transport.is_closing():
                logger.warning("webhook: closed a connection that sent no complete request within %g s", seconds)
                self.transport.close()

    return ReadTimeoutProtocol


def _outbox_count(outbox: Any, state: str) -> float:
    """One of the outbox's counts (``pending``, ``delivered``, ``dead``), for a Prometheus gauge."""
    return float(outbox.counts()[state])
