"""Classification, calibration and strategy metrics on out-of-sample rows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from driftline.config import MetricsConfig


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE over equal-mass bins: the row-weighted mean |observed rate - mean probability|."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(n_bins, len(p))):
        if len(chunk):
            total += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return float(total / len(p))


ROWS_PER_ECE_BIN = 100


def ece_bins_for(n_rows: int, max_bins: int) -> int:
    """Equal-mass bins with at least 100 rows each: with fewer, sampling noise alone (about
    0.4 / sqrt(rows per bin)) would push a perfectly calibrated model past any sensible cap."""
    return max(2, min(max_bins, n_rows // ROWS_PER_ECE_BIN))


@dataclass(frozen=True)
class BinnedEce:
    """An ECE a cap can judge: over ``bins`` equal-mass bins of at least 100 of its ``rows`` (``ece_bins_for``)."""

    value: float
    bins: int
    rows: int


def binned_ece(y: np.ndarray, p: np.ndarray, max_bins: int) -> BinnedEce:
    """The ECE of ``p`` over as many equal-mass bins (up to ``max_bins``) as the rows fill with 100 each."""
    bins = ece_bins_for(len(p), max_bins)
    return BinnedEce(expected_calibration_error(y, p, bins), bins, len(p))


def reliability_curve(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate per equal-mass bin (for reliability diagrams)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    rows = [
        {"mean_predicted": p[c].mean(), "observed_rate": y[c].mean(), "rows": len(c)}
        for c in np.array_split(order, min(n_bins, len(p)))
        if len(c)
    ]
    return pd.DataFrame(rows)


def precision_at_k(y: np.ndarray, p: np.ndarray, fraction: float) -> float:
    """Share of positives among the ``fraction`` of rows with the highest probability."""
    k = max(1, math.ceil(len(p) * fraction))
    top = np.argsort(-np.asarray(p), kind="stable")[:k]
    return float(np.asarray(y)[top].mean())


def classification_metrics(y: np.ndarray, p: np.ndarray, metrics: MetricsConfig) -> dict[str, float]:
    """Accuracy, AUC, Brier, log loss, ECE, precision@K and skill against the base rate.

    The base rate is the positive share of these same rows, which flatters the baseline slightly (it
    knows the test period's rate); a skill above zero is therefore conservative.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    base_rate = float(y.mean())
    base_brier = base_rate * (1 - base_rate)
    brier = float(brier_score_loss(y, p))
    two_classes = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "base_rate": base_rate,
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "brier": brier,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p, metrics.ece_bins),
        "precision_at_k": precision_at_k(y, p, metrics.top_k_fraction),
        "base_brier": base_brier,
        "brier_skill": 1 - brier / base_brier if base_brier > 0 else float("nan"),
    }


def _max_drawdown(log_equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a fraction of the peak's value."""
    if not len(log_equity):
        return 0.0
    peak = np.maximum.accumulate(np.concatenate([[0.0], log_equity]))[1:]
    return float(np.max(1 - np.exp(log_equity - peak)))


def strategy_book(p: np.ndarray, meta: pd.DataFrame, metrics: MetricsConfig, threshold: float = 0.5) -> pd.DataFrame:
    """Long/flat strategy per timestamp: long one period when the calibrated probability of "up" is above
    ``threshold``; with several symbols the book is equal-weight across those held. Costs are ``cost_bps``
    per unit of turnover. Columns: ``pnl`` (log return after costs), ``turnover``, ``market`` (equal-weight
    buy and hold), indexed by timestamp."""
    frame = meta[["symbol", "timestamp", "next_return"]].copy()
    frame["position"] = (np.asarray(p) > threshold).astype(float)
    frame = frame.sort_values(["symbol", "timestamp"])
    frame["trade"] = frame.groupby("symbol")["position"].diff().abs().fillna(frame["position"])
    frame["pnl"] = frame["position"] * frame["next_return"].fillna(0.0) - frame["trade"] * metrics.cost_bps / 1e4
    return frame.groupby("timestamp").agg(
        pnl=("pnl", "mean"), turnover=("trade", "mean"), market=("next_return", "mean"), exposure=("position", "mean")
    )


def timestamps_per_year(times: pd.Index | pd.Series) -> float:
    """Steps per year between the first and last of ``times`` (distinct): about 252 for daily equities, 365 for
    daily crypto, 1 for yearly data; 1 with fewer than two timestamps; 252 when they are not times (row
    numbers, as some callers' evaluation sets use)."""
    values = np.asarray(times)
    if not np.issubdtype(values.dtype, np.datetime64):
        return 252.0
    unique = pd.DatetimeIndex(pd.unique(values)).sort_values()
    years = (unique[-1] - unique[0]).total_seconds() / (365.25 * 86400) if len(unique) > 1 else 0.0
    return (len(unique) - 1) / years if years > 0 else 1.0


def strategy_metrics(
    p: np.ndarray, meta: pd.DataFrame, metrics: MetricsConfig, threshold: float = 0.5
) -> dict[str, float]:
    """Sharpe (annualised with ``periods_per_year``, else the book's own ``timestamps_per_year``), drawdown,
    hit rate, turnover and exposure of the long/flat book of ``strategy_book``."""
    book = strategy_book(p, meta, metrics, threshold)
    returns = book["pnl"].to_numpy()
    std = returns.std(ddof=1) if len(returns) > 1 else 0.0
    equity = np.cumsum(returns)
    held = meta["next_return"][np.asarray(p) > threshold]
    per_year = metrics.periods_per_year or timestamps_per_year(book.index)
    return {
        "sharpe": float(returns.mean() / std * math.sqrt(per_year)) if std > 0 else 0.0,
        "max_drawdown": _max_drawdown(equity),
        "hit_rate": float((held > 0).mean()) if len(held) else float("nan"),
        "turnover": float(book["turnover"].mean()),
        "exposure": float((np.asarray(p) > threshold).mean()),
        "total_log_return": float(equity[-1]) if len(equity) else 0.0,
    }
