"""The deployed loop on a real `prefect server start`: prefect.yaml deployed to a process work pool, a
worker running flows, drift events (from the monitor flow and from the signed webhook relay) starting
the retrain deployment through its trigger."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from driftline.app.webhook import sign
from driftline.synthetic import make_labelled_series
from tests import warm
from tests.integration.conftest import FAST_CONFIG
from tests.servers import api_call, kill_flow_runs, prefect_server, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEBOUNCE_SECONDS = 20

NEW_SECRET = "new-secret-" + "4e1b7c9a0d" * 3  # 32+ bytes: the relay refuses shorter ones
OLD_SECRET = "old-secret-" + "a8d2f6c3e5" * 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str, every: float = 1.0):
    return wait_until(predicate, timeout, what, every)


class NotificationSink:
    """A webhook receiver on 127.0.0.1: every POST body the notification block sends, in order."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def containing(self, text: str) -> list[dict]:
        return [m for m in list(self.messages) if text in f"{m.get('subject')}\n{m.get('body')}"]


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
        "DRIFTLINE_WEBHOOK_SECRET": f"{NEW_SECRET},{OLD_SECRET}",
    }
    sink = NotificationSink()
    env["DRIFTLINE_NOTIFY_URL"] = sink.url
    logs = root / "logs"
    logs.mkdir()
    processes: list[warm.Process | subprocess.Popen] = []
    server = ExitStack()

    def start(name: str, args: list[str]) -> warm.Process | subprocess.Popen:
        # Forked from the suite's warm parent (tests/warm.py), in a session of its own.
        process = warm.popen(args, cwd=ROOT, env=env, stdout=logs / f"{name}.log", start_new_session=True)
        processes.append(process)
        return process

    def run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        done = warm.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, with_prefect=True)
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    try:
        # tests/servers.py: a copy of the session's migrated database, no UI (stopped last, in `finally`).
        assert server.enter_context(prefect_server(root / "server", port=port)) == api

        # The project's prefect.yaml and automations, with a short debounce so the tests can see separate firings.
        spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
        (retrain,) = [d for d in spec["deployments"] if d["name"] == "retrain"]
        retrain["triggers"][0]["within"] = DEBOUNCE_SECONDS
        # The train schedule stays active (Prefect's scheduler is tested below), at a time of day hours away:
        # its runs must not fall due while the stack's worker is up (a CI run crossing 06:30 on a weekday).
        (train,) = [d for d in spec["deployments"] if d["name"] == "train"]
        train_hour = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=3)).hour
        train["schedules"][0]["cron"] = f"30 {train_hour} * * 1-5"
        prefect_file = root / "prefect.yaml"
        prefect_file.write_text(yaml.safe_dump(spec, sort_keys=False))
        automations = yaml.safe_load((ROOT / "deployments" / "automations.yaml").read_text())
        (drift,) = [a for a in automations["automations"] if "driftline.drift.detected" in a["trigger"]["expect"]]
        drift["trigger"]["within"] = DEBOUNCE_SECONDS
        automations_file = root / "automations.yaml"
        automations_file.write_text(yaml.safe_dump(automations, sort_keys=False))

        # `python -m prefect`: Prefect's own CLI, forked warm by tests/warm.py like the other commands here.
        run([sys.executable, "-m", "prefect", "work-pool", "create", "driftline-local", "--type", "process"])
        deployed = run(
            [
                sys.executable,
                "-m",
                "deployments.deploy",
                "--all",
                "--prefect-file",
                str(prefect_file),
                "--automations",
                str(automations_file),
            ]
        )
        # Deploying again updates the automations by name instead of adding copies.
        redeployed = run([sys.executable, "-m", "deployments.notifications", "--file", str(automations_file)])

        # Trained after deploying: the first champion's promotion is the first notification. The pipeline's
        # one source is a folder of partitions; new rows arrive as new files in it.
        source = root / "source"
        source.mkdir()
        # Hive-style date partitions of one series (files without a symbol column, all named alike: one symbol).
        (source / "date=2020-01-01").mkdir()
        make_labelled_series(n_rows=1500, seed=11).to_csv(source / "date=2020-01-01" / "rows.csv", index=False)
        config = root / "fast.yaml"
        config.write_text(yaml.safe_dump({"name": "it", **FAST_CONFIG}))
        run(
            [
                str(BIN / "driftline"),
                "train",
                "--config",
                str(config),
                "--data",
                str(source),
                "--target",
                "label",
                "--target-col",
                "y",
            ],
            cwd=root,
        )
        # The worker `make worker` runs: `prefect worker start` with the project's workaround.
        start("worker", [sys.executable, "-m", "deployments.worker", "--pool", "driftline-local", "--limit", "2"])
        webhook_port = _free_port()
        start("webhook", [str(BIN / "driftline"), "webhook", "--host", "127.0.0.1", "--port", str(webhook_port)])
        _wait(lambda: _get(f"http://127.0.0.1:{webhook_port}/healthz") == 200, 60, "the webhook relay")
        yield {
            "api": api,
            "env": env,
            "root": root,
            "run": run,
            "webhook": f"http://127.0.0.1:{webhook_port}",
            "logs": logs,
            "sink": sink,
            "source": source,
            "train_hour": train_hour,
            "deploy_output": deployed.stdout + deployed.stderr + redeployed.stdout + redeployed.stderr,
        }
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                # Idle they exit in under a second; a worker with flow runs in flight waits for them (30 s and
                # more), which cleanup need not: each is killed with its session.
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        kill_flow_runs(api)  # runs the worker started (each in a session of its own) that were still going
        server.close()
        sink.server.shutdown()


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


