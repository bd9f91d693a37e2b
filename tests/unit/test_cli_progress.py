"""The CLI's progress line: the latest finished Prefect task or core message feeds the spinner; without
a terminal it is one plain line (logs stay readable)."""

from __future__ import annotations

import logging

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
