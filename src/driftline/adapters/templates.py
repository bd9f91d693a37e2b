"""Migrated, empty SQLite databases that a new local Prefect database or MLflow store starts as a copy of
(made once per environment by ``python -m driftline.app.db_templates``, which ``make install`` runs). A
database that exists, appears meanwhile or is not a SQLite file is never touched; without a template for the
installed version a store is created and migrated as before."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from contextlib import closing
from importlib.metadata import version
from pathlib import Path
from typing import Any

DIR_VARIABLE = "DRIFTLINE_DB_TEMPLATES"  # another folder of templates (default: <environment>/share/driftline)

# MLflow's experiment 0 records the absolute artifact location of the process that created the store; without
# it, the first process that opens the copy creates it again where a new store would have.
MLFLOW_SCRUB = (
    "DELETE FROM experiment_tags WHERE experiment_id = 0",
    "DELETE FROM experiments WHERE experiment_id = 0",
)


def template_dir() -> Path:
    """``DRIFTLINE_DB_TEMPLATES``, else ``share/driftline`` in this Python environment."""
    return Path(os.environ.get(DIR_VARIABLE) or Path(sys.prefix) / "share" / "driftline")


def prefect_template() -> Path:
    """The template for a Prefect server database of the installed Prefect version."""
    return template_dir() / f"prefect-{version('prefect')}.db"


def mlflow_template() -> Path:
    """The template for a local MLflow store (tracking and registry) of the installed MLflow version."""
    return template_dir() / f"mlflow-{version('mlflow')}.db"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite SQLAlchemy URL (``sqlite:///...``, ``sqlite+aiosqlite:///...``); None for any
    other database or an in-memory one."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite":
        return None
    path = rest.split("?")[0]
    return Path(path) if path and path != ":memory:" else None


def seed_prefect_database(settings: Any) -> bool:
    """Start the database of Prefect ``settings`` as the template, when it is a SQLite file not created yet."""
    url = settings.server.database.connection_url
    database = sqlite_file(url.get_secret_value()) if url is not None else None
    return database is not None and seed(database, prefect_template())


def seed(database: Path, template: Path) -> bool:
    """Start ``database``, which must not exist yet, as a copy of ``template``; False (nothing done) when it
    exists, appears meanwhile (another process's store: never replaced) or there is no template."""
    if database.exists() or not template.is_file():
        return False
    database.parent.mkdir(parents=True, exist_ok=True)
    part = database.with_name(f".{database.name}.{os.getpid()}.seed")
    try:
        shutil.copyfile(template, part)
        os.link(part, database)  # fails if the database exists by now: a copy appears whole or not at all
    except OSError:
        return False
    finally:
        part.unlink(missing_ok=True)
    return True


def save(source: Path, template: Path, scrub: tuple[str, ...] = ()) -> None:
    """A consistent snapshot of the SQLite database ``source`` (its backup API: what a write-ahead log holds
    included) as ``template``, replaced whole; ``scrub`` statements run on the snapshot."""
    template.parent.mkdir(parents=True, exist_ok=True)
    part = template.with_name(f".{template.name}.{os.getpid()}.partial")
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(part)) as copy:
        original.backup(copy)
        for statement in scrub:
            copy.execute(statement)
        copy.commit()
    os.replace(part, template)
