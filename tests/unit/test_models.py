"""Model families: build, fit, predict; seeded; config params win; bad params fail; the soft-vote ensemble."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import VotingClassifier
from sklearn.metrics import roc_auc_score

from driftline.config import ModelsConfig
from driftline.models import (
    DEFAULT_PARAMS,
    LINEAR_BASE_PARAMS,
    LinearBaseClassifier,
    family_names,
    make_estimator,
    model_params,
    native_importance,
)

FAMILIES = ("logreg", "random_forest", "xgboost", "lightgbm")
# Small and single-threaded, so the suite stays fast on two cores.
FAST = {
    "random_forest": {"n_estimators": 15, "min_samples_leaf": 10, "n_jobs": 1},
    "xgboost": {"n_estimators": 15, "min_child_weight": 2, "n_jobs": 1},
    "lightgbm": {"n_estimators": 15, "min_child_samples": 10, "n_jobs": 1},
}


def _models(seed: int = 42, **kwargs) -> ModelsConfig:
    return ModelsConfig(families=FAMILIES, seed=seed, params=kwargs.pop("params", FAST), **kwargs)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.standard_normal((300, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] - 0.5 * X["b"] + 0.5 * rng.standard_normal(300) > 0).astype(int).to_numpy()
    return X, y


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_fits_and_predicts_probabilities(data, family):
    X, y = data
    model = make_estimator(family, _models()).fit(X.iloc[:200], y[:200])
    proba = model.predict_proba(X.iloc[200:])
    assert proba.shape == (100, 2)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert roc_auc_score(y[200:], proba[:, 1]) > 0.75  # it learnt the signal


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_probabilities(data, family):
    X, y = data
    first = make_estimator(family, _models(seed=7)).fit(X, y).predict_proba(X)
    second = make_estimator(family, _models(seed=7)).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("family", ["random_forest", "xgboost", "lightgbm"])
def test_the_seed_reaches_randomised_families(data, family):
    X, y = data
    first = make_estimator(family, _models(seed=1)).fit(X, y).predict_proba(X)
    second = make_estimator(family, _models(seed=2)).fit(X, y).predict_proba(X)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize(
    ("family", "name", "value", "read"),
    [
        ("logreg", "C", 3.5, lambda m: m.get_params()["logisticregression__C"]),
        ("random_forest", "max_depth", 2, lambda m: m.get_params()["max_depth"]),
        ("xgboost", "learning_rate", 0.2, lambda m: m.get_params()["learning_rate"]),
        # On its linear base (models.linear_base, the default) the booster is a parameter of the pair.
        ("lightgbm", "num_leaves", 5, lambda m: m.get_params()["booster__num_leaves"]),
    ],
)
def test_config_params_override_defaults(family, name, value, read):
    models = ModelsConfig(families=(family,), params={family: {name: value}})
    params = model_params(family, models)
    assert params[name] == value
    defaults = model_params(family, ModelsConfig(families=(family,)))
    untouched = set(DEFAULT_PARAMS[family]) - {name}
    assert all(params[k] == defaults[k] for k in untouched)
    assert read(make_estimator(family, models)) == value
    assert DEFAULT_PARAMS[family].get(name) != value  # the defaults themselves are not mutated


def test_without_params_the_defaults_apply():
    model = make_estimator("lightgbm", ModelsConfig(linear_base=()))
    assert model.get_params()["n_estimators"] == DEFAULT_PARAMS["lightgbm"]["n_estimators"]
    assert model.get_params()["learning_rate"] == DEFAULT_PARAMS["lightgbm"]["learning_rate"]
    assert model.get_params()["random_state"] == 42
    on_base = make_estimator("lightgbm", ModelsConfig())  # models.linear_base's default: [lightgbm]
    assert isinstance(on_base, LinearBaseClassifier)
    assert on_base.booster.get_params()["learning_rate"] == LINEAR_BASE_PARAMS["lightgbm"]["learning_rate"]
    assert on_base.linear.get_params()["logisticregression__C"] == DEFAULT_PARAMS["logreg"]["C"]
    # The user's value wins over the linear base's default too.
    mine = make_estimator("lightgbm", ModelsConfig(params={"lightgbm": {"learning_rate": 0.1}}))
    assert mine.booster.get_params()["learning_rate"] == 0.1


def test_trees_on_a_linear_base_start_from_its_log_odds_and_explain_exactly(data):
    """The booster's trees fit what the logistic regression misses: the margin is the linear model's plus the
    trees' raw score; SHAP (exact linear + TreeSHAP) adds up to it row by row; importance, pickling and early
    stopping on a validation slice (driftline.tuning) work on the pair."""
    import pickle

    import lightgbm

    from driftline.explain import base_margin, explain_estimator

    X, y = data
    pair = make_estimator("lightgbm", _models()).fit(X.iloc[:200], y[:200])
    linear = make_estimator("lightgbm", _models(linear_base=())).fit(X.iloc[:200], y[:200])
    rows = X.iloc[200:]
    expected = pair.linear_.decision_function(rows) + pair.booster_.predict(rows, raw_score=True)
    np.testing.assert_allclose(pair.decision_function(rows), expected)
    np.testing.assert_allclose(pair.predict_proba(rows)[:, 1], 1 / (1 + np.exp(-expected)))
    # The trees start from the linear margin: not the plain booster's fit, and no more than a correction of it.
    assert not np.allclose(pair.predict_proba(rows), linear.predict_proba(rows))
    assert np.corrcoef(pair.decision_function(rows), pair.linear_.decision_function(rows))[0, 1] > 0.9
    explained = explain_estimator(pair, rows)
    margin, space = base_margin(pair, rows)
    assert space == "log-odds" and "exact linear SHAP" in explained.method and "TreeSHAP" in explained.method
    np.testing.assert_allclose(explained.margin, margin, atol=1e-9)
    importance, what = native_importance(pair, list(X.columns))
    assert importance.sum() == pytest.approx(1.0) and importance.idxmax() == "a" and "SHAP" in what
    again = pickle.loads(pickle.dumps(pair))
    np.testing.assert_array_equal(again.predict_proba(rows), pair.predict_proba(rows))
    stopped = make_estimator("lightgbm", _models(params={"lightgbm": {"n_estimators": 500, "n_jobs": 1}}))
    stopped.fit(
        X.iloc[:150],
        y[:150],
        eval_X=X.iloc[150:200],
        eval_y=y[150:200],
        callbacks=[lightgbm.early_stopping(10, verbose=False)],
    )
    assert 1 <= stopped.best_iteration_ < 500


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_hyperparameter_is_a_value_error_naming_the_config_key(family):
    models = ModelsConfig(families=(family,), params={family: {"n_estimatorz": 10}})
    with pytest.raises(ValueError, match=rf"models\.params\.{family}"):
        make_estimator(family, models)


def test_unknown_family():
    with pytest.raises(ValueError, match="unknown model family 'catboost'"):
        make_estimator("catboost", ModelsConfig())


def test_family_names_add_the_ensemble_only_when_enabled_with_several_families():
    assert family_names(ModelsConfig(families=("logreg", "lightgbm"))) == ["logreg", "lightgbm"]
    assert family_names(ModelsConfig(families=("logreg", "lightgbm"), ensemble=True)) == [
        "logreg",
        "lightgbm",
        "ensemble",
    ]
    assert family_names(ModelsConfig(families=("logreg",), ensemble=True)) == ["logreg"]


def test_ensemble_is_a_soft_vote_of_the_families(data):
    X, y = data
    models = ModelsConfig(families=("logreg", "lightgbm"), ensemble=True, params={"lightgbm": FAST["lightgbm"]})
    ensemble = make_estimator("ensemble", models)
    assert isinstance(ensemble, VotingClassifier)
    assert ensemble.voting == "soft"
    assert [name for name, _ in ensemble.estimators] == ["logreg", "lightgbm"]
    ensemble.fit(X, y)
    members = np.mean([member.predict_proba(X) for member in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(X), members)


def test_a_thread_budget_replaces_every_spelling_of_n_jobs():
    models = ModelsConfig(
        families=FAMILIES,
        ensemble=True,
        params={"lightgbm": {"num_threads": 4}, "xgboost": {"nthread": 4}, "random_forest": {"n_jobs": 3}},
    )

    def learner(model):  # a booster on its linear base carries the threads (logistic regression has none)
        return model.booster if isinstance(model, LinearBaseClassifier) else model

    for family in ("random_forest", "xgboost", "lightgbm"):
        params = learner(make_estimator(family, models, threads=1)).get_params()
        assert params["n_jobs"] == 1, family
        assert not {"num_threads", "nthread"} & {k for k, v in params.items() if v is not None}, family
    ensemble = make_estimator("ensemble", models, threads=1)
    assert all(learner(m).get_params()["n_jobs"] == 1 for name, m in ensemble.estimators if name != "logreg")
    # Without a budget the configured value (or the default, all cores) stays.
    assert make_estimator("random_forest", models).get_params()["n_jobs"] == 3
    assert learner(make_estimator("lightgbm", ModelsConfig())).get_params()["n_jobs"] == -1
    assert "n_jobs" not in model_params("logreg", models, threads=1)  # nothing to set on a family without threads


def test_an_xgboost_leaf_holds_the_same_rows_worth_of_hessian_at_any_share_of_positives():
    """A fixed min_child_weight of 20 is 80 rows at a 50% share but thousands at 1%: on a rare event the booster
    grew no tree and predicted one constant (the first fold of sea-temperature spikes, AUC 0.5)."""
    from driftline.models import XGB_LEAF_ROWS, leaf_weight, with_label_defaults

    assert leaf_weight(0.5) == pytest.approx(XGB_LEAF_ROWS / 4) == DEFAULT_PARAMS["xgboost"].get("min_child_weight", 20)
    assert leaf_weight(0.01) == pytest.approx(XGB_LEAF_ROWS * 0.01 * 0.99)

    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.standard_normal((3000, 3)), columns=["a", "b", "c"])
    y = ((X["a"] > 2.2) & (rng.random(3000) < 0.8)).astype(int).to_numpy()  # ~1% positives, all at high a
    assert 10 < y.sum() < 60
    models = ModelsConfig(families=("xgboost",), params={"xgboost": {"n_jobs": 1}})
    fixed = make_estimator("xgboost", models).set_params(min_child_weight=20).fit(X, y)
    assert np.ptp(fixed.predict_proba(X)[:, 1]) < 1e-6  # one constant: no split was allowed

    scaled = with_label_defaults(make_estimator("xgboost", models), y).fit(X, y)
    assert scaled.get_params()["min_child_weight"] == pytest.approx(leaf_weight(y.mean()))
    assert roc_auc_score(y, scaled.predict_proba(X)[:, 1]) > 0.9

    # A value the user set in models.params is kept, also inside the soft-vote ensemble.
    own = ModelsConfig(families=("logreg", "xgboost"), params={"xgboost": {"min_child_weight": 7, "n_jobs": 1}})
    assert with_label_defaults(make_estimator("xgboost", own), y).get_params()["min_child_weight"] == 7
    vote = with_label_defaults(
        make_estimator("ensemble", models.model_copy(update={"families": ("logreg", "xgboost")})), y
    )
    assert dict(vote.estimators)["xgboost"].get_params()["min_child_weight"] == pytest.approx(leaf_weight(y.mean()))


def test_a_forest_tree_learns_from_at_most_forest_tree_rows_on_long_series(monkeypatch):
    """scikit-learn's exact splitter made the forest most of a long run (260k minute bars: 97 s a fit, the
    other families 0.5-2.3 s): past FOREST_TREE_ROWS each tree draws that many rows, a shorter window all."""
    from driftline import models as models_module
    from driftline.models import with_label_defaults

    monkeypatch.setattr(models_module, "FOREST_TREE_ROWS", 200)
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.standard_normal((600, 3)), columns=["a", "b", "c"])
    y = (X["a"] + rng.standard_normal(600) > 0).astype(int).to_numpy()
    forest = ModelsConfig(families=("random_forest",), params={"random_forest": {"n_estimators": 5, "n_jobs": 1}})

    def rows_per_tree(estimator: Any, rows: int) -> set[float]:
        fitted = with_label_defaults(estimator, y[:rows]).fit(X.iloc[:rows], y[:rows])
        return {tree.tree_.weighted_n_node_samples[0] for tree in fitted.estimators_}

    assert rows_per_tree(make_estimator("random_forest", forest), 600) == {200.0}
    assert rows_per_tree(make_estimator("random_forest", forest), 200) == {200.0}
    assert rows_per_tree(make_estimator("random_forest", forest), 150) == {150.0}  # a short window: its own size
    # A value the user set is kept, and a forest without bootstrap samples has no sample size to set.
    own = forest.model_copy(update={"params": {"random_forest": {"n_estimators": 5, "n_jobs": 1, "max_samples": 300}}})
    assert rows_per_tree(make_estimator("random_forest", own), 600) == {300.0}
    whole = forest.model_copy(
        update={"params": {"random_forest": {"n_estimators": 5, "n_jobs": 1, "bootstrap": False}}}
    )
    assert rows_per_tree(make_estimator("random_forest", whole), 600) == {600.0}
    vote = with_label_defaults(
        make_estimator("ensemble", forest.model_copy(update={"families": ("logreg", "random_forest")})), y
    )
    assert dict(vote.estimators)["random_forest"].get_params()["max_samples"] == 200


def test_the_parameters_a_fit_used_are_its_own_with_the_ones_the_labels_set():
    """What the training run logs as ``challenger.*`` params: no config key holds XGBoost's leaf weight."""
    from driftline.models import BoosterClassifier, effective_params, leaf_weight, with_label_defaults

    y = np.array([0] * 98 + [1] * 2)
    booster = with_label_defaults(make_estimator("xgboost", ModelsConfig(families=("xgboost",))), y)
    used = effective_params(booster)
    assert used["min_child_weight"] == pytest.approx(leaf_weight(0.02)) and used["max_depth"] == 3
    assert all(isinstance(v, bool | int | float | str) for v in used.values())
    logreg = effective_params(make_estimator("logreg", ModelsConfig(families=("logreg",))))
    assert logreg["logisticregression__C"] == 0.1 and "logisticregression__solver" in logreg
    assert effective_params(object.__new__(BoosterClassifier)) == {}  # the streamed path: a raw booster
