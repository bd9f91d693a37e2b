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
# The server settings `make serve` and docker/compose.yaml give the Prefect server: deployment concurrency
# leases on disk (PREFECT_HOME), so a restart keeps them (Prefect's default keeps them in memory).
SERVER_ENV = {"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem"}


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
    api = server.enter_context(prefect_server(tmp_path / "server", port=port, env=SERVER_ENV))
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
            lease_id = project.flow_run(run_id)["state"]["state_details"]["deployment_concurrency_lease_id"]
            assert lease_id, "the train run holds no deployment concurrency lease"
            completed_before = [t["name"] for t in _task_runs(api, run_id) if t["state_type"] == "COMPLETED"]
            stopped = time.monotonic()
            server.close()  # SIGTERM, waits for the exit
            assert not _answers(api), "the server still answers after it was stopped"
            time.sleep(OUTAGE_SECONDS)
            server = ExitStack()
            server.enter_context(prefect_server(tmp_path / "server", port=port, env=SERVER_ENV))
            back = time.monotonic()
            outage = back - stopped
            # The run's engine renews its deployment concurrency lease every 225 s and cancels the run
            # when the server no longer knows the lease ("Terminating execution to prevent
            # over-allocation"): a run longer than that which spans a restart must find its lease kept.
            # Renewed here as the engine would, while the run is still RUNNING (afterwards the lease is
            # legitimately gone).
            renewal = httpx.post(f"{api}/v2/concurrency_limits/leases/{lease_id}/renew", json={"lease_duration": 300}, timeout=10)
            if project.flow_run(run_id)["state_type"] == "RUNNING":
                assert renewal.status_code == 204, f"the run's concurrency lease was lost in the restart: {renewal.status_code} {renewal.text}"
                lease = "kept"
            else:
                lease = "not checked (the run ended first)"

            run = wait_until(
                lambda: (r := project.flow_run(run_id))["state_type"] in TERMINAL and r, 360, "the run to end after the restart", every=2
            )
            ended = time.monotonic()
            states = project.state_names(run_id)
            story = (
                f"outage {outage:.1f} s (down {OUTAGE_SECONDS} s + server start), run {ended - began:.0f} s from the worker's "
                f"start; states {states}; run_count {run['run_count']}; lease {lease}; {len(completed_before)} task runs completed "
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

            # The worker rode out the outage: still alive, it takes a new run from the restarted server (so
            # the deployment's slot was released) and can still cancel it.
            assert worker.poll() is None, f"the worker exited ({worker.returncode})\n{project.worker_log.read_text()[-4000:]}"
            again = project.create_run(train, project.train_parameters(force=True))
            wait_until(lambda: project.flow_run(again)["state_type"] == "RUNNING", 300, "a run after the restart to start", every=1)
            cancel = {"state": {"type": "CANCELLING", "name": "Cancelling"}}
            httpx.post(f"{api}/flow_runs/{again}/set_state", json=cancel, timeout=10).raise_for_status()
            cancelled = wait_until(
                lambda: (r := project.flow_run(again))["state_type"] in TERMINAL and r, 180, "the cancelled run to end", every=1
            )
            assert cancelled["state_type"] == "CANCELLED", (
                f"a run cancelled after the restart ended {cancelled['state_name']}: the worker no longer cancels runs\n"
                f"{project.worker_log.read_text()[-4000:]}"
            )
            assert worker.poll() is None, f"the worker exited ({worker.returncode})"
    finally:
        server.close()
