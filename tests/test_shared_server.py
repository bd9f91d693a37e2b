"""The Prefect server a session's xdist workers share (tests/servers.py ``SharedPrefectServer``, started by the
controller in tests/conftest.py): it serves until it is stopped, then nothing is left answering, and a worker
that waits for one that never came names it and shows its log."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.conftest import SHARED_API_VARIABLE
from tests.servers import SharedPrefectServer, wait_for_shared_prefect_server


def test_the_shared_server_serves_until_stopped_and_a_missing_one_is_reported_with_its_log(tmp_path):
    server = SharedPrefectServer(tmp_path / "shared")
    try:
        wait_for_shared_prefect_server(server.url, str(server.log))
        assert httpx.get(f"{server.url}/health", timeout=10).json() is True
    finally:
        server.stop()
    assert not server._thread.is_alive()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/health", timeout=2)

    log = tmp_path / "never.log"
    log.write_text("uvicorn: address already in use")
    with pytest.raises(RuntimeError, match=r"(?s)shared Prefect server did not answer.*address already in use"):
        wait_for_shared_prefect_server(server.url, str(log), timeout=1)


def test_a_worker_uses_the_server_its_controller_shares(prefect_api):
    shared = os.environ.get(SHARED_API_VARIABLE)
    if shared:  # under xdist with several workers (make test)
        assert prefect_api == shared
    assert httpx.get(f"{prefect_api}/health", timeout=10).json() is True
