"""A warm parent for the suite's Python subprocesses (see tests/warm.py): it imports the heavy libraries
once, then forks a fresh child per command. Run as ``python tests/zygote.py SOCKET PARENT_PID``.

Each connection is one command. The zygote forks a monitor for it; the monitor forks the command's own
process, sends its pid once that process has become the command (its files open, its session made) and its
exit status when it ends. The command runs as a real process: its own pid, environment, working directory,
stdout/stderr files, signals, and a normal interpreter exit (atexit handlers run). Only the imports below are
shared, already done: Prefect is not among them (it reads its settings from the environment at import time),
nor is any module of this project.

A ``driftline`` command is forked one level further down, from a parent that has also imported Prefect and
the project's CLI and flows (:data:`COMMAND_PRELOAD`, ~0.8 s of CPU per command): one such parent per
environment, told apart as the ``driftline`` command's own warm parent tells them apart
(driftline.app.warm.per_command: every variable but those each command reads afresh). Its commands read
Prefect's settings again when they start (driftline.app.cli.apply_offline_defaults), as the warm parent's do.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys
from collections.abc import Callable

# What `driftline train/score/monitor` import, minus Prefect: ~8 s of CPU per process on this machine.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.metrics",
    "sklearn.calibration",
    "sklearn.isotonic",
    "lightgbm",
    "xgboost",
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    # `mlflow server` (tests/servers.py: ~4 s of CPU to import its command line, at each of ~20 starts a suite).
    "mlflow.cli",
    "mlflow.server.handlers",
    # What a Prefect server (tests/servers.py) imports besides Prefect, none of it reading a setting at import.
    "alembic",
    "aiosqlite",
    "docket",
    "fastapi",
    "uvicorn",
    # The SQLite stores (tracking and registry) a local run opens: ~0.7 s of CPU per command otherwise.
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "great_expectations",
    "matplotlib",
    "matplotlib.pyplot",  # chooses no backend at import (driftline.plots sets Agg before its first figure)
    "boto3",
    "evidently",
    "pydantic",
    "yaml",
    # Third-party libraries that Prefect and the CLI import, none of which reads a setting at import time:
    # 1.4 -> 0.86 s of CPU per command to import Prefect and the training flow (forked children, measured).
    "anyio",
    "asgi_lifespan",
    "coolname",
    "dateutil",
    "dotenv",
    "griffe",
    "h2",
    "httpcore",
    "httpx",
    "humanize",
    "pathspec",
    "pendulum",
    "prometheus_client",
    "pydantic_extra_types",
    "pydantic_settings",
    "pygments",
    "rich.console",
    "shellingham",
    "slugify",
    "toml",
    "typer",
    "websockets",
)
# What a `driftline` command imports on top of PRELOAD, in a parent per environment (see above): 0.84 -> 0.00 s
# of CPU per command to import them (forked children, measured by hand).
COMMAND_PRELOAD = (
    "prefect",
    "driftline.app.cli",
    "flows.training",
    "flows.scoring",
    "flows.monitoring",
    "flows.promotion",
)


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise EOFError("client went away")
        data += chunk
    return data


def serve(path: str, parent: int, listening: Callable[[], None]) -> dict:
    """Accept commands on ``path`` (``listening()`` once it does) until ``parent`` is gone (the test process;
    for a parent of ``driftline`` commands, the zygote); returns only inside a command's own process, with the
    command. (Not PR_SET_PDEATHSIG: it follows the thread that started the zygote, and a test may start it from
    a thread pool that ends long before the test process does.)"""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    server.settimeout(2.0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    listening()
    while True:
        if os.getppid() != parent:
            os._exit(0)
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        if os.fork() != 0:
            conn.close()
            continue
        # the monitor
        server.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            job = json.loads(_read_line(conn))
        except (EOFError, ValueError):
            os._exit(1)
        if job["kind"] == "parent":
            return _command_parent(conn, job)
        # The pid is told once the command's process has become the command (tests/warm.py: like subprocess.Popen,
        # which returns once its child has exec'd): its session and its output files exist by then.
        became, done = os.pipe()
        pid = os.fork()
        if pid == 0:
            conn.close()
            os.close(became)
            return {**job, "became": done}
        os.close(done)
        os.read(became, 1)  # end of file: the command closed it after _become, or died
        os.close(became)
        _send(conn, {"pid": pid})
        _, status, usage = os.wait4(pid, 0)
        _send(conn, {"returncode": os.waitstatus_to_exitcode(status), "cpu_seconds": usage.ru_utime + usage.ru_stime})
        os._exit(0)


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def _command_parent(conn: socket.socket, job: dict) -> dict:
    """This monitor becomes a parent of ``driftline`` commands run with ``job["env"]`` (but its per-command
    variables): it imports COMMAND_PRELOAD, serves ``job["socket"]`` until the zygote is gone and answers
    ``ready`` once it listens; returns only inside a command's own process, with the command."""
    os.environ.clear()
    os.environ.update(job["env"])
    os.environ["PREFECT_HOME"] = os.path.abspath("prefect-home")  # Prefect makes its home on import: not a test's
    extra = [p for p in job["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    # sys.path[0] (this script's folder) stays first: a command's _become replaces it with its own.
    sys.path[:] = [sys.path[0], *extra, *[p for p in sys.path[1:] if p not in extra]]
    try:
        for name in COMMAND_PRELOAD:
            importlib.import_module(name)
    except BaseException as error:  # noqa: BLE001 - told to the client, which runs its commands cold instead
        _send(conn, {"error": repr(error)})
        os._exit(1)
    gc.collect()
    gc.freeze()

    def ready() -> None:
        _send(conn, {"ready": True})
        conn.close()

    return serve(job["socket"], os.getppid(), ready)


def _become(job: dict) -> None:
    """Turn this forked process into the command's: files, environment, directory, argv, sys.path."""
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    if job.get("new_session"):
        os.setsid()
    # A command beside the test (tests/warm.popen) appends both streams to one file, or writes them to a FIFO the
    # test reads; each opening of a FIFO for writing waits for its reader.
    mode = os.O_APPEND if job.get("append") else os.O_TRUNC
    for fd, target in ((1, job["stdout"]), (2, job["stderr"])):
        handle = os.open(target, os.O_WRONLY | os.O_CREAT | mode, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    extra = [p for p in job["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [job["path0"], *extra, *[p for p in sys.path[1:] if p not in extra]]
    sys.argv = job["argv"]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if "prefect.context" in sys.modules:  # a command parent's child: Prefect read the parent's settings
        sys.modules["prefect.context"].refresh_global_settings_context()


def _announce() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def main() -> None:
    path, parent = sys.argv[1], int(sys.argv[2])
    for name in PRELOAD:
        importlib.import_module(name)
    # The preloaded objects out of the collector's reach: a child's collections skip them (and leave their
    # pages shared), as the `driftline` command's warm parent does (driftline.app.forkserver._freeze). A tiny
    # `driftline train` forked from here: 6.4 -> 5.4 and 5.5 -> 4.8 s of CPU (two rounds of 6 runs, by hand).
    gc.collect()
    gc.freeze()
    job = serve(path, parent, _announce)
    _become(job)
    os.close(job["became"])
    _exit_code(_run, job)


def _run(job: dict) -> None:
    if job["kind"] == "code":
        code = compile(job["code"], "<string>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})  # the test's own script
    elif job["kind"] == "module":
        import runpy

        runpy.run_module(job["module"], run_name="__main__", alter_sys=True)
    else:
        from driftline.app.cli import main

        main()  # the console script's entry point: it ends the process itself (exit_without_teardown)


def _exit_code(run, job: dict) -> int:
    """Run the command and exit as the interpreter does (threads joined, atexit handlers, stdio flushed),
    minus the module teardown, as the ``driftline`` command itself does (``exit_without_teardown``): in a
    forked child, tearing down the preloaded modules touches (and so copies) every shared page: ~3 s of CPU
    for nothing."""
    import traceback

    from driftline.app.cli import exit_without_teardown

    try:
        run(job)
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException as error:  # noqa: BLE001 - what the interpreter does with an uncaught exception
        trace = error.__traceback__
        while trace is not None and trace.tb_frame.f_code.co_filename == __file__:
            trace = trace.tb_next
        traceback.print_exception(type(error), error, trace)
        code = 1
    exit_without_teardown(code)


if __name__ == "__main__":
    main()
