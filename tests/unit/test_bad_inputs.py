"""Every bad input through the core, as the training flow runs it: load, contract, policy, features.

The cases and what each must produce live in ``tests/data/bad_inputs.py``; the same cases run end to end
(flow, registry, CLI) in ``tests/integration/test_bad_inputs.py``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from driftline.config import ContractConfig, DataConfig
from driftline.contracts import enforce_contract, validate_frame
from driftline.errors import DataError
from driftline.features import FeatureSet, Where, build_features
from driftline.ingest import LoadedData, load_data
from tests.data.bad_inputs import CASES, COVERED_ELSEWHERE, FLOW_CASES, Case, feature_config, file_named, target_config

SUITE = "driftline-bad-inputs"


@dataclass
class CoreRun:
    """How far a case got through the core, and what each step returned."""

    loaded: LoadedData | None = None
    report: Any = None
    clean: pd.DataFrame | None = None
    features: FeatureSet | None = None
    warnings: list[str] = field(default_factory=list)


def source_values(loaded: LoadedData) -> dict[str, pd.Series]:
    """The untouched source values of the checked columns, as the flow's contract task passes them.

    With the time column too: without it an unparseable date is reported as "timestamp: missing".
    """
    values = {canonical: loaded.raw[original] for canonical, original in loaded.columns.prices.items()}
    values["timestamp"] = loaded.raw[loaded.columns.time]
    if loaded.columns.target is not None:
        values["target"] = loaded.raw[loaded.columns.target]
    return values


def run_core(case: Case, data: Path, run: CoreRun) -> CoreRun:
    """load → contract → policy → features, with the default contract; fills ``run`` as it goes."""
    contract = ContractConfig()
    run.loaded = load_data(DataConfig(path=str(data), target_col=case.target_col), need_target=case.need_target)
    run.report = validate_frame(
        run.loaded.frame,
        contract,
        SUITE,
        source_values=source_values(run.loaded),
        source=run.loaded.source,
        locate=run.loaded.locate,
    )
    run.clean = enforce_contract(run.report, contract, run.loaded.source)
    run.features = build_features(
        run.clean,
        feature_config(),
        target_config(case.target),
        Where(run.loaded.source, run.loaded.columns.target),
    )
    return run


def _assert_counts_add_up(run: CoreRun) -> None:
    if run.report is None:
        return
    report = run.report
    assert report.rows_in == report.rows_clean + report.rows_quarantined == len(run.loaded.frame)
    assert set(report.quarantined["source_row"]).isdisjoint(report.clean.index)


def _warnings(run: CoreRun, caplog: pytest.LogCaptureFixture) -> list[str]:
    from_report = [str(w) for w in getattr(run.report, "warnings", []) or []]
    return from_report + [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case: Case, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = case.build(tmp_path / "data")
    run = CoreRun()
    caplog.set_level(logging.WARNING, logger="driftline")

    if case.error is not None:
        kind, pattern = case.error
        with pytest.raises(DataError) as info:
            run_core(case, data, run)
        message = str(info.value)
        assert isinstance(info.value, kind), f"{type(info.value).__name__}: {message}"
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
        assert file_named(case, data) in message, message
        assert "Traceback" not in message
        _assert_counts_add_up(run)
        return

    run_core(case, data, run)
    _assert_counts_add_up(run)
    report = run.report
    if case.quarantine is not None:
        expected = case.expected_rows(data)
        quarantined = report.quarantined
        assert set(quarantined["source_row"].astype(int)) == expected
        assert not expected & set(run.clean.index)
        pattern = case.quarantine[1]
        for reason in quarantined["reason"]:
            assert re.search(pattern, str(reason)), f"{pattern!r} not in reason {reason!r}"
        # The quarantined rows can be traced to the file: the raw row at each position is the bad one.
        assert len(run.loaded.source_rows(quarantined["source_row"])) == len(expected)
    else:
        assert report.rows_quarantined == 0, report.quarantined[["source_row", "reason"]].head().to_dict("records")
        assert len(run.clean) == len(run.loaded.frame)
    if case.warning is not None:
        found = _warnings(run, caplog)
        assert any(re.search(case.warning, w) for w in found), f"{case.warning!r} not in {found}"
    for name in case.dropped_features:
        assert name not in run.features.feature_names
    if case.check is not None:
        case.check(run.loaded.frame)
    assert len(run.features.X) > 0


def test_the_suite_covers_the_issue() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 25
    assert {c.outcome for c in CASES} == {"error", "quarantine", "ok"}
    # End to end: every error case, and at most five quarantine/ok cases.
    assert {c.name for c in CASES if c.error} <= {c.name for c in FLOW_CASES}
    assert len([c for c in FLOW_CASES if not c.error]) <= 5
    assert set(COVERED_ELSEWHERE) == {"s3_access_denied", "s3_missing_key", "s3_unreachable"}


# --- gaps found by this suite outside its own files, now fixed -----------------------------------------------------


def test_a_bad_first_date_does_not_change_how_the_other_dates_parse() -> None:
    from driftline.ingest import parse_timestamps

    parsed = parse_timestamps(pd.Series(["not a date", "02/01/2015", "13/01/2015"]))
    assert parsed.isna().tolist() == [True, False, False]
    # One format for the column: both day-first (2 Jan, 13 Jan), never 1 Feb next to 13 Jan.
    assert parsed.iloc[1].month == parsed.iloc[2].month == 1


def test_data_older_than_the_champion_keeps_the_champion_instead_of_crashing(canonical) -> None:
    from driftline.calibration import CalibratedModel
    from driftline.config import DecisionSpec, ModelsConfig
    from driftline.evaluation import ChampionModel, evaluate_challenger, holdout_split, scorer
    from driftline.models import make_estimator
    from driftline.synthetic import make_labelled_series

    frame = canonical(make_labelled_series(n_rows=600, seed=3), DataConfig(target_col="y"), need_target=True)
    features = build_features(frame, feature_config(), target_config("label"))
    development, holdout = holdout_split(features, 200, 5)
    model = CalibratedModel(make_estimator("logreg", ModelsConfig()), method="sigmoid").fit(
        development.X, development.y
    )
    champion = ChampionModel("1", pd.Timestamp("2100-01-01"), scorer(model))  # trained on later data

    decision = evaluate_challenger(holdout, scorer(model), champion, 0.5, DecisionSpec(block_length=10, gap=5))
    assert not decision.promote
