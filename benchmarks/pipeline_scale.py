"""P2 flow overhead, P3 cached rerun and P4 scale, on a labelled series of N rows x 50 float features.

Every arm runs in its own fresh subprocess (``--child``), so peak RSS is that arm's alone
(``ru_maxrss``) and nothing is warm from another arm. Data: ``make_frame`` writes a Parquet file of one
minute-bar series, 50 features (two carry the signal), a 0/1 label.

* ``plain`` (P4): the core functions the flow calls, called directly, no Prefect, no MLflow — load,
  contract, features, hold-out split, walk-forward (5 folds x logreg + LightGBM 200 trees, sigmoid
  calibration on each training window's tail), challenger refit, drift reference (with its null over
  the timestamps, as the flow's ``log_reference_task`` builds it), hold-out evaluation.
  ``scale_1m_seconds`` and ``scale_1m_peak_rss_gib`` at 1M
  rows; ``scale_growth_ratio`` = time at 2.5M rows / time at 0.25M rows (10x the rows).
* ``flow`` (P2, P3): ``train_and_promote`` on the same file and config, in a process whose Prefect API
  (ephemeral) and MLflow store (SQLite) were started by a warm-up flow first, so only the run is timed.
  ``flow_overhead_ratio`` = median flow seconds / median plain seconds. Then the same flow again on the
  same data, config and code: ``cached_rerun_ratio`` = median rerun seconds / median first flow seconds.
* The 1M-row arms run in ``ROUNDS`` interleaved rounds (plain flow, flow plain, ...), each arm a fresh
  process with its own stores, both after the same untimed bytecode warm-up; every ratio is stored with
  its rounds' spread (``*_spread``). The growth runs (0.25M and 2.5M rows) are one run each.

Quick mode (CI) checks that both arms still run, not their timings: 10k rows, no growth run, no bytecode
warm-up, both arms in one child (imports paid once), and the flow on the benchmark run's shared Prefect
server when there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.processes import run_child, shared_prefect_api
from benchmarks.stats import ROUNDS, ratio_summary, spread

N_FEATURES = 50
CONFIG = {
    "name": "bench",
    "contract": {"min_rows_per_symbol": 100},
    "target": {"kind": "label", "label_lags": [1]},
    "splits": {"n_splits": 5, "min_train_size": 1000},
    "evaluation": {"window": 5000},
    "models": {
        "families": ["logreg", "lightgbm"],
        "params": {"lightgbm": {"n_estimators": 200, "num_leaves": 31}},
        "linear_base": [],  # the plain booster these parts have measured since they were written
    },
    "features": {"calendar": False},
    # 1M rows x 51 features is above scale.streaming_above_cells: P2-P4 measure the in-memory path (the
    # streamed one is benchmarks/scale_out.py's).
    "scale": {"path": "memory"},
}


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """One minute-bar series: ``timestamp``, ``x0..x49`` (float32), ``y`` depending on x0 and x1."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, N_FEATURES), dtype=np.float32)
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1]
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(N_FEATURES)])
    frame.insert(0, "timestamp", pd.date_range("2015-01-01", periods=rows, freq="min"))
    frame["y"] = y
    return frame


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _config(path: Path):
    from driftline.config import load_config

    return load_config(str(path), {"data.path": str(path.with_suffix(".parquet")), "data.target_col": "y"})


def child_plain(config_path: Path) -> dict[str, Any]:
    """The pipeline's core calls, in the flow's order, without Prefect or MLflow."""
    from driftline.contracts import enforce_contract, validate_frame
    from driftline.drift import build_reference, evidently_report, scored_sample
    from driftline.evaluation import evaluate_challenger, holdout_split, scorer
    from driftline.features import Where, build_features
    from driftline.ingest import load_data
    from driftline.training import fit_challenger, run_walk_forward

    config = _config(config_path)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as stage:
        loaded = load_data(config.data, need_target=True, stage_root=Path(stage))
    report = validate_frame(loaded.frame, config.contract, config.model_name, source=loaded.source)
    clean = enforce_contract(report, config.contract, loaded.source)
    features = build_features(clean, config.features, config.target, Where(loaded.source, "y"))
    development, holdout = holdout_split(features, config.evaluation.window, config.gap)
    result = run_walk_forward(development, config.fit_spec)
    del loaded  # the flow keeps only its lineage (LoadedData.without_rows) once its development steps are done
    model = fit_challenger(development, result.selected, config.fit_spec, result)
    pooled = result.pooled[result.selected]
    build_reference(  # as the flow's log_reference_task: with the timestamps, so with the drift null
        development.X,
        model.predict_proba(development.X)[:, 1],
        {"brier": pooled["brier"], "ece": pooled["ece"]},
        config.drift.bins,
        times=development.times,
        null_windows=config.drift.null_windows,
    )
    # The Evidently report of training vs hold-out is pipeline work (the flow's training_report_task), not
    # orchestration: the plain path builds it too, on the same capped samples.
    cap = config.drift.report_sample
    with tempfile.TemporaryDirectory() as report_dir:
        evidently_report(scored_sample(development, model, cap), scored_sample(holdout, model, cap), cap, report_dir)
    evaluate_challenger(
        holdout,
        scorer(model),
        None,
        float(development.y.mean()),
        config.decision_spec,
    )
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_gib": _peak_rss_gib(),
        "auc": result.pooled[result.selected]["auc"],
    }


