"""Streaming learners and the streamed walk-forward give the in-memory path's results (stated tolerances)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.config import (
    CalibrationConfig,
    ContractConfig,
    FitSpec,
    MetricsConfig,
    ModelsConfig,
    ScaleConfig,
    SplitConfig,
    ThresholdConfig,
)
from driftline.feature_store import build_feature_store
from driftline.features import LEVEL_COLUMN, FeatureSet, build_features
from driftline.models import make_estimator, with_label_defaults
from driftline.streaming import fit_streaming, run_walk_forward_streaming, streaming_folds
from driftline.training import run_walk_forward, walk_forward_jobs

# Small but real: few trees keep a fit well under a second.
MODELS = ModelsConfig(
    families=("logreg", "xgboost", "lightgbm"),
    linear_base=(),  # the streamed path's plain boosters, in memory too: the two paths must agree
    params={"xgboost": {"n_estimators": 40, "n_jobs": 1}, "lightgbm": {"n_estimators": 40, "n_jobs": 1}},
)
SPLITS = SplitConfig(n_splits=3, min_train_size=80)
GAP = 5


@pytest.fixture(scope="module")
def stored(_panel_raw, small_features, vol_target, tmp_path_factory):
    """The two-symbol panel's features in memory (rounded to the store's float32) and in a store."""
    from tests.unit.conftest import to_canonical

    frame = to_canonical(_panel_raw.copy())
    root = tmp_path_factory.mktemp("streaming")
    frame.to_parquet(root / "stage", partition_cols=["symbol"])
    store = build_feature_store(
        root / "stage", root / "store", ContractConfig(), small_features, vol_target, validate=False
    ).store
    features = build_features(frame, small_features, vol_target)
    # The store holds float32: the same values in memory isolate the learners from the rounding. It holds no
    # series level (the streamed path shrinks toward the window's share): neither do these.
    names = tuple(n for n in features.feature_names if n != LEVEL_COLUMN)
    assert LEVEL_COLUMN in features.feature_names and names == store.feature_names
    rounded = FeatureSet(
        X=features.X[list(names)].astype("float32").astype("float64"),
        y=features.y,
        meta=features.meta,
        feature_names=names,
        latest=features.latest,
    )
    return store, rounded


@pytest.mark.parametrize("family", ["xgboost", "lightgbm"])
def test_streamed_trees_equal_in_memory_fit(stored, family):
    store, features = stored
    n = store.n_rows
    model = fit_streaming(family, store, (0, n), MODELS, batch_rows=97)  # several batches, split mid-window
    assert len(store.batch_bounds(0, n, 97)) > 3
    # In memory, the training steps set XGBoost's leaf weight from the labels (with_label_defaults): so does the stream.
    reference = with_label_defaults(make_estimator(family, MODELS), features.y).fit(features.X, features.y)
    expected = reference.predict_proba(features.X)[:, 1]
    np.testing.assert_allclose(model.predict(store.read().X), expected, rtol=0, atol=1e-6)


def test_streamed_logreg_close_to_lbfgs(stored):
    """SGD on batches is not L-BFGS on all rows: its log loss is within 0.01 of it (in-sample)."""
    from sklearn.metrics import log_loss

    store, features = stored
    model = fit_streaming("logreg", store, (0, store.n_rows), MODELS, batch_rows=97)
    reference = make_estimator("logreg", MODELS).fit(features.X, features.y)
    ours = log_loss(features.y, model.predict(store.read().X))
    theirs = log_loss(features.y, reference.predict_proba(features.X)[:, 1])
    assert ours == pytest.approx(theirs, abs=0.01)
    assert ours < log_loss(features.y, np.full(len(features.y), features.y.mean())) - 0.01  # it learned something


def test_unknown_family_is_refused(stored):
    with pytest.raises(ValueError, match=r"random_forest.*no streaming learner"):
        run_walk_forward_streaming(stored[0], FitSpec(splits=SPLITS, gap=GAP, models=ModelsConfig()))


def test_streamed_walk_forward_equals_in_memory(stored):
    """Same folds, same calibration slices; the trees' metrics equal to 1e-6, logreg's within 0.01."""
    store, features = stored
    folds = streaming_folds(store, _spec())
    jobs = [j for j in walk_forward_jobs(features, _spec()) if j.family == "xgboost"]
    assert [(f.train, f.test) for f in folds] == [
        ((j.train.start, j.train.stop), (j.test.start, j.test.stop)) for j in jobs
    ]
    spec = _spec(CalibrationConfig(method="auto"))
    streamed = run_walk_forward_streaming(store, spec, batch_rows=150)
    in_memory = run_walk_forward(features, spec)
    for family in ("xgboost", "lightgbm"):
        for key in ("log_loss", "auc", "brier", "ece", "accuracy"):
            assert streamed.pooled[family][key] == pytest.approx(in_memory.pooled[family][key], abs=1e-6), (family, key)
    assert streamed.calibration == in_memory.calibration
    assert streamed.pooled["logreg"]["log_loss"] == pytest.approx(in_memory.pooled["logreg"]["log_loss"], abs=0.01)
    mine = streamed.predictions.query("family == 'xgboost'")
    theirs = in_memory.predictions.query("family == 'xgboost'")
    pd.testing.assert_series_equal(
        mine["timestamp"].reset_index(drop=True), theirs["timestamp"].reset_index(drop=True), check_names=False
    )


def test_a_streamed_walk_forward_tests_the_edge_over_the_base_rate_as_in_memory(stored):
    """calibration.require_edge on the streamed path: the base rate runs through the same folds (each window's
    smoothed share), so the same family's edge is the in-memory one; its results are not kept as a baseline.
    Without an edge the streamed challenger predicts the development rows' share, the constant the streamed
    comparison of a first model scores against (Trained.base_rate): a tie, never a promotion."""
    from dataclasses import replace

    from driftline.streaming import fit_challenger_streaming

    store, features = stored
    spec = _spec(CalibrationConfig(require_edge=0.95)).model_copy(
        update={"models": MODELS.model_copy(update={"families": ("xgboost",)})}
    )
    streamed = run_walk_forward_streaming(store, spec, batch_rows=150)
    in_memory = run_walk_forward(features, spec)
    assert streamed.edge is not None and in_memory.edge is not None and streamed.edge.family == "xgboost"
    for key in ("diff", "low", "high", "rows", "level", "block_length"):
        assert getattr(streamed.edge, key) == pytest.approx(getattr(in_memory.edge, key), abs=1e-6), key
    assert streamed.baselines == {} and streamed.baseline_folds == [] and in_memory.baselines
    assert run_walk_forward_streaming(store, _spec(), batch_rows=150).edge is None  # not asked: not tested

    # Either way, whatever this small panel showed:
    edge = replace(streamed, edge=replace(streamed.edge, low=-0.02, high=-0.01))
    no_edge = replace(streamed, edge=replace(streamed.edge, low=-0.01, high=0.01))
    assert not edge.flattens("xgboost") and no_edge.flattens("xgboost")
    shown = fit_challenger_streaming(store, store.n_rows, "xgboost", spec, edge)
    flat = fit_challenger_streaming(store, store.n_rows, "xgboost", spec, no_edge)
    assert np.ptp(shown.predict_proba(features.X)[:, 1]) > 0.05
    np.testing.assert_array_equal(flat.predict_proba(features.X)[:, 1], float(np.mean(store.labels)))


def _spec(calibration: CalibrationConfig | None = None) -> FitSpec:
    return FitSpec(
        splits=SPLITS,
        gap=GAP,
        label_delay=GAP,
        calibration=calibration or CalibrationConfig(),
        models=MODELS,
        metrics=MetricsConfig(),
        threshold=ThresholdConfig(objective="f1"),
        is_direction=False,
        scale=ScaleConfig(batch_rows=1_000),
    )


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "logreg"])
def test_streamed_challenger_equals_the_in_memory_refit(stored, family):
    """The challenger refitted on every development row, streamed: the same calibration slice, calibrator,
    level, shrinkage and threshold as ``fit_challenger`` on the same (float32) values; the trees' probabilities
    equal to 1e-6, logistic regression (SGD against L-BFGS) within 0.02."""
    from driftline.streaming import fit_challenger_streaming
    from driftline.training import fit_challenger

    store, features = stored
    spec = _spec()
    streamed = fit_challenger_streaming(store, store.n_rows, family, spec)
    in_memory = fit_challenger(features, family, spec)
    assert streamed.n_calibration_rows_ == in_memory.n_calibration_rows_
    assert streamed.base_rate_ == pytest.approx(in_memory.base_rate_, abs=1e-12)
    assert streamed.level_shift_ == pytest.approx(in_memory.level_shift_, abs=1e-12)
    ours, theirs = streamed.predict_proba(features.X)[:, 1], in_memory.predict_proba(features.X)[:, 1]
    if family == "logreg":
        assert np.abs(ours - theirs).max() < 0.02
        return
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert streamed.threshold_ == pytest.approx(in_memory.threshold_, abs=1e-9)
    assert list(streamed.feature_names_in_) == list(features.feature_names)


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "logreg"])
def test_streamed_challenger_explains_pickles_and_ranks_its_features(stored, family, tmp_path):
    """What the registry and the drift reference do with a challenger: SHAP values that add up to the base
    model's margin, native importance over the store's features, and a joblib round trip that predicts
    the same."""
    import joblib

    from driftline.explain import base_margin, explain_model
    from driftline.models import native_importance
    from driftline.streaming import fit_challenger_streaming

    store, features = stored
    model = fit_challenger_streaming(store, store.n_rows, family, _spec())
    rows = features.X.head(50)
    explanation = explain_model(model, rows)
    margin, space = base_margin(model.base_estimator_, rows)
    assert explanation.space == space
    np.testing.assert_allclose(explanation.values.sum(axis=1) + explanation.base, margin, atol=1e-4)
    importance, _ = native_importance(model.base_estimator_, list(store.feature_names))
    assert importance.sum() == pytest.approx(1.0) and (importance >= 0).all() and importance.max() > 0
    joblib.dump(model, tmp_path / "model.joblib")
    again = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(again.predict_proba(rows), model.predict_proba(rows))


def test_streaming_leaves_out_what_it_cannot_run_or_refuses_it_when_forced():
    from driftline.config import PipelineConfig
    from driftline.errors import ConfigError
    from driftline.pipeline import streamable

    auto = PipelineConfig.model_validate({"models": {"tuning": {"enabled": True}}})
    config, said = streamable(auto)
    assert config.models.families == ("logreg", "xgboost", "lightgbm") and not config.models.tuning.enabled
    assert config.models.linear_base == ()  # LightGBM streams as a plain booster, and the reason says so
    assert said == (
        "streaming leaves out models.families ['random_forest'] (no streaming learner), models.tuning, "
        "the linear base of models.linear_base ['lightgbm'] (plain boosters)"
    )
    assert streamable(config) == (config, "")
    # The linear base alone is no reason to refuse a forced streaming run: its boosters stream plain.
    boosters = PipelineConfig.model_validate({"scale": {"path": "streaming"}, "models": {"families": ["lightgbm"]}})
    plain, said = streamable(boosters)
    assert plain.models.linear_base == () and said.endswith("models.linear_base ['lightgbm'] (plain boosters)")
    forced = PipelineConfig.model_validate({"scale": {"path": "streaming"}})
    refused = r"scale.path: streaming does not support models.families \['random_forest'\]"
    with pytest.raises(ConfigError, match=refused):
        streamable(forced)
    only_forest = PipelineConfig.model_validate({"models": {"families": ["random_forest"]}})
    with pytest.raises(ConfigError, match="streaming families"):
        streamable(only_forest)


def test_the_path_is_chosen_on_unvalidated_rows_without_a_warning_or_an_error(panel, canonical):
    """The choice comes before the contract: bad prices (left for the contract to quarantine) raise no
    numpy warning, and a label that is not 0/1 does not stop it (the contract or the features say so later)."""
    import warnings

    from driftline.config import DataConfig, PipelineConfig
    from driftline.pipeline import data_path_of
    from driftline.synthetic import make_labelled_series

    bad = panel.copy()
    bad.loc[bad.index[:5], "close"] = -1.0
    tiny = {"scale": {"streaming_above_cells": 10}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = data_path_of(bad, PipelineConfig.model_validate(tiny))
    assert chosen.path == "streaming" and chosen.reason.startswith(f"{len(bad):,} rows x ")
    labelled = canonical(make_labelled_series(n_rows=200, n_features=3, seed=2), DataConfig(target_col="y"), True)
    labelled.loc[labelled.index[:3], "target"] = 2
    config = PipelineConfig.model_validate({**tiny, "target": {"kind": "label"}, "data": {"target_col": "y"}})
    assert data_path_of(labelled, config).reason.startswith("200 rows x 3 features")


def test_data_path_choice_and_its_reason():
    from driftline.config import ScaleConfig
    from driftline.streaming import choose_data_path

    small = choose_data_path(1_000_000, 50, ScaleConfig())
    assert small.path == "memory" and "50,000,000 cells <= scale.streaming_above_cells 50,000,000" in small.reason
    large = choose_data_path(1_000_001, 50, ScaleConfig())
    assert large.path == "streaming" and ">" in large.reason
    forced = choose_data_path(10, 2, ScaleConfig(path="streaming"))
    assert forced.as_dict() == {
        "path": "streaming",
        "reason": "scale.path: streaming (10 rows x 2 features = 20 cells)",
    }
    assert choose_data_path(10**9, 50, ScaleConfig(path="memory")).path == "memory"


def test_scale_out_bench_store_and_tree_rss(tmp_path):
    """The bench's store is a valid feature store split over symbols; the RSS sampler counts a child."""
    import subprocess
    import sys

    from benchmarks.scale_out import N_FEATURES, TreeRss, write_store
    from driftline.feature_store import FeatureStore

    store = FeatureStore(write_store(tmp_path / "s", 2_500, seed=1))
    assert store.n_rows == 2_500 and len(store.feature_names) == N_FEATURES
    batch = store.read(0, 100)
    assert batch.X.shape == (100, N_FEATURES) and batch.X.dtype == np.float32
    with TreeRss(interval=0.05) as alone:
        pass
    with TreeRss(interval=0.05) as with_child:
        code = "import numpy as np, time; a = np.ones(64 * 2**20 // 8); time.sleep(1.0)"
        subprocess.run([sys.executable, "-c", code], check=True)
    assert with_child.peak > alone.peak + 32 * 2**20  # the child's 64 MiB array counted


