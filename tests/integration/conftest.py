"""Integration fixtures: MLflow in a temp dir, the fast config, small data (the Prefect server: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from driftline.adapters import registry
from driftline.calibration import CalibratedModel
from driftline.config import ModelsConfig, Settings
from driftline.models import make_estimator
from driftline.synthetic import make_labelled_series, make_ohlcv_panel
from tests.servers import fresh_mlflow_store

# Small but real: two families, three folds, a GARCH panel with genuine volatility regimes.
FAST_CONFIG = {
    "contract": {"min_rows_per_symbol": 100},
    "splits": {"n_splits": 3, "min_train_size": 200},
    "evaluation": {"window": 250},
    # 500 hold-out rows leave ECE a sampling noise floor near 0.04; these tests are about wiring.
    "promotion": {"ece_cap": 0.15},
    # The Evidently report of training vs hold-out costs ~15 s per training (importing Evidently);
    # test_training_flow checks it, the wiring tests skip it.
    "drift": {"training_report": False},
    "models": {
        "families": ["logreg", "lightgbm"],
        "params": {"lightgbm": {"n_estimators": 60, "n_jobs": 1}},
    },
}


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh MLflow store (SQLite + local artifacts) and Driftline home per test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DRIFTLINE_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_mlflow_store(home / "mlflow.db"))
    return home


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump({"name": "it", **FAST_CONFIG}))
    return path


@pytest.fixture
def ohlcv_csv(tmp_path: Path) -> Path:
    path = tmp_path / "panel.csv"
    make_ohlcv_panel(n_symbols=2, n_days=900, seed=3).to_csv(path, index=False)
    return path


@pytest.fixture
def labelled_csv(tmp_path: Path) -> Path:
    """A labelled series whose label depends on two of its columns: a real, learnable signal."""
    path = tmp_path / "labelled.csv"
    make_labelled_series(n_rows=1500, seed=11).to_csv(path, index=False)
    return path


def register_versions(name: str, count: int):
    """Register ``count`` small calibrated models as versions 1..count of ``name``; returns a scoring sample."""
    frame = make_labelled_series(n_rows=600, seed=2)
    X, y = frame[["x0", "x1", "x2", "x3"]], frame["y"]
    experiment = registry.configure(Settings.from_env(), name)
    for seed in range(1, count + 1):
        model = CalibratedModel(make_estimator("logreg", ModelsConfig(seed=seed)), method="sigmoid").fit(X, y)
        run_id = registry.start_run(experiment, f"v{seed}", {})
        registry.log_model(run_id, model, list(X.columns), X, name)
        registry.finish_run(run_id)
    return X.head(50)


def run_log(prefect_api: str, flow_run_id: str, containing: str, timeout: float = 30) -> list[str]:
    """The messages of a flow run's log as the Prefect UI shows them (read from the API), once one of them
    contains ``containing``: the run's logs are sent to the API in batches, after the flow has returned."""
    import time

    import httpx

    # Explicit limit/offset/sort: prefect 3.8.8's client sends nulls that its own server refuses.
    query = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200, "offset": 0, "sort": "TIMESTAMP_ASC"}
    deadline = time.monotonic() + timeout
    while True:
        found = httpx.post(f"{prefect_api}/logs/filter", json=query, timeout=30).raise_for_status().json()
        messages = [log["message"] for log in found]
        if any(containing in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)
