"""The data contract, rendered into one Great Expectations 1.x suite and checked on the canonical frame.

Every check carries a policy: ``fail`` stops the run (batch level), ``quarantine`` moves the offending
rows aside with a reason naming the column and the problem, ``warn`` keeps them and records a warning.
Checks GX cannot express per symbol (time order, gaps, weekdays, the future, parse failures) become GX
expectations on helper columns derived first (``_weekday``, ``_step_seconds``, ...), so the whole contract
is one suite and one GX result. Each expectation's ``meta`` names its check, column and policy; that is
how results map back to rows and reasons.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import pandas as pd
import yaml

from driftline.config import DEFAULT_COLUMN_RULES, ONE_SERIES, ColumnRule, ContractConfig
from driftline.errors import InsufficientDataError, ValidationFailed, show_time

logger = logging.getLogger(__name__)

SOURCE_ROW = "source_row"
PRICE_TOLERANCE = 1e-9
"""Relative slack of the price-consistency checks: float round-off in vendor data is not a violation."""
GX_LIST_LIMIT = 100
"""Entries kept per list in the stored GX result (the full lists of a 1M-row batch are tens of MB)."""
N_EXAMPLES = 5

# Helper columns derived before GX runs. Canonical names never start with "_" (ingest strips it).
PREV_MAX_TIME = "_prev_max_timestamp"  # latest timestamp of the symbol's earlier source rows
STEP_SECONDS = "_step_seconds"  # seconds since the symbol's previous timestamp, in time order
WEEKDAY = "_weekday"  # 0 = Monday
AHEAD_SECONDS = "_ahead_seconds"  # seconds after ``now``
HIGH_CEILING = "_high_ceiling"  # high plus the tolerance
LOW_FLOOR = "_low_floor"  # low minus the tolerance

_NUMERIC_TYPES = [
    "float64",
    "float32",
    "float16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint64",
    "uint32",
    "uint16",
    "uint8",
    "Float64Dtype",
    "Int64Dtype",
    "float",
    "int",
]
TYPE_LISTS: dict[str, list[str]] = {
    "number": _NUMERIC_TYPES,
    "integer": _NUMERIC_TYPES,  # canonical frames hold floats; whole values are checked row by row
    "string": ["str", "StringDtype"],
    "timestamp": ["datetime64", "datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]", "Timestamp"],
}
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def source_column(column: str) -> str:
    """Helper column: 1.0 where the raw source has a value, missing where it has none or a blank string.

    ``missing`` is checked on it when source values are given (the raw values of missing rows are
    missing anyway; a float column keeps GX's copies of a large frame cheap).
    """
    return f"_{column}__in_source"


def unparsed_column(column: str) -> str:
    """Helper column: the raw value where the source has one but it did not parse, else missing."""
    return f"_{column}__unparsed"


def remainder_column(column: str) -> str:
    """Helper column: distance of the value from the nearest whole number (``integer`` columns)."""
    return f"_{column}__remainder"


@dataclass(frozen=True)
class CheckResult:
    """One expectation's verdict, mapped back to the contract.

    ``action`` is what the contract does with it: ``none`` (passed), ``quarantine``, ``warn`` or
    ``fail``. A check on a whole column (existence, dtype) or one that could not run has no rows to move
    aside, so ``quarantine`` becomes ``fail`` there. ``rows_quarantined`` counts the rows it set aside:
    those of ``quarantine`` checks, and those of row-level ``fail`` checks (the batch stops, and the
    quarantine shows which rows stopped it).
    """

    expectation: str
    column: str
    success: bool
    unexpected_count: int
    examples: list[str]
    check: str = ""
    policy: str = "fail"
    description: str = ""
    action: str = "none"
    rows_quarantined: int = 0
    message: str = ""


@dataclass(frozen=True)
class ValidationReport:
    """What the contract found; ``clean`` and ``quarantined`` always add up to ``rows_in``.

    ``quarantined`` holds the rows of failed ``quarantine`` and row-level ``fail`` checks, with
    ``source_row`` and ``reason``; rows of ``warn`` checks stay in ``clean``.

    ``success`` means the batch may go on: no check failed the batch and no more than
    ``max_quarantine_fraction`` of the rows were quarantined (rows per symbol are ``enforce_contract``'s).
    """

    success: bool
    rows_in: int
    checks: list[CheckResult]
    clean: pd.DataFrame
    quarantined: pd.DataFrame = field(repr=False)
    gx_result: dict[str, Any] = field(repr=False, default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def rows_clean(self) -> int:
        return len(self.clean)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)

    @property
    def failures(self) -> list[CheckResult]:
        """Checks that fail the batch."""
        return [c for c in self.checks if c.action == "fail"]

    def summary(self) -> str:
        failed = [c for c in self.checks if not c.success]
        head = (
            f"{len(self.checks) - len(failed)}/{len(self.checks)} expectations passed; "
            f"rows in {self.rows_in}, clean {self.rows_clean}, quarantined {self.rows_quarantined}"
        )
        return "\n".join([head] + [f"- [{c.action}] {c.message}" for c in failed])

    def markdown(self) -> str:
        rows = "\n".join(
            f"| {'pass' if c.success else '**' + c.action.upper() + '**'} | {c.check} | `{c.expectation}` | "
            f"{c.column} | {c.policy} | {c.unexpected_count} | {c.rows_quarantined} |"
            for c in self.checks
        )
        warnings = "".join(f"- {w}\n" for w in self.warnings)
        return (
            f"### Data contract: {'passed' if self.success else 'FAILED'}\n\n"
            f"Rows in **{self.rows_in}**, clean **{self.rows_clean}**, quarantined **{self.rows_quarantined}**.\n\n"
            "| result | check | expectation | column | policy | rows | quarantined |\n"
            "|---|---|---|---|---|---|---|\n" + rows + "\n" + (f"\nWarnings:\n\n{warnings}" if warnings else "")
        )


# --- derived columns and the suite ---------------------------------------------------------------------------


def _seconds(duration: str) -> float:
    return pd.Timedelta(duration).total_seconds()


def _utc_naive(now: pd.Timestamp | None) -> pd.Timestamp:
    stamp = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _present(values: pd.Series) -> np.ndarray:
    """Has the source a value here? Missing and blank strings do not count."""
    present = values.notna().to_numpy()
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        text = values[present].astype(str).str.strip()
        present[np.flatnonzero(present)] = text.ne("").to_numpy()
    return present


def missing_marks(values: pd.Series) -> np.ndarray:
    """Where a column of numbers holds a text without a digit: a mark for a missing value as exports write it
    ("-", "n/a", "..", "?"), not a number that failed to parse (``12O``)."""
    if not (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
        return np.zeros(len(values), dtype=bool)
    text = values.astype("string").str.strip()
    marks: np.ndarray = (text.ne("") & ~text.str.contains(r"\d", regex=True)).fillna(False).to_numpy(dtype=bool)
    return marks


def not_labelled_yet(frame: pd.DataFrame, labelled: np.ndarray) -> np.ndarray:
    """Rows later than every labelled row of their series: the newest rows, whose outcome is not known yet
    (the rows a label series is scored on), not rows that lost their label. A label missing before a labelled
    row of its series is missing."""
    if "timestamp" not in frame.columns or not len(frame):
        return np.zeros(len(frame), dtype=bool)
    times = frame["timestamp"]
    symbols = frame["symbol"] if "symbol" in frame.columns else pd.Series("", index=frame.index)
    last = times.where(labelled).groupby(symbols.to_numpy()).transform("max")  # NaT: a series never labelled
    pending: np.ndarray = (times > last).to_numpy(dtype=bool) & ~labelled
    return pending


def derive_columns(
    frame: pd.DataFrame,
    contract: ContractConfig,
    source_values: Mapping[str, pd.Series] | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The frame GX checks: ``source_row`` (the index) first, the canonical columns, then helper columns.

    The checked frame has a RangeIndex, so GX's unexpected indices are row positions.
    """
    checked = frame.reset_index(names=SOURCE_ROW)
    derived: dict[str, Any] = {}
    for column, raw in (source_values or {}).items():
        rule = contract.columns.get(column)
        if column not in frame.columns or rule is None:
            continue
        values = raw.reindex(frame.index)
        present = _present(values)
        if rule.nullable and rule.type in ("number", "integer"):
            present &= ~missing_marks(values)  # a column that may miss values: "-" says one is missing
        if not rule.nullable:
            due = present | not_labelled_yet(frame, present) if column == "target" else present
            derived[source_column(column)] = np.where(due, 1.0, np.nan)
        if rule.type is not None or not rule.nullable:
            unparsed = present & frame[column].isna().to_numpy()
            derived[unparsed_column(column)] = values.where(unparsed).to_numpy()
    target_rule = contract.columns.get("target")
    if (
        "target" in frame.columns
        and source_column("target") not in derived
        and target_rule
        and not target_rule.nullable
    ):
        labelled = frame["target"].notna().to_numpy()
        derived[source_column("target")] = np.where(labelled | not_labelled_yet(frame, labelled), 1.0, np.nan)
    for column, rule in contract.columns.items():
        if rule.type == "integer" and column in frame.columns and pd.api.types.is_numeric_dtype(frame[column]):
            derived[remainder_column(column)] = (frame[column] - np.round(frame[column])).abs().to_numpy()

    if "timestamp" in frame.columns and pd.api.types.is_datetime64_any_dtype(frame["timestamp"]):
        derived.update(_time_columns(frame, contract, now))
    if "high" in frame.columns:
        derived[HIGH_CEILING] = (frame["high"] + frame["high"].abs() * PRICE_TOLERANCE).to_numpy()
    if "low" in frame.columns:
        derived[LOW_FLOOR] = (frame["low"] - frame["low"].abs() * PRICE_TOLERANCE).to_numpy()
    if derived:
        checked = pd.concat([checked, pd.DataFrame(derived, index=checked.index)], axis=1)
    # One block per dtype: GX's per-metric copies would otherwise re-consolidate the frame every time.
    return checked.copy()


def _time_columns(frame: pd.DataFrame, contract: ContractConfig, now: pd.Timestamp | None) -> dict[str, Any]:
    stamps = frame["timestamp"]
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    nanos = stamps.to_numpy(dtype="datetime64[ns]").view("i8")  # NaT is the smallest int64
    nat = np.iinfo(np.int64).min
    codes = pd.factorize(frame["symbol"])[0] if "symbol" in frame.columns else np.zeros(len(frame), dtype=int)
    derived: dict[str, Any] = {}

    # Time order in source order: a row is out of order when an earlier source row of its symbol is later.
    source_rank = np.empty(len(frame), dtype=np.int64)
    source_rank[frame.index.argsort(kind="stable")] = np.arange(len(frame))
    order = np.lexsort((source_rank, codes))
    group = codes[order]
    running = pd.Series(nanos[order]).groupby(group).cummax().to_numpy()
    previous = np.roll(running, 1)
    previous[_group_starts(group)] = nat
    prev_max = np.empty(len(frame), dtype=np.int64)
    prev_max[order] = previous
    derived[PREV_MAX_TIME] = prev_max.view("datetime64[ns]")

    if contract.max_gap is not None:
        order = np.lexsort((nanos, codes))
        group, sorted_nanos = codes[order], nanos[order]
        step = np.diff(sorted_nanos, prepend=nat).astype("float64") / 1e9
        step[_group_starts(group) | (sorted_nanos == nat) | (np.roll(sorted_nanos, 1) == nat)] = np.nan
        steps = np.empty(len(frame))
        steps[order] = step
        derived[STEP_SECONDS] = steps
    if contract.calendar == "weekdays":
        derived[WEEKDAY] = stamps.dt.dayofweek.to_numpy(dtype="float64", na_value=np.nan)
    if contract.max_future is not None:
        # In whole seconds: nanoseconds overflow int64 when the series starts ~292 years before now (yearly data).
        now_seconds = _utc_naive(now).value // 10**9
        ahead = (nanos // 10**9 - now_seconds).astype("float64")
        ahead[nanos == nat] = np.nan
        derived[AHEAD_SECONDS] = ahead
    return derived


def _group_starts(group: np.ndarray) -> np.ndarray:
    starts = np.ones(len(group), dtype=bool)
    starts[1:] = group[1:] != group[:-1]
    return starts


def _meta(check: str, policy: str, column: str, description: str) -> dict[str, str]:
    return {"check": check, "policy": policy, "column": column, "description": description}


def _bound(value: float) -> str:
    return f"{value:g}"


def _range_text(column: str, rule: ColumnRule) -> str:
    parts = []
    if rule.min is not None:
        parts.append(f"{'>' if rule.strict_min else '>='} {_bound(rule.min)}")
    if rule.max is not None:
        parts.append(f"{'<' if rule.strict_max else '<='} {_bound(rule.max)}")
    return f"{column}: must be {' and '.join(parts)}"


def build_suite(
    contract: ContractConfig, frame_columns: list[str], suite_name: str, labels: Mapping[str, str] | None = None
) -> Any:
    """Render the contract for the columns present into one GX suite.

    ``frame_columns`` are the checked frame's columns (``derive_columns``): a check on a helper column
    is rendered only when that column is there, a column rule only when its column is (existence of a
    required column is always checked). ``labels``: canonical column -> its name in the source, shown in the
    messages when it is another name (``'life_expectancy' (close): missing``).
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    present = set(frame_columns)
    expectations: list[Any] = []
    shown = dict(labels or {})
    for name, rule in contract.columns.items():
        policy = rule.policy or contract.on_violation
        label = f"{shown[name]!r} ({name})" if name in shown else name
        if rule.required:
            expectations.append(
                gxe.ExpectColumnToExist(
                    column=name, meta=_meta("required", "fail", name, f"{label}: required column is missing")
                )
            )
        if name not in present:
            continue
        if rule.type is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeInTypeList(
                    column=name,
                    type_list=TYPE_LISTS[rule.type],
                    meta=_meta("type", policy, name, f"{label}: not a {rule.type}"),
                )
            )
        if not rule.nullable:
            checked = source_column(name) if source_column(name) in present else name
            expectations.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=checked, meta=_meta("missing", policy, name, f"{label}: missing")
                )
            )
        if unparsed_column(name) in present:
            # A label is 0/1 or one of its named classes (ingest.read_label).
            noun = (
                "timestamp"
                if rule.type == "timestamp" or name == "timestamp"
                else "class"
                if name == "target"
                else "number"
            )
            expectations.append(
                gxe.ExpectColumnValuesToBeNull(
                    column=unparsed_column(name), meta=_meta("unparsed", policy, name, f"{label}: not a {noun}")
                )
            )
        if rule.type == "integer" and remainder_column(name) in present:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=remainder_column(name),
                    max_value=0,
                    meta=_meta("integer", policy, name, f"{label}: not a whole number"),
                )
            )
        if rule.min is not None or rule.max is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=name,
                    min_value=rule.min,
                    max_value=rule.max,
                    strict_min=rule.strict_min,
                    strict_max=rule.strict_max,
                    meta=_meta("range", policy, name, _range_text(label, rule)),
                )
            )
        if rule.allowed_values is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=name,
                    value_set=list(rule.allowed_values),
                    meta=_meta("allowed", policy, name, f"{label}: not an allowed value"),
                )
            )

    if {"symbol", "timestamp"} <= present:
        expectations.append(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["symbol", "timestamp"],
                ignore_row_if="any_value_is_missing",
                meta=_meta("unique", contract.unique, "symbol,timestamp", "(symbol, timestamp): duplicate"),
            )
        )
    if {"timestamp", PREV_MAX_TIME} <= present:
        expectations.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="timestamp",
                column_B=PREV_MAX_TIME,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=_meta(
                    "monotonic_time",
                    contract.monotonic_time,
                    "timestamp",
                    "timestamp: out of time order within its symbol",
                ),
            )
        )
    if contract.max_gap is not None and STEP_SECONDS in present:
        description = f"timestamp: gap longer than {contract.max_gap} within a symbol"
        expectations.append(
            _at_most(gxe, STEP_SECONDS, contract.max_gap, "max_gap", contract.max_gap_policy, description)
        )
    if contract.calendar == "weekdays" and WEEKDAY in present:
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=WEEKDAY,
                value_set=[0, 1, 2, 3, 4],
                meta=_meta("calendar", contract.calendar_policy, "timestamp", "timestamp: on a weekend"),
            )
        )
    if contract.max_future is not None and AHEAD_SECONDS in present:
        description = f"timestamp: in the future (more than {contract.max_future} after now)"
        expectations.append(
            _at_most(gxe, AHEAD_SECONDS, contract.max_future, "future", contract.future_policy, description)
        )
    expectations.extend(_price_expectations(gxe, contract, present))

    for position, expectation in enumerate(expectations):
        # GX reports results in its own order; reasons on a row follow the contract's.
        expectation.meta = {**(expectation.meta or {}), "order": position}
    # Given to the constructor, the expectations need no active GX context (add_expectation would).
    return gx.ExpectationSuite(name=suite_name, expectations=expectations)


def _at_most(gxe: Any, column: str, duration: str, check: str, policy: str, description: str) -> Any:
    """A derived seconds column (time since the symbol's previous row, time ahead of now) at most ``duration``."""
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, max_value=_seconds(duration), meta=_meta(check, policy, "timestamp", description)
    )


def _price_expectations(gxe: Any, contract: ContractConfig, present: set[str]) -> list[Any]:
    """high >= low, open and close within [low, high], each with a tiny relative tolerance."""
    ceiling = HIGH_CEILING if HIGH_CEILING in present else "high"
    floor = LOW_FLOOR if LOW_FLOOR in present else "low"
    pairs = []  # (A, B, column blamed, description): A >= B must hold
    if {"high", "low"} <= present:
        pairs.append((ceiling, "low", "high", "high: below low"))
    for column in ("open", "close"):
        if column in present and "high" in present:
            pairs.append((ceiling, column, column, f"{column}: above high"))
        if column in present and "low" in present:
            pairs.append((column, floor, column, f"{column}: below low"))
    return [
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=a,
            column_B=b,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta=_meta("price_consistency", contract.price_consistency, column, description),
        )
        for a, b, column, description in pairs
    ]


def _gx_context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets this logger to INFO itself and announces, on every context, a temporary folder for a docs site we
    # never build: a line of library noise in each run's output.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


# Every expectation first with GX's BASIC result (counts and a sample of values); the ones that failed again
# with COMPLETE, whose list of every unexpected row is what quarantine needs. COMPLETE for all costs GX more
# metrics per expectation: 0.41 s against 0.32 s of CPU per validation of the demo panel (35 expectations,
# 11,958 rows), where every check passes.
FIRST_PASS = "BASIC"
ROWS_PASS = {"result_format": "COMPLETE", "return_unexpected_index_query": False}


def _run_suite(context: Any, frame: pd.DataFrame, suite: Any) -> Any:
    import great_expectations as gx

    batch_definition = (
        context.data_sources.add_pandas("driftline")
        .add_dataframe_asset("canonical")
        .add_batch_definition_whole_dataframe("all-rows")
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format=FIRST_PASS)
    failed = [i for i, item in enumerate(result.results) if not item.success]
    if not failed:
        return result
    again = gx.ExpectationSuite(
        name=suite.name, expectations=[result.results[i].expectation_config.to_domain_obj() for i in failed]
    )
    rows = batch.validate(again, result_format=ROWS_PASS)
    by_order = {(item.expectation_config.meta or {}).get("order"): item for item in rows.results}
    for i in failed:
        result.results[i] = by_order[(result.results[i].expectation_config.meta or {}).get("order")]
    return result


def _raised(info: Any) -> list[str]:
    """Exception messages of an expectation that errored; GX 1.x nests them per metric."""
    if not isinstance(info, dict):
        return []
    if info.get("raised_exception"):
        return [str(info.get("exception_message", ""))[:200]]
    return [message for value in info.values() for message in _raised(value)]


# --- from GX results to reasons ------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "missing"
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return show_time(value)
    return repr(value)


Explainer = Callable[[pd.DataFrame, np.ndarray, dict[str, Any], dict[str, Any]], tuple[list[str], list[str]]]
"""(checked frame, positions, expectation kwargs, meta) -> (reason per row, example value per row)."""


def _explain_missing(
    checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
) -> tuple[list[str], list[str]]:
    return [meta["description"]] * len(positions), [""] * len(positions)


def _explain_values(column_of: Callable[[dict[str, Any], dict[str, Any]], str]) -> Explainer:
    """``<description> (<value>)`` with the value from the checked (or raw helper) column."""

    def explain(
        checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
    ) -> tuple[list[str], list[str]]:
        values = [_value(v) for v in checked[column_of(kwargs, meta)].to_numpy()[positions]]
        return [f"{meta['description']} ({v})" for v in values], values

    return explain


def _explain_range(
    checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
) -> tuple[list[str], list[str]]:
    column = meta["column"]
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    reasons: list[str] = []
    values: list[str] = []
    for value in checked[column].to_numpy()[positions].tolist():
        if low is not None and (value < low or (kwargs.get("strict_min") and value == low)):
            bound = f"{'>' if kwargs.get('strict_min') else '>='} {_bound(low)}"
        elif high is not None:
            bound = f"{'<' if kwargs.get('strict_max') else '<='} {_bound(high)}"
        else:  # not below a lower bound and no upper one: GX flagged it for what it is (a NaN, say)
            bound = f"in range {_bound(low) if low is not None else '-inf'}.."
        reasons.append(f"{column}: must be {bound} (got {_value(value)})")
        values.append(_value(value))
    return reasons, values


def _explain_integer(
    checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
) -> tuple[list[str], list[str]]:
    values = [_value(v) for v in checked[meta["column"]].to_numpy()[positions]]
    return [f"{meta['description']} (got {v})" for v in values], values


def show_row(symbol: Any, value: Any) -> str:
    """A row in a message by its series and time; by its time alone in a source without a symbol column, whose
    one series is named only internally."""
    return show_time(value) if str(symbol) == ONE_SERIES else f"{symbol} {show_time(value)}"


def _explain_monotonic(
    checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
) -> tuple[list[str], list[str]]:
    rows = checked.iloc[positions]
    reasons: list[str] = []
    values: list[str] = []
    for symbol, stamp, before in zip(rows["symbol"], rows["timestamp"], rows[PREV_MAX_TIME], strict=True):
        reasons.append(
            f"timestamp: out of time order for {symbol} "
            f"({show_time(stamp)} comes after {show_time(before)} in the source)"
        )
        values.append(show_row(symbol, stamp))
    return reasons, values


def _explain_gap(
    checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
) -> tuple[list[str], list[str]]:
    rows = checked.iloc[positions]
    values = [
        f"{pd.Timedelta(seconds=step)} for {symbol} before {show_time(stamp)}"
        for symbol, stamp, step in zip(rows["symbol"], rows["timestamp"], rows[STEP_SECONDS], strict=True)
    ]
    return [meta["description"]] * len(positions), values


def _explain_calendar(
    checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
) -> tuple[list[str], list[str]]:
    stamps = checked["timestamp"].to_numpy()[positions]
    days = checked[WEEKDAY].to_numpy()[positions]
    reasons = [f"timestamp: on a {_DAY_NAMES[int(d)]} ({show_time(s)})" for s, d in zip(stamps, days, strict=True)]
    return reasons, [show_time(s) for s in stamps]


def _explain_future(
    checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
) -> tuple[list[str], list[str]]:
    stamps = [show_time(s) for s in checked["timestamp"].to_numpy()[positions]]
    return [f"timestamp: in the future ({s})" for s in stamps], stamps


def _explain_price(
    checked: pd.DataFrame, positions: np.ndarray, kwargs: dict[str, Any], meta: dict[str, Any]
) -> tuple[list[str], list[str]]:
    column = meta["column"]
    other = "low" if meta["description"].endswith("low") else "high"
    rows = checked.iloc[positions]
    reasons, values = [], []
    for mine, theirs in zip(rows[column].tolist(), rows[other].tolist(), strict=True):
        reasons.append(f"{meta['description']} ({column} {mine!r}, {other} {theirs!r})")
        values.append(f"{column} {mine!r} vs {other} {theirs!r}")
    return reasons, values


EXPLAINERS: dict[str, Explainer] = {
    "missing": _explain_missing,
    "type": _explain_values(lambda kwargs, meta: meta["column"]),
    "unparsed": _explain_values(lambda kwargs, meta: kwargs["column"]),
    "integer": _explain_integer,
    "range": _explain_range,
    "allowed": _explain_values(lambda kwargs, meta: meta["column"]),
    "monotonic_time": _explain_monotonic,
    "max_gap": _explain_gap,
    "calendar": _explain_calendar,
    "future": _explain_future,
    "price_consistency": _explain_price,
}


Locate = Callable[[list[int]], list[str]]
"""Source rows (the frame's index) -> where a user finds them, e.g. ``line 8`` (``LoadedData.locate``)."""


def source_rows_named(rows: list[int]) -> list[str]:
    """The default ``Locate``: a frame without a file behind it has only its source row numbers."""
    return [f"source row {r}" for r in rows]


def _keep_first(
    checked: pd.DataFrame, positions: np.ndarray, locate: Locate = source_rows_named
) -> tuple[np.ndarray, list[str], list[str]]:
    """Of each duplicated (symbol, timestamp), every row but the first in source order, and its reason."""
    rows = checked.iloc[positions]  # in source order already
    first = rows.groupby(["symbol", "timestamp"], sort=False)[SOURCE_ROW].transform("first")
    later = (rows[SOURCE_ROW] != first).to_numpy()
    dropped = rows[later]
    kept = locate([int(k) for k in first[later]])
    reasons = [
        f"duplicate of {k} for ({s}, {show_time(t)})"
        for k, s, t in zip(kept, dropped["symbol"], dropped["timestamp"], strict=True)
    ]
    values = [f"({s}, {show_time(t)})" for s, t in zip(dropped["symbol"], dropped["timestamp"], strict=True)]
    return positions[later], reasons, values


def _clock_goes_back(times: np.ndarray) -> bool:
    """Whether every repeated time is in the small hours (00:00-03:59) of a Sunday in March, April, October or
    November: the hour a daylight-saving change repeats in local clock times (Europe, North America, the
    southern hemisphere)."""
    moments = pd.DatetimeIndex(times).dropna()
    return (
        len(moments) > 0
        and bool((moments.dayofweek == 6).all())
        and bool((moments.hour < 4).all())
        and bool(moments.month.isin((3, 4, 10, 11)).all())
    )


def _other_values_at_one_time(checked: pd.DataFrame) -> bool:
    """Whether rows sharing a (symbol, timestamp) differ in a value (events at one time, not a row repeated)."""
    keys = ["symbol", "timestamp"]
    values = [c for c in checked.columns if c not in (*keys, SOURCE_ROW) and not str(c).startswith("_")]
    shared = checked[checked.duplicated(keys, keep=False)]
    return bool(values) and bool(shared.drop_duplicates([*keys, *values]).duplicated(keys).any())


def _newest_first(checked: pd.DataFrame, out_of_order: int) -> bool:
    """Is every row but each symbol's first out of time order: a file in descending time order?"""
    stamped = checked["timestamp"].notna()
    per_symbol = stamped.groupby(checked["symbol"]).sum() if "symbol" in checked.columns else stamped.sum()
    return out_of_order > 0 and out_of_order == int(np.maximum(np.asarray(per_symbol) - 1, 0).sum())


def _examples(
    checked: pd.DataFrame, positions: np.ndarray, values: list[str], locate: Locate = source_rows_named
) -> list[str]:
    where = locate([int(r) for r in checked[SOURCE_ROW].to_numpy()[positions[:N_EXAMPLES]]])
    return [f"{v} ({w})" if v else w for v, w in zip(values, where, strict=False)]


def _message(description: str, count: int, examples: list[str], noun: str = "row") -> str:
    if not count:
        return description + (f" ({examples[0]})" if examples else "")
    plural = noun if count == 1 else noun + "s"
    text = f"{description}: {count} {plural}"
    return text + (f", e.g. {', '.join(examples[:3])}" if examples else "")


def _source_order(checked: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
    rows = checked[SOURCE_ROW].to_numpy()[positions]
    try:
        return positions[np.argsort(rows, kind="stable")]
    except TypeError:  # source rows that do not sort: keep the frame order
        return positions


def _evaluate(
    item: Any, checked: pd.DataFrame, frame_columns: list[str], locate: Locate = source_rows_named
) -> tuple[CheckResult, np.ndarray, list[str]]:
    """One GX result -> the check's verdict, and the rows it quarantines with their reasons."""
    config = item.expectation_config
    meta = dict(config.meta or {})
    kwargs = dict(config.kwargs)
    check = meta.get("check", config.type)
    policy = meta.get("policy", "fail")
    description = meta.get("description", config.type)
    column = meta.get("column") or kwargs.get("column") or ",".join(kwargs.get("column_list") or [])
    details = item.result or {}
    errors = _raised(item.exception_info)
    success = bool(item.success) and not errors
    positions = np.asarray(details.get("unexpected_index_list") or [], dtype=np.int64)
    count = int(details.get("unexpected_count") or len(positions))
    none: tuple[np.ndarray, list[str]] = (np.empty(0, dtype=np.int64), [])

    # What every result of this expectation says, whatever is done about it.
    found = {
        "expectation": config.type,
        "column": column,
        "success": success,
        "unexpected_count": count,
        "check": check,
        "policy": policy,
        "description": description,
    }

    def result(action: str, examples: list[str], message: str, quarantined: int = 0) -> CheckResult:
        return CheckResult(**found, examples=examples, action=action, rows_quarantined=quarantined, message=message)

    if success:
        return result("none", [], ""), *none
    if errors or not len(positions):
        # Nothing row-level to act on: a missing column, a wrong dtype, or a check that could not run.
        if errors:
            examples = errors[:1]
        elif check == "required":
            shown = [c for c in frame_columns if not c.startswith("_") and c != SOURCE_ROW]
            examples = [f"columns are {', '.join(shown)}"]
        else:
            examples = [f"dtype {checked[column].dtype}"] if column in checked.columns else []
        action = "warn" if policy == "warn" and check != "required" else "fail"
        return result(action, examples, _message(description, 0, examples)), *none

    positions = _source_order(checked, positions)
    if check == "unique":
        positions, reasons, values = _keep_first(checked, positions, locate)
        examples = _examples(checked, positions, values, locate)
        message = _message(description, len(positions), examples, noun="later duplicate")
        if _clock_goes_back(checked["timestamp"].to_numpy()[positions]):
            message += (
                "; each in the small hours of a Sunday when clocks go back: if the times are local clock times "
                "(that hour comes twice), name their zone, e.g. --set data.timezone=Europe/Berlin, to read them"
            )
        elif _other_values_at_one_time(checked):
            message += (
                "; some hold other values than the row kept, as events at one time do (a log of trades, alerts "
                "or clicks; contract.unique: warn keeps them)"
            )
    elif check == "max_gap":
        steps = checked[STEP_SECONDS].to_numpy()[positions]
        positions = positions[np.argsort(-steps, kind="stable")]  # the largest gap first
        reasons, values = _explain_gap(checked, positions[:N_EXAMPLES], kwargs, meta)
        examples = _examples(checked, positions, values, locate)
        message = f"{_message(description, len(positions), [], noun='gap')}, largest {values[0]}"
    else:
        explain = EXPLAINERS.get(check)
        # Reasons for every row only when rows are set aside; for warnings the examples need a few.
        wanted = positions[:N_EXAMPLES] if policy == "warn" else positions
        if explain is None:
            reasons, values = [description] * len(wanted), [""] * len(wanted)
        else:
            reasons, values = explain(checked, wanted, kwargs, meta)
        examples = _examples(checked, positions, values, locate)
        message = _message(description, len(positions), examples)
        if check == "monotonic_time" and _newest_first(checked, len(positions)):
            message += " — the source lists every symbol's rows newest first"
    if policy == "warn":
        return result("warn", examples, message), *none
    if check == "max_gap":  # a property of the series, not of rows: nothing to set aside
        return result("fail", examples, message), *none
    # Rows of a failing check are set aside too, so the quarantine file shows what stopped the run.
    action = "quarantine" if policy == "quarantine" else "fail"
    return result(action, examples, message, len(positions)), positions, reasons


def _trimmed(result: Any) -> dict[str, Any]:
    """The GX result as JSON-able data, with long per-row lists cut to ``GX_LIST_LIMIT`` entries."""
    for item in result.results:
        details = item.result or {}
        for key, value in list(details.items()):
            if isinstance(value, list) and len(value) > GX_LIST_LIMIT:
                details[key] = value[:GX_LIST_LIMIT]
    data: dict[str, Any] = json.loads(json.dumps(result.to_json_dict(), default=str))
    data["driftline_lists_truncated_to"] = GX_LIST_LIMIT
    return data


def _short_symbols_aside(
    frame: pd.DataFrame, bad: np.ndarray, contract: ContractConfig
) -> tuple[CheckResult, np.ndarray, list[str]] | None:
    """With ``short_symbols: quarantine``, the rows of symbols left with fewer than ``min_rows_per_symbol`` clean
    rows (after the row checks' ``bad`` positions), to set aside; None when no symbol is short, or when none is
    long enough (nothing would be left: ``enforce_contract`` then says which symbols are short)."""
    if contract.short_symbols != "quarantine" or not len(frame):
        return None
    keep = np.ones(len(frame), dtype=bool)
    keep[bad] = False
    symbols = frame["symbol"].astype(str).to_numpy()
    counts = pd.Series(symbols[keep]).value_counts().sort_index()
    short = counts[counts < contract.min_rows_per_symbol]
    if short.empty or len(short) == len(counts):
        return None
    positions = np.flatnonzero(keep & np.isin(symbols, short.index.to_numpy()))
    reasons = [_short_reason(symbol, short[symbol], contract) for symbol in symbols[positions]]
    return _short_check(short, counts, len(positions), contract), positions, reasons


SHORT_REASON = "clean rows, fewer than contract.min_rows_per_symbol"  # in every reason _short_reason writes


def _short_reason(symbol: object, rows: int, contract: ContractConfig) -> str:
    return f"symbol {symbol}: {rows} {SHORT_REASON} ({contract.min_rows_per_symbol})"


def _short_check(short: pd.Series, counts: pd.Series, rows: int, contract: ContractConfig) -> CheckResult:
    minimum = contract.min_rows_per_symbol
    return CheckResult(
        expectation="min_rows_per_symbol",
        column="symbol",
        success=False,
        unexpected_count=rows,
        examples=[f"{s}: {n}" for s, n in short.head(N_EXAMPLES).items()],
        check="min_rows_per_symbol",
        policy="quarantine",
        description=f"each symbol keeps at least {minimum} clean rows",
        action="quarantine",
        rows_quarantined=rows,
        message=f"symbol: fewer than {minimum} clean rows (contract.min_rows_per_symbol), set aside: "
        f"{short_symbols_text(short, counts)}",
    )


def set_short_symbol_aside(report: ValidationReport, contract: ContractConfig) -> ValidationReport:
    """One symbol's report (the streamed path validates a symbol at a time) with its clean rows moved to the
    quarantine when they are fewer than ``min_rows_per_symbol`` and ``short_symbols`` is ``quarantine``; the
    report as it was otherwise (the caller then leaves the symbol out when no clean row is left)."""
    rows = report.rows_clean
    if contract.short_symbols != "quarantine" or rows == 0 or rows >= contract.min_rows_per_symbol:
        return report
    symbol = report.clean["symbol"].iloc[0]
    aside = report.clean.reset_index(names=SOURCE_ROW).assign(reason=_short_reason(symbol, rows, contract))
    quarantined = pd.concat([report.quarantined, aside[[*report.quarantined.columns]]], ignore_index=True)
    counts = pd.Series({symbol: rows})
    return replace(
        report,
        checks=[*report.checks, _short_check(counts, counts, rows, contract)],
        clean=report.clean.iloc[:0],
        quarantined=quarantined.iloc[_source_order_index(quarantined)].reset_index(drop=True),
    )


def too_few_rows(source: str, short: pd.Series, counts: pd.Series, contract: ContractConfig) -> InsufficientDataError:
    """The error of symbols with fewer than ``min_rows_per_symbol`` clean rows (``short``, of all ``counts``)."""
    detail = short_symbols_text(short, counts) if len(short) else "no rows left"
    return InsufficientDataError(
        f"{source}: too few clean rows per symbol (need {contract.min_rows_per_symbol}, "
        f"contract.min_rows_per_symbol): {detail}"
    )


def validate_frame(
    frame: pd.DataFrame,
    contract: ContractConfig,
    suite_name: str,
    *,
    source_values: Mapping[str, pd.Series] | None = None,
    now: pd.Timestamp | None = None,
    source: str = "",
    labels: Mapping[str, str] | None = None,
    locate: Locate = source_rows_named,
) -> ValidationReport:
    """Check the canonical ``frame`` against ``contract`` with one GX suite and sort its rows.

    Args:
        frame: the canonical frame; its index is the source row number.
        contract: the data contract.
        suite_name: the GX suite's name.
        source_values: canonical column -> raw source values (same index), so that a value that did not
            parse ("close: not a number ('abc')") is told apart from a missing one. Without it, NaN is
            missing.
        now: the clock of the future-timestamp check (tz-aware is converted to UTC); default: now.
        source: the file or prefix the frame came from, for messages.
        labels: canonical column -> the source's name for it, where that differs (``build_suite``).
        locate: how messages and reasons name a source row (default ``source row N``; a loaded file's
            ``LoadedData.locate`` gives its line, e.g. ``line 8``).

    Returns:
        The report; rows of ``quarantine`` checks are in ``quarantined`` (one row each, reasons joined
        with "; "), every other row in ``clean``.
    """
    checked = derive_columns(frame, contract, source_values=source_values, now=now)
    columns = list(checked.columns)
    context = _gx_context()
    suite = build_suite(contract, columns, suite_name, labels)
    result = _run_suite(context, checked, suite)
    last = len(suite.expectations)
    items = sorted(result.results, key=lambda item: (item.expectation_config.meta or {}).get("order", last))

    checks, positions, reasons = [], [], []
    for item in items:
        check, rows, why = _evaluate(item, checked, columns, locate)
        checks.append(check)
        positions.append(rows)
        reasons.extend(why)

    all_positions = np.concatenate(positions) if positions else np.empty(0, dtype=np.int64)
    short = _short_symbols_aside(frame, all_positions, contract)
    if short is not None:
        check, rows, why = short
        checks.append(check)
        all_positions = np.concatenate([all_positions, rows])
        reasons.extend(why)
    joined = pd.Series(reasons, index=all_positions, dtype=object).groupby(level=0, sort=True).agg("; ".join)
    bad = joined.index.to_numpy(dtype=np.int64)
    quarantined = checked.iloc[bad][[SOURCE_ROW, *frame.columns]].copy()
    quarantined["reason"] = joined.to_numpy()
    quarantined = quarantined.iloc[_source_order_index(quarantined)].reset_index(drop=True)
    keep = np.ones(len(frame), dtype=bool)
    keep[bad] = False
    clean = frame[keep]

    fraction = len(bad) / len(frame) if len(frame) else 0.0
    warnings = [f"{c.message} (rows kept, policy warn)" for c in checks if c.action == "warn"]
    blank = np.isin(quarantined[SOURCE_ROW].to_numpy(), frame.index[blank_bars(frame, source_values)].to_numpy())
    if blank.any():
        warnings.append(blank_bars_note(quarantined[blank], locate))
    holes = holes_note(clean, quarantined[~blank])  # a day without trading leaves no step out of the series
    if holes:
        warnings.append(holes)
    shown = (labels or {}).get("volume")
    volumes = missing_volumes_note(clean, f"{shown!r} (volume)" if shown else "volume", locate)
    if volumes:
        warnings.append(volumes)
    ranges = missing_ranges_note(clean, locate)
    if ranges:
        warnings.append(ranges)
    return ValidationReport(
        success=not any(c.action == "fail" for c in checks) and fraction <= contract.max_quarantine_fraction,
        rows_in=len(frame),
        checks=checks,
        clean=clean,
        quarantined=quarantined,
        gx_result=_trimmed(result),
        warnings=warnings,
        source=source,
    )


def _kept_without(clean: pd.DataFrame, missing: pd.Series, name: str, effect: str, locate: Locate) -> str:
    """Kept rows without a value in ``name`` (``missing``), how many and where, and ``effect``: what is done
    over them; "" when every kept row has it, or none has."""
    if not missing.any() or missing.all():
        return ""
    rows = [int(r) for r in clean.index[missing.to_numpy()][:3]]
    return (
        f"{name}: no value in {int(missing.sum())} of {len(clean)} kept rows (e.g. {', '.join(locate(rows))}): {effect}"
    )


def missing_volumes_note(clean: pd.DataFrame, name: str, locate: Locate = source_rows_named) -> str:
    """Kept bars without a volume (``volume`` may miss values: a bar's prices are the series)."""
    if "volume" not in clean.columns or not len(clean):
        return ""
    effect = (
        "their prices are used, and the volume feature is its series' last known one for up to "
        "features.carry_limit rows (0 in a series without any volume)"
    )
    return _kept_without(clean, clean["volume"].isna(), name, effect, locate)


def missing_ranges_note(clean: pd.DataFrame, locate: Locate = source_rows_named) -> str:
    """Kept bars with a close and no high or low (they may miss values: the close is the series)."""
    if not {"high", "low"} <= set(clean.columns) or not len(clean):
        return ""
    effect = (
        "their close is used, and the range features (range_z, close_in_range) are their series' last known "
        "ones for up to features.carry_limit rows"
    )
    return _kept_without(clean, clean["high"].isna() | clean["low"].isna(), "high, low", effect, locate)


BAR_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")


def blank_bars(frame: pd.DataFrame, source_values: Mapping[str, pd.Series] | None = None) -> np.ndarray:
    """Rows of a price series with a time and not one price or volume (empty, missing or a mark such as
    ``null``; a volume of 0 counts as none): a day without trading, as some exports (Yahoo's) write a holiday.
    Not a bar that lost a value."""
    columns = [c for c in BAR_COLUMNS if c in frame.columns]
    if not {"close", "adj_close"} & set(columns):
        return np.zeros(len(frame), dtype=bool)
    blank = np.ones(len(frame), dtype=bool)
    for column in columns:
        raw = (source_values or {}).get(column)
        if raw is None:
            none = frame[column].isna().to_numpy()
        else:
            values = raw.reindex(frame.index)
            none = ~_present(values) | missing_marks(values)
        if column == "volume":
            none |= (frame[column] == 0).to_numpy()
        blank &= none
    return blank


def blank_bars_note(rows: pd.DataFrame, locate: Locate = source_rows_named) -> str:
    """The quarantine's rows without a price or volume (``blank_bars``), how many and where."""
    first = rows.head(3)
    places = locate([int(r) for r in first[SOURCE_ROW]])
    shown = [
        f"{where} ({show_row(s, t)})" for where, s, t in zip(places, first["symbol"], first["timestamp"], strict=True)
    ]
    return (
        f"{len(rows)} rows have a time and no price or volume at all (e.g. {', '.join(shown)}): times without an "
        "observation (a holiday in a price export, a missed reading); set aside, not counted as holes in their "
        "series (the features step over them, as over a weekend)"
    )


def holes_note(clean: pd.DataFrame, quarantined: pd.DataFrame) -> str:
    """Quarantined rows between a series' first and last clean rows leave holes in it, which the features'
    trailing windows, the label lags and the target's horizon step over, since they count rows; a message
    saying so (counts, the longest hole, an example), or "" when no hole is left (rows set aside at an end,
    or duplicates of a kept row)."""
    if clean.empty or quarantined.empty or not {"symbol", "timestamp"} <= set(quarantined.columns):
        return ""
    lost = quarantined[["symbol", "timestamp"]].dropna()
    if lost.empty:
        return ""
    times = lost["timestamp"].to_numpy()
    before, inside = np.zeros(len(lost), dtype=np.int64), np.zeros(len(lost), dtype=bool)
    positions = lost.groupby("symbol", observed=True).indices
    for series, kept_times in clean.groupby("symbol", observed=True)["timestamp"]:
        if series not in positions:
            continue
        kept, at = np.sort(kept_times.to_numpy()), positions[series]
        before[at] = kept.searchsorted(times[at])
        duplicate = kept[np.minimum(before[at], len(kept) - 1)] == times[at]  # a kept time: no hole
        # Inside: a clean row before it and one after it.
        inside[at] = (before[at] > 0) & (before[at] < len(kept)) & ~duplicate
    if not inside.any():
        return ""
    # Rows of one symbol with the same clean rows before them make one hole.
    holes = lost[inside].assign(before=before[inside]).groupby(["symbol", "before"], observed=True)["timestamp"]
    sizes, starts = holes.size(), holes.min()
    longest = cast(tuple[Any, int], sizes.idxmax())  # (symbol, clean rows before it)
    rows, symbol, start = int(inside.sum()), longest[0], show_time(starts[longest])
    if rows == 1:
        shape = f"a quarantined row was inside its series ({symbol} {start})"
    elif len(sizes) == 1:
        shape = f"{rows} quarantined rows in a row were inside their series ({symbol} from {start})"
    else:
        shape = (
            f"{rows} quarantined rows were inside their series, leaving {len(sizes)} holes (the longest "
            f"{sizes.max()} rows, {symbol} from {start})"
        )
    return (
        f"{shape}: the features' windows, the label lags "
        "and the target's horizon count rows, so across a hole they reach further in time; to keep the steps "
        "even, fill those values in the source (e.g. carry the last one forward: a fill from later rows would "
        "leak them)"
    )


def _source_order_index(quarantined: pd.DataFrame) -> np.ndarray:
    try:
        return np.argsort(quarantined[SOURCE_ROW].to_numpy(), kind="stable")
    except TypeError:
        return np.arange(len(quarantined))


def _one_series_hint(report: ValidationReport, worst: list[CheckResult]) -> str:
    """When duplicates sink a file read as one series: it may hold several, keyed by a column not found."""
    symbols = pd.concat([report.clean["symbol"], report.quarantined.get("symbol", pd.Series(dtype=object))])
    duplicates = any(c.check == "unique" for c in worst)
    if not duplicates or set(symbols.astype(str).unique()) != {ONE_SERIES}:
        return ""
    return (
        " — read as one series (no symbol column found); if the file holds several, each with its own rows per "
        "time, name the column that tells them apart with --symbol-col (data.symbol_col)"
    )


def _sunk_by_nonpositive_prices(report: ValidationReport, worst: Sequence[CheckResult]) -> bool:
    """Whether prices at or below zero are among the rows of ``worst`` (the checks that set most rows aside)."""
    columns = [c.column for c in worst if c.check == "range" and c.column in ("close", "adj_close")]
    quarantined = report.quarantined
    return any(c in quarantined and (pd.to_numeric(quarantined[c], errors="coerce") <= 0).any() for c in columns)


# When prices at or below zero sink the batch: the price targets need positive prices; a series that crosses
# zero fits a label target.
PRICE_SIGN_HINT = (
    " — the price targets are built on log returns, so a price must be > 0; a series that crosses zero (an "
    "anomaly, a spread) trains as a label: add a 0/1 column (say, the value 5 rows ahead above this one) and "
    "use --target label --target-col <it>, with the series itself as a feature column"
)


def _uncovered_symbols(report: ValidationReport) -> tuple[dict[str, int], set[str]]:
    """(symbol -> quarantined rows) of the symbols without a single clean row, and the symbols with one."""
    quarantined = report.quarantined
    if "symbol" not in quarantined or not len(quarantined):
        return {}, set()
    covered = set(report.clean["symbol"].astype(str))
    symbols = quarantined["symbol"].astype(str)
    counts = symbols[~symbols.isin(covered)].value_counts()
    return {str(name): int(rows) for name, rows in counts.items()}, covered


def _uncovered_symbols_hint(
    uncovered: Mapping[str, int], covered: int, rows_quarantined: int, rows_in: int, contract: ContractConfig
) -> str:
    """When most quarantined rows belong to symbols without a single clean row (a panel whose source does not
    cover some series: a country with no value in the column at all), which symbols, and the two ways on."""
    uncovered_rows = sum(uncovered.values())
    if not covered or not rows_in or 2 * uncovered_rows < rows_quarantined:
        return ""
    names = sorted(uncovered)
    more = len(names) - SHORT_SYMBOLS_SHOWN
    shown = ", ".join(names[:SHORT_SYMBOLS_SHOWN]) + (f" and {more} more" if more > 0 else "")
    rest = (rows_quarantined - uncovered_rows) / rows_in
    allowed = math.ceil(100 * rows_quarantined / rows_in) / 100
    within = "within" if rest <= contract.max_quarantine_fraction else "still above"
    return (
        f" — {uncovered_rows} of those rows are the whole of {len(names)} of the {len(names) + covered} symbols, "
        f"left with nothing to train on ({shown}: series the data does not cover); the other symbols lose "
        f"{rest:.1%} of the rows, {within} the limit. Leave those symbols out of the data, or let the run set them "
        f"aside (into the quarantine file, with reasons) with --set contract.max_quarantine_fraction={allowed:g}"
    )


def _worst_checks(checks: Sequence[CheckResult]) -> list[CheckResult]:
    """The three checks that set most rows aside, most first."""
    return sorted((c for c in checks if c.rows_quarantined), key=lambda c: -c.rows_quarantined)[:3]


@dataclass
class QuarantineTally:
    """The quarantine of a panel validated one symbol at a time (the streamed path), summed so that its failure
    names what the in-memory path's does: the checks that set most rows aside, and why."""

    rows_in: int = 0
    rows_quarantined: int = 0
    checks: dict[tuple[str, str], CheckResult] = field(default_factory=dict)  # summed over the symbols
    symbols: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # check -> the symbols it hit
    uncovered: dict[str, int] = field(default_factory=dict)  # symbol -> rows, for symbols without a clean row
    covered: set[str] = field(default_factory=set)
    nonpositive_prices: bool = False

    def add(self, report: ValidationReport, symbol: str) -> None:
        """Count one symbol's report."""
        self.rows_in += report.rows_in
        self.rows_quarantined += report.rows_quarantined
        for check in report.checks:
            if not check.rows_quarantined:
                continue
            key = (check.check, check.column)
            hit = self.symbols.setdefault(key, [])
            hit.append(symbol)
            held = self.checks.get(key)
            if held is None:  # its examples stay the first symbol's
                self.checks[key] = replace(check, message=f"{check.message} (symbol {symbol})")
                continue
            rows = held.rows_quarantined + check.rows_quarantined
            self.checks[key] = replace(
                held,
                rows_quarantined=rows,
                unexpected_count=held.unexpected_count + check.unexpected_count,
                message=f"{held.description}: {rows} rows in {len(hit)} symbols"
                + (f", e.g. in {hit[0]}: {', '.join(held.examples[:3])}" if held.examples else ""),
            )
        uncovered, covered = _uncovered_symbols(report)
        for name, rows in uncovered.items():
            self.uncovered[name] = self.uncovered.get(name, 0) + rows
        self.covered |= covered
        self.nonpositive_prices |= _sunk_by_nonpositive_prices(report, _worst_checks(report.checks))

    def failure(self, source: str, contract: ContractConfig) -> ValidationFailed | None:
        """The run's failure when more than ``max_quarantine_fraction`` of all rows were set aside, else None."""
        fraction = self.rows_quarantined / self.rows_in if self.rows_in else 0.0
        if fraction <= contract.max_quarantine_fraction:
            return None
        worst = _worst_checks(list(self.checks.values()))
        uncovered = _uncovered_symbols_hint(
            self.uncovered, len(self.covered), self.rows_quarantined, self.rows_in, contract
        )
        return ValidationFailed(
            f"{source}: data contract failed: {self.rows_quarantined} of {self.rows_in} rows ({100 * fraction:.1f}%) "
            f"were quarantined, above contract.max_quarantine_fraction {contract.max_quarantine_fraction}; most rows: "
            f"{'; '.join(c.message for c in worst)}{PRICE_SIGN_HINT if self.nonpositive_prices else ''}{uncovered}"
        )


def enforce_contract(report: ValidationReport, contract: ContractConfig, source: str) -> pd.DataFrame:
    """Apply the contract to a report and return the rows that may be trained on.

    Warnings are logged. The policies are the report's (those of the contract it was validated with);
    ``max_quarantine_fraction`` and ``min_rows_per_symbol`` are ``contract``'s.

    Raises:
        ValidationFailed: a check with policy ``fail`` failed, a required column is missing, a check
            could not run, or more than ``max_quarantine_fraction`` of the rows were quarantined. One
            paragraph naming the source, the columns, the problems, counts and example values.
        InsufficientDataError: after quarantine, a symbol has fewer than ``min_rows_per_symbol`` rows.
    """
    source = source or report.source or "<data>"
    for warning in report.warnings:
        logger.warning("%s: data contract: %s", source, warning)
    failures = report.failures
    if failures:
        raise ValidationFailed(
            f"{source}: data contract failed: {'; '.join(c.message for c in failures)}", report=report
        )
    fraction = report.rows_quarantined / report.rows_in if report.rows_in else 0.0
    if fraction > contract.max_quarantine_fraction:
        worst = _worst_checks(report.checks)
        uncovered, covered = _uncovered_symbols(report)
        raise ValidationFailed(
            f"{source}: data contract failed: {report.rows_quarantined} of {report.rows_in} rows ({fraction:.1%}) "
            f"would be quarantined, more than max_quarantine_fraction {contract.max_quarantine_fraction:g}; "
            f"most rows: {'; '.join(c.message for c in worst)}{_one_series_hint(report, worst)}"
            f"{PRICE_SIGN_HINT if _sunk_by_nonpositive_prices(report, worst) else ''}"
            f"{_uncovered_symbols_hint(uncovered, len(covered), report.rows_quarantined, report.rows_in, contract)}",
            report=report,
        )
    if report.rows_quarantined:
        logger.warning(
            "%s: quarantined %d of %d rows: %s",
            source,
            report.rows_quarantined,
            report.rows_in,
            "; ".join(c.message for c in report.checks if c.rows_quarantined),
        )
    clean = report.clean
    symbols = pd.concat([clean["symbol"], report.quarantined.get("symbol", pd.Series(dtype=object))])
    counts = clean.groupby("symbol").size().reindex(pd.unique(symbols), fill_value=0).sort_index()
    short = counts[counts < contract.min_rows_per_symbol]
    if contract.short_symbols == "quarantine" and len(clean) and len(short) and not short.any():
        # Symbols whose every row is in the quarantine, with its reasons: the others go on without them. Those
        # set aside for being short are named by that check's own warning above.
        aside = report.quarantined["reason"].str.contains(SHORT_REASON, regex=False)
        others = sorted(set(map(str, short.index)) - set(report.quarantined.loc[aside, "symbol"].astype(str)))
        if others:
            logger.warning("%s: symbols with no clean row left, not trained on: %s", source, ", ".join(others))
        short = short[short > 0]
    if len(clean) == 0 or len(short):
        raise too_few_rows(source, short, counts, contract)
    return clean


SHORT_SYMBOLS_SHOWN = 10


def short_symbols_text(short: pd.Series, counts: pd.Series) -> str:
    """``SYM0: 8, SYM1: 12``; in a large panel the shortest ``SHORT_SYMBOLS_SHOWN``, how many more, and the
    longest symbol's count (a yearly panel of 63 rows per country is short everywhere, not broken)."""
    if len(short) <= SHORT_SYMBOLS_SHOWN:
        return ", ".join(f"{s}: {n}" for s, n in short.items())
    shown = short.sort_values(kind="stable").head(SHORT_SYMBOLS_SHOWN)
    listed = ", ".join(f"{s}: {n}" for s, n in shown.items())
    return (
        f"{len(short)} of {len(counts)} symbols, the shortest {listed} and {len(short) - len(shown)} more "
        f"(the longest symbol has {int(counts.max())} rows)"
    )


def contract_to_yaml(contract: ContractConfig) -> str:
    """The effective contract as a contract file: column rules list only what differs from the built-in rule.

    Loading the text back (``ContractConfig(file=...)``) gives the same contract.
    """
    data = contract.model_dump(mode="json", exclude={"file"})
    columns: dict[str, Any] = {}
    for name, rule in data["columns"].items():
        base = ColumnRule(**DEFAULT_COLUMN_RULES.get(name, {})).model_dump(mode="json")
        changed = {key: value for key, value in rule.items() if value != base[key]}
        if changed or name not in DEFAULT_COLUMN_RULES:
            columns[name] = changed
    data["columns"] = columns
    return yaml.safe_dump(data, sort_keys=False)