def test_a_streamed_window_whose_slice_holds_one_class_is_left_uncalibrated_as_in_memory(tmp_path):
    """A label series whose first window ends in one regime: the streamed fold keeps its base model's
    probability (no level shift toward a slice share of 1), as ``CalibratedModel`` does in memory."""
    from driftline.calibration import ONE_CLASS_SLICE, PROBABILITY_FLOOR
    from driftline.config import FeatureConfig, TargetConfig
    from driftline.streaming import run_fold_streaming

    rng = np.random.default_rng(3)
    n = 400
    x = rng.normal(size=n)
    y = (x + rng.normal(size=n) > 0).astype(int)
    y[100:150] = 1  # fold 1's window ends near row 140 (min_train_size 140): its last fifth sees one class
    frame = pd.DataFrame(
        {"symbol": "S", "timestamp": pd.date_range("2020-01-01", periods=n, freq="D"), "x": x, "target": y}
    )
    frame.to_parquet(tmp_path / "stage", partition_cols=["symbol"])
    target = TargetConfig(kind="label", label_lags=(1,))
    store = build_feature_store(
        tmp_path / "stage", tmp_path / "store", ContractConfig(), FeatureConfig(calendar=False), target, validate=False
    ).store
    spec = _spec().model_copy(
        update={"splits": SplitConfig(n_splits=2, min_train_size=140), "gap": 1, "label_delay": 1}
    )
    first = streaming_folds(store, spec)[0]
    outcome = run_fold_streaming(store, first, "logreg", spec)
    assert outcome.result.calibration == ONE_CLASS_SLICE
    p, raw = outcome.predictions["p"], outcome.predictions["p_uncalibrated"]
    np.testing.assert_allclose(p, raw.clip(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR), atol=1e-9)
