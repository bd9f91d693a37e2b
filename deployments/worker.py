"""``prefect worker start`` for this project, with one workaround (the same kind as deployments/deploy.py).

When the worker's websocket to the server drops (a server restart), the cancellation observer of each
run in flight falls back to polling ``/flow_runs/filter``, and prefect 3.8.8's client sends ``limit: null``
and ``sort: null`` there, which the server (on FastAPI 0.154) refuses with 422: the observer gives up
("Cancellation observer failed. Flow run cancellation disabled.") and those runs can no longer be
cancelled. This passes the server's own defaults instead (``PREFECT_API_DEFAULT_LIMIT``, 200, and
``ID_DESC``). And that observer gave up after three failed polls (about 30 s of outage): it now backs off
instead, for about 7.5 minutes. Then it runs Prefect's own CLI unchanged:

    python -m deployments.worker --pool driftline-local [other `prefect worker start` options]
"""

from __future__ import annotations

import sys

from deployments import run_prefect


def _patch_flow_run_listing() -> None:
    from prefect.client.orchestration._flow_runs.client import FlowRunAsyncClient, FlowRunClient
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_DEFAULT_LIMIT

    for cls in (FlowRunAsyncClient, FlowRunClient):
        original = cls.read_flow_runs

        def read_flow_runs(self, *args, limit=None, sort=None, _original=original, **kwargs):
            limit = PREFECT_API_DEFAULT_LIMIT.value() if limit is None else limit
            return _original(self, *args, limit=limit, sort=FlowRunSort.ID_DESC if sort is None else sort, **kwargs)

        cls.read_flow_runs = read_flow_runs


# How many times the cancellation observer's polling may hit its 3-consecutive-errors limit, doubling its
# 10 s interval each time, before it gives up (Prefect's default: once, so about 30 s of server outage
# disabled cancellation for the runs in flight). 4: about 7.5 minutes, more than the flow runs' own API
# retries bridge (PREFECT_CLIENT_MAX_RETRIES=7 in prefect.yaml, about 4 minutes).
OBSERVER_BACKOFFS = 4


def _tolerate_longer_outages() -> None:
    import functools

    import prefect._internal.observers as observers
    from prefect.utilities.services import critical_service_loop

    observers.critical_service_loop = functools.partial(critical_service_loop, backoff=OBSERVER_BACKOFFS)


def main(argv: list[str] | None = None) -> None:
    _patch_flow_run_listing()
    _tolerate_longer_outages()
    run_prefect("worker", "start", *(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
