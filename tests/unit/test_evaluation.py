"""The hold-out window and the champion/challenger evaluation around decide_promotion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.config import DecisionSpec, PromotionConfig
from driftline.errors import InsufficientDataError
from driftline.evaluation import (
    ChampionModel,
    SmokeTestFailed,
    check_scores,
    evaluate_challenger,
    holdout_split,
    rows_after_cutoff,
)

PROMOTION = PromotionConfig(n_bootstrap=200, min_rows=50)


def test_holdout_split_keeps_the_last_window_apart_with_a_purge(walk_forward_run):
    features = walk_forward_run.features
    development, holdout = holdout_split(features, window=100, gap=5)
    unique = np.unique(features.times)
    assert set(np.unique(holdout.times)) == set(unique[-100:])
    assert set(np.unique(development.times)) == set(unique[: len(unique) - 105])
    assert len(holdout.X) == np.isin(features.times, unique[-100:]).sum()
    assert len(development.X) == np.isin(features.times, unique[:-105]).sum()
    # Rows travel with their labels and meta.
    first = holdout.meta.iloc[0]
    source = features.meta.index[
        (features.meta["symbol"] == first["symbol"]) & (features.meta["timestamp"] == first["timestamp"])
    ][0]
    assert holdout.y.iloc[0] == features.y.iloc[source]
    pd.testing.assert_series_equal(holdout.X.iloc[0], features.X.iloc[source], check_names=False)


def test_holdout_window_too_large(walk_forward_run):
    n_times = len(np.unique(walk_forward_run.features.times))
    with pytest.raises(InsufficientDataError, match=r"lower evaluation\.window"):
        holdout_split(walk_forward_run.features, window=n_times - 5, gap=5)


def test_rows_after_cutoff():
    times = np.repeat(pd.date_range("2024-01-01", periods=10).to_numpy(), 2)
    np.testing.assert_array_equal(rows_after_cutoff(times, None, 3), np.arange(20))
    rows = rows_after_cutoff(times, pd.Timestamp("2024-01-04"), 2)
    # Cutoff is the 4th day; two more are purged; the rest (days 7..10) are comparable.
    assert set(times[rows]) == set(pd.date_range("2024-01-07", periods=4).to_numpy())
    assert len(rows) == 8


def test_check_scores():
    good = pd.DataFrame({"probability": [0.1, 0.9], "prediction": [0, 1]})
    check_scores(good, 2)
    with pytest.raises(SmokeTestFailed, match="no 'probability' column"):
        check_scores(pd.DataFrame({"p": [0.1]}), 1)
    with pytest.raises(SmokeTestFailed, match="1 rows for 2 inputs"):
        check_scores(good.iloc[:1], 2)
    with pytest.raises(SmokeTestFailed, match="outside"):
        check_scores(pd.DataFrame({"probability": [0.1, 1.2]}), 2)
    with pytest.raises(SmokeTestFailed, match="not finite"):
        check_scores(pd.DataFrame({"probability": [0.1, np.nan]}), 2)


def _constant(p: float):
    def predict(X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"probability": np.full(len(X), p), "prediction": np.full(len(X), int(p >= 0.5))})

    return predict


def _evaluate(holdout, champion):
    return evaluate_challenger(
        holdout,
        _constant(0.4),
        champion,
        base_rate=0.5,
        spec=DecisionSpec(promotion=PROMOTION, block_length=10, gap=5),
    )


def test_champion_that_cannot_score_keeps_its_place(walk_forward_run):
    _, holdout = holdout_split(walk_forward_run.features, window=100, gap=5)

    def broken(X: pd.DataFrame) -> pd.DataFrame:
        raise KeyError("feature 'vol_60_z' missing")

    decision = _evaluate(holdout, ChampionModel("4", None, broken))
    assert decision.action == "keep-champion"
    assert "version 4" in str(decision.reasons[0]) and "KeyError" in str(decision.reasons[0])


def test_comparison_uses_only_rows_after_the_champions_cutoff(walk_forward_run):
    _, holdout = holdout_split(walk_forward_run.features, window=100, gap=5)
    unique = np.unique(holdout.times)
    cutoff = pd.Timestamp(unique[39])
    decision = _evaluate(holdout, ChampionModel("2", cutoff, _constant(0.5)))
    expected_rows = np.isin(holdout.times, unique[45:]).sum()
    assert decision.comparison["rows"] == expected_rows
    first = _evaluate(holdout, None)  # the first model is compared on the whole window
    assert first.comparison["rows"] == len(holdout.y)
    assert first.comparison["baseline"] == "base rate 0.500"
