"""The training summary as a typed record: what a run reports, in one place, dumped as strict JSON.

Light on purpose (pydantic only): the CLI writes a failed run's summary without importing the pipeline.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


def json_safe(value: Any) -> Any:
    """``value`` with only JSON types: NaN and infinities -> None, numpy scalars -> Python, timestamps -> ISO,
    anything else -> its string."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, str | bool):
        return value
    if hasattr(value, "dtype") and hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "isoformat"):  # datetime, pandas Timestamp
        return value.isoformat()
    return str(value)


Metrics = dict[str, float | None]


class TrainingSummary(BaseModel):
    """Everything a caller needs to know about a training run (the CLI contract; JSON keys are its fields).

    A failed run has ``status: failed``, the ``error`` and whatever was known when it failed.
    """

    model_config = ConfigDict(extra="ignore")

    status: Literal["finished", "failed"] = "finished"
    error: str | None = None
    data_start: str | None = None
    data_end: str | None = None
    training_cutoff: str | None = None
    timezone: str | None = None  # the data's clock (LoadedData.shown_zone): the times above are UTC, printed on it
    run_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    aliases: list[str] = []
    decision: str | None = None
    reasons: list[str] = []
    champion_version_before: str | None = None
    champion_version_after: str | None = None
    links: dict[str, str] = {}
    comparison: dict[str, Any] = {}
    evaluation: dict[str, Any] = {}
    data_hash: str | None = None
    source: str | None = None
    columns: dict[str, Any] = {}  # which source columns were read as what (driftline.ingest.ColumnMap.describe)
    target: str | None = None
    rows_in: int | None = None
    rows_clean: int | None = None
    rows_quarantined: int | None = None
    quarantine_path: str | None = None
    contract_warnings: list[str] = []
    data_warnings: list[str] = []
    adjusted: dict[str, dict[str, Any]] = {}
    ingest: dict[str, Any] | None = None
    rerun_of: str | None = None
    timings: dict[str, float | None] = {}
    data_path: dict[str, Any] = {}  # in memory or streamed, and why (driftline.streaming.choose_data_path)
    selected_family: str | None = None
    selection: str | None = None
    metrics: Metrics = {}
    strategy: Metrics = {}
    families: dict[str, Metrics] = {}
    folds: list[dict[str, Any]] = []
    baselines: dict[str, Metrics] = {}
    best_baseline: str | None = None
    baseline_folds: list[dict[str, Any]] = []
    edge: dict[str, Any] | None = None  # the challenger family against the base rate (calibration.require_edge)

    @classmethod
    def failed(cls, error: str, **known: Any) -> TrainingSummary:
        """The summary of a run that failed with ``error`` (known: run id, model name, source...)."""
        return cls(status="failed", error=error, **known)

    def as_dict(self) -> dict[str, Any]:
        """JSON types only (NaN -> None): what the flow returns and MLflow stores."""
        return json_safe(self.model_dump())

    def to_json(self) -> str:
        """Strict JSON (no NaN, which is not JSON): the ``--summary-json`` file."""
        return json.dumps(self.as_dict(), indent=2, allow_nan=False)


def error_text(exc: BaseException) -> str:
    """An error as one line for a summary: a Driftline error's own message (it names the file, column or
    key), any other error with its type."""
    from driftline.errors import DriftlineError

    message = " ".join(str(exc).split())
    return message if isinstance(exc, DriftlineError) else f"{type(exc).__name__}: {message}"
