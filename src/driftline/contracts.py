"""The data contract, rendered into a Great Expectations 1.x suite and checked on the canonical frame.

Every failed expectation names its column and the offending rows; those rows are the quarantine. With
``on_violation: fail`` a failed suite stops the run; with ``quarantine`` the rows go aside with a reason
and the run goes on with the rest, provided that enough rows are left.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from driftline.config import ContractConfig
from driftline.errors import InsufficientDataError, ValidationFailed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    expectation: str
    column: str
    success: bool
    unexpected_count: int
    examples: list[Any]


@dataclass(frozen=True)
class ValidationReport:
    """What the contract found; ``clean`` and ``quarantined`` always add up to ``rows_in``."""

    success: bool
    rows_in: int
    checks: list[CheckResult]
    clean: pd.DataFrame
    quarantined: pd.DataFrame = field(repr=False)
    gx_result: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def rows_clean(self) -> int:
        return len(self.clean)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)

    def summary(self) -> str:
        failed = [c for c in self.checks if not c.success]
        head = (
            f"{len(self.checks) - len(failed)}/{len(self.checks)} expectations passed; "
            f"rows in {self.rows_in}, clean {self.rows_clean}, quarantined {self.rows_quarantined}"
        )
        lines = [head] + [
            f"- {c.expectation} on {c.column!r}: {c.unexpected_count} rows, e.g. {c.examples[:3]}" for c in failed
        ]
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = "\n".join(
            f"| {'pass' if c.success else '**FAIL**'} | `{c.expectation}` | {c.column} | {c.unexpected_count} |"
            for c in self.checks
        )
        return (
            f"### Data contract: {'passed' if self.success else 'FAILED'}\n\n"
            f"Rows in **{self.rows_in}**, clean **{self.rows_clean}**, quarantined **{self.rows_quarantined}**.\n\n"
            "| result | expectation | column | rows |\n|---|---|---|---|\n" + rows + "\n"
        )


def build_suite(frame: pd.DataFrame, suite_name: str) -> Any:
    """Render the contract for the canonical columns present in ``frame`` into a GX suite.

    Needs an active GX context (``validate_frame`` makes an ephemeral one).
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=suite_name)
    for column in ("symbol", "timestamp"):
        suite.add_expectation(gxe.ExpectColumnToExist(column=column))
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    prices = [c for c in ("open", "high", "low", "close", "adj_close") if c in frame.columns]
    for column in prices:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, strict_min=True))
    if "volume" in frame.columns:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="volume"))
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0))
    if "target" in frame.columns:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="target"))
    suite.add_expectation(gxe.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "timestamp"]))
    return suite


def _gx_context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _run_suite(context: Any, frame: pd.DataFrame, suite: Any) -> Any:
    batch_definition = (
        context.data_sources.add_pandas("driftline")
        .add_dataframe_asset("canonical")
        .add_batch_definition_whole_dataframe("all-rows")
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(suite, result_format={"result_format": "COMPLETE"})


def _raised(info: Any) -> list[str]:
    """Exception messages of an expectation that errored; GX 1.x nests them per metric."""
    if not isinstance(info, dict):
        return []
    if info.get("raised_exception"):
        return [str(info.get("exception_message", ""))[:200]]
    return [message for value in info.values() for message in _raised(value)]


def validate_frame(frame: pd.DataFrame, suite_name: str) -> ValidationReport:
    """Check ``frame`` against the contract suite; rows that break any expectation are set aside."""
    checked = frame.reset_index(names="source_row")
    context = _gx_context()
    result = _run_suite(context, checked, build_suite(frame, suite_name))
    reasons: dict[int, list[str]] = {}
    checks = []
    for item in result.results:
        config = item.expectation_config
        column = config.kwargs.get("column") or ",".join(config.kwargs.get("column_list") or [])
        details = item.result or {}
        errors = _raised(item.exception_info)
        examples = errors[:1] if errors else list(details.get("partial_unexpected_list") or [])[:5]
        checks.append(
            CheckResult(
                expectation=config.type,
                column=column,
                success=bool(item.success),
                unexpected_count=int(details.get("unexpected_count") or 0),
                examples=[str(e) for e in examples],
            )
        )
        for position in details.get("unexpected_index_list") or []:
            reasons.setdefault(int(position), []).append(f"{config.type}({column})")

    bad_positions = sorted(reasons)
    quarantined = checked.iloc[bad_positions].copy()
    quarantined["reason"] = ["; ".join(reasons[p]) for p in bad_positions]
    clean = frame.drop(index=frame.index[bad_positions])
    report = ValidationReport(
        success=bool(result.success),
        rows_in=len(frame),
        checks=checks,
        clean=clean,
        quarantined=quarantined,
        gx_result=json.loads(json.dumps(result.to_json_dict(), default=str)),
    )
    return report


def enforce_contract(report: ValidationReport, contract: ContractConfig, source: str) -> pd.DataFrame:
    """Apply the contract's policy to a report and return the rows that may be trained on.

    Raises:
        ValidationFailed: a check failed and the policy is ``fail`` (or a required column is missing);
            the message carries the GX summary.
        InsufficientDataError: after quarantine, a symbol has fewer than ``min_rows_per_symbol`` rows.
    """
    structural = [c for c in report.checks if not c.success and c.expectation == "expect_column_to_exist"]
    if not report.success and (contract.on_violation == "fail" or structural):
        raise ValidationFailed(f"{source}: data contract failed: {report.summary()}", report=report)
    if report.rows_quarantined:
        logger.warning("%s: quarantined %d rows: %s", source, report.rows_quarantined, report.summary())
    clean = report.clean
    counts = clean.groupby("symbol").size()
    short = counts[counts < contract.min_rows_per_symbol]
    if len(clean) == 0 or len(short):
        detail = ", ".join(f"{s}: {n}" for s, n in short.items()) or "no rows left"
        raise InsufficientDataError(
            f"{source}: too few clean rows per symbol (need {contract.min_rows_per_symbol}): {detail}"
        )
    return clean
