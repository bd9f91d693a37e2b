"""Naive baselines: their predictions, their place in the walk-forward, and the first model's promotion
against the best of them. The evidence case is a persistent 0/1 label (a two-state Markov chain)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.baselines import BaselineModel, baseline_names, fit_baseline
from driftline.config import load_config
from driftline.evaluation import evaluate_challenger, holdout_split
from driftline.features import build_features
from driftline.training import baseline_fold_table, fit_best_baseline, run_walk_forward

STAY = 0.9


def markov_label_frame(n: int, stay: float = STAY, signal: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """A 0/1 label that keeps its state with probability ``stay`` and a weak feature ``x`` = signal*y + noise."""
    rng = np.random.default_rng(seed)
    y = np.empty(n, dtype=int)
    y[0] = 1
    flips = rng.uniform(size=n) > stay
    for t in range(1, n):
        y[t] = 1 - y[t - 1] if flips[t] else y[t - 1]
    return pd.DataFrame(
        {
            "symbol": "s",
            "timestamp": pd.date_range("2021-01-01", periods=n, freq="h"),
            "x": signal * y + rng.standard_normal(n),
            "target": y.astype(float),
        }
    )


def _markov_run(frame: pd.DataFrame, **overrides):
    # Default settings for a label target, as `driftline train --target label` resolves them; logistic
    # regression only (the trees cost more than a unit test may, and need tuning: item 3 of issue 15).
    config = load_config(
        None, {"target.kind": "label", "data.target_col": "target", "models.families": ["logreg"], **overrides}
    )
    features = build_features(frame, config.features, config.target)
    development, holdout = holdout_split(features, config.evaluation.window, config.gap)
    assert not config.fit_spec.is_direction
    result = run_walk_forward(development, config.fit_spec)
    return config, development, holdout, result


@pytest.fixture(scope="module")
def markov():
    frame = markov_label_frame(2400)
    config, development, holdout, result = _markov_run(frame)
    return config, frame, development, holdout, result


def _accuracy_gap_and_noise(result, development) -> tuple[float, float]:
    """The challenger's accuracy minus persistence's on the same rows, and two standard errors of that
    paired difference (McNemar: only the rows where they disagree carry it)."""
    predictions = result.selected_predictions().merge(
        development.meta[["timestamp", "known_label"]], on="timestamp", suffixes=("", "_")
    )
    model_right = (predictions["p"] >= 0.5) == (predictions["y"] == 1)
    persistence_right = (predictions["known_label"] == 1) == (predictions["y"] == 1)
    disagree = int((model_right != persistence_right).sum())
    return float(model_right.mean() - persistence_right.mean()), 2 * np.sqrt(max(disagree, 1)) / len(predictions)


def test_default_label_target_lags_from_the_newest_known_label(markov):
    config, frame, development, _, _ = markov
    assert (config.label_delay, config.gap) == (1, 1)  # not the default horizon of 5
    rows = frame.set_index("timestamp").index.get_indexer(development.meta["timestamp"])
    np.testing.assert_array_equal(development.X["target_lag_1"].to_numpy(), frame["target"].to_numpy()[rows - 1])


def test_the_first_fold_trains_on_at_least_as_many_rows_as_it_is_scored_on(markov):
    # A first window of min_train_size (250) scoring a fifth of a long series put the pooled walk-forward
    # of every family below persistence on the glucose series (benchmarks/quality.py).
    _, _, development, _, result = markov
    first = result.selected_folds()[0]
    assert first.n_train >= first.n_test > 250
    assert first.n_train < len(development.y) // 5


def test_persistence_reaches_the_chains_stay_rate_and_the_families_reach_persistence(markov):
    config, frame, development, _, result = markov
    assert set(result.baselines) == {"base_rate", "persistence", "lagged_labels"}
    assert not set(result.baselines) & set(result.pooled) and result.selected in config.models.families
    # Persistence as a probability: its accuracy is exactly "predict the previous label" on the test rows.
    tested = sorted({pd.Timestamp(t) for f in result.folds for t in (f.test_start, f.test_end)})
    series = frame.set_index("timestamp")["target"]
    test_times = development.meta["timestamp"][
        (development.meta["timestamp"] >= tested[0]) & (development.meta["timestamp"] <= tested[-1])
    ]
    position = series.index.get_indexer(test_times)
    same_as_previous = float((series.to_numpy()[position] == series.to_numpy()[position - 1]).mean())
    persistence = result.baselines["persistence"]
    assert persistence["accuracy"] == pytest.approx(same_as_previous)
    assert persistence["accuracy"] == pytest.approx(STAY, abs=0.03)
    assert np.isfinite(persistence["log_loss"])
    assert persistence["accuracy"] > result.baselines["base_rate"]["accuracy"] + 0.3
    # With the newest known label as a feature the challenger reaches persistence's accuracy (up to the
    # noise of the rows where they disagree)...
    gap, noise = _accuracy_gap_and_noise(result, development)
    assert gap == pytest.approx(result.pooled[result.selected]["accuracy"] - persistence["accuracy"])
    assert gap > -noise, (gap, noise)
    # ... and the weak feature makes its probabilities better than persistence's alone.
    assert result.pooled[result.selected]["log_loss"] < persistence["log_loss"]
    assert result.best_baseline in ("persistence", "lagged_labels")


def test_lags_a_whole_horizon_back_fall_clearly_below_persistence(markov):
    # What a label target did before label_delay: lags started at the horizon (5 rows back).
    _, frame, _, _, newest = markov
    config, _, _, late = _markov_run(frame, **{"target.label_delay": 5})
    assert config.gap == 5 and late.baselines["persistence"]["accuracy"] < newest.baselines["persistence"]["accuracy"]
    assert late.pooled[late.selected]["accuracy"] < newest.baselines["persistence"]["accuracy"] - 0.1


def test_baseline_folds_are_the_families_folds(markov):
    _, _, _, _, result = markov
    family_folds = {(f.fold, f.train_end, f.test_start, f.test_end, f.n_test) for f in result.folds}
    for row in baseline_fold_table(result):
        assert (row["fold"], row["train_end"], row["test_start"], row["test_end"], row["n_test"]) in family_folds


def test_first_model_is_judged_against_the_best_baseline_on_the_holdout(markov):
    config, _, development, holdout, result = markov
    baseline = fit_best_baseline(development, result, config.models)
    assert baseline is not None and baseline.name == result.best_baseline

    def judged(predict):
        return evaluate_challenger(
            holdout,
            predict,
            None,
            float(development.y.mean()),
            config.decision_spec,
            baseline=baseline,
        )

    # A model that knows only the weak feature beats the base rate but not persistence: rejected now.
    from sklearn.linear_model import LogisticRegression

    weak = LogisticRegression().fit(development.X[["x"]], development.y)

    def feature_only(X):
        p = weak.predict_proba(X[["x"]])[:, 1]
        return pd.DataFrame({"probability": p, "prediction": (p >= 0.5).astype(int)})

    decision = judged(feature_only)
    assert decision.comparison["baseline"] == f"best baseline {baseline.name}"
    assert decision.action == "reject"
    assert any(r.check == "log_loss-better" and not r.passed and baseline.name in r.detail for r in decision.reasons)
    against_base_rate = evaluate_challenger(
        holdout,
        feature_only,
        None,
        float(development.y.mean()),
        config.decision_spec,
    )
    assert against_base_rate.comparison["baseline"].startswith("base rate")
    assert against_base_rate.comparison["diff"] < 0 < decision.comparison["diff"]


def test_persistence_is_a_laplace_smoothed_table_of_the_known_label():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    known = np.array([np.nan, 1, 1, 1, 0, 0, 0, 0])
    model = BaselineModel("persistence").fit(pd.DataFrame(index=range(8)), y, known)
    # After a 1: two 1s and one 0 -> (2+1)/(3+2); after a 0: one 1 of four -> (1+1)/(4+2).
    p = model.predict_proba(pd.DataFrame(index=range(3)), np.array([1.0, 0.0, np.nan]))
    np.testing.assert_allclose(p, [3 / 5, 2 / 6, (y.sum() + 1) / (len(y) + 2)])  # unknown: the smoothed base rate


@pytest.mark.parametrize("label", [0, 1])
def test_base_rate_on_a_one_class_window_keeps_a_finite_log_loss(label):
    from sklearn.metrics import log_loss

    X = pd.DataFrame(index=range(20))
    model = BaselineModel("base_rate").fit(X, np.full(20, label), None)
    p = model.predict_proba(X.head(4), None)
    # Laplace-smoothed: (0 + 1) / (20 + 2) or (20 + 1) / (20 + 2), never exactly 0 or 1.
    np.testing.assert_allclose(p, 1 / 22 if label == 0 else 21 / 22)
    assert np.isfinite(log_loss([1 - label, label, label, label], p, labels=[0, 1]))


def test_base_rate_and_lagged_labels_use_only_what_they_claim():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.standard_normal(400), "target_lag_1": rng.integers(0, 2, 400).astype(float)})
    y = X["target_lag_1"].to_numpy().astype(int)
    np.testing.assert_allclose(
        BaselineModel("base_rate").fit(X, y, None).predict_proba(X.head(3), None), (y.sum() + 1) / (len(y) + 2)
    )
    lagged = BaselineModel("lagged_labels").fit(X, y, None)
    shuffled = X.assign(x=rng.standard_normal(400))  # other features do not move it
    np.testing.assert_array_equal(lagged.predict_proba(X, None), lagged.predict_proba(shuffled, None))
    assert ((lagged.predict_proba(X, None) >= 0.5) == y.astype(bool)).all()
    with pytest.raises(ValueError, match="unknown baseline"):
        BaselineModel("coin_flip")


def test_price_targets_lag_the_labels_their_prices_gave(walk_forward_run):
    features = walk_forward_run.features  # a volatility target
    assert baseline_names(features) == ["base_rate", "persistence", "lagged_labels"]
    assert set(walk_forward_run.result.baselines) == {"base_rate", "persistence", "lagged_labels"}
    # Lag 1 is the known label (horizon rows back); lag k the one k-1 rows before it, within a symbol.
    np.testing.assert_array_equal(features.X["target_lag_1"].to_numpy(), features.meta["known_label"].to_numpy())
    by_symbol = features.meta.assign(lag5=features.X["target_lag_5"].to_numpy()).groupby("symbol", sort=False)
    for _, rows in by_symbol:
        np.testing.assert_array_equal(rows["lag5"].to_numpy()[4:], rows["known_label"].to_numpy()[:-4])
    fitted = fit_baseline("persistence", walk_forward_run.features)
    assert set(fitted.table_) == {0.0, 1.0}
