"""Shared test set-up: offline defaults before anything imports Prefect, MLflow or GX."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from driftline.app.cli import OFFLINE_DEFAULTS
from tests import ramdisk, schedule, warm
from tests.servers import TEMPLATES_VARIABLE, prefect_server
from tests.worktree import tree_changes, tree_state

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
# Each command's local Prefect API stops with it: a test's tmp PREFECT_HOME is gone after the test, and the
# suite leaves no server behind. tests/unit/test_local_api.py tests the shared API (the users' default).
os.environ.setdefault("DRIFTLINE_LOCAL_API_IDLE_SECONDS", "0")
# Each `driftline` command in a process of its own, as when no warm parent runs: one would outlive the suite
# (its idle time) and serve later tests' commands depending on order. tests/unit/test_forkserver.py tests it.
os.environ.setdefault("DRIFTLINE_FORK_SERVER", "0")


MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def pytest_configure(config: pytest.Config) -> None:
    """Set up by the controller before xdist starts its workers, which inherit it: the session's temporary
    files in memory when there is room (tests/ramdisk.py; pytest's ``--basetemp`` and TMPDIR), and one folder
    of migrated database templates (tests/servers.py)."""
    if hasattr(config, "workerinput") or os.environ.get(TEMPLATES_VARIABLE):
        return
    parent = ramdisk.choose()
    if parent is not None:
        config._driftline_ramdisk = ramdisk.enter(parent)
        if config.option.basetemp is None:
            config.option.basetemp = str(config._driftline_ramdisk / "pytest")
    config._driftline_templates = tempfile.mkdtemp(prefix="driftline-db-templates-")
    os.environ[TEMPLATES_VARIABLE] = config._driftline_templates
    if getattr(config.option, "numprocesses", None) and not os.environ.get(warm.SHARED_VARIABLE):
        # One warm parent of the suite's commands (tests/warm.py) for every worker, not one each (~11 s of CPU
        # to import what it preloads, and one parent of `driftline` commands per environment and worker).
        config._driftline_zygote = tempfile.mkdtemp(prefix="driftline-zygote-")
        config._driftline_zygote_process, os.environ[warm.SHARED_VARIABLE] = warm.start_zygote(
            config._driftline_zygote, os.getpid()
        )


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A `prefect server start` (all its services: triggers, lease repossessor...) shared by the tests a
    worker runs (each has its own model names and MLflow store; the tests that restart or deploy to a
    server start their own). Its URL for subprocesses; in-process Prefect calls point at it too. One per
    worker, not one for all: one SQLite database does not take four workers' writes (docs/performance.md)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_server(tmp_path_factory.mktemp("prefect")) as api, temporary_settings({PREFECT_API_URL: api}):
        yield api


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest files first (tests/schedule.py): with `--no-loadscope-reorder` xdist hands out files in this
    order, so the minutes-long drills start at once instead of making the tail of the run."""
    items[:] = schedule.longest_first(items, schedule.load())


def pytest_unconfigure(config: pytest.Config) -> None:
    zygote = getattr(config, "_driftline_zygote_process", None)
    if zygote is not None:
        zygote.kill()
        zygote.wait()
        os.environ.pop(warm.SHARED_VARIABLE, None)
        shutil.rmtree(config._driftline_zygote, ignore_errors=True)
    folder = getattr(config, "_driftline_templates", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(TEMPLATES_VARIABLE, None)
    # In memory: gone after a passing session; a failing one keeps its files until the next session starts.
    ramdisk_root = getattr(config, "_driftline_ramdisk", None)
    if ramdisk_root is not None and getattr(config, "_driftline_exitstatus", 1) == 0:
        shutil.rmtree(ramdisk_root, ignore_errors=True)


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


def pytest_sessionstart(session: pytest.Session) -> None:
    """The work tree and the running warm parents as the session found them (the controller's view; xdist
    workers check nothing)."""
    if not hasattr(session.config, "workerinput"):
        session.config._driftline_tree = tree_state(session.config.rootpath)
        session.config._driftline_parents = _warm_parents()


def _warm_parents() -> set[str]:
    """The sockets of the running warm parents of `driftline` commands (driftline.app.forkserver) in this
    session's temporary folder."""
    from driftline.app import warm

    folder = Path(tempfile.gettempdir()) / f"driftline-{os.getuid()}"
    return {str(p) for p in folder.glob("*.sock") if warm.running(p)}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _check_tree_unchanged(session)
    _check_no_warm_parent(session)
    session.config._driftline_exitstatus = session.exitstatus


def _check_no_warm_parent(session: pytest.Session) -> None:
    """No warm parent of `driftline` commands (driftline.app.forkserver) outlives the suite: a command run with
    an environment that dropped ``DRIFTLINE_FORK_SERVER=0`` (and the idle time of 0) would start one, which
    then serves later tests' commands and stays after the session. Checked in the controller, at the end."""
    before = getattr(session.config, "_driftline_parents", None)
    if before is None:
        return
    alive = sorted(_warm_parents() - before)  # a parent the user's own commands started is not the suite's
    if not alive:
        return
    _fail_session(
        session,
        "warm parent still running",
        ["a test started a warm parent (keep DRIFTLINE_FORK_SERVER=0 in its environment):", *alive],
    )


def _check_tree_unchanged(session: pytest.Session) -> None:
    """The suite leaves the work tree as it found it: a test that writes into the checkout (a database in the
    working directory, a regenerated doc, a results file) fails the session, naming the paths. Under xdist
    this runs in the controller after every worker has finished, so it sees what all of them wrote."""
    before = getattr(session.config, "_driftline_tree", None)
    if before is None:
        return
    after = tree_state(session.config.rootpath)
    changes = tree_changes(before, after) if after is not None else []
    if not changes:
        return
    why = "a test writes into the checkout (use tmp_path), or a file was edited while the tests ran"
    _fail_session(session, "work tree not clean", [f"changed in the git work tree during the session: {why}", *changes])


def _fail_session(session: pytest.Session, title: str, lines: list[str]) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", title, red=True)
        for line in lines:
            reporter.write_line(line)
    else:
        print("\n".join(lines))
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
