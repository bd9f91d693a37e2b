"""Model families: scikit-learn baselines, XGBoost and LightGBM, all seeded and scikit-learn compatible."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from driftline.config import ModelsConfig

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logreg": {"C": 0.1, "max_iter": 2000},
    "random_forest": {"n_estimators": 300, "max_depth": 6, "min_samples_leaf": 50, "max_features": 0.5, "n_jobs": -1},
    "xgboost": {
        "n_estimators": 300,
        "max_depth": 3,
        "learning_rate": 0.03,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        # min_child_weight: left to with_label_defaults (80 rows' worth of hessian at the window's share).
        "tree_method": "hist",
        "n_jobs": -1,
    },
    # Small trees: on the quality datasets (benchmarks/quality.py, full size, 2026-12-03) 4 leaves against
    # 15 raised LightGBM's pooled walk-forward AUC on the equity panel 0.620 -> 0.648 (log loss 0.674 ->
    # 0.653), on the sea temperature 0.607 -> 0.618, on the glucose series 0.960 -> 0.960. 100 rows per
    # leaf did better still on log loss but starved the first, 250-row window (glucose accuracy 0.93 ->
    # 0.87); linear_tree reached 0.655 on the panel but LightGBM has no SHAP values for linear trees.
    "lightgbm": {
        "n_estimators": 300,
        "num_leaves": 4,
        "learning_rate": 0.03,
        "min_child_samples": 50,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "n_jobs": -1,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    },
}


# A boosted family in ``models.linear_base`` learns on top of a logistic regression's log-odds
# (``LinearBaseClassifier``): its trees start from the linear model's margin and correct it at half the plain
# learning rate, so they refine the linear fit instead of overwriting it in short windows. Measured through the
# walk-forward with its calibration (benchmarks/quality.py datasets, full size, 2026-12-04; LightGBM pooled
# AUC / log loss, plain -> on the linear base): equity volatility 0.7104 / 0.6145 -> 0.7268 / 0.6051 (logreg
# 0.7273 / 0.6063), sea temperature 0.6536 / 0.6553 -> 0.6552 / 0.6547, glucose 0.9922 / 0.1052 -> 0.9918 /
# 0.1082, equity direction 0.5173 / 0.6920 -> 0.5074 / 0.6927. At the plain rate (0.03) the volatility panel
# reached 0.7196 / 0.6070.
LINEAR_BASE_PARAMS: dict[str, dict[str, Any]] = {"lightgbm": {"learning_rate": 0.015}}

# XGBoost's smallest leaf is a sum of hessians (``min_child_weight``), p(1 - p) per row under log loss: a fixed
# 20 is 80 rows when half the labels are positive but ~2,800 when 0.7% are, so a booster on a rare event grew no
# tree at all (sea-temperature spikes, 3% of rows: the first fold's ~20 positives left every prediction at one
# constant, AUC 0.5). Unless models.params sets it, the leaf holds XGB_LEAF_ROWS rows' worth at the share of
# positives it learns from (``leaf_weight``): 20 at 50%, unchanged for balanced labels. On the quality datasets
# (benchmarks/quality.py, full size, 2026-12-05; XGBoost pooled walk-forward AUC / log loss, fixed 20 -> scaled):
# sea-temperature spikes 0.750 / 0.1505 -> 0.777 / 0.1478 (first fold 0.500 -> 0.738); the other five series
# move by at most 0.001 AUC and 0.0001 log loss (`python -m benchmarks.run --only demo quality --update`).
XGB_LEAF_ROWS = 80
MIN_LEAF_WEIGHT = 0.1

# A random forest's tree learns from a bootstrap sample of at most FOREST_TREE_ROWS rows (``max_samples``), unless
# models.params sets it; smaller windows keep the usual sample of their own size. scikit-learn's exact splitter
# costs about n log n per node, so on long series the forest was most of a run: 260k one-minute bars, default
# config, took 5:13, 4:49 of it the walk-forward, and one forest on 170k rows 97 s against 0.5-2.3 s for the other
# three families. On that series (a throw-away script: fit on 170k rows, score the next 60k) the forest's log loss
# / AUC with all rows 0.62079 / 0.71119 in 97 s, with 100k 0.62062 / 0.71147 in 68 s, 50k 0.62051 / 0.71156 in
# 38 s, 20k 0.62028 / 0.71197 in 15 s: smaller samples decorrelate the trees and the 50-row leaves stay well fed.
FOREST_TREE_ROWS = 20_000

ENSEMBLE = "ensemble"  # the soft vote of every configured family

# Every spelling of "how many threads" the libraries accept; a thread budget replaces all of them.
THREAD_PARAMS = ("n_jobs", "num_threads", "num_thread", "nthread", "nthreads")


def model_params(
    family: str, models: ModelsConfig, threads: int | None = None, linear_base: bool | None = None
) -> dict[str, Any]:
    """Defaults for ``family`` overlaid with the config's ``models.params[family]``.

    ``threads`` (when given) replaces the thread count of the families that have one. ``linear_base``: the
    booster's defaults on a linear base (``LINEAR_BASE_PARAMS``) under the user's; None: as ``models.linear_base``
    says, False: the plain booster's (the streamed path has no linear base).
    """
    on_linear = family in models.linear_base if linear_base is None else linear_base
    params = {**DEFAULT_PARAMS[family], **(LINEAR_BASE_PARAMS.get(family, {}) if on_linear else {})}
    params.update(models.params_for(family))
    if threads is not None and "n_jobs" in DEFAULT_PARAMS[family]:
        params = {k: v for k, v in params.items() if k not in THREAD_PARAMS} | {"n_jobs": threads}
    return params


def _known_params(family: str, estimator_class: type) -> set[str]:
    known = set(estimator_class().get_params())
    if family == "lightgbm":
        # LightGBM's scikit-learn wrapper forwards any core parameter (and its aliases) to the booster.
        from lightgbm.basic import _ConfigAliases

        for name, aliases in _ConfigAliases._get_all_param_aliases().items():
            known.update([name, *aliases])
    return known


def _checked(family: str, estimator_class: type, params: dict[str, Any]) -> dict[str, Any]:
    """XGBoost and LightGBM accept any keyword and ignore typos; refuse them here instead."""
    unknown = sorted(set(params) - _known_params(family, estimator_class))
    if unknown:
        raise ValueError(f"models.params.{family}: unknown hyperparameter(s) {unknown}")
    return params


def make_estimator(family: str, models: ModelsConfig, threads: int | None = None) -> ClassifierMixin:
    """A fresh, unfitted, seeded estimator for ``family`` (or ``ensemble``: a soft vote of all families).

    Args:
        family: a model family or ``ensemble``.
        models: the models section (families, seed, hyperparameters).
        threads: threads each learner may use, overriding ``n_jobs`` and its aliases (e.g. 1 when
            several fits share the cores); None keeps the configured value.

    Raises:
        ValueError: unknown family or a hyperparameter the library rejects.
    """
    seed = models.seed
    if family != "ensemble" and family not in DEFAULT_PARAMS:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(DEFAULT_PARAMS)} and 'ensemble'")
    if family == "ensemble":
        from sklearn.ensemble import VotingClassifier

        members = [(name, make_estimator(name, models, threads)) for name in models.families]
        return VotingClassifier(members, voting="soft")
    params = model_params(family, models, threads)
    try:
        if family == "logreg":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(StandardScaler(), LogisticRegression(random_state=seed, **params))
        if family == "random_forest":
            from sklearn.ensemble import RandomForestClassifier

            return RandomForestClassifier(random_state=seed, **params)
        if family == "xgboost":
            from xgboost import XGBClassifier

            return XGBClassifier(random_state=seed, eval_metric="logloss", **_checked(family, XGBClassifier, params))
        if family == "lightgbm":
            from lightgbm import LGBMClassifier

            booster = LGBMClassifier(random_state=seed, **_checked(family, LGBMClassifier, params))
            if family in models.linear_base:
                return LinearBaseClassifier(make_estimator("logreg", models, threads), booster)
            return booster
    except TypeError as exc:
        raise ValueError(f"models.params.{family}: {exc}") from None
    raise ValueError(f"unknown model family {family!r}")


def leaf_weight(share: float) -> float:
    """XGBoost's ``min_child_weight`` worth ``XGB_LEAF_ROWS`` rows when a share ``share`` of them is positive."""
    return max(XGB_LEAF_ROWS * share * (1.0 - share), MIN_LEAF_WEIGHT)


