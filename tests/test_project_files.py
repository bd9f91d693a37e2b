"""The files other tools read (prefect.yaml, docker/) point at things that exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_prefect_yaml_entrypoints_resolve_to_flows():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert {"train", "monitor", "retrain"} <= set(deployments)
    retrain = deployments["retrain"]
    assert retrain["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    assert deployments["train"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert deployments["monitor"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    (trigger,) = retrain["triggers"]
    assert trigger["expect"] == ["driftline.drift.detected"] and trigger["within"] > 0
    for deployment in deployments.values():
        path, func = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert hasattr(flow, "deploy"), f"{deployment['entrypoint']} is not a Prefect flow"
        assert set(deployment.get("parameters", {})) <= set(flow.parameters.properties)
        for trigger in deployment.get("triggers", []):
            assert set(trigger["parameters"]) <= set(flow.parameters.properties)
        assert deployment["work_pool"]["name"] == "driftline-local"
        config = deployment.get("parameters", {}).get("config_file")
        assert config is None or (ROOT / config).is_file()
    assert deployments["train"]["schedules"][0]["cron"]


def test_compose_services_build_from_the_dockerfile_and_keep_secrets_out():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "prefect", "mlflow", "worker"} <= set(services)
    for name in ("prefect", "mlflow", "worker"):
        build = services[name]["build"]
        assert (ROOT / "docker" / build["context"] / build["dockerfile"]).resolve().is_file()
    text = (ROOT / "docker" / "compose.yaml").read_text()
    # Every password is an environment reference, never a literal.
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET)[A-Z_]*:\s", line):
            assert "${" in line, line


def test_dockerfile_installs_from_the_lock_file():
    # What it copies, and hadolint, are checked in tests/test_docker_files.py.
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile and "COPY pyproject.toml uv.lock" in dockerfile
