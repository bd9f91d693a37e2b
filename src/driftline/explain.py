"""Per-row feature contributions (SHAP values) of a fitted model's base estimator.

What is explained is the *base* model's margin, before calibration: the calibrated probability is
``calibrator(base probability)`` (sigmoid, beta or isotonic), its level moved by ``calibration.level``
and pulled toward the base rate by ``calibration.shrink``: a monotone map
(``CalibratedModel.map_probability``), so a contribution's sign says which way the feature pushes the
calibrated probability while its size is in the margin's units.

Per family (every method is exact, and base value + contributions = the margin, row by row):

* ``logreg`` (standardised inputs, then logistic regression): exact linear SHAP on the log-odds,
  ``coef_j * (z_j - mean z_j)``; the scaler centres on the training mean, so the background mean of ``z``
  is 0 and the base value is the intercept.
* ``xgboost`` / ``lightgbm``: the libraries' own TreeSHAP (``pred_contribs`` / ``pred_contrib``) on the
  log-odds (raw score).
* a booster on a linear base (``models.linear_base``, ``driftline.models.LinearBaseClassifier``): the linear
  model's exact SHAP plus the trees' TreeSHAP, feature by feature; the base value is the intercept plus the
  trees' own base (their ``init_score`` is the linear margin, which the linear part already explains).
* ``random_forest``: path-dependent TreeSHAP on the forest's output, the mean of the trees' class-1
  fractions (a probability), by XGBoost's TreeSHAP on the forest's trees copied into an XGBoost booster
  (``forest_as_booster``): the values of SHAP's ``TreeExplainer``, which a test checks, without shipping
  SHAP (and numba, llvmlite: about 210 MB) to every install.
* ``ensemble`` (soft vote): probability space. Each member's explanation is carried onto its probability
  by one factor per row, ``(p - p0) / (margin - base)`` (``p0`` the base value's probability), so it sums
  to ``p - p0``; the ensemble's contributions are the members' (vote-weighted) mean and sum to the
  ensemble's uncalibrated probability minus the mean base probability. Exact in sum; the split between
  features within a member follows that member's log-odds SHAP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftline.errors import ConfigError

LOG_ODDS = "log-odds"
PROBABILITY = "probability"
# Rows behind the SHAP summary plot of a training run: enough for its shape, cheap for a forest's TreeSHAP.
SUMMARY_ROWS = 500


@dataclass(frozen=True)
class Explanation:
    """Contributions per row and feature, and the value they start from (``base``), in ``space`` units."""

    values: np.ndarray  # (rows, features)
    base: np.ndarray  # (rows,)
    features: list[str]
    space: str  # LOG_ODDS or PROBABILITY
    method: str

    @property
    def margin(self) -> np.ndarray:
        """What the contributions add up to: the base model's output in ``space`` units."""
        margin: np.ndarray = self.base + self.values.sum(axis=1)
        return margin

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=self.features)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    probability: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return probability


def _positive_column(estimator: Any) -> int:
    return int(np.flatnonzero(np.asarray(estimator.classes_) == 1)[0]) if 1 in list(estimator.classes_) else 1


def base_margin(estimator: Any, X: pd.DataFrame) -> tuple[np.ndarray, str]:
    """The fitted base estimator's own output that ``explain_estimator`` decomposes, and its units.

    Computed through each library's ordinary prediction path, independently of the contributions, so the
    additivity of an explanation can be checked against it.
    """
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return np.asarray(estimator.decision_function(X), dtype=float), LOG_ODDS
    if isinstance(estimator, (RandomForestClassifier, VotingClassifier)):
        return estimator.predict_proba(X)[:, _positive_column(estimator)].astype(float), PROBABILITY
    name = type(estimator).__name__
    if name == "BoosterClassifier":
        return estimator.margin(X), LOG_ODDS
    if name == "LinearBaseClassifier":
        return estimator.decision_function(X), LOG_ODDS
    if name == "XGBClassifier":
        return np.asarray(estimator.predict(X, output_margin=True), dtype=float), LOG_ODDS
    if name == "LGBMClassifier":
        return np.asarray(estimator.predict(X, raw_score=True), dtype=float), LOG_ODDS
    raise TypeError(f"no explanation for a {name} base model")


