"""``driftline doctor``: is this environment ready to train, and if not, what to change.

Each check is cheap and bounded (a few seconds at most): installed versions against uv.lock, the MLflow
tracking store, the Prefect API, the libraries' bytecode, the warm parent, S3 credentials and endpoint, the
webhook secret, free disk. Secrets are never printed, only whether they are set and accepted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"
PACKAGES = (
    "prefect",
    "mlflow",
    "pandas",
    "scikit-learn",
    "xgboost-cpu",
    "lightgbm",
    "great-expectations",
    "evidently",
    "boto3",
)
TIMEOUT = 3.0
MIN_FREE_GIB = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}[self.status]
        return f"[{mark}] {self.name:<18} {self.detail}" + (f"\n       fix: {self.fix}" if self.fix else "")


def _get(url: str) -> tuple[int, str]:
    """Status and body of a GET (status 0 and the reason when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.reason
    except (OSError, ValueError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def _unhealthy(name: str, base: str, fix: str) -> Check | None:
    """A failed check when ``<base>/health`` does not answer 200."""
    status, body = _get(f"{base}/health")
    if status == 200:
        return None
    return Check(name, FAIL, f"{base}/health: {status or 'no answer'} ({body[:120]})", fix)


def locked_versions(lock: Path) -> dict[str, set[str]]:
    """``name -> versions`` in a uv.lock (a package can be locked twice, per Python version or platform)."""
    found = re.findall(r'^\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', lock.read_text(), flags=re.M)
    versions: dict[str, set[str]] = {}
    for name, version in found:
        versions.setdefault(name.lower(), set()).add(version)
    return versions


def check_versions(lock: Path | None) -> Check:
    installed: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            installed[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            installed[package] = None
    missing = [p for p, v in installed.items() if v is None]
    if missing:
        return Check("packages", FAIL, f"not installed: {', '.join(missing)}", "make install (uv sync --frozen)")
    summary = ", ".join(
        f"{p} {v}" for p, v in installed.items() if p in ("prefect", "mlflow", "evidently", "great-expectations")
    )
    if lock is None:
        return Check(
            "packages",
            WARN,
            f"{summary}; no uv.lock found to compare with",
            "run from the project folder or set DRIFTLINE_PROJECT_DIR",
        )
    locked = locked_versions(lock)
    drift = [
        f"{p} {v} (locked {' or '.join(sorted(locked[p]))})"
        for p, v in installed.items()
        if p in locked and v not in locked[p]
    ]
    if drift:
        return Check(
            "packages",
            WARN,
            "differ from uv.lock: " + ", ".join(drift),
            "make install (uv sync --frozen) to get the tested versions",
        )
    return Check("packages", OK, f"as locked in {lock}: {summary}")


def check_tracking(env: Mapping[str, str], home: Path) -> Check:
    uri = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
    if uri.startswith(("http://", "https://")):
        base = uri.rstrip("/")
        down = _unhealthy("mlflow tracking", base, "start the server (mlflow server ...) or fix MLFLOW_TRACKING_URI")
        if down:
            return down
        status, body = _get(f"{base}/api/2.0/mlflow/experiments/search?max_results=1")
        if status != 200:
            hint = (
                "set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD"
                if status in (401, 403)
                else "check the server's logs"
            )
            return Check("mlflow tracking", FAIL, f"{base} is up but the API answered {status}: {body[:120]}", hint)
        return Check("mlflow tracking", OK, f"{base} answers (health and API)")
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        folder = path.parent
        if not _writable(folder):
            return Check(
                "mlflow tracking",
                FAIL,
                f"{folder} is not writable for {path.name}",
                "set DRIFTLINE_HOME or MLFLOW_TRACKING_URI",
            )
        if path.exists():
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT) as db:
                    db.execute("select count(*) from sqlite_master").fetchone()
            except sqlite3.Error as exc:
                return Check(
                    "mlflow tracking",
                    FAIL,
                    f"{path}: {exc}",
                    "move the damaged file away; MLflow will create a new one",
                )
        state = "exists" if path.exists() else "will be created on the first run"
        return Check("mlflow tracking", OK, f"local SQLite {path} ({state})")
    return Check("mlflow tracking", WARN, f"{uri}: not checked (only http(s) and sqlite are probed)")


def check_prefect(env: Mapping[str, str]) -> Check:
    api = env.get("PREFECT_API_URL")
    if not api:
        from driftline.adapters.templates import prefect_template
        from driftline.app.local_api import IDLE_VARIABLE, idle_seconds

        idle = idle_seconds(env)
        template = prefect_template()
        start = (
            f"~3 s on a new home, whose database starts as {template}"
            if template.is_file()
            else "10-20 s on a new home, which migrates a new database"
        )
        shared = (
            f"the first command starts a local Prefect API ({start}) that the next ones share until it has been "
            f"idle {idle:g} s ({IDLE_VARIABLE})"
            if idle
            else f"each command starts a local Prefect API of its own ({start}; {IDLE_VARIABLE}=0)"
        )
        deploy = "for deployments: make serve, then PREFECT_API_URL=http://127.0.0.1:4200/api"
        made = "" if template.is_file() else "; a migrated template once: python -m driftline.app.db_templates"
        return Check("prefect api", OK, f"none set: {shared}", deploy + made)
    base = api.rstrip("/")
    down = _unhealthy("prefect api", base, "start it (prefect server start / make serve) or fix PREFECT_API_URL")
    if down:
        return down
    status, body = _get(f"{base}/admin/version")
    version = body.strip('"') if status == 200 else "unknown"
    return Check("prefect api", OK, f"{base} is healthy (server {version})")


# Libraries every training run imports; each package's __init__ stands for it (found without importing it).
BYTECODE_PROBES = ("prefect", "mlflow", "great_expectations", "evidently", "sklearn", "pandas")
DONT_WRITE = "PYTHONDONTWRITEBYTECODE"


def _without_bytecode(packages: tuple[str, ...]) -> list[str]:
    """The ``packages`` (top-level, found without importing them) whose ``__init__`` has no bytecode."""
    from importlib.util import cache_from_source, find_spec

    sources = {name: spec.origin for name in packages if (spec := find_spec(name)) is not None}
    return [
        name
        for name, origin in sources.items()
        if origin and origin.endswith(".py") and not Path(cache_from_source(origin)).is_file()
    ]


def check_bytecode(env: Mapping[str, str], probes: tuple[str, ...] = BYTECODE_PROBES) -> Check:
    """Whether the libraries a run imports are compiled: with ``PYTHONDONTWRITEBYTECODE`` set and no bytecode,
    every command compiles them again (a tiny ``driftline train``: 32 of its 55 s of CPU)."""
    missing = _without_bytecode(probes)
    if not missing:
        return Check("bytecode", OK, f"the libraries a run imports are compiled ({len(probes)} probed)")
    names = ", ".join(missing)
    fix = "python -m driftline.app.bytecode (what make install runs: the demo's commands once, ~1 minute)"
    if env.get(DONT_WRITE):
        detail = f"{DONT_WRITE} is set and there is no bytecode for {names}: every command compiles them again"
        return Check("bytecode", WARN, detail, fix)
    return Check("bytecode", OK, f"{names} not compiled yet: Python compiles and keeps them on first use", fix)


def check_warm_parent(env: Mapping[str, str]) -> Check:
    """Whether commands fork from a parent that has the libraries imported (driftline.app.forkserver)."""
    from driftline.app import warm

    on = f"unset {warm.SWITCH} and keep DRIFTLINE_LOCAL_API_IDLE_SECONDS above 0"
    if not warm.enabled(env):
        return Check("warm parent", OK, "off: each command is a new process that imports the libraries", on)
    try:
        path = warm.socket_path(env)
    except (OSError, ImportError) as exc:
        return Check("warm parent", WARN, f"cannot tell this environment apart: {exc}")
    if path is None:
        where = env.get("TMPDIR") or "the temporary folder"
        fix = "point TMPDIR at a short folder of your own"
        return Check("warm parent", WARN, f"no private, short enough folder for its socket in {where}", fix)
    if warm.running(path):
        return Check("warm parent", OK, f"running: train, score, monitor... fork from it ({path})")
    return Check("warm parent", OK, "not running: the next train, score, monitor... starts one as it exits")


def check_s3(env: Mapping[str, str]) -> Check:
    endpoint = env.get("DRIFTLINE_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL")
    has_keys = bool(env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"))
    if not endpoint and not has_keys and not env.get("AWS_PROFILE"):
        return Check("s3", OK, "not configured (only needed for s3:// data)")
    if not has_keys and not env.get("AWS_PROFILE"):
        return Check(
            "s3",
            FAIL,
            f"endpoint {endpoint} set but no credentials",
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
        )
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.session.Session(profile_name=env.get("AWS_PROFILE")).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(connect_timeout=TIMEOUT, read_timeout=TIMEOUT, retries={"max_attempts": 1}),
    )
    where = endpoint or "AWS"
    try:
        buckets = client.list_buckets().get("Buckets", [])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        return Check(
            "s3", FAIL, f"{where} refused the credentials ({code})", "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        )
    except BotoCoreError as exc:
        return Check("s3", FAIL, f"{where}: {exc}", "start the endpoint or fix DRIFTLINE_S3_ENDPOINT_URL")
    return Check("s3", OK, f"{where} accepts the credentials ({len(buckets)} buckets visible)")


def check_webhook_secret(env: Mapping[str, str]) -> Check:
    raw = env.get("DRIFTLINE_WEBHOOK_SECRET")
    if raw is None:
        return Check("webhook secret", OK, "not set (only the relay needs it)")
    secrets = [s for s in raw.split(",") if s.strip()]
    if not secrets:
        return Check(
            "webhook secret",
            FAIL,
            "set but empty: the relay would refuse to start",
            "set one secret, or two comma-separated while rotating",
        )
    short = [i for i, s in enumerate(secrets) if len(s.strip().encode()) < 32]
    if short:
        return Check(
            "webhook secret",
            FAIL,
            f"{len(secrets)} set; {len(short)} shorter than 32 bytes: the relay refuses to start",
            "use long random secrets (openssl rand -hex 32)",
        )
    return Check("webhook secret", OK, f"{len(secrets)} set (values not shown)")


def check_disk(home: Path) -> Check:
    folder = next((p for p in (home, *home.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(folder).free / 2**30
    if free < MIN_FREE_GIB:
        fix = "free space or point DRIFTLINE_HOME elsewhere (runs keep artifacts, caches)"
        return Check("disk", WARN, f"{free:.1f} GiB free at {folder}", fix)
    return Check("disk", OK, f"{free:.0f} GiB free at {folder}")


def _writable(folder: Path) -> bool:
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return existing is not None and os.access(existing, os.W_OK)


def run_checks(env: Mapping[str, str], home: Path, lock: Path | None) -> list[Check]:
    return [
        check_versions(lock),
        check_tracking(env, home),
        check_prefect(env),
        check_bytecode(env),
        check_warm_parent(env),
        check_s3(env),
        check_webhook_secret(env),
        check_disk(home),
    ]


def as_json(checks: list[Check]) -> str:
    return json.dumps([check.__dict__ for check in checks], indent=2)
