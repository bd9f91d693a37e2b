"""The one way a Driftline task is declared: ``@driftline_task("kebab-name", ...)``.

What every task shares is said once here: no result cache unless the task names a cache key (then the key
holds for ``CACHE_DAYS`` and the result is persisted), and retries only on transient errors
(``retry_transient``): a problem with the input is reported at once, never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import IO_BACKOFF, IO_RETRIES, retry_transient
from tasks.caching import CACHE_DAYS


def driftline_task(
    name: str,
    *,
    io: bool = False,
    retries: int = 0,
    retry_delay_seconds: float | list[float] = 2,
    cache_key_fn: Callable[..., str | None] | None = None,
    **options: Any,
) -> Any:
    """``@task`` with the project's conventions.

    Args:
        name: the task's kebab-case name, unique in the project.
        io: an I/O task (sources, MLflow): ``IO_RETRIES`` retries with the ``IO_BACKOFF`` delays.
        retries: retries of a transient error (ignored with ``io``).
        retry_delay_seconds: delay before each retry (ignored with ``io``).
        cache_key_fn: cache the result under this key for ``CACHE_DAYS`` days, persisted; None: no cache.
        options: any other ``prefect.task`` option (``task_run_name``, ``timeout_seconds``...).
    """
    if "cache_policy" in options or "retry_condition_fn" in options:
        raise TypeError("driftline_task sets cache_policy and retry_condition_fn itself")
    if io:
        retries, retry_delay_seconds = IO_RETRIES, list(IO_BACKOFF)
    if retries:
        options.update(retries=retries, retry_delay_seconds=retry_delay_seconds, retry_condition_fn=retry_transient)
    if cache_key_fn is None:
        options["cache_policy"] = NO_CACHE
    else:
        options.update(cache_key_fn=cache_key_fn, cache_expiration=timedelta(days=CACHE_DAYS), persist_result=True)
    return task(name=name, **options)
