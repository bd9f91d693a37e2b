"""Real servers for tests, on 127.0.0.1 only: an S3-compatible endpoint (moto's server mode), an MLflow
tracking server and a Prefect server, each a process of its own, always stopped on exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from driftline.adapters.templates import MLFLOW_SCRUB, save, seed
from tests import warm

S3_REGION = "us-east-1"
ROOT_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# A folder (set by tests/conftest.py for one test session, shared by its xdist workers) of migrated, empty
# SQLite databases: a fresh Prefect server or MLflow store starts from a copy instead of migrating its schema
# again (about 5 s of CPU per Prefect server and 1 s per MLflow store, dozens of times per suite on 2 cores).
# The product seeds its own local stores the same way from the templates `make install` made
# (driftline.app.db_templates); tests/unit/test_db_templates.py creates them from nothing.
TEMPLATES_VARIABLE = "DRIFTLINE_TEST_DB_TEMPLATES"


def _template(kind: str) -> Path | None:
    root = os.environ.get(TEMPLATES_VARIABLE)
    return Path(root) / f"{kind}.db" if root else None


def seed_database(target: Path, kind: str) -> bool:
    """Copy the session's migrated ``kind`` database to ``target`` (a store not created yet); False if there is none."""
    template = _template(kind)
    return template is not None and seed(target, template)


def save_template(source: Path, kind: str, scrub: tuple[str, ...] = ()) -> None:
    """Keep a consistent snapshot of the just-migrated ``source`` as the session's ``kind`` template, unless one
    exists; ``scrub`` statements run on the snapshot (driftline.adapters.templates.save)."""
    template = _template(kind)
    if template is None or template.is_file() or not source.is_file():
        return
    save(source, template, scrub)


def fresh_mlflow_store(db: Path) -> str:
    """The URI of a new, empty MLflow SQLite store at ``db``: a copy of the session's template when there is
    one (the first call makes it)."""
    uri = f"sqlite:///{db}"
    if seed_database(db, "mlflow") or _template("mlflow") is None:
        return uri
    from mlflow import MlflowClient

    db.parent.mkdir(parents=True, exist_ok=True)
    MlflowClient(uri).search_experiments()  # creates and migrates the store
    save_template(db, "mlflow", MLFLOW_SCRUB)
    return uri


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flow_run_processes(api: str, flow_run_id: str | None = None) -> list[int]:
    """The pids of flow-run processes (``PREFECT__FLOW_RUN_ID`` in their environment) of the server at ``api``,
    of one run or of any: a worker starts each in a session of its own, out of reach of the worker's group."""
    wanted = f"PREFECT_API_URL={api}".encode()
    run = b"PREFECT__FLOW_RUN_ID=" + (flow_run_id or "").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if wanted in environ and any(v == run if flow_run_id else v.startswith(run) for v in environ):
            found.append(int(entry.name))
    return found


def kill_flow_runs(api: str) -> list[int]:
    """SIGKILL every flow-run process of the server at ``api`` still alive; returns their pids."""
    pids = flow_run_processes(api)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def wait_for_http(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def wait_until(predicate, timeout: float, what: str, every: float = 1.0):
    """Poll ``predicate`` until it returns something truthy (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    process: subprocess.Popen

    def client(self, **keys: str):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=S3_REGION, **(keys or ROOT_KEYS))

    def env(self) -> dict[str, str]:
        """Environment for a Driftline process that reads from this endpoint."""
        return {
            "DRIFTLINE_S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ROOT_KEYS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": ROOT_KEYS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": S3_REGION,
        }


@contextmanager
def s3_server(log_dir: Path, no_auth_actions: int | None = None) -> Iterator[S3Endpoint]:
    """moto's S3 server as a real process; boto3 talks HTTP to it.

    Args:
        log_dir: where the server's output goes (read it when a test fails).
        no_auth_actions: when given, IAM is enforced after this many requests (moto's
            ``INITIAL_NO_AUTH_ACTION_COUNT``), so access-denied paths are real.
    """
    port = free_port()
    env = {**os.environ, "MOTO_PORT": str(port)}
    if no_auth_actions is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(no_auth_actions)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"moto-{port}.log").open("a")
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", process=process)
        yield S3Endpoint(url=f"http://127.0.0.1:{port}", process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def restricted_user(endpoint: S3Endpoint, bucket: str) -> dict[str, str]:
    """An IAM user allowed only ``bucket``; returns its keys (3 requests: count them in no_auth_actions)."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint.url, region_name=S3_REGION, **ROOT_KEYS)
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
        ],
    }
    iam.put_user_policy(UserName="reader", PolicyName="one-bucket", PolicyDocument=json.dumps(policy))
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


