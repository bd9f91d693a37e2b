"""Benchmark children as processes that cannot hang the suite.

A child that starts Prefect's ephemeral API leaves that server running if the child dies first (for
example when the server's start timed out). With pipes for output, waiting for the child would then wait
for the orphan too, forever. So a child gets its own session, writes its output to files, and when it
exits everything still in its session is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

# Set by SharedApi while its server is up: the Prefect API URL that benchmark children should use.
SHARED_API_VARIABLE = "DRIFTLINE_BENCH_PREFECT_API_URL"


def run_child(
    args: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True, text=True)``, minus the hang on orphaned grandchildren."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=err, text=True, start_new_session=True)
        try:
            code = process.wait(timeout=timeout)
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # whatever the child left in its session
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, code, out.read(), err.read())


def shared_prefect_api() -> str | None:
    """The Prefect API shared by the parts of this benchmark run (``benchmarks.run --quick``), or None:
    then a part starts its own (an ephemeral API in its child, or a server)."""
    return os.environ.get(SHARED_API_VARIABLE) or None


class SharedApi:
    """A ``prefect server start`` for the whole benchmark run, started in the background on entry.

    ``wait()`` blocks until it answers (or failed to start: then the parts start their own API, and
    ``error`` says why); while it is up, ``SHARED_API_VARIABLE`` holds its URL. Stopped on exit.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.url: str | None = None
        self.error: str | None = None
        self._ready = threading.Event()
        self._stack = ExitStack()

    def _start(self) -> None:
        from benchmarks.relay_load import prefect_server

        try:
            home = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="driftline-bench-api-"))
            self.url = self._stack.enter_context(prefect_server(Path(home)))
            os.environ[SHARED_API_VARIABLE] = self.url
        except Exception as exc:  # noqa: BLE001 - without it, every part starts its own API
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    def __enter__(self) -> SharedApi:
        if self.enabled:
            threading.Thread(target=self._start, name="shared-prefect-api", daemon=True).start()
        else:
            self._ready.set()
        return self

    def wait(self, timeout: float = 300) -> str | None:
        self._ready.wait(timeout)
        return self.url

    def __exit__(self, *exc_info) -> None:
        self._ready.wait(300)
        os.environ.pop(SHARED_API_VARIABLE, None)
        self._stack.close()
