"""Walk-forward evaluation of every family and the challenger fit (one shared run from conftest)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from driftline.calibration import CalibratedModel
from driftline.config import CalibrationConfig, FitSpec, ModelsConfig, SplitConfig
from driftline.errors import InsufficientDataError
from driftline.features import LEVEL_COLUMN, model_inputs
from driftline.metrics import binned_ece, expected_calibration_error
from driftline.training import (
    SUMMARY_METRICS,
    FoldJob,
    combine_fold_results,
    fit_challenger,
    fold_table,
    run_fold_job,
    run_walk_forward,
    shrink_families_that_lost,
    shrink_fold_predictions,
    walk_forward_jobs,
)
from tests.unit.conftest import HORIZON


def test_every_family_has_every_fold(walk_forward_run):
    result = walk_forward_run.result
    assert {(f.family, f.fold) for f in result.folds} == {(fam, k) for fam in ("logreg", "lightgbm") for k in (1, 2, 3)}
    assert set(result.pooled) == {"logreg", "lightgbm"}
    for family, values in result.pooled.items():
        assert set(SUMMARY_METRICS) <= set(values)
        rows = result.predictions[result.predictions["family"] == family]
        assert values["rows"] == len(rows)
        # Pooled means pooled: the metric over every out-of-sample row of the family.
        assert values["log_loss"] == pytest.approx(log_loss(rows["y"], rows["p"], labels=[0, 1]))


def test_selected_family_has_the_lowest_pooled_log_loss(walk_forward_run):
    result = walk_forward_run.result
    best = min(result.pooled, key=lambda family: result.pooled[family]["log_loss"])
    assert result.selected == best
    assert result.summary_metrics() == {k: result.pooled[best][k] for k in (*SUMMARY_METRICS, "ece_worst_fold")}
    folds_ece = [f.metrics["ece"] for f in result.selected_folds()]
    assert result.summary_metrics()["ece_worst_fold"] == max(folds_ece) > min(folds_ece)
    assert result.selection_reason().startswith("lowest pooled out-of-sample log_loss")
    assert all(f.family == best for f in result.selected_folds())
    assert set(result.selected_predictions()["family"]) == {best}


def test_the_gate_judges_the_pooled_walk_forward_ece_over_bins_of_100_rows_or_more(walk_forward_run):
    result = walk_forward_run.result
    rows = len(result.selected_predictions())
    assert rows >= 1000  # thousands of pooled rows: the gate's ECE is the reported one, ten bins
    full = result.gate_ece(10)
    assert (full.bins, full.rows) == (10, rows) and full.value == pytest.approx(result.pooled[result.selected]["ece"])
    few = result.gate_ece(100)
    assert few.bins == rows // 100 < 100


def test_a_calibrated_model_on_a_short_walk_forward_passes_the_ece_gate_by_its_binning():
    # 150 out-of-sample rows (three folds of 50, as a short monthly series gets): in ten bins of 15 rows a
    # perfectly calibrated model's ECE is sampling noise of about 0.4 / sqrt(15) = 0.10, over the 0.08 cap.
    rng = np.random.default_rng(0)
    over_cap_ten, over_cap_binned = 0, 0
    for _ in range(200):
        p = rng.uniform(0.2, 0.8, 150)
        y = (rng.uniform(size=150) < p).astype(int)
        over_cap_ten += expected_calibration_error(y, p, 10) > 0.08
        binned = binned_ece(y, p, 10)
        assert binned.bins == 2
        over_cap_binned += binned.value > 0.08
    # Two bins of 75 rows (never fewer than two): 148 of 200 such models failed the cap in ten bins, 20 in two.
    assert over_cap_ten > 100 and over_cap_binned < 40


def test_predictions_are_only_on_test_rows_after_the_training_window(walk_forward_run):
    result, features, gap = walk_forward_run.result, walk_forward_run.features, walk_forward_run.gap
    unique_times = np.unique(features.times)
    predictions = result.predictions
    for fold in result.folds:
        rows = predictions[(predictions["fold"] == fold.fold) & (predictions["family"] == fold.family)]
        assert len(rows) == fold.n_test
        train_end, test_start = pd.Timestamp(fold.train_end), pd.Timestamp(fold.test_start)
        assert (rows["timestamp"] > train_end).all()
        assert rows["timestamp"].min() == test_start
        assert rows["timestamp"].max() == pd.Timestamp(fold.test_end)
        # The purge gap lies between training and test.
        purged = unique_times[(unique_times > np.datetime64(train_end)) & (unique_times < np.datetime64(test_start))]
        assert len(purged) == gap
    # Each (family, row) is predicted once: test folds do not overlap.
    assert not predictions.duplicated(["family", "symbol", "timestamp"]).any()
    assert predictions["timestamp"].max() == features.meta["timestamp"].max()
    # Nothing before the first test fold is ever scored.
    first_test = min(pd.Timestamp(f.test_start) for f in result.folds)
    assert predictions["timestamp"].min() == first_test


def test_predictions_keep_labels_and_probabilities_in_range(walk_forward_run):
    predictions = walk_forward_run.result.predictions
    keyed = walk_forward_run.features.meta.assign(y_true=walk_forward_run.features.y.to_numpy())
    merged = predictions.merge(keyed[["symbol", "timestamp", "y_true"]], on=["symbol", "timestamp"])
    assert len(merged) == len(predictions)
    np.testing.assert_array_equal(merged["y"].to_numpy(), merged["y_true"].to_numpy())
    assert predictions["p"].between(1e-4, 1 - 1e-4).all()
    assert predictions["p_uncalibrated"].between(0, 1).all()


def test_volatility_target_shows_skill_on_garch_data(walk_forward_run):
    """GARCH volatility clusters, so 'next week calmer or stormier than usual' is predictable."""
    result = walk_forward_run.result
    pooled = result.pooled[result.selected]
    assert pooled["auc"] > 0.55
    assert pooled["log_loss"] < np.log(2)  # better than a coin flip at 0.5


def test_price_target_adds_strategy_metrics(walk_forward_run):
    assert "sharpe" not in walk_forward_run.result.pooled["logreg"]
    features = walk_forward_run.features
    result = run_walk_forward(
        features,
        FitSpec(
            splits=SplitConfig(n_splits=2, min_train_size=400),
            gap=5,
            models=ModelsConfig(families=("logreg",)),
            is_direction=True,
        ),
    )
    assert {"sharpe", "max_drawdown", "turnover", "exposure"} <= set(result.pooled["logreg"])
    assert all("sharpe" in f.metrics for f in result.folds)


def test_fold_table_rows(walk_forward_run):
    rows = fold_table(walk_forward_run.result)
    assert [row["fold"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert row["family"] == walk_forward_run.result.selected
        assert set(SUMMARY_METRICS) | {"brier_uncalibrated", "ece_uncalibrated", "n_train", "n_test"} <= set(row)
    assert rows[0]["n_train"] < rows[1]["n_train"] < rows[2]["n_train"]  # expanding window


def test_too_little_data_for_the_folds(walk_forward_run):
    with pytest.raises(InsufficientDataError, match="too little data"):
        run_walk_forward(
            walk_forward_run.features,
            FitSpec(
                splits=SplitConfig(n_splits=3, min_train_size=5000), gap=5, models=ModelsConfig(families=("logreg",))
            ),
        )


def test_fit_challenger_returns_a_fitted_calibrated_model(walk_forward_run):
    features = walk_forward_run.features
    model = fit_challenger(features, walk_forward_run.result.selected, walk_forward_run.spec)
    assert isinstance(model, CalibratedModel)
    # The base model learns from every feature but the series' recent share of known labels, the level it is
    # shrunk toward.
    assert LEVEL_COLUMN in features.feature_names and model.level_column_ == LEVEL_COLUMN
    assert list(model.feature_names_in_) == [n for n in features.feature_names if n != LEVEL_COLUMN]
    # Calibrated on the rows of the newest 20% of timestamps of all labelled rows.
    unique_times = np.unique(features.times)
    newest = unique_times[-round(len(unique_times) * 0.2) :]
    assert model.n_calibration_rows_ == np.isin(features.times, newest).sum()
    latest = features.latest[list(features.feature_names)]
    proba = model.predict_proba(latest)
    assert proba.shape == (len(latest), 2)
    assert ((proba >= 1e-4 - 1e-12) & (proba <= 1 - 1e-4 + 1e-12)).all()


# --- the walk-forward as independent (fold, family) jobs ------------------------------------------------


def _jobs(run):
    return walk_forward_jobs(run.features, run.spec)


def _run_job(run, job, threads=None):
    return run_fold_job(job, run.features, run.spec, threads)


def test_jobs_are_every_fold_times_every_family_as_row_ranges(walk_forward_run):
    jobs = _jobs(walk_forward_run)
    # Each fold's families, then the naive baselines on the same rows.
    families = ("logreg", "lightgbm", "base_rate", "persistence", "lagged_labels")
    assert [(j.fold, j.family) for j in jobs] == [(k, f) for k in (1, 2, 3) for f in families]
    folds = {f.fold: f for f in walk_forward_run.result.folds}
    for job in jobs:
        # Features are in time order: a fold's rows are one contiguous range, a job is a few bytes.
        assert isinstance(job.train, slice) and isinstance(job.test, slice)
        assert job.train.start == 0 and job.train.stop < job.test.start  # expanding, purged
        assert (job.train.stop - job.train.start, job.test.stop - job.test.start) == (
            folds[job.fold].n_train,
            folds[job.fold].n_test,
        )


def test_jobs_run_in_any_order_and_combined_equal_run_walk_forward(walk_forward_run):
    run = walk_forward_run
    jobs = _jobs(run)
    outcomes = [_run_job(run, job) for job in reversed(jobs)][::-1]  # each job stands alone
    # The calibration settings as run_walk_forward passes them (calibration.shrink is fitted on the folds here).
    combined = combine_fold_results(outcomes, run.spec)
    assert combined.folds == run.result.folds
    assert combined.pooled == run.result.pooled
    assert (combined.baselines, combined.baseline_folds) == (run.result.baselines, run.result.baseline_folds)
    assert combined.selected == run.result.selected
    pd.testing.assert_frame_equal(combined.predictions, run.result.predictions, check_exact=True)


def test_a_job_on_row_positions_equals_the_job_on_a_range(walk_forward_run):
    run = walk_forward_run
    job = _jobs(run)[1]
    as_positions = FoldJob(
        job.fold, job.family, np.arange(job.train.start, job.train.stop), np.arange(job.test.start, job.test.stop)
    )
    on_range, on_positions = _run_job(run, job), _run_job(run, as_positions)
    assert on_positions.result == on_range.result
    pd.testing.assert_frame_equal(on_positions.predictions, on_range.predictions, check_exact=True)


def test_single_threaded_learners_give_the_same_metrics(walk_forward_run):
    run = walk_forward_run
    single = run_walk_forward(run.features, run.spec, threads=1)
    assert single.selected == run.result.selected
    for family, values in run.result.pooled.items():
        assert single.pooled[family] == pytest.approx(values, rel=1e-9, abs=1e-12)


def test_features_hash_is_computed_once_per_feature_set_and_follows_the_content(walk_forward_run):
    import dataclasses
    import gc

    from tasks import training as training_tasks

    features = walk_forward_run.features
    first = training_tasks.features_hash(features)
    assert training_tasks.features_hash(features) == first
    assert training_tasks._DIGESTS[id(features)] == first

    X = features.X.copy()
    X.iloc[0, 0] = X.iloc[0, 0] + 1.0
    changed = dataclasses.replace(features, X=X)
    assert training_tasks.features_hash(changed) != first
    same = dataclasses.replace(features, X=features.X.copy())
    assert training_tasks.features_hash(same) == first

    key = id(changed)
    del changed
    gc.collect()
    assert key not in training_tasks._DIGESTS  # forgotten with its feature set: no stale digest for a reused id


def test_shrink_auto_shrinks_exactly_the_families_that_lost_to_the_base_rate(walk_forward_run):
    run = walk_forward_run
    outcomes = [_run_job(run, job) for job in _jobs(run) if job.family in ("logreg", "lightgbm")]
    table = pd.concat([o.predictions for o in outcomes], ignore_index=True)
    table["family"] = table["family"].astype("category")
    folds = [o.result for o in outcomes]
    everyone, shrunk_weights = shrink_fold_predictions(folds, table, run.metrics, False)[1:]

    def auto(baseline_log_loss: float, persistence: float | None = None):
        baselines = {"base_rate": {"log_loss": baseline_log_loss}}
        if persistence is not None:
            baselines["persistence"] = {"log_loss": persistence}
        return shrink_families_that_lost(folds, table, baselines, run.metrics, False)

    def p_of(frame, family):
        return frame.loc[frame["family"] == family, "p"].to_numpy()

    def calibrated(family):
        return table.loc[table["family"] == family, "p_calibrated"].to_numpy()

    # A baseline no family lost to: every family keeps its calibrated probability, weight 1 on every fold.
    kept_folds, kept, weights = auto(1e9)
    assert weights == {} and all(f.shrinkage == 1.0 for f in kept_folds)
    np.testing.assert_array_equal(kept["p"].to_numpy(), table["p_calibrated"].to_numpy())
    # A baseline every family lost to: all shrunk, as calibration.shrink: true shrinks them.
    _, all_shrunk, weights = auto(0.0)
    assert weights == shrunk_weights
    np.testing.assert_array_equal(all_shrunk["p"].to_numpy(), everyone["p"].to_numpy())
    # Between the two families' unshrunk log losses: only the worse one is shrunk.
    plain = {f: log_loss(table.loc[table["family"] == f, "y"], calibrated(f)) for f in ("logreg", "lightgbm")}
    worse, better = sorted(plain, key=plain.get, reverse=True)
    mixed_folds, mixed, weights = auto((plain[worse] + plain[better]) / 2)
    assert set(weights) == {worse}
    np.testing.assert_array_equal(p_of(mixed, worse), p_of(everyone, worse))
    np.testing.assert_array_equal(p_of(mixed, better), calibrated(better))
    assert all(f.shrinkage == 1.0 for f in mixed_folds if f.family == better)
    assert not np.array_equal(p_of(mixed, worse), calibrated(worse))  # shrinking changed something
    # Lost to persistence, beat the base rate: nothing to gain from a pull toward the base rate.
    _, beside_persistence, weights = auto(1e9, persistence=0.0)
    assert weights == {}
    np.testing.assert_array_equal(beside_persistence["p"].to_numpy(), table["p_calibrated"].to_numpy())
    # Lost to both: shrunk, whichever is the better baseline.
    assert auto(0.0, persistence=1e9)[2] == shrunk_weights


def test_by_default_a_family_that_beats_the_baselines_is_not_shrunk(walk_forward_run):
    result = walk_forward_run.result  # calibration.shrink at its default, auto
    best_baseline = min(v["log_loss"] for v in result.baselines.values())
    assert all(v["log_loss"] < best_baseline for v in result.pooled.values())  # GARCH volatility: real signal
    assert result.shrinkage == {}
    np.testing.assert_array_equal(result.predictions["p"].to_numpy(), result.predictions["p_calibrated"].to_numpy())


# --- the soft-vote ensemble, built from its members' fold predictions -----------------------------------


@pytest.mark.parametrize("method", ["sigmoid", "auto"])
def test_ensemble_from_member_predictions_equals_refitting_a_voting_classifier_per_fold(walk_forward_run, method):
    run = walk_forward_run
    models = run.models.model_copy(update={"ensemble": True})
    # Without shrinkage: its weight is refitted per fold from earlier folds (shrink_fold_predictions), which
    # a fold job of its own cannot do; the calibrated probabilities before it are compared below.
    calibration = run.calibration.model_copy(update={"method": method, "shrink": False})
    spec = run.spec.model_copy(update={"models": models, "calibration": calibration})
    jobs = walk_forward_jobs(run.features, spec)
    assert "ensemble" not in {j.family for j in jobs}  # no job refits the members for the ensemble
    outcomes = [run_fold_job(j, run.features, spec) for j in jobs]
    result = combine_fold_results(outcomes, spec)
    assert list(result.pooled) == ["logreg", "lightgbm", "ensemble"]
    built = result.predictions[result.predictions["family"] == "ensemble"]
    for job in (j for j in jobs if j.family == "logreg"):
        # What a fold job of its own gives: a VotingClassifier over both families, fitted and calibrated.
        refit = run_fold_job(FoldJob(job.fold, "ensemble", job.train, job.test), run.features, spec)
        ours = built[built["fold"] == job.fold]
        np.testing.assert_allclose(ours["p_uncalibrated"], refit.predictions["p_uncalibrated"], rtol=0, atol=1e-9)
        if method == "sigmoid":  # auto: p is chosen later from earlier folds; the candidates must match
            np.testing.assert_allclose(ours["p"], refit.predictions["p"], rtol=0, atol=1e-7)
            np.testing.assert_allclose(ours["p_calibrated"], refit.predictions["p_calibrated"], rtol=0, atol=1e-7)
        windows = [c for c in refit.predictions.columns if c.startswith("p_window_")]
        assert windows == [c for c in ours.columns if c.startswith("p_window_") and ours[c].notna().all()]
        for column in windows:
            np.testing.assert_allclose(ours[column], refit.predictions[column], rtol=0, atol=1e-7)
        fold = next(f for f in result.folds if f.family == "ensemble" and f.fold == job.fold)
        assert (fold.n_train, fold.n_test, fold.train_end) == (
            refit.result.n_train,
            refit.result.n_test,
            refit.result.train_end,
        )
        if method == "sigmoid":
            assert fold.calibration == refit.result.calibration == "window-sigmoid"
            assert fold.metrics == pytest.approx(refit.result.metrics, rel=1e-6, abs=1e-9)


def _member_outcomes(y_by_fold, probabilities, slice_rows=300):
    """Fold outcomes of members whose probabilities are given: (fold -> y), (member -> fold -> (test p, slice p))."""
    from driftline.training import FoldOutcome, FoldResult

    outcomes = []
    for fold, (y_test, y_slice) in y_by_fold.items():
        for member, by_fold in probabilities.items():
            p_test, p_slice = by_fold[fold]
            stamps = pd.date_range("2020-01-01", periods=len(y_test), freq="h") + pd.Timedelta(days=400 * fold)
            predictions = pd.DataFrame({"symbol": "s", "timestamp": stamps}).assign(
                fold=fold, family=member, y=y_test, p=p_test, p_uncalibrated=p_test
            )
            result = FoldResult(
                fold,
                member,
                "a",
                "b",
                str(stamps[0]),
                str(stamps[-1]),
                1000,
                len(y_test),
                {"ece": 0.0},
                "window-sigmoid",
            )
            outcomes.append(FoldOutcome(result, predictions, (p_slice, y_slice)))
    return outcomes


def _simulated(noise_b: float | None, seed: int = 0):
    """Two members seeing the true log-odds through independent noise; ``noise_b`` None: member b is a coin."""
    rng = np.random.default_rng(seed)
    y_by_fold, probabilities = {}, {"a": {}, "b": {}}
    for fold in (1, 2, 3):
        parts = []
        for n in (800, 300):  # test rows, calibration-slice rows
            logit = rng.normal(0, 1.5, n)
            y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
            a = 1 / (1 + np.exp(-(logit + rng.normal(0, 1.0, n))))
            b = (
                rng.uniform(0.05, 0.95, n)
                if noise_b is None
                else 1 / (1 + np.exp(-(logit + rng.normal(0, noise_b, n))))
            )
            parts.append((y, a, b))
        (y_test, a_test, b_test), (y_slice, a_slice, b_slice) = parts
        y_by_fold[fold] = (y_test, y_slice)
        probabilities["a"][fold] = (a_test, a_slice)
        probabilities["b"][fold] = (b_test, b_slice)
    return y_by_fold, probabilities


def _sigmoid_spec(models: ModelsConfig) -> FitSpec:
    return FitSpec(gap=0, calibration=CalibrationConfig(method="sigmoid"), models=models)


def test_the_ensemble_is_the_challenger_when_its_pooled_log_loss_is_lowest():
    models = ModelsConfig(families=("logreg", "lightgbm"), ensemble=True)
    y_by_fold, probabilities = _simulated(noise_b=1.0)
    outcomes = _member_outcomes(y_by_fold, {"logreg": probabilities["a"], "lightgbm": probabilities["b"]})
    result = combine_fold_results(outcomes, _sigmoid_spec(models))
    # Independent errors average out: the vote beats both members.
    assert result.pooled["ensemble"]["log_loss"] < min(result.pooled[f]["log_loss"] for f in ("logreg", "lightgbm"))
    assert result.selected == "ensemble"
    assert [f.family for f in result.folds] == [f for _ in (1, 2, 3) for f in ("logreg", "lightgbm", "ensemble")]
    assert {f.calibration for f in result.selected_folds()} == {"window-sigmoid"}


def test_the_ensemble_is_not_the_challenger_when_a_member_is_better_alone():
    models = ModelsConfig(families=("logreg", "lightgbm"), ensemble=True)
    y_by_fold, probabilities = _simulated(noise_b=None)  # lightgbm is a coin: averaging with it only hurts
    outcomes = _member_outcomes(y_by_fold, {"logreg": probabilities["a"], "lightgbm": probabilities["b"]})
    result = combine_fold_results(outcomes, _sigmoid_spec(models))
    assert (
        result.pooled["logreg"]["log_loss"]
        < result.pooled["ensemble"]["log_loss"]
        < result.pooled["lightgbm"]["log_loss"]
    )
    assert result.selected == "logreg"


def test_an_ensemble_member_without_its_calibration_slice_is_a_clear_error():
    models = ModelsConfig(families=("logreg", "lightgbm"), ensemble=True)
    y_by_fold, probabilities = _simulated(noise_b=1.0)
    outcomes = _member_outcomes(y_by_fold, {"logreg": probabilities["a"], "lightgbm": probabilities["b"]})
    import dataclasses

    outcomes[1] = dataclasses.replace(outcomes[1], calibration_slice=None)
    with pytest.raises(ValueError, match=r"fold 1: .*\['lightgbm'\]"):
        combine_fold_results(outcomes, _sigmoid_spec(models))


def test_a_window_whose_slice_holds_one_class_trains_uncalibrated_one_whose_fitting_part_does_names_the_fold(
    walk_forward_run,
):
    """A short first window (quarterly data, a few years) may see one regime in its last fifth: that fold's
    model keeps its own probability, and the fold table says so. A fitting part of one class cannot train: the
    error names the fold and family and the keys that give the window more rows."""
    from dataclasses import replace

    from driftline.calibration import ONE_CLASS_SLICE, PROBABILITY_FLOOR

    features = walk_forward_run.features
    job = FoldJob(fold=1, family="logreg", train=slice(0, 600), test=slice(700, 900))
    spec = FitSpec(gap=5, models=ModelsConfig(families=("logreg",)))
    y = features.y.copy()
    y.iloc[300:600] = 1  # the whole last half of the window: its calibration slice sees only class 1
    outcome = run_fold_job(job, replace(features, y=y), spec)
    assert outcome.result.calibration == ONE_CLASS_SLICE
    predictions = outcome.predictions
    floor = PROBABILITY_FLOOR
    np.testing.assert_allclose(predictions["p"], predictions["p_uncalibrated"].clip(floor, 1 - floor), atol=1e-9)

    y = features.y.copy()
    y.iloc[:600] = 0
    y.iloc[580:600] = 1  # the fitting part sees only class 0 (the slice, the window's last fifth, both)
    with pytest.raises(InsufficientDataError) as info:
        run_fold_job(job, replace(features, y=y), spec)
    assert str(info.value).startswith("fold 1 (logreg): the fitting part of a training window (")
    assert str(info.value).endswith(
        "holds a single class; a longer first training window (splits.min_train_size) or a larger "
        "calibration.fraction gives it more rows"
    )


def test_with_a_series_level_each_fold_shrinks_toward_its_test_rows_levels(walk_forward_run):
    """``features.level_window``: the folds' shrinkage target is each test row's series level, the base models
    are fitted as without it (same raw probabilities), and the challenger carries the level column."""
    shared = walk_forward_run.features
    assert LEVEL_COLUMN in shared.feature_names  # the default; this test sets its own
    plain_X = model_inputs(shared.X)
    plain = replace(shared, X=plain_X, feature_names=tuple(plain_X.columns))
    # A level that moves (the known labels' share over 50 rows): the raw fits must not depend on it.
    level = (
        pd.Series(shared.y.to_numpy(dtype=float))
        .groupby(shared.meta["symbol"].to_numpy())
        .transform(lambda s: s.shift(HORIZON).rolling(50, min_periods=1).mean())
    )
    leveled = replace(
        plain, X=plain_X.assign(**{LEVEL_COLUMN: level.to_numpy()}), feature_names=(*plain.feature_names, LEVEL_COLUMN)
    )
    before = run_walk_forward(plain, walk_forward_run.spec).predictions
    result = run_walk_forward(leveled, walk_forward_run.spec)
    after = result.predictions
    np.testing.assert_allclose(after["p_uncalibrated"].to_numpy(), before["p_uncalibrated"].to_numpy())
    np.testing.assert_allclose(before["shrink_target"].to_numpy(), before["base_rate"].to_numpy())  # no level
    by_row = pd.Series(level.to_numpy(), index=pd.MultiIndex.from_frame(shared.meta[["symbol", "timestamp"]]))
    expected = by_row.reindex(pd.MultiIndex.from_frame(after[["symbol", "timestamp"]])).to_numpy()
    known = ~np.isnan(expected)
    assert known.mean() > 0.95
    np.testing.assert_allclose(after["shrink_target"].to_numpy()[known], expected[known])
    assert not np.allclose(after["shrink_target"].to_numpy(), after["base_rate"].to_numpy())
    model = fit_challenger(leveled, result.selected, walk_forward_run.spec, result)
    assert model.level_column_ == LEVEL_COLUMN and LEVEL_COLUMN not in model.feature_names_in_


# --- calibration.require_edge: a challenger family must beat the base rate out of sample ---------------


def _without_signal(run):
    """The shared run's features with labels drawn independently of every feature (and of the known label)."""
    rng = np.random.default_rng(5)
    y = pd.Series(rng.binomial(1, 0.4, len(run.features.y)), index=run.features.y.index, name=run.features.y.name)
    meta = run.features.meta.assign(known_label=np.nan)
    return replace(run.features, y=y, meta=meta)


