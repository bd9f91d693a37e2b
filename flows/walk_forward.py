"""The walk-forward stage on the configured runner: the cached ``walk-forward`` task, whose fits run in this
process (``runner.kind: sequential``) or as the tasks of the ``walk-forward`` subflow on a Dask cluster
(``dask``: a local cluster, or an existing scheduler at ``runner.address``). The Dask scheduling is here only.

Both give the same result and share the task's one cache entry: a result cached by either runner is reused
by both, without starting a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed

from driftline.config import FitSpec, PipelineConfig, RunnerConfig
from driftline.features import FeatureSet
from driftline.training import FoldJob, WalkForwardResult, walk_forward_jobs
from tasks.training import (
    combine_folds_task,
    features_hash,
    fit_fold_task,
    walk_forward_progress,
    walk_forward_task,
)


def walk_forward(features: FeatureSet, config: PipelineConfig) -> WalkForwardResult:
    """Every family on every walk-forward fold, on the runner ``config.runner`` names."""
    on_cluster = None if config.runner.kind == "sequential" else partial(walk_forward_on_dask, config=config)
    return walk_forward_task(features, config.fit_spec, config.name, on_cluster)


@flow(name="walk-forward", validate_parameters=False)
def walk_forward_flow(
    shared: Any, jobs: list[FoldJob], spec: FitSpec, pipeline: str, features_digest: str, slots: int
) -> WalkForwardResult:
    """Run every (fold, family) fit as a task on the cluster, longest first, then pool the predictions.

    Args:
        shared: the feature set, already on the workers (a Dask future), so it is not sent once per job.
        jobs: the fits, in the order their results are pooled.
        spec: the fit spec (every fit's argument and part of its cache key).
        pipeline: the pipeline's name (of the progress artifact).
        features_digest: the feature set's content hash (the fits' cache key).
        slots: fits the cluster runs at once (its worker threads).
    """
    # Longest first (most training rows), and never more fits handed out than there are free threads:
    # Dask would queue the next fit behind a long one on a busy worker while another worker goes idle.
    waiting = sorted(range(len(jobs)), key=lambda i: -_rows(jobs[i].train))
    futures: dict[int, Any] = {}
    running: set[Any] = set()
    progress = walk_forward_progress(pipeline)
    while waiting or running:
        while waiting and len(running) < slots:
            i = waiting.pop(0)
            futures[i] = fit_fold_task.submit(jobs[i], shared, spec, features_digest)
            running.add(futures[i])
        finished = next(as_completed(list(running)))
        finished.result()  # a failed fit fails the stage now, with its own error, not after the others
        running.discard(finished)
        progress(len(futures) - len(running), len(jobs))  # submitted and finished
    return combine_folds_task([futures[i].result() for i in range(len(jobs))], spec)


def _rows(rows: Any) -> int:
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def walk_forward_on_dask(
    features: FeatureSet, config: PipelineConfig, features_digest: str | None = None
) -> WalkForwardResult:
    """Run the ``walk-forward`` subflow on a Dask cluster (started here unless ``runner.address`` names one).

    The feature set is sent to each worker once (scattered), not with every job; the fits are
    single-threaded, ``runner.n_workers x runner.threads_per_worker`` at a time on a local cluster.

    Raises:
        InsufficientDataError: too little data for the folds (before any cluster starts).
    """
    import distributed
    from prefect_dask import DaskTaskRunner

    spec = config.fit_spec
    jobs = walk_forward_jobs(features, spec)
    digest = features_digest or features_hash(features)
    with _cluster(config.runner) as address, distributed.Client(address, set_as_default=False) as client:
        get_run_logger().info("walk-forward: %d fits on the Dask cluster at %s", len(jobs), address)
        shared = client.scatter(features, broadcast=True, hash=False)
        slots = sum(client.nthreads().values())
        subflow = walk_forward_flow.with_options(task_runner=DaskTaskRunner(address=address))
        with _api_for_workers():
            # An unbound future: the subflow's parameters carry only its key, never the client.
            return subflow(distributed.Future(shared.key), jobs, spec, config.name, digest, slots)


@contextmanager
def _cluster(runner: RunnerConfig) -> Iterator[str]:
    """The scheduler address: ``runner.address``, or a local cluster that lives as long as the context."""
    if runner.address:
        yield runner.address
        return
    import logging

    from distributed import LocalCluster
    from threadpoolctl import threadpool_limits

    # The scheduler runs in this process; its INFO chatter (every client and worker coming and going)
    # would fill the flow's log.
    chatty = logging.getLogger("distributed")
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        with (
            LocalCluster(
                n_workers=runner.n_workers,
                threads_per_worker=runner.threads_per_worker,
                processes=runner.processes,
                dashboard_address=None,
                silence_logs=logging.WARNING,
            ) as cluster,
            nullcontext() if runner.processes else threadpool_limits(limits=1),
        ):
            # Threads share this process's BLAS/OpenMP pools: one cap for the cluster's lifetime (each
            # fit capping and restoring them on its own would race). Worker processes start capped.
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
