"""Shared test set-up: offline defaults before anything imports Prefect, MLflow or GX."""

from __future__ import annotations

import os
import sys

import pytest

from driftline.cli import OFFLINE_DEFAULTS

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_key, _value)


MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


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
