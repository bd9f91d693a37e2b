"""A warm parent for the suite's Python subprocesses (see tests/warm.py): it imports the heavy libraries
once, then forks a fresh child per command. Run as ``python tests/zygote.py SOCKET PARENT_PID``.

Each connection is one command. The zygote forks a monitor for it; the monitor forks the command's own
process, sends its pid at once and its exit status when it ends. The command runs as a real process: its
own pid, environment, working directory, stdout/stderr files, signals, and a normal interpreter exit
(atexit handlers run). Only the imports below are shared, already done: Prefect is not among them
(it reads its settings from the environment at import time), nor is any module of this project.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys

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


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise EOFError("client went away")
        data += chunk
    return data


def serve(path: str, parent: int) -> dict:
    """Accept commands until ``parent`` (the test process) is gone; returns only inside a command's own
    process, with the command. (Not PR_SET_PDEATHSIG: it follows the thread that started the zygote, and
    a test may start it from a thread pool that ends long before the test process does.)"""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    server.settimeout(2.0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    sys.stdout.write("ready\n")
    sys.stdout.flush()
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
        pid = os.fork()
        if pid == 0:
            conn.close()
            return job
        try:
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:
            pass
        _, status, usage = os.wait4(pid, 0)
        reply = {"returncode": os.waitstatus_to_exitcode(status), "cpu_seconds": usage.ru_utime + usage.ru_stime}
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        os._exit(0)


def _become(job: dict) -> None:
    """Turn this forked process into the command's: files, environment, directory, argv, sys.path."""
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    for fd, target in ((1, job["stdout"]), (2, job["stderr"])):
        handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    extra = [p for p in job["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [job["path0"], *extra, *[p for p in sys.path[1:] if p not in extra]]
    sys.argv = job["argv"]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def main() -> None:
    path, parent = sys.argv[1], int(sys.argv[2])
    for name in PRELOAD:
        importlib.import_module(name)
    # The preloaded objects out of the collector's reach: a child's collections skip them (and leave their
    # pages shared), as the `driftline` command's warm parent does (driftline.app.forkserver._freeze). A tiny
    # `driftline train` forked from here: 6.4 -> 5.4 and 5.5 -> 4.8 s of CPU (two rounds of 6 runs, by hand).
    gc.collect()
    gc.freeze()
    job = serve(path, parent)
    _become(job)
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
