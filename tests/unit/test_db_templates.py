"""Migrated database templates (driftline.adapters.templates; made by driftline.app.db_templates): a new local
Prefect database or MLflow store starts as a copy of one made at install, never replacing a database that
exists; without a template it is created and migrated as before."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from benchmarks.startup import ONE_TASK
from driftline.adapters import templates as store_templates
from driftline.adapters.templates import MLFLOW_SCRUB, prefect_template, save, seed, sqlite_file
from driftline.app import db_templates


def _rows(database: Path, query: str) -> list[tuple]:
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute(query).fetchall()


def test_only_a_sqlite_file_is_a_database_to_seed():
    assert sqlite_file("sqlite+aiosqlite:////home/u/.prefect/prefect.db") == Path("/home/u/.prefect/prefect.db")
    assert sqlite_file("sqlite:///relative/mlflow.db?timeout=30") == Path("relative/mlflow.db")
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_file("postgresql+asyncpg://u:p@127.0.0.1:5432/prefect") is None
    assert sqlite_file("http://127.0.0.1:5000") is None


def test_a_new_database_is_a_copy_and_one_that_exists_is_never_replaced(tmp_path, monkeypatch):
    source = tmp_path / "source.db"
    with closing(sqlite3.connect(source)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")  # rows still in the write-ahead log are kept too
        connection.execute("CREATE TABLE experiments (experiment_id INTEGER, name TEXT)")
        connection.execute("CREATE TABLE experiment_tags (experiment_id INTEGER, key TEXT)")
        connection.executemany("INSERT INTO experiments VALUES (?, ?)", [(0, "Default"), (1, "kept")])
        connection.execute("INSERT INTO experiment_tags VALUES (0, 'location')")
        connection.commit()
        template = tmp_path / "templates" / "mlflow-1.db"
        save(source, template, MLFLOW_SCRUB)
    assert _rows(template, "SELECT * FROM experiments") == [(1, "kept")]  # experiment 0 scrubbed
    assert _rows(template, "SELECT * FROM experiment_tags") == []

    new = tmp_path / "home" / "mlflow.db"
    assert seed(new, template)
    assert _rows(new, "SELECT name FROM experiments") == [("kept",)]
    assert not seed(new, template)  # exists: left as it is
    assert not seed(tmp_path / "other.db", tmp_path / "templates" / "missing.db")
    assert not (tmp_path / "other.db").exists()

    # A database that appears while the copy is made (another command's server) is never replaced.
    late = tmp_path / "late.db"
    real_copy = store_templates.shutil.copyfile

    def copy_while_another_creates(src, dst):
        late.write_bytes(b"another process's database")
        return real_copy(src, dst)

    monkeypatch.setattr(store_templates.shutil, "copyfile", copy_while_another_creates)
    assert not seed(late, template)
    assert late.read_bytes() == b"another process's database"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial copy left


def test_a_new_mlflow_store_from_the_template_works_and_makes_its_own_default_experiment(tmp_path):
    from mlflow import MlflowClient

    template = db_templates.make_mlflow_template(tmp_path / "templates" / "mlflow.db")
    database = tmp_path / "home" / "mlflow.db"
    assert seed(database, template)
    uri = f"sqlite:///{database}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    default = client.get_experiment("0")
    assert default is not None and "templates" not in default.artifact_location
    run = client.create_run(client.create_experiment("trial", artifact_location=str(tmp_path / "art")))
    client.log_metric(run.info.run_id, "auc", 0.7)
    client.create_registered_model("m")
    assert client.get_run(run.info.run_id).data.metrics == {"auc": 0.7}
    assert _rows(template, "SELECT count(*) FROM experiments") == [(0,)]  # the template is untouched


# Prefect's ephemeral one-task flow of the startup benchmark, on the API that start_if_needed brings up.
SERVES = "from driftline.app import local_api\nlocal_api.LocalPrefectApi.start_if_needed().activate()\n" + ONE_TASK


@pytest.mark.slow  # starts three Prefect servers: ~30 s
def test_a_new_prefect_home_starts_from_the_template_and_serves_flows(tmp_path):
    """The template is a database a server migrated and registered its block types in; a new home's server
    runs on a copy (its block types are the template's own rows, which a server that migrated afresh would
    have made with other ids) and serves a flow; with no template for this Prefect version it migrates."""
    templates = tmp_path / "templates"
    template = db_templates.make_prefect_template(templates / prefect_template().name)
    block_types = _rows(template, "SELECT id, slug FROM block_type ORDER BY slug")
    assert len(block_types) > 10

    def serve(name: str, folder: Path) -> Path:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(tmp_path / name),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
            DRIFTLINE_LOCAL_API_IDLE_SECONDS="0",
            DRIFTLINE_DB_TEMPLATES=str(folder),
        )
        done = subprocess.run([sys.executable, "-c", SERVES], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        database = tmp_path / name / "prefect.db"
        assert _rows(database, "SELECT state_type FROM flow_run") == [("COMPLETED",)]
        return database

    seeded = serve("seeded", templates)
    assert _rows(seeded, "SELECT id, slug FROM block_type ORDER BY slug") == block_types
    assert _rows(template, "SELECT count(*) FROM flow_run") == [(0,)]  # the template is untouched

    migrated = serve("migrated", tmp_path / "no-templates")
    fresh = _rows(migrated, "SELECT id, slug FROM block_type ORDER BY slug")
    assert [slug for _, slug in fresh] == [slug for _, slug in block_types]
    assert {i for i, _ in fresh}.isdisjoint({i for i, _ in block_types})


def test_make_install_leaves_a_template_of_each_database_for_the_installed_versions():
    """``make install`` (what CI and ``make test`` run first) makes both templates after syncing the environment
    (Makefile: ``python -m driftline.app.db_templates``), so a newcomer's first command starts from them."""
    from driftline.adapters.templates import mlflow_template

    made_by_make = (Path(sys.prefix) / ".synced").exists()
    assert made_by_make or not os.environ.get("CI"), "CI installs with make install"
    if made_by_make:
        for template in (prefect_template(), mlflow_template()):
            assert template.is_file() and template.stat().st_size > 100_000, template
            assert _rows(template, "SELECT count(*) FROM alembic_version") == [(1,)]
