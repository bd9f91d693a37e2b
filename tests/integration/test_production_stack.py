"""The production configuration, without Docker: a Prefect server, an MLflow tracking server whose
artifacts live in S3, and the data in S3 too — every one a real process on 127.0.0.1 started here.

``driftline train`` runs as a user runs it, with only environment variables pointing it at the servers
(the compose stack in docker/ sets the same ones).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

import pytest

from driftline.synthetic import make_labelled_series
from tests import warm
from tests.servers import mlflow_server, postgres_bin, postgres_server, prefect_server, s3_server

pytestmark = pytest.mark.slow
DRIFTLINE = str(Path(sys.executable).with_name("driftline"))
ARTIFACTS = "mlflow-artifacts"
DATA = "market-data"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """S3 (artifacts and data) and a Prefect server, shared by both tracking back ends."""
    root = tmp_path_factory.mktemp("stack")
    with s3_server(root / "s3") as s3:
        client = s3.client()
        for bucket in (ARTIFACTS, DATA):
            client.create_bucket(Bucket=bucket)
        buffer = io.BytesIO()
        make_labelled_series(n_rows=1500, seed=11).to_parquet(buffer, index=False)
        client.put_object(Bucket=DATA, Key="labelled/part-0.parquet", Body=buffer.getvalue())
        with prefect_server(root / "prefect") as api:
            yield {"s3": s3, "api": api, "env": {**s3.env(), "MLFLOW_S3_ENDPOINT_URL": s3.url}, "root": root}


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request, base):
    """An MLflow tracking server (SQLite or PostgreSQL back end, artifacts in S3) beside the base."""
    root = base["root"] / request.param
    prefix = f"s3://{ARTIFACTS}/{request.param}"
    if request.param == "sqlite":
        with mlflow_server(root, artifacts=prefix, env=base["env"]) as tracking:
            yield {**base, "tracking": tracking, "prefix": request.param}
        return
    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs it (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql); CI runs this case")
    with (
        postgres_server() as url,
        mlflow_server(root, backend_uri=url.format(db="mlflow"), artifacts=prefix, env=base["env"]) as tracking,
    ):
        yield {**base, "tracking": tracking, "prefix": request.param}


@pytest.fixture
def stack_uris(stack):
    """MLflow's process-wide URIs on the stack's server for this test: flows run in-process earlier in the
    session set them (registry.configure), and they win over MLFLOW_TRACKING_URI."""
    import mlflow

    mlflow.set_tracking_uri(stack["tracking"])
    mlflow.set_registry_uri(stack["tracking"])
    yield stack  # tests/conftest.py puts the previous (unset) URIs back


def test_training_on_servers_with_artifacts_and_data_in_s3(stack, stack_uris, fast_config, tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "DRIFTLINE_", "AWS_"))}
    env.update(
        stack["env"], MLFLOW_TRACKING_URI=stack["tracking"], PREFECT_API_URL=stack["api"], DRIFTLINE_FORK_SERVER="0"
    )
    done = warm.run(
        [
            DRIFTLINE,
            "train",
            "--config",
            str(fast_config),
            "--data",
            f"s3://{DATA}/labelled/",
            "--target",
            "label",
            "--target-col",
            "y",
            "--summary-json",
            "summary.json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model_version"] == "1" and summary["champion_version_after"] == "1"
    # Nothing was written locally: no SQLite store, no local artifact folder.
    assert not (tmp_path / ".driftline" / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()

    # The tracking server has the run, the version and the champion alias.
    for key, value in stack["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack["tracking"])
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(stack["tracking"], stack["tracking"])
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri  # served by the proxy
    champion = client.get_model_version_by_alias("driftline-it", "champion")
    assert str(champion.version) == "1"

    # The artifacts are objects in the S3 bucket: the model, the plots, the drift reference.
    pages = (
        stack["s3"].client().get_paginator("list_objects_v2").paginate(Bucket=ARTIFACTS, Prefix=stack["prefix"] + "/")
    )
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert any(k.endswith("/MLmodel") for k in keys), keys[:20]
    assert any(k.endswith("plots/reliability.png") for k in keys)
    assert any(k.endswith("reference/profile.json") for k in keys)

    # The champion loads back over HTTP and gives the probabilities recorded with its drift reference.
    import pandas as pd

    sample = pd.read_parquet(client.download_artifacts(summary["run_id"], "reference/sample.parquet", str(tmp_path)))
    scores = mlflow.pyfunc.load_model("models:/driftline-it@champion").predict(
        sample.drop(columns=["probability", "y"])
    )
    assert len(scores) == len(sample) > 0
    assert abs(scores["probability"].to_numpy() - sample["probability"].to_numpy()).max() < 1e-9

    # The flow run is on the Prefect server, completed.
    async def flow_run_state() -> str:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: stack["api"]}):
            async with get_client() as prefect:
                flow_run = await prefect.read_flow_run(run.data.tags["prefect.flow_run_id"])
                return flow_run.state.name

    assert asyncio.run(flow_run_state()) == "Completed"
