"""Drill fixtures: MLflow on SQLite in a temp dir, models to promote, a deployed project (the shared
`prefect server start`, whose lease repossessor runs: tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from driftline.adapters import registry
from driftline.calibration import CalibratedModel
from driftline.config import ModelsConfig, Settings
from driftline.models import make_estimator
from driftline.synthetic import make_labelled_series
from tests import warm
from tests.integration.conftest import FAST_CONFIG
from tests.servers import api_call, fresh_mlflow_store, kill_flow_runs

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


# A promotion of version 3 over 2 in a process of its own (argv: model name, scoring sample); the kill
# drills kill it at a registry write (DRIFTLINE_DRILL_KILL_AT).
PROMOTE = """
import sys
import pandas as pd
from flows.promotion import promote_with_smoke_test
promote_with_smoke_test(sys.argv[1], "3", "2", "drill: better on hold-out", "run-killed", pd.read_parquet(sys.argv[2]))
print("PROMOTION FINISHED")
"""


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fresh MLflow store (SQLite + local artifacts) and Driftline home; returns the tracking URI."""
    import mlflow

    home = tmp_path / "home"
    home.mkdir()
    uri = fresh_mlflow_store(home / "mlflow.db")
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # mlflow.set_*_uri also export MLFLOW_*_URI to os.environ (and so to every subprocess started later):
    # monkeypatch owns both variables so they are put back after the test.
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("DRIFTLINE_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def log_models(count: int) -> tuple[list[str], object]:
    """Log ``count`` small calibrated models once; returns their model URIs and a scoring sample.

    Versions of many registered models can point at them (``create_model_version``): cheap to set up.
    """
    frame = make_labelled_series(n_rows=600, seed=2)
    X, y = frame[["x0", "x1", "x2", "x3"]], frame["y"]
    experiment = registry.configure(Settings.from_env(), "drill-models")
    sources = []
    for seed in range(1, count + 1):
        model = CalibratedModel(make_estimator("logreg", ModelsConfig(seed=seed)), method="sigmoid").fit(X, y)
        run_id = registry.start_run(experiment, f"m{seed}", {})
        sources.append(registry.log_model(run_id, model, list(X.columns), X, "driftline-drill-source"))
        registry.finish_run(run_id)
    return [s.model_uri for s in sources], X.head(50)


def history_consistent(aliases: registry.MlflowAliasRegistry, name: str) -> dict[str, tuple]:
    """Per alias: (where it points, what the last recorded event says); equal when the history is consistent."""
    events = aliases.history(name)
    out = {}
    for alias in ("champion", "previous-champion"):
        last = [e for e in events if e["alias"] == alias]
        out[alias] = (aliases.alias_version(name, alias), last[-1]["version"] if last else None)
    return out


def driftline_env(api: str, tracking_uri: str, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a `driftline` subprocess against the drill's servers, with its own Prefect and Driftline home."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLINE_", "AWS_"))}
    env.update(
        PREFECT_API_URL=api,
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_TRACKING_URI=tracking_uri,
        DRIFTLINE_HOME=str(home),
        DRIFTLINE_FORK_SERVER="0",  # each command its own process (tests/conftest.py)
        **extra,
    )
    return env


@dataclass
class DeployedProject:
    """The project's prefect.yaml deployed to the ``driftline-local`` process pool of a real server."""

    api: str
    root: Path
    env: dict[str, str]
    data: Path
    config: Path
    worker: warm.Process | subprocess.Popen | None = None

    @property
    def tracking_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def worker_log(self) -> Path:
        return self.root / "worker.log"

    def start_worker(self) -> warm.Process | subprocess.Popen:
        """The project's worker (``python -m deployments.worker``: `prefect worker start` with its workaround)
        on the pool, in a session of its own so its flow runs stop with it."""
        self.worker = warm.popen(  # forked from the suite's warm parent (tests/warm.py)
            [sys.executable, "-m", "deployments.worker", "--pool", "driftline-local", "--limit", "2"],
            cwd=ROOT,
            env=self.env,
            stdout=self.worker_log,
            start_new_session=True,
        )
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                # Idle, it exits in under a second; with flow runs in flight it waits for them (30 s and more,
                # measured), which a test's cleanup need not: its whole session is killed below.
                self.worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait(timeout=10)

    # The server's REST API, read by the drills.
    def deployment(self, flow: str, name: str) -> dict:
        return api_call("GET", f"{self.api}/deployments/name/{flow}/{name}").json()

    def create_run(self, deployment: dict, parameters: dict, job_variables: dict | None = None) -> str:
        body = {"parameters": parameters, **({"job_variables": job_variables} if job_variables else {})}
        return api_call("POST", f"{self.api}/deployments/{deployment['id']}/create_flow_run", json=body).json()["id"]

    def flow_run(self, run_id: str) -> dict:
        return api_call("GET", f"{self.api}/flow_runs/{run_id}").json()

    def state_names(self, run_id: str) -> list[str]:
        states = api_call("GET", f"{self.api}/flow_run_states/", params={"flow_run_id": run_id}).json()
        return [s["name"] for s in sorted(states, key=lambda s: s["timestamp"])]

    def train_parameters(self, **extra) -> dict:
        """Parameters of a ``train`` run on the small synthetic data with the integration tests' fast config."""
        return {"config_file": str(self.config), "data": str(self.data), "target": "label", "target_col": "y", **extra}


@contextmanager
def deployed_project(root: Path, api: str) -> Iterator[DeployedProject]:
    """Create the pool, deploy every deployment of prefect.yaml to the server at ``api`` (as `make deploy`
    does), write small labelled data and a fast config; the worker is started by the drill
    (``start_worker``) and stopped at the end. MLflow is a SQLite store in ``root``."""
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "DRIFTLINE_HOME"))
        },
        "PREFECT_HOME": str(root / "client"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "DRIFTLINE_HOME": str(root / "home"),
        "DRIFTLINE_PROJECT_DIR": str(ROOT),
    }
    # The drills start their own runs: every schedule paused (a worker must not pick up the weekday 06:30 train
    # run should a drill cross that time) and no triggers (the restart drill's relay events started `retrain`
    # runs, whole trainings on the default data, beside the drill and past its end). The stack in
    # tests/integration/test_deployments.py tests both.
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for deployment in spec["deployments"]:
        for schedule in deployment.get("schedules") or []:
            schedule["active"] = False
        deployment.pop("triggers", None)
    root.mkdir(parents=True, exist_ok=True)
    prefect_file = root / "prefect.yaml"
    prefect_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    for args in (
        # `python -m prefect`: Prefect's own CLI, forked warm by tests/warm.py (`prefect` itself starts cold).
        [sys.executable, "-m", "prefect", "work-pool", "create", "driftline-local", "--type", "process"],
        [sys.executable, "-m", "deployments.deploy", "--all", "--prefect-file", str(prefect_file)],
    ):
        done = warm.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, with_prefect=True)
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    data = root / "labelled.csv"
    make_labelled_series(n_rows=1500, seed=11).to_csv(data, index=False)
    config = root / "fast.yaml"
    config.write_text(yaml.safe_dump({"name": "it", **FAST_CONFIG}))
    project = DeployedProject(api=api, root=root, env=env, data=data, config=config)
    try:
        yield project
    finally:
        project.stop_worker()
        # Flow runs the worker started run in sessions of their own: one still alive (a drill stopped half way)
        # would go on retrying a server that is gone.
        kill_flow_runs(api)
