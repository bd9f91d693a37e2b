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
    assert {"train", "monitor", "retrain", "score"} <= set(deployments)
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
    # Daily scoring of the rows that are new since the last batch, on the source monitor watches.
    score = deployments["score"]
    assert score["entrypoint"] == "flows/scoring.py:score_batch"
    assert len(score["schedules"][0]["cron"].split()) == 5 and score["schedules"][0]["cron"].split()[2:] == [
        "*",
        "*",
        "*",
    ]
    # One source for the loop: neither names data, so both read the champion's recorded source.
    assert score["parameters"]["new_rows_only"] is True
    assert "data" not in score["parameters"] and "data" not in deployments["monitor"]["parameters"]
    assert score["parameters"]["name"] == deployments["monitor"]["parameters"]["name"]
    assert "driftline" in score["tags"]  # the failed-run notification matches on this tag


def test_flows_take_the_pipeline_settings_as_one_typed_parameter():
    from driftline.config import PipelineSettings
    from flows.monitoring import monitor_drift, retrain
    from flows.training import train_and_promote

    for flow in (train_and_promote, retrain, monitor_drift):
        schema = flow.parameters.model_dump()
        assert schema["properties"]["settings"]["anyOf"][0] == {"$ref": "#/definitions/PipelineSettings"}, flow.name
        assert set(schema["definitions"]["PipelineSettings"]["properties"]) == set(PipelineSettings.model_fields)


def test_the_automations_file_builds_valid_prefect_automations():
    import uuid

    from deployments.notifications import DEFAULT_FILE, build_automations, load_spec

    block = uuid.uuid4()
    automations = {a.name: a for a in build_automations(load_spec(DEFAULT_FILE), block)}
    # The events this project emits (and Prefect's failed-run event) are the ones the file listens for.
    from tasks.events import DRIFT_EVENT, PROMOTED_EVENT, RETRAINED_EVENT, ROLLED_BACK_EVENT

    listened = set().union(*(a.trigger.expect for a in automations.values()))
    assert {DRIFT_EVENT, PROMOTED_EVENT, RETRAINED_EVENT, ROLLED_BACK_EVENT, "prefect.flow-run.Failed"} <= listened
    for automation in automations.values():
        (action,) = automation.actions
        assert action.type == "send-notification" and action.block_document_id == block
        assert "{{ event.id }}" in action.body  # every message names its event
    failed = automations["driftline-notify-failed-run"].trigger
    assert failed.match_related.root == {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.driftline"}


def test_the_retrain_notification_says_the_decision_and_the_rows_or_the_skip():
    import uuid
    from types import SimpleNamespace

    import jinja2

    from deployments.notifications import DEFAULT_FILE, build_automations, load_spec
    from tasks.events import retrained_payload

    (automation,) = [
        a for a in build_automations(load_spec(DEFAULT_FILE), uuid.uuid4()) if a.name == "driftline-notify-retrained"
    ]
    (action,) = automation.actions
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    summary = {
        "model_version": "3",
        "decision": "keep-champion",
        "champion_version_after": "2",
        "training_cutoff": "2009-06-30",
        "data_start": "2000-01-03",
        "data_end": "2009-12-31",
        "source": "data/prices",
        "skipped": False,
        "reasons": ["no gain"],
    }
    done = SimpleNamespace(id="e1", payload=retrained_payload("driftline-x", summary, "drift: PSI"))
    text = env.from_string(action.subject).render(event=done) + "\n" + env.from_string(action.body).render(event=done)
    assert (
        "retrain of driftline-x: keep-champion" in text
        and "registered v3, decision keep-champion; champion is v2" in text
    )
    assert "rows 2000-01-03 .. 2009-12-31, training cutoff 2009-06-30" in text and "Why: no gain" in text
    skipped = SimpleNamespace(
        id="e2", payload=retrained_payload("driftline-x", {"skipped": True, "why": "cooldown: 2 h ago"}, "drift")
    )
    text = (
        env.from_string(action.subject).render(event=skipped)
        + "\n"
        + env.from_string(action.body).render(event=skipped)
    )
    assert (
        "retrain of driftline-x: skipped" in text
        and "retrain skipped: cooldown: 2 h ago" in text
        and "decision" not in text
    )


def test_a_broken_automations_file_names_the_entry_and_key(tmp_path):
    import pytest

    from deployments.notifications import NotificationSetupError, load_spec

    path = tmp_path / "a.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "block": {"type": "custom-webhook", "name": "n"},
                "automations": [{"name": "x", "trigger": {}, "bdy": "y"}],
            }
        )
    )
    with pytest.raises(NotificationSetupError, match=r"automations\[0\]: unknown key\(s\) \['bdy'\]"):
        load_spec(path)


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
        return hydrate(
            parameters, HydrationContext(raise_on_error=True, render_jinja=True, jinja_context={"event": event})
        )

    full = render(
        {
            "reason": "drift: x",
            "data": "/d/combined.parquet",
            "window_start": "2020-01-01T00:00:00",
            "window_end": "2020-02-01T00:00:00",
        }
    )
    assert full == {
        "name": "btc",
        "reason": "drift: x",
        "data": "/d/combined.parquet",
        "window_start": "2020-01-01T00:00:00",
        "window_end": "2020-02-01T00:00:00",
    }
    assert render({"reason": "vendor"}) == {
        "name": "btc",
        "reason": "vendor",
        "data": None,
        "window_start": None,
        "window_end": None,
    }


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
