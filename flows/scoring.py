"""Flows ``score-batch`` (champion, optionally the challenger in shadow) and ``compare-shadow`` (the A/B test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, runtime

from driftline.adapters.registry import MlflowStore
from driftline.config import Settings, data_overrides, load_config, reading_overrides
from driftline.report import artifact_key, render_comparison, render_scoring
from driftline.scoring import lacking_summary
from driftline.timeline import parse_time_bound
from tasks.data import load_data_task
from tasks.outcome import publish
from tasks.scoring import (
    compare_shadow_task,
    explain_task,
    log_scoring_batch_task,
    realised_labels_task,
    resolve_models_task,
    score_task,
    scoring_rows_task,
    select_rows_task,
    training_config_task,
    training_cutoff_task,
    write_predictions_task,
)


def _model_name(name: str) -> str:
    return load_config(None, {"name": name}).model_name


@flow(name="score-batch")
def score_batch(
    data: str | None = None,
    out: str | None = None,
    name: str = "demo",
    shadow: bool = False,
    time_col: str | None = None,
    price_col: str | None = None,
    symbol_col: str | None = None,
    target_col: str | None = None,
    sets: dict[str, Any] | None = None,
    since: str | None = None,
    new_rows_only: bool = False,
    explain: int | None = None,
) -> dict[str, Any]:
    """Score the rows that have enough history with the champion; log the predictions and the batch.

    Args:
        data: CSV/Parquet file, folder or s3:// prefix of raw rows, with the history the features need;
            the champion's recorded source when omitted (the deployed loop's one source).
        out: output file (.csv or .parquet); by default under DRIFTLINE_HOME/scores/<model>/.
        name: pipeline name; scores with driftline-<name>@champion.
        shadow: also score with the challenger, side by side.
        time_col: time column, when detection is not enough.
        price_col: price (close) column.
        symbol_col: symbol column.
        target_col: label column (label-target models).
        sets: ``--set`` keys for reading the rows (data.*, contract.*: ``config.reading_overrides``).
        since: score only rows with timestamps >= this (a backfill); earlier rows are feature history.
        new_rows_only: score only rows later than the newest already in the model's prediction log
            (per symbol), or than the champion's training cutoff for a series with nothing logged yet:
            what the scheduled ``score`` deployment does every day.
        explain: add each row's top-K SHAP contributions (champion's base model) to the output file.
    """
    data = data or None  # a deployment form may send ""
    parse_time_bound(since)  # a bad bound fails before anything is read
    environment = Settings.from_env()
    store = MlflowStore.from_settings(environment)
    champion, challenger = resolve_models_task(store, _model_name(name), shadow)
    overrides = {
        **data_overrides(data, time_col, price_col, symbol_col, target_col),
        **reading_overrides(sets, "score"),
    }
    config = training_config_task(store, champion, overrides)
    loaded = load_data_task(config.data, need_target=config.target.needs_label, stage_root=environment.ingest_dir)
    zone = loaded.shown_zone(config.data)
    since_at = parse_time_bound(since, zone=zone)  # the rows' own clock, when they name one
    log_dir = environment.home / "predictions" / champion.name
    batch_id = str(runtime.flow_run.id)
    rows, skipped = scoring_rows_task(store, loaded, config, champion)
    cutoff = training_cutoff_task(store, champion) if new_rows_only else None
    rows, skipped, from_cutoff = select_rows_task(rows, skipped, since_at, log_dir if new_rows_only else None, cutoff)
    explanations = explain_task(store, rows, champion, explain) if explain is not None else None  # a bad K fails first
    scores = score_task(store, rows, champion)
    challenger_scores = None
    if challenger:
        # The shadow scores from its own training config and features, which need not be the champion's.
        shadow_rows, _ = scoring_rows_task(
            store, loaded, training_config_task(store, challenger, overrides), challenger
        )
        challenger_scores = score_task(store, shadow_rows, challenger, keyed=True)
    out_path = Path(out) if out else environment.home / "scores" / champion.name / f"{batch_id}.parquet"
    files = write_predictions_task(
        rows, champion, scores, challenger, challenger_scores, skipped, out_path, log_dir, batch_id, explanations,
        zone=zone,
    )  # fmt: skip
    batch = log_scoring_batch_task(
        store, champion, rows, scores, config.data.path or "the bundled demo panel", since_at, new_rows_only, batch_id
    )
    summary = {
        "model_name": champion.name,
        "model_version": champion.version,
        "challenger_version": challenger.version if challenger else None,
        "rows_in": len(loaded.frame),
        "rows_scored": len(rows),
        "rows_skipped": len(skipped),
        "skipped": lacking_summary(skipped),
        "since": since_at.isoformat() if since_at is not None else None,
        "new_rows_only": new_rows_only,
        # Series with nothing logged yet, scored from after the training cutoff (rows it learnt from are not new).
        "from_cutoff": {"cutoff": cutoff.isoformat(), "series": from_cutoff} if from_cutoff and cutoff else None,
        "explain": explain,
        "timezone": zone,  # the times above are UTC; the CLI shows them on this clock
        "mean_probability": batch["metrics"].get("mean_probability"),
        "tracking_run_id": batch["run_id"],
        **files,
    }
    publish(
        render_scoring(summary),
        f"Scored **{len(rows)}** of {len(loaded.frame)} rows with {champion.name} v{champion.version}"
        + (f" (shadow: v{challenger.version})" if challenger else "")
        + f"; {summary['skipped']}.",
        key=artifact_key("scores", name),
    )
    return summary


@flow(name="compare-shadow")
def compare_shadow_flow(
    data: str | None = None,
    name: str = "demo",
    time_col: str | None = None,
    price_col: str | None = None,
    symbol_col: str | None = None,
    target_col: str | None = None,
    sets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The A/B test: champion vs challenger shadow predictions on realised labels, same Decision rules.

    Args:
        data: raw rows covering the scored period and its horizon, so labels can be computed; the champion's
            recorded source when omitted (a source that grows keeps the labels of the rows it scored).
        name: pipeline name.
        time_col: time column.
        price_col: price (close) column.
        symbol_col: symbol column.
        target_col: label column (label-target models).
        sets: ``--set`` keys for reading the rows (data.*, contract.*: ``config.reading_overrides``).
    """
    data = data or None  # a deployment form may send ""
    environment = Settings.from_env()
    store = MlflowStore.from_settings(environment)
    champion, _ = resolve_models_task(store, _model_name(name), False)
    overrides = {
        **data_overrides(data, time_col, price_col, symbol_col, target_col),
        **reading_overrides(sets, "compare"),
    }
    config = training_config_task(store, champion, overrides)
    loaded = load_data_task(config.data, need_target=config.target.needs_label, stage_root=environment.ingest_dir)
    labels = realised_labels_task(config, loaded)
    decision = compare_shadow_task(
        store, champion.name, environment.home / "predictions" / champion.name, labels, config
    )
    result = {"model_name": champion.name, **decision.to_dict()}
    publish(
        render_comparison(result),
        decision.markdown(f"Shadow comparison {champion.name}"),
        key=artifact_key("shadow", name),
    )
    return result