def _linear(pipeline: Any, X: pd.DataFrame) -> Explanation:
    from sklearn.preprocessing import StandardScaler

    scalers = pipeline[:-1]
    if not all(isinstance(step, StandardScaler) and step.with_mean for _, step in scalers.steps):
        raise TypeError(
            "exact linear SHAP needs standardised inputs (StandardScaler with_mean) before the linear model"
        )
    linear = pipeline[-1]
    z = np.asarray(scalers.transform(X), dtype=float)
    coef = np.ravel(linear.coef_).astype(float)
    # Training mean of z is 0 (the scaler centred on it): contributions are coef * (z - 0).
    values = z * coef
    base = np.full(len(X), float(np.ravel(linear.intercept_)[0]))
    return Explanation(values, base, list(X.columns), LOG_ODDS, "exact linear SHAP on standardised inputs")


def _xgboost(estimator: Any, X: pd.DataFrame) -> Explanation:
    import xgboost

    booster = estimator.get_booster()
    best = booster.attr("best_iteration")  # set by early stopping; predict() then stops there too
    kwargs = {"iteration_range": (0, int(best) + 1)} if best is not None else {}
    contribs = booster.predict(xgboost.DMatrix(X), pred_contribs=True, **kwargs)
    return Explanation(
        contribs[:, :-1].astype(float),
        contribs[:, -1].astype(float),
        list(X.columns),
        LOG_ODDS,
        "XGBoost TreeSHAP (pred_contribs)",
    )


def _lightgbm(estimator: Any, X: pd.DataFrame) -> Explanation:
    contribs = np.asarray(estimator.predict(X, pred_contrib=True), dtype=float)
    return Explanation(contribs[:, :-1], contribs[:, -1], list(X.columns), LOG_ODDS, "LightGBM TreeSHAP (pred_contrib)")


def _on_linear_base(estimator: Any, X: pd.DataFrame) -> Explanation:
    linear, trees = _linear(estimator.linear_, X), _lightgbm(estimator.booster_, X)
    return Explanation(
        linear.values + trees.values,
        linear.base + trees.base,
        list(X.columns),
        LOG_ODDS,
        "exact linear SHAP + LightGBM TreeSHAP (linear base)",
    )


