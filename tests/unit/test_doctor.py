"""driftline doctor: each check against real things on 127.0.0.1 (a small HTTP server, files, sockets)."""

from __future__ import annotations

import http.server
import json
import threading
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import pytest

from driftline.app import doctor


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str]]] = {}

    def do_GET(self) -> None:  # http.server's naming
        status, body = self.routes.get(self.path.split("?")[0], (404, "not found"))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server():
    """A server on 127.0.0.1 whose answers each test sets; yields (base URL, routes)."""
    routes: ClassVar[dict[str, tuple[int, str]]] = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_versions_as_locked_are_ok_and_a_different_one_is_named(tmp_path):
    prefect = metadata.version("prefect")
    lock = tmp_path / "uv.lock"
    lock.write_text(
        f'[[package]]\nname = "prefect"\nversion = "{prefect}"\n\n[[package]]\nname = "mlflow"\nversion = "0.0.1"\n'
    )
    check = doctor.check_versions(lock)
    assert check.status == doctor.WARN and f"mlflow {metadata.version('mlflow')} (locked 0.0.1)" in check.detail
    assert "prefect" not in check.detail.split("differ from uv.lock:")[1]
    lock.write_text(f'[[package]]\nname = "prefect"\nversion = "{prefect}"\n')
    assert doctor.check_versions(lock).status == doctor.OK
    assert doctor.check_versions(None).status == doctor.WARN


def test_a_package_locked_twice_accepts_either_version(tmp_path):
    mlflow = metadata.version("mlflow")
    lock = tmp_path / "uv.lock"
    lock.write_text(
        f'[[package]]\nname = "mlflow"\nversion = "0.0.1"\n\n[[package]]\nname = "mlflow"\nversion = "{mlflow}"\n'
    )
    assert doctor.locked_versions(lock)["mlflow"] == {"0.0.1", mlflow}
    assert doctor.check_versions(lock).status == doctor.OK


def test_tracking_server_up_down_and_unauthorised(http_server, closed_port, tmp_path):
    base, routes = http_server
    routes.update({"/health": (200, "OK"), "/api/2.0/mlflow/experiments/search": (200, "{}")})
    assert doctor.check_tracking({"MLFLOW_TRACKING_URI": base}, tmp_path).status == doctor.OK
    routes["/api/2.0/mlflow/experiments/search"] = (401, "unauthorised")
    check = doctor.check_tracking({"MLFLOW_TRACKING_URI": base}, tmp_path)
    assert check.status == doctor.FAIL and "401" in check.detail and "MLFLOW_TRACKING_TOKEN" in check.fix
    check = doctor.check_tracking({"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port}"}, tmp_path)
    assert check.status == doctor.FAIL and "no answer" in check.detail and "MLFLOW_TRACKING_URI" in check.fix


def test_local_sqlite_store_missing_healthy_or_damaged(tmp_path):
    check = doctor.check_tracking({}, tmp_path / "home")
    assert check.status == doctor.OK and "will be created" in check.detail
    damaged = tmp_path / "mlflow.db"
    damaged.write_bytes(b"this is not a database" * 100)
    check = doctor.check_tracking({"MLFLOW_TRACKING_URI": f"sqlite:///{damaged}"}, tmp_path)
    assert check.status == doctor.FAIL and str(damaged) in check.detail


def test_prefect_api_reports_the_server_version_or_says_how_to_start_one(http_server, closed_port):
    base, routes = http_server
    routes.update({"/api/health": (200, "true"), "/api/admin/version": (200, '"3.8.8"')})
    check = doctor.check_prefect({"PREFECT_API_URL": f"{base}/api"})
    assert check.status == doctor.OK and "3.8.8" in check.detail
    check = doctor.check_prefect({"PREFECT_API_URL": f"http://127.0.0.1:{closed_port}/api"})
    assert check.status == doctor.FAIL and "prefect server start" in check.fix
    assert doctor.check_prefect({}).status == doctor.OK  # the ephemeral API is a valid choice