def _after_the_debounce(api: str) -> None:
    """Wait until the retrain trigger's debounce window, opened at the latest drift event at most, has closed
    (a fixed DEBOUNCE_SECONDS + 2 s sleep waited for it even when it had closed long before)."""
    page = api_call(
        "POST", f"{api}/events/filter", json={"filter": {"event": {"name": ["driftline.drift.detected"]}}}
    ).json()
    if page["events"]:
        latest = max(pd.Timestamp(e["occurred"]) for e in page["events"])
        closes = latest + pd.Timedelta(seconds=DEBOUNCE_SECONDS + 2)
        time.sleep(max(0.0, (closes - pd.Timestamp.now(tz="UTC")).total_seconds()))


def _flow_run(api: str, run_id: str) -> dict:
    return api_call("GET", f"{api}/flow_runs/{run_id}").json()


def test_new_partitions_are_judged_alone_and_the_retrain_they_start_trains_on_them(stack):
    """The loop as deployed: new partitions land in the shared source; the `monitor` deployment (no data
    parameter, as its schedule starts it) judges only the rows after the champion's cutoff; its drift
    event starts one `retrain` run that trains on the source with them; the sink hears the drift and the
    decision."""
    from mlflow.tracking import MlflowClient

    api, sink, source = stack["api"], stack["sink"], stack["source"]
    uri = stack["env"]["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not a registry URI another test left in os.environ
    cutoff = client.get_model_version("driftline-it", "1").tags["driftline.train_cutoff"]
    first = pd.read_csv(source / "date=2020-01-01" / "rows.csv")
    # The same series continued, two partitions, with the first feature's level shifted.
    later = make_labelled_series(
        n_rows=800, seed=22, start=str(pd.Timestamp(first["timestamp"].iloc[-1]) + pd.Timedelta(hours=1))
    )
    later["x0"] = later["x0"] + 1.5
    for part in (later.iloc[:400], later.iloc[400:]):
        (source / f"date={part['timestamp'].iloc[0][:10]}").mkdir()
        part.to_csv(source / f"date={part['timestamp'].iloc[0][:10]}" / "rows.csv", index=False)

    monitor = httpx.get(f"{api}/deployments/name/monitor-drift/monitor", timeout=10).json()
    assert "data" not in monitor["parameters"]
    # A 503 (SQLite busy on a loaded machine) is retried, as Prefect's own client does.
    started_run = api_call(
        "POST", f"{api}/deployments/{monitor['id']}/create_flow_run", json={"parameters": {"name": "it"}}
    ).json()
    _wait(lambda: _flow_run(api, started_run["id"])["state_type"] == "COMPLETED", 420, "the monitor run", 3)

    experiment = client.get_experiment_by_name("driftline-it").experiment_id
    (judged,) = [
        r for r in client.search_runs([experiment]) if r.data.tags.get("prefect.flow_run_id") == started_run["id"]
    ]
    tags = judged.data.tags
    # Judged: the rows after the champion's training cutoff, i.e. its hold-out rows and the new partitions;
    # the rows it was trained on served only as feature history.
    held_out = first[first["timestamp"] > cutoff]
    assert 250 <= len(held_out) <= 260  # the fast config's evaluation window of 250, and the purge gap before it
    assert tags["driftline.source"] == str(source) and tags["driftline.rows_judged"] == str(len(held_out) + 800), tags
    assert (tags["driftline.window_start"], tags["driftline.window_end"]) == (
        held_out["timestamp"].iloc[0],
        later["timestamp"].iloc[-1],
    )
    assert judged.data.metrics["drift_detected"] == 1.0

    runs = _wait(
        lambda: [r for r in retrain_runs(api) if r["state_type"] == "COMPLETED"], 420, "a completed retrain run", 3
    )
    assert len(runs) == 1
    parameters = runs[0]["parameters"]
    assert parameters["name"] == "it" and parameters["reason"].startswith("drift: ")
    assert parameters["data"] == str(source)  # the shared source itself: the new rows are in it
    assert (parameters["window_start"], parameters["window_end"]) == (
        tags["driftline.window_start"],
        tags["driftline.window_end"],
    )

    retrained = [
        r
        for r in client.search_runs([experiment])
        if r.data.tags.get("driftline.trigger", "").startswith("retrain: drift: ")
    ]
    assert len(retrained) == 1 and retrained[0].info.status == "FINISHED"
    decision = retrained[0].data.tags["driftline.decision"]
    version_tags = client.get_model_version("driftline-it", "2").tags
    assert decision == "keep-champion", version_tags.get("driftline.reasons")
    assert retrained[0].data.tags["driftline.source"] == str(source)
    new_cutoff = version_tags["driftline.train_cutoff"]
    assert later["timestamp"].iloc[0] <= new_cutoff <= parameters["window_end"]  # it trained on new rows

    window = f"Judged rows {parameters['window_start']} .. {parameters['window_end']}; a retrain trains on {source}"
    _wait(lambda: sink.containing(window), 120, "the drift notification", 2)
    told = _wait(lambda: sink.containing("retrain of driftline-it:"), 120, "the retrain's notification", 2)
    assert len(sink.containing(window)) == 1 and len(told) == 1
    assert (
        f"registered v2, decision {decision}" in told[0]["body"] and f"training cutoff {new_cutoff}" in told[0]["body"]
    )


@contextmanager
def _held(api: str) -> Iterator[None]:
    """The pool's queue paused: the retrain runs a trigger creates meanwhile are counted, not executed (each
    would be a cold flow-run process whose retrain the cooldown skips; the first test runs one end to end).
    Afterwards the held runs are deleted and the queue resumed, so later tests find the worker as deployed."""
    queue = f"{api}/work_pools/driftline-local/queues/default"
    api_call("PATCH", queue, json={"is_paused": True})
    before = {r["id"] for r in retrain_runs(api)}
    try:
        yield
    finally:
        held_runs = [r for r in retrain_runs(api) if r["id"] not in before]
        for held_run in held_runs:
            api_call("DELETE", f"{api}/flow_runs/{held_run['id']}")
        api_call("PATCH", queue, json={"is_paused": False})
    assert all(r["state_type"] == "SCHEDULED" for r in held_runs), [(r["name"], r["state_type"]) for r in held_runs]


@pytest.fixture
def held(stack):
    with _held(stack["api"]):
        yield


def test_a_burst_of_fifty_events_starts_exactly_one_run(stack, held):
    api = stack["api"]
    _after_the_debounce(api)  # let the previous test's debounce window close
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


def test_signed_webhook_calls_start_a_run_and_forged_ones_do_not(stack, held):
    api, url = stack["api"], stack["webhook"] + "/v1/drift"
    _after_the_debounce(api)
    before = len(retrain_runs(api))

    def post(body: bytes, timestamp: str, secret: bytes) -> int:
        headers = {
            "Content-Type": "application/json",
            "X-Driftline-Timestamp": timestamp,
            "X-Driftline-Signature": sign(secret, timestamp, body),
        }
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, data=body, headers=headers, method="POST"), timeout=10
            ) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    body = json.dumps({"model": "it", "reason": "vendor monitor: PSI 0.31 on spread"}).encode()
    now = str(int(time.time()))
    assert post(body, now, b"forged") == 401
    stale = str(int(time.time()) - 3600)
    assert post(body, stale, NEW_SECRET.encode()) == 401
    time.sleep(8)
    assert len(retrain_runs(api)) == before  # nothing started by refused calls

    assert post(body, now, OLD_SECRET.encode()) == 202  # the second secret of a rotation is accepted
    assert post(body, now, OLD_SECRET.encode()) == 401  # the same call replayed
    _wait(lambda: len(retrain_runs(api)) > before, 120, "the webhook's retrain run")
    time.sleep(10)
    new = retrain_runs(api)[before:]
    assert len(new) == 1 and new[0]["parameters"]["reason"] == "vendor monitor: PSI 0.31 on spread"


