"""Drill fixtures: a real `prefect server start` (its lease repossessor runs, unlike the test harness's
ephemeral API) and MLflow on SQLite in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline import registry
from driftline.calibration import CalibratedModel
from driftline.config import ModelsConfig, Settings
from driftline.models import make_estimator
from driftline.synthetic import make_labelled_series
from tests.servers import prefect_server


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory) -> str:
    """A Prefect server of this module; in-process Prefect calls point at it too."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_server(tmp_path_factory.mktemp("prefect")) as api, temporary_settings({PREFECT_API_URL: api}):
        yield api


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fresh MLflow store (SQLite + local artifacts) and Driftline home; returns the tracking URI."""
    import mlflow

    home = tmp_path / "home"
    home.mkdir()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # mlflow.set_*_uri also export MLFLOW_*_URI to os.environ (and so to every subprocess started later):
    # monkeypatch owns both variables so they are put back after the test.
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("DRIFTLINE_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def log_models(count: int) -> tuple[list[str], object]:
    """Log ``count`` small calibrated models once; returns their model URIs and a scoring sample.

    Versions of many registered models can point at them (``create_model_version``): cheap to set up.
    """
    frame = make_labelled_series(n_rows=600, seed=2)
    X, y = frame[["x0", "x1", "x2", "x3"]], frame["y"]
    experiment = registry.configure(Settings.from_env(), "drill-models")
    sources = []
    for seed in range(1, count + 1):
        model = CalibratedModel(make_estimator("logreg", ModelsConfig(seed=seed)), method="sigmoid").fit(X, y)
        run_id = registry.start_run(experiment, f"m{seed}", {})
        sources.append(registry.log_model(run_id, model, list(X.columns), X, "driftline-drill-source"))
        registry.finish_run(run_id)
    return [s.model_uri for s in sources], X.head(50)


def history_consistent(aliases: registry.MlflowAliasRegistry, name: str) -> dict[str, tuple]:
    """Per alias: (where it points, what the last recorded event says); equal when the history is consistent."""
    events = aliases.history(name)
    out = {}
    for alias in ("champion", "previous-champion"):
        last = [e for e in events if e["alias"] == alias]
        out[alias] = (aliases.alias_version(name, alias), last[-1]["version"] if last else None)
    return out


def driftline_env(api: str, tracking_uri: str, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a `driftline` subprocess against the drill's servers, with its own Prefect and Driftline home."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLINE_", "AWS_"))}
    env.update(
        PREFECT_API_URL=api,
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_TRACKING_URI=tracking_uri,
        DRIFTLINE_HOME=str(home),
        **extra,
    )
    return env
