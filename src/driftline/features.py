"""Point-in-time features and targets, per symbol.

A feature at time t uses only rows at or before t of the same symbol (rolling windows, EWMs and
backward shifts only). Every price feature is stationary by construction: log returns, ratios of short to
long volatility, and z-scores against trailing windows; no raw price or volume levels, which drift with
every regime and make tree models fail on later data.

Targets look forward by design; rows whose horizon runs past the data have no target and are kept
apart as the scoring tail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.config import FeatureConfig, TargetConfig
from driftline.errors import DataError, InsufficientDataError

META_COLUMNS = ("symbol", "timestamp")
CALENDAR_PREFIXES = ("day_of_week_", "month_")


CALENDAR_MIN_SPAN = {"day_of_week_": pd.Timedelta(days=28), "month_": pd.Timedelta(days=730)}


def _unlearnable_calendar(times: pd.Series) -> set[str]:
    """Calendar encodings seen for fewer than two full cycles teach a model a trend, not a season:
    a model trained on January-March would extrapolate in April. Leave those out."""
    span = times.max() - times.min()
    return {
        f"{prefix}{part}"
        for prefix, minimum in CALENDAR_MIN_SPAN.items()
        if span < minimum
        for part in ("sin", "cos")
    }


def is_calendar_feature(name: str) -> bool:
    """Calendar encodings follow the clock; their "drift" in a short window means nothing."""
    return name.startswith(CALENDAR_PREFIXES)


@dataclass(frozen=True)
class FeatureSet:
    """Model inputs for rows with a known target, in time order, plus what metrics need beside them.

    ``meta`` has ``symbol``, ``timestamp`` and, for price data, ``next_return`` (the one-period log
    return after t, which a long/flat position taken at t earns).
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


