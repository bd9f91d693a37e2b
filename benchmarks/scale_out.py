"""Issue 19, out of core: 10M rows x 50 features, 5 walk-forward folds x (LightGBM, XGBoost) + calibration,
streamed from a Parquet feature store (``driftline.streaming``), against the in-memory path at 1M rows.

Every arm runs in a fresh subprocess (``--child``) that samples the resident memory of its whole process
tree (itself and anything it starts) every 0.2 s: ``*_peak_rss_gib`` is that peak.

Data: ``write_store`` writes a feature store directly (the store's layout, ``symbol=<name>/part-0.parquet``
and the manifest), one symbol at a time: minute bars, 50 float32 features of which two carry the signal, a
0/1 label. Feature building is not timed here (``benchmarks/pipeline_scale.py`` times the in-memory one).

Keys (full run): ``scale_10m_seconds``, ``scale_10m_peak_rss_gib``, ``scale_growth_10m_ratio`` (10M time /
1M time, streamed; 10x the rows), ``scale_stream_1m_ratio`` (streamed / in-memory time at 1M rows),
``scale_stream_1m_peak_rss_gib``, ``scale_memory_1m_peak_rss_gib`` and both arms' pooled log loss.
The 1M arms run in ``benchmarks.stats.ROUNDS`` interleaved rounds (the ratio of their medians, with the
rounds' range in ``*_spread``); the 10M arm runs once, its growth is over the median 1M time.
``--quick``: 20k rows, 20 trees, both arms, keys ``scale_out_quick_*`` (that the arms run, not their numbers).

    .venv/bin/python -m benchmarks.scale_out --rows 1000000   # one size, both arms, JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.processes import run_child
from benchmarks.stats import ROUNDS, interleaved, ratio_summary, spread

N_FEATURES = 50
ROWS_PER_SYMBOL = 100_000  # 10M rows: 100 symbols, as ~100 stocks' minute bars over a year
TREES, QUICK_TREES, QUICK_ROWS = 100, 20, 20_000


def _models(trees: int) -> dict[str, Any]:
    return {
        "families": ["xgboost", "lightgbm"],
        "params": {"xgboost": {"n_estimators": trees}, "lightgbm": {"n_estimators": trees, "num_leaves": 31}},
        "linear_base": [],  # both arms fit the same plain boosters (the streamed path has no linear base)
    }


def write_store(root: Path, rows: int, seed: int = 0) -> Path:
    """A feature store of ``rows`` rows, one symbol's file at a time (never the whole panel in memory)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftline.feature_store import MANIFEST

    rng = np.random.default_rng(seed)
    n_symbols = max(1, -(-rows // ROWS_PER_SYMBOL))
    per_symbol = -(-rows // n_symbols)
    names = [f"x{i}" for i in range(N_FEATURES)]
    counts = {}
    for s in range(n_symbols):
        n = min(per_symbol, rows - s * per_symbol)
        X = rng.standard_normal((n, N_FEATURES), dtype=np.float32)
        logit = 1.2 * X[:, 0] - 0.8 * X[:, 1]
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
        columns = {name: X[:, i] for i, name in enumerate(names)}
        columns["y"] = y
        columns["timestamp"] = pd.date_range("2015-01-01", periods=n, freq="min").to_numpy()
        (root / f"symbol=S{s:03d}").mkdir(parents=True)
        pq.write_table(pa.table(columns), root / f"symbol=S{s:03d}" / "part-0.parquet", row_group_size=65_536)
        counts[f"S{s:03d}"] = n
        del X, columns
    (root / MANIFEST).write_text(json.dumps({"features": names, "meta": [], "symbols": counts}))
    return root


class TreeRss:
    """Peak resident memory of this process and all its descendants, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.2) -> None:
        self.peak = 0
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self._interval)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    @property
    def gib(self) -> float:
        return self.peak / 2**30


def _spec(trees: int) -> Any:
    from driftline.config import FitSpec, ModelsConfig, SplitConfig

    return FitSpec(splits=SplitConfig(n_splits=5, min_train_size=1000), gap=1, models=ModelsConfig(**_models(trees)))


def child(arm: str, store_path: Path, batch_rows: int, trees: int = TREES) -> dict[str, Any]:
    """One arm on the store: ``stream`` (driftline.streaming) or ``memory`` (read whole, run_walk_forward)."""
    from driftline.feature_store import FeatureStore

    spec = _spec(trees)
    with TreeRss() as rss:
        started = time.perf_counter()
        store = FeatureStore(store_path)
        if arm == "stream":
            from driftline.streaming import run_walk_forward_streaming

            result = run_walk_forward_streaming(store, spec, batch_rows=batch_rows)
        else:
            import pandas as pd

            from driftline.features import FeatureSet
            from driftline.training import run_walk_forward

            whole = store.read()
            features = FeatureSet(
                X=pd.DataFrame(whole.X, columns=list(store.feature_names)),
                y=pd.Series(whole.y),
                meta=whole.meta,
                feature_names=store.feature_names,
                latest=pd.DataFrame(),
            )
            del whole
            result = run_walk_forward(features, spec)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_gib": rss.gib,
        "log_loss": {f: result.pooled[f]["log_loss"] for f in result.pooled},
    }


def _arm(arm: str, store: Path, batch_rows: int, trees: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = run_child(
        [sys.executable, "-m", "benchmarks.scale_out", "--child", arm, str(store), str(batch_rows), str(trees)],
        env,
        timeout=6 * 3600,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"scale_out {arm} on {store} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_size(
    rows: int, workdir: Path, arms: tuple[str, ...] = ("stream", "memory"), trees: int = TREES
) -> dict[str, Any]:
    store = write_store(workdir / f"store-{rows}", rows)
    return {arm: _arm(arm, store, _batch_rows(rows), trees) for arm in arms}


def _batch_rows(rows: int) -> int:
    return 500_000 if rows > 100_000 else rows // 4  # several batches even at quick size


def interleaved_arms(
    workdir: Path, rows: int = 1_000_000, rounds: int = ROUNDS, trees: int = TREES
) -> dict[str, list[dict[str, Any]]]:
    """Both arms over ``rounds`` interleaved rounds (stream memory, memory stream, ...) on one store, each
    arm a fresh process: every arm's results, one per round."""
    store = write_store(workdir / f"store-{rows}", rows)
    results: dict[str, list[dict[str, Any]]] = {"stream": [], "memory": []}

    def arm(name: str) -> Any:
        def run() -> float:
            results[name].append(_arm(name, store, _batch_rows(rows), trees))
            return float(results[name][-1]["seconds"])

        return run

    interleaved({name: arm(name) for name in results}, rounds, warm_up=False)
    return results


def measure(quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="driftline-scale-out-") as tmp:
        workdir = Path(tmp)
        if quick:
            arms = measure_size(QUICK_ROWS, workdir, trees=QUICK_TREES)
            return {
                "scale_out_quick_rows": QUICK_ROWS,
                "scale_out_quick_seconds": arms["stream"]["seconds"],
                "scale_out_quick_peak_rss_gib": arms["stream"]["peak_rss_gib"],
                "scale_out_quick_stream_vs_memory": arms["stream"]["seconds"] / arms["memory"]["seconds"],
            }
        one = interleaved_arms(workdir)
        ten = measure_size(10_000_000, workdir, arms=("stream",))["stream"]
    stream = [r["seconds"] for r in one["stream"]]
    memory = [r["seconds"] for r in one["memory"]]
    ratio = ratio_summary(stream, memory)
    # The 10M arm runs once (~18 min): its growth over each 1M round gives the spread.
    growth = [ten["seconds"] / s for s in stream]
    return {
        "scale_10m_seconds": ten["seconds"],
        "scale_10m_peak_rss_gib": ten["peak_rss_gib"],
        "scale_growth_10m_ratio": ten["seconds"] / statistics.median(stream),
        "scale_growth_10m_ratio_spread": {"min": min(growth), "max": max(growth), "rounds": len(growth)},
        "scale_stream_1m_ratio": ratio["ratio"],
        "scale_stream_1m_ratio_spread": ratio,
        "scale_stream_1m_seconds_spread": spread(stream),
        "scale_memory_1m_seconds_spread": spread(memory),
        "scale_stream_1m_peak_rss_gib": max(r["peak_rss_gib"] for r in one["stream"]),
        "scale_memory_1m_peak_rss_gib": max(r["peak_rss_gib"] for r in one["memory"]),
        "scale_stream_1m_log_loss": one["stream"][0]["log_loss"],
        "scale_memory_1m_log_loss": one["memory"][0]["log_loss"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("ARM", "STORE", "BATCH_ROWS", "TREES"))
    parser.add_argument("--rows", type=int, help="one size, both arms (no 10M run)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        arm, store, batch_rows, trees = args.child
        print(json.dumps(child(arm, Path(store), int(batch_rows), int(trees))))
        return 0
    if args.rows:
        with tempfile.TemporaryDirectory(prefix="driftline-scale-out-") as tmp:
            print(json.dumps(measure_size(args.rows, Path(tmp))))
        return 0
    print(json.dumps(measure(quick=args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
