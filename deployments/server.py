"""``prefect server start`` for this project, with two workarounds (the same kind as deployments/worker.py).

Scheduled runs: Prefect's scheduler inserts the next runs of every active schedule in one ORM bulk INSERT
whose rows carry a ``state`` key, the name of a hybrid property of ``FlowRun``. SQLAlchemy 2.0 ignored the
key; 2.1 (which prefect 3.8.8's pins allow, and uv.lock holds) asks for a ``bulk_dml`` hook and fails every
insert ("Can't evaluate bulk DML statement; please supply a bulk_dml decorated function" in the server's
log): no active schedule ever got a run. A hook that leaves the row as it is restores 2.0's behaviour (the
states are inserted by the same function right after, from the same rows).

Events: on SQLite, prefect 3.8.8's event persister writes a flush in batches of up to 999 bind parameters and, in
each, inserts the events not stored yet. When every event of such a batch is stored already (clients send
their unconfirmed events again after a server restart), the insert has no rows, SQLAlchemy renders it as
``INSERT INTO events DEFAULT VALUES`` and it fails ("NOT NULL constraint failed: events.occurred"). The
persister puts the whole flush back in its queue, fails the same way with every event that arrived
meanwhile, and after five failures drops them all ("Max flush retries (5) reached, dropping N events"):
new events were lost with the duplicates, the webhook relay's among them (its outbox sends again what the
server did not store). This skips a batch with nothing new, as the PostgreSQL path does (``ON CONFLICT DO
NOTHING``).

Then it runs Prefect's own CLI unchanged (the server and its services run in this process):

    python -m deployments.server [`prefect server start` options]
"""

from __future__ import annotations

import sys
from typing import Any

from deployments import run_prefect


def _schedule_runs_on_sqlalchemy_2_1() -> None:
    from prefect.server.database.orm_models import FlowRun

    state = FlowRun.__dict__["state"]
    if hasattr(state, "bulk_dml") and state.bulk_dml_setter is None:  # SQLAlchemy >= 2.1, not fixed upstream

        def keep_the_row(cls: type, mapping: Any, value: Any) -> None:
            """Nothing to set: the run's state is not a column of flow_run."""

        state.inplace.bulk_dml(keep_the_row)


def _skip_batches_with_nothing_new() -> None:
    import sqlalchemy as sa
    from prefect.server.database import PrefectDBInterface, db_injector
    from prefect.server.events.storage import database as storage

    @db_injector
    async def _write_sqlite_events(db: PrefectDBInterface, session: Any, events: list[Any]) -> None:
        for batch in storage._in_safe_batches(events):
            ids = {event.id for event in batch}
            stored = set((await session.scalars(sa.select(db.Event.id).where(db.Event.id.in_(ids)))).all())
            new = [event for event in batch if event.id not in stored]
            if not new:  # the fix: Prefect inserts an empty row list here
                continue
            await session.execute(db.queries.insert(db.Event).values([event.as_database_row() for event in new]))
            resources = [row for event in new for row in event.as_database_resource_rows()]
            if resources:
                await session.execute(db.queries.insert(db.EventResource).values(resources))

    storage._write_sqlite_events = _write_sqlite_events


def main(argv: list[str] | None = None) -> None:
    _schedule_runs_on_sqlalchemy_2_1()
    _skip_batches_with_nothing_new()
    # A SQLite database not created yet starts as the environment's migrated template (driftline.adapters.templates).
    from prefect.settings import get_current_settings

    from driftline.adapters.templates import seed_prefect_database

    seed_prefect_database(get_current_settings())
    run_prefect("server", "start", *(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
