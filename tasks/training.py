"""Feature building, walk-forward evaluation and the challenger fit."""

from __future__ import annotations

import pandas as pd
from prefect import task

from driftline.calibration import CalibratedModel
from driftline.config import PipelineConfig
from driftline.evaluation import holdout_split
from driftline.features import FeatureSet, build_features
from driftline.training import WalkForwardResult, fit_challenger, run_walk_forward


@task(name="build-features")
def build_features_task(frame: pd.DataFrame, config: PipelineConfig) -> FeatureSet:
    """Point-in-time features and the target."""
    return build_features(frame, config.features, config.target)


@task(name="walk-forward")
def walk_forward_task(features: FeatureSet, config: PipelineConfig) -> WalkForwardResult:
    """Fit, calibrate and score every model family on each fold."""
    return run_walk_forward(
        features,
        config.splits,
        config.gap,
        config.calibration,
        config.models,
        config.metrics,
        price_target=config.target.kind == "direction",
    )


@task(name="fit-challenger")
def fit_challenger_task(features: FeatureSet, family: str, config: PipelineConfig) -> CalibratedModel:
    """Refit the selected family on all labelled rows."""
    return fit_challenger(features, family, config.calibration, config.models, config.gap, config.threshold)


@task(name="hold-out-window")
def holdout_task(features: FeatureSet, config: PipelineConfig) -> tuple[FeatureSet, FeatureSet]:
    """Development rows, and the evaluation window the challenger never trains on."""
    return holdout_split(features, config.evaluation.window, config.gap)
