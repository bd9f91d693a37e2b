"""The code version (cache keys, rerun fingerprint, lineage) covers every module that shapes a result:
``src/driftline``, ``flows/``, ``tasks/`` and ``uv.lock``, checked on a temp copy of the project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import driftline
from driftline import code_fingerprint, code_version
from driftline.config import PipelineConfig, training_fingerprint

ROOT = Path(__file__).resolve().parents[2]
PARTS = {"driftline": "src/driftline", "flows": "flows", "tasks": "tasks"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the sources that shape a result and the lock file, laid out like the checkout."""
    for relative in PARTS.values():
        shutil.copytree(ROOT / relative, tmp_path / relative, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "uv.lock", tmp_path / "uv.lock")
    return tmp_path


def _version_of(root: Path) -> str:
    return code_fingerprint([root / relative for relative in PARTS.values()], root / "uv.lock")


def test_the_running_code_version_is_the_fingerprint_of_the_checkout(project: Path):
    """What training runs use (cached per process) is exactly the hash of these four parts of the checkout."""
    folders, lock = driftline.code_sources()
    assert [folder.resolve() for folder in folders] == [(ROOT / r).resolve() for r in PARTS.values()]
    assert lock == ROOT / "uv.lock"
    assert code_version() == _version_of(ROOT) == _version_of(project)
    assert code_version() is code_version()  # cached: one hash per process


@pytest.mark.parametrize(
    ("relative", "edit"),
    [
        ("tasks/training.py", "\nCACHE_BUSTER = 1\n"),
        ("flows/training.py", "\n# a flow edit\n"),
        ("src/driftline/models.py", "\n# a core edit\n"),
        ("uv.lock", "\n# a dependency bump\n"),
    ],
)
def test_an_edit_in_any_part_changes_the_fingerprint_and_the_cache_keys(project: Path, relative: str, edit: str):
    before = _version_of(project)
    with open(project / relative, "a") as handle:
        handle.write(edit)
    after = _version_of(project)
    assert after != before
    config = PipelineConfig()
    assert training_fingerprint("c0ffee", config, after) != training_fingerprint("c0ffee", config, before)


def test_a_new_module_counts_and_bytecode_does_not(project: Path):
    before = _version_of(project)
    cache = project / "tasks" / "__pycache__"
    cache.mkdir()
    (cache / "training.cpython-311.pyc").write_bytes(b"\0" * 64)
    assert _version_of(project) == before
    (project / "tasks" / "extra.py").write_text("X = 1\n")
    assert _version_of(project) != before


PROBE = (
    "import json, driftline; folders, lock = driftline.code_sources(); "
    "print(json.dumps({'folders': [str(f) for f in folders], 'lock': str(lock), 'version': driftline.code_version()}))"
)


def _run_probe(root: Path) -> dict:
    """A fresh interpreter importing the temp copy (as ``driftline train`` run from it would)."""
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=root, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_the_next_process_sees_an_edited_task_module(project: Path):
    """The per-process cache does not hide an edit from the next run: a new process hashes the edited copy."""
    first = _run_probe(project)
    assert first["folders"] == [str(project / r) for r in PARTS.values()]
    assert first["lock"] == str(project / "uv.lock")
    assert first["version"] == _version_of(project)
    training = project / "tasks" / "training.py"
    training.write_text(training.read_text() + "\nRETRAIN_ME = True\n")
    second = _run_probe(project)
    assert second["version"] == _version_of(project) != first["version"]


def test_an_unimportable_part_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(driftline, "CODE_PACKAGES", ("driftline", "no_such_driftline_part"))
    with pytest.raises(ImportError, match="no_such_driftline_part"):
        driftline.code_sources()
