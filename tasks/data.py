"""Ingestion and validation tasks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect.artifacts import create_markdown_artifact

from driftline.adapters import registry
from driftline.config import ContractConfig, DataConfig
from driftline.contracts import ValidationReport, enforce_contract
from driftline.ingest import LoadedData, load_data, load_staged, stage_data
from driftline.pipeline import validate_loaded
from driftline.sources import StagedSource, private_dir, private_file
from tasks._task import driftline_task


@driftline_task("load-data", io=True)
def load_data_task(data: DataConfig, need_target: bool, stage_root: Path | None = None) -> LoadedData:
    """Stage the source (only new or changed objects are read), detect columns, normalise: rows for a trained
    model (score, compare, monitor)."""
    return load_data(data, need_target=need_target, stage_root=stage_root, for_model=True)


@driftline_task("stage-data", io=True)
def stage_data_task(data: DataConfig, stage_root: Path) -> StagedSource:
    """Bring new or changed files/objects into the stage; the result's hash names the input."""
    return stage_data(data, stage_root)


@driftline_task("read-data")
def read_data_task(data: DataConfig, staged: StagedSource, need_target: bool) -> LoadedData:
    """Detect columns, read only those from the stage, normalise."""
    return load_staged(data, staged, need_target)


@driftline_task("check-contract")
def check_contract_task(loaded: LoadedData, contract: ContractConfig, suite_name: str) -> ValidationReport:
    """Run the contract's GX suite on the canonical frame."""
    return validate_loaded(loaded, contract, suite_name)


@driftline_task("record-validation", io=True)
def record_validation_task(
    store: registry.MlflowStore,
    loaded: LoadedData,
    report: ValidationReport,
    contract: ContractConfig,
    run_id: str,
    quarantine_dir: Path,
) -> tuple[pd.DataFrame, str | None]:
    """Persist what the contract found (GX JSON, counts, quarantine file), then apply its policy (may raise).

    Returns:
        The rows that may be trained on and the quarantine file's path (None when nothing was set aside).
    """
    store.log_dict(run_id, report.gx_result, "validation/gx_result.json")
    store.log_metrics(
        run_id,
        {"rows_in": report.rows_in, "rows_clean": report.rows_clean, "rows_quarantined": report.rows_quarantined},
    )
    quarantine_path = None
    if report.rows_quarantined:
        rows = loaded.source_rows(report.quarantined["source_row"]).assign(
            reason=report.quarantined["reason"].to_numpy()
        )
        rows = rows.reset_index(names="source_row").astype(str)
        private_dir(quarantine_dir)
        quarantine_path = str(quarantine_dir / "rows.parquet")
        rows.to_parquet(quarantine_path, index=False)
        private_file(Path(quarantine_path))
        store.log_frame(run_id, rows, "validation/quarantine.parquet")
    create_markdown_artifact(report.markdown(), key="data-contract", description=f"GX contract on {loaded.source}")
    return enforce_contract(report, contract, loaded.source), quarantine_path
