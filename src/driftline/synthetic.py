"""Synthetic OHLCV panels with volatility clustering, for tests and benchmarks (nothing is downloaded)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_ohlcv_panel(
    n_symbols: int = 2,
    n_days: int = 800,
    seed: int = 0,
    start: str = "2015-01-01",
    drift: float = 0.0002,
    garch: tuple[float, float, float] = (2e-6, 0.08, 0.9),
) -> pd.DataFrame:
    """Daily bars from a GARCH(1,1) return process, so volatility regimes are real and predictable.

    Returns:
        Columns ``Date, Symbol, Open, High, Low, Close, Volume`` in symbol then date order, as a CSV
        export from a data vendor would have them.
    """
    rng = np.random.default_rng(seed)
    omega, alpha, beta = garch
    dates = pd.bdate_range(start, periods=n_days)
    frames = []
    for k in range(n_symbols):
        variance = omega / (1 - alpha - beta)
        returns = np.empty(n_days)
        for t in range(n_days):
            returns[t] = drift + np.sqrt(variance) * rng.standard_normal()
            variance = omega + alpha * (returns[t] - drift) ** 2 + beta * variance
        close = 50.0 * (k + 1) * np.exp(np.cumsum(returns))
        open_ = close * np.exp(-returns * rng.uniform(0.2, 0.8, n_days))
        spread = np.abs(returns) + np.abs(rng.normal(0, 0.004, n_days))
        high = np.maximum(open_, close) * np.exp(spread * rng.uniform(0.2, 0.6, n_days))
        low = np.minimum(open_, close) * np.exp(-spread * rng.uniform(0.2, 0.6, n_days))
        volume = np.round(1e6 * np.exp(rng.normal(0, 0.3, n_days) + 20 * np.abs(returns)))
        frames.append(
            pd.DataFrame(
                {
                    "Date": dates.strftime("%Y-%m-%d"),
                    "Symbol": f"SYM{k}",
                    "Open": open_.round(4),
                    "High": high.round(4),
                    "Low": low.round(4),
                    "Close": close.round(4),
                    "Volume": volume,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def make_labelled_series(
    n_rows: int = 1500, n_features: int = 4, seed: int = 0, start: str = "2020-01-01"
) -> pd.DataFrame:
    """A labelled series: ``timestamp``, numeric features ``x0..`` and a binary ``y`` that depends on x0, x1."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, n_features))
    logit = 1.2 * X[:, 0] - 0.8 * X[:, 1]
    y = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(n_features)])
    frame.insert(0, "timestamp", pd.date_range(start, periods=n_rows, freq="h").strftime("%Y-%m-%dT%H:%M:%S"))
    frame["y"] = y
    return frame
