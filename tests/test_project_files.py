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


def test_retrain_trigger_takes_the_source_and_window_from_the_drift_event_and_none_without_them():
    """The loop shares one source: monitor has no data of its own (it reads the champion's source) and
    the retrain gets the event's data and window; an event without them (the relay) renders None."""
    from prefect.server.events.actions import RunDeployment
    from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate

    deployments = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    assert "data" not in deployments["monitor"].get("parameters", {})
    parameters = dict(deployments["retrain"]["triggers"][0]["parameters"])
    RunDeployment._upgrade_v1_templates(parameters)  # what the server does with "{{ ... }}" strings

    def render(payload: dict) -> dict:
        event = {"payload": payload, "resource": {"name": "btc"}}
        return hydrate(parameters, HydrationContext(raise_on_error=True, render_jinja=True, jinja_context={"event": event}))

    full = render({"reason": "drift: x", "data": "/d/combined.parquet", "window_start": "2020-01-01T00:00:00", "window_end": "2020-02-01T00:00:00"})
    assert full == {"name": "btc", "reason": "drift: x", "data": "/d/combined.parquet",
                    "window_start": "2020-01-01T00:00:00", "window_end": "2020-02-01T00:00:00"}
    assert render({"reason": "vendor"}) == {"name": "btc", "reason": "vendor", "data": None, "window_start": None, "window_end": None}


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
