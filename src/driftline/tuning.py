"""Hyperparameter search inside one training window (``models.tuning``).

A walk-forward fold's training window is cut three ways before anything is fitted:

    fitting rows ............................................ | gap | calibration slice | gap | test fold
    inner train ........................ | gap | inner validation |

The calibration cut (``calibration.fraction``, ``driftline.splits.calibration_cut``) comes first, so the
search sees only the rows the base model is fitted on: the calibration slice stays out of sample for the
tuned model, and the test fold is never touched. On those rows the last ``tuning.inner_fraction`` of the
timestamps are the inner validation slice, after a purge of ``gap`` timestamps (a label looks ``gap``
periods ahead). Each trial fits on the inner training part and is scored by log loss on the inner
validation slice; the first trial is the configured parameters, so the search never picks something
worse than them on that slice. XGBoost and LightGBM stop early on the inner validation slice and the best
trial's number of trees is what the refit on all the fitting rows uses.

Optuna is imported here, lazily: ``import driftline`` never pays for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftline.config import CalibrationConfig, ModelsConfig, TuningConfig
from driftline.errors import InsufficientDataError
from driftline.models import DEFAULT_PARAMS, make_estimator, model_params, with_label_defaults
from driftline.splits import calibration_cut, tail_cut

logger = logging.getLogger(__name__)

BOOSTED = ("xgboost", "lightgbm")
# Boosted trees: at most this many trees per trial, stopping after EARLY_STOPPING_ROUNDS without a better
# inner-validation log loss.
MAX_TREES = 1000
EARLY_STOPPING_ROUNDS = 40
# Searched names the configured parameters leave to the library: the library's default, for the first trial.
# LightGBM's L2 default, 0, stands as the search range's floor, 1e-3: the same fit in effect.
LIBRARY_DEFAULTS = {"xgboost": {"reg_lambda": 1.0}, "lightgbm": {"reg_lambda": 1e-3}}
# Random forest trials grow fewer trees than the refit: the ranking of depths and leaf sizes settles
# long before the forest's variance does, and each trial costs a third.
FOREST_TRIAL_TREES = 100


@dataclass(frozen=True)
class TuningResult:
    """One search: what the refit uses and how it was found.

    Attributes:
        family: the model family searched.
        best_params: the searched hyperparameters of the best trial (for the boosted trees with the
            early-stopped ``n_estimators``); the refit overlays them on the configured parameters.
        best_value: the best trial's inner-validation log loss.
        default_value: the configured parameters' inner-validation log loss (the first trial).
        n_trials: trials run.
        inner_train_rows, inner_validation_rows: rows of the inner split.
        seconds: wall time of the search.
    """

    family: str
    best_params: dict[str, Any]
    best_value: float
    default_value: float
    n_trials: int
    inner_train_rows: int
    inner_validation_rows: int
    seconds: float
    trials: list[dict[str, Any]] = field(default_factory=list, repr=False)  # per trial: number, value, params

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "best_params": dict(self.best_params),
            "best_value": self.best_value,
            "default_value": self.default_value,
            "n_trials": self.n_trials,
            "inner_train_rows": self.inner_train_rows,
            "inner_validation_rows": self.inner_validation_rows,
            "seconds": self.seconds,
        }


def tunes(family: str, models: ModelsConfig) -> bool:
    """Whether ``family`` is searched: tuning enabled and the family listed (the ensemble never is: its
    members keep their configured parameters)."""
    tuning = models.tuning
    if not tuning.enabled or family not in DEFAULT_PARAMS:
        return False
    return family in (tuning.families if tuning.families is not None else models.families)


def inner_split(times: np.ndarray, tuning: TuningConfig, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the inner training part and the inner validation slice (the last
    ``inner_fraction`` of the distinct timestamps, after a purge of ``gap``).

    Raises:
        InsufficientDataError: too few timestamps to cut.
    """
    n_valid = max(1, round(len(np.unique(times)) * tuning.inner_fraction))
    return tail_cut(
        times, n_valid, gap, "an inner tuning split", "; lower models.tuning.inner_fraction or disable models.tuning"
    )