@contextmanager
def _process(
    args: list[str], health: str, log_path: Path, env: dict[str, str], timeout: float
) -> Iterator[warm.Process | subprocess.Popen]:
    # Forked from the suite's warm parent (tests/warm.py) when it is a Python command; its output appended to the
    # log: a server brought back on its port appends to the same log.
    process = warm.popen(args, stdout=log_path, env=env)
    try:
        try:
            wait_for_http(health, timeout=timeout, process=process)
        except (RuntimeError, TimeoutError) as exc:
            name = args[2] if args[1:2] == ["-m"] else Path(args[0]).name
            raise RuntimeError(f"{name} did not start: {exc}\n{log_path.read_text()[-3000:]}") from exc
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@contextmanager
def mlflow_server(
    workdir: Path,
    backend_uri: str | None = None,
    artifacts: str | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """``mlflow server`` with its artifact proxy (``--artifacts-destination``: a folder or ``s3://bucket/prefix``;
    give the S3 endpoint's variables in ``env``); yields its URL. ``port`` brings a server back where it was."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [  # `mlflow server`, as `python -m mlflow` (the same command line), so forked warm
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        backend_uri or f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts or str(workdir / "artifacts"),
    ]
    # MLFLOW_SERVER_ENABLE_JOB_EXECUTION: MLflow 3's job runner (GenAI evaluation jobs, trace roll-ups) starts
    # several Huey consumer processes per server; Driftline uses none of it (as in docker/compose.yaml).
    full_env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **(env or {}),
    }
    with _process(args, f"http://127.0.0.1:{port}/health", workdir / "mlflow-server.log", full_env, timeout=120):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def prefect_server(workdir: Path, port: int | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """``prefect server start`` (``python -m deployments.server``) with its own PREFECT_HOME (SQLite) in
    ``workdir``; yields its API URL. ``port`` with the same ``workdir`` brings a stopped server back where
    it was, with its database; ``env`` adds server settings."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    full_env.update(
        PREFECT_HOME=str(workdir / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        **(env or {}),
    )
    # `prefect server start` with the project's workarounds (deployments/server.py), as `make serve` runs it.
    args = [
        sys.executable,
        "-m",
        "deployments.server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    database = workdir / "prefect" / "prefect.db"
    fresh = not database.exists() and not seed_database(database, "prefect")
    with _process(args, f"http://127.0.0.1:{port}/api/health", workdir / "prefect-server.log", full_env, timeout=180):
        if fresh:
            save_template(database, "prefect")
        yield f"http://127.0.0.1:{port}/api"


@contextmanager
def model_server(model_uri: str, workdir: Path, env: dict[str, str]) -> Iterator[str]:
    """``mlflow models serve --env-manager local``: MLflow's own scoring server for a registered model."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        str(Path(sys.executable).with_name("mlflow")),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # MLflow execs `uvicorn` by name: the environment's bin folder must be on PATH, as in an activated venv.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    full_env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **env, "PATH": path}
    with _process(args, f"http://127.0.0.1:{port}/ping", workdir / "model-server.log", full_env, timeout=180):
        yield f"http://127.0.0.1:{port}"


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (``apt-get install postgresql``), if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@contextmanager
def postgres_server(databases: tuple[str, ...] = ("mlflow",)) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free port; yields a SQLAlchemy URL template ``...:port/{db}``.

    Postgres refuses to run as root, so as root (CI) the cluster belongs to the ``postgres`` OS user. It
    lives in a folder of its own under the system temp dir (pytest keeps its own temp root private).
    """
    import shutil
    import tempfile

    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="driftline-pg-"))
    data, sockets, port = root / "data", root / "sockets", free_port()
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        for path in (root, sockets):
            shutil.chown(path, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True, timeout=120, cwd=root)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {port} -k {sockets} -h 127.0.0.1 -c fsync=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        try:
            for name in databases:
                run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name)
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{{db}}"
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def api_call(method: str, url: str, check: bool = True, **kwargs) -> httpx.Response:
    """One call to a Prefect server's REST API. A 503 (a retryable server error, e.g. SQLite busy on a loaded
    machine) is retried, as Prefect's own client does; ``check`` raises on any other error status."""
    for attempt in range(5):
        response = httpx.request(method, url, timeout=10, **kwargs)
        if response.status_code != 503 or attempt == 4:
            break
        time.sleep(2)
    return response.raise_for_status() if check else response
