"""Shared test set-up: offline defaults before anything imports Prefect, MLflow or GX."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

from driftline.cli import OFFLINE_DEFAULTS
from tests.servers import TEMPLATES_VARIABLE, prefect_server

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
# Each command's local Prefect API stops with it: a test's tmp PREFECT_HOME is gone after the test, and the
# suite leaves no server behind. tests/unit/test_local_api.py tests the shared API (the users' default).
os.environ.setdefault("DRIFTLINE_LOCAL_API_IDLE_SECONDS", "0")


MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def pytest_configure(config: pytest.Config) -> None:
    """One folder of migrated database templates for the session (tests/servers.py), made by the controller
    before xdist starts its workers, which inherit the variable."""
    if hasattr(config, "workerinput") or os.environ.get(TEMPLATES_VARIABLE):
        return
    config._driftline_templates = tempfile.mkdtemp(prefix="driftline-db-templates-")
    os.environ[TEMPLATES_VARIABLE] = config._driftline_templates


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A `prefect server start` (all its services: triggers, lease repossessor...) shared by the tests a
    worker runs (each has its own model names and MLflow store; the tests that restart or deploy to a
    server start their own). Its URL for subprocesses; in-process Prefect calls point at it too."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_server(tmp_path_factory.mktemp("prefect")) as api, temporary_settings({PREFECT_API_URL: api}):
        yield api


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = getattr(config, "_driftline_templates", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(TEMPLATES_VARIABLE, None)


@pytest.fixture(autouse=True)
def _isolated_mlflow_uris():
    """MLflow keeps its tracking and registry URIs in module globals that outlive a test and override
    MLFLOW_TRACKING_URI, and set_registry_uri exports MLFLOW_REGISTRY_URI for subprocesses; put back
    exactly what was there before the test (globals unset if MLflow was not imported yet)."""
    environment = {key: os.environ.get(key) for key in MLFLOW_URI_VARIABLES}
    saved = (None, None)
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    yield
    for key, value in environment.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
