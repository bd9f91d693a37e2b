"""Settings fitted to short data before the features are built: the contract's minimum rows per symbol and
the features' trailing windows.

The defaults suit several years of daily bars: a symbol needs 100 clean rows, and the trailing windows reach
250 rows (the volatility-vs-median features and the volatility target's threshold). On yearly or monthly
data, or a panel of short series, no symbol has 100 rows, or the windows take most of each symbol's rows
before a row has every feature, and the sizes (``driftline.sizing``) cannot fit what is left. Only then are
the settings the user did not set lowered: the minimum to a quarter of the longest symbol's rows (at least
``MIN_ROWS_FLOOR``), the windows scaled down together by the largest factor in ``SCALES`` whose warm-up
leaves data the sizes fit (the least change), or, when none does, by the one that leaves the most rows (the
sizing's error then names the sizes that would fit). Each change is a warning and an entry in the run's
``adjusted``; a setting the user set is never changed. Data the defaults fit keeps them.

The warm-up is measured, not estimated: the features of the longest symbol under each candidate, and its
first and last row with every feature and a target; every symbol is taken to lose as many rows. The
streamed path (``scale``) builds its feature store one symbol at a time and keeps the configured values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.config import PipelineConfig
from driftline.errors import DataError
from driftline.ingest import ColumnMap, LoadedData
from driftline.sizing import WINDOW_KEYS, Adjustment, SizedConfig, size_to_data, sizes_fit

logger = logging.getLogger(__name__)

SCALES = (0.75, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05, 0.03)
"""The factors tried, largest first: each window the user did not set becomes ``max(its floor, round(window x
factor))`` (the return windows: each so, at least 1; a price target's label lags: none); the floors are
the config's least values (2 for the volatility windows, 10 for the z-score and median windows) and the order
the config requires (``vol_short < vol_mid < vol_long``, ``macd_fast < macd_slow``)."""


MIN_ROWS_KEY = "contract.min_rows_per_symbol"
SYMBOL_KEY = "data.symbol_col"

MIN_ROWS_FLOOR = 10
"""The least ``contract.min_rows_per_symbol`` chosen automatically: fewer rows cannot hold a warm-up and a
label."""


@dataclass(frozen=True)
class DataFit:
    """The config with settings fitted to the data, what was changed, and the fitted settings the user did not
    set (a retrain fits them again on its own data)."""

    config: PipelineConfig
    adjustments: tuple[Adjustment, ...] = ()
    automatic: tuple[str, ...] = ()

    def sized(self, times: np.ndarray, labels: np.ndarray | None = None) -> SizedConfig:
        """The sizes fitted to the feature rows' ``times`` (and ``labels``) on these windows, with every change
        made."""
        sized = size_to_data(self.config, times, labels)
        return SizedConfig(
            sized.config,
            sized.timestamps,
            self.adjustments + sized.adjustments,
            sized.automatic + self.automatic,
        )


def fit_min_rows(config: PipelineConfig, frame: pd.DataFrame) -> DataFit:
    """``contract.min_rows_per_symbol`` for the loaded rows: as configured unless no symbol has that many rows
    and the user did not set it; then a quarter of the longest symbol's rows (at least ``MIN_ROWS_FLOOR``)."""
    contract = config.contract
    if "min_rows_per_symbol" in contract.model_fields_set:
        return DataFit(config)
    automatic = (MIN_ROWS_KEY,)
    longest = int(frame["symbol"].value_counts().max()) if len(frame) else 0
    # Kept when a symbol has enough rows, or when none has even the floor (the error names the configured one).
    if longest >= contract.min_rows_per_symbol or longest < MIN_ROWS_FLOOR:
        return DataFit(config, automatic=automatic)
    lowered = max(MIN_ROWS_FLOOR, longest // 4)
    if lowered >= contract.min_rows_per_symbol:
        return DataFit(config, automatic=automatic)
    reason = (
        f"no symbol has {contract.min_rows_per_symbol} rows (the longest has {longest}); a quarter of the longest, "
        f"at least {MIN_ROWS_FLOOR}"
    )
    adjustment = Adjustment(MIN_ROWS_KEY, contract.min_rows_per_symbol, lowered, reason)
    logger.warning("data too short for the contract's minimum: %s", adjustment)
    fitted = config.model_copy(update={"contract": contract.model_copy(update={"min_rows_per_symbol": lowered})})
    return DataFit(fitted, (adjustment,), automatic)


def fit_to_rows(config: PipelineConfig, loaded: LoadedData) -> DataFit:
    """What the loaded rows settle before the contract: its minimum rows per symbol (``fit_min_rows``) and a
    symbol column found by its rows (``pin_inferred_symbol``)."""
    return pin_inferred_symbol(fit_min_rows(config, loaded.frame), loaded.columns)


def pin_inferred_symbol(fitted: DataFit, columns: ColumnMap) -> DataFit:
    """``fitted`` with ``data.symbol_col`` set to a symbol column found by its rows (``ingest.infer_symbol``):
    the version's config then names it, so a batch of one symbol (where no time repeats, and nothing can be
    inferred) is still keyed by it when scored or monitored. A retrain infers it again."""
    if not columns.symbol_inferred or fitted.config.data.symbol_col is not None:
        return fitted
    config = fitted.config
    pinned = config.model_copy(update={"data": config.data.model_copy(update={"symbol_col": columns.symbol})})
    return DataFit(pinned, fitted.adjustments, (*fitted.automatic, SYMBOL_KEY))


def explicit_windows(config: PipelineConfig) -> frozenset[str]:
    """The windows the user set (in a file, an override or a setting), which are never changed."""
    sections = {"features": config.features, "target": config.target}
    return frozenset(k for k in WINDOW_KEYS if k.split(".")[1] in sections[k.split(".")[0]].model_fields_set)


def _value(config: PipelineConfig, key: str) -> int | tuple[int, ...]:
    section, name = key.split(".")
    value: int | tuple[int, ...] = getattr(getattr(config, section), name)
    return value


def scaled(config: PipelineConfig, factor: float, keys: frozenset[str]) -> PipelineConfig | None:
    """``config`` with the windows ``keys`` scaled by ``factor`` (within the floors and orders in ``SCALES``);
    None when a window the user set breaks the order with the scaled ones (a smaller factor may not)."""
    features, target = config.features, config.target

    def pick(key: str, floor: int, above: int = 0) -> int:
        value = _value(config, key)
        assert isinstance(value, int)
        return max(floor, above + 1, round(value * factor)) if key in keys else value

    vol_short = pick("features.vol_short", 2)
    vol_mid = pick("features.vol_mid", 2, vol_short)
    vol_long = pick("features.vol_long", 3, vol_mid)
    macd_fast = pick("features.macd_fast", 2)
    macd_slow = pick("features.macd_slow", 3, macd_fast)
    if not vol_short < vol_mid < vol_long or not macd_fast < macd_slow:
        return None
    returns = features.return_windows
    if "features.return_windows" in keys:
        returns = tuple(sorted({max(1, round(w * factor)) for w in returns}))
    update = {
        "return_windows": returns,
        "vol_short": vol_short,
        "vol_mid": vol_mid,
        "vol_long": vol_long,
        "zscore_window": pick("features.zscore_window", 10),
        "median_window": pick("features.median_window", 10),
        "rsi_window": pick("features.rsi_window", 2),
        "macd_fast": macd_fast,
        "macd_slow": macd_slow,
        "macd_signal": pick("features.macd_signal", 2),
    }
    changed = {k: v for k, v in update.items() if v != getattr(features, k)}
    # A price target's lags wait for its own warm-up and horizon: on short data they go first.
    lags = () if "target.label_lags" in keys else target.label_lags
    target_update = {"median_window": pick("target.median_window", 10), "label_lags": lags}
    changed_target = {k: v for k, v in target_update.items() if v != getattr(target, k)}
    new_target = target.model_copy(update=changed_target) if changed_target else target
    return config.model_copy(
        update={"features": features.model_copy(update=changed) if changed else features, "target": new_target}
    )


def _longest(clean: pd.DataFrame) -> pd.DataFrame:
    if clean["symbol"].nunique() <= 1:
        return clean
    longest = clean["symbol"].value_counts().index[0]
    return clean[clean["symbol"] == longest]


def lost_rows(config: PipelineConfig, probe: pd.DataFrame) -> tuple[int, int]:
    """Rows of ``probe`` (one symbol's clean rows) before its first and after its last row with every
    (informative) feature and a target; all of them when there is none."""
    from driftline.features import feature_table, usable_columns

    try:
        with np.errstate(all="ignore"):
            table, names = feature_table(probe, config.features, config.target)
    except DataError:
        return len(probe), 0
    usable = usable_columns(table, names)[0]
    labelled = (table[usable].notna().all(axis=1) & table["y"].notna()).to_numpy()
    if not labelled.any():
        return len(probe), 0
    where = np.flatnonzero(labelled)
    return int(where[0]), int(len(labelled) - 1 - where[-1])


def feature_times(clean: pd.DataFrame, head: int, tail: int) -> np.ndarray:
    """The timestamps of the rows left when every symbol loses its first ``head`` and last ``tail`` rows."""
    by_symbol = clean.groupby("symbol", sort=False)
    keep = (by_symbol.cumcount() >= head) & (by_symbol.cumcount(ascending=False) >= tail)
    return clean.loc[keep, "timestamp"].to_numpy()


def fit_windows(fitted: DataFit, clean: pd.DataFrame) -> DataFit:
    """``fitted`` with feature windows for the clean rows (sorted by symbol and time): the configured ones when
    the sizes fit the rows they leave, else the windows the user did not set scaled down by the largest factor
    that fits with test folds of the minimum length (one warning names the changes). When none does, the
    scaled ones that leave the most rows: the longest folds for sizes the user set, else the sizing's error
    says which sizes would fit with them."""
    config = fitted.config
    unset = frozenset(WINDOW_KEYS) - explicit_windows(config)
    unchanged = DataFit(config, fitted.adjustments, fitted.automatic + tuple(k for k in WINDOW_KEYS if k in unset))
    # target.median_window is the volatility target's threshold only; the lags of a price target's labels
    # wait for the target's own warm-up (a label target's lags only for label_delay rows: kept).
    keys = unset if config.target.kind == "volatility" else unset - {"target.median_window"}
    keys = keys if config.target.price_target else keys - {"target.label_lags"}
    if not keys or clean.empty:
        return unchanged
    probe = _longest(clean)
    head, tail = lost_rows(config, probe)
    if sizes_fit(config, feature_times(clean, head, tail)):
        return unchanged
    smallest: tuple[float, PipelineConfig, int] | None = None  # the candidate that leaves the most rows
    # First the windows as they are without a price target's label lags (they add its horizon to the warm-up).
    for factor in ((1.0,) if "target.label_lags" in keys and config.target.label_lags else ()) + SCALES:
        candidate = scaled(config, factor, keys)
        if candidate is None:
            continue
        ends = lost_rows(candidate, probe)
        lost = sum(ends)
        if sizes_fit(candidate, feature_times(clean, *ends), short_folds=False):
            return _scaled_fit(unchanged, candidate, factor, len(probe), head + tail, lost, "")
        if smallest is None or lost < smallest[2]:
            smallest = (factor, candidate, lost)
    if smallest is None or smallest[2] >= head + tail:
        return unchanged  # no scaling leaves more rows (a label series' warm-up is its lags): nothing to change
    # Nothing fits: the windows that leave the most rows, so the sizing's error says which sizes would fit.
    return _scaled_fit(
        unchanged, smallest[1], smallest[0], len(probe), head + tail, smallest[2], "; the most any scaling leaves"
    )


def _scaled_fit(
    unchanged: DataFit, candidate: PipelineConfig, factor: float, length: int, lost_before: int, lost: int, note: str
) -> DataFit:
    config = unchanged.config
    change = "without the label lags" if factor == 1.0 else f"scaled by {factor}"
    context = (
        f"the configured windows left {length - lost_before} of the longest symbol's {length} timestamps with every "
        f"feature and a target, too few for the sizes; {change}, they leave {length - lost}{note}"
    )
    adjustments = tuple(
        Adjustment(key, _value(config, key), _value(candidate, key), context)
        for key in WINDOW_KEYS
        if _value(candidate, key) != _value(config, key)
    )
    changes = ", ".join(f"{a.key} {a.before} -> {a.after}" for a in adjustments)
    logger.warning("data too short for the feature windows: %s (%s)", changes, context)
    return DataFit(candidate, unchanged.adjustments + adjustments, unchanged.automatic)
