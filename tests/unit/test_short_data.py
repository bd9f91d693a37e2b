"""Settings fitted to short data (``driftline.short_data``, ``driftline.sizing``): a yearly panel trains on the
defaults; data the defaults fit, and every setting the user set, keep their values; a retrain fits them again."""

from __future__ import annotations

import gzip
import logging
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.config import config_to_yaml, load_config
from driftline.errors import InsufficientDataError
from driftline.ingest import load_data
from driftline.pipeline import PlainSteps, develop
from driftline.short_data import DataFit, fit_min_rows, fit_windows, lost_rows
from driftline.sizing import (
    MIN_FOLDS,
    PANEL_MIN_TEST_TIMESTAMPS,
    WINDOW_KEYS,
    retrain_config_yaml,
    size_to_data,
)
from driftline.synthetic import make_ohlcv_panel


@pytest.fixture(scope="module")
def emissions(tmp_path_factory) -> Path:
    """bokeh-sampledata's CO2 emissions per country, 1950-2012, as the package ships it (201 countries)."""
    shipped = Path(str(resources.files("bokeh_sampledata") / "_data" / "emissions.csv.gz"))
    path = tmp_path_factory.mktemp("emissions") / "emissions.csv"
    with gzip.open(shipped, "rb") as raw, path.open("wb") as out:
        shutil.copyfileobj(raw, out)
    return path


def _settings(path: Path) -> dict:
    return {
        "data.path": str(path),
        "target.kind": "direction",
        "target.horizon": 1,
        "models.families": ["logreg"],
        "models.tuning.enabled": False,
    }


def test_a_yearly_country_panel_trains_on_the_default_windows_and_sizes(emissions, caplog):
    """63 years: no country has the 100 rows the contract asks, the daily-sized windows leave no row with every
    feature, and 3 folds of 50 years cannot fit. Each of those the user did not set is lowered, with a warning."""
    config = load_config(None, _settings(emissions))
    set_by_user = load_config(None, _settings(emissions) | {"contract.min_rows_per_symbol": 100})
    with pytest.raises(InsufficientDataError, match=r"too few clean rows per symbol \(need 100"):
        develop(load_data(config.data), set_by_user, PlainSteps())

    with caplog.at_level(logging.WARNING):
        developed = develop(load_data(config.data), config, PlainSteps())

    adjusted = developed.sized.adjusted
    assert adjusted["contract.min_rows_per_symbol"]["from"] == 100
    assert adjusted["contract.min_rows_per_symbol"]["to"] == 15  # a quarter of the longest country's 63 years
    used = developed.config
    assert used.contract.min_rows_per_symbol == 15
    # The windows were scaled together and still keep the config's order; the volatility target's threshold,
    # unused by the direction target, is left alone.
    assert used.features.vol_short < used.features.vol_mid < used.features.vol_long < 60
    assert used.features.median_window < 250 and used.features.macd_fast < used.features.macd_slow
    assert "target.median_window" not in adjusted and used.target.median_window == 250
    # The lags of the labels the prices gave wait for the horizon: on short data they go first.
    assert (adjusted["target.label_lags"]["from"], adjusted["target.label_lags"]["to"]) == ((1, 2, 5), ())
    assert used.target.label_lags == () and not any(
        n.startswith("target_lag_") for n in developed.features.feature_names
    )
    assert {"features.median_window", "features.vol_long", "splits.n_splits", "evaluation.window"} <= adjusted.keys()
    # Their warm-up leaves most of each country's years; the features are those of the lowered windows.
    assert f"vol_ratio_{used.features.vol_short}_{used.features.vol_long}" in developed.features.feature_names
    years = developed.features.meta["timestamp"].dt.year
    assert years.max() - years.min() >= 40
    # A wide panel: test folds of a few years, each holding hundreds of countries' rows.
    assert len(developed.result.folds) == used.splits.n_splits == MIN_FOLDS
    for fold in developed.result.folds:
        assert fold.n_test >= 500
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("data too short for the feature windows: features.return_windows") for m in messages)
    assert any("contract.min_rows_per_symbol 100 -> 15" in m for m in messages)
    assert 0.45 < developed.result.pooled["logreg"]["auc"] < 0.75


