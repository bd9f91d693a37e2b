"""The install's bytecode (driftline.app.bytecode): what the demo's commands import is compiled by running them
once with bytecode writing on, not every module of every package."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from driftline.app import bytecode


def test_the_commands_run_in_a_home_of_their_own_with_bytecode_writing_on(tmp_path, monkeypatch):
    for name, value in {
        "PREFECT_API_URL": "http://127.0.0.1:1/api",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:2",
        "DRIFTLINE_HOME": "/somewhere/else",
        "DRIFTLINE_DB_TEMPLATES": "/templates",
        "PYTHONDONTWRITEBYTECODE": "1",
    }.items():
        monkeypatch.setenv(name, value)
    env = bytecode._env(tmp_path)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert "PREFECT_API_URL" not in env and "MLFLOW_TRACKING_URI" not in env  # no user's server is written to
    assert env["DRIFTLINE_HOME"] == str(tmp_path / "driftline") and env["PREFECT_HOME"] == str(tmp_path / "prefect")
    assert env["DRIFTLINE_DB_TEMPLATES"] == "/templates"
    train, score, monitor, other = bytecode.commands(tmp_path, tmp_path / "panel.csv")
    assert [c[1] for c in (train, score, monitor)] == ["train", "score", "monitor"]
    assert {c[c.index("--name") + 1] for c in (train, score, monitor)} == {bytecode.MODEL}
    assert "--explain" in score
    assert other[:2] == [sys.executable, "-c"] and all(name in other[2] for name in ("optuna", "boto3"))


def test_what_the_commands_import_gets_its_bytecode_even_where_writing_it_is_off(tmp_path, monkeypatch):
    (tmp_path / "probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setattr(bytecode, "commands", lambda home, data: [[sys.executable, "-c", "import probe_module"]])
    assert bytecode.use_once() is None
    assert Path(importlib.util.cache_from_source(str(tmp_path / "probe_module.py"))).is_file()


def test_driftlines_own_packages_are_compiled_whole(tmp_path, monkeypatch):
    # The commands leave out the modules of settings they do not use (the hyperparameter search...).
    package = tmp_path / "probe_project"
    (package / "unused").mkdir(parents=True)
    for module in (package / "__init__.py", package / "unused" / "__init__.py", package / "unused" / "search.py"):
        module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    bytecode.compile_project(("probe_project",))
    assert Path(importlib.util.cache_from_source(str(package / "unused" / "search.py"))).is_file()
    assert {"driftline", "flows", "tasks", "deployments"} == set(bytecode.PROJECT)


def test_a_command_that_fails_leaves_every_module_compiled_instead(monkeypatch, capsys):
    compiled = []
    monkeypatch.setattr(bytecode, "compile_project", lambda: None)
    monkeypatch.setattr(bytecode, "commands", lambda home, data: [[sys.executable, "-c", "raise SystemExit(3)"]])
    monkeypatch.setattr(bytecode.compileall, "compile_dir", lambda path, **kw: compiled.append(path))
    assert bytecode.main([]) == 0  # the install goes on, as before this step existed
    assert len(compiled) == 1 and Path(compiled[0]).name == "site-packages"
    assert "exited with 3" in capsys.readouterr().err
    monkeypatch.setattr(bytecode, "commands", lambda home, data: [[sys.executable, "-c", "import time; time.sleep(5)"]])
    assert bytecode.use_once(timeout=0.5) == "`the other imports` did not finish within 0.5 s"


@pytest.mark.parametrize(
    ("package", "module", "by_install"),
    [
        ("evidently", "__init__.py", True),  # the report every training run writes
        ("great_expectations", "__init__.py", True),  # the data contract
        ("pandas", "tests/frame/test_api.py", False),  # a package's own tests: no command imports them
    ],
)
def test_make_install_compiles_what_the_demo_imports_and_not_the_rest(package, module, by_install):
    synced = Path(sys.prefix) / ".synced"  # touched by make install after its last step
    assert synced.exists() or not os.environ.get("CI"), "CI installs with make install"
    if not synced.exists():
        pytest.skip("not installed by make install")
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    cached = Path(importlib.util.cache_from_source(str(Path(spec.origin).parent / module)))
    if by_install:  # written before make install finished (the suite may compile more, but later)
        assert cached.is_file() and cached.stat().st_mtime <= synced.stat().st_mtime, cached
    else:
        assert not cached.exists(), cached
