"""Point-in-time features and targets, per symbol.

A feature at time t uses only rows at or before t of the same symbol (rolling windows, EWMs and
backward shifts only). Every price feature is stationary by construction: log returns, ratios of short to
long volatility, and z-scores against trailing windows; no raw price or volume levels, which drift with
every regime and make tree models fail on later data.

Targets look forward by design; rows whose horizon runs past the data have no target and are kept
apart as the scoring tail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from driftline.config import FeatureConfig, TargetConfig
from driftline.errors import DataError, InsufficientDataError, show_span, show_time

logger = logging.getLogger(__name__)

META_COLUMNS = ("symbol", "timestamp")
KNOWN_LABEL = "known_label"
LAG_PREFIX = "target_lag_"  # the lagged known labels: target_lag_1 is the newest
# The share of positives among a series' last `features.level_window` known labels: not a model input
# (model_inputs), the level each row is shrunk toward (calibration.shrink).
LEVEL_COLUMN = "known_label_share"
CALENDAR_PREFIXES = ("day_of_week_", "month_")


# Each calendar encoding's cycle; it is learnable only from two whole cycles of history, sampled at least
# twice a cycle.
CALENDAR_CYCLE = {"day_of_week_": pd.Timedelta(days=7), "month_": pd.Timedelta(days=365)}
CALENDAR_MIN_SPAN = {"day_of_week_": pd.Timedelta(days=28), "month_": pd.Timedelta(days=730)}
CALENDAR_LONGEST = max(CALENDAR_MIN_SPAN.values()).to_pytimedelta()


def model_inputs(X: pd.DataFrame) -> pd.DataFrame:
    """The columns a base model learns from: every feature but the series' recent share of known labels
    (``LEVEL_COLUMN``), which only sets the level that shrinkage pulls toward."""
    return X.drop(columns=[LEVEL_COLUMN]) if LEVEL_COLUMN in X.columns else X


def _unlearnable_calendar(times: pd.Series) -> set[str]:
    """Calendar encodings a model cannot learn a season from; leave those out.

    Seen for fewer than two full cycles they teach a trend, not a season (a model trained on January-March
    would extrapolate in April); sampled less than twice a cycle (the median step between timestamps) they
    alias: one reading a year, each on January 1st, gives "day of the week" a value that only says the year.
    """
    # Through datetime.datetime: a span over ~292 years (yearly data) overflows pandas' nanosecond Timedelta.
    span = pd.Timedelta(min(times.max().to_pydatetime() - times.min().to_pydatetime(), CALENDAR_LONGEST))
    stamps = np.unique(times.to_numpy(dtype="datetime64[ns]"))
    step = pd.Timedelta(np.median(np.diff(stamps))) if len(stamps) > 1 else pd.Timedelta(0)
    return {
        f"{prefix}{part}"
        for prefix, minimum in CALENDAR_MIN_SPAN.items()
        if span < minimum or step * 2 > CALENDAR_CYCLE[prefix]
        for part in ("sin", "cos")
    }


def is_calendar_feature(name: str) -> bool:
    """Calendar encodings follow the clock; their "drift" in a short window means nothing."""
    return name.startswith(CALENDAR_PREFIXES)


@dataclass(frozen=True)
class FeatureSet:
    """Model inputs for rows with a known target, in time order, plus what metrics need beside them.

    ``meta`` has ``symbol``, ``timestamp``, ``known_label`` (the newest label known at t, ``label_delay``
    rows back; NaN before the first) and, for price data, ``next_return`` (the one-period log return after
    t, which a long/flat position taken at t earns).
    """

    X: pd.DataFrame
    y: pd.Series
    meta: pd.DataFrame
    feature_names: tuple[str, ...]
    latest: pd.DataFrame  # feature rows without a target yet (the newest h rows per symbol)

    @property
    def times(self) -> np.ndarray:
        return self.meta["timestamp"].to_numpy()

    @property
    def returns(self) -> np.ndarray | None:
        """Next-period log returns (price data only)."""
        return self.meta["next_return"].to_numpy() if "next_return" in self.meta else None

    def subset(self, rows: np.ndarray) -> FeatureSet:
        """The same features for the given row positions (the scoring tail is kept as is)."""
        return FeatureSet(
            X=self.X.iloc[rows].reset_index(drop=True),
            y=self.y.iloc[rows].reset_index(drop=True),
            meta=self.meta.iloc[rows].reset_index(drop=True),
            feature_names=self.feature_names,
            latest=self.latest,
        )


def _zscore(series: pd.Series, window: int, flat: float = np.nan) -> pd.Series:
    """``series`` in standard deviations from its trailing ``window``'s mean; ``flat`` where the window does
    not vary (every value its mean: no deviation to measure; NaN by default, a gap)."""
    mean = series.rolling(window, min_periods=window // 2).mean()
    std = series.rolling(window, min_periods=window // 2).std()
    z = (series - mean) / std.replace(0.0, np.nan)
    # A rolling std of equal values can come out as rounding noise (1e-9) instead of 0: flat all the same.
    return z if np.isnan(flat) else z.mask(std < FLAT_STD, flat)


FLAT_STD = 1e-9


def _floored(vol: pd.Series) -> pd.Series:
    """A rolling volatility whose flat stretches (no move in the window: integer readings, a price resting on
    its tick) read as the calmest volatility the series has shown before, not 0: every ratio and z-score of
    it stays defined, so those rows are scored and trained on instead of dropped as gaps. Rows with a
    volatility above 0 keep it; a 0 before any move stays a gap."""
    moving = vol.where(vol > FLAT_STD)
    return moving.fillna(moving.cummin().ffill().where(vol.notna()))


def _rsi(close: pd.Series, window: int) -> pd.Series:
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    rsi = 100 - 100 / (1 + gain / loss.replace(0.0, np.nan))
    # No loss since the series began: a series that has only risen is at 100 (not missing, which dropped the
    # rising half of a seasonal series), one that has not moved at 50.
    rsi = rsi.mask(loss.eq(0) & gain.gt(0), 100.0).mask(loss.eq(0) & gain.eq(0), 50.0)
    return (rsi - 50) / 50


def _price_features(group: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    close = group["adj_close"] if "adj_close" in group else group["close"]
    log_close = np.log(close)
    r1 = log_close.diff()
    out = pd.DataFrame(index=group.index)
    for window in cfg.return_windows:
        out[f"ret_{window}"] = log_close.diff(window)
    vol_s, vol_m, vol_l = (_floored(r1.rolling(w).std()) for w in (cfg.vol_short, cfg.vol_mid, cfg.vol_long))
    out[f"vol_ratio_{cfg.vol_short}_{cfg.vol_long}"] = vol_s / vol_l
    out[f"vol_ratio_{cfg.vol_mid}_{cfg.vol_long}"] = vol_m / vol_l
    out[f"vol_{cfg.vol_mid}_z"] = _zscore(np.log(vol_m), cfg.zscore_window)
    for name, vol in ((cfg.vol_short, vol_s), (cfg.vol_mid, vol_m)):
        # Volatility against its own trailing median: the regime-free form of "is it calm or stormy now".
        median = vol.rolling(cfg.median_window, min_periods=cfg.median_window // 2).median()
        out[f"vol_{name}_vs_median"] = np.log(vol / median)
    out[f"ret_{cfg.vol_mid}_sharpe"] = r1.rolling(cfg.vol_mid).mean() / vol_m
    out["abs_ret_1_z"] = r1.abs() / vol_m
    out[f"rsi_{cfg.rsi_window}"] = _rsi(close, cfg.rsi_window)
    ema_fast = close.ewm(span=cfg.macd_fast, adjust=False, min_periods=cfg.macd_fast).mean()
    ema_slow = close.ewm(span=cfg.macd_slow, adjust=False, min_periods=cfg.macd_slow).mean()
    macd = cast(pd.Series, np.log(ema_fast / ema_slow))  # a Series at run time; the stubs say ndarray
    out["macd"] = macd / vol_m
    out["macd_hist"] = (macd - macd.ewm(span=cfg.macd_signal, adjust=False).mean()) / vol_m
    if {"high", "low", "close"}.issubset(group.columns):
        # Same-day ratios of unadjusted prices: splits cancel out.
        # A bar without a range (high = low: one price all bar) is as narrow as the narrowest bar before it, and
        # its close sits mid-range: defined, as a flat stretch's volatility is. A series that never has a range
        # (a close copied into open, high and low) has none to measure: z 0, as a series without volume.
        log_range = cast(pd.Series, np.log(group["high"] / group["low"]))
        no_range = bool((log_range.fillna(0.0) <= FLAT_STD).all())  # no bar with a range, or no high and low
        out["range_z"] = 0.0 if no_range else _zscore(_floored(log_range), cfg.zscore_window)
        span = group["high"] - group["low"]
        in_range = (group["close"] - group["low"]) / span.where(span > 0)
        out["close_in_range"] = in_range.mask(span.eq(0), 0.5) if not no_range else 0.5
        if cfg.carry_limit and span.isna().any():
            # A bar without its high or low (the contract keeps its close): the last known range, as for volume.
            for column in ("range_z", "close_in_range"):
                out[column] = out[column].where(span.notna(), out[column].ffill(limit=cfg.carry_limit))
    if "volume" in group.columns:
        # No volume traded, or none recorded (an index, a currency pair: 0 in every row, or no value at all): z 0,
        # not a gap that would leave the symbol out of the panel.
        volume = group["volume"]
        z = _zscore(
            cast(pd.Series, np.log1p(volume.fillna(0.0) if volume.isna().all() else volume)),
            cfg.zscore_window,
            flat=0.0,
        )
        if cfg.carry_limit and volume.isna().any():
            # A bar without its volume (the contract keeps it): the last known z, as a label series' feature.
            z = z.where(volume.notna(), z.ffill(limit=cfg.carry_limit))
        out["volume_z"] = z
    return out


def _target(group: pd.DataFrame, target: TargetConfig) -> pd.Series:
    h = target.horizon
    if target.kind == "label":
        return group["target"].shift(-target.ahead) if target.ahead else group["target"]
    close = group["adj_close"] if "adj_close" in group else group["close"]
    log_close = np.log(close)
    if target.kind == "direction":
        forward = log_close.shift(-h) - log_close
        label: pd.Series = (forward > 0).astype("float64")
        return label.where(forward.notna() & (forward.abs() >= target.dead_band))
    r1 = log_close.diff()
    # Realised volatility over the next h periods, against the median of the same measure seen so far.
    realised_past = np.sqrt((r1**2).rolling(h).mean())
    realised_next = realised_past.shift(-h)
    threshold = realised_past.rolling(target.median_window, min_periods=target.median_window // 2).median()
    label = cast(pd.Series, (realised_next > threshold).astype("float64"))
    return label.where(realised_next.notna() & threshold.notna())


@dataclass(frozen=True)
class Where:
    """Where rows come from, as an error message names it: the data's file or URI, and its label column as the
    data names it."""

    source: str = ""
    target_name: str | None = None

    @property
    def prefix(self) -> str:
        """``"<source>: "`` to start a message with, or nothing."""
        return f"{self.source}: " if self.source else ""

    def target(self, target: TargetConfig) -> str:
        """The target as a message names it."""
        if target.kind == "label":
            return f"target column {self.target_name!r}" if self.target_name else "the label target column"
        return f"the {target.kind} target (built from the prices)"


NOWHERE = Where()
# A label series' categorical feature is ``<column>=<value>`` (``weekday=monday``; ``ingest.category_features``).
CATEGORY_MARK = "="


def warm_up_note(count_in: int, count_left: int, features: FeatureConfig, unit: str = "timestamps") -> str:
    """For a too-short error: how much of the data the features' trailing windows took before a row had every
    feature, and the keys that size them, when that is a tenth of the data or more (yearly or monthly series, or
    a panel of short series, on the defaults, which are sized for daily data); else nothing. ``unit``:
    ``timestamps`` (the sizing's count) or ``rows`` (every symbol loses its first rows)."""
    taken = count_in - count_left
    if count_in <= 0 or taken < count_in / 10:
        return ""
    windows = sorted(
        (
            ("features.median_window", features.median_window),
            ("features.zscore_window", features.zscore_window),
            ("features.vol_long", features.vol_long),
            ("features.macd_slow", features.macd_slow),
            ("features.return_windows", max(features.return_windows)),
            ("features.rsi_window", features.rsi_window),
        ),
        key=lambda item: -item[1],
    )
    keys = ", ".join(f"{key} {value}" for key, value in windows[:4])
    took = (
        f"took the first {taken} of {count_in} timestamps before a row had every feature"
        if unit == "timestamps"
        else f"left {count_left} of {count_in} rows with every feature (each symbol's first rows go to them)"
    )
    return (
        f"; the features' trailing windows {took} (their sizes: {keys}, counted in rows; smaller ones suit "
        "yearly or monthly data)"
    )


def feature_table(
    frame: pd.DataFrame, features: FeatureConfig, target: TargetConfig, where: Where = NOWHERE
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Every row's features, meta columns and target ``y`` (NaN where unknown), in time order.

    Raises:
        DataError: no feature column can be built, or a label target is not binary 0/1.
    """
    parts = []
    # One symbol (a single series): no groupby copy of the whole frame.
    groups = (
        [(frame["symbol"].iloc[0], frame)] if frame["symbol"].nunique() <= 1 else frame.groupby("symbol", sort=True)
    )
    for symbol, group in groups:
        if not group["timestamp"].is_monotonic_increasing:
            group = group.sort_values("timestamp", kind="stable")
        has_prices = "close" in group.columns or "adj_close" in group.columns
        out = _price_features(group, features) if has_prices else pd.DataFrame(index=group.index)
        # The other columns gathered, then added at once: inserted one by one, a label series' hundred feature
        # columns split the frame into blocks that pandas warned about ("highly fragmented") at every insert.
        added: dict[str, Any] = {}
        if target.kind == "label":
            extra = [
                c
                for c in group.columns
                if c not in (*META_COLUMNS, "target", "open", "high", "low", "close", "adj_close", "volume")
            ]
            # A value missing after a first one is the last one known (known at t, as every feature must be), for
            # a few rows: a sensor's dropout of days (bokeh's CGM: 1,061 readings) is no value to stand on.
            carried = group[extra].ffill(limit=features.carry_limit) if features.carry_limit else group[extra]
            out = pd.concat([out, carried], axis=1)
            for lag in target.label_lags:
                # A row's label is known label_delay rows later: y_{t-d} is the newest one known at t (lag 1); with
                # target.ahead a, y_t is the column's value a rows on, so y_{t-d} is the column d - a rows back
                # (d = a: the state at t itself).
                added[f"{LAG_PREFIX}{lag}"] = group["target"].shift(target.known_after - target.ahead + lag - 1)
        if features.calendar:
            # Cyclic encodings: bounded, and December sits next to January (no extrapolation in a linear model).
            for unit, values, period in (
                ("day_of_week", group["timestamp"].dt.dayofweek, 7),
                ("month", group["timestamp"].dt.month - 1, 12),
            ):
                angle = 2 * np.pi * values.astype("float64") / period
                added[f"{unit}_sin"] = np.sin(angle)
                added[f"{unit}_cos"] = np.cos(angle)
        added["symbol"] = symbol
        added["timestamp"] = group["timestamp"]
        if has_prices:
            close = group["adj_close"] if "adj_close" in group else group["close"]
            added["next_return"] = np.log(close).shift(-1) - np.log(close)
        y = added["y"] = _target(group, target)
        # The newest label known at t (for the naive baselines): rows whose label was dropped (a dead band)
        # carry the one before.
        known = added[KNOWN_LABEL] = y.shift(target.known_after).ffill()
        if features.level_window:
            # A series' recent base rate, from its known labels only (a dead band's rows count as unknown). On the
            # daily direction of four stocks, whose share of up-weeks moves between years and between the stocks,
            # shrinking toward it (1000 labels) instead of the training window's share took the walk-forward log
            # loss 0.6929 -> 0.6891 and ECE 0.048 -> 0.034 (docs/pipeline.md, "Shrinkage toward the base rate").
            added[LEVEL_COLUMN] = y.shift(target.known_after).rolling(features.level_window, min_periods=1).mean()
        if target.price_target:
            # The labels the prices gave, once known, as a label target's lags (lag 1: the known label): the
            # volatility label compares the past h rows' volatility with its trailing median, which no other
            # feature holds (a cyclist's speed: walk-forward log loss 0.577 -> 0.548, persistence 0.570).
            for lag in target.label_lags:
                added[f"{LAG_PREFIX}{lag}"] = known.shift(lag - 1)
        out = pd.concat([out, pd.DataFrame(added, index=group.index)], axis=1)
        parts.append(out)
    table = parts[0] if len(parts) == 1 else pd.concat(parts).sort_values(["timestamp", "symbol"], kind="stable")
    del parts
    names = tuple(c for c in table.columns if c not in (*META_COLUMNS, "next_return", KNOWN_LABEL, "y"))
    if not set(names) - {LEVEL_COLUMN}:  # the series level is no model input
        raise DataError(
            f"{where.prefix}no feature columns: need price columns or, in label mode, numeric feature columns"
        )
    for name in names:  # column by column, in place (.loc): no copy of the whole table
        values = table[name].to_numpy()
        if values.dtype.kind == "f":
            # float32 precision: what the feature store holds and XGBoost and scikit-learn's trees compute in,
            # so the in-memory and streamed paths (and every learner) see the same numbers. Infinities (and
            # a float32 overflow) are missing.
            rounded = values.astype(np.float32)
            rounded[np.isinf(rounded)] = np.nan
            table.loc[:, name] = rounded
    if target.kind == "label":
        labels = set(table["y"].dropna().unique())
        if not labels <= {0.0, 1.0}:
            found = [float(v) for v in sorted(labels)[:6]]
            raise DataError(f"{where.prefix}{where.target(target)} must be binary 0/1; found values {found}")
    return table, names


def check_target_classes(
    y: pd.Series, target: TargetConfig, where: Where = NOWHERE, min_class_rows: int | None = None
) -> None:
    """Both classes, each with at least ``min_class_rows`` labelled rows (None: ``target.min_class_rows``).

    Raises:
        InsufficientDataError: one class only, or too few rows of the minority class; the message names
            the target column and gives the class counts and shares.
    """
    counts = y.astype(int).value_counts().sort_index()
    if counts.empty:
        return  # nothing labelled at all: build_features says so, with the warm-up windows
    what = where.target(target)
    total = int(counts.sum())
    if len(counts) < 2:
        only = int(counts.index[0])
        raise InsufficientDataError(
            f"{where.prefix}{what} has a single class: all {total} labelled rows are {only}; "
            "a classifier needs rows of both 0 and 1"
        )
    minority = int(counts.index[int(counts.argmin())])
    from_config = min_class_rows is None  # the user's key, which the error then names
    min_class_rows = target.min_class_rows if min_class_rows is None else min_class_rows
    if counts[minority] < min_class_rows:
        shares = ", ".join(
            f"class {int(k)}: {int(n)} rows ({100 * n / total:.1f}%)"
            for k, n in zip(counts.index.tolist(), counts.tolist(), strict=True)
        )
        raise InsufficientDataError(
            f"{where.prefix}{what}: too few rows of class {minority} to train and evaluate on: {shares} "
            f"of {total} labelled rows; need at least {min_class_rows} of each class (every training window, "
            "calibration slice, test fold and the hold-out window needs both"
            + (
                f"; for rare events --set target.min_class_rows={max(2, int(counts[minority]))} trains on them, "
                "with noisier folds)"
                if from_config
                else ")"
            )
        )


def _uninformative(table: pd.DataFrame, names: list[str]) -> tuple[list[str], list[str]]:
    """Feature columns with no value at all, and those with a single value: neither can teach a model."""
    empty = [n for n in names if not table[n].notna().any()]
    constant = [n for n in names if n not in empty and table[n].nunique(dropna=True) <= 1]
    return empty, constant


def usable_columns(table: pd.DataFrame, names: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """The feature columns of ``table`` a model can learn from, and those with no value or a single value.

    An all-NaN column (e.g. a constant feature's z-score) would drop every row; a constant one teaches nothing
    and breaks scalers. Calendar columns the time span cannot teach are left out too."""
    calendar = _unlearnable_calendar(table["timestamp"])
    candidates = [n for n in names if n not in calendar]
    empty, constant = _uninformative(table, candidates)
    return [n for n in candidates if n not in empty and n not in constant], empty, constant


def _symbols_left_out(table: pd.DataFrame, usable: list[str], labelled: pd.Series, where: Where) -> None:
    """A warning naming each symbol of a panel that keeps no row (every row lacks a feature or its target), with
    the features it never has: a symbol must not leave the panel without a word."""
    kept = labelled.groupby(table["symbol"], sort=True).any()
    if kept.all():
        return
    for symbol in kept.index[~kept][:5]:
        rows = table.loc[table["symbol"] == symbol, usable]
        never = [n for n in usable if rows[n].isna().all()]
        why = f"no value in any row for {', '.join(never)}" if never else "no row has every feature and a target"
        logger.warning("%s%s: %s: its %d rows are left out of the panel", where.prefix, symbol, why, len(rows))


# A label series' newest rows without a label are the rows to score (their outcome is not known yet, for
# target.label_delay rows at least); more than this many beyond the delay look like labels that stopped arriving.
UNLABELLED_TAIL_ROWS = 10


def _say_unlabelled_tail(table: pd.DataFrame, target: TargetConfig, where: Where) -> None:
    """A warning naming each series whose newest rows without a label are more than ``UNLABELLED_TAIL_ROWS``
    beyond the label delay (``target.known_after``; counted after the ``target.ahead`` rows that never have
    one): they are scored, never trained on, so labels that stopped arriving leave the model without the newest
    outcomes."""
    panel = table["symbol"].nunique() > 1
    for symbol, rows in table.groupby("symbol", sort=True):
        known = rows["y"].notna().to_numpy()
        if not known.any():
            continue
        tail = len(rows) - 1 - int(np.flatnonzero(known)[-1]) - target.ahead
        if tail > target.known_after + UNLABELLED_TAIL_ROWS:
            times = rows["timestamp"]
            last = times.iloc[int(np.flatnonzero(known)[-1]) + target.ahead]
            logger.warning(
                "%s%s: its newest %d rows (%s) have no label: they are scored, never trained on; if the labels "
                "stopped arriving, the model knows no outcome after %s",
                where.prefix,
                symbol if panel else "the series",
                tail,
                show_span(times.iloc[-tail], times.iloc[-1]),
                show_time(last),
            )


def build_features(
    frame: pd.DataFrame,
    features: FeatureConfig,
    target: TargetConfig,
    where: Where = NOWHERE,
    *,
    min_class_rows: int | None = None,
) -> FeatureSet:
    """Features and target for a canonical frame (sorted by symbol and time, validated).

    Feature columns that are entirely missing or constant are dropped with a warning naming them.

    Args:
        frame: the clean canonical frame.
        features: feature windows.
        target: what to predict.
        where: the data's file or URI and label column, for error messages.
        min_class_rows: fewest labelled rows of either class (None: ``target.min_class_rows``).

    Raises:
        DataError: a label target is not binary 0/1.
        InsufficientDataError: no row has every feature and a target, the target has a single class,
            or its minority class has fewer than ``min_class_rows`` rows.
    """
    table, names = feature_table(frame, features, target, where)
    # Dropped with a warning once the target is known to be usable (a single-class target makes its own lags
    # constant: the target is the news, not the lags).
    usable, empty, constant = usable_columns(table, names)
    complete = table[usable].notna().all(axis=1)
    labelled = complete & table["y"].notna()
    if not labelled.any():
        ahead = f" plus horizon {target.horizon}" if target.price_target else f" plus ahead {target.ahead}"
        raise InsufficientDataError(
            f"{where.prefix}no row has all features and a target: {len(table)} rows, longest warm-up window "
            f"{max(features.vol_long, features.zscore_window // 2)} rows per symbol"
            f"{ahead if target.price_target or target.ahead else ''}"
        )
    rows = table[labelled]
    try:
        check_target_classes(rows["y"], target, where, min_class_rows)
    except InsufficientDataError as exc:
        known = int(table["y"].notna().sum())  # rows with a target, with or without every feature
        raise InsufficientDataError(f"{exc}{warm_up_note(known, len(rows), features, 'rows')}") from None
    _symbols_left_out(table, usable, labelled, where)
    if target.needs_label:
        _say_leaks(rows, [n for n in usable if n in frame.columns], where)
        _say_unlabelled_tail(table, target, where)
    if empty or constant:
        dropped = [
            f"all missing: {', '.join(empty)}" if empty else "",
            f"constant: {', '.join(constant)}" if constant else "",
        ]
        logger.warning(
            "%sdropped feature columns that carry no information: %s", where.prefix, "; ".join(filter(None, dropped))
        )
    meta_cols = [c for c in ("symbol", "timestamp", "next_return", KNOWN_LABEL) if c in rows.columns]
    return FeatureSet(
        X=rows[usable].reset_index(drop=True),
        y=rows["y"].astype(int).reset_index(drop=True),
        meta=rows[meta_cols].reset_index(drop=True),
        feature_names=tuple(usable),
        latest=table[complete & table["y"].isna()][[*usable, *META_COLUMNS]].reset_index(drop=True),
    )


# A label series' own column that alone orders the label this well (max(AUC, 1 - AUC)) is more likely known only
# after the label (an outcome, a settlement, a status set later) than a forecast that good; judged on at most
# LEAK_ROWS labelled rows spread over the series.
LEAK_AUC = 0.995
LEAK_ROWS = 20_000


def _say_leaks(rows: pd.DataFrame, columns: list[str], where: Where) -> None:
    """A warning naming the label series' own columns (not the lags or calendar features the pipeline builds) that
    alone order the label almost perfectly, with the key that leaves them out: every score would look better
    than it will be if such a value is only known after the label."""
    if not columns or len(rows) < 100:
        return
    from sklearn.metrics import roc_auc_score

    spread = np.linspace(0, len(rows) - 1, min(len(rows), LEAK_ROWS)).astype(int)
    sample = rows.iloc[np.unique(spread)]
    y = sample["y"].to_numpy()
    if len(np.unique(y)) < 2:
        return
    strengths = {}
    for column in columns:
        auc = float(roc_auc_score(y, sample[column].to_numpy(dtype=float)))
        strengths[column] = max(auc, 1.0 - auc)
    found = [c for c, strength in strengths.items() if strength >= LEAK_AUC]
    if found:
        named = ", ".join(f"{c!r} (AUC {strengths[c]:.3f})" for c in found)
        sources = dict.fromkeys(c.split(CATEGORY_MARK)[0] for c in found)  # a category's column, once
        logger.warning(
            "%s%s alone order%s the label almost perfectly on %s labelled rows: a value known only after the label "
            "(an outcome, a settlement, a status set later) makes every score look better than it will be; if so, "
            "leave it out with --set data.exclude_cols=[%s]",
            where.prefix,
            named,
            "" if len(found) > 1 else "s",
            f"{len(sample):,}",
            ", ".join(sources),
        )


HISTORY_REASON = "not enough history for: "
GAP_REASON = "no value, after complete rows (a missing input), for: "


def _say_unseen_values(table: pd.DataFrame, names: tuple[str, ...], feature_names: list[str]) -> None:
    """A warning naming the values of a model's categorical columns that it never saw in training, with their
    rows: scored as none of its values, which a user should know (and drift monitoring shows as a drop)."""
    known = {n.split(CATEGORY_MARK)[0] for n in feature_names if CATEGORY_MARK in n}
    unseen = [
        "{} {!r} ({:,} rows)".format(*n.split(CATEGORY_MARK, 1), int(table[n].sum()))
        for n in names
        if CATEGORY_MARK in n and n.split(CATEGORY_MARK)[0] in known and n not in feature_names and table[n].any()
    ]
    if unseen:
        logger.warning("values the model never saw in training, scored as none of its values: %s", ", ".join(unseen))


def scoring_rows(
    frame: pd.DataFrame, features: FeatureConfig, target: TargetConfig, feature_names: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows a model with ``feature_names`` can score (meta + features, labelled or not), and the rows
    without every feature, with the features they miss and why: before a symbol's first complete row, too
    little history (a price that has not moved yet has no volatility); after it, a gap (an input was missing).

    Raises:
        DataError: the data cannot produce a feature the model needs (e.g. no volume column).
    """
    table, names = feature_table(frame, features, target)
    missing = sorted(set(feature_names) - set(names))
    # A category the model knows that these rows never take (their column has values, other ones): 0 in each.
    columns_with_values = {n.split(CATEGORY_MARK)[0] for n in names if CATEGORY_MARK in n}
    untaken = [n for n in missing if CATEGORY_MARK in n and n.split(CATEGORY_MARK)[0] in columns_with_values]
    if untaken:
        table = table.assign(**dict.fromkeys(untaken, np.float32(0.0)))
        missing = [n for n in missing if n not in untaken]
    _say_unseen_values(table, names, feature_names)
    if missing:
        raise DataError(f"the model needs features this data cannot produce: {missing}; available: {sorted(names)}")
    complete = table[feature_names].notna().all(axis=1)
    keep = [c for c in ("symbol", "timestamp", "next_return", "y") if c in table.columns]
    lacking = table.loc[~complete, ["symbol", "timestamp"]].copy()
    warm = complete.groupby(table["symbol"], sort=False).cummax()[~complete]  # a complete row came before
    lacking["reason"] = [
        (GAP_REASON if after else HISTORY_REASON) + ", ".join(n for n in feature_names if pd.isna(row[n]))
        for after, (_, row) in zip(warm.to_numpy(), table.loc[~complete, feature_names].iterrows(), strict=True)
    ]
    return table.loc[complete, [*keep, *feature_names]].reset_index(drop=True), lacking.reset_index(drop=True)
