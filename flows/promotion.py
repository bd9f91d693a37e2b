"""Promotion as one unit: lock, compare-and-set the alias, smoke-test, or roll back."""

from __future__ import annotations

import pandas as pd
from prefect.concurrency.sync import concurrency
from prefect.transactions import transaction

from driftline.report import artifact_key
from tasks.promotion import ensure_lock_task, move_champion_task, smoke_test_task


def promote_with_smoke_test(name: str, version: str, expected: str | None, reason: str, run_id: str, sample: pd.DataFrame) -> str | None:
    """Move the champion to ``version`` if it is still ``expected``; restore it if the smoke test fails.

    Only one promotion per model runs at a time (a Prefect global concurrency limit), and the
    compare-and-set inside it refuses to overwrite a champion this run was not compared against.
    """
    lock = artifact_key("driftline-promote", name)
    ensure_lock_task(lock)
    with concurrency(lock, occupy=1, strict=True, timeout_seconds=600):
        with transaction():
            previous = move_champion_task(name, version, expected, reason, run_id)
            smoke_test_task(name, sample)
    return previous
