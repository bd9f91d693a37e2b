"""The walk-forward stage on the configured runner: one ``walk-forward`` task in this process
(``runner.kind: sequential``), or the ``walk-forward`` subflow whose (fold, family) fits are tasks on a
Dask cluster (``dask``: a local cluster, or an existing scheduler at ``runner.address``).

Both give the same result and share one cache entry: a result cached by either runner is reused by both,
without starting a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from prefect import flow, get_run_logger

from driftline.config import PipelineConfig, RunnerConfig
from driftline.features import FeatureSet
from driftline.training import FoldJob, WalkForwardResult, walk_forward_jobs
from tasks.training import (
    combine_folds_task,
    features_hash,
    fit_fold_task,
    record_walk_forward_task,
    walk_forward_key,
    walk_forward_task,
)


def walk_forward(features: FeatureSet, config: PipelineConfig) -> WalkForwardResult:
    """Every family on every walk-forward fold, on the runner ``config.runner`` names."""
    if config.runner.kind == "sequential" or _cached(walk_forward_task, walk_forward_key(features, config)):
        return walk_forward_task(features, config)
    return record_walk_forward_task(features, config, walk_forward_on_dask(features, config))


@flow(name="walk-forward", validate_parameters=False)
def walk_forward_flow(shared: Any, jobs: list[FoldJob], config: PipelineConfig, features_digest: str) -> WalkForwardResult:
    """Submit every (fold, family) fit to the cluster at once, then pool the out-of-sample predictions.

    Args:
        shared: the feature set, already on the workers (a Dask future), so it is not sent once per job.
        jobs: the fits, in the order their results are pooled.
        config: the pipeline config.
        features_digest: the feature set's content hash (the fits' cache key).
    """
    # Longest first (the most training rows), so no long fit starts last while the other workers idle.
    order = sorted(range(len(jobs)), key=lambda i: -_rows(jobs[i].train))
    futures = {i: fit_fold_task.submit(jobs[i], shared, config, features_digest) for i in order}
    return combine_folds_task([futures[i].result() for i in range(len(jobs))], config)


def _rows(rows: Any) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def walk_forward_on_dask(features: FeatureSet, config: PipelineConfig) -> WalkForwardResult:
    """Run the ``walk-forward`` subflow on a Dask cluster (started here unless ``runner.address`` names one).

    The feature set is sent to each worker once (scattered), not with every job; the fits are
    single-threaded, ``runner.n_workers x runner.threads_per_worker`` at a time on a local cluster.

    Raises:
        InsufficientDataError: too little data for the folds (before any cluster starts).
    """
    import distributed
    from prefect_dask import DaskTaskRunner

    jobs = walk_forward_jobs(features, config.splits, config.gap, config.models)
    digest = features_hash(features)
    with _cluster(config.runner) as address, distributed.Client(address, set_as_default=False) as client:
        get_run_logger().info("walk-forward: %d fits on the Dask cluster at %s", len(jobs), address)
        shared = client.scatter(features, broadcast=True, hash=False)
        subflow = walk_forward_flow.with_options(task_runner=DaskTaskRunner(address=address))
        with _api_for_workers():
            # An unbound future: the subflow's parameters carry only its key, never the client.
            return subflow(distributed.Future(shared.key), jobs, config, digest)


@contextmanager
def _cluster(runner: RunnerConfig) -> Iterator[str]:
    """The scheduler address: ``runner.address``, or a local cluster that lives as long as the context."""
    if runner.address:
        yield runner.address
        return
    import logging

    from distributed import LocalCluster

    # The scheduler runs in this process; its INFO chatter (every client and worker coming and going)
    # would fill the flow's log.
    chatty = logging.getLogger("distributed")
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        with LocalCluster(
            n_workers=runner.n_workers,
            threads_per_worker=runner.threads_per_worker,
            processes=True,  # learners and Prefect's engine hold the GIL in places; processes do not share it
            dashboard_address=None,
            silence_logs=logging.WARNING,
        ) as cluster:
            yield cluster.scheduler_address
    finally:
        chatty.setLevel(level)


def _api_for_workers() -> Any:
    """Workers must report to this run's Prefect API. Without ``PREFECT_API_URL`` that is the ephemeral
    server this process started; pass its address on, or each worker would start a server of its own."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        return nullcontext()
    from prefect.client.orchestration import get_client

    return temporary_settings(updates={PREFECT_API_URL: str(get_client(sync_client=True).api_url)})


def _cached(task: Any, key: str) -> bool:
    """Whether ``task`` has a stored, unexpired result under ``key``."""
    from prefect.results import get_result_store

    try:
        return get_result_store().update_for_task(task).exists(key)
    except Exception:  # noqa: BLE001 - an unreadable cache only means the stage runs
        return False
