"""runner: dask — the training flow's (fold, family) fits on a local two-worker Dask cluster give what the
sequential run gives, on the same data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

LABELLED = {"target": "label", "target_col": "y"}


def _config(fast_config: Path, name: str, runner: dict) -> Path:
    tree = yaml.safe_load(fast_config.read_text())
    tree["runner"] = runner
    path = fast_config.with_name(f"{name}.yaml")
    path.write_text(yaml.safe_dump(tree))
    return path


def _train(config: Path, data: Path, results: Path, **params):
    """One training run whose Prefect results (and so its cache) live in ``results``: each runner computes."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from flows.training import train_and_promote

    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: results}):
        return train_and_promote(config_file=str(config), data=str(data), **LABELLED, **params)


async def _walk_forward_subflow_tasks(parent_flow_run_id: str) -> list[tuple[str, str]]:
    """(name, state) of the task runs of the ``walk-forward`` subflow under a training flow run."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

    def runs_of(ids: list) -> FlowRunFilter:
        return FlowRunFilter(id=FlowRunFilterId(any_=ids))

    async with get_client() as client:
        subflows = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["walk-forward"])), sort=FlowRunSort.START_TIME_DESC, limit=50
        )
        parent_tasks = await client.read_task_runs(flow_run_filter=runs_of([parent_flow_run_id]), sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=200)
        ours = [f.id for f in subflows if f.parent_task_run_id in {t.id for t in parent_tasks}]
        assert len(ours) == 1, "the dask run did not go through the walk-forward subflow"
        tasks = await client.read_task_runs(flow_run_filter=runs_of(ours), sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=200)
    return sorted((t.name, t.state.name) for t in tasks)


def _assert_same_results(ours: dict, theirs: dict) -> None:
    assert ours["selected_family"] == theirs["selected_family"]
    assert ours["metrics"].keys() == theirs["metrics"].keys()
    for key, value in theirs["metrics"].items():
        assert np.isclose(ours["metrics"][key], value, rtol=1e-9, atol=1e-12), key
    assert [f["n_test"] for f in ours["folds"]] == [f["n_test"] for f in theirs["folds"]]
    for mine, other in zip(ours["folds"], theirs["folds"]):
        assert np.isclose(mine["log_loss"], other["log_loss"], rtol=1e-9), mine["fold"]


def _assert_fits_ran_on_dask(summary: dict) -> None:
    """The fits were tasks of the walk-forward subflow: 3 folds x 2 families, then the pooling."""
    flow_run_id = MlflowClient().get_run(summary["run_id"]).data.tags["prefect.flow_run_id"]
    tasks = asyncio.run(_walk_forward_subflow_tasks(flow_run_id))
    fits = [(name, state) for name, state in tasks if name.startswith("fit-fold-")]
    assert sorted(name for name, _ in fits) == sorted(
        f"fit-fold-{fold}-{family}" for fold in (1, 2, 3) for family in ("logreg", "lightgbm")
    )
    assert {state for _, state in fits} == {"Completed"}
    assert any(name.startswith("combine-folds") for name, _ in tasks)


def test_dask_runner_gives_the_sequential_metrics(prefect_api, tracking, fast_config, labelled_csv, tmp_path):
    """Two local workers, as threads (the default) and as processes, against the sequential run."""
    threads = _train(_config(fast_config, "threads", {"kind": "dask", "n_workers": 2}), labelled_csv, tmp_path / "r1")
    # Same data, config and code: without force the fingerprint lookup would return the first run.
    processes = _train(
        _config(fast_config, "processes", {"kind": "dask", "n_workers": 2, "processes": True}),
        labelled_csv, tmp_path / "r2", force=True,
    )
    sequential = _train(_config(fast_config, "sequential", {"kind": "sequential"}), labelled_csv, tmp_path / "r3", force=True)

    _assert_same_results(threads, sequential)
    _assert_same_results(processes, sequential)
    _assert_fits_ran_on_dask(threads)
    _assert_fits_ran_on_dask(processes)