def _space(family: str, trial: Any, fixed: set[str]) -> dict[str, Any]:
    """The family's key hyperparameters for one trial; names the user fixed in ``models.params`` are not searched."""
    suggestions: dict[str, Any] = {}

    def pick(name: str, suggest: Any) -> None:
        if name not in fixed:
            suggestions[name] = suggest(name)

    if family == "logreg":
        pick("C", lambda n: trial.suggest_float(n, 1e-3, 10.0, log=True))
    elif family == "random_forest":
        pick("max_depth", lambda n: trial.suggest_int(n, 3, 12))
        pick("min_samples_leaf", lambda n: trial.suggest_int(n, 5, 300, log=True))
        pick("max_features", lambda n: trial.suggest_float(n, 0.2, 1.0))
    elif family == "xgboost":
        pick("max_depth", lambda n: trial.suggest_int(n, 1, 6))
        pick("learning_rate", lambda n: trial.suggest_float(n, 0.01, 0.2, log=True))
        pick("min_child_weight", lambda n: trial.suggest_float(n, 1.0, 200.0, log=True))
        pick("subsample", lambda n: trial.suggest_float(n, 0.5, 1.0))
        pick("colsample_bytree", lambda n: trial.suggest_float(n, 0.3, 1.0))
        pick("reg_lambda", lambda n: trial.suggest_float(n, 1e-3, 100.0, log=True))
    elif family == "lightgbm":
        pick("num_leaves", lambda n: trial.suggest_int(n, 2, 63, log=True))
        pick("learning_rate", lambda n: trial.suggest_float(n, 0.01, 0.2, log=True))
        pick("min_child_samples", lambda n: trial.suggest_int(n, 10, 500, log=True))
        pick("subsample", lambda n: trial.suggest_float(n, 0.5, 1.0))
        pick("colsample_bytree", lambda n: trial.suggest_float(n, 0.3, 1.0))
        pick("reg_lambda", lambda n: trial.suggest_float(n, 1e-3, 100.0, log=True))
    return suggestions


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _fit_trial(
    family: str,
    params: dict[str, Any],
    models: ModelsConfig,
    threads: int | None,
    X_fit: pd.DataFrame,
    y_fit: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
) -> tuple[float, dict[str, Any]]:
    """Inner-validation log loss of ``params`` and the parameters a refit should use (early-stopped trees)."""
    trial_params = dict(params)
    # A tree count the user fixed in models.params is kept: no early stopping then.
    early_stopping = family in BOOSTED and "n_estimators" not in models.params_for(family)
    if early_stopping:
        trial_params["n_estimators"] = MAX_TREES
    elif family == "random_forest" and "n_estimators" not in models.params_for(family):
        trial_params["n_estimators"] = FOREST_TRIAL_TREES
    trial_models = models.model_copy(
        update={"params": {**models.params, family: {**models.params_for(family), **trial_params}}}
    )
    estimator = with_label_defaults(make_estimator(family, trial_models, threads), y_fit)
    chosen = dict(params)
    if family == "xgboost" and early_stopping:
        estimator.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS)
        estimator.fit(X_fit, y_fit, eval_set=[(X_val, y_val)], verbose=False)
        chosen["n_estimators"] = int(estimator.best_iteration) + 1
    elif family == "lightgbm" and early_stopping:
        import lightgbm

        estimator.fit(
            X_fit,
            y_fit,
            eval_X=X_val,
            eval_y=y_val,
            callbacks=[lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
        )
        chosen["n_estimators"] = int(estimator.best_iteration_ or MAX_TREES)
    else:
        estimator.fit(X_fit, y_fit)
    return _log_loss(y_val, estimator.predict_proba(X_val)[:, 1]), chosen


def tune_family(
    family: str,
    X: pd.DataFrame,
    y: np.ndarray,
    times: np.ndarray,
    models: ModelsConfig,
    gap: int,
    threads: int | None = None,
) -> TuningResult | None:
    """Search ``family``'s hyperparameters on ``X``/``y`` (rows in time order, all from one window).

    Args:
        times: each row's timestamp (the inner split cuts on distinct timestamps).
        gap: timestamps purged between the inner training part and the inner validation slice.
        threads: threads each trial's learner may use.

    Returns:
        The search's result, or None (the configured parameters are then used) when the inner validation
        slice has fewer than ``tuning.min_validation_rows`` rows or an inner part holds a single class.
    """
    import optuna

    tuning = models.tuning
    try:
        fit_rows, valid_rows = inner_split(times, tuning, gap)
    except InsufficientDataError as exc:
        logger.warning("tuning %s skipped: %s", family, exc)
        return None
    if len(valid_rows) < tuning.min_validation_rows:
        # A few dozen rows rank the trials by noise (and stop the trees after a handful): keep the configured ones.
        logger.info(
            "tuning %s skipped: %d inner validation rows, fewer than models.tuning.min_validation_rows %d",
            family,
            len(valid_rows),
            tuning.min_validation_rows,
        )
        return None
    y = np.asarray(y)
    if len(np.unique(y[fit_rows])) < 2 or len(np.unique(y[valid_rows])) < 2:
        logger.warning("tuning %s skipped: an inner part of %d rows holds a single class", family, len(times))
        return None
    X_fit, y_fit, X_val, y_val = X.iloc[fit_rows], y[fit_rows], X.iloc[valid_rows], y[valid_rows]
    fixed = set(models.params_for(family))
    configured = model_params(family, models)
    started = time.perf_counter()
    chosen: dict[int, dict[str, Any]] = {}

    def objective(trial: Any) -> float:
        value, chosen[trial.number] = _fit_trial(
            family, _space(family, trial, fixed), models, threads, X_fit, y_fit, X_val, y_val
        )
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=models.seed, n_startup_trials=max(2, min(10, tuning.trials // 2)))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    # The first trial is the configured parameters: the search never ends worse than them on this slice.
    searched = [name for name in _space_names(family) if name not in fixed]
    first = {**LIBRARY_DEFAULTS.get(family, {}), **configured}
    study.enqueue_trial({name: first[name] for name in searched if name in first})
    study.optimize(objective, n_trials=tuning.trials, timeout=tuning.timeout_seconds)
    done = [(t, float(t.value)) for t in study.trials if t.value is not None]
    best, best_value = min(done, key=lambda pair: (pair[1], pair[0].number))
    result = TuningResult(
        family=family,
        best_params=chosen[best.number],
        best_value=best_value,
        default_value=done[0][1],
        n_trials=len(done),
        inner_train_rows=len(fit_rows),
        inner_validation_rows=len(valid_rows),
        seconds=round(time.perf_counter() - started, 3),
        trials=[{"number": t.number, "value": value, **t.params} for t, value in done],
    )
    logger.info(
        "tuned %s: inner log loss %.4f (configured %.4f), %d trials, %s",
        family,
        result.best_value,
        result.default_value,
        result.n_trials,
        result.best_params,
    )
    return result


def _space_names(family: str) -> list[str]:
    """The names ``_space`` may suggest for ``family``."""
    recorder = _Recorder()
    _space(family, recorder, set())
    return recorder.names


class _Recorder:
    """Stands in for an Optuna trial to list a space's names."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def _record(self, name: str, *args: Any, **kwargs: Any) -> int:
        self.names.append(name)
        return 1

    suggest_float = suggest_int = _record


def tuned_models(models: ModelsConfig, family: str, result: TuningResult | None) -> ModelsConfig:
    """``models`` with ``result``'s best parameters overlaid on ``family``'s (unchanged without a result)."""
    if result is None:
        return models
    merged = {**models.params_for(family), **result.best_params}
    return models.model_copy(update={"params": {**models.params, family: merged}})


def tune_window(
    family: str,
    X: pd.DataFrame,
    y: np.ndarray,
    times: np.ndarray,
    models: ModelsConfig,
    calibration: CalibrationConfig,
    gap: int,
    threads: int | None = None,
) -> tuple[ModelsConfig, TuningResult | None]:
    """The models section a training window's fit should use, and the search behind it.

    Without tuning for ``family`` (``tunes``), ``models`` unchanged and None. Else the search runs on the
    window's fitting rows only (before its calibration slice, as ``CalibratedModel.fit`` cuts it); a window
    too short to cut keeps the configured parameters.
    """
    if not tunes(family, models):
        return models, None
    times = np.asarray(times)
    try:
        fit_rows, _ = calibration_cut(times, calibration.fraction, gap)
    except InsufficientDataError:
        return models, None  # the fit itself reports the short window
    result = tune_family(family, X.iloc[fit_rows], np.asarray(y)[fit_rows], times[fit_rows], models, gap, threads)
    return tuned_models(models, family, result), result
