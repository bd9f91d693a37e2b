"""Drill: the MLflow tracking server stops in the middle of a training run. The run's MLflow tasks retry
with backoff, then the run fails with one clear line; the champion is unchanged and nothing new is
registered; with the server back, a rerun takes the walk-forward and the challenger fit from Prefect's cache."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from driftline.synthetic import make_labelled_series
from tests import warm
from tests.drills.conftest import driftline_env
from tests.integration.conftest import FAST_CONFIG
from tests.servers import mlflow_server

pytestmark = pytest.mark.slow
DRIFTLINE = str(Path(sys.executable).with_name("driftline"))
# The moment to stop the server: the run pauses (registry.drill_point) just before writing the drift
# reference, after the walk-forward and the challenger fit (both cached); from there every MLflow call
# (the reference, registration) meets a dead server.
PAUSE = {"DRIFTLINE_DRILL_PAUSE_AT": "artifact:reference/profile.json", "DRIFTLINE_DRILL_PAUSE_SECONDS": "10"}
STOP_AFTER = "driftline drill: paused at artifact:reference/profile.json"
# MLflow's own HTTP retries (7, backoff factor 2: minutes per call) shortened so the drill is bounded;
# the Prefect task retries (2, 5, 10 s) are the product's.
FAST_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def _train(args: list[str], env: dict[str, str], cwd: Path, on_line=None) -> tuple[int, str]:
    # Forked from the suite's warm parent (tests/warm.py), its output read line by line as it runs.
    process = warm.popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, with_prefect=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line)
        return process.wait(timeout=600), "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()


def test_tracking_server_down_mid_run_fails_clearly_then_the_rerun_resumes_from_cache(prefect_api, tmp_path):
    from mlflow import MlflowClient

    first_data, data, config = tmp_path / "first.csv", tmp_path / "labelled.csv", tmp_path / "fast.yaml"
    make_labelled_series(n_rows=1500, seed=11).to_csv(first_data, index=False)
    make_labelled_series(n_rows=1500, seed=12).to_csv(data, index=False)  # new data: fresh fits, not cached
    config.write_text(yaml.safe_dump({"name": "it", **FAST_CONFIG}))
    train = [DRIFTLINE, "train", "--config", str(config), "--target", "label", "--target-col", "y"]
    workdir = tmp_path / "mlflow"
    server = ExitStack()
    url = server.enter_context(mlflow_server(workdir))
    port = int(url.rsplit(":", 1)[1])
    env = driftline_env(prefect_api, url, tmp_path / "home", **FAST_HTTP)
    try:
        rc, out = _train([*train, "--data", str(first_data)], env, tmp_path)
        assert rc == 0, out[-3000:]
        client = MlflowClient(url, url)
        assert str(client.get_model_version_by_alias("driftline-it", "champion").version) == "1"

        stopped: list[float] = []

        def stop_server(line: str) -> None:
            if STOP_AFTER in line and not stopped:
                server.close()
                stopped.append(time.monotonic())

        began = time.monotonic()
        rc, out = _train([*train, "--data", str(data)], {**env, **PAUSE}, tmp_path, stop_server)
        (tmp_path / "failed-run.log").write_text(out)
        failed_after = time.monotonic() - (stopped[0] if stopped else began)
        assert stopped, f"never saw {STOP_AFTER!r}\n{out[-3000:]}"
        assert rc == 2, f"rc {rc}\n{out[-3000:]}"
        error = [line for line in out.splitlines() if line.startswith("error:")]
        assert error and "MLflow tracking server" in error[-1] and "cannot be reached" in error[-1], out[-3000:]
        assert "log-reference" in out and "Retry 3/3" in out  # the failing task went through its retries
        assert "Traceback" not in out.split("error:")[-1]

        url = server.enter_context(mlflow_server(workdir, port=port))  # back, same port, same store
        client = MlflowClient(url, url)
        assert str(client.get_model_version_by_alias("driftline-it", "champion").version) == "1"
        assert [str(v.version) for v in client.search_model_versions("name = 'driftline-it'")] == ["1"]

        rerun_began = time.monotonic()
        rc, rerun = _train([*train, "--data", str(data)], env, tmp_path)
        rerun_seconds = time.monotonic() - rerun_began
        assert rc == 0, rerun[-3000:]

        def states(log: str, task: str) -> list[str]:
            return re.findall(rf"Task run '{task}-[0-9a-f]+' - Finished in state (\w+)", log)

        assert states(out, "walk-forward") == ["Completed"] and states(out, "fit-challenger") == [
            "Completed"
        ]  # computed
        assert states(rerun, "walk-forward") == ["Cached"] and states(rerun, "fit-challenger") == ["Cached"], rerun[
            -3000:
        ]
    finally:
        server.close()
    print(
        f"\ntracking outage drill: failed {failed_after:.0f} s after the server "
        f"stopped; rerun from cache {rerun_seconds:.0f} s; {error[-1][:300]}"
    )
