"""Infrastructure errors are recognised through wrapping layers (MLflow, requests) and explained in one line."""

from __future__ import annotations

import errno

import pytest

from driftline.adapters import registry
from driftline.errors import ArtifactStoreFull


def _wrapped(inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise RuntimeError("upload failed") from exc
    except RuntimeError as outer:
        return outer


def test_out_of_space_is_found_in_the_cause_chain_or_a_server_message():
    assert registry._is_full(_wrapped(OSError(errno.ENOSPC, "No space left on device")))
    assert registry._is_full(Exception("INTERNAL_ERROR: [Errno 28] No space left on device: '/srv/artifacts/x'"))
    assert not registry._is_full(_wrapped(OSError(errno.EACCES, "Permission denied")))


def test_a_full_store_becomes_one_error_naming_the_write(monkeypatch):
    points: list[str] = []

    class FullStore(registry.MlflowStore):
        @registry._artifact_write
        def log_thing(self, run_id: str, artifact_file: str) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        registry.MlflowClient, "get_run", lambda self, run_id: (_ for _ in ()).throw(RuntimeError("down"))
    )
    store = FullStore("http://127.0.0.1:9", faults=points.append)  # a REST client opens nothing until asked
    with pytest.raises(
        ArtifactStoreFull, match=r"artifact store is full: writing plots/roc.png of run r1 .*No space left"
    ):
        store.log_thing("r1", "plots/roc.png")
    assert points == ["artifact:plots/roc.png"]  # the drills' fault point, reached just before the write


def test_unreachable_tracking_server_is_explained_and_other_errors_are_not():
    import requests

    assert "cannot be reached" in registry.tracking_unreachable(
        _wrapped(requests.exceptions.ConnectionError("refused"))
    )
    named = registry.tracking_unreachable(
        _wrapped(requests.exceptions.ConnectionError("refused")), "http://ops:hunter2@mlflow.internal:5000"
    )
    assert "http://ops:***@mlflow.internal:5000" in named and "hunter2" not in named
    assert registry.tracking_unreachable(ValueError("bad value")) is None
