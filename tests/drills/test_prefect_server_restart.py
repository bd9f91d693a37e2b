"""Drill: the Prefect server is restarted while a worker runs a `train` flow run. The server stops (SIGTERM)
while the run is in its walk-forward, stays down 10 s and comes back on the same port with the same SQLite
database. The run ends COMPLETED (directly, or through a retry by the deployment's policy), registers
exactly one model version, which is champion, and the worker is still polling afterwards."""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx
import pytest

from tests.drills.conftest import TERMINAL, deployed_project
from tests.servers import free_port, prefect_server, wait_until

pytestmark = pytest.mark.slow
OUTAGE_SECONDS = 10


def _task_runs(api: str, run_id: str) -> list[dict]:
    body = {"flow_runs": {"id": {"any_": [run_id]}}, "limit": 200}
    return httpx.post(f"{api}/task_runs/filter", json=body, timeout=10).raise_for_status().json()


def _answers(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_server_restart_mid_run_ends_in_one_completed_run_and_one_registered_version(tmp_path):
    from mlflow import MlflowClient

    port = free_port()
    server = ExitStack()
    api = server.enter_context(prefect_server(tmp_path / "server", port=port))
    try:
        with deployed_project(tmp_path, api) as project:
            train = project.deployment("train-and-promote", "train")
            run_id = project.create_run(train, project.train_parameters())
            worker = project.start_worker()
            began = time.monotonic()

            # Real work done, real work in flight: the walk-forward has started (data staged, validated,
            # features built) and the run is RUNNING.
            def mid_run():
                run = project.flow_run(run_id)
                assert run["state_type"] not in TERMINAL, f"the run ended before the outage: {run['state_name']}"
                names = [t["name"] for t in _task_runs(api, run_id)]
                return run["state_type"] == "RUNNING" and any(n.startswith("walk-forward") for n in names) and names

            tasks_before = wait_until(mid_run, 300, "the run RUNNING and into its walk-forward", every=0.5)
            completed_before = [t["name"] for t in _task_runs(api, run_id) if t["state_type"] == "COMPLETED"]
            stopped = time.monotonic()
            server.close()  # SIGTERM, waits for the exit
            assert not _answers(api), "the server still answers after it was stopped"
            time.sleep(OUTAGE_SECONDS)
            server = ExitStack()
            server.enter_context(prefect_server(tmp_path / "server", port=port))
            back = time.monotonic()
            outage = back - stopped

            run = wait_until(
                lambda: (r := project.flow_run(run_id))["state_type"] in TERMINAL and r, 360, "the run to end after the restart", every=2
            )
            ended = time.monotonic()
            states = project.state_names(run_id)
            story = (
                f"outage {outage:.1f} s (down {OUTAGE_SECONDS} s + server start), run {ended - began:.0f} s from the worker's "
                f"start; states {states}; run_count {run['run_count']}; {len(completed_before)} task runs completed "
                f"before the stop of {len(tasks_before)} created: {completed_before}"
            )
            print(f"\nserver restart drill: {story}")
            assert run["state_type"] == "COMPLETED", f"{story}\n{run['state']['message']}\n{project.worker_log.read_text()[-4000:]}"

            # Exactly one new version for the run, champion, from this flow run's MLflow run.
            client = MlflowClient(project.tracking_uri, project.tracking_uri)
            versions = client.search_model_versions("name='driftline-it'")
            assert len(versions) == 1, f"{[(v.version, v.run_id) for v in versions]}; {story}"
            runs = client.search_runs(
                [e.experiment_id for e in client.search_experiments()], f"tags.`prefect.flow_run_id` = '{run_id}'"
            )
            finished = [r for r in runs if r.info.status == "FINISHED"]
            assert len(finished) == 1, [(r.info.run_id, r.info.status) for r in runs]
            assert versions[0].run_id == finished[0].info.run_id, (versions[0].run_id, finished[0].info.run_id)
            champion = client.get_model_version_by_alias("driftline-it", "champion")
            assert str(champion.version) == str(versions[0].version), (champion.version, versions[0].version)

            # The worker rode out the outage: still alive, and it still takes runs from the restarted server.
            assert worker.poll() is None, f"the worker exited ({worker.returncode})\n{project.worker_log.read_text()[-4000:]}"
            again = project.create_run(train, project.train_parameters())
            rerun = wait_until(
                lambda: (r := project.flow_run(again))["state_type"] in TERMINAL and r, 300, "a run after the restart", every=2
            )
            assert rerun["state_type"] == "COMPLETED", rerun["state"]["message"]
            # Same data, config and code: the rerun reports the earlier run, nothing new is registered.
            assert len(client.search_model_versions("name='driftline-it'")) == 1
    finally:
        server.close()
