"""The Prefect API of one local CLI run, when no Prefect server is configured.

Prefect's own ephemeral mode starts the same server (uvicorn on ``prefect.server.api.server:create_app``,
UI and most services off, the database in ``PREFECT_HOME``) the first time a flow needs the API: after this
process has imported the flows' libraries, and after importing the whole server package into this process
only to spawn it. Started here instead, the server's start-up (its imports, a fresh database's migrations)
runs on the other core while this process imports the flows, and this process never imports the server.
On 2 cores a first ``driftline train`` of 800 rows (fresh homes) went from 53 s to 40 s (single runs, by hand).

Unlike Prefect's ephemeral server, this one dies with the process that started it, even when that process
is killed (``PR_SET_PDEATHSIG``): no orphaned server holding a port and a database.

Prefect is imported lazily (only ``prefect.settings``); the core stays free of it at import time.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

# uvicorn's exit code when it cannot bind its port (someone took it after we picked it): try another.
PORT_IN_USE = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the server is stopped at exit instead


class LocalPrefectApi:
    """A local Prefect API server for this process: :meth:`start_if_needed` as early as possible, then
    :meth:`activate` before the first flow runs; stopped when the process exits."""

    def __init__(self, env: dict[str, str], app_dir: str) -> None:
        self._env = env
        self._app_dir = app_dir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._stop_registered = False
        self._spawn()

    @classmethod
    def start_if_needed(cls) -> LocalPrefectApi | None:
        """Start the server when Prefect would start its ephemeral one: no API URL in the environment or the
        active profile, ephemeral mode allowed. Returns None when a server is configured."""
        import prefect
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:
            return None
        env = {
            **os.environ,
            **settings.to_environment_variables(exclude_unset=True),
            # What Prefect's SubprocessASGIServer sets: no UI, only the services an ephemeral server runs.
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        return cls(env, str(prefect.__module_path__.parent))

    def _spawn(self) -> None:
        self.port = _free_port()
        args = [
            sys.executable, "-m", "uvicorn", "--app-dir", self._app_dir, "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on",
        ]
        self.process = subprocess.Popen(args, env=self._env, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        if not self._stop_registered:
            # At exit, after Prefect's own exit handlers (registered later, so run earlier) flushed events and logs.
            atexit.register(self.stop)
            self._stop_registered = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait(self, timeout: float | None = None) -> str:
        """Block until the server answers ``/health``; returns the API URL.

        Raises:
            RuntimeError: the server exited, or did not answer within ``timeout`` seconds (default:
                ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``, the same limit as Prefect's own).
        """
        if timeout is None:
            from prefect.settings import get_current_settings

            timeout = float(get_current_settings().server.ephemeral.startup_timeout_seconds)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            code = self.process.poll()
            if code == PORT_IN_USE:
                self._spawn()
                continue
            if code is not None:
                raise RuntimeError(f"the local Prefect API server exited with code {code} while starting (see its output above)")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the local Prefect API server did not answer within {timeout:.0f} s (a fresh database's migrations on a "
            "busy machine can take long: raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or run one server for "
            "many runs with `make serve` and PREFECT_API_URL)"
        )

    def activate(self) -> str:
        """Wait for the server and make it this process's Prefect API (``PREFECT_API_URL``, for every thread
        and any worker process started from here) until the process exits; returns the URL."""
        from prefect.context import refresh_global_settings_context

        url = self.wait()
        os.environ["PREFECT_API_URL"] = url
        # No UI is served and the server dies with this process: no "View at <url>" links to it in the logs.
        os.environ.setdefault("PREFECT_UI_URL", "")
        refresh_global_settings_context()
        return url

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
