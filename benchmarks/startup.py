"""P6 start-up: how long ``driftline --help`` takes, and the fixed cost of a local ``driftline train``.

Everything is a whole process, timed from the outside (nothing imported or cached in this process counts):

* ``cli_help_seconds``: wall time of ``driftline --help``, the median of three runs.
* the two arms of the overhead ratio:
  - ``ephemeral``: a Python process that runs a flow with one trivial task on Prefect's ephemeral API (no
    ``PREFECT_API_URL``) — what any Prefect user pays for a local run;
  - ``driftline``: ``driftline train`` on a tiny labelled series (``TINY_ROWS`` rows, logreg only, two
    folds), whose data work is negligible: the whole process is its fixed cost (imports, the command's
    local Prefect API, the MLflow store, every task's Prefect and MLflow bookkeeping, registration,
    promotion and the smoke test). Nothing is subtracted: the flow's own ``timings.data_seconds`` covers
    most of that bookkeeping too, so subtracting it understated the overhead (issue 16).
* **cold**: both arms with a fresh ``PREFECT_HOME`` / ``DRIFTLINE_HOME`` / MLflow store (a database to
  create and migrate), as on a first run; **warm**: both again on the homes their previous run left.
  Every ``driftline`` run trains on a series of its own (same size, another seed): on the same file a warm
  run would be a finished rerun that trains nothing (``cached_rerun_ratio`` measures that, P3). Until
  2026-12-07 it was, so the warm ratio then (0.34-0.44x) timed a cached rerun, not a training run.
* Both arms are run once, untimed, before anything is timed (bytecode, page cache), then in interleaved
  rounds (A B, B A, ...): ``local_overhead_ratio`` = median cold driftline / median cold ephemeral,
  ``local_overhead_ratio_warm`` the same warm, each with its rounds' spread (``*_spread``). Full: 3
  rounds; ``--quick``: one cold run of each, no untimed warm-up and no warm run (two processes, as
  before; its timings are reported, not judged), without the warm parent (no later command would use it).
* The ``driftline`` commands may run in the environment's warm parent (driftline.app.forkserver), as a
  user's do: the untimed first run starts it, and every later run, cold or warm, is forked from it. The
  ephemeral arm is plain Python, a new process each time.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processes import run_child
from benchmarks.stats import ratio_summary, spread

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
        # The shared local API (driftline.app.local_api) serves a warm run on the same home, as for a user; it
        # stops 30 s after the last run instead of 5 minutes, so the benchmark leaves no server behind for long.
        DRIFTLINE_LOCAL_API_IDLE_SECONDS="30",
    )
    return env


def _timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = run_child(args, env, timeout=600, cwd=cwd)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {done.stderr[-2000:]}")
    return elapsed


TINY_ROWS = 200
TINY_CONFIG = (
    "name: tiny\ncontract: {min_rows_per_symbol: 50}\nsplits: {n_splits: 2, min_train_size: 50}\n"
    "evaluation: {window: 50}\npromotion: {min_rows: 20}\nmodels: {families: [logreg]}\n"
)


class Arms:
    """The two P6 arms as whole processes; ``cold`` runs get fresh homes, warm ones reuse the last."""

    def __init__(self, root: Path, warm_parent: bool = True) -> None:
        self.root = root
        self.warm_parent = warm_parent
        self.count = 0
        self.series = 0
        (root / "tiny.yaml").write_text(TINY_CONFIG)
        self.homes: dict[str, Path] = {}

    def _home(self, arm: str, cold: bool) -> Path:
        if cold or arm not in self.homes:
            self.count += 1
            self.homes[arm] = self.root / f"{arm}-{self.count}"
        return self.homes[arm]

    def ephemeral(self, cold: bool) -> float:
        return _timed([sys.executable, "-c", ONE_TASK], _clean_env(self._home("e", cold)), self.root)

    def driftline(self, cold: bool) -> float:
        from driftline.synthetic import make_labelled_series

        home = self._home("d", cold)
        self.series += 1  # new rows every run: a warm run trains, it is not a finished rerun
        data = f"tiny-{self.series}.csv"
        make_labelled_series(n_rows=TINY_ROWS, seed=self.series).to_csv(self.root / data, index=False)
        args = [
            str(BIN / "driftline"),
            "train",
            "--config",
            "tiny.yaml",
            "--data",
            data,
            "--target",
            "label",
            "--target-col",
            "y",
            "--summary-json",
            str(home / "s.json"),
        ]
        env = _clean_env(home) if self.warm_parent else {**_clean_env(home), "DRIFTLINE_FORK_SERVER": "0"}
        seconds = _timed(args, env, self.root)
        summary = json.loads((home / "s.json").read_text())
        if summary.get("decision") is None or summary.get("rerun_of"):
            raise RuntimeError(f"driftline train on {data} trained nothing: {summary}")
        return seconds


def measure(quick: bool = False) -> dict[str, Any]:
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="driftline-bench-startup-") as tmp:
        root = Path(tmp)
        help_times = [_timed([str(BIN / "driftline"), "--help"], _clean_env(root / "h"), root) for _ in range(3)]
        arms = Arms(root, warm_parent=not quick)  # --quick: no later command would use a parent
        if not quick:  # untimed: both arms once, the same way
            arms.driftline(cold=True)
            arms.ephemeral(cold=True)
        runs: dict[str, list[float]] = {"cold_e": [], "cold_d": [], "warm_e": [], "warm_d": []}
        for i in range(rounds):
            # A cold run, then a warm one on the home it left; the arm that goes first alternates.
            order = ("e", "d") if i % 2 == 0 else ("d", "e")
            for arm in order:
                runs[f"cold_{arm}"].append(getattr(arms, {"e": "ephemeral", "d": "driftline"}[arm])(cold=True))
            if quick:  # --quick: one cold run of each, as many processes as before (its timings are not judged)
                continue
            for arm in reversed(order):
                runs[f"warm_{arm}"].append(getattr(arms, {"e": "ephemeral", "d": "driftline"}[arm])(cold=False))
    cold = ratio_summary(runs["cold_d"], runs["cold_e"])
    warm = ratio_summary(runs["warm_d"], runs["warm_e"]) if runs["warm_d"] else None
    return {
        "cli_help_seconds": statistics.median(help_times),
        "cli_help_seconds_spread": spread(help_times),
        "startup_tiny_rows": TINY_ROWS,
        "startup_rounds": rounds,
        "ephemeral_one_task_seconds": statistics.median(runs["cold_e"]),
        "driftline_fixed_seconds": statistics.median(runs["cold_d"]),
        "ephemeral_one_task_warm_seconds": statistics.median(runs["warm_e"]) if warm else None,
        "driftline_fixed_warm_seconds": statistics.median(runs["warm_d"]) if warm else None,
        "startup_runs": runs,
        "local_overhead_ratio": cold["ratio"],
        "local_overhead_ratio_spread": cold,
        "local_overhead_ratio_warm": warm["ratio"] if warm else None,
        "local_overhead_ratio_warm_spread": warm,
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