def child_flow(config_path: Path) -> dict[str, Any]:
    """The training flow twice on the same data: first run, then the rerun (cached)."""
    from prefect import flow

    from driftline.adapters import registry
    from driftline.config import Settings
    from flows.training import train_and_promote

    @flow(name="warm-up")
    def warm_up() -> int:
        return 1

    warm_up()  # starts the ephemeral Prefect API; untimed
    registry.MlflowStore.from_settings(Settings.from_env()).ensure_experiment(
        "driftline-warm-up"
    )  # creates the MLflow store; untimed
    data = str(config_path.with_suffix(".parquet"))
    timings = []
    summaries = []
    for _ in range(2):
        started = time.perf_counter()
        summaries.append(train_and_promote(config_file=str(config_path), data=data, target_col="y"))
        timings.append(time.perf_counter() - started)
    return {
        "first_seconds": timings[0],
        "rerun_seconds": timings[1],
        "peak_rss_gib": _peak_rss_gib(),
        "versions": [s["model_version"] for s in summaries],
        "rerun_of": summaries[1].get("rerun_of"),
    }


def child_both(config_path: Path) -> dict[str, Any]:
    """--quick: both arms in one process (its imports paid once; the flow arm runs warm)."""
    return {"plain": child_plain(config_path), "flow": child_flow(config_path)}


def _run_child(kind: str, rows: int, workdir: Path, round_: int = 0) -> dict[str, Any]:
    config_path = workdir / f"bench-{rows}.yaml"
    if not config_path.with_suffix(".parquet").exists():
        import yaml

        make_frame(rows).to_parquet(config_path.with_suffix(".parquet"), index=False)
        config_path.write_text(yaml.safe_dump(CONFIG))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_", "DRIFTLINE_"))}
    home = workdir / f"home-{kind}-{rows}-{round_}"  # every round its own stores: no round reads another's cache
    home.mkdir(parents=True, exist_ok=True)  # Prefect makes PREFECT_HOME but not its parents
    env.update(
        DRIFTLINE_HOME=str(home),
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        # A fresh Prefect database on a busy 2-core machine can take longer than the default 20 s.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
    )
    if api := shared_prefect_api():
        env["PREFECT_API_URL"] = api
    done = run_child(
        [sys.executable, "-m", "benchmarks.pipeline_scale", "--child", kind, str(config_path)],
        env,
        timeout=3600,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} at {rows} rows failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _warm_bytecode() -> None:
    """Import the heavy libraries once, untimed: a fresh venv has no .pyc files, and whichever child
    imported a library first would pay for compiling it (11 s for Evidently and plotly here)."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import evidently.presets, plotly, prefect, mlflow, great_expectations, lightgbm, xgboost, sklearn",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )


def interleaved_arms(rows: int, workdir: Path, rounds: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rounds of both arms, alternating which goes first (plain flow, flow plain, ...), each arm a fresh
    process with fresh stores: the plain results and the flow results, one per round."""
    plains: list[dict[str, Any]] = []
    flows: list[dict[str, Any]] = []
    for i in range(rounds):
        for kind in ("plain", "flow") if i % 2 == 0 else ("flow", "plain"):
            (plains if kind == "plain" else flows).append(_run_child(kind, rows, workdir, i))
    return plains, flows


def measure(quick: bool = False) -> dict[str, Any]:
    rows = 10_000 if quick else 1_000_000
    rounds = 1 if quick else ROUNDS
    if not quick:  # --quick does not judge its timings
        _warm_bytecode()
    with tempfile.TemporaryDirectory(prefix="driftline-bench-scale-") as tmp:
        workdir = Path(tmp)
        plains: list[dict[str, Any]] = []
        flows: list[dict[str, Any]] = []
        if quick:
            both = _run_child("both", rows, workdir)
            plains, flows = [both["plain"]], [both["flow"]]
        else:
            plains, flows = interleaved_arms(rows, workdir, rounds)
        growth = None
        if not quick:  # one run per size: the growth ratio is reported from single runs
            small = _run_child("plain", 250_000, workdir)
            large = _run_child("plain", 2_500_000, workdir)
            growth = {
                "small_seconds": small["seconds"],
                "large_seconds": large["seconds"],
                "large_peak_rss_gib": large["peak_rss_gib"],
            }
    plain_seconds = [p["seconds"] for p in plains]
    first = [f["first_seconds"] for f in flows]
    rerun = [f["rerun_seconds"] for f in flows]
    overhead = ratio_summary(first, plain_seconds)
    cached = ratio_summary(rerun, first)
    peak = max(p["peak_rss_gib"] for p in plains)
    return {
        "scale_rows": rows,
        "scale_rounds": rounds,
        "scale_1m_seconds": statistics.median(plain_seconds) if not quick else None,
        "scale_1m_seconds_spread": spread(plain_seconds) if not quick else None,
        "scale_1m_peak_rss_gib": peak if not quick else None,
        "scale_plain_seconds": statistics.median(plain_seconds),
        "scale_plain_peak_rss_gib": peak,
        "scale_growth_ratio": growth["large_seconds"] / growth["small_seconds"] if growth else None,
        "scale_growth": growth,
        "flow_seconds": statistics.median(first),
        "flow_overhead_ratio": overhead["ratio"],
        "flow_overhead_ratio_spread": overhead,
        "rerun_seconds": statistics.median(rerun),
        "cached_rerun_ratio": cached["ratio"],
        "cached_rerun_ratio_spread": cached,
        "rerun_registered_versions": [f["versions"] for f in flows],
        "flow_peak_rss_gib": max(f["peak_rss_gib"] for f in flows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--child", choices=["plain", "flow", "both"], help=argparse.SUPPRESS)
    parser.add_argument("config", nargs="?", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        result = {"plain": child_plain, "flow": child_flow, "both": child_both}[args.child](args.config)
        print(json.dumps(result))
        return 0
    print(json.dumps(measure(args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
