"""Figures and the importance behind one of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline import plots
from driftline.config import MetricsConfig, ModelsConfig
from driftline.metrics import strategy_book, strategy_metrics
from driftline.models import make_estimator, native_importance
from driftline.synthetic import make_labelled_series


@pytest.fixture(scope="module")
def labelled():
    frame = make_labelled_series(n_rows=800, seed=5)
    return frame[[c for c in frame.columns if c.startswith("x")]], frame["y"].to_numpy()


@pytest.mark.parametrize("family", ["logreg", "random_forest", "lightgbm", "xgboost"])
def test_native_importance_finds_the_two_informative_columns(family, labelled):
    X, y = labelled
    params = {"lightgbm": {"n_estimators": 60, "n_jobs": 1}, "xgboost": {"n_estimators": 60, "n_jobs": 1}}
    estimator = make_estimator(family, ModelsConfig(params={k: v for k, v in params.items() if k == family})).fit(X, y)
    importance, what = native_importance(estimator, list(X.columns))
    assert importance.sum() == pytest.approx(1.0) and what
    assert set(importance.sort_values(ascending=False).index[:2]) == {"x0", "x1"}, importance


def test_ensemble_importance_is_the_mean_of_its_members_normalised_importances(labelled):
    """What the training run logs for an ensemble challenger: the calibrated model's soft vote."""
    from driftline.calibration import CalibratedModel

    X, y = labelled
    models = ModelsConfig(
        families=("logreg", "lightgbm"), ensemble=True, params={"lightgbm": {"n_estimators": 60, "n_jobs": 1}}
    )
    model = CalibratedModel(make_estimator("ensemble", models), method="sigmoid").fit(X, y)
    importance, what = native_importance(model.base_estimator_, list(X.columns))
    assert what == "mean over the ensemble's members"
    members = [native_importance(member, list(X.columns))[0] for member in model.base_estimator_.estimators_]
    assert len(members) == 2 and not members[0].equals(members[1])
    pd.testing.assert_series_equal(importance, (members[0] + members[1]) / 2)
    assert importance.sum() == pytest.approx(1.0)
    assert set(importance.sort_values(ascending=False).index[:2]) == {"x0", "x1"}, importance


def test_strategy_book_is_the_book_behind_the_metrics():
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=200, freq="D")
    meta = pd.DataFrame(
        {"symbol": np.repeat(["A", "B"], 200), "timestamp": np.tile(times, 2), "next_return": rng.normal(0, 0.01, 400)}
    )
    p = rng.uniform(size=400)
    config = MetricsConfig()
    book = strategy_book(p, meta, config)
    summary = strategy_metrics(p, meta, config)
    assert len(book) == 200 and book["pnl"].sum() == pytest.approx(summary["total_log_return"])
    assert book["market"].to_numpy() == pytest.approx(meta.groupby("timestamp")["next_return"].mean().to_numpy())


def test_every_figure_renders_to_png(tmp_path, labelled):
    X, y = labelled
    p = np.clip(0.5 + 0.3 * np.tanh(X["x0"].to_numpy()), 0.01, 0.99)
    folds = pd.DataFrame(
        {
            "family": ["a", "a", "b", "b"],
            "test_end": ["2024-01-01", "2024-02-01"] * 2,
            "auc": [0.6, 0.62, 0.55, 0.57],
            "brier": [0.2, 0.21, 0.24, 0.23],
            "ece": [0.02, 0.03, 0.05, 0.04],
        }
    )
    book = pd.DataFrame(
        {"pnl": [0.01, -0.02, 0.03], "market": [0.0, 0.01, 0.02]}, index=pd.date_range("2024-01-01", periods=3)
    )
    figures = {
        "pr": plots.pr_figure(y, p),
        "importance": plots.importance_figure(pd.Series({"x0": 0.7, "x1": 0.3}), "tree importance"),
        "folds": plots.fold_metrics_figure(folds),
        "equity": plots.equity_figure(book),
    }
    for name, figure in figures.items():
        path = tmp_path / f"{name}.png"
        figure.savefig(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
