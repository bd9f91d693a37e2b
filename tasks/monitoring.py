"""Drift monitoring against the champion's stored reference, and the retrain cooldown."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger

from driftline import tags as tagkeys
from driftline.adapters import registry
from driftline.config import PipelineConfig, Settings
from driftline.drift import (
    DriftSummary,
    ReferenceProfile,
    evidently_agreement,
    evidently_report,
    evidently_thresholds,
    measure_drift,
    retrain_allowed,
)
from driftline.errors import DriftlineError
from driftline.ingest import LoadedData, load_data
from driftline.model_registry import ModelRegistry
from driftline.scoring import ModelRef
from driftline.sizing import AUTOMATIC_SIZES, retrain_config_yaml
from driftline.sources import private_dir, private_file
from driftline.timeline import (
    JudgedWindow,
    as_source_columns,
    combine_frames,
    parse_time_bound,
    same_source,
    select_window,
)
from tasks._task import driftline_task
from tasks.promotion import CUTOFF_TAG
from tasks.tracking import REFERENCE_PROFILE, REFERENCE_SAMPLE

LAST_RETRAIN_TAG = tagkeys.LAST_RETRAIN


@driftline_task("load-reference", retries=2)
def load_reference_task(store: registry.MlflowStore, ref: ModelRef) -> tuple[ReferenceProfile, pd.DataFrame]:
    """The drift reference stored with the champion at training time."""
    profile = ReferenceProfile.from_dict(store.load_run_dict(ref.run_id, REFERENCE_PROFILE))
    return profile, store.load_run_frame(ref.run_id, REFERENCE_SAMPLE)


@driftline_task("resolve-monitored-version", retries=2)
def resolve_monitored_task(
    store: registry.MlflowStore, model_name: str, hint: str = ""
) -> tuple[ModelRef, str | None, str | None]:
    """The champion, else the newest registered version (and a note saying so); with its training cutoff."""
    try:
        version, note, tags = store.models().monitored(model_name)
    except DriftlineError as exc:
        raise DriftlineError(f"{exc}{hint}") from None
    return ModelRef(model_name, version, tags.get(tagkeys.RUN_ID, "")), note, tags.get(CUTOFF_TAG)


@driftline_task("select-window")
def select_window_task(
    rows: pd.DataFrame, since: str | None, until: str | None, cutoff: str | None, version: str, zone: str | None = None
) -> JudgedWindow:
    """Which of the scoreable rows are judged; the earlier ones only served as feature history."""
    return select_window(rows["timestamp"], since, until, cutoff, f"v{version}", zone)


@driftline_task("retrain-source", retries=2)
def retrain_source_task(
    settings: Settings, champion_config: PipelineConfig, monitored: LoadedData, until: str | None, model_name: str
) -> dict:
    """What a retrain trains on: the monitored source itself when it is the champion's source, else the
    champion's source plus the monitored rows (newest wins), staged as one Parquet file under the home."""
    recorded = champion_config.data.path
    if same_source(recorded, monitored.source):
        return {
            "data": recorded,
            "path": recorded,
            "sources": [monitored.source],
            "rows": {"total": len(monitored.frame)},
            "combined": False,
        }
    existing = load_data(
        champion_config.data,
        need_target=champion_config.target.needs_label,
        stage_root=settings.ingest_dir,
        for_model=True,
    )
    end = parse_time_bound(until, "--until", monitored.shown_zone(champion_config.data))
    combined = combine_frames(existing.frame, monitored.frame, existing.source, monitored.source, end)
    frame = as_source_columns(combined.frame, existing.columns)
    # Keyed on what shapes the file: a label written back by its class names (ColumnMap.classes) is not the 0/1
    # an older file of the same sources holds (read again with positive_label 0, those flipped).
    shape = f"{existing.content_hash}|{monitored.content_hash}|{until}|{existing.columns.classes}"
    key = hashlib.sha256(shape.encode()).hexdigest()[:16]
    path = settings.timeline_dir / model_name / f"combined-{key}.parquet"
    if not path.exists():
        private_dir(path.parent)
        partial = path.with_suffix(".partial")
        frame.to_parquet(partial, index=False)
        private_file(partial).replace(path)  # a reader never sees half a file
    return {"data": str(path), **combined.describe(str(path)), "combined": True}


