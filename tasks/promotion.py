"""Evaluation against the champion and the transactional alias move."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pandas as pd
from prefect import get_run_logger
from prefect.transactions import Transaction, get_transaction

from driftline import tags as tagkeys
from driftline.adapters import registry
from driftline.baselines import BaselineModel
from driftline.config import PipelineConfig, config_from_yaml
from driftline.evaluation import ChampionModel, check_scores, evaluate_challenger
from driftline.features import FeatureSet
from driftline.promotion import Decision, check_same_question
from driftline.report import artifact_key
from driftline.training import WalkForwardResult
from tasks._task import driftline_task

CUTOFF_TAG = tagkeys.TRAIN_CUTOFF


def _champion(store: registry.MlflowStore, name: str, version: str | None) -> ChampionModel | None:
    if version is None:
        return None
    tags = store.models().version_tags(name, version)
    cutoff = pd.Timestamp(tags[CUTOFF_TAG]) if CUTOFF_TAG in tags else None
    # Loaded lazily inside the scorer so a champion that cannot load is "not comparable", not a crash.
    return ChampionModel(version, cutoff, lambda X: store.predict_pyfunc(f"models:/{name}/{version}", X))


@driftline_task("check-champion-question", io=True)
def check_champion_question_task(store: registry.MlflowStore, config: PipelineConfig) -> None:
    """Before any work: this run must predict what the model's champion predicts (same target and label)."""
    aliases = store.models()
    champion = aliases.alias_version(config.model_name, "champion")
    if champion is None:
        return
    run_id = aliases.version_tags(config.model_name, champion).get(tagkeys.RUN_ID)
    if not run_id:
        return  # registered outside Driftline: nothing recorded to compare with
    recorded = config_from_yaml(
        store.load_run_text(run_id, "config/pipeline.yaml"), f"{config.model_name} v{champion} config"
    )
    check_same_question(config.model_name, champion, recorded, config)


@driftline_task("evaluate-challenger", retries=1)
def evaluate_task(
    store: registry.MlflowStore,
    holdout: FeatureSet,
    version: registry.RegisteredVersion,
    base_rate: float,
    config: PipelineConfig,
    baseline: BaselineModel | None = None,
    walk_forward: WalkForwardResult | None = None,
) -> tuple[Decision, str | None]:
    """Score the registered challenger and the champion (or, for a first model, the best baseline) on the
    same hold-out rows, then decide (the challenger's pooled walk-forward ECE is checked too)."""
    champion_version = store.models().alias_version(version.name, "champion")
    decision = evaluate_challenger(
        holdout,
        lambda X: store.predict_pyfunc(version.model_uri, X),
        _champion(store, version.name, champion_version),
        base_rate,
        config.decision_spec,
        baseline=baseline,
        walk_forward_ece=None if walk_forward is None else walk_forward.gate_ece(config.metrics.ece_bins),
    )
    return decision, champion_version


@driftline_task("record-decision")
def record_decision_task(
    store: registry.MlflowStore, run_id: str, version: registry.RegisteredVersion, decision: Decision
) -> None:
    """Decision JSON and tags on the run and on the version."""
    store.log_dict(run_id, decision.to_dict(), "decision.json")
    comparison = {f"comparison.{k}": v for k, v in decision.comparison.items() if isinstance(v, (int, float))}
    store.log_metrics(run_id, comparison)
    store.set_tags(run_id, {tagkeys.DECISION: decision.action})
    store.models().tag_version(
        version.name,
        version.version,
        {tagkeys.DECISION: decision.action, tagkeys.REASONS: "; ".join(map(str, decision.reasons))},
    )


@driftline_task("move-champion")
def move_champion_task(
    store: registry.MlflowStore, move: registry.ChampionMove, fence: registry.Fence | None = None
) -> str | None:
    """Compare-and-set the champion alias (intent record left until commit); remember how to undo it."""
    previous = store.models(fence).move_champion(move, commit=False)
    transaction = get_transaction()
    if transaction is not None:
        transaction.set("restore", {"store": store, "move": move, "previous": previous, "fence": fence})
    return previous


@move_champion_task.on_rollback
def _restore_champion(transaction: Transaction) -> None:
    info = transaction.get("restore")
    move: registry.ChampionMove = info["move"]
    aliases = info["store"].models(info["fence"])
    try:
        aliases.check_fence(move.name)
    except registry.FenceLost as exc:  # a newer holder owns the model now: undoing would overwrite its work
        get_run_logger().error("%s: not restoring the champion: %s", move.name, exc)
        return
    aliases.restore_champion(move.name, info["previous"], move.version, "the promotion transaction failed", move.run_id)


@driftline_task("commit-promotion", retries=2)
def commit_promotion_task(
    store: registry.MlflowStore, name: str, version: str | None = None, fence: registry.Fence | None = None
) -> None:
    """The new champion passed its smoke test: clear the promotion's intent record."""
    aliases = store.models(fence)
    if version is None:
        aliases.commit_promotion(name)
    else:
        aliases.commit_promotion(name, champion=version)


@driftline_task("pending-promotion", retries=2)
def pending_promotion_task(store: registry.MlflowStore, name: str) -> dict | None:
    """The intent record of a promotion that is running or died half way (None for a new model)."""
    if not store.registered_model_exists(name):
        return None
    return store.models().intent(name)


