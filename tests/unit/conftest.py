"""Small fixtures for the unit suite: synthetic panels, short feature windows, one shared walk-forward run."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

from driftline.config import (
    CalibrationConfig,
    DataConfig,
    FeatureConfig,
    FitSpec,
    ModelsConfig,
    SplitConfig,
    TargetConfig,
    ThresholdConfig,
)
from driftline.features import FeatureSet, build_features
from driftline.ingest import detect_columns, normalise_frame
from driftline.synthetic import make_ohlcv_panel

# No example database, and hypothesis's caches in the temp dir: nothing is written into the checkout.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "driftline-unit-hypothesis")
settings.register_profile(
    "driftline-unit", database=None, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("driftline-unit")

# Windows short enough that a few hundred rows per symbol leave most rows usable.
SMALL_FEATURES = FeatureConfig(
    return_windows=(1, 5), vol_short=5, vol_mid=10, vol_long=20, zscore_window=40, median_window=40
)
HORIZON = 5


def to_canonical(raw: pd.DataFrame, data: DataConfig | None = None, need_target: bool = False) -> pd.DataFrame:
    """Raw vendor-style frame -> canonical frame, as ``load_data`` does after reading the file."""
    data = data or DataConfig()
    return normalise_frame(raw, detect_columns(raw, data, "memory", need_target), "memory")


@pytest.fixture
def canonical() -> Callable[..., pd.DataFrame]:
    return to_canonical


@pytest.fixture(scope="session")
def small_features() -> FeatureConfig:
    return SMALL_FEATURES


@pytest.fixture(scope="session")
def vol_target() -> TargetConfig:
    return TargetConfig(kind="volatility", horizon=HORIZON, median_window=40)


@pytest.fixture(scope="session")
def _panel_raw() -> pd.DataFrame:
    return make_ohlcv_panel(n_symbols=2, n_days=300, seed=3)


@pytest.fixture
def panel(_panel_raw: pd.DataFrame) -> pd.DataFrame:
    """Canonical two-symbol OHLCV panel, 300 business days each (a fresh copy per test)."""
    return to_canonical(_panel_raw.copy())


@dataclass(frozen=True)
class WalkForwardRun:
    """The shared walk-forward: its features, fit spec (no action threshold: the folds' models tune none
    either) and result; the spec's sections by name for the tests that vary one."""

    features: FeatureSet
    spec: FitSpec
    result: object  # driftline.training.WalkForwardResult

    splits = property(lambda self: self.spec.splits)
    gap = property(lambda self: self.spec.gap)
    calibration = property(lambda self: self.spec.calibration)
    models = property(lambda self: self.spec.models)
    metrics = property(lambda self: self.spec.metrics)


@pytest.fixture(scope="session")
def walk_forward_run() -> WalkForwardRun:
    """One walk-forward evaluation, shared by the training and report tests (about a second).

    GARCH(1,1) with strong clustering (alpha 0.15, beta 0.83), four symbols, 1000 days: the volatility
    target is genuinely predictable there.
    """
    from driftline.training import run_walk_forward

    raw = make_ohlcv_panel(n_symbols=4, n_days=1000, seed=11, garch=(1e-5, 0.15, 0.83))
    frame = to_canonical(raw)
    features = build_features(
        frame,
        FeatureConfig(return_windows=(1, 5), vol_short=5, vol_mid=10, vol_long=20, zscore_window=40, median_window=100),
        TargetConfig(kind="volatility", horizon=HORIZON, median_window=100),
    )
    spec = FitSpec(
        splits=SplitConfig(n_splits=3, min_train_size=200),
        gap=HORIZON,
        calibration=CalibrationConfig(method="sigmoid", fraction=0.2),
        models=ModelsConfig(
            families=("logreg", "lightgbm"),
            params={"lightgbm": {"n_estimators": 40, "min_child_samples": 20, "n_jobs": 1}},
        ),
        threshold=ThresholdConfig(objective="none"),
    )
    return WalkForwardRun(features, spec, run_walk_forward(features, spec))
