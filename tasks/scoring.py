"""Batch scoring with the registered champion (and, in shadow mode, the challenger)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from driftline import tags as tagkeys
from driftline.adapters import registry
from driftline.config import PipelineConfig, config_from_yaml
from driftline.errors import DriftlineError
from driftline.explain import check_top_k, explain_model, top_contributions
from driftline.features import feature_table, scoring_rows
from driftline.ingest import LoadedData
from driftline.pipeline import validate_loaded
from driftline.promotion import Decision
from driftline.scoring import (
    ModelRef,
    append_prediction_log,
    assemble_predictions,
    batch_metrics,
    compare_shadow,
    keyed_scores,
    last_scored,
    newest_pair,
    no_champion_to_score,
    read_prediction_log,
    rows_in_range,
    scoring_contract,
    with_explanations,
    write_table,
)
from tasks._task import driftline_task


def _ref(store: registry.MlflowStore, name: str, alias: str) -> ModelRef | None:
    aliases = store.models()
    version = aliases.alias_version(name, alias)
    if version is None:
        return None
    return ModelRef(name, version, aliases.version_tags(name, version).get(tagkeys.RUN_ID, ""))


@driftline_task("resolve-models", retries=2)
def resolve_models_task(store: registry.MlflowStore, model_name: str, shadow: bool) -> tuple[ModelRef, ModelRef | None]:
    """The champion, and the challenger when scoring in shadow mode."""
    aliases = store.models()
    aliases.require(model_name)
    champion = _ref(store, model_name, "champion")
    if champion is None:
        versions = [str(v.version) for v in aliases.versions(model_name)]
        newest = max(versions, key=int) if versions else None
        tags = aliases.version_tags(model_name, newest) if newest else {}
        raise DriftlineError(
            no_champion_to_score(model_name, newest, tags.get(tagkeys.DECISION), tags.get(tagkeys.REASONS))
        )
    challenger = _ref(store, model_name, "challenger") if shadow else None
    if shadow and (challenger is None or challenger.version == champion.version):
        raise DriftlineError(
            f"{model_name}: shadow scoring needs a challenger that is not the champion (v{champion.version})"
        )
    return champion, challenger


@driftline_task("training-config", retries=2)
def training_config_task(
    store: registry.MlflowStore, ref: ModelRef, overrides: dict[str, str | None]
) -> PipelineConfig:
    """The config the champion was trained with, pointed at the new data."""
    return config_from_yaml(store.load_run_text(ref.run_id, "config/pipeline.yaml"), f"{ref.uri} config", overrides)


@driftline_task("scoring-rows")
def scoring_rows_task(
    store: registry.MlflowStore, loaded: LoadedData, config: PipelineConfig, ref: ModelRef
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with enough history to score; rows without it (or breaking the contract), with the reason."""
    report = validate_loaded(loaded, scoring_contract(config.contract), config.model_name)
    rows, lacking = scoring_rows(report.clean, config.features, config.target, store.model_feature_names(ref.uri))
    broken = report.quarantined[["symbol", "timestamp", "reason"]]
    return rows, pd.concat([broken, lacking], ignore_index=True)


