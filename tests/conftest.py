"""Shared test set-up: offline defaults before anything imports Prefect, MLflow or GX."""

from __future__ import annotations

import os
import sys

import pytest

from driftline.cli import OFFLINE_DEFAULTS

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(autouse=True)
def _isolated_mlflow_uris():
    """MLflow keeps its tracking and registry URIs in module globals that outlive a test and override
    MLFLOW_TRACKING_URI; put back exactly what was there (unset if MLflow was not imported yet)."""
    saved = (None, None)
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    yield
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