def test_s3_endpoint_without_credentials_or_unreachable(closed_port):
    check = doctor.check_s3({"DRIFTLINE_S3_ENDPOINT_URL": "http://127.0.0.1:9000"})
    assert check.status == doctor.FAIL and "AWS_ACCESS_KEY_ID" in check.fix
    env = {
        "DRIFTLINE_S3_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    check = doctor.check_s3(env)
    assert check.status == doctor.FAIL and str(closed_port) in check.detail
    assert doctor.check_s3({}).status == doctor.OK


def test_webhook_secret_is_judged_but_never_shown():
    secret = "a-long-secret-value-0123456789-abcdef"
    checks = [
        doctor.check_webhook_secret({"DRIFTLINE_WEBHOOK_SECRET": raw}) for raw in (secret, f"{secret},short", " , ")
    ]
    assert [c.status for c in checks] == [doctor.OK, doctor.FAIL, doctor.FAIL]  # the relay refuses a short one
    assert all(secret not in c.line() and "short" not in c.detail.split(";")[0] for c in checks)
    assert secret not in doctor.as_json(checks)


def test_json_output_lists_every_check(tmp_path):
    checks = doctor.run_checks({}, tmp_path, None)
    names = [c["name"] for c in json.loads(doctor.as_json(checks))]
    assert names == [
        "packages",
        "mlflow tracking",
        "prefect api",
        "bytecode",
        "warm parent",
        "s3",
        "webhook secret",
        "disk",
    ]


def test_cli_exits_non_zero_and_names_what_to_fix(closed_port, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from driftline.app.cli import app

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "[FAIL] mlflow tracking" in result.output and "1 problem(s): mlflow tracking" in result.output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert CliRunner().invoke(app, ["doctor"]).exit_code == 0


def test_every_command_has_examples_in_its_help():
    from typer.testing import CliRunner

    from driftline.app.cli import app

    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert {"train", "doctor", "reproduce", "monitor"} <= set(names)
    for name in names:
        result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, name
        assert "Examples:" in result.output and f"driftline {name}" in result.output.split("Examples:")[1], name


def test_home_path_is_never_created_by_a_check(tmp_path):
    home = tmp_path / "not-yet"
    doctor.run_checks({}, home, None)
    assert not Path(home).exists()


def test_without_an_api_url_the_prefect_check_says_how_commands_share_the_local_api():
    shared = doctor.check_prefect({})
    assert shared.status == doctor.OK and "the next ones share until it has been idle 300 s" in shared.detail
    assert "idle 60 s" in doctor.check_prefect({"DRIFTLINE_LOCAL_API_IDLE_SECONDS": "60"}).detail
    alone = doctor.check_prefect({"DRIFTLINE_LOCAL_API_IDLE_SECONDS": "0"})
    assert "each command starts a local Prefect API of its own" in alone.detail


def test_the_prefect_check_says_whether_a_new_home_starts_from_a_migrated_template(tmp_path, monkeypatch):
    from driftline.adapters.templates import DIR_VARIABLE, prefect_template

    monkeypatch.setenv(DIR_VARIABLE, str(tmp_path))
    none = doctor.check_prefect({})
    assert "10-20 s on a new home, which migrates a new database" in none.detail
    assert none.fix.endswith("a migrated template once: python -m driftline.app.db_templates")
    prefect_template().write_bytes(b"")
    made = doctor.check_prefect({})
    assert f"~3 s on a new home, whose database starts as {prefect_template()}" in made.detail
    assert "db_templates" not in made.fix


def test_the_bytecode_check_warns_only_where_a_missing_compile_is_redone_by_every_command(tmp_path, monkeypatch):
    package = tmp_path / "probe_package"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    redone = doctor.check_bytecode({"PYTHONDONTWRITEBYTECODE": "1"}, ("probe_package",))
    assert redone.status == doctor.WARN and "no bytecode for probe_package: every command" in redone.detail
    assert redone.fix.startswith("python -m driftline.app.bytecode")
    kept = doctor.check_bytecode({}, ("probe_package",))  # Python writes it on first use
    assert kept.status == doctor.OK and "on first use" in kept.detail
    import py_compile

    py_compile.compile(str(package / "__init__.py"))
    compiled = doctor.check_bytecode({"PYTHONDONTWRITEBYTECODE": "1"}, ("probe_package",))
    assert compiled.status == doctor.OK and compiled.fix == ""


def test_the_warm_parent_check_says_off_running_or_not_yet(tmp_path):
    import fcntl
    import shutil
    import tempfile

    from driftline.app import warm

    run = Path(tempfile.mkdtemp(prefix="dl-", dir="/tmp"))  # a socket's path must stay short
    try:
        env = {"TMPDIR": str(run), "DRIFTLINE_LOCAL_API_IDLE_SECONDS": "60"}
        assert "off" in doctor.check_warm_parent({**env, "DRIFTLINE_FORK_SERVER": "0"}).detail
        assert "off" in doctor.check_warm_parent({**env, "DRIFTLINE_LOCAL_API_IDLE_SECONDS": "0"}).detail
        assert doctor.check_warm_parent(env).detail.startswith("not running")
        path = warm.socket_path(env)
        with open(path.with_suffix(".log"), "a") as lock:  # what a parent holds for its life
            fcntl.flock(lock, fcntl.LOCK_EX)
            check = doctor.check_warm_parent(env)
        assert check.status == doctor.OK and check.detail.startswith("running") and str(path) in check.detail
        assert doctor.check_warm_parent(env).detail.startswith("not running")  # its lock released: gone
        too_long = doctor.check_warm_parent({**env, "TMPDIR": str(tmp_path / ("long" * 30))})
        assert too_long.status == doctor.WARN and "TMPDIR" in too_long.fix
    finally:
        shutil.rmtree(run, ignore_errors=True)
