"""Hyperparameter search inside each training window (``models.tuning``): where it looks, what it may
never see, what the refit uses, and that it is part of every fit's cache key.

All on the shared GARCH walk-forward fixture's features (conftest ``walk_forward_run``); a few trials each.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from driftline.config import FitSpec, ModelsConfig, PipelineConfig, TuningConfig, load_config
from driftline.splits import calibration_cut
from driftline.training import FoldJob, fit_challenger, run_fold_job, walk_forward_jobs
from driftline.tuning import MAX_TREES, inner_split, tune_family, tunes

TUNED = ModelsConfig(
    families=("logreg", "lightgbm"),
    params={"lightgbm": {"n_jobs": 1}},
    tuning=TuningConfig(enabled=True, trials=4, inner_fraction=0.25, min_validation_rows=50),
)


def _spec(run, models: ModelsConfig = TUNED) -> FitSpec:
    """The shared run's fit spec with ``models``."""
    return run.spec.model_copy(update={"models": models})


def _job(run, family: str, fold: int) -> FoldJob:
    return next(j for j in walk_forward_jobs(run.features, _spec(run)) if j.fold == fold and j.family == family)


def _fold(run, job: FoldJob, features=None, models: ModelsConfig = TUNED):
    return run_fold_job(job, features or run.features, _spec(run, models), threads=1)


@pytest.fixture(scope="module")
def tuned_folds(walk_forward_run) -> dict:
    """Folds 2 and 3 of logreg and lightgbm, each searched (4 trials) on its own window: fitted once here."""
    run = walk_forward_run
    return {(j.family, j.fold): _fold(run, j) for j in walk_forward_jobs(run.features, _spec(run)) if j.fold in (2, 3)}


def _replace_rows(features, rows: np.ndarray, seed: int):
    """The feature set with ``rows``' features and labels replaced by noise."""
    rng = np.random.default_rng(seed)
    X = features.X.copy()
    X.iloc[rows] = rng.normal(size=(len(rows), X.shape[1])) * 10
    y = features.y.copy()
    y.iloc[rows] = rng.integers(0, 2, size=len(rows))
    return dataclasses.replace(features, X=X, y=y)


def test_config_validates_tuning_keys():
    config = load_config(
        None, {"models.tuning.enabled": True, "models.tuning.trials": 3, "models.tuning.families": ["lightgbm"]}
    )
    assert config.models.tuning == TuningConfig(enabled=True, trials=3, families=("lightgbm",))
    assert not PipelineConfig().models.tuning.enabled  # off by default: no run pays for it unasked
    for bad in (
        {"models.tuning.trials": 0},
        {"models.tuning.inner_fraction": 0.6},
        {"models.tuning.families": ["svm"]},
        {"models.tuning.trial": 3},
    ):
        with pytest.raises(Exception, match="tuning"):
            load_config(None, bad)


def test_tuning_settings_change_every_fit_cache_key(walk_forward_run):
    """models.tuning lives in ``models``, which every fit key covers: a changed budget never reuses a fit."""
    from tasks import training as training_tasks

    base = PipelineConfig()
    job = walk_forward_jobs(walk_forward_run.features, walk_forward_run.spec)[0]

    def keys(config: PipelineConfig) -> tuple[str, str, str]:
        return (
            training_tasks.walk_forward_key(config.fit_spec, "digest"),
            training_tasks._fold_key(None, {"job": job, "spec": config.fit_spec, "features_digest": "digest"}),
            training_tasks._challenger_key(
                None, {"features": walk_forward_run.features, "family": "lightgbm", "spec": config.fit_spec}
            ),
        )

    seen = {keys(base)}
    changes = (
        {"enabled": True},
        {"trials": 13},
        {"timeout_seconds": 30.0},
        {"inner_fraction": 0.3},
        {"families": ("lightgbm",)},
        {"min_validation_rows": 99},
    )
    for change in changes:
        tuning = base.models.tuning.model_copy(update=change)
        variant = base.model_copy(update={"models": base.models.model_copy(update={"tuning": tuning})})
        changed = keys(variant)
        assert all(a != b for a, b in zip(changed, keys(base), strict=True)), change
        seen.add(changed)
    assert len(seen) == len(changes) + 1


def test_which_families_are_tuned():
    assert tunes("lightgbm", TUNED) and tunes("logreg", TUNED)
    assert not tunes("ensemble", TUNED)  # its members keep their configured parameters
    assert not tunes("lightgbm", ModelsConfig())  # disabled by default
    only = TUNED.model_copy(update={"tuning": TUNED.tuning.model_copy(update={"families": ("lightgbm",)})})
    assert tunes("lightgbm", only) and not tunes("logreg", only)


def test_inner_split_purges_the_gap_and_validates_on_the_last_timestamps():
    times = np.repeat(np.arange(100), 3)  # three symbols per timestamp
    fit, valid = inner_split(times, TuningConfig(inner_fraction=0.2), gap=5)
    assert set(times[valid]) == set(range(80, 100))
    assert set(times[fit]) == set(range(75))  # timestamps 75..79 purged


