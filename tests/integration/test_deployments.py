"""The deployed loop on a real `prefect server start`: prefect.yaml deployed to a process work pool, a
worker running flows, drift events (from the monitor flow and from the signed webhook relay) starting
the retrain deployment through its trigger."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest

from tests.servers import wait_until
import yaml

from driftline.synthetic import make_labelled_series
from driftline.webhook import sign
from tests.integration.conftest import FAST_CONFIG

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEBOUNCE_SECONDS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str, every: float = 1.0):
    return wait_until(predicate, timeout, what, every)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Prefect server + pool + deployments + worker, and a champion to monitor; torn down at the end."""
    root = tmp_path_factory.mktemp("stack")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "DRIFTLINE_HOME"))},
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "driftline",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "DRIFTLINE_HOME": str(root / "home"),
        "DRIFTLINE_PROJECT_DIR": str(ROOT),
        "DRIFTLINE_WEBHOOK_SECRET": "new-secret,old-secret",
    }
    logs = root / "logs"
    logs.mkdir()
    processes: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        handle = (logs / f"{name}.log").open("w")
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(process)
        return process

    def run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    try:
        start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)])
        _wait(lambda: _healthy(api), 180, "the Prefect server")

        data = root / "labelled.csv"
        make_labelled_series(n_rows=1500, seed=11).to_csv(data, index=False)
        config = root / "fast.yaml"
        config.write_text(yaml.safe_dump({"name": "it", **FAST_CONFIG}))
        run([str(BIN / "driftline"), "train", "--config", str(config), "--data", str(data), "--target", "label", "--target-col", "y"], cwd=root)

        # The project's prefect.yaml, with a short debounce so the test can see two separate firings.
        spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
        (retrain,) = [d for d in spec["deployments"] if d["name"] == "retrain"]
        retrain["triggers"][0]["within"] = DEBOUNCE_SECONDS
        prefect_file = root / "prefect.yaml"
        prefect_file.write_text(yaml.safe_dump(spec, sort_keys=False))

        run([str(BIN / "prefect"), "work-pool", "create", "driftline-local", "--type", "process"])
        run([sys.executable, "-m", "deployments.deploy", "--all", "--prefect-file", str(prefect_file)])
        # The worker `make worker` runs: `prefect worker start` with the project's workaround.
        start("worker", [sys.executable, "-m", "deployments.worker", "--pool", "driftline-local", "--limit", "2"])
        webhook_port = _free_port()
        start("webhook", [str(BIN / "driftline"), "webhook", "--host", "127.0.0.1", "--port", str(webhook_port)])
        _wait(lambda: _get(f"http://127.0.0.1:{webhook_port}/healthz") == 200, 60, "the webhook relay")
        yield {"api": api, "env": env, "root": root, "run": run, "webhook": f"http://127.0.0.1:{webhook_port}", "logs": logs}
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _healthy(api: str) -> bool:
    return _get(f"{api}/health") == 200


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except (OSError, urllib.error.HTTPError):
        return 0


def retrain_runs(api: str) -> list[dict]:
    deployment = httpx.get(f"{api}/deployments/name/retrain/retrain", timeout=10).json()
    response = httpx.post(
        f"{api}/flow_runs/filter",
        json={"deployments": {"id": {"any_": [deployment["id"]]}}, "sort": "EXPECTED_START_TIME_ASC"},
        timeout=10,
    )
    return response.json()


def started(runs: list[dict]) -> list[dict]:
    """Runs that got past scheduling (cancelled-as-new and never-started runs excluded)."""
    return [r for r in runs if r["start_time"] is not None]


