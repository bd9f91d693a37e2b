"""Benchmark data at scale: a synthetic OHLCV panel and pairs of feature frames with known drift.

``make_panel`` is the large, vectorised sibling of ``driftline.synthetic.make_ohlcv_panel``: all symbols are
simulated at once with numpy (the only recursion, the log-variance AR(1), steps through time with one vector
operation over all symbols per day), so a million rows take about a second and ten million fit in a few GiB.

``make_feature_frames`` draws a reference and a current frame of float (and a few categorical) features in
which a known subset of columns is shifted by amounts that any sensible drift test flags, and the rest is
drawn again from the same distribution: the ground truth for the drift speed benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

PANEL_COLUMNS = ("Date", "Symbol", "Open", "High", "Low", "Close", "Adj Close", "Volume")

BASE_DAILY_VOL = 0.015  # ~24% a year
VOL_PERSISTENCE = 0.98  # AR(1) coefficient of the log variance: regimes last ~50 trading days
LOG_VARIANCE_SD = 0.8  # stationary sd of the log variance at signal=1 (volatility x/÷ 1.5 per sd)


@dataclass(frozen=True)
class PanelDrift:
    """A regime change from a fraction ``at`` of the dates onwards, identical for every symbol.

    Attributes:
        at: where the new regime starts, as a fraction of the panel's dates (0 < at < 1).
        volatility: multiplier on every symbol's return volatility.
        mean_return: added to every daily log return.
        volume: multiplier on traded volume.
    """

    at: float = 0.7
    volatility: float = 2.0
    mean_return: float = 0.0
    volume: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 < self.at < 1.0:
            raise ValueError(f"PanelDrift.at must be inside (0, 1), got {self.at}")
        if self.volatility <= 0 or self.volume <= 0:
            raise ValueError("PanelDrift.volatility and PanelDrift.volume must be positive")


def _ar1(shocks: np.ndarray, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) paths along axis 1 with sd ``sd``, driven by standard normal ``shocks`` (reused)."""
    # Time-major so each step is one contiguous vector operation over all symbols.
    path = np.ascontiguousarray(shocks.T)
    path[1:] *= sd * math.sqrt(1 - phi**2)
    path[0] *= sd  # started in the stationary distribution
    for t in range(1, len(path)):
        path[t] += phi * path[t - 1]
    return np.ascontiguousarray(path.T)


