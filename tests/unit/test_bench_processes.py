"""A benchmark child that leaves a process behind (as an ephemeral Prefect API whose start timed out
does) must not hang the suite, and the orphan must not outlive it."""

from __future__ import annotations

import os
import sys
import time

import pytest

from benchmarks.processes import run_child

ORPHAN = """
import subprocess, sys
orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(orphan.pid)
print("child done", file=sys.stderr)
"""


def test_a_child_that_leaves_an_orphan_returns_at_once_and_the_orphan_is_killed():
    started = time.monotonic()
    done = run_child([sys.executable, "-c", ORPHAN], dict(os.environ), timeout=60)
    assert time.monotonic() - started < 30, "waited for the orphan"
    assert done.returncode == 0 and done.stderr.strip() == "child done"
    orphan = int(done.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(orphan, 0)
        except ProcessLookupError:
            break
        # A killed orphan is re-parented to init and reaped there; until then it may still be listed.
        with open(f"/proc/{orphan}/stat") as stat:
            if stat.read().split()[2] == "Z":
                break
        time.sleep(0.1)
    else:
        raise AssertionError(f"orphan {orphan} is still running")


@pytest.mark.slow  # starts a Prefect server: 20-40 s
def test_shared_api_is_a_real_server_the_parts_see_while_it_is_up_and_gone_after(tmp_path):
    import httpx

    from benchmarks.processes import SHARED_API_VARIABLE, SharedApi, shared_prefect_api

    with SharedApi(enabled=True) as shared:
        url = shared.wait()
        assert url is not None, shared.error
        assert shared_prefect_api() == url
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    assert SHARED_API_VARIABLE not in os.environ
    try:
        httpx.get(f"{url}/health", timeout=2)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the shared server outlived the benchmark run")


def test_a_disabled_shared_api_starts_nothing():
    from benchmarks.processes import SharedApi, shared_prefect_api

    with SharedApi(enabled=False) as shared:
        assert shared.wait(timeout=1) is None and shared_prefect_api() is None
