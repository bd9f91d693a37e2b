"""The CLI's progress line: the latest finished Prefect task or core message feeds the spinner; without
a terminal it is one plain line (logs stay readable)."""

from __future__ import annotations

import logging
from pathlib import Path

from driftline.app import cli


def test_step_handler_reports_task_runs_and_core_messages():
    seen: list[str] = []
    handler = cli._StepHandler(seen.append)
    task = logging.LogRecord(
        "prefect.task_runs", logging.INFO, __file__, 1, "Finished in state Completed()", None, None
    )
    task.task_run_name = "walk-forward-3f1"
    core = logging.LogRecord("driftline.training", logging.INFO, __file__, 1, "fold %d %s: done", (2, "lightgbm"), None)
    handler.handle(task)
    handler.handle(core)
    assert seen == ["walk-forward-3f1 finished", "fold 2 lightgbm: done"]


def test_without_a_terminal_progress_is_one_line_and_leaves_no_handler(capsys):
    before = list(logging.getLogger("prefect.task_runs").handlers)
    with cli._progress("training demo"):
        logging.getLogger("driftline").info("inside")
    assert capsys.readouterr().err == "training demo ...\n"
    assert logging.getLogger("prefect.task_runs").handlers == before


def test_a_driftline_error_reaches_the_console_once_as_the_cli_line():
    """Prefect's console copies of a Driftline error (failed task, failed flow) are dropped; other errors,
    and everything below ERROR, are kept."""
    from driftline.errors import DataError

    keep = cli._ReportedByTheCli().filter

    def record(name: str, level: int, message: str, exc: BaseException | None = None) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, message, None, (type(exc), exc, None) if exc else None)

    error = DataError("prices.csv: file is empty")
    assert not keep(
        record(
            "prefect.task_runs",
            logging.ERROR,
            "Finished in state Failed('Task run encountered an exception DataError: prices.csv: file is empty')",
        )
    )
    assert not keep(
        record("prefect.flow_runs", logging.ERROR, f"Encountered exception during execution: {error!r}", error)
    )
    assert not keep(
        record(
            "prefect.flow_runs",
            logging.INFO,
            "Finished in state Failed('Flow run encountered an exception: InsufficientDataError: 120 rows')",
        )
    )
    assert keep(
        record("prefect.task_runs", logging.ERROR, "Finished in state Failed('... KeyError: close')")
    )  # a bug: shown
    assert keep(record("prefect.task_runs", logging.INFO, "Finished in state Completed()"))
    assert keep(record("driftline.training", logging.ERROR, "DataError: something the core said"))


def test_a_new_local_tracking_store_is_created_while_the_local_api_starts(tmp_path, monkeypatch):
    """``driftline train`` creates a new SQLite MLflow store's tables in the wait for its local API (~1 s of
    migrations off a first run's critical path); with a store there already, or a tracking server, nothing."""
    import sqlite3

    from mlflow import MlflowClient

    assert cli.create_local_tracking_store in cli.WHILE_THE_API_STARTS
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "home"))
    cli.create_local_tracking_store()
    db = tmp_path / "home" / "mlflow.db"
    with sqlite3.connect(db) as con:
        tables = {row[0] for row in con.execute("select name from sqlite_master where type = 'table'")}
    assert {"experiments", "runs", "registered_models", "model_versions", "alembic_version"} <= tables
    MlflowClient(f"sqlite:///{db}").create_experiment("after")  # a store MLflow opens as its own
    before = db.stat().st_mtime_ns
    cli.create_local_tracking_store()  # there already: untouched
    assert db.stat().st_mtime_ns == before
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # a server: nothing to create, no call
    cli.create_local_tracking_store()


def test_the_local_api_wait_runs_its_steps_only_while_the_api_is_not_ready():
    class Api:
        def __init__(self, answers: list[bool]) -> None:
            self.answers, self.activated = answers, False

        def ready(self) -> bool:
            return self.answers.pop(0)

        def activate(self) -> str:
            self.activated = True
            return "http://127.0.0.1:1/api"

    ran: list[str] = []
    steps = (lambda: ran.append("a"), lambda: ran.append("b"), lambda: ran.append("c"))
    api = Api([False, False, True])
    cli._use_local_api(api, steps)
    assert ran == ["a", "b"] and api.activated


def test_the_command_exits_like_python_without_tearing_its_modules_down(tmp_path):
    """``driftline`` ends with ``exit_without_teardown``: threads joined (an executor's too), atexit callbacks
    and weakref finalizers run, buffered output flushed, the status of ``sys.exit(code)``; only the module
    teardown (2 s of CPU after a training run's imports) is skipped."""
    import subprocess
    import sys

    script = f"""
import atexit, concurrent.futures, sys, tempfile, threading, time
from pathlib import Path
from driftline.app.cli import exit_without_teardown
out = Path({str(tmp_path)!r})
atexit.register(lambda: (out / "atexit").write_text("ran"))
folder = tempfile.TemporaryDirectory(dir=out)  # its finalizer removes it at exit
(out / "folder").write_text(folder.name)
def slow():
    time.sleep(0.5)
    (out / "thread").write_text("done")
threading.Thread(target=slow).start()
concurrent.futures.ThreadPoolExecutor(1).submit(lambda: (time.sleep(0.3), (out / "pool").write_text("done")))
sys.stdout.write("buffered, not flushed")
exit_without_teardown(sys.argv[1] if sys.argv[1] == "message" else int(sys.argv[1]))
"""
    for code, status in (("3", 3), ("0", 0), ("message", 1)):
        for name in ("atexit", "thread", "pool", "folder"):
            (tmp_path / name).unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-c", script, code], capture_output=True, text=True, timeout=60)
        assert done.returncode == status, done.stderr
        assert done.stdout == "buffered, not flushed"
        assert done.stderr == ("message\n" if code == "message" else "")
        assert {p.name: p.read_text() for p in tmp_path.iterdir() if p.name in ("atexit", "thread", "pool")} == {
            "atexit": "ran",
            "thread": "done",
            "pool": "done",
        }
        assert not Path((tmp_path / "folder").read_text()).exists()
