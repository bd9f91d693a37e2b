"""Drill: the S3-compatible endpoint goes away for 10 s and comes back on the same port. Reads of s3://
data (staging, a Prefect task) and artifact writes (MLflow server proxying to S3) retry and succeed.

Clients reach moto through a TCP gate on a fixed port. An outage closes the gate: new connections are
refused and open ones are cut, as when a store's host goes away, while moto keeps its objects as a real
store would. (Restarting moto itself brought it back empty: a retry that listed the bucket between the
restart and the refill saw no objects, and failed CI once.)
"""

from __future__ import annotations

import io
import socket
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from driftline.adapters import registry
from driftline.synthetic import make_labelled_series
from tests.servers import free_port, mlflow_server, s3_server

pytestmark = pytest.mark.slow
OUTAGE_SECONDS = 10
DATA, ARTIFACTS = "market-data", "mlflow-artifacts"


class Gate:
    """A TCP forwarder from a fixed port on 127.0.0.1 to ``target``; ``close`` refuses and cuts connections
    until ``open`` listens again on the same port."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below (Linux)
            listener.close()
        with self._lock:
            cut, self._sockets = self._sockets, set()
        for sock in cut:
            self._shut(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            self._shut(sock)
            with self._lock:
                self._sockets.discard(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class FlakyS3:
    """moto behind a Gate: ``outage`` closes the gate now and opens it again ``seconds`` later."""

    def __init__(self, log_dir: Path, payload: bytes) -> None:
        self.stack = ExitStack()
        moto = self.stack.enter_context(s3_server(log_dir))
        self.gate = Gate(int(moto.url.rsplit(":", 1)[1]))
        self.stack.callback(self.gate.close)
        self.endpoint = replace(moto, url=f"http://127.0.0.1:{self.gate.port}")
        client = self.endpoint.client()
        for bucket in (DATA, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=DATA, Key="labelled/part-0.parquet", Body=payload)
        self.back_at: float | None = None
        self._thread: threading.Thread | None = None

    def outage(self, seconds: float) -> float:
        """Close the gate now and open it ``seconds`` later in the background; returns when it closed."""
        self.gate.close()
        self.back_at = None
        began = time.monotonic()
        self._thread = threading.Thread(target=self._reopen, args=(began + seconds,), daemon=True)
        self._thread.start()
        return began

    def _reopen(self, at: float) -> None:
        time.sleep(max(0.0, at - time.monotonic()))
        self.gate.open()
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