def make_panel(
    rows: int,
    n_symbols: int = 100,
    seed: int = 0,
    signal: float = 1.0,
    drift: PanelDrift | None = None,
    start: str = "1980-01-01",
) -> pd.DataFrame:
    """Daily OHLCV bars for ``n_symbols`` symbols from a stochastic-volatility return process.

    Each symbol's log variance follows a stationary AR(1) (persistence ``VOL_PERSISTENCE``) whose sd is
    ``LOG_VARIANCE_SD * signal``: volatility clusters in regimes, so the next weeks' volatility is
    predictable from the last weeks' (the volatility target is learnable). ``signal=0`` gives constant
    volatility per symbol: nothing to learn beyond the symbol's level. Volume rises with the volatility
    regime and with the size of the day's move. Symbols differ in price level, volatility level and
    typical volume.

    Args:
        rows: total rows; spread over the symbols as evenly as possible (the last ``-rows % n_symbols``
            symbols have one day fewer).
        n_symbols: symbols in the panel; business days per symbol are ``ceil(rows / n_symbols)``, and
            must end before 2262 (the end of pandas' datetime range): use more symbols for 10M+ rows.
        seed: everything is drawn from ``numpy.random.default_rng(seed)``.
        signal: strength of the volatility regimes (>= 0).
        drift: a regime change (volatility level, mean return, volume) from ``drift.at`` of the dates on;
            None for a stationary panel.
        start: first business day.

    Returns:
        Columns ``Date`` (datetime64), ``Symbol`` (categorical ``SYM000``...), ``Open, High, Low, Close,
        Adj Close`` (float64; no corporate actions, so ``Adj Close == Close``) and ``Volume`` (int64), in
        symbol then date order.
    """
    if rows < 1 or n_symbols < 1:
        raise ValueError("rows and n_symbols must be at least 1")
    if signal < 0:
        raise ValueError(f"signal must be >= 0, got {signal}")
    n_symbols = min(n_symbols, rows)
    n_days = math.ceil(rows / n_symbols)
    dates = pd.bdate_range(start, periods=n_days)  # raises OutOfBoundsDatetime when the panel is too long
    rng = np.random.default_rng(seed)
    shape = (n_symbols, n_days)

    # Log variance: x_t = phi x_{t-1} + e_t, started in its stationary distribution.
    sd = LOG_VARIANCE_SD * signal
    log_var = _ar1(rng.standard_normal(shape), VOL_PERSISTENCE, sd)
    level = BASE_DAILY_VOL * np.exp(rng.normal(0.0, 0.25, (n_symbols, 1)))
    sigma = level * np.exp((log_var - sd**2 / 2) / 2)  # E[sigma^2] = level^2 whatever the signal
    mean_return = np.full(shape, 0.0002)
    volume_factor = np.ones(shape)
    if drift is not None:
        after = slice(round(drift.at * n_days), None)
        sigma[:, after] *= drift.volatility
        mean_return[:, after] += drift.mean_return
        volume_factor[:, after] = drift.volume

    z = rng.standard_normal(shape)
    returns = mean_return + sigma * z
    del mean_return
    close = rng.uniform(20.0, 200.0, (n_symbols, 1)) * np.exp(np.cumsum(returns, axis=1))
    open_ = close * np.exp(-returns * rng.uniform(0.2, 0.8, shape))
    spread = np.abs(returns) + np.abs(rng.normal(0.0, 1.0, shape)) * 0.25 * sigma
    high = np.maximum(open_, close) * np.exp(spread * rng.uniform(0.2, 0.6, shape))
    low = np.minimum(open_, close) * np.exp(-spread * rng.uniform(0.2, 0.6, shape))
    del spread, returns, sigma
    typical = 1e6 * np.exp(rng.normal(0.0, 0.5, (n_symbols, 1)))
    volume = np.round(
        typical * volume_factor * np.exp(0.3 * rng.standard_normal(shape) + 0.5 * log_var + 0.4 * np.abs(z))
    )
    del log_var, z, volume_factor

    keep = np.ones(shape, dtype=bool)
    short = n_symbols * n_days - rows
    if short:
        keep[n_symbols - short :, -1] = False
    keep = keep.ravel()

    width = len(str(n_symbols - 1))
    symbols = pd.Categorical.from_codes(
        np.repeat(np.arange(n_symbols, dtype=np.int32), n_days)[keep],
        categories=[f"SYM{k:0{width}d}" for k in range(n_symbols)],
    )
    close_flat = close.ravel()[keep]
    return pd.DataFrame(
        {
            "Date": np.tile(dates.to_numpy(), n_symbols)[keep],
            "Symbol": symbols,
            "Open": open_.ravel()[keep],
            "High": high.ravel()[keep],
            "Low": low.ravel()[keep],
            "Close": close_flat,
            "Adj Close": close_flat.copy(),
            "Volume": volume.ravel()[keep].astype(np.int64),
        },
        columns=list(PANEL_COLUMNS),
    )


# --- feature frames with known drift ------------------------------------------------------------------------------

NUMERIC_DISTRIBUTIONS = ("normal", "lognormal", "student_t5", "uniform")
CATEGORIES = ("a", "b", "c", "d")
CATEGORY_REFERENCE = (0.4, 0.3, 0.2, 0.1)
CATEGORY_SHIFTED = (0.1, 0.2, 0.3, 0.4)
MEAN_SHIFT_SDS = 0.5
VARIANCE_FACTOR = 2.0
# Shifted numeric columns take these in turn: mean up, variance x2, mean down.
NUMERIC_SHIFTS = ("mean_up", "variance", "mean_down")
SHIFT_DESCRIPTIONS = {
    "mean_up": f"mean + {MEAN_SHIFT_SDS:g} sd",
    "mean_down": f"mean - {MEAN_SHIFT_SDS:g} sd",
    "variance": f"variance x {VARIANCE_FACTOR:g} (scaled about the mean)",
    "category_mix": f"category shares {list(CATEGORY_REFERENCE)} -> {list(CATEGORY_SHIFTED)}",
}


class FeatureFrames(NamedTuple):
    """A reference frame, a current frame and the columns shifted between them (name -> shift)."""

    reference: pd.DataFrame
    current: pd.DataFrame
    shifted: dict[str, str]


def population_mean_sd(distribution: str) -> tuple[float, float]:
    """Mean and sd of a numeric feature distribution of ``make_feature_frames``."""
    if distribution == "normal":
        return 0.0, 1.0
    if distribution == "lognormal":  # exp(N(0, 0.5^2))
        mean = math.exp(0.125)
        return mean, mean * math.sqrt(math.expm1(0.25))
    if distribution == "student_t5":
        return 0.0, math.sqrt(5 / 3)
    if distribution == "uniform":
        return 0.5, math.sqrt(1 / 12)
    raise ValueError(f"unknown distribution {distribution!r}")


