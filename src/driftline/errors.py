"""Errors a user can act on. Each message names the file, column or key and the problem, and shows a
timestamp the way its user wrote it (``show_time``)."""

from __future__ import annotations

from typing import Any


class DriftlineError(Exception):
    """Base class: the CLI prints these as one paragraph, without a traceback."""


class ConfigError(DriftlineError, ValueError):
    """A config key or value is wrong."""


class DataError(DriftlineError, ValueError):
    """Input data cannot be read or does not have what the pipeline needs."""


class SourceUnavailable(DataError):
    """The source (e.g. an S3 endpoint) cannot be reached right now; retrying may help."""

    transient = True


class ValidationFailed(DataError):
    """The data contract failed; nothing was trained or registered."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class InsufficientDataError(DataError):
    """Too few rows, or a split or slice with a single class."""


class ArtifactStoreFull(DriftlineError):
    """The MLflow artifact store has no space left (or refuses a file that large)."""


def in_zone(value: Any, zone: str | None = None) -> Any:
    """``value`` as a ``pd.Timestamp``; with ``zone`` (``data.timezone``), a time kept as UTC without an offset
    (as rows are kept) is shown on that zone's clock, with its offset."""
    import pandas as pd

    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC").tz_convert(zone) if zone and stamp.tzinfo is None else stamp


def show_time(value: Any, zone: str | None = None) -> str:
    """A timestamp in a message as its user wrote it: the date alone at midnight (daily and coarser data); with
    ``zone``, on that zone's clock with its offset (``in_zone``)."""
    import pandas as pd  # here, not at the top: the CLI imports this module before any command runs

    if value is None or pd.isna(value):
        return "NaT"
    stamp = in_zone(value, zone)
    return stamp.date().isoformat() if stamp == stamp.normalize() else str(stamp)


def show_span(start: Any, end: Any, zone: str | None = None) -> str:
    """``start .. end`` in one style: dates when both fall at midnight, else both with their times (with
    ``zone``, on its clock: ``in_zone``)."""
    import pandas as pd

    stamps = [None if v is None or pd.isna(v) else in_zone(v, zone) for v in (start, end)]
    if all(s is None or s == s.normalize() for s in stamps):
        return " .. ".join("NaT" if s is None else s.date().isoformat() for s in stamps)
    return " .. ".join("NaT" if s is None else str(s) for s in stamps)
