"""MLflow's URIs are process-wide: each configured run must point both tracking and registry at its own
store, and leave the environment as the user set it."""

from __future__ import annotations

import os

import mlflow

from driftline import registry
from driftline.config import Settings


def test_second_store_in_one_process_gets_the_registry_too(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    for name in ("a", "b"):
        uri = f"sqlite:///{tmp_path / name / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        registry.configure_tracking(Settings.from_env())
        assert mlflow.get_tracking_uri() == uri
        assert mlflow.get_registry_uri() == uri
        assert "MLFLOW_REGISTRY_URI" not in os.environ, "MLflow's export must not leak to later runs or subprocesses"
        assert os.environ["MLFLOW_TRACKING_URI"] == uri


def test_a_separate_registry_named_by_the_user_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'tracking.db'}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'registry.db'}")
    registry.configure_tracking(Settings.from_env())
    assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path / 'registry.db'}"
    assert os.environ["MLFLOW_REGISTRY_URI"] == f"sqlite:///{tmp_path / 'registry.db'}"


def test_the_default_local_store_is_not_exported(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path))
    registry.configure_tracking(Settings.from_env())
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert "MLFLOW_TRACKING_URI" not in os.environ