def test_no_test_or_calibration_row_can_change_the_search(walk_forward_run, tuned_folds):
    """The search sees the window's fitting rows only. Replacing every test-fold row and every calibration
    row with noise leaves the search exactly as it was; replacing inner-validation rows changes it (so
    this test can fail)."""
    run = walk_forward_run
    job = _job(run, "lightgbm", 2)
    before = tuned_folds[("lightgbm", 2)].result.tuning
    assert before is not None and before.n_trials == 4

    train = np.arange(len(run.features.y))[job.train]
    test = np.arange(len(run.features.y))[job.test]
    fit_rows, cal_rows = calibration_cut(run.features.times[job.train], run.calibration.fraction, run.gap)
    unseen = np.concatenate([test, train[cal_rows]])
    after = _fold(run, job, _replace_rows(run.features, unseen, seed=1)).result.tuning
    assert after.trials == before.trials
    assert after.best_params == before.best_params

    _, valid = inner_split(run.features.times[job.train][fit_rows], TUNED.tuning, run.gap)
    seen = _fold(run, job, _replace_rows(run.features, train[fit_rows][valid], seed=1)).result.tuning
    assert seen.trials != before.trials


def test_the_search_is_seeded_starts_from_the_configured_parameters_and_stops_trees_early(walk_forward_run):
    run = walk_forward_run
    train = _job(run, "lightgbm", 3).train
    X, y, times = run.features.X.iloc[train], run.features.y.to_numpy()[train], run.features.times[train]
    first = tune_family("lightgbm", X, y, times, TUNED, run.gap, threads=1)
    again = tune_family("lightgbm", X, y, times, TUNED, run.gap, threads=1)
    assert first.trials == again.trials and first.best_params == again.best_params
    # The booster on its linear base (models.linear_base): LINEAR_BASE_PARAMS' learning rate.
    assert first.trials[0]["num_leaves"] == 4 and first.trials[0]["learning_rate"] == pytest.approx(0.015)
    assert first.trials[0]["reg_lambda"] == pytest.approx(1e-3)  # LightGBM's 0, at the range's floor
    assert first.default_value == first.trials[0]["value"] >= first.best_value
    assert 1 <= first.best_params["n_estimators"] < MAX_TREES  # early stopping on the inner validation slice
    assert first.inner_validation_rows + first.inner_train_rows < len(y)  # the purge gap
    assert len({t["value"] for t in first.trials}) > 1


def test_parameters_fixed_in_models_params_are_not_searched(walk_forward_run):
    run = walk_forward_run
    train = _job(run, "lightgbm", 2).train
    fixed = TUNED.model_copy(update={"params": {"lightgbm": {"n_jobs": 1, "num_leaves": 7, "n_estimators": 50}}})
    result = tune_family(
        "lightgbm",
        run.features.X.iloc[train],
        run.features.y.to_numpy()[train],
        run.features.times[train],
        fixed,
        run.gap,
        1,
    )
    assert "num_leaves" not in result.best_params and "n_estimators" not in result.best_params
    assert all("num_leaves" not in t for t in result.trials)


def test_fold_and_challenger_refit_with_the_tuned_parameters(walk_forward_run, tuned_folds):
    run = walk_forward_run
    outcome = tuned_folds[("logreg", 3)]
    assert outcome.result.tuning.family == "logreg" and "C" in outcome.result.tuning.best_params
    assert outcome.predictions["p"].between(0, 1).all()

    challenger = fit_challenger(run.features, "lightgbm", _spec(run))
    tuning = challenger.tuning_
    assert tuning is not None and tuning.inner_train_rows + tuning.inner_validation_rows < len(run.features.y)
    base = challenger.base_estimator_.booster_  # the trees on their linear base (models.linear_base)
    assert base.get_params()["n_estimators"] == tuning.best_params["n_estimators"]
    assert base.get_params()["num_leaves"] == tuning.best_params["num_leaves"]
    untuned = fit_challenger(run.features, "lightgbm", _spec(run, TUNED.model_copy(update={"tuning": TuningConfig()})))
    assert untuned.tuning_ is None and untuned.base_estimator_.booster_.get_params()["n_estimators"] == 300


def test_walk_forward_result_lists_every_search(walk_forward_run, tuned_folds):
    from driftline.training import combine_fold_results, fold_table

    no_shrink = walk_forward_run.calibration.model_copy(update={"shrink": False})
    spec = _spec(walk_forward_run).model_copy(update={"calibration": no_shrink})
    result = combine_fold_results(list(tuned_folds.values()), spec)
    assert [(t.family, f.fold) for f in result.folds if (t := f.tuning)] == [
        ("logreg", 2),
        ("lightgbm", 2),
        ("logreg", 3),
        ("lightgbm", 3),
    ]
    assert result.tuning() == [f.tuning for f in result.folds]
    assert all(t.n_trials == 4 and t.best_value <= t.default_value for t in result.tuning())
    assert all("tuning" not in row for row in fold_table(result))  # the summary's fold table keeps its shape


def test_a_window_too_short_for_the_inner_split_keeps_the_configured_parameters(walk_forward_run):
    run = walk_forward_run
    train = _job(run, "lightgbm", 2).train
    X, y, times = run.features.X.iloc[train], run.features.y.to_numpy()[train], run.features.times[train]
    strict = TUNED.model_copy(update={"tuning": TUNED.tuning.model_copy(update={"min_validation_rows": len(y)})})
    assert tune_family("lightgbm", X, y, times, strict, run.gap, threads=1) is None
    assert _fold(run, _job(run, "lightgbm", 2), models=strict).result.tuning is None
