"""The CLI's progress line: the latest finished Prefect task or core message feeds the spinner; without
a terminal it is one plain line (logs stay readable)."""

from __future__ import annotations

import logging

from driftline import cli


def test_step_handler_reports_task_runs_and_core_messages():
    seen: list[str] = []
    handler = cli._StepHandler(seen.append)
    task = logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, "Finished in state Completed()", None, None)
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
