"""``prefect deploy`` for this project, with one workaround.

prefect 3.8.8's client asks the server for a pool's workers with ``limit: null``, which the server (on
FastAPI 0.154) refuses with 422 after the first deployment is created, so ``prefect deploy --all``
stops half way. This passes explicit numbers and then runs Prefect's own CLI unchanged:

    python -m deployments.deploy --all [--prefect-file prefect.yaml] [--automations FILE | --no-automations]

Before deploying, the notification automations of ``deployments/automations.yaml`` are created or
updated by name (``deployments.notifications``; ``--automations`` names another file).
"""

from __future__ import annotations

import sys
from pathlib import Path

from deployments import run_prefect


def _patch_worker_listing() -> None:
    from prefect.client.orchestration._work_pools.client import WorkPoolAsyncClient, WorkPoolClient

    for cls in (WorkPoolAsyncClient, WorkPoolClient):
        original = cls.read_workers_for_work_pool

        def read_workers(self, work_pool_name, worker_filter=None, offset=None, limit=None, _original=original):
            return _original(self, work_pool_name, worker_filter=worker_filter, offset=offset or 0, limit=limit or 200)

        cls.read_workers_for_work_pool = read_workers


def _split_automation_args(args: list[str]) -> tuple[Path | None, list[str]]:
    """Our own options out of the argument list; the rest goes to ``prefect deploy``."""
    from deployments.notifications import DEFAULT_FILE

    automations: Path | None = DEFAULT_FILE
    rest: list[str] = []
    items = iter(args)
    for arg in items:
        if arg == "--no-automations":
            automations = None
        elif arg == "--automations":
            automations = Path(next(items, ""))
        elif arg.startswith("--automations="):
            automations = Path(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return automations, rest


def main(argv: list[str] | None = None) -> None:
    automations, rest = _split_automation_args(sys.argv[1:] if argv is None else argv)
    if automations is not None:
        from deployments.notifications import NotificationSetupError, apply_automations

        try:
            print("\n".join(apply_automations(automations)), flush=True)
        except NotificationSetupError as exc:
            raise SystemExit(f"error: {exc}") from None
    _patch_worker_listing()
    try:
        run_prefect("--no-prompt", "deploy", *rest)
    except SystemExit as exc:
        if exc.code in (0, None):
            print(WORKER_NOTE, flush=True)
        raise


# Prefect's own advice after each deployment is `prefect worker start --pool ...`: the stock worker, which
# prefect 3.8.8 leaves unable to cancel a run that was in flight across a server restart (deployments.worker).
WORKER_NOTE = (
    "\nDriftline: start the flows' worker with `make worker` (python -m deployments.worker --pool driftline-local), "
    "not the `prefect worker start` above: prefect 3.8.8's own worker cannot cancel a run that was in flight "
    "across a server restart."
)


if __name__ == "__main__":
    main()
