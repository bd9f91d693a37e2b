"""Walk-forward and evaluation sizes fitted to short data: what shrinks, what never does, what the error says."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from driftline.config import config_to_yaml, flatten_config, load_config
from driftline.errors import InsufficientDataError
from driftline.evaluation import holdout_split
from driftline.features import Where, build_features
from driftline.ingest import load_data
from driftline.sizing import (
    FITTED_KEYS,
    MIN_FOLDS,
    MIN_TEST_TIMESTAMPS,
    MIN_TRAIN_TIMESTAMPS,
    SHRINK_ORDER,
    size_to_data,
)
from driftline.splits import WalkForwardSplit


def _daily(n_times: int, symbols: int = 1) -> np.ndarray:
    return np.repeat(pd.date_range("2020-01-01", periods=n_times, freq="D").to_numpy(), symbols)


def _folds(config, times: np.ndarray) -> list:
    """The walk-forward folds the run would cut on the development rows (raises when they do not fit)."""
    unique = np.unique(times)
    development = len(unique) - config.evaluation.window - config.gap
    return WalkForwardSplit.from_config(config.splits, config.gap).time_folds(development)


def _suggested(message: str) -> dict[str, int]:
    """The ``key=value`` pairs an error message proposes."""
    return {key: int(value) for key, value in re.findall(r"([a-z_]+\.[a-z_]+)=(\d+)", message)}


@pytest.fixture(scope="module")
def short_aapl(tmp_path_factory) -> pd.DataFrame:
    """The last 800 daily bars of AAPL (bokeh-sampledata), as a vendor CSV names the columns."""
    from bokeh_sampledata import stocks

    frame = pd.DataFrame(stocks.AAPL).tail(800)
    return frame.rename(columns={"date": "Date", "close": "Close", "adj_close": "Adj Close"})[
        ["Date", "Close", "Adj Close"]
    ]


def test_defaults_shrink_to_fit_800_daily_bars(short_aapl, tmp_path, caplog):
    path = tmp_path / "AAPL.csv"
    short_aapl.to_csv(path, index=False)
    config = load_config(None, {"data.path": str(path)})
    loaded = load_data(config.data)
    features = build_features(loaded.frame, config.features, config.target, Where(loaded.source))

    with caplog.at_level(logging.WARNING, logger="driftline.sizing"):
        sized = size_to_data(config, features.times)

    assert sized.timestamps == 651  # 800 bars less the trailing windows' warm-up and the label horizon
    # Fewer folds first (down to 3), then the hold-out: 651 - 5 - 250 - 5 - 3 x 50 = 241 timestamps.
    assert sized.adjusted.keys() == {"splits.n_splits", "evaluation.window"}
    assert sized.adjusted["splits.n_splits"]["from"] == 5 and sized.adjusted["splits.n_splits"]["to"] == MIN_FOLDS
    assert sized.adjusted["evaluation.window"] == {
        "from": 500,
        "to": 241,
        "reason": sized.adjusted["evaluation.window"]["reason"],
    }
    assert "651 timestamps" in sized.adjusted["evaluation.window"]["reason"]
    assert "need >= 1010" in sized.adjusted["evaluation.window"]["reason"]
    # The adjusted values are in the config itself, a new frozen copy: what is hashed, cached and logged.
    effective = sized.config
    assert effective is not config and config.splits.n_splits == 5 and config.evaluation.window == 500
    assert (effective.splits.n_splits, effective.evaluation.window, effective.splits.min_train_size) == (3, 241, 250)
    assert flatten_config(effective)["evaluation.window"] == "241" and "n_splits: 3" in config_to_yaml(effective)
    params = sized.params()  # every setting fitted to data, logged once it is known
    assert {k: params[k] for k in SHRINK_ORDER} == {
        "splits.n_splits": "3",
        "evaluation.window": "241",
        "splits.min_train_size": "250",
    }
    assert params.keys() == set(FITTED_KEYS) and params["features.vol_long"] == "60"
    with pytest.raises(ValidationError, match="frozen"):
        effective.splits.n_splits = 5  # type: ignore[misc]
    # Each change is a warning naming the key, from what to what.
    assert any("evaluation.window 500 -> 241" in r.getMessage() for r in caplog.records)
    assert any("splits.n_splits 5 -> 3" in r.getMessage() for r in caplog.records)

    # The sizes really fit: hold-out cut, then three folds of at least 50 test timestamps each.
    _, holdout = holdout_split(features, effective.evaluation.window, effective.gap)
    assert len(np.unique(holdout.times)) == 241
    folds = _folds(effective, features.times)
    assert len(folds) == 3 and all(len(test) >= MIN_TEST_TIMESTAMPS for _, test in folds)
    assert len(folds[0][0]) == 250


def test_enough_data_changes_nothing():
    config = load_config(None)
    sized = size_to_data(config, _daily(1010))
    assert sized.config is config and sized.adjusted == {}


def test_long_data_gets_a_hold_out_of_five_percent_unless_the_user_set_one():
    """Half a year of minute bars is not judged on 500 of them: 5% of the timestamps, at most 5,000."""
    sized = size_to_data(load_config(None), _daily(40_000))
    assert sized.config.evaluation.window == 2_000
    assert (
        sized.adjusted["evaluation.window"]["from"] == 500
        and "the hold-out is 5% of them" in (sized.adjusted["evaluation.window"]["reason"])
    )
    assert "evaluation.window" in sized.automatic  # a retrain sizes it again on its own data
    minutes = pd.date_range("2023-01-01", periods=260_000, freq="min").to_numpy()
    assert size_to_data(load_config(None), minutes).config.evaluation.window == 5_000
    assert size_to_data(load_config(None), _daily(9_999)).adjusted == {}  # 5% is less than 500
    kept = size_to_data(load_config(None, {"evaluation.window": 500}), _daily(40_000))
    assert kept.config.evaluation.window == 500 and kept.adjusted == {}


def test_a_panel_keeps_an_evaluation_window_of_ten_bootstrap_blocks():
    """Four symbols: 100 timestamps hold 400 rows (>= promotion.min_rows); 10 blocks of 2 x horizon bound it."""
    sized = size_to_data(load_config(None), _daily(400, symbols=4))
    assert sized.config.evaluation.window == 100
    assert sized.config.splits.n_splits == MIN_FOLDS
    # 400 - 100 - 5 - 5 - 3 x 50 = 140 timestamps left for the first training window.
    assert sized.adjusted["splits.min_train_size"]["to"] == 140 >= MIN_TRAIN_TIMESTAMPS
    assert len(_folds(sized.config, _daily(400, symbols=4))) == 3


def test_a_single_series_keeps_promotion_min_rows_in_the_evaluation_window():
    sized = size_to_data(load_config(None), _daily(460))
    assert sized.config.evaluation.window == 200  # promotion.min_rows 200 rows = 200 daily timestamps
    assert sized.config.splits.min_train_size == MIN_TRAIN_TIMESTAMPS


def test_only_the_values_the_user_did_not_set_shrink():
    config = load_config(None, {"evaluation.window": 500})
    sized = size_to_data(config, _daily(812))
    assert sized.config.evaluation.window == 500
    assert set(sized.adjusted) == {"splits.n_splits", "splits.min_train_size"}
    assert (sized.config.splits.n_splits, sized.config.splits.min_train_size) == (3, 152)


def test_explicit_sizes_that_still_split_are_kept(caplog):
    config = load_config(None, {"evaluation.window": 500, "splits.n_splits": 5, "splits.min_train_size": 250})
    with caplog.at_level(logging.WARNING, logger="driftline.sizing"):
        sized = size_to_data(config, _daily(812))
    assert sized.config is config and sized.adjusted == {}
    assert any("test folds of 10 timestamps" in r.getMessage() for r in caplog.records)


def test_explicit_sizes_that_do_not_fit_are_an_error_naming_the_keys_and_the_values_that_fit():
    explicit = {"evaluation.window": 500, "splits.n_splits": 5}
    with pytest.raises(InsufficientDataError) as caught:
        size_to_data(load_config(None, explicit), _daily(700))

    message = str(caught.value)
    assert message.startswith("too little data: 700 timestamps after the features' warm-up")
    assert (
        "evaluation.window 500 + gap 5 + splits.min_train_size 250 + gap 5 + 5 folds x 50 test timestamps need >= 1010"
        in message
    )
    assert "with splits.n_splits=3, evaluation.window=290 it fits" in message
    assert "(splits.n_splits, evaluation.window set explicitly, so not lowered automatically)" in message
    # The proposed values do fit: set them and the run goes ahead unchanged.
    proposed = load_config(None, {**explicit, **_suggested(message)})
    assert size_to_data(proposed, _daily(700)).config is proposed
    assert len(_folds(proposed, _daily(700))) == 3


def test_below_the_minimums_the_error_says_how_much_data_and_which_smaller_values_fit():
    with pytest.raises(InsufficientDataError) as caught:
        size_to_data(load_config(None), _daily(300))

    message = str(caught.value)
    assert (
        "even the smallest sizes chosen automatically (evaluation.window 200 + gap 5 + splits.min_train_size 100"
        in message
    )
    assert "need >= 460" in message and "add at least 160 timestamps of data" in message
    proposed = _suggested(message)
    assert proposed == {
        "splits.n_splits": 2,
        "evaluation.window": 145,
        "splits.min_train_size": 72,
        "promotion.min_rows": 145,
    }, message
    assert "below promotion.min_rows 200: no model is promoted unless promotion.min_rows=145 too" in message
    config = load_config(None, proposed)
    assert size_to_data(config, _daily(300)).config is config
    folds = _folds(config, _daily(300))
    assert len(folds) == 2 and all(len(test) >= 5 for _, test in folds)


def test_a_horizon_that_fits_is_proposed_when_no_size_does():
    # A yearly panel (38 years after the warm-up, 200 countries, as statsmodels' fertility panel on the
    # defaults): the 5-year horizon's two purge gaps leave too few years; one year ahead fits.
    times = np.repeat(pd.date_range("1960-01-01", periods=38, freq="YS").to_numpy(), 200)
    with pytest.raises(InsufficientDataError) as error:
        size_to_data(load_config(None), times)
    message = str(error.value)
    assert "predict 1 period ahead instead of 5: with --horizon 1" in message, message
    assert "too short to train and evaluate" not in message
    sized = size_to_data(load_config(None, {"target.horizon": 1}), times)  # the proposal trains
    assert sized.config.gap == 1 and sized.config.splits.n_splits >= 3
    # Not for a label target (its horizon is not the question's), nor with a gap set by hand.
    assert "--horizon" not in _too_short(
        load_config(None, {"target.kind": "label", "data.target_col": "y", "target.label_delay": 5}), times
    )
    assert "--horizon" not in _too_short(load_config(None, {"splits.gap": 5}), times)


def _too_short(config, times) -> str:
    with pytest.raises(InsufficientDataError) as error:
        size_to_data(config, times)
    return str(error.value)


def test_far_too_little_data_says_so():
    with pytest.raises(InsufficientDataError, match=r"too short to train and evaluate a model on"):
        size_to_data(load_config(None), _daily(40))


def test_a_retrain_starts_from_the_users_sizes_not_the_ones_lowered_for_short_data(tmp_path):
    from driftline.sizing import SHRINK_ORDER, retrain_config_yaml

    def load(text: str):
        (tmp_path / "pipeline.yaml").write_text(text)
        return load_config(tmp_path / "pipeline.yaml")

    # The first model: 600 daily bars with the default sizes and a number of folds the user chose.
    first = size_to_data(load_config(None, {"splits.n_splits": 4}), _daily(600))
    assert set(first.adjusted) == {"evaluation.window", "splits.min_train_size"}
    assert first.automatic == ("evaluation.window", "splits.min_train_size")
    recorded = config_to_yaml(first.config)  # what the version stores: the sizes it used, every key written out

    # Years later the data has grown. Read back as it was stored, the lowered sizes look set by the user
    # and stay lowered:
    grown = _daily(1500)
    assert size_to_data(load(recorded), grown).config.evaluation.window == first.config.evaluation.window < 500
    # The retrain's config drops the sizes the pipeline chose: they are the defaults again, and fit.
    retrain = retrain_config_yaml(recorded, first.automatic)
    again = size_to_data(load(retrain), grown)
    assert (again.config.evaluation.window, again.config.splits.min_train_size) == (500, 250)
    assert again.config.splits.n_splits == 4 and again.adjusted == {}  # the user's own choice is kept
    assert again.automatic == first.automatic  # and the next retrain drops them again
    # On data as short as the first time, they shrink as they did then.
    assert size_to_data(load(retrain), _daily(600)).config == first.config
    assert set(first.automatic) <= set(SHRINK_ORDER)
    with pytest.raises(ValueError, match="not a setting fitted to the data"):
        retrain_config_yaml(recorded, ["splits.gap"])


def test_a_too_short_yearly_series_gets_smaller_windows_and_trains_on_the_sizes_the_error_proposes(tmp_path, caplog):
    """statsmodels' yearly sunspots (306 years), one series: the daily-sized windows take 145 years before a row
    has every feature, and even what the smallest windows leave (298 years) is under the single-series minimums.
    The windows are lowered anyway and the error proposes sizes; set as proposed, the run trains on test folds
    of 37 years (the smallest windows leave the most)."""
    import statsmodels.api as sm

    from driftline.features import warm_up_note
    from driftline.pipeline import PlainSteps, develop

    sun = sm.datasets.sunspots.load_pandas().data
    sun = sun[sun["SUNACTIVITY"] > 0].assign(YEAR=lambda f: f["YEAR"].astype(int).astype(str))
    path = tmp_path / "sunspots.csv"
    sun.to_csv(path, index=False)
    settings = {"data.path": str(path), "data.time_col": "YEAR", "data.price_col": "SUNACTIVITY"}
    settings |= {"target.kind": "direction", "target.horizon": 1, "models.families": ["logreg"]}
    config = load_config(None, settings)
    with caplog.at_level(logging.WARNING), pytest.raises(InsufficientDataError) as info:
        develop(load_data(config.data), config, PlainSteps())
    message = str(info.value)
    assert message.startswith("too little data: 298 timestamps after the features' warm-up")
    assert any("left 161 of the longest symbol's 306 timestamps" in r.getMessage() for r in caplog.records)
    proposed = _suggested(message)
    assert proposed["splits.n_splits"] == 2 and proposed["evaluation.window"] < 200

    developed = develop(load_data(config.data), load_config(None, settings | proposed), PlainSteps())
    assert [fold.n_test for fold in developed.result.folds] == [37, 37]
    assert developed.config.features.median_window == 10 and "features.median_window" in developed.sized.adjusted
    assert developed.result.pooled["logreg"]["auc"] > 0.6  # the 11-year cycle: next year's direction is predictable
    # The note a too-short error carries when the windows took a tenth of the timestamps or more.
    defaults = load_config(None, {}).features
    assert warm_up_note(1000, 950, defaults) == ""
    assert warm_up_note(306, 161, defaults).endswith(
        "took the first 145 of 306 timestamps before a row had every feature (their sizes: features.median_window "
        "250, features.zscore_window 120, features.vol_long 60, features.macd_slow 26, counted in rows; smaller "
        "ones suit yearly or monthly data)"
    )


# --- a class that starts late -------------------------------------------------------------------------------------


def test_a_class_that_starts_late_grows_the_first_window_until_its_fitting_part_holds_both(caplog):
    """No event in the first 600 hours of 2,000: before, "fold 1: the training rows (253) hold a single class"
    stopped the run; now the first window reaches the events (its fitting part, before the calibration slice)."""
    from driftline.sizing import FIRST_WINDOW_CLASS_ROWS
    from driftline.splits import calibration_cut

    times = pd.date_range("2020-01-01", periods=2000, freq="h").to_numpy()
    labels = (np.random.default_rng(3).uniform(size=2000) < 0.35).astype(int)
    labels[:600] = 0
    config = load_config(None, {"target.kind": "label", "data.target_col": "y"})
    with caplog.at_level(logging.WARNING, logger="driftline.sizing"):
        sized = size_to_data(config, times, labels)
    first = sized.config.splits.min_train_size
    assert first > 600 and sized.adjusted["splits.min_train_size"]["from"] == 250, sized.adjusted
    assert "a class starts late: splits.min_train_size 250 -> " in caplog.text
    assert "holds 0 rows of class 1 before its calibration slice" in caplog.text
    assert "splits.min_train_size" in sized.automatic  # a retrain sizes it again on its own data
    train, _ = _folds(sized.config, times)[0]
    fitting, _ = calibration_cut(times[train.start : train.stop], sized.config.calibration.fraction, sized.config.gap)
    assert labels[train.start : train.stop][fitting].sum() >= FIRST_WINDOW_CLASS_ROWS
    # Set by the user, or already long enough: as before.
    kept = load_config(None, {"target.kind": "label", "data.target_col": "y", "splits.min_train_size": 300})
    assert size_to_data(kept, times, labels).config.splits.min_train_size == 300
    early = (np.arange(2000) % 3 == 0).astype(int)
    assert size_to_data(config, times, early).config.splits.min_train_size == 250
