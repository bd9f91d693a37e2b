"""One data timeline: the pipeline's name from its data, the window a monitor judges, and the source a
retrain trains on (the champion's source plus the monitored rows).

A pipeline has one source that grows. Each registered version records its training cutoff (the last
timestamp it trained on); monitoring judges the rows after it, or an explicit ``[since, until]`` window,
and a retrain trains on the source including those rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftline.config import pipeline_name_from_data
from driftline.errors import ConfigError, DriftlineError

if TYPE_CHECKING:
    from driftline.ingest import ColumnMap

KEY = ["symbol", "timestamp"]
__all__ = [
    "CombinedSource",
    "JudgedWindow",
    "combine_frames",
    "monitored_version",
    "parse_time_bound",
    "pipeline_name_from_data",
    "same_source",
    "select_window",
]


def parse_time_bound(value: str | None, option: str = "--since", zone: str | None = None) -> pd.Timestamp | None:
    """A user's time bound as a naive UTC timestamp (the pipeline's time axis); None stays None. Without an
    offset it is UTC, or a clock time of ``zone`` (``data.timezone``: the rows' own clock) when given.

    Raises:
        ConfigError: naming the option and the value when it is not a date or time.
    """
    if value is None or str(value).strip() == "":
        return None
    try:
        stamp: pd.Timestamp | None = pd.Timestamp(str(value).strip())
    except (ValueError, TypeError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise ConfigError(
            f"{option} {value!r} is not a date or time (use ISO 8601, e.g. 2024-03-01 or 2024-03-01T16:00Z)"
        )
    if stamp.tzinfo is None and zone is not None:
        stamp = stamp.tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _timestamp(value: Any, what: str, zone: str | None = None) -> pd.Timestamp | None:
    return parse_time_bound(None if value is None else str(value), what, zone)


def _iso(value: pd.Timestamp | None) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


@dataclass(frozen=True)
class JudgedWindow:
    """Which rows a monitor judges: the rule, the bounds asked for and the rows' own first and last time.

    ``mask`` selects the judged rows; every row (also the earlier ones) has served as feature history.
    """

    mask: np.ndarray
    rule: str
    since: pd.Timestamp | None
    until: pd.Timestamp | None
    after_cutoff: pd.Timestamp | None

    @property
    def rows(self) -> int:
        return int(self.mask.sum())

    @property
    def empty(self) -> bool:
        return not self.mask.any()

    def bounds(self, times: pd.Series | np.ndarray) -> tuple[str | None, str | None]:
        """ISO first and last timestamp of the judged rows (None, None when there are none)."""
        chosen = pd.to_datetime(np.asarray(times)[self.mask])
        if len(chosen) == 0:
            return None, None
        return _iso(chosen.min()), _iso(chosen.max())

    def empty_reason(self, times: pd.Series | np.ndarray, source: str) -> str:
        """Why nothing was judged, and what to do about it."""
        all_times = pd.to_datetime(np.asarray(times))
        span = (
            f"its rows with features run {_iso(all_times.min())} .. {_iso(all_times.max())}"
            if len(all_times)
            else "it has no row with complete features"
        )
        return (
            f"no rows to judge: {source} has no rows {self.rule} ({span}); pass --since/--until to judge another window"
        )

    def to_dict(self, times: pd.Series | np.ndarray) -> dict[str, Any]:
        start, end = self.bounds(times)
        return {
            "window_start": start,
            "window_end": end,
            "window_rule": self.rule,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "training_cutoff": _iso(self.after_cutoff),
        }


def select_window(
    times: pd.Series | np.ndarray,
    since: Any = None,
    until: Any = None,
    cutoff: Any = None,
    cutoff_of: str = "the model",
    zone: str | None = None,
) -> JudgedWindow:
    """The rows to judge: timestamps in ``[since, until]`` (inclusive; without an offset, clock times of
    ``zone`` when given) when either is given, else those strictly after ``cutoff`` (UTC; all rows when there
    is no cutoff).

    Raises:
        DriftlineError: a bound is not a timestamp, or ``since`` is after ``until``.
    """
    values = pd.to_datetime(np.asarray(times)).to_numpy()
    start, end = _timestamp(since, "--since", zone), _timestamp(until, "--until", zone)
    if start is not None and end is not None and start > end:
        raise DriftlineError(f"--since {_iso(start)} is after --until {_iso(end)}")
    after = _timestamp(cutoff, "training cutoff")
    mask = np.ones(len(values), dtype=bool)
    if start is None and end is None:
        if after is None:
            return JudgedWindow(mask, f"of any time ({cutoff_of} records no training cutoff)", None, None, None)
        mask &= values > np.datetime64(after)
        return JudgedWindow(mask, f"after {cutoff_of}'s training cutoff {_iso(after)}", None, None, after)
    if start is not None:
        mask &= values >= np.datetime64(start)
    if end is not None:
        mask &= values <= np.datetime64(end)
    rule = f"in [{_iso(start) or 'the start'}, {_iso(end) or 'the end'}]"
    return JudgedWindow(mask, rule, start, end, after)


@dataclass(frozen=True)
class CombinedSource:
    """The rows a retrain trains on when the monitored data is not the champion's own source."""

    frame: pd.DataFrame
    sources: list[str]
    rows: dict[str, int]

    def describe(self, path: str) -> dict[str, Any]:
        start, end = self.frame["timestamp"].min(), self.frame["timestamp"].max()
        return {
            "path": path,
            "sources": self.sources,
            "rows": self.rows,
            "data_start": _iso(start),
            "data_end": _iso(end),
        }


def combine_frames(
    existing: pd.DataFrame, new: pd.DataFrame, existing_source: str, new_source: str, until: Any = None
) -> CombinedSource:
    """The champion's source plus the monitored rows (those up to ``until``), one row per (symbol,
    timestamp): where both have a row, the monitored one (the newest) wins. Sorted by symbol and time.

    Both frames are canonical (``symbol``, ``timestamp``, ...); columns only one side has are kept (missing
    on the other side's rows).
    """
    end = _timestamp(until, "--until")  # UTC (parse_time_bound reads a bound in the rows' own zone)
    if end is not None:
        new = new[new["timestamp"] <= np.datetime64(end)]
    stacked = pd.concat([existing.assign(_new=False), new.assign(_new=True)], ignore_index=True)
    combined = stacked.drop_duplicates(KEY, keep="last")
    replaced = int(len(stacked) - len(combined))
    added = int(combined["_new"].sum())
    combined = combined.drop(columns="_new").sort_values(KEY, kind="stable").reset_index(drop=True)
    rows = {
        "champion_source": len(existing),
        "monitored": len(new),
        "replaced_by_monitored": replaced,
        "new": int(added - replaced),
        "total": len(combined),
    }
    return CombinedSource(combined, [existing_source, new_source], rows)


def as_source_columns(frame: pd.DataFrame, columns: ColumnMap) -> pd.DataFrame:
    """A canonical frame under the column names of the source it came from (``columns``, so the pipeline's own
    config, with its ``time_col``/``target_col``..., reads it back the same way): a categorical column's 0/1
    features (``weekday=monday``) become its column again, of the values they name, and a label that named its
    classes holds their names again (``ColumnMap.classes``; with ``data.positive_label`` 0 and 1 would read
    as classes of their own: 0 as 1 where the positive class is ``0``)."""
    from driftline.features import CATEGORY_MARK
    from driftline.ingest import feature_column

    names = {"timestamp": columns.time, "symbol": columns.symbol or "symbol", **columns.prices}
    if columns.target is not None:
        names["target"] = columns.target
    names.update({feature_column(e): e for e in columns.extra})
    out = frame.rename(columns={k: v for k, v in names.items() if k in frame.columns})
    if columns.time in out.columns and pd.api.types.is_datetime64_any_dtype(out[columns.time]):
        # UTC said in the value, so a source read with data.timezone (local clock times) is not moved again.
        out[columns.time] = pd.to_datetime(out[columns.time], utc=True)
    for column in columns.categories:
        prefix = f"{feature_column(column)}{CATEGORY_MARK}"
        ones = [c for c in out.columns if str(c).startswith(prefix)]
        values = pd.Series(pd.NA, index=out.index, dtype="string")
        for one in ones:
            values = values.mask(out[one].eq(1), one[len(prefix) :])
        out = out.drop(columns=ones).assign(**{column: values})
    if columns.classes and columns.target in out.columns:
        labels = out[columns.target]
        named = pd.Series(pd.NA, index=out.index, dtype="string")
        out[columns.target] = named.mask(labels.eq(0), columns.classes[0]).mask(labels.eq(1), columns.classes[1])
    return out


def same_source(recorded: str | None, monitored: str | None) -> bool:
    """Whether the monitored data is the pipeline's recorded source (None is the bundled demo panel)."""
    from driftline.ingest import demo_data_path

    def where(location: str | None) -> str:
        location = location or str(demo_data_path())
        if location.startswith("s3://"):
            return location.rstrip("/")
        return str(Path(location).expanduser().resolve())

    return where(recorded) == where(monitored)


def monitored_version(champion: str | None, versions: list[str], model_name: str) -> tuple[str, str | None]:
    """The version a monitor watches: the champion, else the newest registered version (with a note
    saying so).

    Raises:
        DriftlineError: nothing is registered under ``model_name``.
    """
    if champion is not None:
        return champion, None
    if not versions:
        raise DriftlineError(f"{model_name} has no registered version to monitor; train one first (driftline train)")
    newest = max(versions, key=int)
    return newest, f"{model_name} has no champion: monitoring its newest version v{newest}"


# What a monitor's ``retrain`` object always holds (None when the retrain was skipped).
RETRAIN_KEYS = ("model_version", "decision", "training_cutoff", "data_start", "data_end")


def nothing_to_judge(reason: str) -> dict[str, Any]:
    """A monitor's summary when its window holds no rows: no verdict, no event, said plainly."""
    return {
        "verdict": "no rows to judge",
        "drift_detected": False,
        "drift_share": 0.0,
        "drifted_features": [],
        "prediction_drift": {"available": False},
        "performance_drift": {"available": False},
        "rows": 0,
        "reasons": [reason],
        "report_html": None,
        "report_uri": None,
        "event_id": None,
        "retrain_data": None,
    }
