"""Ingestion and validation tasks."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact

from driftline import registry
from tasks import retry_transient
from driftline.config import DataConfig
from driftline.config import ContractConfig
from driftline.contracts import ValidationReport, enforce_contract, validate_frame
from driftline.ingest import LoadedData, load_data


@task(name="load-data", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_transient)
def load_data_task(data: DataConfig, need_target: bool) -> LoadedData:
    """Read the source and normalise its columns."""
    return load_data(data, need_target=need_target)


@task(name="validate-data")
def validate_data_task(
    loaded: LoadedData, contract: ContractConfig, suite_name: str, run_id: str, quarantine_dir: Path
) -> ValidationReport:
    """Run the GX contract, persist what it found, then apply the contract's policy (may raise)."""
    report = validate_frame(loaded.frame, suite_name)
    registry.log_dict(run_id, report.gx_result, "validation/gx_result.json")
    registry.log_metrics(run_id, {"rows_in": report.rows_in, "rows_clean": report.rows_clean, "rows_quarantined": report.rows_quarantined})
    if report.rows_quarantined:
        quarantine_dir.mkdir(parents=True, exist_ok=True)
        rows = loaded.raw.loc[report.quarantined["source_row"]].assign(reason=report.quarantined["reason"].to_numpy())
        rows.astype(str).to_parquet(quarantine_dir / "rows.parquet")
        registry.log_frame(run_id, rows.astype(str), "validation/quarantine.parquet")
    create_markdown_artifact(report.markdown(), key="data-contract", description=f"GX contract on {loaded.source}")
    enforce_contract(report, contract, loaded.source)
    return report
