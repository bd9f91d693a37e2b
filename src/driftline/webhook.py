"""Signed-webhook relay: outside monitors POST drift here; valid calls become Prefect events.

Prefect's own webhooks are a Cloud feature. This small FastAPI app checks an HMAC-SHA256 signature over
``"<timestamp>.<raw body>"`` (``X-Driftline-Timestamp`` / ``X-Driftline-Signature: sha256=<hex>``) with
one of the configured secrets (two during a rotation), refuses stale or replayed calls, and only then
hands the call to an injected ``emit`` function. The app imports neither Prefect nor MLflow: the CLI
injects both the emitter and the model lookup.
"""


import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

# No ``from __future__ import annotations`` here: FastAPI must resolve the handler's ``Request``
# annotation, which is imported inside ``create_app`` to keep this module's import light.
from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_AGE_SECONDS = 300
SECRET_ENV = "DRIFTLINE_WEBHOOK_SECRET"


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


class ReplayGuard:
    """Remembers signatures seen within the allowed age; thread-safe."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: float) -> bool:
        with self._lock:
            for key in [k for k, t in self._seen.items() if now - t > 2 * self.max_age]:
                del self._seen[key]
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True


def create_app(
    secrets: list[bytes],
    emit: Callable[[str, dict[str, Any]], str],
    model_exists: Callable[[str], bool],
    clock: Callable[[], float] = time.time,
    max_age: float = MAX_AGE_SECONDS,
) -> Any:
    """The relay. ``emit(pipeline_name, payload) -> event id``; ``model_exists(pipeline_name) -> bool``."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="Driftline webhook relay", version="1", docs_url=None, redoc_url=None)
    replays = ReplayGuard(max_age)

    def refuse(status: int, detail: str) -> JSONResponse:
        logger.warning("webhook refused (%d): %s", status, detail)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/drift")
    async def drift(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return refuse(413, f"body over {MAX_BODY_BYTES} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return refuse(413, f"body over {MAX_BODY_BYTES} bytes")
        timestamp = request.headers.get("x-driftline-timestamp", "")
        signature = request.headers.get("x-driftline-signature", "")
        if not (timestamp.isascii() and timestamp.isdigit()) or not signature.startswith("sha256="):
            return refuse(401, "missing or malformed signature headers")
        now = clock()
        if abs(now - int(timestamp)) > max_age:
            return refuse(401, "stale timestamp")
        if not any(hmac.compare_digest(sign(secret, timestamp, body), signature) for secret in secrets):
            return refuse(401, "bad signature")
        if not replays.first_time(signature, now):
            return refuse(401, "replayed signature")
        try:
            call = DriftCall.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError) as exc:
            return refuse(422, f"malformed body: {str(exc).splitlines()[0][:200]}")
        if not model_exists(call.model):
            return refuse(404, f"unknown model {call.model!r}")
        payload = {**call.model_dump(), "source": "webhook", "received_at": now}
        event_id = emit(call.model, payload)
        logger.info("webhook accepted for %s: event %s", call.model, event_id)
        return JSONResponse({"event_id": event_id, "model": call.model}, status_code=202)

    return app
