"""Point-in-time features and targets: no look-ahead, no price levels, targets as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.config import DataConfig, FeatureConfig, TargetConfig
from driftline.errors import DataError, InsufficientDataError
from driftline.features import LEVEL_COLUMN, Where, build_features, feature_table
from driftline.splits import WalkForwardSplit
from driftline.synthetic import make_labelled_series, make_ohlcv_panel

PRICES = ["open", "high", "low", "close"]


def _keyed(features) -> pd.DataFrame:
    """X with (symbol, timestamp) as index."""
    return features.X.set_index(pd.MultiIndex.from_frame(features.meta[["symbol", "timestamp"]]))


def _perturb_after(frame: pd.DataFrame, cutoff: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    """Every row after ``cutoff``: prices times a random factor per row, volume rescaled."""
    rng = np.random.default_rng(seed)
    changed = frame.copy()
    after = changed["timestamp"] > cutoff
    factor = rng.uniform(0.5, 1.5, after.sum())
    for column in PRICES:
        changed.loc[after, column] = changed.loc[after, column] * factor
    changed.loc[after, "volume"] = (changed.loc[after, "volume"] * rng.uniform(0.1, 10.0, after.sum())).round()
    return changed


# --- the leakage test --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["volatility", "direction"])
def test_features_up_to_t_ignore_everything_after_t(panel, small_features, kind):
    target = TargetConfig(kind=kind, horizon=5, median_window=40)
    cutoff = np.sort(panel["timestamp"].unique())[200]
    before = build_features(panel, small_features, target)
    after = build_features(_perturb_after(panel, cutoff), small_features, target)

    assert before.feature_names == after.feature_names
    upto_before = (before.meta["timestamp"] <= cutoff).to_numpy()
    upto_after = (after.meta["timestamp"] <= cutoff).to_numpy()
    assert upto_before.sum() > 200
    # Same rows, same order, identical feature values (exact: nothing after t may enter a feature at t).
    pd.testing.assert_frame_equal(
        before.meta.loc[upto_before, ["symbol", "timestamp"]], after.meta.loc[upto_after, ["symbol", "timestamp"]]
    )
    pd.testing.assert_frame_equal(before.X[upto_before], after.X[upto_after], check_exact=True)
    # The perturbation is real: features after t did change.
    assert not before.X[~upto_before].equals(after.X[~upto_after])

    splitter = WalkForwardSplit(n_splits=3, gap=5, min_train_size=100)
    folds_before = list(splitter.split(before.X, groups=before.times))
    folds_after = list(splitter.split(after.X, groups=after.times))
    assert len(folds_before) == len(folds_after) == 3
    for (train_a, test_a), (train_b, test_b) in zip(folds_before, folds_after, strict=True):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)


def test_features_on_data_cut_at_t_match_the_full_history(panel, small_features, vol_target):
    """Stronger form: building on rows <= t alone gives the same features for rows <= t."""
    cutoff = np.sort(panel["timestamp"].unique())[220]
    full = build_features(panel, small_features, vol_target)
    cut = build_features(panel[panel["timestamp"] <= cutoff], small_features, vol_target)
    names = list(full.feature_names)
    assert tuple(names) == cut.feature_names
    # Rows near t have no target yet in the cut data: they sit in ``latest``.
    cut_rows = pd.concat([_keyed(cut), cut.latest.set_index(["symbol", "timestamp"])[names]]).sort_index()
    full_rows = _keyed(full)
    full_rows = full_rows[full_rows.index.get_level_values("timestamp") <= cutoff].sort_index()
    assert len(cut.latest) == 2 * vol_target.horizon
    pd.testing.assert_frame_equal(cut_rows, full_rows, check_exact=True)


def test_no_feature_is_a_price_level(panel, small_features, vol_target):
    base = build_features(panel, small_features, vol_target)
    scaled_frame = panel.copy()
    scaled_frame[PRICES] = scaled_frame[PRICES] * 10.0
    scaled = build_features(scaled_frame, small_features, vol_target)
    assert base.feature_names == scaled.feature_names
    assert not {"open", "high", "low", "close", "adj_close", "volume"} & set(base.feature_names)
    np.testing.assert_allclose(scaled.X.to_numpy(), base.X.to_numpy(), rtol=1e-9, atol=1e-9)
    pd.testing.assert_series_equal(scaled.y, base.y)


def test_adj_close_drives_returns_when_present(panel, small_features, vol_target):
    with_adj = panel.assign(adj_close=panel["close"] * np.exp(np.linspace(0, 1, len(panel))))
    plain = build_features(panel, small_features, vol_target)
    adjusted = build_features(with_adj, small_features, vol_target)
    assert not np.allclose(plain.X["ret_5"].to_numpy(), adjusted.X["ret_5"].to_numpy())


def test_features_are_finite_and_time_ordered(panel, small_features, vol_target):
    features = build_features(panel, small_features, vol_target)
    assert np.isfinite(features.X.to_numpy()).all()
    assert features.meta["timestamp"].is_monotonic_increasing
    assert len(features.X) == len(features.y) == len(features.meta)
    assert features.meta.groupby(["symbol", "timestamp"]).size().max() == 1


# --- targets -------------------------------------------------------------------------------------------------------


def _forward_return(frame: pd.DataFrame, horizon: int) -> pd.Series:
    """Forward log return over ``horizon`` rows of the same symbol, keyed by (symbol, timestamp)."""
    parts = []
    for _, group in frame.sort_values(["symbol", "timestamp"]).groupby("symbol"):
        log_close = np.log(group["close"].to_numpy())
        forward = np.full(len(group), np.nan)
        forward[:-horizon] = log_close[horizon:] - log_close[:-horizon]
        parts.append(pd.Series(forward, index=pd.MultiIndex.from_frame(group[["symbol", "timestamp"]])))
    return pd.concat(parts)


def test_direction_target_is_the_sign_of_the_forward_return(panel, small_features):
    features = build_features(panel, small_features, TargetConfig(kind="direction", horizon=3))
    forward = _forward_return(panel, 3).reindex(pd.MultiIndex.from_frame(features.meta[["symbol", "timestamp"]]))
    assert forward.notna().all()
    np.testing.assert_array_equal(features.y.to_numpy(), (forward.to_numpy() > 0).astype(int))
    assert set(features.y.unique()) == {0, 1}
    # next_return is the one-period forward log return a position at t earns.
    one_step = _forward_return(panel, 1).reindex(pd.MultiIndex.from_frame(features.meta[["symbol", "timestamp"]]))
    np.testing.assert_allclose(features.meta["next_return"].to_numpy(), one_step.to_numpy())


def test_dead_band_drops_small_moves(panel, small_features):
    band = 0.01
    # Without label lags or a series level: the band changes the labels they are made of, nothing else of a kept row.
    plain = small_features.model_copy(update={"level_window": 0})
    wide = build_features(panel, plain, TargetConfig(kind="direction", horizon=3, label_lags=()))
    banded = build_features(panel, plain, TargetConfig(kind="direction", horizon=3, dead_band=band, label_lags=()))
    forward_wide = _forward_return(panel, 3).reindex(pd.MultiIndex.from_frame(wide.meta[["symbol", "timestamp"]]))
    small = (forward_wide.abs() < band).to_numpy()
    assert small.sum() > 10  # the band removes something
    assert len(banded.X) == len(wide.X) - small.sum()
    kept = _keyed(wide)[~small]
    pd.testing.assert_frame_equal(_keyed(banded), kept)
    forward_banded = _forward_return(panel, 3).reindex(pd.MultiIndex.from_frame(banded.meta[["symbol", "timestamp"]]))
    assert (forward_banded.abs() >= band).all()
    # With them, a dropped label is no gap in the lags: each carries the label known before it.
    lagged = build_features(panel, small_features, TargetConfig(kind="direction", horizon=3, dead_band=band))
    assert len(lagged.X) == len(banded.X)
    np.testing.assert_array_equal(lagged.X["target_lag_1"].to_numpy(), lagged.meta["known_label"].to_numpy())


def _volatility_label(close: np.ndarray, h: int, window: int) -> np.ndarray:
    """Independent, loop-based statement of the documented volatility target."""
    r1 = np.diff(np.log(close), prepend=np.nan)
    past = np.full(len(close), np.nan)
    for t in range(h, len(close)):
        past[t] = np.sqrt(np.mean(r1[t - h + 1 : t + 1] ** 2))
    label = np.full(len(close), np.nan)
    for t in range(len(close) - h):
        upcoming = np.sqrt(np.mean(r1[t + 1 : t + h + 1] ** 2))
        history = past[max(0, t - window + 1) : t + 1]
        history = history[~np.isnan(history)]
        if len(history) >= window // 2:
            label[t] = float(upcoming > np.median(history))
    return label


def test_volatility_target_matches_its_definition(panel, small_features, vol_target):
    features = build_features(panel, small_features, vol_target)
    assert set(features.y.unique()) == {0, 1}
    keyed_y = features.y.set_axis(pd.MultiIndex.from_frame(features.meta[["symbol", "timestamp"]]))
    for symbol, group in panel.groupby("symbol"):
        group = group.sort_values("timestamp")
        expected = pd.Series(
            _volatility_label(group["close"].to_numpy(), vol_target.horizon, vol_target.median_window),
            index=group["timestamp"].to_numpy(),
        )
        got = keyed_y.xs(symbol, level="symbol")
        assert expected.loc[got.index].notna().all()
        np.testing.assert_array_equal(got.to_numpy(), expected.loc[got.index].to_numpy().astype(int))
        # The tail without a future is not a training row; it is the scoring set.
        tail = group["timestamp"].iloc[-vol_target.horizon :]
        assert not set(tail) & set(got.index)
        latest = features.latest[features.latest["symbol"] == symbol]
        assert sorted(latest["timestamp"]) == sorted(tail)


# --- label mode ----------------------------------------------------------------------------------------------------


@pytest.fixture
def labelled(canonical) -> pd.DataFrame:
    raw = make_labelled_series(n_rows=200, n_features=3, seed=2)
    return canonical(raw, DataConfig(target_col="y"), need_target=True)


def test_a_label_series_with_many_columns_is_read_and_built_without_a_warning(tmp_path, small_features):
    # 150 feature columns: each column added after them was one more block, and pandas said "DataFrame is highly
    # fragmented" at every insert (19 warnings in a training run: 18 building the features, 1 reading the stage).
    import warnings

    from driftline.ingest import load_data

    path = tmp_path / "wide.csv"
    make_labelled_series(n_rows=300, n_features=150, seed=2).to_csv(path, index=False)
    target = TargetConfig(kind="label", label_lags=(1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = load_data(DataConfig(path=str(path), target_col="y"), need_target=True).frame
        table, names = feature_table(frame, small_features, target)
    assert names[:150] == tuple(f"x{i}" for i in range(150)) and names[150:152] == ("target_lag_1", "target_lag_2")
    assert list(table.columns[-5:]) == ["symbol", "timestamp", "y", "known_label", LEVEL_COLUMN]


@pytest.mark.parametrize("label_delay", [None, 3])
def test_label_mode_uses_extra_columns_and_lagged_targets(labelled, small_features, label_delay):
    # The horizon does not shift the lags: a label is known label_delay rows later (default 1), so
    # y_{t-label_delay} is lag 1, the newest one usable at t, and lag k is k-1 rows before it.
    target = TargetConfig(kind="label", horizon=5, label_lags=(1, 2), label_delay=label_delay)
    delay = label_delay or 1
    assert target.known_after == delay
    features = build_features(labelled, small_features, target)
    # 200 hourly rows span 8 days: too short to learn a weekly or yearly season, so no calendar features.
    assert features.feature_names == ("x0", "x1", "x2", "target_lag_1", "target_lag_2", LEVEL_COLUMN)
    assert "next_return" not in features.meta.columns

    series = labelled.set_index("timestamp")
    position = series.index.get_indexer(features.meta["timestamp"])
    assert position.min() == delay + 1  # the first rows have no lag yet
    np.testing.assert_array_equal(features.y.to_numpy(), series["target"].to_numpy()[position].astype(int))
    # The user's columns as they are, at float32 precision (every feature is: the store's and the trees').
    expected = series["x1"].to_numpy()[position]
    np.testing.assert_array_equal(features.X["x1"].to_numpy(), expected.astype(np.float32).astype(np.float64))
    assert not np.array_equal(features.X["x1"].to_numpy(), expected)  # so rounded, not passed through
    for lag in (1, 2):
        np.testing.assert_array_equal(
            features.X[f"target_lag_{lag}"].to_numpy(), series["target"].to_numpy()[position - delay - lag + 1]
        )
    # The newest known label rides along in meta (for the persistence baseline): lag 1 itself.
    np.testing.assert_array_equal(features.meta["known_label"].to_numpy(), features.X["target_lag_1"].to_numpy())


def test_price_targets_know_their_label_a_horizon_later(panel, small_features, vol_target):
    features = build_features(panel, small_features, vol_target)
    for _, group in features.meta.assign(y=features.y.to_numpy()).groupby("symbol"):
        # On consecutive rows of one symbol the known label is y from horizon rows before.
        known, y = group["known_label"].to_numpy(), group["y"].to_numpy()
        np.testing.assert_array_equal(known[vol_target.horizon :], y[: -vol_target.horizon])


def test_label_mode_rejects_a_non_binary_target(labelled, small_features):
    frame = labelled.copy()
    frame.loc[frame.index[50:60], "target"] = 2.0
    with pytest.raises(DataError, match=r"binary 0/1.*2\.0"):
        build_features(frame, small_features, TargetConfig(kind="label", horizon=1))


def test_label_mode_without_feature_columns(small_features):
    frame = pd.DataFrame(
        {"symbol": "s", "timestamp": pd.date_range("2020-01-01", periods=200), "target": np.tile([0.0, 1.0], 100)}
    )
    features = build_features(
        frame, FeatureConfig(calendar=False), TargetConfig(kind="label", horizon=1, label_lags=(1,))
    )
    assert features.feature_names == ("target_lag_1", LEVEL_COLUMN)
    with pytest.raises(DataError, match="no feature columns"):
        build_features(frame, FeatureConfig(calendar=False), TargetConfig(kind="label", horizon=1, label_lags=()))


def test_too_short_data(canonical, small_features, vol_target):
    frame = canonical(make_ohlcv_panel(n_symbols=1, n_days=30, seed=0))
    with pytest.raises(InsufficientDataError, match="no row has all features and a target"):
        build_features(frame, small_features, vol_target)


def test_calendar_features_need_two_cycles_of_history(small_features):
    target = TargetConfig(kind="label", horizon=1, label_lags=(1,))
    for days, expected in (
        (20, set()),
        (60, {"day_of_week_sin", "day_of_week_cos"}),
        (800, {"day_of_week_sin", "day_of_week_cos", "month_sin", "month_cos"}),
    ):
        times = pd.date_range("2020-01-01", periods=days, freq="D")
        frame = pd.DataFrame(
            {
                "symbol": "s",
                "timestamp": times,
                "x": np.arange(days, dtype=float) % 7,
                "target": (np.arange(days) % 2).astype(float),
            }
        )
        # 20 days hold 19 labelled rows: below the class floor, which is not what this test is about.
        names = set(build_features(frame, small_features, target, min_class_rows=5).feature_names)
        assert {n for n in names if n.startswith(("day_of_week", "month"))} == expected, days


def test_centuries_of_yearly_rows_have_no_calendar_features_and_no_overflow(small_features):
    # A 309-year span does not fit pandas' nanosecond Timedelta; measuring it raised OutOfBoundsDatetime.
    n = 309
    frame = pd.DataFrame(
        {
            "symbol": "s",
            "timestamp": pd.date_range("1700-01-01", periods=n, freq="YS"),
            "x": np.sin(np.arange(n)),
            "target": (np.arange(n) % 3 == 0).astype(float),
        }
    )
    target = TargetConfig(kind="label", horizon=1, label_lags=(1,))
    names = set(build_features(frame, small_features, target, min_class_rows=5).feature_names)
    # Centuries of weeks and years, but one row a year (always January 1st) samples neither cycle: its day of
    # the week only encodes the year, its month is constant.
    assert "x" in names and not {n for n in names if n.startswith(("day_of_week", "month"))}
    for freq, expected in (("W-SAT", {"month_sin", "month_cos"}), ("QS", {"month_sin", "month_cos"})):
        weekly = frame.assign(timestamp=pd.date_range("1900-01-01", periods=n, freq=freq))
        names = set(build_features(weekly, small_features, target, min_class_rows=5).feature_names)
        assert {n for n in names if n.startswith(("day_of_week", "month"))} == expected, freq


def test_a_feature_missing_in_a_few_rows_is_its_last_known_value(small_features):
    """A sensor that drops out: before, every row with a missing feature was left out of training and could not
    be scored (30% of a series' rows here); now the value known last stands in for up to
    ``features.carry_limit`` rows, never a later one, and a long dropout is still left out."""
    from driftline.features import scoring_rows

    rng = np.random.default_rng(4)
    n = 300
    observed = np.where(rng.uniform(size=n) < 0.3, np.nan, rng.standard_normal(n))
    observed[0] = np.nan  # nothing known yet: no value to carry
    observed[200:230] = np.nan  # a long dropout: its first 5 rows carried, the other 25 left out
    frame = _label_frame(n, (rng.uniform(size=n) < 0.5), sensor=observed)
    assert small_features.carry_limit == 5
    features = build_features(frame, small_features, LABEL)
    expected = pd.Series(observed, index=frame["timestamp"]).ffill(limit=5)  # the last value at or before each row
    carried = pd.Series(features.X["sensor"].to_numpy(), index=features.meta["timestamp"])
    np.testing.assert_allclose(carried.to_numpy(), expected.reindex(carried.index).to_numpy().astype(np.float32))
    left_out = set(frame["timestamp"]) - set(features.meta["timestamp"])
    assert set(frame["timestamp"].iloc[205:230]) <= left_out and frame["timestamp"].iloc[0] in left_out
    assert len(left_out) <= 25 + 3  # the dropout's rest, the first rows (nothing known, the label lag)
    without = build_features(frame, small_features.model_copy(update={"carry_limit": 0}), LABEL)
    assert len(without.X) < 0.75 * n  # the old behaviour, when asked for
    rows, lacking = scoring_rows(frame, small_features, LABEL, list(features.feature_names))
    assert len(rows) == n - len(lacking) and len(lacking) <= 25 + 3
    gaps = lacking[lacking["reason"].str.startswith("no value, after complete rows")]  # 5 rows into the dropout
    assert set(gaps["timestamp"]) == set(frame["timestamp"].iloc[205:230]), lacking


# --- target and feature sanity -----------------------------------------------------------------------------------


def _label_frame(n: int, target: np.ndarray, **extra: object) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "symbol": "s",
            "timestamp": pd.date_range("2020-01-01", periods=n, freq="h"),
            "x": rng.standard_normal(n),
            "target": target.astype(float),
            **extra,
        }
    )


LABEL = TargetConfig(kind="label", horizon=1, label_lags=(1,))


def test_a_single_class_target_names_the_column_and_the_class(small_features):
    frame = _label_frame(300, np.zeros(300))
    with pytest.raises(
        InsufficientDataError, match=r"^data\.csv: target column 'y' has a single class: all 300 labelled rows are 0"
    ):
        build_features(frame, small_features, LABEL, Where("data.csv", "y"))


def test_a_price_target_with_one_class_says_which_target(small_features):
    # A price that only ever rises: the direction target is always 1.
    times = pd.bdate_range("2020-01-01", periods=300)
    close = 100 * np.exp(np.cumsum(np.full(300, 0.001) + np.abs(np.random.default_rng(1).normal(0, 0.01, 300))))
    frame = pd.DataFrame({"symbol": "s", "timestamp": times, "close": close})
    with pytest.raises(
        InsufficientDataError, match=r"the direction target \(built from the prices\) has a single class: .* are 1"
    ):
        build_features(frame, small_features, TargetConfig(kind="direction", horizon=1))


def test_a_minority_class_below_the_floor_is_an_error_with_counts_and_shares(small_features):
    target = np.zeros(1000)
    target[np.linspace(10, 990, 10).astype(int)] = 1
    with pytest.raises(InsufficientDataError) as info:
        build_features(_label_frame(1000, target), small_features, LABEL, Where("px.csv", "label"))
    message = str(info.value)
    assert message.startswith("px.csv: target column 'label': too few rows of class 1")
    # 999 labelled rows: the first has no lag yet.
    assert "class 0: 989 rows (99.0%), class 1: 10 rows (1.0%) of 999 labelled rows" in message
    assert "need at least 50 of each class" in message


def test_the_class_floor_is_inclusive_and_imbalance_alone_is_fine(small_features):
    from driftline.config import MIN_CLASS_ROWS

    n = 5000
    target = np.zeros(n)
    target[np.linspace(20, n - 20, MIN_CLASS_ROWS).astype(int)] = 1  # 1% positives, exactly the floor
    features = build_features(_label_frame(n, target), small_features, LABEL)
    assert features.y.sum() == MIN_CLASS_ROWS
    target[np.flatnonzero(target)[0]] = 0
    with pytest.raises(InsufficientDataError, match=f"class 1: {MIN_CLASS_ROWS - 1} rows") as info:
        build_features(_label_frame(n, target), small_features, LABEL)
    # Rare events: the key that lowers the floor, with the number that would let these rows train.
    assert f"--set target.min_class_rows={MIN_CLASS_ROWS - 1} trains on them" in str(info.value)
    lowered = LABEL.model_copy(update={"min_class_rows": MIN_CLASS_ROWS - 1})
    assert build_features(_label_frame(n, target), small_features, lowered).y.sum() == MIN_CLASS_ROWS - 1


def test_the_floor_counts_only_rows_that_can_be_trained_on(small_features):
    # 60 positives, but the first 20 fall in the warm-up of the 20-period lag: 40 trainable rows.
    target = np.zeros(600)
    target[:20] = 1
    target[np.linspace(100, 580, 40).astype(int)] = 1
    lagged = TargetConfig(kind="label", label_delay=20, label_lags=(1,))
    frame = _label_frame(600, target)
    assert build_features(frame, small_features, lagged, min_class_rows=40).y.sum() == 40
    with pytest.raises(InsufficientDataError, match=r"class 1: 40 rows"):
        build_features(frame, small_features, lagged)


def test_constant_and_empty_feature_columns_are_dropped_with_a_warning(small_features, caplog):
    n = 400
    frame = _label_frame(n, np.arange(n) % 2, const=3.0, empty=np.nan, x2=np.linspace(0, 1, n))
    with caplog.at_level("WARNING", logger="driftline.features"):
        features = build_features(frame, small_features, LABEL, Where("f.csv"))
    assert "const" not in features.feature_names and "empty" not in features.feature_names
    assert {"x", "x2", "target_lag_1"} <= set(features.feature_names)
    assert len(features.X) == n - 1  # the empty column did not take every row with it
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert messages == ["f.csv: dropped feature columns that carry no information: all missing: empty; constant: const"]


def test_no_warning_when_every_feature_carries_information(panel, small_features, vol_target, caplog):
    with caplog.at_level("WARNING", logger="driftline.features"):
        build_features(panel, small_features, vol_target)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_errors_name_the_source_when_given(small_features):
    frame = _label_frame(200, np.arange(200) % 3)
    with pytest.raises(
        DataError, match=r"^in\.csv: target column 'y' must be binary 0/1; found values \[0\.0, 1\.0, 2\.0\]"
    ):
        build_features(frame, small_features, LABEL, Where("in.csv", "y"))


def test_a_flat_stretch_reads_as_the_calmest_volatility_so_far_and_keeps_its_rows(small_features, vol_target):
    """Integer readings repeat (glucose, counts; a price resting on its tick): a window without a move has
    volatility 0, which has no log ratio to its median. It reads as the calmest volatility the series has shown
    before it, so the rows inside the stretch keep their features (before: they were dropped, and never
    scored), with no divide-by-zero warning; the rows before the stretch are as they were."""
    import warnings

    raw = make_ohlcv_panel(n_symbols=1, n_days=600, seed=11)
    frame = raw.rename(columns=str.lower)
    frame = frame.assign(timestamp=pd.to_datetime(frame["date"]), symbol="FLAT")[["symbol", "timestamp", "close"]]
    moving = build_features(frame.reset_index(drop=True), small_features, vol_target)
    frame.loc[300:340, "close"] = frame.loc[300, "close"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = build_features(frame.reset_index(drop=True), small_features, vol_target)
    assert np.isfinite(features.X.to_numpy()).all()
    assert len(features.X) == len(moving.X)  # no row lost to the stretch
    stamps = features.meta["timestamp"]
    inside = (stamps >= frame.loc[310, "timestamp"]) & (stamps <= frame.loc[340, "timestamp"]).to_numpy()
    before = (stamps < frame.loc[300, "timestamp"]).to_numpy()
    ratio = features.X["vol_5_vs_median"]
    # Calmer than its median; once the stretch fills most of the median's window, as calm as usual (0).
    assert inside.sum() == 31 and (ratio[inside] <= 0).all() and (ratio[inside] < -1).any()
    pd.testing.assert_frame_equal(features.X[before], moving.X[before])


def test_scoring_rows_tell_too_little_history_from_a_missing_input(small_features):
    from driftline.features import scoring_rows

    # A price that moves, whose volume goes missing for 40 days (longer than features.carry_limit), then returns;
    # and a still stretch, which is not a gap.
    rng = np.random.default_rng(4)
    steps = rng.normal(0, 0.01, 300)
    steps[60:80] = 0.0
    close = 100 * np.exp(np.cumsum(steps))
    volume = rng.integers(1_000, 2_000, 300).astype(float)
    volume[150:190] = np.nan
    frame = pd.DataFrame(
        {
            "symbol": "A",
            "timestamp": pd.date_range("2020-01-01", periods=300, freq="D"),
            "close": close,
            "volume": volume,
        }
    )
    target = TargetConfig(kind="direction", horizon=5)
    table = build_features(frame, small_features, target, min_class_rows=5)
    rows, lacking = scoring_rows(frame, small_features, target, list(table.feature_names))
    assert len(rows) + len(lacking) == len(frame)
    history = lacking["reason"].str.startswith("not enough history for: ")
    gap = lacking["reason"] == "no value, after complete rows (a missing input), for: volume_z"
    assert (history | gap).all() and history.any() and gap.any()
    assert lacking.loc[history, "timestamp"].max() < rows["timestamp"].min()  # the warm-up comes first
    assert lacking.loc[gap, "timestamp"].min() > pd.Timestamp("2020-05-30")  # inside the missing volumes
    assert rows["timestamp"].between("2020-03-01", "2020-03-20").sum() == 20  # the still stretch is scored


def test_rsi_of_a_series_that_has_only_risen_is_its_top_not_missing():
    from driftline.features import _rsi

    window = 5
    rising = _rsi(pd.Series(np.arange(1.0, 31.0)), window)
    assert rising.iloc[:window].isna().all() and (rising.iloc[window:] == 1.0).all()  # 100 on the 0-100 scale
    assert (_rsi(pd.Series(np.full(30, 7.0)), window).iloc[window:] == 0.0).all()  # no move: 50
    assert (_rsi(pd.Series(np.arange(30.0, 0.0, -1.0)), window).iloc[window:] == -1.0).all()
    # Once a loss has been seen the usual formula holds: strictly between the ends.
    mixed = _rsi(pd.Series([1.0, 2, 3, 2.5, 3.5, 4, 3.8, 4.2, 4.5, 4.4, 5.0]), 3).dropna()
    assert ((mixed > -1) & (mixed < 1)).all()


def test_a_symbol_without_volume_keeps_its_rows_with_a_volume_z_of_zero(panel, small_features, vol_target):
    """An index or a currency pair beside stocks (yfinance writes its volume as 0 in every row; so does a stock's
    early history): its volume_z is 0 (no deviation to measure), not a gap that left every row of the symbol out
    of the panel without a word."""
    first, second = sorted(panel["symbol"].unique())
    with_index = panel.copy()
    with_index.loc[with_index["symbol"] == second, "volume"] = 0.0
    early = (with_index["symbol"] == first) & (with_index["timestamp"] < with_index["timestamp"].quantile(0.3))
    with_index.loc[early, "volume"] = 0.0  # a stock whose early volume was not recorded
    both = build_features(panel, small_features, vol_target)
    features = build_features(with_index, small_features, vol_target)
    counts = features.meta["symbol"].value_counts().to_dict()
    assert counts == both.meta["symbol"].value_counts().to_dict()  # every row of both symbols is kept
    keyed = _keyed(features)["volume_z"]
    assert (keyed.loc[second] == 0).all()
    assert keyed.loc[first].notna().all() and keyed.loc[first].std() > 0.5  # zero where flat, z-scores after


def test_a_bar_without_its_volume_keeps_its_row_with_the_last_known_volume_z(panel, small_features, vol_target):
    """Yahoo's `null`, an exchange's `-`: the contract keeps the bar (its prices are the series); its volume_z is
    the last known one for up to features.carry_limit bars, as a label series' feature, not a row left out of
    training without a word. A symbol with no volume at all has a volume_z of 0, as one of zeros."""
    first, second = sorted(panel["symbol"].unique())
    rows = panel.index[panel["symbol"] == first]
    holed = panel.copy()
    limit = small_features.carry_limit
    holed.loc[rows[150:153], "volume"] = np.nan  # three bars, within the carry limit
    holed.loc[rows[220 : 220 + limit + 2], "volume"] = np.nan  # a longer stretch
    holed.loc[holed["symbol"] == second, "volume"] = np.nan
    whole = _keyed(build_features(panel, small_features, vol_target))["volume_z"]
    features = build_features(holed, small_features, vol_target)
    keyed = _keyed(features)["volume_z"]
    stamps = panel.loc[rows, "timestamp"].to_numpy()
    carried = keyed.loc[first].reindex(stamps[149:153]).to_numpy()
    assert (carried == whole.loc[first].loc[stamps[149]]).all()  # the bar before, three times over
    assert stamps[220 + limit] not in keyed.loc[first].index and stamps[221 + limit] not in keyed.loc[first].index
    assert len(keyed.loc[first]) == len(whole.loc[first]) - 2  # only the two past the limit left out
    assert (keyed.loc[second] == 0).all() and len(keyed.loc[second]) == len(whole.loc[second])
    no_carry = small_features.model_copy(update={"carry_limit": 0})
    assert len(_keyed(build_features(holed, no_carry, vol_target)).loc[first]) == len(whole.loc[first]) - 3 - limit - 2


def test_a_bar_without_its_high_or_low_keeps_its_row_with_the_last_known_range(panel, small_features, vol_target):
    """The contract keeps a bar with its close and no high or low; its range_z and close_in_range are the last
    known ones for up to features.carry_limit bars (as a missing volume's volume_z), not a row left out."""
    first = sorted(panel["symbol"].unique())[0]
    rows = panel.index[panel["symbol"] == first]
    holed = panel.copy()
    holed.loc[rows[150:153], ["open", "high", "low"]] = np.nan
    whole = _keyed(build_features(panel, small_features, vol_target))
    keyed = _keyed(build_features(holed, small_features, vol_target))
    stamps = panel.loc[rows, "timestamp"].to_numpy()
    assert len(keyed.loc[first]) == len(whole.loc[first])
    for name in ("range_z", "close_in_range"):
        carried = keyed[name].loc[first].reindex(stamps[149:153]).to_numpy()
        assert (carried == whole[name].loc[first].loc[stamps[149]]).all(), name  # the bar before, three times
    # A symbol quoted at its close only (no high or low in any bar) keeps its rows, as one without any range.
    second = sorted(panel["symbol"].unique())[1]
    holed.loc[holed["symbol"] == second, ["open", "high", "low"]] = np.nan
    closes_only = _keyed(build_features(holed, small_features, vol_target))
    assert len(closes_only.loc[second]) == len(whole.loc[second])
    assert (closes_only["range_z"].loc[second] == 0).all() and (closes_only["close_in_range"].loc[second] == 0.5).all()


def test_a_symbol_that_keeps_no_row_is_named_in_a_warning(panel, small_features, vol_target, caplog):
    """A symbol whose every row lacks a feature (here its price never moves: a suspended listing, so it has no
    volatility to measure) leaves the panel, with a warning naming it and those features."""
    first, second = sorted(panel["symbol"].unique())
    still = panel.copy()
    rows = still["symbol"] == second
    for column in ("open", "high", "low", "close"):
        still.loc[rows, column] = 50.0
    with caplog.at_level("WARNING", logger="driftline.features"):
        features = build_features(still, small_features, vol_target, Where("p.csv"))
    assert features.meta["symbol"].unique().tolist() == [first]
    told = [r.getMessage() for r in caplog.records if "left out of the panel" in r.getMessage()]
    assert len(told) == 1 and told[0].startswith(f"p.csv: {second}: no value in any row for vol_ratio_"), told
    assert told[0].endswith(": its 300 rows are left out of the panel")
    caplog.clear()
    with caplog.at_level("WARNING", logger="driftline.features"):
        build_features(panel, small_features, vol_target)
    assert not [r for r in caplog.records if "left out" in r.getMessage()]


def test_bars_without_a_range_keep_their_rows(panel, small_features, vol_target):
    """A bar whose high equals its low (one price all bar: a quiet minute) is as narrow as the narrowest bar
    before it, its close mid-range; a symbol whose bars never have a range (its close copied into open, high
    and low) has range_z 0. Before, those rows had no range_z or close_in_range and were dropped (the second
    symbol, all of it)."""
    first, second = sorted(panel["symbol"].unique())
    quiet = panel.copy()
    rows = quiet["symbol"] == second
    for column in ("open", "high", "low"):
        quiet.loc[rows, column] = quiet.loc[rows, "close"]
    some = quiet.index[(quiet["symbol"] == first).to_numpy()][150:160]
    for column in ("open", "high", "low"):
        quiet.loc[some, column] = quiet.loc[some, "close"]
    features = build_features(quiet, small_features, vol_target)
    whole = build_features(panel, small_features, vol_target)
    assert len(features.X) == len(whole.X) and np.isfinite(features.X.to_numpy()).all()
    symbols = features.meta["symbol"].to_numpy()
    assert (features.X.loc[symbols == second, "range_z"] == 0).all()
    assert (features.X.loc[symbols == second, "close_in_range"] == 0.5).all()
    at = (symbols == first) & features.meta["timestamp"].isin(quiet.loc[some, "timestamp"]).to_numpy()
    assert at.sum() == 10 and (features.X.loc[at, "close_in_range"] == 0.5).all()


def test_a_label_ahead_is_the_column_that_many_rows_on_and_its_lags_start_at_the_current_state(small_features):
    """``target.ahead``: a state column ('raining') predicted 6 rows on. The label of row t is the column at t+6,
    known 6 rows later (label_delay's default), so the newest known label (lag 1) is the state at t itself, and
    no lag holds the label it predicts (before: --horizon on a label target was silently unused)."""
    rng = np.random.default_rng(3)
    state = (np.cumsum(rng.standard_normal(400)) > 0).astype(float)  # a persistent state
    frame = _label_frame(400, state)
    ahead = TargetConfig(kind="label", ahead=6, label_lags=(1, 2))
    assert ahead.known_after == 6
    table, _ = feature_table(frame, small_features, ahead)
    np.testing.assert_array_equal(table["y"].to_numpy()[:-6], state[6:])
    assert table["y"].iloc[-6:].isna().all()  # no outcome yet: scored, not trained on
    np.testing.assert_array_equal(table["target_lag_1"].to_numpy(), state)
    np.testing.assert_array_equal(table["target_lag_2"].to_numpy()[1:], state[:-1])
    # The newest known label is never the one predicted: on a persistent state it agrees less often than 1.
    labelled = table["y"].notna()
    assert (table.loc[labelled, "target_lag_1"] == table.loc[labelled, "y"]).mean() < 0.99
    with pytest.raises(ValueError, match=r"label_delay \(3\) must be >= ahead \(6\)"):
        TargetConfig(kind="label", ahead=6, label_delay=3)
    with pytest.raises(ValueError, match=r"ahead \(2\) is for a label target"):
        TargetConfig(kind="direction", ahead=2)


def test_the_series_level_is_the_share_of_its_last_known_labels(panel, small_features, vol_target):
    """``features.level_window``: per symbol, the mean of the labels known at t (y up to t - horizon) over the
    last W of them; off by default."""
    off = small_features.model_copy(update={"level_window": 0})
    assert LEVEL_COLUMN not in build_features(panel, off, vol_target).feature_names
    window = 30
    features = build_features(panel, small_features.model_copy(update={"level_window": window}), vol_target)
    assert LEVEL_COLUMN in features.feature_names
    h = vol_target.horizon
    checked = 0
    for symbol, group in features.meta.assign(y=features.y.to_numpy()).groupby("symbol"):
        y, level = group["y"].to_numpy(), features.X.loc[group.index, LEVEL_COLUMN].to_numpy()
        # The kept rows of a symbol are consecutive: row i's known labels are y[..i-h], its level their last W.
        expected = np.array([y[i - h - window + 1 : i - h + 1].mean() for i in range(window + h - 1, len(y))])
        np.testing.assert_allclose(level[window + h - 1 :], expected.astype(np.float32), rtol=0, atol=1e-6)
        assert np.ptp(expected) > 0.1, symbol  # a level that moves, so the check means something
        checked += len(expected)
    assert checked > 400
