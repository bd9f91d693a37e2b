"""Rollback and history against a real MLflow tracking server started on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from driftline.adapters import registry
from tests import servers, warm
from tests.integration.conftest import register_versions

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    with servers.mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


def driftline(args: list[str], url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    return warm.run([str(BIN / "driftline"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_rollback_round_trip_and_history_on_a_tracking_server(mlflow_server, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    name = "driftline-served"
    sample = register_versions(name, 3)
    aliases = registry.MlflowAliasRegistry()
    aliases.move_champion(registry.ChampionMove(name, "1", None, "first model", "run-a"))
    aliases.move_champion(registry.ChampionMove(name, "2", "1", "beat v1 on hold-out", "run-b"))

    back = driftline(["rollback", "--name", "served", "--reason", "v2 misbehaves live"], mlflow_server, tmp_path)
    assert back.returncode == 0, back.stderr
    assert aliases.alias_version(name, "champion") == "1"
    assert aliases.alias_version(name, "previous-champion") == "2"
    # The restored champion is served through the tracking server's artifact proxy.
    scores = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(sample)
    assert scores["probability"].between(0, 1).all()

    forward = driftline(["rollback", "--name", "served", "--to-version", "3"], mlflow_server, tmp_path)
    assert forward.returncode == 0, forward.stderr
    assert aliases.alias_version(name, "champion") == "3"

    shown = driftline(["history", "--name", "served"], mlflow_server, tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("driftline-served: champion=3")
    rollbacks = [line for line in lines if " rollback " in line and " champion " in line]
    assert len(rollbacks) == 2
    assert "v2 misbehaves live" in rollbacks[0]
    # Oldest first: the first promotion precedes both rollbacks.
    assert lines.index(next(line for line in lines if "first model" in line)) < lines.index(rollbacks[0])


def test_rollback_to_unknown_version_is_a_clear_error(mlflow_server, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    name = "driftline-served2"
    register_versions(name, 1)
    registry.MlflowAliasRegistry().move_champion(registry.ChampionMove(name, "1", None, "first", "run-a"))

    done = driftline(["rollback", "--name", "served2", "--to-version", "9"], mlflow_server, tmp_path)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "driftline-served2 has no version 9; its versions: 1 (champion)" in done.stderr
    assert registry.MlflowAliasRegistry().alias_version(name, "champion") == "1"
