"""Walk-forward folds on timestamps: order, purge gap, panel integrity, and clear errors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from driftline.config import SplitConfig
from driftline.errors import InsufficientDataError
from driftline.splits import WalkForwardSplit, calibration_cut


def _folds(splitter: WalkForwardSplit, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(splitter.split(np.zeros(n)))


@pytest.mark.parametrize("scheme", ["expanding", "sliding"])
@pytest.mark.parametrize("gap", [0, 1, 5])
def test_test_folds_are_contiguous_ordered_and_end_at_the_last_timestamp(scheme, gap):
    n = 120
    splitter = WalkForwardSplit(4, gap=gap, min_train_size=30, scheme=scheme, max_train_size=40)
    folds = _folds(splitter, n)
    assert len(folds) == splitter.get_n_splits() == 4
    tests = [test for _, test in folds]
    for test in tests:
        np.testing.assert_array_equal(test, np.arange(test[0], test[-1] + 1))  # contiguous
    for earlier, later in itertools.pairwise(tests):
        assert later[0] == earlier[-1] + 1  # in order, no overlap, no hole
    assert tests[-1][-1] == n - 1
    assert len({len(t) for t in tests}) == 1
    for train, test in folds:
        # Exactly ``gap`` timestamps purged between the end of training and the start of the test.
        assert test[0] - train[-1] - 1 == gap
        np.testing.assert_array_equal(train, np.arange(train[0], train[-1] + 1))
        assert len(train) >= 30


def test_expanding_keeps_all_history():
    folds = _folds(WalkForwardSplit(3, gap=2, min_train_size=20), 80)
    assert all(train[0] == 0 for train, _ in folds)
    sizes = [len(train) for train, _ in folds]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_sliding_window_length_is_respected():
    folds = _folds(WalkForwardSplit(3, gap=2, min_train_size=20, scheme="sliding", max_train_size=25), 100)
    # The first window has only min_train_size timestamps of history; later ones are cut to 25.
    assert [len(train) for train, _ in folds] == [20, 25, 25]
    for train, test in folds:
        assert train[-1] == test[0] - 3
    starts = [train[0] for train, _ in folds]
    assert starts == sorted(starts) and len(set(starts)) == 3


def test_sliding_window_defaults_to_min_train_size():
    folds = _folds(WalkForwardSplit(3, gap=0, min_train_size=15, scheme="sliding"), 60)
    assert {len(train) for train, _ in folds} == {15}


def test_expanding_first_window_is_a_test_fold_long_on_long_series():
    # 5 folds on 6000 timestamps: the first window is not the 250-timestamp minimum scoring 1150 rows a fold.
    folds = _folds(WalkForwardSplit(5, gap=1, min_train_size=250), 6000)
    test_sizes = {len(test) for _, test in folds}
    assert test_sizes == {(6000 - 1) // 6}
    assert len(folds[0][0]) >= (6000 - 1) // 6 - 1
    assert folds[-1][1][-1] == 5999


def test_expanding_first_window_keeps_min_train_size_on_short_series():
    # 5 x 60 test timestamps + 250 of training do not fit in 6 equal parts of 560: min_train_size wins.
    folds = _folds(WalkForwardSplit(5, gap=1, min_train_size=250), 560)
    assert 250 <= len(folds[0][0]) < 250 + 5  # rounding of the 5 equal test folds
    assert {len(test) for _, test in folds} == {(560 - 250 - 1) // 5}


def test_explicit_test_size():
    folds = _folds(WalkForwardSplit(3, test_size=7, gap=1, min_train_size=10), 50)
    assert [len(test) for _, test in folds] == [7, 7, 7]
    assert folds[0][1][0] == 50 - 21


@pytest.fixture
def shuffled_panel() -> pd.DataFrame:
    """Three symbols on 60 timestamps, rows in random order, one symbol missing some days."""
    times = pd.bdate_range("2021-01-01", periods=60)
    frame = pd.DataFrame([(s, t) for s in ("A", "B", "C") for t in times], columns=["symbol", "timestamp"])
    frame = frame.drop(frame[(frame["symbol"] == "C") & frame["timestamp"].isin(times[30:35])].index)
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_rows_of_one_timestamp_never_straddle_train_and_test(shuffled_panel):
    times = shuffled_panel["timestamp"].to_numpy()
    splitter = WalkForwardSplit(3, gap=2, min_train_size=20)
    folds = list(splitter.split(shuffled_panel, groups=times))
    unique = np.unique(times)
    for train, test in folds:
        assert not set(times[train]) & set(times[test])
        assert times[train].max() < times[test].min()
        # Every row at a test timestamp is in the test fold, whichever symbol.
        np.testing.assert_array_equal(np.sort(test), np.flatnonzero(np.isin(times, times[test])))
        between = unique[(unique > times[train].max()) & (unique < times[test].min())]
        assert len(between) == 2
        assert not set(between) & set(times[train]) and not set(between) & set(times[test])
    last_test = folds[-1][1]
    assert times[last_test].max() == unique[-1]


def test_groups_must_match_rows():
    with pytest.raises(ValueError, match="one timestamp per row"):
        list(WalkForwardSplit(2).split(np.zeros(10), groups=np.arange(9)))


def test_too_little_data_names_what_is_needed():
    splitter = WalkForwardSplit(4, gap=3, min_train_size=20)
    need = 20 + 3 + 4  # one timestamp per test fold at the least
    assert len(_folds(splitter, need)) == 4
    with pytest.raises(InsufficientDataError) as info:
        _folds(splitter, need - 1)
    message = str(info.value)
    assert f"{need - 1} timestamps" in message and f"need at least {need}" in message
    assert "min_train_size 20" in message and "gap 3" in message


def test_fixed_test_size_that_does_not_fit():
    with pytest.raises(InsufficientDataError, match="need at least 41"):
        _folds(WalkForwardSplit(3, test_size=10, gap=1, min_train_size=10), 40)


def test_single_class_fold_is_an_error():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    splitter = WalkForwardSplit(2, min_train_size=2)
    with pytest.raises(InsufficientDataError, match="single class"):
        list(splitter.split(np.zeros(8), y))
    balanced = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    assert len(list(splitter.split(np.zeros(8), balanced))) == 2
    # A first window inside one season (a year of daylight: every day from January on is longer): the error
    # says to lengthen that window; a later fold's single class says to reshape the folds.
    rising_then_mixed = np.array([1] * 10 + [0, 1] * 10)
    with pytest.raises(InsufficientDataError, match=r"fold 1: the training rows .* a longer first window \(it is 10 "):
        list(WalkForwardSplit(2, min_train_size=10).split(np.zeros(30), rising_then_mixed))
    with pytest.raises(
        InsufficientDataError, match=r"fold 2: the test rows .* use fewer folds, a larger splits\.test_size"
    ):
        list(WalkForwardSplit(2, min_train_size=10).split(np.zeros(30), np.array([0, 1] * 10 + [1] * 10)))


def test_single_class_in_a_test_fold_names_the_fold():
    y = np.array([0, 1, 0, 1, 1, 1, 1, 0, 1, 0])
    with pytest.raises(InsufficientDataError, match="fold 1: the test rows"):
        list(WalkForwardSplit(2, min_train_size=4, test_size=3).split(np.zeros(10), y))


def test_invalid_arguments():
    with pytest.raises(ValueError):
        WalkForwardSplit(0)
    with pytest.raises(ValueError):
        WalkForwardSplit(3, gap=-1)


def test_from_config():
    splitter = WalkForwardSplit.from_config(
        SplitConfig(scheme="sliding", n_splits=4, test_size=9, min_train_size=50, max_train_size=70), gap=6
    )
    assert (splitter.n_splits, splitter.test_size, splitter.gap) == (4, 9, 6)
    assert (splitter.min_train_size, splitter.scheme, splitter.max_train_size) == (50, "sliding", 70)


# --- calibration slice --------------------------------------------------------------------------------------------


def test_calibration_cut_takes_the_latest_slice_after_a_purge():
    times = np.repeat(np.arange(100), 2)  # two symbols per timestamp
    fit, cal = calibration_cut(times, fraction=0.2, gap=5)
    assert set(times[cal]) == set(range(80, 100))
    assert set(times[fit]) == set(range(75))
    assert len(cal) == 40 and len(fit) == 150
    assert times[cal].min() - times[fit].max() == 5 + 1


def test_calibration_cut_without_gap_is_a_partition():
    times = np.arange(50)
    fit, cal = calibration_cut(times, fraction=0.3, gap=0)
    np.testing.assert_array_equal(np.concatenate([fit, cal]), np.arange(50))
    assert len(cal) == 15


def test_calibration_cut_too_short():
    with pytest.raises(InsufficientDataError, match="too short"):
        calibration_cut(np.arange(8), fraction=0.2, gap=5)
