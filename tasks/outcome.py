"""A flow's outcome, where the user of a deployment looks for it.

A deployed run has no terminal of its own: what it decided has to be in the Prefect UI. ``publish`` puts it
in both places the UI shows a run: a markdown artifact (the run's Artifacts tab, kept by key across runs)
and the same outcome as plain text in the run's log (the Logs tab, and the worker's terminal). The
``driftline`` command prints the outcome itself, so its console leaves these records out
(``OUTCOME_RECORD``); the Prefect API keeps them.
"""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from driftline.report import OUTCOME_RECORD


def publish(text: str, markdown: str | None = None, key: str | None = None, description: str | None = None) -> None:
    """Log ``text`` as the run's outcome and, with ``markdown``, keep it as the artifact ``key`` too."""
    if markdown is not None:
        create_markdown_artifact(markdown, key=key, description=description)
    get_run_logger().info(text, extra={OUTCOME_RECORD: True})