@driftline_task("start-monitoring", retries=2)
def start_monitoring_task(store: registry.MlflowStore, ref: ModelRef, source: str, flow_run_id: str) -> str:
    """A monitoring run in the model's experiment."""
    experiment_id = store.ensure_experiment(ref.name)
    tags = {
        tagkeys.KIND: "monitor",
        tagkeys.CHAMPION_VERSION: ref.version,
        tagkeys.SOURCE: source,
        "prefect.flow_run_id": flow_run_id,
    }
    return store.start_run(experiment_id, f"monitor-{ref.name}", tags)


@driftline_task("measure-drift")
def measure_drift_task(
    profile: ReferenceProfile, rows: pd.DataFrame, scores: pd.DataFrame, config: PipelineConfig
) -> DriftSummary:
    """Per-feature, prediction and (with labels) performance drift, and the verdict."""
    labelled = rows["y"].notna().to_numpy() if "y" in rows.columns else None
    probability = scores["probability"].to_numpy()
    return measure_drift(
        profile,
        rows,
        probability,
        config.drift,
        times=rows["timestamp"] if "timestamp" in rows.columns else None,
        y=None if labelled is None else rows.loc[labelled, "y"].to_numpy(dtype=int),
        labelled_scores=None if labelled is None else probability[labelled],
    )


@driftline_task("drift-report", retries=1)
def report_task(
    store: registry.MlflowStore,
    run_id: str,
    reference: pd.DataFrame,
    rows: pd.DataFrame,
    scores: pd.DataFrame,
    summary: DriftSummary,
    config: PipelineConfig,
    out_dir: Path,
) -> str:
    """Evidently report on capped samples (per-column PSI against our thresholds), saved as HTML and JSON and
    logged to MLflow with its per-column agreement with our verdicts; returns its URI."""
    current = rows[[c for c in reference.columns if c in rows.columns and c not in ("probability", "y")]].copy()
    current["probability"] = scores["probability"].to_numpy()
    if "y" in rows.columns:
        current["y"] = rows["y"].to_numpy()
    html, data = evidently_report(
        reference, current, config.drift.report_sample, out_dir, evidently_thresholds(summary)
    )
    agreement = evidently_agreement(summary, json.loads(Path(data).read_text()))
    store.log_dict(run_id, summary.to_dict(), "drift/summary.json")
    store.log_dict(run_id, agreement, "drift/evidently_agreement.json")
    metrics = {"drift_share": summary.drift_share, "drift_detected": float(summary.drift_detected)}
    store.log_metrics(
        run_id, metrics | ({"evidently_agreement": agreement["share"]} if agreement["share"] is not None else {})
    )
    store.log_file(run_id, data, "drift")
    return store.log_file(run_id, html, "drift")


@driftline_task("retrain-cooldown")
def cooldown_task(store: registry.MlflowStore, model_name: str, min_hours: float, trigger: str) -> tuple[bool, str]:
    """Whether a retrain may start now (a skip is recorded on the registered model). The cooldown runs from
    the last retrain that finished (``record_retrain_task``). A retrain that failed holds back the next for a
    quarter of an hour, doubling with each failure in a row up to the cooldown (``record_retrain_failure_task``,
    ``driftline.drift.retry_wait_hours``): not for the whole cooldown, which would skip retrains for hours after
    the cause was fixed, and not for nothing, which would start a doomed training at every drift event."""
    aliases = store.models()
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    exists = store.registered_model_exists(model_name)
    last = aliases.model_tag(model_name, LAST_RETRAIN_TAG) if exists else None
    allowed, why = retrain_allowed(last, now, min_hours, _failures(aliases, model_name) if exists else None)
    if not allowed and exists:
        key = tagkeys.RETRAIN_SKIPPED_PREFIX + now.strftime("%Y%m%dT%H%M%S.%f")
        aliases.set_model_tag(model_name, key, f"{why}; trigger: {trigger}"[:5000])
    return allowed, why