def _with_edge(spec, **calibration):
    """``spec`` with ``calibration.require_edge`` at 0.95 (off by default but for a direction target) and any other
    calibration settings."""
    update = {"require_edge": 0.95, **calibration}
    return spec.model_copy(update={"calibration": spec.calibration.model_copy(update=update)})


def test_the_challenger_family_shows_its_edge_over_the_base_rate_on_the_walk_forward(walk_forward_run):
    assert walk_forward_run.result.edge is None  # off by default for volatility: nothing tested, nothing reported
    spec = _with_edge(walk_forward_run.spec)
    result = run_walk_forward(walk_forward_run.features, spec)  # GARCH volatility: real signal
    edge = result.edge
    assert edge is not None and edge.family == result.selected and edge.against == "base_rate"
    assert edge.shown and edge.low <= edge.diff <= edge.high < 0
    assert edge.level == 0.95 and edge.rows == len(result.selected_predictions())
    assert not result.without_edge and "no walk-forward edge" not in result.selection_reason()
    model = fit_challenger(walk_forward_run.features, result.selected, spec, result)
    assert model.shrinkage_ == 1.0 and model.level_column_ == LEVEL_COLUMN
    assert np.ptp(model.predict_proba(walk_forward_run.features.X)[:, 1]) > 0.1


