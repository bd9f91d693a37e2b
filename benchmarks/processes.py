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
from pathlib import Path


def run_child(args: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
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
