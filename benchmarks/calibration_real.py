"""Calibration out of sample on real series shipped in installed packages (issue 15, item 4).

For each series: the default pipeline's walk-forward (features, hold-out window, every family, the
configured calibration), then the challenger refit and scored on the hold-out window. Prints, for the
selected family, pooled and worst-fold walk-forward ECE and log loss, and the hold-out ECE/log loss.

    .venv/bin/python -m benchmarks.calibration_real [--method auto|sigmoid|isotonic] [--only AAPL,glucose]

Series: bokeh_sampledata.stocks AAPL, IBM, MSFT (daily, volatility target, defaults) and
bokeh_sampledata.glucose as a label series (label glucose > 140, feature isig, 5-minute rows,
splits.min_train_size 10000).
Nothing is downloaded; the numbers are in docs/pipeline.md. The "before" numbers there are this script
run on the code before ``calibration.method: auto`` (commit a49f13c's ``src`` first on PYTHONPATH), whose
default was a sigmoid on each window's slice.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd


def stock_frame(symbol: str) -> pd.DataFrame:
    from bokeh_sampledata import stocks

    raw = pd.DataFrame(getattr(stocks, symbol))
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": pd.to_datetime(raw["date"], utc=True),
            "open": raw["open"].astype(float),
            "high": raw["high"].astype(float),
            "low": raw["low"].astype(float),
            "close": raw["close"].astype(float),
            "adj_close": raw["adj_close"].astype(float),
            "volume": raw["volume"].astype(float),
        }
    )


def glucose_frame() -> pd.DataFrame:
    from bokeh_sampledata.glucose import data

    frame = data.reset_index()
    for column in ("isig", "glucose"):  # the file spells a missing reading "nil"
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame = frame.dropna(subset=["isig", "glucose"])
    frame = frame.drop_duplicates("datetime").sort_values("datetime")
    return pd.DataFrame(
        {
            "symbol": "glucose",
            "timestamp": pd.to_datetime(frame["datetime"], utc=True),
            "isig": frame["isig"].astype(float).to_numpy(),
            "target": (frame["glucose"] > 140).astype(int).to_numpy(),
        }
    )


def measure(name: str, frame: pd.DataFrame, kind: str, method: str | None) -> dict[str, float | str]:
    from driftline.config import load_config
    from driftline.evaluation import holdout_split
    from driftline.features import build_features
    from driftline.metrics import ece_bins_for, expected_calibration_error
    from driftline.training import fit_challenger, run_walk_forward

    overrides = {"target.kind": kind, "name": "calibration-bench"}
    if kind == "label":
        overrides["data.target_col"] = "target"
        # 5-minute rows: the default first window (250 rows, a 50-row calibration slice of ~4 hours) holds a
        # single class; a first window of 10k rows (~5 weeks) is what a user of such a series would set.
        overrides["splits.min_train_size"] = 10_000
    if method:
        overrides["calibration.method"] = method
    config = load_config(None, overrides)
    started = time.perf_counter()
    features = build_features(
        frame.sort_values(["symbol", "timestamp"]).reset_index(drop=True), config.features, config.target
    )
    development, holdout = holdout_split(features, config.evaluation.window, config.gap)
    spec = config.fit_spec.model_copy(update={"is_direction": False})  # no strategy metrics: calibration only
    result = run_walk_forward(development, spec)
    family = result.selected
    folds = [f.metrics for f in result.folds if f.family == family]
    model = fit_challenger(development, family, spec, result)
    y_hold = holdout.y.to_numpy()
    p_hold = model.predict_proba(holdout.X)[:, 1]
    p_clip = np.clip(p_hold, 1e-6, 1 - 1e-6)
    row = {
        "series": name,
        "rows": len(features.y),
        "family": family,
        "pooled_ece": result.pooled[family]["ece"],
        "worst_fold_ece": max(m["ece"] for m in folds),
        "pooled_log_loss": result.pooled[family]["log_loss"],
        "worst_fold_log_loss": max(m["log_loss"] for m in folds),
        "holdout_ece": expected_calibration_error(y_hold, p_hold, ece_bins_for(len(y_hold), config.metrics.ece_bins)),
        "holdout_log_loss": float(-np.mean(y_hold * np.log(p_clip) + (1 - y_hold) * np.log(1 - p_clip))),
        "calibration": ",".join(getattr(f, "calibration", "") or "-" for f in result.folds if f.family == family),
        "challenger_calibration": str(getattr(model, "calibration_", getattr(model, "method", "-"))),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default=None, help="calibration.method (default: the config default)")
    parser.add_argument("--only", default="AAPL,IBM,MSFT,glucose")
    args = parser.parse_args()
    for name in args.only.split(","):
        if name == "glucose":
            row = measure(name, glucose_frame(), "label", args.method)
        else:
            row = measure(name, stock_frame(name), "volatility", args.method)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
