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


async def _run_tasks(parent_flow_run_id: str) -> tuple[dict[str, str], list[tuple[str, str]] | None]:
    """A training flow run's task states by name, and (name, state) of its walk-forward subflow's tasks
    (None when it ran no such subflow)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

    def runs_of(ids: list) -> FlowRunFilter:
        return FlowRunFilter(id=FlowRunFilterId(any_=ids))

    async with get_client() as client:
        # prefect 3.8.8's client sends limit/sort null unless given; its server answers 422.
        subflows = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["walk-forward"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=50,
        )
        parent_tasks = await client.read_task_runs(
            flow_run_filter=runs_of([parent_flow_run_id]), sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200
        )
        ours = [f.id for f in subflows if f.parent_task_run_id in {t.id for t in parent_tasks}]
        assert len(ours) <= 1
        tasks = None
        if ours:
            found = await client.read_task_runs(
                flow_run_filter=runs_of(ours), sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200
            )
            tasks = sorted((t.name, t.state.name) for t in found)
    return {t.name.rsplit("-", 1)[0]: t.state.name for t in parent_tasks}, tasks


def _tasks_of(summary: dict) -> tuple[dict[str, str], list[tuple[str, str]] | None]:
    return asyncio.run(_run_tasks(MlflowClient().get_run(summary["run_id"]).data.tags["prefect.flow_run_id"]))


def _assert_same_results(ours: dict, theirs: dict) -> None:
    assert ours["selected_family"] == theirs["selected_family"]
    assert ours["metrics"].keys() == theirs["metrics"].keys()
    for key, value in theirs["metrics"].items():
        assert np.isclose(ours["metrics"][key], value, rtol=1e-9, atol=1e-12), key
    assert [f["n_test"] for f in ours["folds"]] == [f["n_test"] for f in theirs["folds"]]
    for mine, other in zip(ours["folds"], theirs["folds"], strict=True):
        assert np.isclose(mine["log_loss"], other["log_loss"], rtol=1e-9), mine["fold"]
    assert ours["baselines"].keys() == theirs["baselines"].keys() and ours["best_baseline"] == theirs["best_baseline"]
    for name, values in theirs["baselines"].items():
        assert np.isclose(ours["baselines"][name]["log_loss"], values["log_loss"], rtol=1e-9), name


def _assert_fits_ran_on_dask(summary: dict) -> None:
    """The fits were tasks of the walk-forward subflow: 3 folds x (2 families + 3 baselines), then the pooling."""
    _, tasks = _tasks_of(summary)
    assert tasks is not None, "the dask run did not go through the walk-forward subflow"
    fits = [(name, state) for name, state in tasks if name.startswith("fit-fold-")]
    assert sorted(name for name, _ in fits) == sorted(
        f"fit-fold-{fold}-{family}"
        for fold in (1, 2, 3)
        for family in ("logreg", "lightgbm", "base_rate", "persistence", "lagged_labels")
    )
    assert {state for _, state in fits} == {"Completed"}
    assert any(name.startswith("combine-folds") for name, _ in tasks)


def test_dask_runner_gives_the_sequential_metrics(prefect_api, tracking, fast_config, labelled_csv, tmp_path):
    """Two local workers, as threads (the default) and as processes, against the sequential run."""
    threads = _train(_config(fast_config, "threads", {"kind": "dask", "n_workers": 2}), labelled_csv, tmp_path / "r1")
    # Same data, config and code: without force the fingerprint lookup would return the first run.
    processes = _train(
        _config(fast_config, "processes", {"kind": "dask", "n_workers": 2, "processes": True}),
        labelled_csv,
        tmp_path / "r2",
        force=True,
    )
    sequential = _train(
        _config(fast_config, "sequential", {"kind": "sequential"}), labelled_csv, tmp_path / "r3", force=True
    )

    _assert_same_results(threads, sequential)
    _assert_same_results(processes, sequential)
    _assert_fits_ran_on_dask(threads)
    _assert_fits_ran_on_dask(processes)

    # One stage cache for both runners: a dask run on what the sequential run cached starts no cluster.
    again = _train(_config(fast_config, "threads", {"kind": "dask"}), labelled_csv, tmp_path / "r3", force=True)
    states, subflow = _tasks_of(again)
    assert subflow is None and states["walk-forward"] == "Cached"
    _assert_same_results(again, sequential)


def test_a_failed_fit_fails_the_stage_with_its_own_error(prefect_api, fast_config, tmp_path, monkeypatch):
    from prefect import flow
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    import tasks.training
    from driftline.config import load_config
    from driftline.errors import InsufficientDataError
    from driftline.features import Where, build_features
    from driftline.ingest import detect_columns, normalise_frame
    from driftline.synthetic import make_labelled_series
    from flows.walk_forward import walk_forward

    config = load_config(fast_config, {"target.kind": "label", "data.target_col": "y", "runner.kind": "dask"})
    frame = make_labelled_series(n_rows=1500, seed=5)
    canonical = normalise_frame(frame, detect_columns(frame, config.data, "memory", True), "memory")
    features = build_features(canonical, config.features, config.target, Where(target_name="y"))
    fit = tasks.training.run_fold_job

    def one_fit_fails(job, *args, **kwargs):
        if (job.fold, job.family) == (2, "lightgbm"):
            raise InsufficientDataError("fold 2: the calibration slice holds a single class")
        return fit(job, *args, **kwargs)

    # Local workers are threads of this process: they run the patched function.
    monkeypatch.setattr(tasks.training, "run_fold_job", one_fit_fails)

    @flow(name="walk-forward-stage")
    def stage():
        return walk_forward(features, config)

    with (
        temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: tmp_path / "results"}),
        pytest.raises(InsufficientDataError, match="fold 2: the calibration slice"),
    ):
        stage()


# --- issue 19: the same panel in memory, streamed from a feature store, and on a separately started cluster ---

SCALE_CONFIG = {
    "name": "scale",
    # The volatility target on a GARCH panel: genuinely learnable, so the families' ranking is not noise.
    "target": {"kind": "volatility", "horizon": 5, "median_window": 100},
    "features": {
        "return_windows": [1, 5],
        "vol_short": 5,
        "vol_mid": 10,
        "vol_long": 20,
        "zscore_window": 40,
        "median_window": 100,
    },
    "contract": {"min_rows_per_symbol": 100},
    "splits": {"n_splits": 3, "min_train_size": 200},
    "evaluation": {"window": 150},
    "models": {
        "families": ["logreg", "xgboost", "lightgbm"],
        "params": {"xgboost": {"n_estimators": 60, "n_jobs": 1}, "lightgbm": {"n_estimators": 60, "n_jobs": 1}},
        "linear_base": [],  # the streamed path's plain boosters, in memory too: the two paths must agree
    },
}
# Features carry float32 precision on both paths (driftline.features.feature_table, the store's float32):
# the trees' metrics are equal to 1e-6; logreg is SGD on batches against L-BFGS on all rows.
TREE_TOLERANCE, LOGREG_TOLERANCE = 1e-6, 0.01


@pytest.fixture(scope="module")
def scale_panel(tmp_path_factory):
    """A four-symbol GARCH panel as a canonical Parquet dataset (one directory per symbol), and the
    walk-forward of its in-memory and streamed paths."""
    from driftline.config import PipelineConfig
    from driftline.pipeline import walk_forward_from_parquet
    from driftline.synthetic import make_ohlcv_panel
    from tests.unit.conftest import to_canonical

    root = tmp_path_factory.mktemp("scale")
    to_canonical(make_ohlcv_panel(n_symbols=4, n_days=1000, seed=11, garch=(1e-5, 0.15, 0.83))).to_parquet(
        root / "stage", partition_cols=["symbol"]
    )

    def config(**scale) -> PipelineConfig:
        return PipelineConfig.model_validate({**SCALE_CONFIG, "scale": scale})

    memory = walk_forward_from_parquet(config(path="memory"), root / "stage", root / "m")
    streamed = walk_forward_from_parquet(
        config(streaming_above_cells=1000, batch_rows=1000), root / "stage", root / "s"
    )
    return root, config, memory, streamed


def test_same_panel_in_memory_and_streamed(scale_panel):
    """The same folds, the same selected family; the metrics within the stated tolerances."""
    _, _, memory, streamed = scale_panel
    assert memory.data_path.path == "memory" and memory.data_path.reason.startswith("scale.path: memory (")
    assert streamed.data_path.path == "streaming" and "> scale.streaming_above_cells 1,000" in streamed.data_path.reason
    assert streamed.rows_in == memory.rows_in and streamed.rows_quarantined == memory.rows_quarantined == 0
    assert streamed.n_development == memory.n_development
    ours, theirs = streamed.result, memory.result
    assert ours.selected == theirs.selected
    assert [(f.fold, f.family, f.train_end, f.test_start, f.n_train, f.n_test) for f in ours.folds] == [
        (f.fold, f.family, f.train_end, f.test_start, f.n_train, f.n_test) for f in theirs.folds
    ]
    for family, tolerance in (("xgboost", TREE_TOLERANCE), ("lightgbm", TREE_TOLERANCE), ("logreg", LOGREG_TOLERANCE)):
        for key in ("log_loss", "brier", "auc"):
            assert ours.pooled[family][key] == pytest.approx(theirs.pooled[family][key], abs=tolerance), (family, key)


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, started and stopped here."""
    import os
    import subprocess
    import sys

    import distributed

    bin_dir = Path(sys.executable).parent
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    processes = [
        subprocess.Popen([bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", *common], env=env)
    ]
    try:
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [bin_dir / "dask", "worker", "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1", *common],
                    env=env,
                )
            )
        for _ in range(300):
            if scheduler_file.exists():
                break
            import time

            time.sleep(0.1)
        with distributed.Client(scheduler_file=str(scheduler_file), set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
            yield client
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_streamed_fits_on_a_separately_started_dask_cluster(scale_panel, dask_cluster):
    """xgboost.dask and lightgbm.dask on two worker processes, each reading its symbols' files of the store:
    the same folds and the trees' metrics near the in-process streamed fit (each worker bins its own rows)."""
    from distributed import get_task_stream

    from driftline.pipeline import walk_forward_from_parquet

    root, config, _, local = scale_panel
    with get_task_stream(dask_cluster) as stream:
        distributed_run = walk_forward_from_parquet(
            config(path="streaming", batch_rows=1000), root / "stage", root / "d", client=dask_cluster
        )
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, workers  # both worker processes computed
    ours, theirs = distributed_run.result, local.result
    assert [(f.fold, f.n_train, f.n_test) for f in ours.folds] == [(f.fold, f.n_train, f.n_test) for f in theirs.folds]
    for family in ("xgboost", "lightgbm"):
        assert ours.pooled[family]["log_loss"] == pytest.approx(theirs.pooled[family]["log_loss"], abs=0.02), family
        assert ours.pooled[family]["auc"] > 0.6, family  # learned the volatility regimes on the cluster
    assert ours.pooled["logreg"] == theirs.pooled["logreg"]  # logreg streams in this process either way
