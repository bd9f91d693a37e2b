"""``run``: ``subprocess.run`` for the suite's ``driftline ...``, ``python -c ...`` and ``python -m ...``
commands, forked from a warm parent (tests/zygote.py) instead of starting a new interpreter; ``popen``: the same
for a command that runs beside the test (``subprocess.Popen``: the suite's MLflow and Prefect servers, workers,
relays).

Each command is still a real process of its own (pid, environment, working directory, signals, exit
status, atexit), as a user runs it; it only skips re-importing pandas, scikit-learn, MLflow, GX... which
cost ~8 s of CPU per process: the suite starts ~130 of them on 2 cores. A ``driftline`` command is forked
from a parent per environment that has imported Prefect and the project's flows as well (tests/zygote.py).
Anything else (or with ``DRIFTLINE_TEST_COLD=1``) goes to ``subprocess.run`` or ``subprocess.Popen`` unchanged.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

BIN = Path(sys.executable).parent
ZYGOTE = Path(__file__).with_name("zygote.py")
_lock = threading.Lock()
_zygote: tuple[subprocess.Popen | None, str] | None = None
# The socket of the zygote the xdist workers of a session share (tests/conftest.py starts it in the controller).
SHARED_VARIABLE = "DRIFTLINE_TEST_ZYGOTE"


def start_zygote(folder: str, parent: int) -> tuple[subprocess.Popen, str]:
    """Start a zygote in ``folder`` that serves until ``parent`` is gone; its process and socket (it listens once
    it has imported PRELOAD)."""
    path = os.path.join(folder, "socket")
    env = {**os.environ, "PYTHONPATH": ""}
    process = subprocess.Popen(
        [sys.executable, str(ZYGOTE), path, str(parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=folder,
    )
    return process, path


def _socket_path() -> str:
    """The zygote's socket: the session's (:data:`SHARED_VARIABLE`, started by the xdist controller for every
    worker), else one of this process, started now."""
    global _zygote
    with _lock:
        shared = os.environ.get(SHARED_VARIABLE)
        if shared:
            if _zygote is None:
                _wait_listening(shared, None)
                _zygote = (None, shared)
            return shared
        if _zygote is None or _zygote[0].poll() is not None:
            process, path = start_zygote(tempfile.mkdtemp(prefix="driftline-zygote-"), os.getpid())
            _wait_listening(path, process)
            _zygote = (process, path)
            atexit.register(_stop, process)
        return _zygote[1]


def _wait_listening(path: str, process: subprocess.Popen | None, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)  # closed at once: the monitor it starts reads no command and ends
                return
            except (FileNotFoundError, ConnectionRefusedError):
                pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{ZYGOTE} did not start (exit {process.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ZYGOTE} did not listen on {path} within {timeout:.0f} s")
        time.sleep(0.2)


def _command_socket(env: dict[str, str]) -> str:
    """The socket of the parent of ``driftline`` commands run with ``env`` (started by the zygote if none
    serves that environment yet), or the zygote's own when that parent cannot start. The zygote's folder holds
    one per environment, whichever process asked for it first (a lock there: xdist workers share a zygote)."""
    import fcntl

    from driftline.app.warm import per_command

    base = _socket_path()
    fixed = {k: v for k, v in env.items() if not per_command(k) and k != "PYTEST_CURRENT_TEST"}
    key = json.dumps(sorted(fixed.items()))
    path = os.path.join(os.path.dirname(base), f"commands-{hashlib.sha256(key.encode()).hexdigest()[:16]}")
    with _lock, open(os.path.join(os.path.dirname(base), "commands.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            return path
        if os.path.exists(f"{path}.failed"):
            return base
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(base)
            conn.sendall(json.dumps({"kind": "parent", "env": fixed, "socket": path}).encode() + b"\n")
            started = _Replies(conn).next(120)
        if started.get("ready"):
            return path
        Path(f"{path}.failed").write_text(json.dumps(started))
        return base


def _stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def _job(args: list[str]) -> dict | None:
    """The zygote's description of ``args``, or None when it is not a Python command it can run."""
    args = [str(a) for a in args]
    if Path(args[0]) == BIN / "driftline":
        return {"kind": "driftline", "argv": args, "path0": str(BIN)}
    if Path(args[0]) == Path(sys.executable) and len(args) >= 3 and args[1] == "-c":
        return {"kind": "code", "code": args[2], "argv": ["-c", *args[3:]], "path0": ""}
    if Path(args[0]) == Path(sys.executable) and len(args) >= 3 and args[1] == "-m":
        return {"kind": "module", "module": args[2], "argv": [args[2], *args[3:]]}  # path0: the command's cwd
    return None


