"""The model-quality benchmark: registered with its goals, baselines computed right, and a dataset's row
complete when the real pipeline runs on a small persistent label series."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import quality
from benchmarks import run as bench

QUALITY_TARGETS = {t.key: t for t in bench.TARGETS if t.key.startswith("quality_")}


def test_the_quality_part_is_registered_and_every_goal_is_a_target_the_right_way_round():
    assert "quality" in bench.PARTS
    assert set(QUALITY_TARGETS) == {k for k in quality.summarise({}) if k != "quality_datasets"}
    worse_than_baseline = QUALITY_TARGETS["quality_wf_logloss_excess"]
    assert worse_than_baseline.met(-0.001) and not worse_than_baseline.met(0.001)
    assert QUALITY_TARGETS["quality_ece_20k"].met(0.02) and not QUALITY_TARGETS["quality_ece_20k"].met(0.021)
    margin = QUALITY_TARGETS["quality_persistent_accuracy_margin"]
    assert margin.met(0.0) and not margin.met(-0.01)


@pytest.mark.parametrize(
    ("rows", "cadence", "goal"),
    [
        (52_000, "5min", ("quality_ece_20k", 0.02)),
        (12_000, "daily", ("quality_ece_daily_4k", 0.04)),
        (19_000, "30min", None),
        (3_000, "daily", None),
    ],
)
def test_the_ece_goal_depends_on_size_and_cadence(rows, cadence, goal):
    assert quality.ece_goal(rows, cadence) == goal
    if goal:
        assert QUALITY_TARGETS[goal[0]].value == goal[1]


def test_persistence_is_the_label_rate_given_the_last_label_on_the_training_rows():
    last_train = np.array([0, 0, 0, 0, 1, 1, 1, np.nan])
    y_train = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p = quality.baseline_probabilities("persistence", y_train, last_train, np.array([0.0, 1.0, np.nan]))
    # Laplace-smoothed: (1 + 1) / (4 + 2) after a 0, (3 + 1) / (3 + 2) after a 1, the base rate when unknown.
    assert p == pytest.approx([2 / 6, 4 / 5, 6 / 10])
    # A last label never seen in training still gets a probability strictly inside (0, 1): finite log loss.
    unseen = quality.baseline_probabilities("persistence", np.zeros(5), np.zeros(5), np.array([1.0]))
    assert 0 < unseen[0] < 1


def test_the_benchmark_baselines_are_the_pipelines_own():
    from driftline.baselines import BaselineModel

    y_train, last_train = np.array([1, 1, 1, 0, 0, 1]), np.array([np.nan, 1, 1, 1, 0, 0])
    last_test = np.array([1.0, 0.0, np.nan, 1.0])
    for name in ("base_rate", "persistence"):
        core = BaselineModel(name).fit(pd.DataFrame(index=range(6)), y_train, last_train)
        expected = core.predict_proba(pd.DataFrame(index=range(4)), last_test)
        np.testing.assert_array_equal(quality.baseline_probabilities(name, y_train, last_train, last_test), expected)
    # A one-class window: the smoothed base rate (0 + 1) / (5 + 2), never 0.
    assert quality.baseline_probabilities("base_rate", np.zeros(5), np.zeros(5), np.zeros(2)) == pytest.approx(
        [1 / 7] * 2
    )


def test_label_lags_stay_within_a_symbol_and_start_at_the_delay():
    table = pd.DataFrame(
        {
            "symbol": ["A", "B"] * 6,
            "timestamp": np.repeat(pd.date_range("2024-01-01", periods=6), 2),
            "y": [1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1],
            "ret_1": np.arange(12, dtype=float),
        }
    )
    lags = quality.lag_columns(table, delay=2, price=True)
    for _, rows in table.groupby("symbol"):
        expected = rows["y"].shift(2)
        assert lags.loc[rows.index, "last_label"].equals(expected)
        assert lags.loc[rows.index, "ret_1_lag_1"].equals(rows["ret_1"].shift(1))
    assert lags["last_label"].iloc[:4].isna().all()  # two rows per symbol before any label is known
    assert "label_lag_3" in lags and "label_lag_7" in lags


def _markov_labels(n: int, stay: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.empty(n)
    y[0] = 1
    for t in range(1, n):
        y[t] = y[t - 1] if rng.random() < stay else 1 - y[t - 1]
    return y, y + rng.normal(0, 2.0, n)  # a weak, noisy signal of the current state


def test_a_dataset_row_is_complete_and_persistence_wins_on_a_persistent_label(tmp_path):
    def write(folder, quick):
        labels, signal = _markov_labels(1500, stay=0.95, seed=3)
        frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=1500, freq="5min"), "signal": signal})
        frame["label_next"] = np.roll(labels, -1)  # the next row's state: known one row later
        path = folder / "series.csv"
        frame.iloc[:-1].to_csv(path, index=False)
        return path

    dataset = quality.Dataset(
        name="markov",
        description="synthetic",
        write=write,
        # calibration.require_edge on (off by default), so that the row reports the edge
        overrides={"target.kind": "label", "data.target_col": "label_next", "calibration.require_edge": 0.95},
        cadence="5min",
        label_delay=1,
        persistent=True,
    )
    row = quality.evaluate_dataset(dataset, families=("logreg", "lightgbm"))
    assert "error" not in row
    assert set(row["models"]) == {"challenger", "base_rate", "persistence", "reference"}
    for model in row["models"].values():
        assert set(model["walk_forward"]) == {"accuracy", "auc", "log_loss", "ece", "worst_fold_ece", "rows"}
        assert set(model["holdout"]) == {"accuracy", "auc", "log_loss", "ece", "rows"}
        # Every model is scored on the same walk-forward test rows and the same hold-out rows.
        assert model["walk_forward"]["rows"] == row["walk_forward_test_rows"]
        assert model["holdout"]["rows"] == row["holdout_rows"]
        assert all(math.isfinite(model[w]["log_loss"]) for w in ("walk_forward", "holdout"))
    assert set(row["families"]) == {"logreg", "lightgbm"} and row["selected_family"] in row["families"]
    persistence = row["models"]["persistence"]["walk_forward"]
    assert persistence["accuracy"] > 0.9 > row["models"]["base_rate"]["walk_forward"]["accuracy"]
    assert row["goals"]["best_baseline"] == "persistence"
    # The hold-out is judged against that baseline, and against the one best on the hold-out itself beside it.
    holdout = {name: row["models"][name]["holdout"]["log_loss"] for name in ("challenger", *quality.BASELINES)}
    assert row["goals"]["holdout_logloss_excess"] == holdout["challenger"] - holdout["persistence"]
    assert row["goals"]["holdout_logloss_excess_hindsight"] == holdout["challenger"] - min(
        holdout[name] for name in quality.BASELINES
    )
    # A persistent label: the selected family beat the base rate by far more than chance.
    assert row["edge"]["family"] == row["selected_family"] and row["edge"]["shown"] and row["edge"]["high"] < 0
    assert row["goals"]["persistent_accuracy_margin"] == pytest.approx(
        row["models"]["challenger"]["walk_forward"]["accuracy"] - persistence["accuracy"]
    )
    summary = quality.summarise({"markov": row})
    assert summary["quality_persistent_logloss_margin"] == row["goals"]["persistent_logloss_margin"]
    assert summary["quality_pipeline_failures"] == 0 and summary["quality_ece_20k"] is None
    assert "markov" in quality.format_side_by_side(summary["quality_datasets"])
    assert row["goals"]["reference_accuracy_margin"] == pytest.approx(
        row["models"]["reference"]["walk_forward"]["accuracy"] - persistence["accuracy"]
    )
    # A label series not marked persistent reports its margins but is not judged on them.
    reported = quality.goals(row, dataclasses.replace(dataset, persistent=False))
    assert reported["persistent_judged"] is False
    assert reported["persistent_accuracy_margin"] == row["goals"]["persistent_accuracy_margin"]
    unjudged = quality.summarise({"markov": {**row, "goals": reported}})
    assert unjudged["quality_persistent_accuracy_margin"] is None
    assert unjudged["quality_persistent_logloss_margin"] is None
