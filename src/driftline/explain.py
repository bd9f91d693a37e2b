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
* ``random_forest``: SHAP's ``TreeExplainer`` (path-dependent TreeSHAP) on the forest's output, which is
  the mean of the trees' class-1 fractions: a probability.
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


def _forest(estimator: Any, X: pd.DataFrame) -> Explanation:
    import shap  # numba and llvmlite come with it: only on this path

    explainer = shap.TreeExplainer(estimator)
    raw = explainer.shap_values(X)
    column = _positive_column(estimator)
    values = raw[column] if isinstance(raw, list) else np.asarray(raw)[..., column]
    base = float(np.ravel(explainer.expected_value)[column])
    return Explanation(
        np.asarray(values, dtype=float),
        np.full(len(X), base),
        list(X.columns),
        PROBABILITY,
        "SHAP TreeExplainer (path-dependent)",
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
    """SHAP values of a fitted ``CalibratedModel``'s base estimator, on the columns it was trained on."""
    features = list(model.feature_names_in_)
    if X.empty:
        return Explanation(np.empty((0, len(features))), np.empty(0), features, "", "nothing to explain")
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
    "summary_rows",
    "top_contributions",
]
