"""``prefect deploy`` for this project, with one workaround.

prefect 3.8.8's client asks the server for a pool's workers with ``limit: null``, which the server (on
FastAPI 0.154) refuses with 422 after the first deployment is created, so ``prefect deploy --all``
stops half way. This passes explicit numbers and then runs Prefect's own CLI unchanged:

    python -m deployments.deploy --all [--prefect-file prefect.yaml]
"""

from __future__ import annotations

import sys


def _patch_worker_listing() -> None:
    from prefect.client.orchestration._work_pools.client import WorkPoolAsyncClient, WorkPoolClient

    for cls in (WorkPoolAsyncClient, WorkPoolClient):
        original = cls.read_workers_for_work_pool

        def read_workers(self, work_pool_name, worker_filter=None, offset=None, limit=None, _original=original):
            return _original(self, work_pool_name, worker_filter=worker_filter, offset=offset or 0, limit=limit or 200)

        cls.read_workers_for_work_pool = read_workers


def main(argv: list[str] | None = None) -> None:
    _patch_worker_listing()
    from prefect.cli import app

    # Prefect's entry point reads sys.argv itself.
    sys.argv = ["prefect", "--no-prompt", "deploy", *(sys.argv[1:] if argv is None else argv)]
    app()


if __name__ == "__main__":
    main()