def test_the_settings_a_user_set_are_kept_and_a_retrain_fits_the_others_again(emissions):
    settings = _settings(emissions) | {"features.vol_long": 8, "features.vol_mid": 6, "features.median_window": 20}
    config = load_config(None, settings)
    loaded = load_data(config.data)
    fitted = fit_min_rows(config, loaded.frame)
    clean = loaded.frame[loaded.frame["symbol"].map(loaded.frame["symbol"].value_counts()) >= 15]
    clean = clean[clean["close"] > 0].reset_index(drop=True)
    windowed = fit_windows(fitted, clean)
    used = windowed.config.features
    assert (used.vol_long, used.vol_mid, used.median_window) == (8, 6, 20)
    assert used.vol_short < 5  # lowered, still below the user's vol_mid
    changed = {a.key for a in windowed.adjustments}
    assert not {"features.vol_long", "features.median_window"} & changed and "features.zscore_window" in changed
    assert "features.vol_long" not in windowed.automatic and "features.zscore_window" in windowed.automatic

    # The version records every key written out; a retrain drops those fitted to the data and fits them anew.
    sized = windowed.sized(np.repeat(np.arange(60), 150))
    recorded = config_to_yaml(sized.config)
    path = emissions.parent / "retrain.yaml"
    path.write_text(retrain_config_yaml(recorded, sized.automatic))
    again = load_config(path)
    assert again.features.zscore_window == 120 and again.contract.min_rows_per_symbol == 100  # defaults again
    assert (again.features.vol_long, again.features.median_window) == (8, 20)  # the user's own
    assert again.features.vol_short == 5


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The synthetic vendor-style panel as the contract's clean rows (canonical names, sorted)."""
    frame = frame.rename(columns=str.lower).rename(columns={"date": "timestamp"})
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)


def test_data_the_defaults_fit_keeps_every_default():
    frame = _canonical(make_ohlcv_panel(n_symbols=2, n_days=1_200, seed=3))
    config = load_config(None)
    fitted = fit_min_rows(config, frame)
    assert fitted.config is config and fitted.adjustments == ()
    windowed = fit_windows(fitted, frame)
    assert windowed.config is config and windowed.adjustments == ()
    assert set(windowed.automatic) == {"contract.min_rows_per_symbol", *WINDOW_KEYS}


def test_short_data_drops_a_price_targets_label_lags_before_it_scales_the_windows(emissions):
    """The volatility target on the yearly panel: with the label lags (the horizon plus 4 rows more of warm-up)
    no scaling left the 49 years the smallest sizes need (44 at best); without them 48, as before the lags.
    A label target keeps its lags (only label_delay rows)."""
    config = load_config(None, _settings(emissions) | {"target.kind": "volatility", "target.horizon": 5})
    loaded = load_data(config.data)
    fitted = fit_min_rows(config, loaded.frame)
    clean = loaded.frame[loaded.frame["symbol"].map(loaded.frame["symbol"].value_counts()) >= 15]
    clean = clean[clean["close"] > 0].reset_index(drop=True)
    windowed = fit_windows(fitted, clean)
    assert windowed.config.target.label_lags == ()
    assert any(a.key == "target.label_lags" and a.before == (1, 2, 5) for a in windowed.adjustments)
    kept = load_config(None, _settings(emissions) | {"target.kind": "volatility", "target.label_lags": [1, 2, 5]})
    by_user = fit_windows(fit_min_rows(kept, loaded.frame), clean)
    assert by_user.config.target.label_lags == (1, 2, 5)  # set by the user: never changed
    frame = _canonical(make_ohlcv_panel(n_symbols=2, n_days=1_200, seed=3))
    long_enough = fit_windows(fit_min_rows(load_config(None), frame), frame)
    assert long_enough.config.target.label_lags == (1, 2, 5)


def test_the_warm_up_is_measured_on_the_features():
    """The default windows' warm-up on daily bars: the volatility-vs-median features need the 20-day
    volatility and half of the 250-row median window; the direction label needs the next ``horizon`` rows."""
    frame = _canonical(make_ohlcv_panel(n_symbols=1, n_days=600, seed=4))
    head, tail = lost_rows(load_config(None, {"target.kind": "direction"}), frame)
    assert 140 <= head <= 150 and tail == 5
    smaller = load_config(None, {"target.kind": "direction", "features.median_window": 40})
    assert lost_rows(smaller, frame)[0] < head


