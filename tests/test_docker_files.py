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
            assert rest[:2] in (["-m", "deployments.deploy"], ["-m", "deployments.worker"]), argv
            if rest[1] == "deployments.deploy":
                continue
            # deployments.worker is `prefect worker start` with a workaround: its flags are that command's.
            program, rest, path = "prefect", ["worker", "start", *rest[2:]], ["worker", "start"]
        assert (BIN / program).exists(), f"{program} is not installed by uv.lock"
        if program == "prefect" and path[:1] == ["work-pool"]:
            path = path[:2]
        help_text = _run(BIN / program, *path, "--help").stdout
        assert "Usage" in help_text, f"{program} {' '.join(path)} --help failed"
        for flag in (w.split("=")[0] for w in rest if w.startswith("--")):
            assert flag in help_text, f"{program} {' '.join(path)} has no option {flag}"
        checked += 1
    assert checked >= 6