def run(
    args: list,
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    capture_output: bool = True,
    text: bool = True,
    with_prefect: bool | None = None,
) -> subprocess.CompletedProcess:
    """``subprocess.run(args, cwd=, env=, timeout=, capture_output=True, text=True)``, from the warm parent;
    ``with_prefect``: from the parent that has imported Prefect and the flows too (the default for ``driftline``
    commands)."""
    job = _job(args)
    if job is None or not capture_output or os.environ.get("DRIFTLINE_TEST_COLD") == "1":
        return subprocess.run(args, cwd=cwd, env=env, timeout=timeout, capture_output=capture_output, text=text)
    with tempfile.TemporaryDirectory(prefix="driftline-run-") as folder:
        out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        workdir = os.path.abspath(cwd or os.getcwd())
        job.setdefault("path0", workdir)
        job.update(stdout=out, stderr=err, cwd=workdir, env=dict(os.environ if env is None else env))
        if with_prefect is None:
            with_prefect = job["kind"] == "driftline"
        target = _command_socket(job["env"]) if with_prefect else _socket_path()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(target)
            conn.sendall(json.dumps(job).encode() + b"\n")
            replies = _Replies(conn)
            pid = replies.next(None)["pid"]
            try:
                reply = replies.next(timeout)
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                replies.next(30)
                raise subprocess.TimeoutExpired(args, timeout, _read(out, text), _read(err, text)) from None
        _account(args, reply["cpu_seconds"])
        return subprocess.CompletedProcess(args, reply["returncode"], _read(out, text), _read(err, text))


class Process:
    """A command forked from the warm parent that runs beside the test (a server, a relay, a worker, a long run
    read line by line): the part of ``subprocess.Popen`` the suite uses."""

    def __init__(self, args: list, conn: socket.socket, replies: _Replies, pid: int, folder: str | None) -> None:
        self.args, self.pid, self.returncode = args, pid, None
        self.stdout: IO[str] | None = None
        self._conn, self._replies, self._folder = conn, replies, folder

    def poll(self) -> int | None:
        if self.returncode is None:
            readable, _, _ = select.select([self._conn], [], [], 0)
            if readable or b"\n" in self._replies.buffer:
                self._ended(self._replies.next(30))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                reply = self._replies.next(timeout)
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
            self._ended(reply)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _ended(self, reply: dict) -> None:
        self.returncode = reply["returncode"]
        _account(self.args, reply["cpu_seconds"])
        self._conn.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def popen(
    args: list,
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    stdout: str | Path | int | None = None,
    start_new_session: bool = False,
    with_prefect: bool = False,
) -> Process | subprocess.Popen:
    """``subprocess.Popen(args, cwd=, env=, stdout=, stderr=subprocess.STDOUT, start_new_session=)`` from the warm
    parent. ``stdout``: a file to append both streams to, ``subprocess.PIPE`` for a text stream of them
    (``.stdout``, line by line), or None for neither. Not a Python command the zygote runs (or
    ``DRIFTLINE_TEST_COLD=1``): ``subprocess.Popen`` itself."""
    job = _job(args)
    if job is None or os.environ.get("DRIFTLINE_TEST_COLD") == "1":
        handle = open(stdout, "a") if isinstance(stdout, (str, Path)) else None  # noqa: SIM115 - the child's now
        target = handle if handle is not None else stdout if stdout == subprocess.PIPE else subprocess.DEVNULL
        try:
            return subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdout=target,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=start_new_session,
            )
        finally:
            if handle is not None:
                handle.close()
    folder, reader = None, None
    if stdout == subprocess.PIPE:
        folder = tempfile.mkdtemp(prefix="driftline-popen-")
        output = os.path.join(folder, "stdout")
        os.mkfifo(output, 0o600)
        # Open for reading first (without waiting for a writer), so the command's opening for writing does not wait.
        reader = os.open(output, os.O_RDONLY | os.O_NONBLOCK)
    else:
        output = os.path.abspath(stdout) if stdout is not None else os.devnull
    workdir = os.path.abspath(cwd or os.getcwd())
    job.setdefault("path0", workdir)
    job.update(stdout=output, stderr=output, append=True, new_session=start_new_session, cwd=workdir)
    job["env"] = dict(os.environ if env is None else env)
    target = _command_socket(job["env"]) if with_prefect else _socket_path()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(target)
        conn.sendall(json.dumps(job).encode() + b"\n")
        replies = _Replies(conn)
        process = Process(args, conn, replies, replies.next(60)["pid"], folder)
    except BaseException:
        conn.close()
        if reader is not None:
            os.close(reader)
        raise
    if reader is not None:
        os.set_blocking(reader, True)  # the command has it open for writing by now: EOF only when it ends
        process.stdout = open(reader, buffering=1)  # noqa: SIM115 - the caller's stream
    return process


def _account(args: list, cpu_seconds: float) -> None:
    """With CPUPROF_OUT set, one JSON line per command: its CPU seconds (the suite's CPU profile)."""
    target = os.environ.get("CPUPROF_OUT")
    if target:
        with open(target, "a") as handle:
            handle.write(
                json.dumps(
                    {
                        "exe": [Path(str(a)).name for a in args[:3]],
                        "cpu": cpu_seconds,
                        "warm": True,
                        "test": os.environ.get("PYTEST_CURRENT_TEST", ""),
                    }
                )
                + "\n"
            )


class _Replies:
    """The monitor's JSON lines: the command's pid, then its exit status."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buffer = conn, b""

    def next(self, timeout: float | None) -> dict:
        self.conn.settimeout(timeout)
        while b"\n" not in self.buffer:
            chunk = self.conn.recv(4096)
            if not chunk:
                raise RuntimeError("the warm parent's monitor went away before the command's exit status")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def _read(path: str, text: bool) -> str | bytes:
    data = Path(path).read_bytes()
    return data.decode(errors="replace") if text else data
