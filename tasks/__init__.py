"""Thin Prefect tasks: one core call each, plus logging and persistence."""

from __future__ import annotations

from typing import Any

from driftline.errors import DriftlineError

# I/O tasks (sources, MLflow) retry with backoff: 2 + 5 + 10 s between four attempts bridges an endpoint
# that is away for 10-15 s (a restart), on top of the clients' own retries (botocore, MLflow's HTTP).
IO_RETRIES = 3
IO_BACKOFF = [2, 5, 10]


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O hiccups, never a problem with the input itself (a DriftlineError says what to fix),
    unless the error says it is transient (an unreachable endpoint)."""
    try:
        exception = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - unreadable result: be conservative and retry
        return True
    return not isinstance(exception, DriftlineError) or bool(getattr(exception, "transient", False))
