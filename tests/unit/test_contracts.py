"""The GX data contract: which rows break it, why, and what each policy does with them.

Great Expectations costs several seconds to import once; every later validation is fast, so the suite
validates small frames per case and shares the clean report per module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.config import ContractConfig
from driftline.contracts import ValidationReport, enforce_contract, validate_frame
from driftline.errors import InsufficientDataError, ValidationFailed
from driftline.synthetic import make_ohlcv_panel

ROWS_PER_SYMBOL = 30


@pytest.fixture(scope="module")
def clean_frame() -> pd.DataFrame:
    """Canonical two-symbol frame whose index is a shuffled source-row number, as ingest leaves it."""
    from driftline.config import DataConfig
    from driftline.ingest import detect_columns, normalise_frame

    raw = make_ohlcv_panel(n_symbols=2, n_days=ROWS_PER_SYMBOL, seed=4).sample(frac=1.0, random_state=1)
    raw = raw.reset_index(drop=True)
    frame = normalise_frame(raw, detect_columns(raw, DataConfig(), "mem", False), "mem")
    assert not frame.index.is_monotonic_increasing  # labels differ from positions: the mapping is tested
    return frame


@pytest.fixture(scope="module")
def clean_report(clean_frame) -> ValidationReport:
    return validate_frame(clean_frame, "unit")


def _row(frame: pd.DataFrame, symbol: str, position: int) -> int:
    """Index label of the ``position``-th row of ``symbol``."""
    return int(frame.index[frame["symbol"] == symbol][position])


def _negative_close(frame):
    label = _row(frame, "SYM0", 5)
    frame.loc[label, "close"] = -1.0
    return [label]


def _null_close(frame):
    label = _row(frame, "SYM1", 7)
    frame.loc[label, "close"] = np.nan
    return [label]


def _negative_volume(frame):
    label = _row(frame, "SYM1", 12)
    frame.loc[label, "volume"] = -10.0
    return [label]


def _duplicate_key(frame):
    first, second = _row(frame, "SYM0", 9), _row(frame, "SYM0", 10)
    frame.loc[second, "timestamp"] = frame.loc[first, "timestamp"]
    return [first, second]


def _null_timestamp(frame):
    label = _row(frame, "SYM0", 20)
    frame.loc[label, "timestamp"] = pd.NaT
    return [label]


DEFECTS = {
    "negative_price": (_negative_close, "expect_column_values_to_be_between", "close"),
    "null_close": (_null_close, "expect_column_values_to_not_be_null", "close"),
    "negative_volume": (_negative_volume, "expect_column_values_to_be_between", "volume"),
    "duplicate_symbol_timestamp": (_duplicate_key, "expect_compound_columns_to_be_unique", "symbol,timestamp"),
    "null_timestamp": (_null_timestamp, "expect_column_values_to_not_be_null", "timestamp"),
}


def test_clean_frame_passes(clean_frame, clean_report):
    assert clean_report.success
    assert all(check.success for check in clean_report.checks)
    assert clean_report.rows_in == clean_report.rows_clean == len(clean_frame)
    assert clean_report.rows_quarantined == 0
    pd.testing.assert_frame_equal(clean_report.clean, clean_frame)
    checked = {(c.expectation, c.column) for c in clean_report.checks}
    assert ("expect_column_values_to_be_between", "close") in checked
    assert ("expect_compound_columns_to_be_unique", "symbol,timestamp") in checked
    assert clean_report.gx_result["success"] is True


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_fails_its_check_and_quarantines_its_rows(clean_frame, defect):
    mutate, expectation, column = DEFECTS[defect]
    frame = clean_frame.copy()
    bad = mutate(frame)
    report = validate_frame(frame, "unit")

    assert not report.success
    failed = [(c.expectation, c.column) for c in report.checks if not c.success]
    assert failed == [(expectation, column)]
    failing = next(c for c in report.checks if not c.success)
    assert failing.unexpected_count == len(bad)

    assert sorted(report.quarantined["source_row"]) == sorted(bad)
    assert (report.quarantined["reason"] == f"{expectation}({column})").all()
    assert report.rows_clean + report.rows_quarantined == report.rows_in == len(frame)
    assert not set(bad) & set(report.clean.index)
    assert set(report.clean.index) | set(report.quarantined["source_row"]) == set(frame.index)
    # The quarantined rows are the offending rows themselves, not their neighbours.
    pd.testing.assert_frame_equal(
        report.quarantined.set_index("source_row").drop(columns="reason").sort_index(),
        frame.loc[sorted(bad)].rename_axis("source_row"),
    )


def test_several_defects_on_one_row_give_one_quarantined_row_with_every_reason(clean_frame):
    frame = clean_frame.copy()
    label = _row(frame, "SYM1", 3)
    frame.loc[label, ["close", "volume"]] = [-2.0, -3.0]
    other = _null_close(frame)
    report = validate_frame(frame, "unit")
    assert report.rows_quarantined == 2
    assert report.rows_clean + report.rows_quarantined == report.rows_in
    reason = report.quarantined.set_index("source_row").loc[label, "reason"]
    assert "expect_column_values_to_be_between(close)" in reason
    assert "expect_column_values_to_be_between(volume)" in reason
    assert other[0] in set(report.quarantined["source_row"])


def test_summary_and_markdown_name_the_failures(clean_frame):
    frame = clean_frame.copy()
    _negative_volume(frame)
    report = validate_frame(frame, "unit")
    summary = report.summary()
    assert "rows in 60, clean 59, quarantined 1" in summary
    assert "expect_column_values_to_be_between on 'volume': 1 rows" in summary
    assert "**FAIL**" in report.markdown() and "`expect_column_values_to_be_between` | volume" in report.markdown()


# --- policies --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dirty_report(clean_frame) -> tuple[ValidationReport, list[int]]:
    frame = clean_frame.copy()
    bad = _negative_close(frame) + _negative_volume(frame)
    return validate_frame(frame, "unit"), bad


def test_policy_fail_raises_with_the_summary(dirty_report):
    report, _ = dirty_report
    with pytest.raises(ValidationFailed) as info:
        enforce_contract(report, ContractConfig(on_violation="fail", min_rows_per_symbol=1), "prices.csv")
    message = str(info.value)
    assert message.startswith("prices.csv: data contract failed")
    assert report.summary() in message
    assert info.value.report is report


def test_policy_quarantine_returns_only_the_clean_rows(dirty_report, clean_frame):
    report, bad = dirty_report
    clean = enforce_contract(report, ContractConfig(on_violation="quarantine", min_rows_per_symbol=10), "prices.csv")
    assert len(clean) == len(clean_frame) - len(bad)
    assert not set(bad) & set(clean.index)
    pd.testing.assert_frame_equal(clean, clean_frame.drop(index=bad))


def test_clean_report_passes_the_fail_policy(clean_report, clean_frame):
    clean = enforce_contract(clean_report, ContractConfig(on_violation="fail", min_rows_per_symbol=ROWS_PER_SYMBOL), "x")
    assert len(clean) == len(clean_frame)


def test_too_few_rows_per_symbol(clean_report):
    contract = ContractConfig(min_rows_per_symbol=ROWS_PER_SYMBOL + 1)
    with pytest.raises(InsufficientDataError, match=f"need {ROWS_PER_SYMBOL + 1}") as info:
        enforce_contract(clean_report, contract, "prices.csv")
    assert f"SYM0: {ROWS_PER_SYMBOL}" in str(info.value) and f"SYM1: {ROWS_PER_SYMBOL}" in str(info.value)


def test_quarantine_that_leaves_a_symbol_short_names_only_that_symbol(dirty_report):
    report, _ = dirty_report  # one bad row in SYM0, one in SYM1
    frame = report.clean
    short = ContractConfig(on_violation="quarantine", min_rows_per_symbol=ROWS_PER_SYMBOL)
    with pytest.raises(InsufficientDataError) as info:
        enforce_contract(report, short, "prices.csv")
    assert f"SYM0: {ROWS_PER_SYMBOL - 1}" in str(info.value)
    assert len(frame) == 2 * ROWS_PER_SYMBOL - 2


def test_missing_required_column_fails_even_under_quarantine(clean_frame):
    report = validate_frame(clean_frame.drop(columns="timestamp"), "unit")
    assert not report.success
    assert ("expect_column_to_exist", "timestamp") in [(c.expectation, c.column) for c in report.checks if not c.success]
    with pytest.raises(ValidationFailed, match="expect_column_to_exist on 'timestamp'"):
        enforce_contract(report, ContractConfig(on_violation="quarantine", min_rows_per_symbol=1), "prices.csv")


def test_checks_that_error_on_a_missing_column_carry_the_error_message(clean_frame):
    """contracts.validate_frame puts GX's exception message into ``examples`` when a check cannot run."""
    report = validate_frame(clean_frame.drop(columns="timestamp"), "unit")
    errored = [c for c in report.checks if c.expectation == "expect_column_values_to_not_be_null" and c.column == "timestamp"]
    assert len(errored) == 1 and not errored[0].success
    assert errored[0].examples, "the check that could not run says nothing about why"
    assert "timestamp" in errored[0].examples[0]