def with_label_defaults(estimator: Any, y: np.ndarray) -> Any:
    """``estimator`` (unfitted) with the settings the config left to the labels it is about to learn: an
    XGBoost leaf's ``min_child_weight`` from their positive share (``leaf_weight``), a random forest's rows per
    tree from their number (``FOREST_TREE_ROWS``), also inside an ensemble. A value set in ``models.params`` is
    kept. Returns the same object."""
    from sklearn.ensemble import VotingClassifier

    if isinstance(estimator, VotingClassifier):
        for _, member in estimator.estimators:
            with_label_defaults(member, y)
    elif type(estimator).__name__ == "XGBClassifier" and estimator.get_params().get("min_child_weight") is None:
        estimator.set_params(min_child_weight=leaf_weight(float(np.mean(y))))
    elif (
        type(estimator).__name__ == "RandomForestClassifier"
        and estimator.get_params()["bootstrap"]
        and estimator.get_params()["max_samples"] is None
        and len(y) > FOREST_TREE_ROWS
    ):
        estimator.set_params(max_samples=FOREST_TREE_ROWS)
    return estimator


def effective_params(estimator: Any) -> dict[str, bool | int | float | str]:
    """The parameters a fitted (or ready) estimator learns with, as the fit saw them: the config's, the
    library's defaults and those the labels set (``with_label_defaults``: XGBoost's ``min_child_weight``);
    nested ones as scikit-learn names them (``logisticregression__C``). Scalars only: MLflow params. Empty
    for a booster trained outside scikit-learn (``BoosterClassifier``, the streamed path)."""
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return {}
    params: dict[str, Any] = get_params(deep=True)
    return {k: v for k, v in sorted(params.items()) if isinstance(v, bool | int | float | str)}


