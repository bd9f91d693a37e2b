"""The Prefect API of one local CLI run, when no Prefect server is configured.

Prefect's own ephemeral mode starts the same server (uvicorn on ``prefect.server.api.server:create_app``,
UI and most services off, the database in ``PREFECT_HOME``) the first time a flow needs the API: after this
process has imported the flows' libraries, and after importing the whole server package into this process
only to spawn it. Started here instead, the server's start-up (its imports, a fresh database's migrations)
runs on the other core while this process imports the flows, and this process never imports the server.
On 2 cores a first ``driftline train`` of 800 rows (fresh homes) went from 53 s to 40 s (single runs, by hand).

By default the server outlives the command and serves the next ones on the same ``PREFECT_HOME``
(:class:`SharedLocalApi`): a small supervisor process (``python -m driftline.app.local_api``) owns it and stops it
once no command has used it for ``DRIFTLINE_LOCAL_API_IDLE_SECONDS`` (default 300). Each command holds a
shared ``flock`` on ``driftline-api.users`` in ``PREFECT_HOME`` while it runs (the kernel drops it when the
command exits or is killed); the supervisor stops only when it can take that lock exclusively after the
idle time, so it never stops under a running command. A command served by the warm parent
(driftline.app.forkserver) has the parent fork the supervisor (:data:`supervisor_starter`), and that one forks
the server (``fork``): both start without a new interpreter's imports.

``DRIFTLINE_LOCAL_API_IDLE_SECONDS=0``: one server per command (:class:`LocalPrefectApi`), which dies with the
process that started it even when that process is killed (``PR_SET_PDEATHSIG``).

Prefect is imported lazily (only ``prefect.settings``); the core stays free of it at import time.
"""

from __future__ import annotations

import argparse
import atexit
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

# uvicorn's exit code when it cannot bind its port (someone took it after we picked it): try another.
PORT_IN_USE = 3
IDLE_VARIABLE = "DRIFTLINE_LOCAL_API_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 300.0
STATE_FILE = "driftline-api.json"  # {"pid": supervisor, "url": ...} while the shared server runs
USERS_FILE = "driftline-api.users"  # shared flock per running command; its mtime is the last use
START_FILE = "driftline-api.start"  # exclusive flock while a command checks for / starts the server
LOG_FILE = "driftline-api.log"
# Set in a command forked from the warm parent (driftline.app.forkserver): starts the supervisor as another fork
# of that parent, which has the server's code imported already; args, environment, log's fd -> its pid, or None.
supervisor_starter: Callable[[list[str], dict[str, str], int], int | None] | None = None


