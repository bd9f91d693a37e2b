"""P6 start-up: how long ``driftline --help`` takes, and the fixed cost of a local ``driftline train``.

Measured in fresh subprocesses (nothing imported or cached in this process counts):

* ``cli_help_seconds``: wall time of ``driftline --help``, the median of three runs.
* ``ephemeral_one_task_seconds``: wall time of a Python process that runs a flow with one trivial task on
  Prefect's ephemeral API (no ``PREFECT_API_URL``), with a fresh ``PREFECT_HOME`` — what any Prefect user
  pays for a first local run.
* ``driftline_fixed_seconds``: wall time of ``driftline train`` on a tiny labelled series (logreg only, two
  folds) with a fresh ``PREFECT_HOME`` and ``DRIFTLINE_HOME``, minus the seconds its flow spent in data
  work (the summary's ``timings.data_seconds``: every task except MLflow set-up and bookkeeping). What
  remains is imports, the start of the command's local Prefect API (``driftline.local_api``, a fresh
  database to migrate) and the MLflow set-up.
* ``local_overhead_ratio`` = driftline_fixed_seconds / ephemeral_one_task_seconds (target <= 0.5).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processes import run_child

BIN = Path(sys.executable).parent
ONE_TASK = """
from prefect import flow, task

@task
def one():
    return 1

@flow
def one_task_flow():
    return one()

one_task_flow()
"""


def _clean_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)  # Prefect makes PREFECT_HOME but not its parents
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLINE_"))}
    env.update(
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # A fresh database's migrations can take longer than the 20 s default on a busy 2-core machine.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        DRIFTLINE_HOME=str(home / "driftline"),
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
    )
    return env


def _timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = run_child(args, env, timeout=600, cwd=cwd)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {done.stderr[-2000:]}")
    return elapsed


def measure(quick: bool = False) -> dict[str, Any]:
    from driftline.synthetic import make_labelled_series

    with tempfile.TemporaryDirectory(prefix="driftline-bench-startup-") as tmp:
        root = Path(tmp)
        help_times = [_timed([str(BIN / "driftline"), "--help"], _clean_env(root / "h"), root) for _ in range(3)]

        ephemeral = _timed([sys.executable, "-c", ONE_TASK], _clean_env(root / "e"), root)

        make_labelled_series(n_rows=800, seed=1).to_csv(root / "tiny.csv", index=False)
        (root / "tiny.yaml").write_text(
            "name: tiny\ncontract: {min_rows_per_symbol: 50}\nsplits: {n_splits: 2, min_train_size: 150}\n"
            "evaluation: {window: 150}\npromotion: {min_rows: 50}\nmodels: {families: [logreg]}\n"
        )
        args = [str(BIN / "driftline"), "train", "--config", "tiny.yaml", "--data", "tiny.csv", "--target", "label",
                "--target-col", "y", "--summary-json", "s.json"]
        total = _timed(args, _clean_env(root / "d"), root)
        summary = json.loads((root / "s.json").read_text())
    data_seconds = float(summary["timings"]["data_seconds"])
    fixed = total - data_seconds
    return {
        "cli_help_seconds": statistics.median(help_times),
        "ephemeral_one_task_seconds": ephemeral,
        "driftline_train_tiny_seconds": total,
        "driftline_data_seconds": data_seconds,
        "driftline_fixed_seconds": fixed,
        "local_overhead_ratio": fixed / ephemeral,
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
