"""Deployment helpers (work pools, automations) for running Driftline flows on a Prefect server."""

from __future__ import annotations

import sys


def run_prefect(*words: str) -> None:
    """Prefect's own CLI, unchanged, with ``words`` as its arguments (after this module's workarounds)."""
    from prefect.cli import app

    # Prefect's entry point reads sys.argv itself.
    sys.argv = ["prefect", *words]
    app()
