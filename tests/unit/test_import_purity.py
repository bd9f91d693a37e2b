"""The core is importable without Prefect or MLflow (only registry, tasks and flows bring them in)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import importlib, json, pkgutil, sys
import driftline
names = sorted(m.name for m in pkgutil.iter_modules(driftline.__path__) if m.name != "registry")
for name in names:
    importlib.import_module(f"driftline.{name}")
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"prefect", "mlflow"})
print(json.dumps({"modules": names, "heavy": heavy}))
"""


def _probe(code: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_core_modules_do_not_import_prefect_or_mlflow():
    found = _probe(PROBE)
    assert {
        "config",
        "ingest",
        "contracts",
        "features",
        "splits",
        "calibration",
        "models",
        "metrics",
        "training",
        "promotion",
        "report",
        "synthetic",
    } <= set(found["modules"])
    assert found["heavy"] == []


def test_the_probe_can_see_a_heavy_import():
    """The check above is live: importing registry does pull MLflow in."""
    found = _probe(PROBE.replace('if m.name != "registry"', "if m.name == 'registry'"))
    assert found["modules"] == ["registry"]
    assert "mlflow" in found["heavy"]
