"""Drill: the deployments' concurrency limits hold on a real Prefect server with a worker. Two `train` runs
at once: the second waits (ENQUEUE) and starts after the first ended. Two `monitor` runs at once: the
second is cancelled (CANCEL_NEW) and never starts."""

from __future__ import annotations

import time

import pytest

from driftline.synthetic import make_labelled_series
from tests.drills.conftest import TERMINAL, deployed_project
from tests.servers import prefect_server, wait_until

pytestmark = pytest.mark.slow


def _wait(predicate, timeout: float, what: str, every: float = 2.0):
    return wait_until(predicate, timeout, what, every)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The project's prefect.yaml deployed to a process pool on a real server, and a worker; torn down at the end."""
    root = tmp_path_factory.mktemp("deployed")
    with prefect_server(root / "server") as api, deployed_project(root, api) as project:
        yield project


def test_the_deployments_carry_their_concurrency_limits(deployed):
    expected = {
        ("train-and-promote", "train"): "ENQUEUE",
        ("monitor-drift", "monitor"): "CANCEL_NEW",
        ("retrain", "retrain"): "CANCEL_NEW",
    }
    for (flow, name), strategy in expected.items():
        deployment = deployed.deployment(flow, name)
        assert deployment["global_concurrency_limit"]["limit"] == 1, (name, deployment["global_concurrency_limit"])
        assert deployment["concurrency_options"]["collision_strategy"] == strategy, name


def test_two_train_runs_at_once_run_one_after_the_other_and_two_monitors_cancel_the_second(deployed):
    root = deployed.root
    began = time.monotonic()
    train = deployed.deployment("train-and-promote", "train")
    parameters = deployed.train_parameters()
    # Both exist before the worker starts, so it meets them in one poll: a real collision.
    runs = [deployed.create_run(train, parameters), deployed.create_run(train, {**parameters, "force": True})]
    deployed.start_worker()
    finished = _wait(
        lambda: (
            [r for r in map(deployed.flow_run, runs) if r["state_type"] in TERMINAL]
            if all(deployed.flow_run(i)["state_type"] in TERMINAL for i in runs)
            else None
        ),
        600,
        "both train runs",
    )
    assert [r["state_type"] for r in finished] == ["COMPLETED", "COMPLETED"], [
        (r["name"], r["state_name"]) for r in finished
    ]
    first, second = sorted(finished, key=lambda r: r["start_time"])
    assert second["start_time"] >= first["end_time"], "the two train runs overlapped"
    assert "AwaitingConcurrencySlot" in deployed.state_names(second["id"]), deployed.state_names(second["id"])
    trained = time.monotonic()

    shifted = make_labelled_series(n_rows=800, seed=22, start="2020-04-01")
    shifted.to_csv(root / "new.csv", index=False)
    monitor = deployed.deployment("monitor-drift", "monitor")
    watch = {"data": str(root / "new.csv"), "name": "it", "target_col": "y"}
    checks = [deployed.create_run(monitor, watch), deployed.create_run(monitor, watch)]
    _wait(lambda: all(deployed.flow_run(i)["state_type"] in TERMINAL for i in checks), 300, "both monitor runs")
    done = [deployed.flow_run(i) for i in checks]
    cancelled = [r for r in done if r["state_type"] == "CANCELLED"]
    ran = [r for r in done if r["state_type"] != "CANCELLED"]
    assert len(cancelled) == 1 and len(ran) == 1, [(r["name"], r["state_name"], r["state"]["message"]) for r in done]
    story = [(r["start_time"], r["end_time"], deployed.state_names(r["id"]), r["state"]["message"]) for r in done]
    # Never ran: straight from Scheduled to Cancelled (the server stamps start_time on the cancellation itself).
    assert story[done.index(cancelled[0])][2] == ["Scheduled", "Cancelled"], story
    assert "concurrency limit" in cancelled[0]["state"]["message"], story
    assert ran[0]["state_type"] == "COMPLETED", ran[0]["state"]["message"]
    print(
        f"\nconcurrency drill: two train runs {trained - began:.0f} s (second waited {second['start_time']} vs first "
        f"ended {first['end_time']}); two monitor runs {time.monotonic() - trained:.0f} s"
    )