def _bfs_order(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Node ids of a scikit-learn tree (numbered depth first) in breadth-first order, siblings side by side:
    XGBoost's layout, whose TreeSHAP takes a node's right child to be its left child + 1."""
    order, k = [0], 0
    while k < len(order):
        node = order[k]
        k += 1
        if left[node] != -1:
            order += [int(left[node]), int(right[node])]
    return np.asarray(order, dtype=np.int64)


def _forest_trees(forest: Any, n_features: int) -> list[dict[str, Any]]:
    """The forest's trees in XGBoost's JSON tree schema, regression leaves worth the tree's class-1 fraction /
    the number of trees (so the trees add up to the forest's probability), node covers its weighted samples.

    Thresholds: scikit-learn sends a float32 value ``x <= t`` (t a float64) left, XGBoost ``x < s`` (s a
    float32); ``s``, the smallest float32 above ``t``, sends every float32 value the same way. Missing values
    go where the fitted tree sends them (``missing_go_to_left``).
    """
    column = _positive_column(forest)
    n_trees = len(forest.estimators_)
    trees = []
    for index, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        order = _bfs_order(tree.children_left, tree.children_right)
        new_id = np.empty_like(order)
        new_id[order] = np.arange(len(order))
        left, right = tree.children_left[order], tree.children_right[order]
        leaf = left == -1
        left = np.where(leaf, -1, new_id[np.maximum(left, 0)])
        right = np.where(leaf, -1, new_id[np.maximum(right, 0)])
        parents = np.full(len(order), 2147483647, dtype=np.int64)  # XGBoost's "no parent" for the root
        parents[left[~leaf]] = np.flatnonzero(~leaf)
        parents[right[~leaf]] = np.flatnonzero(~leaf)
        fractions = tree.value[order, 0, :]
        worth = (fractions[:, column] / fractions.sum(axis=1) / n_trees).astype(np.float32)
        threshold = tree.threshold[order]
        split = threshold.astype(np.float32)
        split = np.where(split > threshold, split, np.nextafter(split, np.float32(np.inf)))
        missing_left = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=np.uint8))[order]
        nodes = len(order)
        trees.append(
            {
                "id": index,
                "tree_param": {
                    "num_deleted": "0",
                    "num_feature": str(n_features),
                    "num_nodes": str(nodes),
                    "size_leaf_vector": "1",
                },
                "left_children": left.tolist(),
                "right_children": right.tolist(),
                "parents": parents.tolist(),
                "split_indices": np.where(leaf, 0, tree.feature[order]).tolist(),
                "split_conditions": np.where(leaf, worth, split).astype(float).tolist(),
                "split_type": [0] * nodes,
                "default_left": np.where(leaf, 0, missing_left).astype(int).tolist(),
                "base_weights": worth.astype(float).tolist(),
                "sum_hessian": tree.weighted_n_node_samples[order].astype(float).tolist(),
                "loss_changes": [0.0] * nodes,
                "categories": [],
                "categories_nodes": [],
                "categories_segments": [],
                "categories_sizes": [],
            }
        )
    return trees


def forest_as_booster(forest: Any, n_features: int) -> Any:
    """A scikit-learn random forest as an XGBoost regression booster that predicts its class-1 probability.

    The model is the installed XGBoost's own JSON (a one-split template it writes), with the forest's trees in
    place of the template's: XGBoost's C++ TreeSHAP (``pred_contribs``, path-dependent on the node covers, as
    SHAP's ``TreeExplainer``) then explains the forest, without SHAP and the numba/llvmlite it brings.
    """
    import json

    import xgboost

    blank = np.zeros((2, n_features), dtype=np.float32)
    template = xgboost.XGBRegressor(n_estimators=1, max_depth=1, base_score=0.0, n_jobs=1).fit(blank, [0.0, 0.0])
    model = json.loads(template.get_booster().save_raw("json"))
    trees = _forest_trees(forest, n_features)
    booster_model = model["learner"]["gradient_booster"]["model"]
    booster_model["trees"] = trees
    booster_model["tree_info"] = [0] * len(trees)
    booster_model["iteration_indptr"] = list(range(len(trees) + 1))
    booster_model["gbtree_model_param"]["num_trees"] = str(len(trees))
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    return booster


def _forest(estimator: Any, X: pd.DataFrame) -> Explanation:
    import xgboost

    booster = forest_as_booster(estimator, X.shape[1])
    rows = xgboost.DMatrix(np.asarray(X, dtype=np.float32))
    contribs = np.asarray(booster.predict(rows, pred_contribs=True), dtype=float)
    return Explanation(
        contribs[:, :-1],
        contribs[:, -1],
        list(X.columns),
        PROBABILITY,
        "XGBoost TreeSHAP (path-dependent) on the forest's trees",
    )


def _to_probability(explanation: Explanation) -> Explanation:
    """A log-odds explanation carried onto the probability, one factor per row (see the module docstring)."""
    if explanation.space == PROBABILITY:
        return explanation
    margin, base = explanation.margin, explanation.base
    p, p0 = _sigmoid(margin), _sigmoid(base)
    step = margin - base
    tiny = np.abs(step) < 1e-12
    factor = np.where(tiny, p0 * (1 - p0), (p - p0) / np.where(tiny, 1.0, step))
    return Explanation(explanation.values * factor[:, None], p0, explanation.features, PROBABILITY, explanation.method)


def _ensemble(estimator: Any, X: pd.DataFrame) -> Explanation:
    members = [_to_probability(explain_estimator(member, X)) for member in estimator.estimators_]
    weights = np.ones(len(members)) if estimator.weights is None else np.asarray(estimator.weights, dtype=float)
    weights = weights / weights.sum()
    values = sum(w * m.values for w, m in zip(weights, members, strict=True))
    base = sum(w * m.base for w, m in zip(weights, members, strict=True))
    methods = "; ".join(sorted({m.method for m in members}))
    return Explanation(
        values, base, list(X.columns), PROBABILITY, f"soft-vote mean of members' SHAP on the probability ({methods})"
    )


def explain_estimator(estimator: Any, X: pd.DataFrame) -> Explanation:
    """SHAP values of a fitted base estimator (a driftline model family or the soft-vote ensemble) on ``X``.

    Raises:
        TypeError: a model type without an exact explanation here.
    """
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return _linear(estimator, X)
    if isinstance(estimator, VotingClassifier):
        return _ensemble(estimator, X)
    if isinstance(estimator, RandomForestClassifier):
        return _forest(estimator, X)
    name = type(estimator).__name__
    if name == "LinearBaseClassifier":
        return _on_linear_base(estimator, X)
    if name == "BoosterClassifier":  # a streamed booster (driftline.models.BoosterClassifier)
        contribs = estimator.contributions(X)
        lightgbm = estimator.library == "lightgbm"
        method = "LightGBM TreeSHAP (pred_contrib)" if lightgbm else "XGBoost TreeSHAP (pred_contribs)"
        return Explanation(contribs[:, :-1], contribs[:, -1], list(X.columns), LOG_ODDS, method)
    if name == "XGBClassifier":
        return _xgboost(estimator, X)
    if name == "LGBMClassifier":
        return _lightgbm(estimator, X)
    raise TypeError(f"no explanation for a {name} base model")


def explain_model(model: Any, X: pd.DataFrame) -> Explanation:
    """SHAP values of a fitted ``CalibratedModel``'s base estimator, on the columns it was trained on.

    A model shrunk all the way (weight 0: a challenger without an edge over the base rate, or a shrinkage
    weight of 0) predicts its shrinkage target whatever the features say: every contribution is 0 and each
    row's base, in probability units, is what it is given."""
    features = list(model.feature_names_in_)
    if X.empty:
        return Explanation(np.empty((0, len(features))), np.empty(0), features, "", "nothing to explain")
    if getattr(model, "shrinkage_", 1.0) == 0.0:
        base = np.broadcast_to(np.asarray(model.shrink_targets(X), dtype=float), (len(X),)).copy()
        method = "none: the model predicts its shrinkage target (weight 0), no feature moves it"
        return Explanation(np.zeros((len(X), len(features))), base, features, PROBABILITY, method)
    return explain_estimator(model.base_estimator_, X[features])


def check_top_k(k: int, n_features: int) -> None:
    """``--explain K`` must name between 1 and the model's number of features.

    Raises:
        ConfigError: K out of range.
    """
    if not 1 <= k <= n_features:
        raise ConfigError(f"--explain {k}: K must be between 1 and {n_features} (the model's number of features)")


def top_contributions(explanation: Explanation, k: int) -> pd.DataFrame:
    """Each row's ``k`` largest contributions by absolute value: ``explain_<i>_feature`` and
    ``explain_<i>_value`` for i = 1..k, then ``explain_base`` and ``explain_margin`` (what all of the row's
    contributions, not only the top k, add up to from the base) and ``explain_space``.

    Raises:
        ConfigError: k below 1 or above the number of features.
    """
    values = explanation.values
    check_top_k(k, values.shape[1])
    # Stable sort: equal magnitudes keep the model's feature order, so the output is reproducible.
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    names = np.asarray(explanation.features, dtype=object)
    columns: dict[str, Any] = {}
    for i in range(k):
        columns[f"explain_{i + 1}_feature"] = names[order[:, i]]
        columns[f"explain_{i + 1}_value"] = np.take_along_axis(values, order[:, i : i + 1], axis=1)[:, 0]
    columns["explain_base"] = explanation.base
    columns["explain_margin"] = explanation.margin
    columns["explain_space"] = explanation.space
    return pd.DataFrame(columns)


def summary_rows(X: pd.DataFrame, cap: int, seed: int = 0) -> pd.DataFrame:
    """At most ``cap`` rows of ``X`` (a seeded sample, in their original order) for the summary plot."""
    return X if len(X) <= cap else X.sample(cap, random_state=seed).sort_index()


__all__ = [
    "LOG_ODDS",
    "PROBABILITY",
    "SUMMARY_ROWS",
    "Explanation",
    "base_margin",
    "check_top_k",
    "explain_estimator",
    "explain_model",
    "forest_as_booster",
    "summary_rows",
    "top_contributions",
]
