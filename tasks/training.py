"""Feature building, walk-forward evaluation and the challenger fit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from prefect import task

from driftline.calibration import CalibratedModel
from driftline.config import PipelineConfig
from driftline.evaluation import holdout_split
from driftline.features import FeatureSet, build_features
from driftline.ingest import LoadedData
from driftline.training import WalkForwardResult, fit_challenger, run_walk_forward
from tasks.data import CACHE_DAYS, data_cache_key


def _features_key(context: Any, parameters: dict[str, Any]) -> str:
    config = parameters["config"]
    return data_cache_key("features", parameters["loaded"], config.data, config.contract, config.features, config.target)


@task(name="build-features", cache_key_fn=_features_key, cache_expiration=timedelta(days=CACHE_DAYS), persist_result=True)
def build_features_task(loaded: LoadedData, clean: pd.DataFrame, config: PipelineConfig) -> FeatureSet:
    """Point-in-time features and the target from the clean rows (cached on the data hash and config)."""
    return build_features(clean, config.features, config.target, source=loaded.source, target_name=loaded.columns.target)


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