def family_names(models: ModelsConfig) -> list[str]:
    """Families to evaluate, with the soft-vote ensemble last when enabled."""
    return [*models.families, *(["ensemble"] if models.ensemble and len(models.families) > 1 else [])]


def native_importance(estimator: Any, names: list[str]) -> tuple[pd.Series, str]:
    """The fitted model's own importance per feature, normalised to sum to 1, and what it measures.

    Trees: their ``feature_importances_`` (XGBoost and LightGBM as configured, split gain or count);
    linear models: |coefficient| on standardised inputs; a soft-voting ensemble: the members' mean.
    """
    from sklearn.ensemble import VotingClassifier
    from sklearn.pipeline import Pipeline

    def one(model: Any) -> tuple[np.ndarray, str]:
        if isinstance(model, LinearBaseClassifier):
            return model.feature_importances_, "mean |SHAP| (linear base + trees)"
        if isinstance(model, Pipeline):
            model = model[-1]
        if hasattr(model, "feature_importances_"):
            return np.asarray(model.feature_importances_, dtype=float), "tree importance"
        if hasattr(model, "coef_"):
            return np.abs(np.ravel(model.coef_)).astype(float), "|standardised coefficient|"
        raise TypeError(f"{type(model).__name__} has no native importance")

    if isinstance(estimator, VotingClassifier):
        parts = [one(member) for member in estimator.estimators_]
        values = np.mean([v / v.sum() if v.sum() else v for v, _ in parts], axis=0)
        what = "mean over the ensemble's members"
    else:
        values, what = one(estimator)
    total = values.sum()
    return pd.Series(values / total if total else values, index=names), what


IMPORTANCE_ROWS = 2000