def _draw(distribution: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if distribution == "normal":
        return rng.standard_normal(n)
    if distribution == "lognormal":
        return rng.lognormal(0.0, 0.5, n)
    if distribution == "student_t5":
        return rng.standard_t(5, n)
    if distribution == "uniform":
        return rng.random(n)
    raise ValueError(f"unknown distribution {distribution!r}")


def _shift(values: np.ndarray, distribution: str, shift: str | None) -> np.ndarray:
    mean, sd = population_mean_sd(distribution)
    if shift is None:
        return values
    if shift == "mean_up":
        return values + MEAN_SHIFT_SDS * sd
    if shift == "mean_down":
        return values - MEAN_SHIFT_SDS * sd
    if shift == "variance":
        return mean + math.sqrt(VARIANCE_FACTOR) * (values - mean)
    raise ValueError(f"unknown shift {shift!r}")


def feature_layout(n_features: int) -> tuple[list[str], list[str]]:
    """Names of the numeric and the categorical columns: ``x00..`` then ``cat0`` (and ``cat1``)."""
    n_categorical = 2 if n_features >= 6 else 1 if n_features >= 3 else 0
    n_numeric = n_features - n_categorical
    width = max(2, len(str(n_numeric - 1)))
    return [f"x{i:0{width}d}" for i in range(n_numeric)], [f"cat{i}" for i in range(n_categorical)]


def make_feature_frames(rows: int, n_features: int = 20, drifted_fraction: float = 0.4, seed: int = 0) -> FeatureFrames:
    """Reference and current frames of ``rows`` rows each where a known subset of columns is shifted.

    Numeric columns cycle through N(0, 1), exp(N(0, 0.5^2)), Student t (5 df) and U(0, 1); every other
    numeric column is float32 (the rest float64). With 6+ features the last two columns are categorical
    (``a..d`` strings, shares [.4, .3, .2, .1]), with 3-5 features the last one.

    ``round(drifted_fraction * n_features)`` columns are shifted: the first categorical column (shares
    reversed to [.1, .2, .3, .4]) when any column is, and numeric columns picked at random, taking in turn a
    mean shift of +0.5 sd, a variance x2 about the mean, and a mean shift of -0.5 sd. Every other column is
    drawn again from its reference distribution. At these sizes any sensible test agrees: Evidently's
    normed Wasserstein distance is >= 0.3 on shifted numeric columns (threshold 0.1), the Jensen-Shannon
    distance of the category mix is ~0.2 (threshold 0.1), and PSI is far above Driftline's thresholds.

    Returns:
        ``FeatureFrames(reference, current, shifted)``; ``shifted`` maps each shifted column to a
        description of its shift.
    """
    if rows < 1 or n_features < 1:
        raise ValueError("rows and n_features must be at least 1")
    if not 0.0 <= drifted_fraction <= 1.0:
        raise ValueError(f"drifted_fraction must be in [0, 1], got {drifted_fraction}")
    numeric, categorical = feature_layout(n_features)
    rng = np.random.default_rng(seed)
    n_shifted = round(drifted_fraction * n_features)
    shifted_categorical = categorical[:1] if n_shifted and categorical else []
    n_numeric_shifted = min(len(numeric), n_shifted - len(shifted_categorical))
    picked = sorted(rng.choice(len(numeric), size=n_numeric_shifted, replace=False).tolist())
    shift_of = {numeric[i]: NUMERIC_SHIFTS[k % len(NUMERIC_SHIFTS)] for k, i in enumerate(picked)}
    shift_of.update(dict.fromkeys(shifted_categorical, "category_mix"))

    reference: dict[str, np.ndarray] = {}
    current: dict[str, np.ndarray] = {}
    for i, name in enumerate(numeric):
        distribution = NUMERIC_DISTRIBUTIONS[i % len(NUMERIC_DISTRIBUTIONS)]
        dtype = np.float32 if i % 2 else np.float64
        reference[name] = _draw(distribution, rng, rows).astype(dtype, copy=False)
        current[name] = _shift(_draw(distribution, rng, rows), distribution, shift_of.get(name)).astype(
            dtype, copy=False
        )
    labels = np.asarray(CATEGORIES, dtype=object)
    for name in categorical:
        reference[name] = labels[rng.choice(len(CATEGORIES), size=rows, p=CATEGORY_REFERENCE)]
        p = CATEGORY_SHIFTED if name in shift_of else CATEGORY_REFERENCE
        current[name] = labels[rng.choice(len(CATEGORIES), size=rows, p=p)]
    return FeatureFrames(
        pd.DataFrame(reference),
        pd.DataFrame(current),
        {name: SHIFT_DESCRIPTIONS[shift_of[name]] for name in [*numeric, *categorical] if name in shift_of},
    )