@driftline_task("repair-promotion", retries=2)
def repair_promotion_task(
    store: registry.MlflowStore, name: str, run_id: str, fence: registry.Fence | None = None
) -> dict | None:
    """Roll back a promotion that died half way (call under the promotion lock)."""
    if not store.registered_model_exists(name):
        return None
    record = store.models(fence).repair_promotion(name, run_id)
    if record is not None:
        get_run_logger().warning("%s: rolled back the interrupted promotion of version %s", name, record["version"])
    return record


@driftline_task("acquire-fence", retries=2, retry_delay_seconds=1)
def acquire_fence_task(
    store: registry.MlflowStore, name: str, holder: str, lease_check: Callable[[], None] | None
) -> registry.Fence:
    """Just after taking the lock: bump the model's fencing generation; every later write checks it."""
    return store.models().acquire_fence(name, holder, lease_check)


@driftline_task("rollback-champion")
def rollback_task(
    store: registry.MlflowStore, name: str, to_version: str | None, reason: str, force: bool, fence: registry.Fence
) -> tuple[str | None, str, str | None]:
    """Make ``to_version`` (default previous-champion) the champion, fenced like a promotion."""
    return store.models(fence).rollback(name, to_version, reason, force)


@driftline_task("smoke-test-champion")
def smoke_test_task(store: registry.MlflowStore, name: str, sample: pd.DataFrame) -> None:
    """Load models:/<name>@champion through pyfunc and score the evaluation sample."""
    check_scores(store.predict_pyfunc(f"models:/{name}@champion", sample), len(sample))


@driftline_task("ensure-promotion-lock", retries=2, retry_delay_seconds=1)
def ensure_lock_task(store: registry.MlflowStore, name: str) -> str:
    """The name of ``name``'s promotion lock: a global concurrency limit of 1 per registered model of this
    registry (``lock_key``: its name and creation time), created on first use."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    lock = artifact_key("driftline-promote", store.models().lock_key(name))
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(lock)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=lock, limit=1))
            except Exception:  # noqa: BLE001 - created concurrently by another run; verify below
                pass
            client.read_global_concurrency_limit_by_name(lock)
    return lock


# A write needs a lease renewed less than (lease - margin) ago when the server cannot be asked right now.
LEASE_MARGIN_SECONDS = 15


@contextmanager
def lock_lease(lock: str, timeout_seconds: float, lease_seconds: float) -> Iterator[Callable[[], None]]:
    """Hold the one slot of ``lock`` under a lease that a thread renews; yields ``lease_check``, which renews
    the lease now and raises :class:`registry.FenceLost` when it is gone (expired and revoked: HTTP 410).

    Prefect's own ``concurrency`` manager only logs a failed renewal (and hides the lease id), so a holder
    stalled past its lease would go on writing; here a failed renewal is an ERROR and every write checks.

    Raises:
        prefect.concurrency.asyncio.AcquireConcurrencySlotTimeoutError: not acquired in ``timeout_seconds``.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.concurrency._sync import acquire_concurrency_slots_with_lease, release_concurrency_slots_with_lease
    from prefect.logging import get_logger

    logger = get_logger("driftline.promotion")
    lease_id = acquire_concurrency_slots_with_lease(
        [lock], 1, timeout_seconds=timeout_seconds, lease_duration=lease_seconds, strict=True
    ).lease_id
    lost: list[str] = []
    stop = threading.Event()

    renewed = [time.monotonic()]  # the server counts the lease from its last renewal

    def renew(client) -> None:
        try:
            client.renew_concurrency_lease(lease_id=lease_id, lease_duration=lease_seconds)
            renewed[0] = time.monotonic()
            return
        except httpx.HTTPStatusError as exc:  # 410: expired and revoked (another holder may have the lock)
            detail = str(exc.response.status_code)
            cause: Exception = exc
        except Exception as exc:  # noqa: BLE001 - server unreachable: held only while the lease cannot have run out
            if time.monotonic() - renewed[0] < lease_seconds - LEASE_MARGIN_SECONDS:
                logger.warning("lock %s: lease renewal failed (%s); still held for now", lock, type(exc).__name__)
                return
            detail, cause = type(exc).__name__, exc
        message = f"the lease of lock {lock} could not be renewed ({detail}): this holder no longer owns it"
        if not lost:
            logger.error(message)
        lost.append(message)
        raise registry.FenceLost(message) from cause

    def keep_alive() -> None:
        with get_client(sync_client=True) as client:
            while not stop.wait(lease_seconds / 4) and not lost:
                try:
                    renew(client)
                except registry.FenceLost:
                    return

    # In the caller's context: Prefect's settings (which server) can live in a context variable.
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(keep_alive,), daemon=True, name=f"lease-{lock}"
    )
    thread.start()
    with get_client(sync_client=True) as client:

        def lease_check() -> None:
            if lost:
                raise registry.FenceLost(lost[0])
            renew(client)

        try:
            yield lease_check
        finally:
            stop.set()
            thread.join(timeout=5)
            try:  # also after a lost lease: a revoked lease id releases nothing, a transiently lost one is freed
                release_concurrency_slots_with_lease(lease_id)
            except Exception as exc:
                if not lost:
                    raise
                logger.warning(
                    "lock %s: releasing a lost lease failed (%s); it expires on its own", lock, type(exc).__name__
                )