def test_a_wide_panel_may_test_on_fewer_timestamps_a_narrow_one_may_not():
    """200 symbols x 60 yearly timestamps fit 3 folds of a few timestamps (hundreds of rows each); four symbols
    over the same 60 timestamps do not: their folds would hold a few dozen rows."""
    wide = np.repeat(pd.date_range("1950-01-01", periods=60, freq="YS").to_numpy(), 200)
    config = load_config(None, {"target.kind": "direction", "target.horizon": 1})
    sized = size_to_data(config, wide)
    assert sized.config.splits.n_splits == MIN_FOLDS
    assert "a wide panel" in sized.adjusted["splits.n_splits"]["reason"]
    room = 60 - sized.config.evaluation.window - sized.config.splits.min_train_size - 2 * config.gap
    assert room // MIN_FOLDS >= PANEL_MIN_TEST_TIMESTAMPS
    narrow = np.repeat(pd.date_range("1950-01-01", periods=60, freq="YS").to_numpy(), 4)
    with pytest.raises(InsufficientDataError, match="too little data: 60 timestamps"):
        size_to_data(config, narrow)


def test_a_data_fit_merges_its_changes_ahead_of_the_sizes():
    config = load_config(None)
    sized = DataFit(config, automatic=("features.vol_long",)).sized(np.arange(700))
    assert sized.automatic[-1] == "features.vol_long" and "evaluation.window" in sized.automatic


@pytest.mark.parametrize(("rows", "minimum"), [(8, 100), (40, 10), (63, 15), (99, 24), (100, 100)])
def test_the_minimum_rows_fall_to_a_quarter_of_the_longest_symbol_only_when_none_has_enough(rows, minimum):
    """Fewer rows than the floor keep the configured minimum, so the error names what the defaults need."""
    frame = pd.DataFrame({"symbol": ["A"] * rows + ["B"] * (rows // 2)})
    assert fit_min_rows(load_config(None), frame).config.contract.min_rows_per_symbol == minimum
    assert fit_min_rows(load_config(None, {"contract.min_rows_per_symbol": 100}), frame).adjustments == ()


def test_a_symbol_column_found_by_its_rows_is_pinned_so_a_one_country_batch_keeps_its_name(emissions, tmp_path):
    """Our World in Data names its key ``Entity``: training finds it by the rows (each year repeats across
    countries). A scoring batch of one country has no repeated year to find it by; the version's config names
    the column, so the batch's rows are that country's, not a nameless series'."""
    from driftline.config import ONE_SERIES
    from driftline.short_data import fit_to_rows

    panel = pd.read_csv(emissions).rename(columns={"country": "Entity"})
    panel.to_csv(tmp_path / "owid.csv", index=False)
    config = load_config(None, _settings(tmp_path / "owid.csv"))
    loaded = load_data(config.data)
    assert loaded.columns.symbol == "Entity" and loaded.columns.symbol_inferred
    fitted = fit_to_rows(config, loaded)
    assert fitted.config.data.symbol_col == "Entity" and "data.symbol_col" in fitted.automatic
    assert config.data.symbol_col is None  # the user's config is not touched

    panel[panel["Entity"] == "Chile"].to_csv(tmp_path / "chile.csv", index=False)
    batch = {"path": str(tmp_path / "chile.csv")}
    pinned = load_data(fitted.config.data.model_copy(update=batch))
    assert set(pinned.frame["symbol"]) == {"Chile"}
    unpinned = load_data(config.data.model_copy(update=batch))
    assert set(unpinned.frame["symbol"]) == {ONE_SERIES}  # what a batch was called before
    # A name the ingest knows (symbol, ticker, country, ...) is found in any batch: nothing to pin.
    named = load_data(load_config(None, _settings(emissions)).data)
    assert not named.columns.symbol_inferred
    assert fit_to_rows(config, named).config.data.symbol_col is None


def test_a_label_series_too_short_for_the_sizes_keeps_its_windows(tmp_path, caplog):
    """A label series' warm-up is its label lags: scaling the price windows down leaves it no more rows, so they
    are kept and not warned about (before: ten changed windows in a warning, "the most any scaling leaves")."""
    from driftline.synthetic import make_labelled_series

    make_labelled_series(n_rows=200, seed=1).to_csv(tmp_path / "s.csv", index=False)
    config = load_config(None, {"data.path": str(tmp_path / "s.csv"), "data.target_col": "y", "target.kind": "label"})
    with caplog.at_level(logging.WARNING), pytest.raises(InsufficientDataError, match=r"too little data: 195 "):
        develop(load_data(config.data, need_target=True), config, PlainSteps())
    assert "feature windows" not in caplog.text
