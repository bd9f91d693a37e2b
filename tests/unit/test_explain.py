"""SHAP explanations: additivity on every family (real AAPL prices), the top-K table, its errors, the plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.calibration import CalibratedModel
from driftline.config import CalibrationConfig, FeatureConfig, ModelsConfig, TargetConfig
from driftline.errors import ConfigError
from driftline.explain import (
    LOG_ODDS,
    PROBABILITY,
    base_margin,
    explain_estimator,
    explain_model,
    summary_rows,
    top_contributions,
)
from driftline.features import build_features, model_inputs
from driftline.models import make_estimator
from driftline.synthetic import make_labelled_series

from .conftest import to_canonical

FAMILIES = ["logreg", "random_forest", "xgboost", "lightgbm", "ensemble"]
# Small enough that five fits on ~1800 daily rows take a few seconds on one thread.
SMALL = ModelsConfig(
    families=("logreg", "random_forest", "xgboost", "lightgbm"),
    params={
        "random_forest": {"n_estimators": 40},
        "xgboost": {"n_estimators": 60},
        "lightgbm": {"n_estimators": 60},
    },
)


@pytest.fixture(scope="module")
def aapl_features():
    """Daily AAPL 2006-2013 (bokeh-sampledata) as the pipeline's features and volatility-regime target."""
    from bokeh_sampledata import stocks

    raw = pd.DataFrame(stocks.AAPL).tail(2000)[["date", "open", "high", "low", "close", "volume"]]
    frame = to_canonical(raw.assign(symbol="AAPL"))
    return build_features(frame, FeatureConfig(), TargetConfig(kind="volatility"))


