"""Promotion as one unit: lock, repair a leftover half-done promotion, compare-and-set the alias,
smoke-test, commit — or roll back."""

from __future__ import annotations

import pandas as pd
from prefect.concurrency.sync import concurrency
from prefect.transactions import transaction

from driftline.report import artifact_key
from tasks.promotion import (
    commit_promotion_task,
    ensure_lock_task,
    move_champion_task,
    pending_promotion_task,
    repair_promotion_task,
    smoke_test_task,
)

# The lock's lease: renewed while its holder lives; a holder killed mid-promotion frees it after this
# long (60 s is the server's minimum; Prefect's default of 300 s would stall the next promotion 5 min).
LEASE_SECONDS = 60
WAIT_SECONDS = 600


def _lock(name: str) -> str:
    lock = artifact_key("driftline-promote", name)
    ensure_lock_task(lock)
    return lock


def promote_with_smoke_test(
    name: str, version: str, expected: str | None, reason: str, run_id: str, sample: pd.DataFrame
) -> str | None:
    """Move the champion to ``version`` if it is still ``expected``; restore it if the smoke test fails.

    Only one promotion per model runs at a time (a Prefect global concurrency limit), and the
    compare-and-set inside it refuses to overwrite a champion this run was not compared against. A
    promotion that died half way (its intent record left on the model) is rolled back first.
    """
    with concurrency(_lock(name), occupy=1, strict=True, timeout_seconds=WAIT_SECONDS, lease_duration=LEASE_SECONDS):
        repair_promotion_task(name, run_id)
        with transaction():
            previous = move_champion_task(name, version, expected, reason, run_id)
            smoke_test_task(name, sample)
            commit_promotion_task(name)
    return previous


def repair_interrupted_promotion(name: str, run_id: str) -> dict | None:
    """At the start of a run: roll back a promotion that died half way, so evaluation sees a settled champion.

    Takes the promotion lock only when there is something to repair; under the lock a record can only be
    a leftover (a live promotion would hold the lock).
    """
    if pending_promotion_task(name) is None:
        return None
    with concurrency(_lock(name), occupy=1, strict=True, timeout_seconds=WAIT_SECONDS, lease_duration=LEASE_SECONDS):
        return repair_promotion_task(name, run_id)
