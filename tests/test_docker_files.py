"""docker/: the compose file and the Dockerfile checked by real validators (no Docker engine here).

- compose.yaml against the compose-spec JSON schema (vendored in check-jsonschema, offline);
- the Dockerfile with hadolint;
- and what a schema cannot see: services that depend on missing ones, variables .env.example lacks,
  health checks that a `service_healthy` condition waits for, commands and flags that do not exist in
  the locked versions of prefect, mlflow and driftline.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
OUR_IMAGE = "driftline:local"
WRAPPER = "require-secrets"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def test_compose_file_is_valid_against_the_compose_spec_schema():
    result = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", DOCKER / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_compose_file(tmp_path):
    broken = _compose()
    broken["services"]["worker"]["depends_on"] = "prefect"  # must be a list or a mapping
    broken["services"]["relay"]["ports"] = [{"target": "not-a-port"}]
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)
    assert result.returncode != 0 and "services.worker.depends_on" in result.stdout


def test_dockerfile_passes_hadolint():
    result = _run(BIN / "hadolint", "--failure-threshold", "info", DOCKER / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install driftline\n")
    result = _run(BIN / "hadolint", bad)
    assert result.returncode != 0 and "DL3007" in result.stdout  # :latest


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck_and_copies_only_what_exists():
    lines = [line.strip() for line in (DOCKER / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    stages = [line for line in instructions if line.startswith("FROM ")]
    assert len(stages) >= 2, "build and runtime stages"
    final = instructions[instructions.index(stages[-1]) :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.startswith("HEALTHCHECK ") for line in final)
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the project"


def test_every_dependency_variable_and_health_condition_resolves():
    compose = _compose()
    services = compose["services"]
    text = (DOCKER / "compose.yaml").read_text()
    example = (DOCKER / ".env.example").read_text()
    defined = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert used <= defined, f"docker/.env.example lacks {sorted(used - defined)}"
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for other, condition in depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends):
            assert other in services, f"{name} depends on undefined service {other}"
            if condition.get("condition") == "service_healthy":
                target = services[other]
                own_health = target.get("image") == OUR_IMAGE and "DRIFTLINE_HEALTH_URL" in (
                    target.get("environment") or {}
                )
                assert "healthcheck" in target or own_health, (
                    f"{name} waits for {other} to be healthy; it has no health check"
                )
        if service.get("image") == OUR_IMAGE and service.get("restart") == "unless-stopped":
            assert "DRIFTLINE_HEALTH_URL" in service["environment"], f"{name}: the image's HEALTHCHECK needs its URL"


def _commands() -> list[list[str]]:
    """Every command line a service of our image runs, as argv."""
    argvs = []
    for service in _compose()["services"].values():
        if service.get("image") != OUR_IMAGE:
            continue
        entry = service.get("entrypoint") or ["driftline"]
        command = service.get("command") or []
        if entry[:1] == [WRAPPER]:  # docker/require-secrets.sh: checks the environment, then execs the rest
            entry = entry[1:]
        if entry[:2] == ["/bin/sh", "-c"]:
            for part in re.split(r"&&|\|\||[()]", command[0]):
                argv = shlex.split(part.replace(">/dev/null 2>&1", ""))
                if argv:
                    argvs.append(argv)
        else:
            argvs.append([*entry, *command])
    return argvs


@pytest.mark.slow
def test_commands_and_flags_in_compose_exist_in_the_locked_versions():
    checked = 0
    for argv in _commands():
        program, rest = argv[0], argv[1:]
        # The sub-command path is the words before the first option (e.g. "server start").
        path = []
        for word in rest:
            if word.startswith("-"):
                break
            path.append(word)
        if program == "python":
            started = {"deployments.worker": ["worker", "start"], "deployments.server": ["server", "start"]}
            assert rest[:1] == ["-m"] and rest[1] in ("deployments.deploy", *started), argv
            if rest[1] == "deployments.deploy":
                continue
            # deployments.worker and .server are `prefect worker start` and `prefect server start` with
            # workarounds: their flags are those commands'.
            path = started[rest[1]]
            program, rest = "prefect", [*path, *rest[2:]]
        assert (BIN / program).exists(), f"{program} is not installed by uv.lock"
        if program == "prefect" and path[:1] == ["work-pool"]:
            path = path[:2]
        help_text = _run(BIN / program, *path, "--help").stdout
        assert "Usage" in help_text, f"{program} {' '.join(path)} --help failed"
        for flag in (w.split("=")[0] for w in rest if w.startswith("--")):
            assert flag in help_text, f"{program} {' '.join(path)} has no option {flag}"
        checked += 1
    assert checked >= 6


# --- closed by default (issue 17) -----------------------------------------------------------------------


def _env(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_every_published_port_binds_to_loopback_unless_driftline_bind_says_otherwise():
    published = 0
    for name, service in _compose()["services"].items():
        for port in service.get("ports") or []:
            assert isinstance(port, str) and port.startswith("${DRIFTLINE_BIND:-127.0.0.1}:"), f"{name}: {port}"
            published += 1
    assert published == 4  # Prefect, MLflow, the MinIO console, the relay
    example = (DOCKER / ".env.example").read_text()
    assert "\nDRIFTLINE_BIND=127.0.0.1\n" in example


def test_prefect_api_requires_the_auth_string_and_every_client_sends_it():
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_SERVER_API_AUTH_STRING

    assert (PREFECT_SERVER_API_AUTH_STRING.name, PREFECT_API_AUTH_STRING.name) == (
        "PREFECT_SERVER_API_AUTH_STRING",
        "PREFECT_API_AUTH_STRING",
    )  # the installed Prefect's names
    services = _compose()["services"]
    server = _env(services["prefect"])
    assert server["PREFECT_SERVER_API_AUTH_STRING"].startswith("${PREFECT_AUTH_STRING:?")
    clients = [n for n, s in services.items() if "PREFECT_API_URL" in _env(s)]
    assert set(clients) == {"deploy", "worker", "relay"}
    for name in clients:
        assert _env(services[name])["PREFECT_API_AUTH_STRING"] == server["PREFECT_SERVER_API_AUTH_STRING"], name


def test_mlflow_runs_its_basic_auth_app_with_credentials_from_env_and_clients_log_in():
    from mlflow import environment_variables as names

    for variable in (
        "MLFLOW_AUTH_CONFIG_PATH",
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
    ):
        assert getattr(names, variable).name == variable  # spelled as the installed MLflow reads it
    from importlib.util import find_spec

    assert find_spec("flask_wtf") is not None, "mlflow[auth] (Flask-WTF) is not installed: the auth app would not start"

    services = _compose()["services"]
    mlflow = services["mlflow"]
    entry = mlflow["entrypoint"]
    assert entry[entry.index("--app-name") + 1] == "basic-auth"
    env = _env(mlflow)
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"].startswith("${MLFLOW_FLASK_SECRET_KEY:?")
    mounted = {v.split(":")[1] for v in mlflow["volumes"] if isinstance(v, str)}
    assert env["MLFLOW_AUTH_CONFIG_PATH"] in mounted
    ini = (DOCKER / "mlflow-auth.ini").read_text()
    assert "admin_password" not in ini and "default_permission = READ" in ini
    for name, service in services.items():
        if "MLFLOW_TRACKING_URI" in _env(service):
            assert _env(service)["MLFLOW_TRACKING_PASSWORD"] == env["MLFLOW_AUTH_ADMIN_PASSWORD"], name


def test_every_service_starts_through_the_secret_check_naming_its_own_secrets():
    for name, service in _compose()["services"].items():
        if name == "buckets":  # one-shot against MinIO, which checked the same password before it started
            continue
        assert service["entrypoint"][0].endswith(WRAPPER), f"{name} does not start through {WRAPPER}"
        env = _env(service)
        required = env["DRIFTLINE_CHECKED_VARS"].split()
        assert required and set(required) <= set(env), f"{name}: checks {required}, has {sorted(env)}"
        if service.get("image") != OUR_IMAGE:  # third-party images get the script mounted
            assert any(
                str(v).startswith("./require-secrets.sh:/usr/local/bin/require-secrets:ro") for v in service["volumes"]
            ), name
    assert "docker/require-secrets.sh /usr/local/bin/require-secrets" in (DOCKER / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("value", "code", "said"),
    [
        ("change-me-webhook-secret", 78, "still holds the change-me placeholder"),
        ("", 78, "is empty"),
        ("s3cret-Value-9", 0, ""),
    ],
)
def test_the_secret_check_refuses_placeholders_without_printing_them(value, code, said, tmp_path):
    """The real script under /bin/sh: a placeholder or empty secret stops the service (exit 78, EX_CONFIG)."""
    marker = tmp_path / "started"
    env = {
        "PATH": "/usr/bin:/bin",
        "DRIFTLINE_CHECKED_VARS": "OTHER DRIFTLINE_WEBHOOK_SECRET",
        "OTHER": "fine-value",
        "DRIFTLINE_WEBHOOK_SECRET": value,
    }
    done = subprocess.run(
        ["/bin/sh", str(DOCKER / "require-secrets.sh"), "touch", str(marker)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == code, done.stderr
    assert marker.exists() == (code == 0)
    assert said in done.stderr and (not value or value not in done.stderr + done.stdout)
    if code:
        assert "DRIFTLINE_WEBHOOK_SECRET" in done.stderr


def test_env_example_secrets_are_placeholders_the_check_refuses():
    example = dict(
        line.split("=", 1)
        for line in (DOCKER / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    required = set()
    for service in _compose()["services"].values():
        required |= set(_env(service).get("DRIFTLINE_CHECKED_VARS", "").split())
    compose = (DOCKER / "compose.yaml").read_text()
    for variable, value in example.items():
        is_secret = any(word in variable for word in ("PASSWORD", "SECRET", "AUTH_STRING", "TOKEN"))
        if is_secret:
            assert value.startswith("change-me"), f"{variable}: a shipped default would pass the start-up check"
            assert f"${{{variable}" in compose, variable


def test_least_privilege_the_relay_and_the_servers_get_only_their_credentials():
    from driftline.app.webhook import METRICS_TOKEN_ENV

    services = _compose()["services"]
    s3 = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    holders = {name for name, service in services.items() if s3 & set(_env(service))}
    assert holders == {"minio", "buckets", "mlflow", "deploy", "worker"}, holders
    relay = _env(services["relay"])
    assert not s3 & set(relay) and "POSTGRES_PASSWORD" not in relay
    # /metrics needs a bearer token by default: the relay's variable, required at start-up.
    assert relay[METRICS_TOKEN_ENV].startswith("${DRIFTLINE_METRICS_TOKEN:?")
    assert METRICS_TOKEN_ENV in relay["DRIFTLINE_CHECKED_VARS"].split()
    postgres_password = {name for name, service in services.items() if "POSTGRES_PASSWORD" in _env(service)}
    assert postgres_password == {"postgres", "prefect", "mlflow"}


def test_dockerignore_sends_only_what_the_dockerfile_copies():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**", "exclude everything, then re-include"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied |= {part for part in line.split()[1:-1] if not part.startswith("--")}
    assert copied <= included, f"the Dockerfile copies {sorted(copied - included)}, which .dockerignore leaves out"
    for secret in ("**/.env", "**/*.db"):
        assert secret in lines
    assert not {".git", ".venv", "docker/.env", ".driftline"} & included