@driftline_task("select-rows")
def select_rows_task(
    rows: pd.DataFrame,
    skipped: pd.DataFrame,
    since: pd.Timestamp | None,
    log_dir: Path | None,
    floor: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The rows of the requested range (>= since; with a log dir only unlogged ones, and for a symbol with
    nothing logged yet only those after ``floor``, the model's training cutoff), its skipped rows, and the
    symbols that started from ``floor``."""
    after = last_scored(log_dir) if log_dir is not None else None
    unlogged = sorted(set(rows["symbol"]) - set(after.index)) if after is not None and floor is not None else []
    return rows_in_range(rows, since, after, floor), rows_in_range(skipped, since, after, floor), unlogged


@driftline_task("training-cutoff", retries=2)
def training_cutoff_task(store: registry.MlflowStore, ref: ModelRef) -> pd.Timestamp | None:
    """The last timestamp ``ref`` was trained on (None when its training did not record one)."""
    return _cutoff(store, ref.name, ref.version)


def _cutoff(store: registry.MlflowStore, model_name: str, version: str) -> pd.Timestamp | None:
    cutoff = store.models().version_tags(model_name, version).get(tagkeys.TRAIN_CUTOFF)
    return pd.Timestamp(cutoff) if cutoff else None


@driftline_task("score", retries=1)
def score_task(store: registry.MlflowStore, rows: pd.DataFrame, ref: ModelRef, keyed: bool = False) -> pd.DataFrame:
    """Calibrated probability and decision from the registered pyfunc model (nothing to score: no rows);
    ``keyed``: beside each row's symbol and timestamp (``keyed_scores``)."""
    if rows.empty:
        scores = pd.DataFrame({"probability": pd.Series(dtype=float), "prediction": pd.Series(dtype=int)})
    else:
        scores = store.predict_pyfunc(ref.uri, rows)
    return keyed_scores(rows, scores) if keyed else scores


@driftline_task("explain-scores", retries=1)
def explain_task(store: registry.MlflowStore, rows: pd.DataFrame, ref: ModelRef, k: int) -> pd.DataFrame:
    """Each row's top-``k`` SHAP contributions to the registered version's base model (driftline.explain)."""
    model = store.load_estimator(ref.uri)
    check_top_k(k, len(model.feature_names_in_))
    return top_contributions(explain_model(model, rows), k)


@driftline_task("log-scoring-batch", retries=2)
def log_scoring_batch_task(
    store: registry.MlflowStore,
    ref: ModelRef,
    rows: pd.DataFrame,
    scores: pd.DataFrame,
    source: str,
    since: pd.Timestamp | None,
    new_rows_only: bool,
    batch_id: str,
) -> dict:
    """A run in the model's experiment per scored batch: rows, mean probability, the champion version."""
    metrics = batch_metrics(
        rows[["symbol"]].assign(probability=scores["probability"].to_numpy(), decision=scores["prediction"].to_numpy())
    )
    experiment_id = store.ensure_experiment(ref.name)
    tags = {
        tagkeys.KIND: "score",
        tagkeys.CHAMPION_VERSION: ref.version,
        tagkeys.SOURCE: source,
        "prefect.flow_run_id": batch_id,
    }
    run_id = store.start_run(experiment_id, f"score-{ref.name}", tags)
    store.log_params(
        run_id,
        {
            "model_version": ref.version,
            "since": since.isoformat() if since is not None else "",
            "new_rows_only": new_rows_only,
            "first_timestamp": str(rows["timestamp"].min()) if len(rows) else "",
            "last_timestamp": str(rows["timestamp"].max()) if len(rows) else "",
        },
    )
    store.log_metrics(run_id, metrics)
    store.finish_run(run_id)
    return {"run_id": run_id, "metrics": metrics}


@driftline_task("write-predictions", retries=2)
def write_predictions_task(
    rows: pd.DataFrame,
    champion: ModelRef,
    scores: pd.DataFrame,
    challenger: ModelRef | None,
    challenger_scores: pd.DataFrame | None,
    skipped: pd.DataFrame,
    out: Path,
    log_dir: Path,
    batch_id: str,
    explanations: pd.DataFrame | None = None,
    zone: str | None = None,
) -> dict[str, str]:
    """The output file (with the explanation columns, when asked for; times in ``zone`` when the rows came in
    its clock times), the skipped-rows file, and a new batch in the prediction log (UTC; none when empty;
    without explanations)."""
    predictions = assemble_predictions(rows, champion, scores, challenger, challenger_scores)
    write_table(with_explanations(predictions, explanations), out, zone)
    skipped_file = out.with_name(out.name.split(".")[0] + ".skipped.csv")
    write_table(skipped, skipped_file, zone)
    log_file = append_prediction_log(predictions, log_dir, batch_id) if len(predictions) else None
    return {"out": str(out), "skipped_file": str(skipped_file), "log_file": str(log_file) if log_file else None}


@driftline_task("realised-labels")
def realised_labels_task(config: PipelineConfig, loaded: LoadedData) -> pd.DataFrame:
    """Targets as they turned out, per symbol and timestamp."""
    table, _ = feature_table(loaded.frame, config.features, config.target)
    return table[[c for c in ("symbol", "timestamp", "y", "next_return") if c in table.columns]]


@driftline_task("compare-shadow")
def compare_shadow_task(
    store: registry.MlflowStore, model_name: str, log_dir: Path, labels: pd.DataFrame, config: PipelineConfig
) -> Decision:
    """Champion vs challenger shadow predictions, judged by the promotion rules on realised labels, on the rows
    after both versions' training cutoffs."""
    log = read_prediction_log(log_dir)
    cutoffs = {version: _cutoff(store, model_name, version) for version in newest_pair(log) or ()}
    return compare_shadow(log, labels, config.decision_spec, cutoffs)
