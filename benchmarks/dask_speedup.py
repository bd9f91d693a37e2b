"""P5: the walk-forward stage on ``runner: dask`` (two local workers) vs sequential, same jobs, same machine.

Data: ``pipeline_scale.make_frame`` — one minute-bar series, 50 float32 features, a 0/1 label — at 500k
rows (``--quick``: 30k). Jobs: logreg + LightGBM (200 trees, 31 leaves) x 5 expanding folds, sigmoid
calibration on each training window's tail: 10 fits of very different sizes. Every learner is
single-threaded in both arms (``n_jobs=1``, BLAS/OpenMP capped at one thread).

* sequential: ``run_walk_forward(..., threads=1)``, the core's jobs one after another, no Prefect.
* dask: ``walk_forward_on_dask`` inside a flow — the ``walk-forward`` subflow with every fit a Prefect
  task on a ``DaskTaskRunner``. Its time includes everything that run pays for: starting the local
  cluster (two workers, the default threads of this process), sharing the feature set, the subflow and
  its task runs on the Prefect API, and shutting the cluster down.
* dask, worker processes (full run only): the same with ``runner.processes: true``; it adds process
  start-up, imports in each worker and a copy of the features per worker.

``dask_speedup`` = median sequential seconds / median dask seconds over interleaved rounds (sequential
dask, dask sequential, ...: 3 in a full run, 1 with ``--quick``), with the rounds' spread
(``dask_speedup_spread``). Both arms run in one fresh child process whose Prefect API (ephemeral) was
started by an untimed warm-up flow, and each arm first runs once, untimed, on a 5k-row frame (LightGBM's
lazy import and first fit, Dask's imports and first cluster): neither pays a warm-up the other skips.
Each dask run writes its task results to its own folder, so no run reads another's cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processes import run_child, shared_prefect_api
from benchmarks.stats import ROUNDS, ratio_summary

# Only the standard library (and benchmarks.stats, which uses only it) at the top: local worker processes
# import this module again when they start.
WARM_UP_ROWS = 5_000

CONFIG = {
    "target": {"kind": "label", "label_lags": [1]},
    "data": {"target_col": "y"},
    "features": {"calendar": False},
    "splits": {"n_splits": 5, "min_train_size": 1000},
    "models": {"families": ["logreg", "lightgbm"], "params": {"lightgbm": {"n_estimators": 200, "num_leaves": 31}}},
    "runner": {"kind": "dask", "n_workers": 2, "threads_per_worker": 1},
}


def child(rows: int, results_dir: Path, with_processes: bool, rounds: int = 1) -> dict[str, Any]:
    """Both arms in this process (run with a fresh PREFECT_HOME)."""
    import threading

    from prefect.server.api.server import SubprocessASGIServer

    # The ephemeral API starts while the data is made (untimed); it is up before any arm runs. With
    # PREFECT_API_URL set (the benchmark run's shared server), that server is used instead.
    api = threading.Thread(
        target=lambda: None if os.environ.get("PREFECT_API_URL") else SubprocessASGIServer().start(), daemon=True
    )
    api.start()

    import numpy as np
    from prefect import flow
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from benchmarks.pipeline_scale import make_frame
    from driftline.config import PipelineConfig
    from driftline.features import Where, build_features
    from driftline.ingest import detect_columns, normalise_frame
    from driftline.training import run_walk_forward, walk_forward_jobs
    from flows.walk_forward import walk_forward_on_dask

    config = PipelineConfig.model_validate(CONFIG)

    def features_of(n: int) -> Any:
        frame = make_frame(n)
        canonical = normalise_frame(frame, detect_columns(frame, config.data, "memory", True), "memory")
        return build_features(canonical, config.features, config.target, Where(target_name="y"))

    features = features_of(rows)
    warm_features = features_of(WARM_UP_ROWS)

    @flow(name="warm-up")
    def warm_up() -> int:
        return 1

    api.join()
    warm_up()  # the first flow run on the API; untimed

    def sequential_arm(data: Any) -> tuple[Any, float]:
        started = time.perf_counter()
        result = run_walk_forward(data, config.fit_spec, threads=1)
        return result, time.perf_counter() - started

    @flow(name="dask-speedup")
    def on_dask(data: Any, processes: bool) -> tuple[Any, float]:
        arm = config.model_copy(update={"runner": config.runner.model_copy(update={"processes": processes})})
        started = time.perf_counter()
        result = walk_forward_on_dask(data, arm)
        return result, time.perf_counter() - started

    def dask_arm(data: Any, processes: bool, folder: str) -> tuple[Any, float]:
        # Every dask run writes its task results to its own folder: no run reads another's cache.
        with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: results_dir / folder}):
            return on_dask(data, processes)

    # Both arms once on a small frame, untimed: LightGBM's lazy import and first fit, the Dask imports and
    # a first cluster are paid by neither timed arm.
    sequential_arm(warm_features)
    dask_arm(warm_features, False, "warm-up")

    sequential_runs: list[float] = []
    dask_runs: list[float] = []
    same = True

    def check(result: Any, sequential: Any) -> bool:
        return result.selected == sequential.selected and all(
            np.isclose(result.pooled[f][k], v, rtol=1e-9, atol=1e-12)
            for f, values in sequential.pooled.items()
            for k, v in values.items()
        )

    sequential = None
    for i in range(rounds):  # interleaved: sequential dask, dask sequential, ...
        for arm in ("sequential", "dask") if i % 2 == 0 else ("dask", "sequential"):
            if arm == "sequential":
                sequential, seconds = sequential_arm(features)
                sequential_runs.append(seconds)
            else:
                result, seconds = dask_arm(features, False, f"threads-{i}")
                dask_runs.append(seconds)
                dask_result = result
        same &= check(dask_result, sequential)
    processes_seconds = None
    if with_processes:  # one run: reported, no target
        result, processes_seconds = dask_arm(features, True, "processes")
        same &= check(result, sequential)
    return {
        "rows": rows,
        "features": features.X.shape[1],
        "jobs": len(walk_forward_jobs(features, config.fit_spec)),
        "sequential_runs": sequential_runs,
        "dask_runs": dask_runs,
        "dask_processes_seconds": processes_seconds,
        "same_result": bool(same),
    }


def measure(quick: bool = False) -> dict[str, Any]:
    rows = 30_000 if quick else 500_000
    with tempfile.TemporaryDirectory(prefix="driftline-bench-dask-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLINE_"))}
        env.update(
            DRIFTLINE_HOME=str(home / "driftline"),
            PREFECT_HOME=str(home / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="WARNING",
            # A fresh Prefect database on a busy 2-core machine can take longer than the default 20 s.
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        )
        if api := shared_prefect_api():
            env["PREFECT_API_URL"] = api
        args = [
            sys.executable,
            "-m",
            "benchmarks.dask_speedup",
            "--child",
            str(rows),
            str(home / "results"),
            "--rounds",
            str(1 if quick else ROUNDS),
        ]
        done = run_child(
            args + ([] if quick else ["--with-processes"]), env, timeout=1800, cwd=Path(__file__).resolve().parents[1]
        )
    if done.returncode != 0:
        raise RuntimeError(f"dask benchmark at {rows} rows failed: {done.stderr[-3000:]}")
    arm = json.loads(done.stdout.strip().splitlines()[-1])
    processes = arm["dask_processes_seconds"]
    speedup = ratio_summary(arm["sequential_runs"], arm["dask_runs"])
    sequential_seconds = statistics.median(arm["sequential_runs"])
    return {
        "dask_speedup": speedup["ratio"],
        "dask_speedup_spread": speedup,
        "dask_sequential_seconds": sequential_seconds,
        "dask_seconds": statistics.median(arm["dask_runs"]),
        "dask_rows": rows,
        "dask_jobs": arm["jobs"],
        "dask_workers": "2 local workers (threads), single-threaded fits",
        "dask_processes_seconds": processes,
        "dask_processes_speedup": sequential_seconds / processes if processes else None,
        "dask_same_result": arm["same_result"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_speedup", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="30k rows, no worker-processes arm (about 30 s)")
    parser.add_argument("--child", nargs=2, metavar=("ROWS", "RESULTS"), help=argparse.SUPPRESS)
    parser.add_argument("--with-processes", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(int(args.child[0]), Path(args.child[1]), args.with_processes, args.rounds)))
        return 0
    print(json.dumps(measure(args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