def _failures(aliases: ModelRegistry, model_name: str) -> dict[str, Any] | None:
    raw = aliases.model_tag(model_name, tagkeys.RETRAIN_FAILED)
    try:
        record = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


@driftline_task("record-retrain", retries=2)
def record_retrain_task(store: registry.MlflowStore, model_name: str) -> None:
    """A retrain finished (whatever its decision): the cooldown starts now, and no failure is held against it."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    aliases = store.models()
    aliases.set_model_tag(model_name, LAST_RETRAIN_TAG, now.isoformat())
    if (_failures(aliases, model_name) or {}).get("count"):
        aliases.set_model_tag(model_name, tagkeys.RETRAIN_FAILED, json.dumps({"count": 0}))


@driftline_task("record-retrain-failure")
def record_retrain_failure_task(store: registry.MlflowStore, model_name: str, error: str) -> int:
    """A retrain failed: counted (in a row, since the last that finished) so that the next waits; returns the
    count, 0 when nothing was recorded: the model is not registered (nothing monitors it), or the registry could
    not take the record (often the failure's cause), which only leaves a warning: the retrain's own error is the
    one its flow run fails with."""
    try:
        if not store.registered_model_exists(model_name):
            return 0
        aliases = store.models()
        count = int((_failures(aliases, model_name) or {}).get("count", 0)) + 1
        now = pd.Timestamp.now(tz="UTC").tz_localize(None)
        aliases.set_model_tag(
            model_name,
            tagkeys.RETRAIN_FAILED,
            json.dumps({"count": count, "at": now.isoformat(), "error": error[:300]}),
        )
    except Exception as exc:  # noqa: BLE001 - see above
        get_run_logger().warning(
            "the failed retrain of %s was not recorded: %s: %s", model_name, type(exc).__name__, exc
        )
        return 0
    return count


@driftline_task("retrain-basis", retries=2)
def retrain_basis_task(store: registry.MlflowStore, model_name: str) -> ModelRef | None:
    """The version whose config a retrain starts from: the champion, else the newest version (the one a
    monitor watches without a champion: a first model its training rejected); None when none is registered."""
    try:
        version, _, tags = store.models().monitored(model_name)
    except DriftlineError:  # nothing registered under the name: the retrain starts from the defaults
        return None
    return ModelRef(model_name, version, tags.get(tagkeys.RUN_ID, ""))


@driftline_task("version-config-file", retries=2)
def version_config_file_task(store: registry.MlflowStore, ref: ModelRef, home: Path) -> str:
    """A registered version's own pipeline config, written where a retrain can read it, without the sizes the
    pipeline chose from that version's data (``retrain_config_yaml``): the retrain sizes them again."""
    path = home / "configs" / f"{ref.name}-v{ref.version}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        retrain_config_yaml(
            store.load_run_text(ref.run_id, "config/pipeline.yaml"), _automatic_sizes(store, ref.run_id)
        )
    )
    return str(path)


def _automatic_sizes(store: registry.MlflowStore, run_id: str) -> list[str]:
    try:
        return list(store.load_run_dict(run_id, AUTOMATIC_SIZES)["automatic"])
    except Exception:  # noqa: BLE001 - a version trained before it was recorded: the sizes it lowered were surely automatic
        try:
            return list(store.load_run_dict(run_id, "config/adjusted.json"))
        except Exception:  # noqa: BLE001 - nothing lowered either: every recorded size stays
            return []
