"""Shared test set-up: offline defaults before anything imports Prefect, MLflow or GX."""

from __future__ import annotations

import os

from driftline.cli import OFFLINE_DEFAULTS

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