class LinearBaseClassifier(ClassifierMixin, BaseEstimator):
    """Boosted trees that learn on top of a logistic regression: the booster starts every row from the linear
    model's log-odds (LightGBM's ``init_score``) and its trees fit what the linear model misses.

    The margin is ``linear.decision_function(X) + booster raw score``, so SHAP values add up exactly: the
    linear part's exact linear SHAP plus the trees' TreeSHAP (``driftline.explain``). Both parts are fitted
    on the same rows; the booster may early-stop on ``eval_X``/``eval_y`` (``driftline.tuning``), scored
    from the linear model's margin there too.

    Args:
        linear: an unfitted standardise-then-logistic-regression pipeline (``make_estimator("logreg")``).
        booster: an unfitted ``LGBMClassifier``.
    """

    def __init__(self, linear: Any = None, booster: Any = None):
        self.linear = linear
        self.booster = booster

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        eval_X: pd.DataFrame | None = None,
        eval_y: Any = None,
        callbacks: list[Any] | None = None,
    ) -> LinearBaseClassifier:
        from sklearn.base import clone

        linear = clone(self.linear).fit(X, y)
        extra: dict[str, Any] = {"callbacks": callbacks} if callbacks else {}
        if eval_X is not None:
            extra.update(eval_X=eval_X, eval_y=eval_y, eval_init_score=[linear.decision_function(eval_X)])
        booster = clone(self.booster).fit(X, y, init_score=linear.decision_function(X), **extra)
        self.linear_, self.booster_ = linear, booster
        self.classes_ = booster.classes_
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        # Importance on (at most 2,000 of) the rows it learned from, as mean |SHAP| per feature over both parts:
        # the linear base and the trees are then in the same units (log-odds), which |coef| and split gain are not.
        from driftline.explain import explain_estimator, summary_rows

        rows = summary_rows(X, IMPORTANCE_ROWS)
        self.feature_importances_ = np.abs(explain_estimator(self, rows).values).mean(axis=0)
        return self

    @property
    def best_iteration_(self) -> int | None:
        """The booster's early-stopped tree count (None without early stopping)."""
        best = self.booster_.best_iteration_
        return int(best) if best else None

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The log-odds: the linear model's plus the trees' correction."""
        linear = np.asarray(self.linear_.decision_function(X), dtype=float)
        margin: np.ndarray = linear + np.asarray(self.booster_.predict(X, raw_score=True), dtype=float)
        return margin

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        positive = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        decisions: np.ndarray = self.classes_[(self.decision_function(X) >= 0).astype(int)]
        return decisions


class BoosterClassifier:
    """A LightGBM or XGBoost booster trained outside scikit-learn (batch by batch, ``driftline.streaming``),
    as the fitted binary classifier the calibrated model, the registry, importance and SHAP take.

    It predicts on float32 values, the precision of the feature store it learned from. Importance is the
    libraries' scikit-learn default: LightGBM's split counts, XGBoost's total gain.
    """

    def __init__(self, booster: Any, feature_names: list[str] | tuple[str, ...]):
        module = type(booster).__module__
        if not module.startswith(("lightgbm", "xgboost")):
            raise TypeError(f"a BoosterClassifier takes a LightGBM or XGBoost booster, not a {type(booster).__name__}")
        self.booster = booster
        self.library = "lightgbm" if module.startswith("lightgbm") else "xgboost"
        self.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.classes_ = np.array([0, 1])

    def _values(self, X: Any) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            X = X[list(self.feature_names_in_)]
        return np.ascontiguousarray(np.asarray(X, dtype=np.float32))

    def margin(self, X: Any) -> np.ndarray:
        """The booster's raw log-odds."""
        values = self._values(X)
        if self.library == "lightgbm":
            return np.asarray(self.booster.predict(values, raw_score=True), dtype=float)
        return np.asarray(self.booster.inplace_predict(values, predict_type="margin"), dtype=float)

    def contributions(self, X: Any) -> np.ndarray:
        """TreeSHAP values per feature and, last, the base value (log-odds): the libraries' own."""
        values = self._values(X)
        if self.library == "lightgbm":
            return np.asarray(self.booster.predict(values, pred_contrib=True), dtype=float)
        import xgboost

        matrix = xgboost.DMatrix(values, feature_names=self.booster.feature_names)
        return np.asarray(self.booster.predict(matrix, pred_contribs=True), dtype=float)

    def predict_proba(self, X: Any) -> np.ndarray:
        positive = 1.0 / (1.0 + np.exp(-self.margin(X)))
        return np.column_stack([1.0 - positive, positive])

    @property
    def feature_importances_(self) -> np.ndarray:
        if self.library == "lightgbm":
            return np.asarray(self.booster.feature_importance(importance_type="split"), dtype=float)
        names = self.booster.feature_names or [f"f{i}" for i in range(self.n_features_in_)]
        gain = self.booster.get_score(importance_type="total_gain")
        return np.array([gain.get(name, 0.0) for name in names], dtype=float)
