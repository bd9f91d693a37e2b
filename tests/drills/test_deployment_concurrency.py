"""Drill: the deployments' concurrency limits hold on a real Prefect server with a worker. Two `train` runs
at once: the second waits (ENQUEUE) and starts after the first ended. Two `monitor` runs at once: the
second is cancelled (CANCEL_NEW) and never starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from driftline.synthetic import make_labelled_series
from tests.integration.conftest import FAST_CONFIG
from tests.servers import prefect_server, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def _wait(predicate, timeout: float, what: str, every: float = 2.0):
    return wait_until(predicate, timeout, what, every)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The project's prefect.yaml deployed to a process pool on a real server, and a worker; torn down at the end."""
    root = tmp_path_factory.mktemp("deployed")
    with prefect_server(root / "server") as api:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "DRIFTLINE_HOME"))},
            "PREFECT_HOME": str(root / "client"),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "DRIFTLINE_HOME": str(root / "home"),
            "DRIFTLINE_PROJECT_DIR": str(ROOT),
        }
        for args in (
            [str(BIN / "prefect"), "work-pool", "create", "driftline-local", "--type", "process"],
            [sys.executable, "-m", "deployments.deploy", "--all", "--prefect-file", str(ROOT / "prefect.yaml")],
        ):
            done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        data = root / "labelled.csv"
        make_labelled_series(n_rows=1500, seed=11).to_csv(data, index=False)
        config = root / "fast.yaml"
        config.write_text(yaml.safe_dump({"name": "it", **FAST_CONFIG}))
        log = (root / "worker.log").open("w")
        worker = None

        def start_worker() -> None:
            nonlocal worker
            worker = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", "driftline-local", "--limit", "2"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

        try:
            yield {"api": api, "root": root, "data": data, "config": config, "start_worker": start_worker}
        finally:
            if worker is not None and worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
            log.close()


def _deployment(api: str, flow: str, name: str) -> dict:
    return httpx.get(f"{api}/deployments/name/{flow}/{name}", timeout=10).raise_for_status().json()


def _create_run(api: str, deployment: dict, parameters: dict) -> str:
    response = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters}, timeout=10)
    return response.raise_for_status().json()["id"]


def _run(api: str, run_id: str) -> dict:
    return httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).raise_for_status().json()


def _state_names(api: str, run_id: str) -> list[str]:
    states = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": run_id}, timeout=10).raise_for_status().json()
    return [s["name"] for s in sorted(states, key=lambda s: s["timestamp"])]


def test_the_deployments_carry_their_concurrency_limits(deployed):
    api = deployed["api"]
    expected = {("train-and-promote", "train"): "ENQUEUE", ("monitor-drift", "monitor"): "CANCEL_NEW", ("retrain", "retrain"): "CANCEL_NEW"}
    for (flow, name), strategy in expected.items():
        deployment = _deployment(api, flow, name)
        assert deployment["global_concurrency_limit"]["limit"] == 1, (name, deployment["global_concurrency_limit"])
        assert deployment["concurrency_options"]["collision_strategy"] == strategy, name


def test_two_train_runs_at_once_run_one_after_the_other_and_two_monitors_cancel_the_second(deployed):
    api, root = deployed["api"], deployed["root"]
    began = time.monotonic()
    train = _deployment(api, "train-and-promote", "train")
    parameters = {"config_file": str(deployed["config"]), "data": str(deployed["data"]), "target": "label", "target_col": "y"}
    # Both exist before the worker starts, so it meets them in one poll: a real collision.
    runs = [_create_run(api, train, parameters), _create_run(api, train, {**parameters, "force": True})]
    deployed["start_worker"]()
    finished = _wait(lambda: [r for r in map(lambda i: _run(api, i), runs) if r["state_type"] in TERMINAL] if all(
        _run(api, i)["state_type"] in TERMINAL for i in runs) else None, 600, "both train runs")
    assert [r["state_type"] for r in finished] == ["COMPLETED", "COMPLETED"], [(r["name"], r["state_name"]) for r in finished]
    first, second = sorted(finished, key=lambda r: r["start_time"])
    assert second["start_time"] >= first["end_time"], "the two train runs overlapped"
    assert "AwaitingConcurrencySlot" in _state_names(api, second["id"]), _state_names(api, second["id"])
    trained = time.monotonic()

    shifted = make_labelled_series(n_rows=800, seed=22, start="2020-04-01")
    shifted.to_csv(root / "new.csv", index=False)
    monitor = _deployment(api, "monitor-drift", "monitor")
    watch = {"data": str(root / "new.csv"), "name": "it", "target_col": "y"}
    checks = [_create_run(api, monitor, watch), _create_run(api, monitor, watch)]
    _wait(lambda: all(_run(api, i)["state_type"] in TERMINAL for i in checks), 300, "both monitor runs")
    done = [_run(api, i) for i in checks]
    cancelled = [r for r in done if r["state_type"] == "CANCELLED"]
    ran = [r for r in done if r["state_type"] != "CANCELLED"]
    assert len(cancelled) == 1 and len(ran) == 1, [(r["name"], r["state_name"], r["state"]["message"]) for r in done]
    story = [(r["start_time"], r["end_time"], _state_names(api, r["id"]), r["state"]["message"]) for r in done]
    # Never ran: straight from Scheduled to Cancelled (the server stamps start_time on the cancellation itself).
    assert story[done.index(cancelled[0])][2] == ["Scheduled", "Cancelled"], story
    assert "concurrency limit" in cancelled[0]["state"]["message"], story
    assert ran[0]["state_type"] == "COMPLETED", ran[0]["state"]["message"]
    print(f"\nconcurrency drill: two train runs {trained - began:.0f} s (second waited {second['start_time']} vs first "
          f"ended {first['end_time']}); two monitor runs {time.monotonic() - trained:.0f} s")