def idle_seconds(env: Mapping[str, str] | None = None) -> float:
    """``DRIFTLINE_LOCAL_API_IDLE_SECONDS`` (of ``env``, default the process's): how long the shared local API
    waits for the next command (0: none)."""
    raw = (os.environ if env is None else env).get(IDLE_VARIABLE, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_IDLE_SECONDS
    except ValueError:
        return DEFAULT_IDLE_SECONDS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with what Prefect's SubprocessASGIServer sets: no UI, only the services an ephemeral server runs."""
    return {**env, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the server is stopped at exit instead


class LocalPrefectApi:
    """A local Prefect API server for this process: :meth:`start_if_needed` as early as possible, then
    :meth:`activate` before the first flow runs; stopped when the process exits."""

    def __init__(self, env: dict[str, str], app_dir: str, fork: bool = False) -> None:
        self._env = env
        self._app_dir = app_dir
        self.port = 0
        self.process: subprocess.Popen[bytes] | _Forked | None = None
        self._stop_registered = False
        if fork:
            self._fork()
        else:
            self._spawn()

    @classmethod
    def start_if_needed(cls) -> LocalPrefectApi | SharedLocalApi | None:
        """Start the server when Prefect would start its ephemeral one: no API URL in the environment or the
        active profile, ephemeral mode allowed. Returns None when a server is configured; a
        :class:`SharedLocalApi` unless ``DRIFTLINE_LOCAL_API_IDLE_SECONDS`` is 0."""
        import prefect
        from prefect.settings import get_current_settings

        from driftline.adapters.templates import seed_prefect_database

        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:
            return None
        env = server_env({**os.environ, **settings.to_environment_variables(exclude_unset=True)})
        seed_prefect_database(settings)  # a new database: migrated at install, not now (db_templates)
        idle = idle_seconds()
        if idle > 0:
            return SharedLocalApi(Path(settings.home), env, str(prefect.__module_path__.parent), idle)
        return cls(env, str(prefect.__module_path__.parent))

    def _spawn(self) -> None:
        self.port = _free_port()
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            self._app_dir,
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ]
        self.process = subprocess.Popen(
            args, env=self._env, preexec_fn=_die_with_parent if sys.platform == "linux" else None
        )
        if not self._stop_registered:
            # At exit, after Prefect's own exit handlers (registered later, so run earlier) flushed events and logs.
            atexit.register(self.stop)
            self._stop_registered = True

    def _fork(self) -> None:
        """The server in a forked child of this process, which has imported its code (a fork of the warm parent,
        ~3 s of imports saved); its socket is bound here first, so no other process can take the port."""
        import uvicorn
        from prefect.server.api.server import create_app

        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        self.port = listening.getsockname()[1]
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the server's process (checked through its API)
            code = 1
            try:
                _die_with_parent()
                config = uvicorn.Config(create_app, factory=True, log_level="error", lifespan="on")
                uvicorn.Server(config).run(sockets=[listening])
                code = 0
            except BaseException:  # noqa: BLE001 - whatever stops it, it goes to the log and ends this process
                traceback.print_exc()
            finally:
                os._exit(code)
        listening.close()
        self.process = _Forked(pid)

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
                raise RuntimeError(
                    f"the local Prefect API server exited with code {code} while starting (see its output above)"
                )
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

    def ready(self) -> bool:
        """Whether the server answers ``/health`` now (a quick look: never waits for it)."""
        return self.process is not None and self.process.poll() is None and _healthy(self.url, 0.2)

    def activate(self) -> str:
        """Wait for the server and make it this process's Prefect API (``PREFECT_API_URL``, for every thread
        and any worker process started from here) until the process exits; returns the URL."""
        return _activate(self.wait())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Forked:
    """What :class:`LocalPrefectApi` uses of a ``Popen``, for a child forked from this process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.05)
        return self.returncode  # type: ignore[return-value]

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass


def _activate(url: str) -> str:
    from prefect.context import refresh_global_settings_context

    os.environ["PREFECT_API_URL"] = url
    # No UI is served and the server is gone soon after: no "View at <url>" links to it in the logs.
    os.environ.setdefault("PREFECT_UI_URL", "")
    refresh_global_settings_context()
    return url


def _healthy(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_state(home: Path) -> dict | None:
    try:
        state = json.loads((home / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and _alive(int(state.get("pid", 0))) else None


class SharedLocalApi:
    """The local API shared by the commands of one ``PREFECT_HOME``: joined if it runs, started if not.

    This process holds a shared lock on ``USERS_FILE`` from here until it exits, so the server is not
    stopped under it; ``activate`` waits for the server like :class:`LocalPrefectApi`.
    """

    def __init__(self, home: Path, env: dict[str, str], app_dir: str, idle: float) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        users = os.open(home / USERS_FILE, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(users, fcntl.LOCK_SH)  # waits while a supervisor that found no users is stopping
        self._users = users  # kept open (and locked) for the life of the process
        os.utime(home / USERS_FILE)
        atexit.register(self._touch)
        with open(home / START_FILE, "a", encoding="utf-8") as start:
            fcntl.flock(start, fcntl.LOCK_EX)
            state = _read_state(home)
            if state is None:
                state = self._spawn(env, app_dir, idle)
        self.pid = int(state["pid"])

    def _spawn(self, env: dict[str, str], app_dir: str, idle: float) -> dict:
        (self.home / STATE_FILE).unlink(missing_ok=True)
        args = ["--home", str(self.home), "--app-dir", app_dir, "--idle", str(idle)]
        popen: subprocess.Popen[bytes] | None = None
        with open(self.home / LOG_FILE, "ab") as log:
            pid = supervisor_starter(args, env, log.fileno()) if supervisor_starter is not None else None
            if pid is None:
                popen = subprocess.Popen(
                    [sys.executable, "-m", "driftline.app.local_api", *args],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
                pid = popen.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = _read_state(self.home)
            if state is not None and int(state["pid"]) == pid:
                return state
            if (popen.poll() is not None) if popen is not None else not _alive(pid):  # a fork's is not our child
                break
            time.sleep(0.05)
        raise RuntimeError(f"the local Prefect API supervisor did not start: see {self.home / LOG_FILE}")

    def _touch(self) -> None:
        try:
            os.utime(self.home / USERS_FILE)
        except OSError:
            pass

    def wait(self, timeout: float | None = None) -> str:
        """Block until the shared server answers ``/health``; returns the API URL (see ``LocalPrefectApi.wait``)."""
        if timeout is None:
            from prefect.settings import get_current_settings

            timeout = float(get_current_settings().server.ephemeral.startup_timeout_seconds)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = _read_state(self.home)
            if state is None or int(state["pid"]) != self.pid:
                raise RuntimeError(f"the local Prefect API server stopped while starting: see {self.home / LOG_FILE}")
            if state.get("url") and _healthy(state["url"], 2):
                return str(state["url"])
            time.sleep(0.1)
        raise RuntimeError(
            f"the local Prefect API server did not answer within {timeout:.0f} s (see {self.home / LOG_FILE}; a fresh "
            "database's migrations on a busy machine can take long: raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, "
            "or run one server for many runs with `make serve` and PREFECT_API_URL)"
        )

    def ready(self) -> bool:
        """Whether the shared server answers ``/health`` now (a quick look: never waits for it)."""
        state = _read_state(self.home)
        return state is not None and bool(state.get("url")) and _healthy(str(state["url"]), 0.2)

    def activate(self) -> str:
        return _activate(self.wait())


def supervise(home: Path, app_dir: str, idle: float, poll: float = 1.0, fork: bool = False) -> int:
    """The shared server's supervisor: run uvicorn (it dies with this process; forked from this one with
    ``fork``), publish its URL in ``STATE_FILE``, and stop it once no command holds ``USERS_FILE`` and none used
    it for ``idle`` seconds."""
    server = LocalPrefectApi(dict(os.environ), app_dir, fork=fork)
    state = home / STATE_FILE

    def publish() -> None:
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "url": server.url}), encoding="utf-8")
        os.replace(tmp, state)

    publish()
    users = os.open(home / USERS_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        while True:
            time.sleep(poll)
            assert server.process is not None
            code = server.process.poll()
            if code == PORT_IN_USE:
                server._spawn()
                publish()
                continue
            if code is not None:
                return code
            try:
                last_use = os.stat(home / USERS_FILE).st_mtime
            except OSError:
                last_use = 0.0
            if time.time() - last_use < idle:
                continue
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a command is running
            return 0  # idle, and no command can join before the server is gone (they wait on the lock)
    finally:
        state.unlink(missing_ok=True)
        server.stop()


def main(argv: list[str] | None = None, fork: bool = False) -> int:
    """The supervisor (``python -m driftline.app.local_api``; a fork of the warm parent calls it with ``fork``:
    the server's code is imported there, so the server is forked too)."""
    parser = argparse.ArgumentParser(
        prog="python -m driftline.app.local_api", description="the shared local Prefect API's supervisor"
    )
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--app-dir", required=True)
    parser.add_argument("--idle", type=float, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the finally: state removed, server stopped
    return supervise(args.home, args.app_dir, args.idle, fork=fork)


if __name__ == "__main__":
    raise SystemExit(main())
