"""Drill: the S3-compatible endpoint goes away for 10 s and comes back on the same port. Reads of s3://
data (staging, a Prefect task) and artifact writes (MLflow server proxying to S3) retry and succeed.

moto keeps its objects in memory, so the endpoint comes back empty; the drill puts back what a real
store would have kept (bucket and objects) as it restarts, before any retry deadline.
"""

from __future__ import annotations

import io
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from driftline.adapters import registry
from driftline.synthetic import make_labelled_series
from tests.servers import mlflow_server, s3_server

pytestmark = pytest.mark.slow
OUTAGE_SECONDS = 10
DATA, ARTIFACTS = "market-data", "mlflow-artifacts"


def _fill(endpoint, payload: bytes) -> None:
    client = endpoint.client()
    for bucket in (DATA, ARTIFACTS):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=DATA, Key="labelled/part-0.parquet", Body=payload)


class FlakyS3:
    """moto on a fixed port that can be taken down and brought back (refilled) on that port."""

    def __init__(self, log_dir: Path, payload: bytes) -> None:
        self.log_dir, self.payload = log_dir, payload
        self.stack = ExitStack()
        self.endpoint = self.stack.enter_context(s3_server(log_dir))
        self.port = int(self.endpoint.url.rsplit(":", 1)[1])
        _fill(self.endpoint, payload)
        self.back_at: float | None = None
        self._thread: threading.Thread | None = None

    def outage(self, seconds: float) -> float:
        """Stop the endpoint now and restart it ``seconds`` later in the background; returns when it stopped."""
        self.stack.close()
        self.back_at = None
        began = time.monotonic()
        self._thread = threading.Thread(target=self._restart, args=(began + seconds,), daemon=True)
        self._thread.start()
        return began

    def _restart(self, at: float) -> None:
        time.sleep(max(0.0, at - time.monotonic()))
        self.stack = ExitStack()
        _fill(self.stack.enter_context(s3_server(self.log_dir, port=self.port)), self.payload)
        self.back_at = time.monotonic()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.stack.close()


@pytest.fixture
def s3(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    make_labelled_series(n_rows=1500, seed=11).to_parquet(buffer, index=False)
    flaky = FlakyS3(tmp_path / "s3", buffer.getvalue())
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # mlflow.set_*_uri export these; put them back after
        monkeypatch.delenv(key, raising=False)
    for key, value in flaky.endpoint.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", flaky.endpoint.url)
    try:
        yield flaky
    finally:
        flaky.close()


def test_reads_and_artifact_writes_ride_out_a_ten_second_s3_outage(prefect_api, s3, tmp_path):
    import mlflow

    from driftline.config import load_config
    from tasks.data import stage_data_task

    config = load_config(
        None, {"name": "s3drill", "data.path": f"s3://{DATA}/labelled/", "target.kind": "label", "data.target_col": "y"}
    )
    reference = stage_data_task.fn(config.data, tmp_path / "stage-ref").content_hash  # before the outage

    # Reads: staging (a Prefect task) starts while the endpoint is down and finishes once it is back.
    began = s3.outage(OUTAGE_SECONDS)
    staged = stage_data_task(config.data, tmp_path / "stage")
    read_seconds = time.monotonic() - began
    assert staged.content_hash == reference
    assert s3.back_at is not None and read_seconds >= OUTAGE_SECONDS

    # Artifact writes: an MLflow server keeping artifacts in S3 (its proxy writes with boto3).
    env = {**s3.endpoint.env(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint.url}
    with mlflow_server(tmp_path / "mlflow", artifacts=f"s3://{ARTIFACTS}/drill", env=env) as url:
        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(url)
        try:
            client = mlflow.MlflowClient()
            run_id = client.create_run(client.create_experiment("s3drill")).info.run_id
            began = s3.outage(OUTAGE_SECONDS)
            registry.log_dict(run_id, {"written": "during the outage"}, "drill/outage.json")
            write_seconds = time.monotonic() - began
            assert s3.back_at is not None and write_seconds >= OUTAGE_SECONDS
            assert registry.load_run_dict(run_id, "drill/outage.json") == {"written": "during the outage"}
            keys = [o["Key"] for o in s3.endpoint.client().list_objects_v2(Bucket=ARTIFACTS).get("Contents", [])]
            assert any(k.endswith("drill/outage.json") for k in keys), keys
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])
    print(
        f"\ns3 outage drill: {OUTAGE_SECONDS} s outage; staging read took "
        f"{read_seconds:.1f} s, artifact write {write_seconds:.1f} s"
    )