def test_without_an_edge_over_the_base_rate_the_challenger_predicts_what_the_base_rate_baseline_does(
    walk_forward_run,
):
    from driftline.baselines import BaselineModel

    features = _without_signal(walk_forward_run)
    # Shrinkage off, so that only the edge's rule can flatten the challenger (calibration.shrink: auto would
    # shrink a family that lost to the base rate, as these may).
    spec = _with_edge(walk_forward_run.spec, shrink=False)
    result = run_walk_forward(features, spec)
    assert result.edge is not None and not result.edge.shown and result.without_edge
    assert "no walk-forward edge over the base rate" in result.selection_reason()
    # The walk-forward reports what the family did; only the challenger is replaced.
    assert result.pooled[result.selected]["auc"] != 0.5
    model = fit_challenger(features, result.selected, spec, result)
    baseline = BaselineModel("base_rate").fit(features.X, features.y.to_numpy(), None)
    np.testing.assert_array_equal(
        model.predict_proba(features.X)[:, 1], baseline.predict_proba(features.X, None)
    )  # exactly: the same Laplace-smoothed share, not each series' recent share (level)
    # Off: the family stays the challenger. Here its sigmoid on the newest slice found no signal either, so it
    # predicts that slice's share of positives, not the development rows'.
    off = spec.model_copy(update={"calibration": spec.calibration.model_copy(update={"require_edge": None})})
    kept = run_walk_forward(features, off)
    assert kept.edge is None and not kept.without_edge
    kept_p = fit_challenger(features, kept.selected, off, kept).predict_proba(features.X)[:, 1]
    assert np.abs(kept_p - baseline.predict_proba(features.X, None)).min() > 0.005
