"""The probability above which a model acts, tuned on its calibration slice for a stated objective."""

from __future__ import annotations

import numpy as np

GRID_STEP = 0.01


def tune_threshold(
    y: np.ndarray,
    p: np.ndarray,
    objective: str,
    low: float,
    high: float,
    returns: np.ndarray | None = None,
    top_k_fraction: float = 0.1,
) -> float:
    """Best threshold in ``[low, high]`` for ``objective`` (``none`` keeps 0.5, clipped to the bounds).

    Objectives: ``f1`` of the positive class; ``precision_at_k``: act on the top ``top_k_fraction`` of
    rows; ``strategy_return``: the summed next-period return of acting (long/flat). Ties go to the
    threshold closest to 0.5, so a flat objective leaves the usual cut.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if objective == "none" or len(p) == 0:
        return float(np.clip(0.5, low, high))
    if objective == "precision_at_k":
        return float(np.clip(np.quantile(p, 1 - top_k_fraction), low, high))
    grid = np.round(np.arange(low, high + GRID_STEP / 2, GRID_STEP), 6)
    acts = p[None, :] >= grid[:, None]
    if objective == "f1":
        true_pos = (acts * y).sum(axis=1)
        score = 2 * true_pos / np.maximum(acts.sum(axis=1) + y.sum(), 1)
    elif objective == "strategy_return":
        if returns is None:
            raise ValueError("threshold objective 'strategy_return' needs next-period returns (a price target)")
        score = (acts * np.nan_to_num(np.asarray(returns, dtype=float))).sum(axis=1)
    else:
        raise ValueError(f"unknown threshold objective {objective!r}")
    best = np.flatnonzero(np.isclose(score, score.max()))
    return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])
