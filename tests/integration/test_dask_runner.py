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


def _config(fast_config: Path, runner: dict) -> Path:
    tree = yaml.safe_load(fast_config.read_text())
    tree["runner"] = runner
    path = fast_config.with_name(f"{runner['kind']}.yaml")
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


def test_dask_runner_gives_the_sequential_metrics(prefect_api, tracking, fast_config, labelled_csv, tmp_path):
    on_dask = _train(_config(fast_config, {"kind": "dask", "n_workers": 2}), labelled_csv, tmp_path / "results-dask")
    # Same data, config and code: without force the fingerprint lookup would return the first run.
    sequential = _train(
        _config(fast_config, {"kind": "sequential"}), labelled_csv, tmp_path / "results-sequential", force=True
    )

    assert on_dask["selected_family"] == sequential["selected_family"]
    assert on_dask["metrics"].keys() == sequential["metrics"].keys()
    for key, value in sequential["metrics"].items():
        assert np.isclose(on_dask["metrics"][key], value, rtol=1e-9, atol=1e-12), key
    assert [f["n_test"] for f in on_dask["folds"]] == [f["n_test"] for f in sequential["folds"]]
    for ours, theirs in zip(on_dask["folds"], sequential["folds"]):
        assert np.isclose(ours["log_loss"], theirs["log_loss"], rtol=1e-9), ours["fold"]

    # The dask run's fits were tasks of the walk-forward subflow: 3 folds x 2 families, then the pooling.
    flow_run_id = MlflowClient().get_run(on_dask["run_id"]).data.tags["prefect.flow_run_id"]
    tasks = asyncio.run(_walk_forward_subflow_tasks(flow_run_id))
    fits = [(name, state) for name, state in tasks if name.startswith("fit-fold-")]
    assert sorted(name for name, _ in fits) == sorted(
        f"fit-fold-{fold}-{family}" for fold in (1, 2, 3) for family in ("logreg", "lightgbm")
    )
    assert {state for _, state in fits} == {"Completed"}
    assert any(name.startswith("combine-folds") for name, _ in tasks)