def _zscore(series: pd.Series, window: int) -> pd.Series:
    mean = series.rolling(window, min_periods=window // 2).mean()
    std = series.rolling(window, min_periods=window // 2).std()
    return (series - mean) / std.replace(0.0, np.nan)


def _rsi(close: pd.Series, window: int) -> pd.Series:
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    rsi = 100 - 100 / (1 + gain / loss.replace(0.0, np.nan))
    return (rsi - 50) / 50


def _price_features(group: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    close = group["adj_close"] if "adj_close" in group else group["close"]
    log_close = np.log(close)
    r1 = log_close.diff()
    out = pd.DataFrame(index=group.index)
    for window in cfg.return_windows:
        out[f"ret_{window}"] = log_close.diff(window)
    vol_s = r1.rolling(cfg.vol_short).std()
    vol_m = r1.rolling(cfg.vol_mid).std()
    vol_l = r1.rolling(cfg.vol_long).std()
    out[f"vol_ratio_{cfg.vol_short}_{cfg.vol_long}"] = vol_s / vol_l
    out[f"vol_ratio_{cfg.vol_mid}_{cfg.vol_long}"] = vol_m / vol_l
    out[f"vol_{cfg.vol_mid}_z"] = _zscore(np.log(vol_m.replace(0.0, np.nan)), cfg.zscore_window)
    for name, vol in ((cfg.vol_short, vol_s), (cfg.vol_mid, vol_m)):
        # Volatility against its own trailing median: the regime-free form of "is it calm or stormy now".
        median = vol.rolling(cfg.median_window, min_periods=cfg.median_window // 2).median()
        out[f"vol_{name}_vs_median"] = np.log(vol / median.replace(0.0, np.nan))
    out[f"ret_{cfg.vol_mid}_sharpe"] = r1.rolling(cfg.vol_mid).mean() / vol_m
    out["abs_ret_1_z"] = r1.abs() / vol_m
    out[f"rsi_{cfg.rsi_window}"] = _rsi(close, cfg.rsi_window)
    ema_fast = close.ewm(span=cfg.macd_fast, adjust=False, min_periods=cfg.macd_fast).mean()
    ema_slow = close.ewm(span=cfg.macd_slow, adjust=False, min_periods=cfg.macd_slow).mean()
    macd = np.log(ema_fast / ema_slow)
    out["macd"] = macd / vol_m
    out["macd_hist"] = (macd - macd.ewm(span=cfg.macd_signal, adjust=False).mean()) / vol_m
    if {"high", "low", "close"}.issubset(group.columns):
        # Same-day ratios of unadjusted prices: splits cancel out.
        log_range = np.log((group["high"] / group["low"]).where(group["high"] > group["low"]))
        out["range_z"] = _zscore(log_range, cfg.zscore_window)
        span = (group["high"] - group["low"]).replace(0.0, np.nan)
        out["close_in_range"] = (group["close"] - group["low"]) / span
    if "volume" in group.columns:
        out["volume_z"] = _zscore(np.log1p(group["volume"]), cfg.zscore_window)
    return out


def _target(group: pd.DataFrame, target: TargetConfig) -> pd.Series:
    h = target.horizon
    if target.kind == "label":
        return group["target"]
    close = group["adj_close"] if "adj_close" in group else group["close"]
    log_close = np.log(close)
    if target.kind == "direction":
        forward = log_close.shift(-h) - log_close
        label = (forward > 0).astype("float64")
        return label.where(forward.notna() & (forward.abs() >= target.dead_band))
    r1 = log_close.diff()
    # Realised volatility over the next h periods, against the median of the same measure seen so far.
    realised_past = np.sqrt((r1**2).rolling(h).mean())
    realised_next = realised_past.shift(-h)
    threshold = realised_past.rolling(target.median_window, min_periods=target.median_window // 2).median()
    label = (realised_next > threshold).astype("float64")
    return label.where(realised_next.notna() & threshold.notna())


def feature_table(frame: pd.DataFrame, features: FeatureConfig, target: TargetConfig) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Every row's features, meta columns and target ``y`` (NaN where unknown), in time order.

    Raises:
        DataError: no feature column can be built, or a label target is not binary 0/1.
    """
    parts = []
    for symbol, group in frame.groupby("symbol", sort=True):
        group = group.sort_values("timestamp", kind="stable")
        has_prices = "close" in group.columns or "adj_close" in group.columns
        out = _price_features(group, features) if has_prices else pd.DataFrame(index=group.index)
        if target.kind == "label":
            extra = [c for c in group.columns if c not in (*META_COLUMNS, "target", "open", "high", "low", "close", "adj_close", "volume")]
            out[extra] = group[extra]
            for lag in target.label_lags:
                # Lags in whole horizons: y at t describes t..t+h, so y_{t-h} is the newest one known at t.
                out[f"target_lag_{lag}"] = group["target"].shift(lag * target.horizon)
        if features.calendar:
            # Cyclic encodings: bounded, and December sits next to January (no extrapolation in a linear model).
            for unit, values, period in (
                ("day_of_week", group["timestamp"].dt.dayofweek, 7),
                ("month", group["timestamp"].dt.month - 1, 12),
            ):
                angle = 2 * np.pi * values.astype("float64") / period
                out[f"{unit}_sin"] = np.sin(angle)
                out[f"{unit}_cos"] = np.cos(angle)
        out["symbol"] = symbol
        out["timestamp"] = group["timestamp"]
        if has_prices:
            close = group["adj_close"] if "adj_close" in group else group["close"]
            out["next_return"] = np.log(close).shift(-1) - np.log(close)
        out["y"] = _target(group, target)
        parts.append(out)
    table = pd.concat(parts).sort_values(["timestamp", "symbol"], kind="stable")
    names = tuple(c for c in table.columns if c not in (*META_COLUMNS, "next_return", "y"))
    if not names:
        raise DataError("no feature columns: need price columns or, in label mode, numeric feature columns")
    table[list(names)] = table[list(names)].replace([np.inf, -np.inf], np.nan)
    if target.kind == "label":
        labels = set(table["y"].dropna().unique())
        if not labels <= {0.0, 1.0}:
            raise DataError(f"target column must be binary 0/1; found values {sorted(labels)[:6]}")
    return table, names


def build_features(frame: pd.DataFrame, features: FeatureConfig, target: TargetConfig) -> FeatureSet:
    """Features and target for a canonical frame (sorted by symbol and time, validated).

    Raises:
        DataError: a label target is not binary 0/1.
        InsufficientDataError: no row has every feature and a target.
    """
    table, names = feature_table(frame, features, target)
    # Every column entirely NaN (e.g. a constant feature's z-score) would drop every row below: drop it.
    usable = [n for n in names if table[n].notna().any() and n not in _unlearnable_calendar(table["timestamp"])]
    complete = table[usable].notna().all(axis=1)
    labelled = complete & table["y"].notna()
    if not labelled.any():
        raise InsufficientDataError(
            f"no row has all features and a target: {len(table)} rows, longest warm-up window "
            f"{max(features.vol_long, features.zscore_window // 2)} rows per symbol plus horizon {target.horizon}"
        )
    rows = table[labelled]
    meta_cols = [c for c in ("symbol", "timestamp", "next_return") if c in rows.columns]
    return FeatureSet(
        X=rows[usable].reset_index(drop=True),
        y=rows["y"].astype(int).reset_index(drop=True),
        meta=rows[meta_cols].reset_index(drop=True),
        feature_names=tuple(usable),
        latest=table[complete & table["y"].isna()][[*usable, *META_COLUMNS]].reset_index(drop=True),
    )


def scoring_rows(
    frame: pd.DataFrame, features: FeatureConfig, target: TargetConfig, feature_names: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows a model with ``feature_names`` can score (meta + features, labelled or not), and the rows
    that lack the history to compute every feature, with the features they miss.

    Raises:
        DataError: the data cannot produce a feature the model needs (e.g. no volume column).
    """
    table, names = feature_table(frame, features, target)
    missing = sorted(set(feature_names) - set(names))
    if missing:
        raise DataError(f"the model needs features this data cannot produce: {missing}; available: {sorted(names)}")
    complete = table[feature_names].notna().all(axis=1)
    keep = [c for c in ("symbol", "timestamp", "next_return", "y") if c in table.columns]
    lacking = table.loc[~complete, ["symbol", "timestamp"]].copy()
    lacking["reason"] = [
        "not enough history for: " + ", ".join(n for n in feature_names if pd.isna(row[n]))
        for _, row in table.loc[~complete, feature_names].iterrows()
    ]
    return table.loc[complete, [*keep, *feature_names]].reset_index(drop=True), lacking.reset_index(drop=True)
