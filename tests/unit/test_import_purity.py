"""The layers: the pure core imports neither Prefect nor MLflow nor anything above it; the adapters (the
MLflow store) nothing of the shell or the orchestration; tasks and flows nothing of the shell.

    driftline/app/        the shell users touch   -> everything below
    tasks/ flows/         orchestration           -> adapters, core
    driftline/adapters/   MLflow                  -> core
    driftline/            the pure pipeline       -> itself only
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "driftline"
SHELL, ADAPTERS = CORE / "app", CORE / "adapters"

# What each layer may not import (a module or any module under it), at the top of a file or inside a function.
CORE_MAY_NOT = ("prefect", "prefect_dask", "mlflow", "driftline.app", "driftline.adapters", "tasks", "flows")
ADAPTERS_MAY_NOT = ("driftline.app", "tasks", "flows")
ORCHESTRATION_MAY_NOT = ("driftline.app",)
# The one way up: the import path that models registered before this layout pickled (driftline/registry.py).
PICKLE_PATH = ("src/driftline/registry.py", "driftline.adapters.pyfunc")


def imported_modules(tree: ast.Module) -> list[tuple[int, str]]:
    """Every module a file imports, with its line: ``import a.b`` and ``from a.b import c`` give ``a.b`` (and
    ``from a import b`` also ``a.b``, which may be a module)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def crossings(rel: str, tree: ast.Module, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        {
            f"{rel}:{line}: imports {module}"
            for line, module in imported_modules(tree)
            if any(module == f or module.startswith(f + ".") for f in forbidden)
            and not (rel == PICKLE_PATH[0] and (module + ".").startswith(PICKLE_PATH[1] + "."))
        }
    )


def _layer_files(folder: Path, *, without: tuple[Path, ...] = ()) -> list[tuple[str, ast.Module]]:
    files = sorted(p for p in folder.rglob("*.py") if not any(p.is_relative_to(w) for w in without))
    return [(p.relative_to(ROOT).as_posix(), ast.parse(p.read_text(encoding="utf-8"), str(p))) for p in files]


def test_no_import_runs_up_a_layer():
    found = []
    for rel, tree in _layer_files(CORE, without=(SHELL, ADAPTERS)):
        found += crossings(rel, tree, CORE_MAY_NOT)
    for rel, tree in _layer_files(ADAPTERS):
        found += crossings(rel, tree, ADAPTERS_MAY_NOT)
    for folder in ("tasks", "flows", "deployments"):
        for rel, tree in _layer_files(ROOT / folder):
            found += crossings(rel, tree, ORCHESTRATION_MAY_NOT)
    assert found == []


def test_the_layer_check_sees_every_kind_of_crossing():
    """The check above is live: top-level, lazy, ``from x import y`` forms, and only the named exception."""
    bad = (
        "import mlflow.pyfunc\nfrom prefect import flow\nfrom driftline import app\n"
        "def lazy():\n    from tasks.training import walk_forward_task\n    import driftline.adapters.registry\n"
        "from driftline.adapters import pyfunc\nfrom driftline.config import Settings\n"
    )
    found = [f.split(": ", 1)[1] for f in crossings("src/driftline/x.py", ast.parse(bad), CORE_MAY_NOT)]
    assert set(found) == {
        "imports mlflow.pyfunc",
        "imports prefect",
        "imports prefect.flow",
        "imports driftline.app",
        "imports tasks.training",
        "imports tasks.training.walk_forward_task",
        "imports driftline.adapters.registry",
        "imports driftline.adapters",
        "imports driftline.adapters.pyfunc",
    }
    anchor = "from driftline.adapters.pyfunc import CalibratedProbabilityModel\nimport driftline.adapters.registry\n"
    found = crossings(PICKLE_PATH[0], ast.parse(anchor), CORE_MAY_NOT)
    assert found == [f"{PICKLE_PATH[0]}:2: imports driftline.adapters.registry"]  # only the pickled class is excepted


def test_the_shell_and_the_adapters_hold_what_the_layout_says():
    """The shell's and the adapters' modules live in their folders, not beside the pure pipeline."""
    assert {p.stem for p in SHELL.glob("*.py")} >= {"cli", "local_api", "doctor", "config_doc", "webhook", "outbox"}
    assert {p.stem for p in ADAPTERS.glob("*.py")} >= {"registry", "pyfunc"}
    assert not {"cli", "local_api", "doctor", "config_doc", "webhook", "outbox"} & {p.stem for p in CORE.glob("*.py")}


PROBE = r"""
import importlib, json, pkgutil, sys
import driftline
names = sorted(m.name for m in pkgutil.iter_modules(driftline.__path__) if m.name not in {"app", "adapters"})
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
        "registry",  # the pickle path: resolves its one name lazily, loads no MLflow on import
    } <= set(found["modules"])
    assert found["heavy"] == []


def test_the_probe_can_see_a_heavy_import():
    """The check above is live: importing the MLflow adapter does pull MLflow in."""
    probe = PROBE.replace('m.name not in {"app", "adapters"}', "m.name == 'adapters'").replace(
        'importlib.import_module(f"driftline.{name}")', 'importlib.import_module(f"driftline.{name}.registry")'
    )
    found = _probe(probe)
    assert found["modules"] == ["adapters"]
    assert "mlflow" in found["heavy"]
