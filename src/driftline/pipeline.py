"""The training pipeline's data steps called plainly, in the flow's order, without Prefect or MLflow.

Used where a run must not touch the registry or the task cache: ``driftline reproduce`` retrains from
a version's recorded inputs and compares the walk-forward metrics.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from driftline.config import PipelineConfig
from driftline.contracts import enforce_contract, validate_frame
from driftline.evaluation import holdout_split
from driftline.features import build_features
from driftline.ingest import load_data
from driftline.sizing import size_to_data
from driftline.training import WalkForwardResult, run_walk_forward


@dataclass(frozen=True)
class WalkForwardRun:
    data_sha256: str
    source: str
    result: WalkForwardResult


def walk_forward_from_source(config: PipelineConfig, stage_root: Path | None = None) -> WalkForwardRun:
    """Read, validate, build features, hold out the evaluation window and walk forward, as training does."""
    with tempfile.TemporaryDirectory() as scratch:
        loaded = load_data(config.data, need_target=config.target.needs_label, stage_root=stage_root or Path(scratch))
    report = validate_frame(
        loaded.frame, config.contract, config.model_name, source_values=loaded.source_values(), source=loaded.source
    )
    clean = enforce_contract(report, config.contract, loaded.source)
    features = build_features(
        clean, config.features, config.target, source=loaded.source, target_name=loaded.columns.target
    )
    config = size_to_data(config, features.times).config
    development, _ = holdout_split(features, config.evaluation.window, config.gap)
    spec = config.fit_spec  # what the training flow's walk-forward task is given
    result = run_walk_forward(
        development, spec.splits, spec.gap, spec.calibration, spec.models, spec.metrics, price_target=spec.is_direction
    )
    return WalkForwardRun(loaded.content_hash, loaded.source, result)