@pytest.fixture(scope="module")
def fitted(aapl_features):
    """Each family fitted and calibrated (sigmoid) as the pipeline does, on the same rows; the soft vote of
    a log-odds member and a probability member (both ways onto the ensemble's probability)."""
    f = aapl_features
    ensemble = SMALL.model_copy(update={"families": ("logreg", "random_forest")})
    return {
        family: CalibratedModel.from_config(
            make_estimator(family, ensemble if family == "ensemble" else SMALL, threads=1),
            CalibrationConfig(method="sigmoid"),
            gap=5,
        ).fit(f.X, f.y, f.times)
        for family in FAMILIES
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_contributions_plus_base_are_the_base_models_margin(family, fitted, aapl_features):
    model = fitted[family]
    X = aapl_features.X.iloc[-400:]
    inputs = model_inputs(X)  # the base model's: every feature but the series level, which it never learns from
    explanation = explain_model(model, X)
    margin, space = base_margin(model.base_estimator_, inputs)

    assert explanation.values.shape == (400, inputs.shape[1]) and explanation.features == list(inputs.columns)
    assert explanation.space == space == (PROBABILITY if family in ("random_forest", "ensemble") else LOG_ODDS)
    # Additivity, row by row (XGBoost sums in float32).
    np.testing.assert_allclose(explanation.base + explanation.values.sum(axis=1), margin, rtol=0, atol=1e-5)
    # The margin is the base model's probability (through the sigmoid for log-odds) ...
    p_base = 1 / (1 + np.exp(-margin)) if space == LOG_ODDS else margin
    np.testing.assert_allclose(p_base, model.predict_proba_uncalibrated(X)[:, 1], atol=1e-6)
    # ... and the calibrator (then the shrinkage toward each row's level) maps that to the probability a user is given.
    np.testing.assert_allclose(
        model.map_probability(p_base, model.shrink_targets(X)), model.predict_proba(X)[:, 1], atol=1e-9
    )
    # Not a constant: real features move real rows.
    assert np.abs(explanation.values).sum(axis=1).min() > 0
    # Deterministic: a second pass gives the same numbers.
    np.testing.assert_array_equal(explain_model(model, X).values, explanation.values)


def test_linear_shap_is_coefficient_times_standardised_deviation(fitted, aapl_features):
    pipeline = fitted["logreg"].base_estimator_
    X = model_inputs(aapl_features.X.iloc[:50])
    scaler, linear = pipeline[0], pipeline[-1]
    expected = (X.to_numpy() - scaler.mean_) / scaler.scale_ * linear.coef_[0]
    np.testing.assert_allclose(explain_estimator(pipeline, X).values, expected, atol=1e-12)


def test_forest_shap_through_xgboost_is_shaps_tree_explainer(fitted, aapl_features):
    """The forest's trees copied into an XGBoost booster give SHAP's own TreeExplainer values (shap is a dev
    dependency, kept for this check): same path-dependent TreeSHAP, float32 inside XGBoost."""
    import warnings

    with warnings.catch_warnings():  # shap's own import calls matplotlib colormap setters due for deprecation
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap

    forest = fitted["random_forest"].base_estimator_
    X = model_inputs(aapl_features.X.iloc[-300:])
    ours = explain_estimator(forest, X)
    explainer = shap.TreeExplainer(forest)
    raw = np.asarray(explainer.shap_values(X))[..., list(forest.classes_).index(1)]
    np.testing.assert_allclose(ours.values, raw, rtol=0, atol=2e-6)
    np.testing.assert_allclose(ours.base, np.ravel(explainer.expected_value)[1], rtol=0, atol=1e-6)
    assert ours.method == "XGBoost TreeSHAP (path-dependent) on the forest's trees"


def test_forest_shap_follows_missing_values_ties_and_one_leaf_trees():
    """Rows with NaN go where the fitted trees send them; values equal to a threshold go left as in
    scikit-learn; a tree that never split (one leaf) adds nothing but its value."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": np.round(rng.normal(size=600), 1), "b": rng.normal(size=600), "c": rng.normal(size=600)})
    y = (X["a"] + 0.5 * X["b"] > 0).astype(int).to_numpy()
    X.loc[rng.choice(600, 60, replace=False), "b"] = np.nan
    forest = RandomForestClassifier(n_estimators=25, max_depth=4, random_state=0).fit(X, y)
    cuts = np.concatenate([t.tree_.threshold[t.tree_.feature == 0] for t in forest.estimators_])
    ties = pd.DataFrame({"a": cuts, "b": 0.0, "c": 0.0}).astype(np.float32)  # exactly on a threshold
    rows = pd.concat([X.iloc[:200], ties, X.iloc[:50].assign(b=np.nan)])
    explanation = explain_estimator(forest, rows)
    margin, _ = base_margin(forest, rows)
    np.testing.assert_allclose(explanation.margin, margin, rtol=0, atol=1e-5)
    assert np.abs(explanation.values[:, 1][rows["b"].isna().to_numpy()]).max() > 0  # b missing still counts

    stump = RandomForestClassifier(n_estimators=3, min_samples_leaf=400, random_state=0).fit(X.fillna(0), y)
    assert any(tree.tree_.node_count == 1 for tree in stump.estimators_)
    flat = explain_estimator(stump, X.fillna(0).iloc[:100])
    np.testing.assert_allclose(flat.margin, base_margin(stump, X.fillna(0).iloc[:100])[0], rtol=0, atol=1e-6)


def test_the_informative_features_carry_the_explanation():
    frame = make_labelled_series(n_rows=1500, n_features=5, seed=2)
    X, y = frame[[f"x{i}" for i in range(5)]], frame["y"].to_numpy()
    for family in ("logreg", "lightgbm"):
        estimator = make_estimator(family, ModelsConfig(params={"lightgbm": {"n_estimators": 60, "n_jobs": 1}})).fit(
            X, y
        )
        mean_abs = explain_estimator(estimator, X).frame().abs().mean().sort_values(ascending=False)
        assert set(mean_abs.index[:2]) == {"x0", "x1"}, (family, mean_abs)
        # y rises with x0 and falls with x1: so do their contributions.
        values = explain_estimator(estimator, X).frame()
        assert np.corrcoef(X["x0"], values["x0"])[0, 1] > 0.8 and np.corrcoef(X["x1"], values["x1"])[0, 1] < -0.8


def test_top_contributions_are_the_largest_by_magnitude_in_order(fitted, aapl_features):
    X = aapl_features.X.iloc[-100:]
    explanation = explain_model(fitted["lightgbm"], X)
    table = top_contributions(explanation, 3)

    assert list(table.columns) == [
        "explain_1_feature",
        "explain_1_value",
        "explain_2_feature",
        "explain_2_value",
        "explain_3_feature",
        "explain_3_value",
        "explain_base",
        "explain_margin",
        "explain_space",
    ]
    frame = explanation.frame()
    for i, row in table.iterrows():
        magnitudes = frame.loc[i].abs().sort_values(ascending=False, kind="stable")
        assert [row[f"explain_{k}_feature"] for k in (1, 2, 3)] == list(magnitudes.index[:3])
        assert [row[f"explain_{k}_value"] for k in (1, 2, 3)] == [frame.loc[i, f] for f in magnitudes.index[:3]]
    np.testing.assert_allclose(table["explain_margin"], explanation.margin)
    assert (table["explain_space"] == LOG_ODDS).all()
    # K = every feature: the row's values add up to the margin.
    n = len(model_inputs(X).columns)
    full = top_contributions(explanation, n)
    values = full[[f"explain_{k}_value" for k in range(1, n + 1)]].sum(axis=1)
    np.testing.assert_allclose(values + full["explain_base"], full["explain_margin"], atol=1e-9)


@pytest.mark.parametrize("k", [0, -1, 99])
def test_k_out_of_range_is_a_clear_error(k, fitted, aapl_features):
    explanation = explain_model(fitted["logreg"], aapl_features.X.iloc[:5])
    n = len(model_inputs(aapl_features.X).columns)  # the model's inputs: not the series level
    with pytest.raises(
        ConfigError, match=rf"--explain {k}: K must be between 1 and {n} \(the model's number of features\)"
    ):
        top_contributions(explanation, k)


def test_no_rows_give_an_empty_table_with_the_columns(fitted, aapl_features):
    table = top_contributions(explain_model(fitted["random_forest"], aapl_features.X.iloc[0:0]), 2)
    assert table.empty and "explain_2_value" in table.columns


def test_summary_rows_are_a_capped_seeded_sample_in_order(aapl_features):
    X = aapl_features.X
    rows = summary_rows(X, 200)
    assert len(rows) == 200 and rows.index.is_monotonic_increasing and rows.index.equals(summary_rows(X, 200).index)
    assert summary_rows(X.iloc[:50], 200) is not None and len(summary_rows(X.iloc[:50], 200)) == 50


def test_shap_summary_figure_orders_features_by_mean_magnitude(fitted, aapl_features):
    from driftline.plots import shap_summary_figure

    X = aapl_features.X.iloc[-300:]
    explanation = explain_model(fitted["xgboost"], X)
    figure = shap_summary_figure(explanation.frame(), X, explanation.space, explanation.method, top=5)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    expected = explanation.frame().abs().mean().sort_values(ascending=False).index[:5][::-1]
    assert labels == list(expected)
    assert "log-odds" in figure.axes[0].get_title()


@pytest.mark.parametrize("k", ["0", "-2"])
def test_cli_refuses_k_below_one_before_anything_runs(k, tmp_path):
    from typer.testing import CliRunner

    from driftline.app.cli import app

    data = tmp_path / "rows.csv"
    data.write_text("timestamp,close\n2024-01-01,1.0\n")
    result = CliRunner().invoke(app, ["score", "--data", str(data), "--explain", k])
    assert result.exit_code == 2
    assert f"--explain {k}: K must be at least 1" in result.output and "Traceback" not in result.output


def test_explanations_sit_beside_their_predictions_row_for_row(fitted, aapl_features):
    from driftline.scoring import with_explanations

    X = aapl_features.X.iloc[-20:]
    predictions = pd.DataFrame(
        {"symbol": "AAPL", "probability": fitted["xgboost"].predict_proba(X)[:, 1]}, index=range(100, 120)
    )
    table = top_contributions(explain_model(fitted["xgboost"], X), 2)
    joined = with_explanations(predictions, table)
    assert (
        list(joined.index) == list(predictions.index)
        and joined["explain_1_value"].tolist() == table["explain_1_value"].tolist()
    )
    assert with_explanations(predictions, None) is predictions
    with pytest.raises(ValueError, match="19 explanations for 20 predictions"):
        with_explanations(predictions, table.iloc[:19])


def test_a_model_shrunk_all_the_way_is_explained_by_no_feature(fitted, aapl_features):
    """A challenger without an edge over the base rate (calibration.require_edge) predicts one share: its
    explanation must not credit the base model's features with moving it."""
    import copy

    X = aapl_features.X.iloc[-30:]
    flat = copy.deepcopy(fitted["random_forest"]).flatten(0.4)
    explanation = explain_model(flat, X)
    assert explanation.space == "probability" and "no feature moves it" in explanation.method
    np.testing.assert_array_equal(explanation.values, np.zeros((30, len(flat.feature_names_in_))))
    np.testing.assert_allclose(explanation.margin, flat.predict_proba(X)[:, 1])
    np.testing.assert_allclose(explanation.margin, 0.4)
    # The model it was: its features do move it.
    assert np.abs(explain_model(fitted["random_forest"], X).values).max() > 0
