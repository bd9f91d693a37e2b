"""The local Prefect API of a CLI run (driftline.app.local_api): started only when no server is configured, on
another port when its port was taken, the process's Prefect API once activated, and gone when the process
that started it is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import wait_until

STARTS = r"""
import json, socket, sys, time
from driftline.app import local_api

taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen()
ports = [taken.getsockname()[1]]
original = local_api._free_port
local_api._free_port = lambda: ports.pop(0) if ports else original()  # the first pick is already taken

api = local_api.LocalPrefectApi.start_if_needed()
first_pid = api.process.pid
ready_before = api.ready()
url = api.activate()
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    client_url = str(client.api_url)
print(json.dumps({"url": url, "taken": taken.getsockname()[1], "server_pid": api.process.pid, "first_pid": first_pid,
                  "client_url": client_url, "ready": [ready_before, api.ready()]}), flush=True)
time.sleep(600)
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        **extra,
    )
    return env


def test_nothing_starts_when_a_server_is_configured(tmp_path):
    code = "from driftline.app.local_api import LocalPrefectApi; print(LocalPrefectApi.start_if_needed())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(tmp_path, PREFECT_API_URL="http://127.0.0.1:4200/api"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"


@pytest.mark.slow  # starts a Prefect server: 10-40 s
def test_the_api_moves_off_a_taken_port_serves_the_process_and_dies_with_it(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", STARTS], env=_env(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line, f"the starter exited with {process.wait()}"
        started = json.loads(line)
        assert started["server_pid"] != started["first_pid"]  # the first server could not bind and was replaced
        assert f":{started['taken']}/" not in started["url"]
        assert started["client_url"].rstrip("/") == started["url"]  # Prefect's client in that process uses it
        assert httpx.get(f"{started['url']}/health", timeout=10).status_code == 200
        assert started["ready"] == [False, True]  # ready(): not before the (replaced) server answers, then yes
        assert (tmp_path / "prefect" / "prefect.db").exists()  # the database lives in that process's PREFECT_HOME
    finally:
        process.send_signal(signal.SIGKILL)  # no exit handlers run: only the parent-death signal can stop the server
        process.wait(timeout=30)

    def server_gone() -> bool:
        try:
            os.kill(started["server_pid"], 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{started['server_pid']}/stat") as stat:
            return stat.read().split()[2] == "Z"

    wait_until(server_gone, 30, "the local API server to stop after its parent was killed", every=0.2)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{started['url']}/health", timeout=2)


SHARED = r"""
import json, sys, time
from driftline.app import local_api

api = local_api.LocalPrefectApi.start_if_needed()
ready_before = api.ready()
url = api.activate()
seen = {"url": url, "pid": api.pid, "kind": type(api).__name__, "ready": [ready_before, api.ready()]}
print(json.dumps(seen), flush=True)
time.sleep(float(sys.argv[1]))
"""


@pytest.mark.slow  # starts a Prefect server: 10-40 s
def test_commands_share_one_local_api_that_stops_once_idle_and_never_under_a_running_command(tmp_path):
    from driftline.app import local_api

    env = _env(
        tmp_path, DRIFTLINE_LOCAL_API_IDLE_SECONDS="20"
    )  # > a command's start-up on a busy machine (>10 s at load 12)
    home = tmp_path / "prefect"

    def command(hold: float) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", SHARED, str(hold)], env=env, stdout=subprocess.PIPE, text=True)

    def joined(process: subprocess.Popen[str]) -> dict:
        line = process.stdout.readline()
        assert line, "the command printed nothing"
        return json.loads(line)

    first = command(0)
    one = joined(first)
    assert first.wait(timeout=60) == 0
    assert one["kind"] == "SharedLocalApi" and httpx.get(f"{one['url']}/health", timeout=5).status_code == 200
    # ready(): not while the server it started is coming up (what a command imports meanwhile), then yes.
    assert one["ready"] == [False, True]
    # The next command, its server's first user gone: the same server (no start-up), then it holds it.
    holder = command(23)
    two = joined(holder)
    assert (two["url"], two["pid"]) == (one["url"], one["pid"])
    assert two["ready"] == [True, True]  # joined a running server: nothing to wait for, nothing imported early
    try:
        wait_until(lambda: holder.poll() is not None, timeout=60, what="the holding command to finish", every=0.5)
        # It held the server for 23 s, longer than the idle time: the server is still there after it.
        assert local_api._alive(one["pid"]) and httpx.get(f"{one['url']}/health", timeout=5).status_code == 200
    finally:
        holder.kill()
    wait_until(lambda: not local_api._alive(one["pid"]), timeout=60, what="the idle server to stop", every=0.5)
    assert not (home / local_api.STATE_FILE).exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{one['url']}/health", timeout=2)
