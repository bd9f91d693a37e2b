"""Every task is declared one way (``tasks._task.driftline_task``): unique names, no result cache unless it
names a cache key, and retries only on transient errors: a problem with the input is never retried."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

import tasks
from driftline.errors import DataError, SourceUnavailable
from tasks import retry_transient
from tasks._task import driftline_task


def _all_tasks() -> list:
    from prefect import Task

    found = []
    for module in pkgutil.iter_modules(tasks.__path__):
        loaded = importlib.import_module(f"tasks.{module.name}")
        found += [
            value for value in vars(loaded).values() if isinstance(value, Task) and value.__module__ == loaded.__name__
        ]
    return found


def test_every_task_follows_the_convention():
    declared = _all_tasks()
    assert len(declared) > 40
    names = [t.name for t in declared]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for t in declared:
        assert t.name == t.name.lower() and " " not in t.name and "_" not in t.name, t.name
        if t.retries:
            assert t.retry_condition_fn is retry_transient, t.name
        if t.cache_key_fn is None:
            assert t.cache_policy is NO_CACHE, t.name
        else:
            assert t.persist_result and t.cache_expiration is not None, t.name


def test_user_errors_are_not_retried_transient_ones_are():
    def state(exc: BaseException) -> Failed:
        return Failed(data=exc)

    assert not retry_transient(None, None, state(DataError("prices.csv: column 'close' is empty")))
    assert retry_transient(None, None, state(SourceUnavailable("s3://bucket/prices: endpoint unreachable")))
    assert retry_transient(None, None, state(ConnectionError("reset by peer")))


def test_the_decorator_declares_what_it_owns():
    io_task = driftline_task("probe-io", io=True)(lambda: None)
    assert io_task.retries == 3 and io_task.retry_condition_fn is retry_transient and io_task.cache_policy is NO_CACHE
    plain = driftline_task("probe-plain")(lambda: None)
    assert plain.retries == 0 and plain.cache_policy is NO_CACHE
    with pytest.raises(TypeError, match="cache_policy"):
        driftline_task("probe-bad", cache_policy=NO_CACHE)
