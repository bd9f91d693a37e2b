"""Evaluation against the champion and the transactional alias move."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger
from prefect.transactions import Transaction, get_transaction

from driftline import registry
from driftline.baselines import BaselineModel
from driftline.config import PipelineConfig, config_from_yaml
from driftline.evaluation import ChampionModel, check_scores, evaluate_challenger
from driftline.features import FeatureSet
from driftline.promotion import Decision, check_same_question
from driftline.training import WalkForwardResult
from tasks._task import driftline_task

CUTOFF_TAG = "driftline.train_cutoff"


def _champion(name: str, version: str | None) -> ChampionModel | None:
    if version is None:
        return None
    tags = registry.MlflowAliasRegistry().version_tags(name, version)
    cutoff = pd.Timestamp(tags[CUTOFF_TAG]) if CUTOFF_TAG in tags else None
    # Loaded lazily inside the scorer so a champion that cannot load is "not comparable", not a crash.
    return ChampionModel(version, cutoff, lambda X: registry.predict_pyfunc(f"models:/{name}/{version}", X))


@driftline_task("check-champion-question", io=True)
def check_champion_question_task(config: PipelineConfig) -> None:
    """Before any work: this run must predict what the model's champion predicts (same target and label)."""
    aliases = registry.MlflowAliasRegistry()
    champion = aliases.alias_version(config.model_name, "champion")
    if champion is None:
        return
    run_id = aliases.version_tags(config.model_name, champion).get("driftline.run_id")
    if not run_id:
        return  # registered outside Driftline: nothing recorded to compare with
    recorded = config_from_yaml(
        registry.load_run_text(run_id, "config/pipeline.yaml"), f"{config.model_name} v{champion} config"
    )
    check_same_question(config.model_name, champion, recorded, config)


@driftline_task("evaluate-challenger", retries=1)
def evaluate_task(
    holdout: FeatureSet,
    version: registry.RegisteredVersion,
    base_rate: float,
    config: PipelineConfig,
    baseline: BaselineModel | None = None,
    walk_forward: WalkForwardResult | None = None,
) -> tuple[Decision, str | None]:
    """Score the registered challenger and the champion (or, for a first model, the best baseline) on the
    same hold-out rows, then decide (the challenger's pooled walk-forward ECE is checked too)."""
    champion_version = registry.MlflowAliasRegistry().alias_version(version.name, "champion")
    decision = evaluate_challenger(
        holdout,
        lambda X: registry.predict_pyfunc(version.model_uri, X),
        _champion(version.name, champion_version),
        base_rate,
        config.promotion,
        config.metrics,
        config.gap,
        config.block_length,
        price_target=config.target.is_direction,
        baseline=baseline,
        walk_forward_ece=None if walk_forward is None else walk_forward.summary_metrics()["ece"],
    )
    return decision, champion_version


@driftline_task("record-decision")
def record_decision_task(run_id: str, version: registry.RegisteredVersion, decision: Decision) -> None:
    """Decision JSON and tags on the run and on the version."""
    registry.log_dict(run_id, decision.to_dict(), "decision.json")
    comparison = {f"comparison.{k}": v for k, v in decision.comparison.items() if isinstance(v, (int, float))}
    registry.log_metrics(run_id, comparison)
    registry.set_tags(run_id, {"driftline.decision": decision.action})
    registry.MlflowAliasRegistry().tag_version(
        version.name,
        version.version,
        {"driftline.decision": decision.action, "driftline.reasons": "; ".join(map(str, decision.reasons))},
    )


@driftline_task("move-champion")
def move_champion_task(name: str, version: str, expected: str | None, reason: str, run_id: str) -> str | None:
    """Compare-and-set the champion alias (intent record left until commit); remember how to undo it."""
    previous = registry.MlflowAliasRegistry().move_champion(name, version, expected, reason, run_id, commit=False)
    transaction = get_transaction()
    if transaction is not None:
        transaction.set("restore", {"name": name, "previous": previous, "version": version, "run_id": run_id})
    return previous


@move_champion_task.on_rollback
def _restore_champion(transaction: Transaction) -> None:
    info = transaction.get("restore")
    registry.MlflowAliasRegistry().restore_champion(
        info["name"], info["previous"], info["version"], "the promotion transaction failed", info["run_id"]
    )


@driftline_task("commit-promotion", retries=2)
def commit_promotion_task(name: str) -> None:
    """The new champion passed its smoke test: clear the promotion's intent record."""
    registry.MlflowAliasRegistry().commit_promotion(name)


@driftline_task("pending-promotion", retries=2)
def pending_promotion_task(name: str) -> dict | None:
    """The intent record of a promotion that is running or died half way (None for a new model)."""
    if not registry.registered_model_exists(name):
        return None
    return registry.MlflowAliasRegistry().intent(name)


@driftline_task("repair-promotion", retries=2)
def repair_promotion_task(name: str, run_id: str) -> dict | None:
    """Roll back a promotion that died half way (call under the promotion lock)."""
    if not registry.registered_model_exists(name):
        return None
    record = registry.MlflowAliasRegistry().repair_promotion(name, run_id)
    if record is not None:
        get_run_logger().warning("%s: rolled back the interrupted promotion of version %s", name, record["version"])
    return record


@driftline_task("smoke-test-champion")
def smoke_test_task(name: str, sample: pd.DataFrame) -> None:
    """Load models:/<name>@champion through pyfunc and score the evaluation sample."""
    check_scores(registry.predict_pyfunc(f"models:/{name}@champion", sample), len(sample))


@driftline_task("ensure-promotion-lock", retries=2, retry_delay_seconds=1)
def ensure_lock_task(lock: str) -> None:
    """A global concurrency limit of 1 per registered model (created on first use)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(lock)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=lock, limit=1))
            except Exception:  # noqa: BLE001 - created concurrently by another run; verify below
                pass
            client.read_global_concurrency_limit_by_name(lock)
