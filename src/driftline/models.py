"""Model families: scikit-learn baselines, XGBoost and LightGBM, all seeded and scikit-learn compatible."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin

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
        "min_child_weight": 20,
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


ENSEMBLE = "ensemble"  # the soft vote of every configured family

# Every spelling of "how many threads" the libraries accept; a thread budget replaces all of them.
THREAD_PARAMS = ("n_jobs", "num_threads", "num_thread", "nthread", "nthreads")


def model_params(family: str, models: ModelsConfig, threads: int | None = None) -> dict[str, Any]:
    """Defaults for ``family`` overlaid with the config's ``models.params[family]``.

    ``threads`` (when given) replaces the thread count of the families that have one.
    """
    params = {**DEFAULT_PARAMS[family], **models.params_for(family)}
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

            return LGBMClassifier(random_state=seed, **_checked(family, LGBMClassifier, params))
    except TypeError as exc:
        raise ValueError(f"models.params.{family}: {exc}") from None
    raise ValueError(f"unknown model family {family!r}")


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