def _typed(prop: dict) -> dict:
    """The non-null branch of an optional field's schema."""
    return next(branch for branch in prop.get("anyOf", [prop]) if branch.get("type") != "null")


def test_deployments_offer_the_pipeline_settings_as_a_typed_form(stack):
    api = stack["api"]
    for flow_name, name in (("train-and-promote", "train"), ("retrain", "retrain"), ("monitor-drift", "monitor")):
        schema = httpx.get(f"{api}/deployments/name/{flow_name}/{name}", timeout=10).json()["parameter_openapi_schema"]
        ref = _typed(schema["properties"]["settings"])["$ref"].split("/")[-1]
        fields = schema["definitions"][ref]["properties"]
        assert _typed(fields["target_kind"]) == {"type": "string", "enum": ["direction", "volatility", "label"]}, name
        assert (
            _typed(fields["target_horizon"])["type"] == "integer"
            and _typed(fields["evaluation_window"])["type"] == "integer"
        )
        families = _typed(fields["model_families"])
        assert families["type"] == "array" and set(families["items"]["enum"]) == {
            "logreg",
            "random_forest",
            "xgboost",
            "lightgbm",
        }
        assert _typed(fields["drift_share"])["type"] == "number" and _typed(fields["drift_share"])["maximum"] == 1.0

    score = httpx.get(f"{api}/deployments/name/score-batch/score", timeout=10).json()
    (schedule,) = score["schedules"]
    assert schedule["schedule"]["cron"].endswith("* * *") and score["parameters"]["new_rows_only"] is True
    assert {"since", "new_rows_only"} <= set(score["parameter_openapi_schema"]["properties"])