def test_monitoring_drift_starts_one_retrain_that_records_its_decision(stack):
    root, api = stack["root"], stack["api"]
    shifted = make_labelled_series(n_rows=800, seed=22, start="2020-04-01")
    shifted["x0"] = shifted["x0"] + 1.5
    shifted.to_csv(root / "shifted.csv", index=False)

    done = stack["run"]([str(BIN / "driftline"), "monitor", "--name", "it", "--data", str(root / "shifted.csv"),
                         "--target-col", "y", "--summary-json", str(root / "drift.json")], cwd=root)
    summary = json.loads((root / "drift.json").read_text())
    assert summary["drift_detected"] is True and summary["event_id"], done.stdout

    runs = _wait(lambda: [r for r in retrain_runs(api) if r["state_type"] == "COMPLETED"], 420, "a completed retrain run", 3)
    assert len(runs) == 1
    assert runs[0]["parameters"]["name"] == "it" and runs[0]["parameters"]["reason"].startswith("drift: ")
    # The event names the source with the new rows (the champion's source plus shifted.csv) and the window.
    parameters = runs[0]["parameters"]
    assert parameters["data"] == summary["retrain_data"]["path"] and summary["retrain_data"]["rows"]["total"] == 2300
    assert (parameters["window_start"], parameters["window_end"]) == (summary["window_start"], summary["window_end"])

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=stack["env"]["MLFLOW_TRACKING_URI"])
    retrained = [r for r in client.search_runs([client.get_experiment_by_name("driftline-it").experiment_id])
                 if r.data.tags.get("driftline.trigger", "").startswith("retrain: drift: ")]
    assert len(retrained) == 1
    assert retrained[0].data.tags["driftline.decision"] in {"promote", "keep-champion"}
    assert retrained[0].data.tags["driftline.source"] == parameters["data"]
    assert retrained[0].info.status == "FINISHED"


def test_a_burst_of_fifty_events_starts_exactly_one_run(stack):
    api = stack["api"]
    time.sleep(DEBOUNCE_SECONDS + 2)  # let the previous test's debounce window close
    before = len(retrain_runs(api))
    burst = (
        "from prefect.events import emit_event\n"
        "for i in range(50):\n"
        "    emit_event(event='driftline.drift.detected', resource={'prefect.resource.id': 'driftline.model.it',"
        " 'prefect.resource.name': 'it'}, payload={'reason': f'burst {i}'})\n"
    )
    began = time.monotonic()
    stack["run"]([sys.executable, "-c", burst])
    assert time.monotonic() - began < 30

    _wait(lambda: len(retrain_runs(api)) > before, 120, "the burst's retrain run")
    time.sleep(15)  # any further firing would have created its run by now
    new = retrain_runs(api)[before:]
    assert len(new) == 1, [(r["name"], r["state_type"]) for r in new]
    assert new[0]["parameters"]["reason"].startswith("burst ")


def test_signed_webhook_calls_start_a_run_and_forged_ones_do_not(stack):
    api, url = stack["api"], stack["webhook"] + "/v1/drift"
    time.sleep(DEBOUNCE_SECONDS + 2)
    before = len(retrain_runs(api))

    def post(body: bytes, timestamp: str, secret: bytes) -> int:
        headers = {"Content-Type": "application/json", "X-Driftline-Timestamp": timestamp,
                   "X-Driftline-Signature": sign(secret, timestamp, body)}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers, method="POST"), timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    body = json.dumps({"model": "it", "reason": "vendor monitor: PSI 0.31 on spread"}).encode()
    now = str(int(time.time()))
    assert post(body, now, b"forged") == 401
    stale = str(int(time.time()) - 3600)
    assert post(body, stale, b"new-secret") == 401
    time.sleep(8)
    assert len(retrain_runs(api)) == before  # nothing started by refused calls

    assert post(body, now, b"old-secret") == 202  # the second secret of a rotation is accepted
    assert post(body, now, b"old-secret") == 401  # the same call replayed
    _wait(lambda: len(retrain_runs(api)) > before, 120, "the webhook's retrain run")
    time.sleep(10)
    new = retrain_runs(api)[before:]
    assert len(new) == 1 and new[0]["parameters"]["reason"] == "vendor monitor: PSI 0.31 on spread"
