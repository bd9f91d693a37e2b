"""Migrated, empty databases, made once per environment, that a new local store starts from.

A first command on a new ``PREFECT_HOME`` spent most of its time creating Prefect's SQLite database: its
migrations and block types took the local API ~9 s to answer on 2 cores, against ~3 s on a database that
exists; a new local MLflow store's migrations take another ~1 s. ``make install`` makes both once per
environment (``python -m driftline.app.db_templates``, ~12 s), keyed by the Prefect and MLflow versions that
wrote them; a database that does not exist yet starts as a copy. Nothing else changes: a configured database
(PostgreSQL, another file that exists) is never touched, and with no template for the installed version a
store is created and migrated as before.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from driftline.adapters.templates import MLFLOW_SCRUB, mlflow_template, prefect_template, save


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def make_prefect_template(template: Path | None = None, timeout: float = 300) -> Path:
    """Start a Prefect server on a new database (its migrations and block types), stop it, keep its database."""
    import prefect

    from driftline.app.local_api import LocalPrefectApi, server_env

    template = template or prefect_template()
    with tempfile.TemporaryDirectory(prefix="driftline-prefect-template-") as tmp:
        home = Path(tmp)
        server = LocalPrefectApi(server_env(_clean_env(home)), str(prefect.__module_path__.parent))
        try:
            server.wait(timeout)
        finally:
            server.stop()
        save(home / "prefect.db", template)
    return template


def make_mlflow_template(template: Path | None = None) -> Path:
    """Create a local MLflow store (its migrations), keep it without its default experiment's location."""
    import logging

    from mlflow import MlflowClient

    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating initial MLflow database tables"
    template = template or mlflow_template()
    with tempfile.TemporaryDirectory(prefix="driftline-mlflow-template-") as tmp:
        database = Path(tmp) / "mlflow.db"
        uri = f"sqlite:///{database}"
        MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models(max_results=1)
        save(database, template, MLFLOW_SCRUB)
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m driftline.app.db_templates", description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="make them again even if they exist")
    args = parser.parse_args(argv)
    for name, path, make in (
        ("Prefect", prefect_template(), make_prefect_template),
        ("MLflow", mlflow_template(), make_mlflow_template),
    ):
        if path.is_file() and not args.force:
            print(f"{name} database template: {path} (exists)")
            continue
        started = time.perf_counter()
        make(path)
        print(f"{name} database template: {path} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