def test_notifications_reach_the_webhook_block_once_each(stack):
    """Drift, promotion, rollback and a failed run, each through its automation to the webhook sink, once."""
    api, sink, run = stack["api"], stack["sink"], stack["run"]
    output = stack["deploy_output"]
    # Prefect's advice after each deployment names its stock worker: the deploy ends by naming ours.
    advice, note = (
        "prefect worker start --pool 'driftline-local'",
        "Driftline: start the flows' worker with `make worker`",
    )
    assert advice in output and note in output and output.index(note) > output.rindex(advice)
    assert (
        "created automation driftline-notify-drift" in output and "updated automation driftline-notify-drift" in output
    )
    assert sink.url not in output  # the URL is a secret of the block
    automations = httpx.post(f"{api}/automations/filter", json={}, timeout=10).json()
    assert sorted(a["name"] for a in automations if a["name"].startswith("driftline-notify")) == [
        "driftline-notify-drift",
        "driftline-notify-failed-run",
        "driftline-notify-promoted",
        "driftline-notify-retrained",
        "driftline-notify-rolled-back",
    ]
    block = httpx.get(f"{api}/block_types/slug/custom-webhook/block_documents/name/driftline-notify", timeout=10).text
    assert sink.url not in block
    # The earlier tests' drift notifications for "it": their debounce window closes while the rest runs.
    drift_window_closed = time.monotonic() + DEBOUNCE_SECONDS + 2

    # A failed run of a deployment: scoring a model that is not registered.
    deployment = httpx.get(f"{api}/deployments/name/score-batch/score", timeout=10).json()
    response = api_call(
        "POST",
        f"{api}/deployments/{deployment['id']}/create_flow_run",
        check=False,
        json={"parameters": {"name": "nobody"}},
    )
    assert response.status_code == 201, response.text
    flow_run = response.json()
    # Rollback: two versions of another model, champion v2, then `driftline rollback` (back to v1).
    run(
        [
            sys.executable,
            "-c",
            (
                "from tests.integration.conftest import register_versions\n"
                "from driftline.adapters import registry\n"
                "register_versions('driftline-notify', 2)\n"
                "aliases = registry.MlflowAliasRegistry()\n"
                "aliases.move_champion(registry.ChampionMove('driftline-notify', '1', None, 'first', ''))\n"
                "aliases.move_champion(registry.ChampionMove('driftline-notify', '2', '1', 'second', ''))\n"
            ),
        ]
    )
    rolled = run(
        [str(BIN / "driftline"), "rollback", "--name", "notify", "--reason", "v2 misbehaves"], cwd=stack["root"]
    )
    rollback_event = re.search(r"emitted driftline.model.rolled-back \(event ([0-9a-f-]+)\)", rolled.stdout).group(1)
    # Drift: the event the monitor flow and the webhook relay emit. It starts a retrain run too (skipped by the
    # cooldown), held unexecuted (`_held`) once the worker has taken the failing run above.
    _wait(lambda: _flow_run(api, flow_run["id"])["state_type"] == "FAILED", 240, "the score run to fail", 2)
    time.sleep(max(0.0, drift_window_closed - time.monotonic()))
    with _held(api):
        emitted = run(
            [
                sys.executable,
                "-c",
                (
                    "from tasks.events import emit_drift_event\n"
                    "print(emit_drift_event('it', {'reason': 'drift: notification test', "
                    "'model_version': '1', 'top_features': ['x0'], 'report': 'nowhere'}))"
                ),
            ]
        )
        drift_event = emitted.stdout.strip().splitlines()[-1]

        expected = {
            "drift": drift_event,
            "promotion": "driftline-it v1 promoted",  # the fixture's first training, through the flow
            "rollback": rollback_event,
            "failed run": flow_run["id"],
        }
        for what, text in expected.items():
            _wait(lambda text=text: sink.containing(text), 240, f"the {what} notification", 2)
        time.sleep(10)  # a duplicate would have arrived by now
    counts = {what: len(sink.containing(text)) for what, text in expected.items()}
    assert counts == dict.fromkeys(expected, 1), counts
    (drift,) = sink.containing(drift_event)
    assert drift["subject"] == "Driftline: drift detected on it" and "drift: notification test" in drift["body"]
    (rollback,) = sink.containing(rollback_event)
    assert "from version 2 to 1" in rollback["body"] and "v2 misbehaves" in rollback["body"]
    (failed,) = sink.containing(flow_run["id"])
    assert (
        failed["subject"].endswith("of score ended Failed")
        and "no model driftline-nobody in the registry" in failed["body"]
    )
    assert httpx.get(f"{api}/flow_runs/{flow_run['id']}", timeout=10).json()["state_type"] == "FAILED"


def test_an_active_schedule_gets_its_next_runs_scheduled(stack):
    """Prefect's scheduler inserts the next runs of every active schedule (train: weekdays, at 06:30 UTC in
    prefect.yaml, hours from now in the stack). On SQLAlchemy 2.1 (uv.lock's) that insert fails in a plain
    `prefect server start` (a hybrid property needs bulk_dml) and no run is ever scheduled, with nothing said
    to the user; deployments/server.py, which `make serve` and the tests run, restores it."""
    api = stack["api"]
    train = httpx.get(f"{api}/deployments/name/train-and-promote/train", timeout=10).json()
    assert [s["active"] for s in train["schedules"]] == [True]

    def scheduled() -> list[dict]:
        body = {
            "deployments": {"id": {"any_": [train["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "limit": 20,
        }
        return [r for r in api_call("POST", f"{api}/flow_runs/filter", json=body).json() if r["auto_scheduled"]]

    runs = _wait(scheduled, 120, "the scheduler to schedule the train deployment's next runs")
    starts = sorted(pd.Timestamp(r["expected_start_time"]) for r in runs)
    hour = stack["train_hour"]
    assert all(t.hour == hour and t.minute == 30 and t.dayofweek < 5 for t in starts), (hour, starts)
