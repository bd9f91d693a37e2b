"""Promotion as one unit: lock, repair a leftover half-done promotion, compare-and-set the alias,
smoke-test, commit — or roll back."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from prefect.transactions import transaction

from driftline.adapters import registry
from driftline.config import Settings
from driftline.errors import DriftlineError
from tasks.promotion import (
    acquire_fence_task,
    commit_promotion_task,
    ensure_lock_task,
    lock_lease,
    move_champion_task,
    pending_promotion_task,
    repair_promotion_task,
    rollback_task,
    smoke_test_task,
)

# The lock's lease: renewed while its holder lives; a holder killed mid-promotion frees it after this
# long (60 s is the server's minimum; Prefect's default of 300 s would stall the next promotion 5 min).
LEASE_SECONDS = 60
WAIT_SECONDS = 600
ROLLBACK_WAIT_SECONDS = 30


class PromotionLockBusy(DriftlineError):
    """The model's promotion lock was not free within the wait."""


def _store(store: registry.MlflowStore | None) -> registry.MlflowStore:
    """The caller's store; else (a script, a drill) the one the environment names, built once for the call."""
    return store if store is not None else registry.MlflowStore.from_settings(Settings.from_env())


@contextmanager
def promotion_lock(
    store: registry.MlflowStore, name: str, what: str, timeout_seconds: float = WAIT_SECONDS
) -> Iterator[registry.Fence]:
    """The model's promotion lock (a Prefect global concurrency limit of 1, leased) and a fresh fencing
    generation on the model: every registry write under it checks both first (registry.Fence).

    Raises:
        PromotionLockBusy: another promotion, repair or rollback held it for ``timeout_seconds``.
    """
    holder = f"{what}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    acquired = False
    try:
        with lock_lease(ensure_lock_task(store, name), timeout_seconds, LEASE_SECONDS) as lease_check:
            acquired = True
            yield acquire_fence_task(store, name, holder, lease_check)
    except TimeoutError as exc:
        if acquired:
            raise
        raise PromotionLockBusy(
            f"{name}: the promotion lock was not free within {timeout_seconds:.0f} s (a promotion, repair or rollback "
            "of this model is running); nothing was changed. Try again when it has finished"
        ) from exc


def promote_with_smoke_test(
    name: str,
    version: str,
    expected: str | None,
    reason: str,
    run_id: str,
    sample: pd.DataFrame,
    store: registry.MlflowStore | None = None,
) -> str | None:
    """Move the champion to ``version`` if it is still ``expected``; restore it if the smoke test fails.

    Only one promotion per model runs at a time (a Prefect global concurrency limit), and the
    compare-and-set inside it refuses to overwrite a champion this run was not compared against. A
    promotion that died half way (its intent record left on the model) is rolled back first. ``store``:
    the run's MLflow store (by default the one the environment names).
    """
    store = _store(store)
    with promotion_lock(store, name, f"promotion of {version} by {run_id or '-'}") as fence:
        repair_promotion_task(store, name, run_id, fence)
        with transaction():
            previous = move_champion_task(store, registry.ChampionMove(name, version, expected, reason, run_id), fence)
            smoke_test_task(store, name, sample)
            commit_promotion_task(store, name, version, fence)
    return previous


def repair_interrupted_promotion(name: str, run_id: str, store: registry.MlflowStore | None = None) -> dict | None:
    """At the start of a run: roll back a promotion that died half way, so evaluation sees a settled champion.

    Takes the promotion lock only when there is something to repair; under the lock a record can only be
    a leftover (a live promotion would hold the lock).
    """
    store = _store(store)
    if pending_promotion_task(store, name) is None:
        return None
    with promotion_lock(store, name, f"repair by {run_id or '-'}") as fence:
        return repair_promotion_task(store, name, run_id, fence)


def rollback_under_lock(
    name: str,
    to_version: str | None,
    reason: str,
    force: bool,
    timeout_seconds: float = ROLLBACK_WAIT_SECONDS,
    store: registry.MlflowStore | None = None,
) -> tuple[str | None, str, str | None]:
    """``driftline rollback``: under the same lock (and fence) as a promotion; a leftover half-done
    promotion is rolled back first. Returns (old champion, new champion, forced note).

    Raises:
        PromotionLockBusy: a promotion, repair or rollback held the lock for ``timeout_seconds``.
    """
    store = _store(store)
    with promotion_lock(store, name, "rollback", timeout_seconds) as fence:
        repair_promotion_task(store, name, "rollback", fence)
        return rollback_task(store, name, to_version, reason, force, fence)
