"""The ``driftline`` command's entry point, and the warm parent it forks commands from (a fork server).

A training, scoring or monitoring command spends most of a small run importing its libraries: Prefect,
MLflow, Great Expectations, Evidently, scikit-learn, LightGBM, XGBoost (~6 s of a 10 s tiny ``train`` on
2 cores). So after a command has run, a parent process (``python -m driftline.app.forkserver``) imports
them once and waits on a Unix socket; the next command (:data:`ROUTED`) connects, hands over its standard
streams, arguments, environment, working directory and umask, and the parent forks a child that runs it
as the command would have run itself. The child is a process of its own (its pid, exit status, atexit
handlers; Ctrl-C and the other terminal signals are passed on by the command); only the imports are shared,
already done. Nothing the command ran before is shared: the parent never runs a command. The parent's
objects are frozen out of the garbage collector's reach (``gc.freeze``), so a child's collections skip them.

A served command on a ``PREFECT_HOME`` whose local API is not running (:mod:`driftline.app.local_api`) asks
the parent for that too: the parent forks the API's supervisor in a session of its own, not waited for (it
outlives the command, and stops on its own idle time), and the supervisor forks the server, whose code
(Prefect's server, uvicorn) the parent imported; without the ~3 s of a new interpreter's imports, a fresh
home's first command waits ~1 s for its API.

One parent serves one environment (:func:`driftline.app.warm.fingerprint`): the interpreter, the installed
packages (their folders' times), the project's code and lock (:func:`driftline.code_version`) and every
environment variable except those each command reads afresh (Driftline's settings, the Prefect and MLflow
locations). A changed file or package means another fingerprint, so another parent; the old one stops once
no command has run for ``DRIFTLINE_LOCAL_API_IDLE_SECONDS`` (default 300; never while one runs), as the local
API does. With that set to 0, or ``DRIFTLINE_FORK_SERVER=0``, or off Linux, every command runs in its own new
process as before.

The parent imports what commands imported before it: each command (the one that starts a parent, and each
child) adds the modules it loaded from the interpreter's own folders (standard library, site-packages; never
the project's) to a list per installation, which a new parent starts from and a running one reads between
commands.
"""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, NoReturn

from driftline.app import local_api
from driftline.app.local_api import idle_seconds
from driftline.app.warm import enabled, learned_path, socket_path

# The commands worth a warm parent: the ones that import the pipeline's libraries.
ROUTED = frozenset({"train", "score", "monitor", "compare", "history", "rollback", "reproduce"})
# What the parent imports before its first command, besides what earlier commands taught it.
FIRST_IMPORTS = (
    "driftline.app.cli",
    "flows.training",
    "flows.scoring",
    "flows.monitoring",
    "flows.promotion",
    "great_expectations",
    "evidently",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "sklearn.calibration",
    "sklearn.ensemble",
    "lightgbm",
    "xgboost",
    "matplotlib.pyplot",
    # A command on a new PREFECT_HOME forks its local API server from this parent (local_api.supervisor_starter).
    "prefect.server.api.server",
    "uvicorn.server",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto",
    "uvloop",
    "aiosqlite",
    "prefect_dask",  # the server loads the installed Prefect collections as it starts
)
_HEADER = struct.Struct("!Q")
# The terminal's signals reach the command (the process the terminal knows); it passes them on to the child.
PASSED_ON = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


# ---------------------------------------------------------------------------------------------- the command


def main() -> NoReturn:
    """``driftline``: run the command in the warm parent when there is one, else here (and start one for
    the next command)."""
    code = run_in_parent(sys.argv)
    if code is not None:
        os._exit(code)
    from driftline.app.cli import main as run_here

    run_here()


def run_in_parent(argv: list[str], env: Mapping[str, str] | None = None) -> int | None:
    """The command's exit status from the warm parent, or None: run it here. Without a parent ready, one is
    started when this process exits, for the next command."""
    env = dict(os.environ if env is None else env)
    command = argv[1] if len(argv) > 1 else ""
    if command not in ROUTED or not enabled(env):
        return None
    try:
        path = socket_path(env)
    except (OSError, ImportError):
        return None
    if path is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        atexit.register(start_parent, path, env)
        # Run first (atexit is last in, first out): what this command imported, for the parent to import.
        atexit.register(_teach, set(), learned_path(path.parent))
        return None
    with conn:
        return _hand_over(conn, argv, env)


def _send(conn: socket.socket, job: dict[str, Any], fds: list[int]) -> IO[bytes]:
    """Hand ``job`` (with this process's umask) and ``fds`` (the stdin, stdout and stderr it runs with) to the
    parent; the stream of its replies."""
    umask = os.umask(0)
    os.umask(umask)
    data = json.dumps({**job, "umask": umask}).encode()
    socket.send_fds(conn, [_HEADER.pack(len(data))], fds)
    conn.sendall(data)
    return conn.makefile("rb")


def _hand_over(conn: socket.socket, argv: list[str], env: Mapping[str, str]) -> int | None:
    try:
        replies = _send(conn, {"argv": argv, "env": dict(env), "cwd": os.getcwd()}, [0, 1, 2])
        started = json.loads(replies.readline() or b"{}")
    except (OSError, ValueError):
        return None  # the parent went away before it forked: nothing ran, run it here
    pid = started.get("pid")
    if not isinstance(pid, int):
        return None

    def pass_on(signum: int, _frame: Any) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    before = {signum: signal.signal(signum, pass_on) for signum in PASSED_ON}
    try:
        ended = json.loads(replies.readline() or b"{}")
    except (OSError, ValueError):
        ended = {}
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    code = ended.get("returncode")
    return code if isinstance(code, int) else 1


def start_parent(path: Path, env: Mapping[str, str]) -> None:
    """Start the warm parent for ``path`` in the background (its own session, no terminal)."""
    try:
        log = open(path.with_suffix(".log"), "ab")  # noqa: SIM115 - closed below, once the parent has it
    except OSError:
        return  # the folder went away (a temporary folder removed): no parent, nothing lost
    with log:
        subprocess.Popen(
            [sys.executable, "-m", "driftline.app.forkserver", str(path)],
            env=dict(env),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )


# ------------------------------------------------------------------------------------------- the warm parent


def serve(path: Path) -> int:
    """Import, then fork a child per connection until no command has run for the idle time (never while one
    runs); returns only in a child, with its job."""
    import fcntl

    # Its log (its stderr) is its lock too, held for its life: one file per parent, gone with it if empty.
    log = path.with_suffix(".log")
    lock = open(log, "a")  # noqa: SIM115 - held for the parent's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another parent serves (or is starting for) this fingerprint
    from driftline.app.cli import apply_offline_defaults

    apply_offline_defaults()  # what every command sets before it imports Prefect
    learned = learned_path(path.parent)
    known = _learn(FIRST_IMPORTS, set())
    known, seen = _learn_from(learned, known, 0)
    _warm_up()
    _freeze()
    if threading.active_count() != 1:
        print(f"{threading.active_count()} threads after the imports: not safe to fork", file=sys.stderr)
        return 1
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(1.0)
    idle = idle_seconds()
    last = time.monotonic()
    monitors: set[int] = set()  # one per running command; idle means none for ``idle`` seconds
    signal.signal(signal.SIGTERM, _stop)  # `kill`: the socket goes too
    try:
        while monitors or time.monotonic() - last < idle:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                if _reap(monitors):
                    last = time.monotonic()
                before = seen
                known, seen = _learn_from(learned, known, seen)
                if seen != before:
                    _freeze()
                if threading.active_count() != 1:
                    return 1
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                lock.close()
                _monitor(conn, set(sys.modules), path)  # does not return in the monitor
            monitors.add(pid)
            conn.close()
    finally:
        if os.getpid() == _PARENT_PID:
            path.unlink(missing_ok=True)
            if log.exists() and not log.stat().st_size:
                log.unlink()
    return 0


_PARENT_PID = os.getpid()


def _reap(monitors: set[int]) -> bool:
    """Collect the monitors whose command ended; whether any did."""
    ended = {pid for pid in monitors if os.waitpid(pid, os.WNOHANG)[0]}
    monitors -= ended
    return bool(ended)


def _stop(signum: int, _frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)


def _freeze() -> None:
    """Move every object the parent holds (the imported libraries) out of the garbage collector's reach: a
    child's collections never walk them, nor touch their memory pages, which stay shared with the parent
    (a warm tiny ``train`` 5.1 s -> 4.6 s, by hand)."""
    gc.collect()
    gc.freeze()


def _warm_up() -> None:
    """Fill, once here, the caches that every training command's first figure, report and model fill in its
    own process: matplotlib's fonts and renderer, Evidently's first report, MLflow's map of the installed
    packages (read to write a model's requirements). Each is skipped if it fails: the command does it."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": rng.integers(0, 2, size=60), "p": rng.uniform(size=60)})
    steps = (
        lambda: _png(frame),
        lambda: _report(frame),
        lambda: importlib.import_module("mlflow.utils.requirements_utils")._init_packages_to_modules_map(),
    )
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - see the docstring
            pass


def _png(frame: Any) -> None:
    import io

    import matplotlib.pyplot as plt

    from driftline.plots import reliability_figure

    figure = reliability_figure(frame["y"].to_numpy(), frame["p"].to_numpy(), frame["p"].to_numpy())
    figure.savefig(io.BytesIO(), format="png")
    plt.close(figure)


def _report(frame: Any) -> None:
    from driftline.drift import evidently_report

    with tempfile.TemporaryDirectory() as folder:
        evidently_report(frame.iloc[:30], frame.iloc[30:], 30, folder)


def _learn(names: Any, known: set[str]) -> set[str]:
    for name in names:
        if name in known:
            continue
        known.add(name)
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that cannot be imported here is the command's to import
            pass
    return known


def _learn_from(learned: Path, known: set[str], seen: int) -> tuple[set[str], int]:
    try:
        size = learned.stat().st_size
    except OSError:
        return known, seen
    if size == seen:
        return known, seen
    return _learn(learned.read_text().split(), known), size


def _monitor(conn: socket.socket, preloaded: set[str], path: Path) -> NoReturn:
    """One command: receive it, fork its process, report its pid and then its exit status. Or a command's local
    API supervisor (``"run": "local-api"``): fork it in a session of its own, report its pid, leave it running."""
    try:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
        header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        if uid != os.getuid() or len(fds) != 3 or len(header) != _HEADER.size:
            os._exit(1)
        size = _HEADER.unpack(header)[0]
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                os._exit(1)
            data += chunk
        job = json.loads(data)
    except (OSError, ValueError):
        os._exit(1)
    detached = job.get("run") == "local-api"
    pid = os.fork()
    if pid == 0:
        conn.close()
        if detached:
            os.setsid()
            _become(job, fds)
            _supervise(job["argv"])
        _become(job, fds)
        _run(preloaded, path)
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    except OSError:
        pass
    if detached:
        os._exit(0)  # not waited for: it outlives the command, and this parent's idle time ignores it
    status = _wait(conn, pid)
    try:
        conn.sendall(json.dumps({"returncode": _exit_status(status)}).encode() + b"\n")
    except OSError:
        pass
    os._exit(0)


def _wait(conn: socket.socket, pid: int) -> int:
    """The child's wait status; if the command goes away first (killed), the child gets a hang-up, as a
    terminal's process would."""
    hung_up = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        readable, _, _ = select.select([conn], [], [], 0.2)
        if readable and not hung_up and not conn.recv(1):
            hung_up = True
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass


def _exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def _become(job: dict[str, Any], fds: list[int]) -> None:
    """Turn this forked process into the command's: streams, environment, directory, umask, arguments."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    os.umask(job["umask"])
    sys.argv = job["argv"]
    for signum in PASSED_ON:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()  # Prefect read its settings when the parent imported it


def _run(preloaded: set[str], path: Path) -> NoReturn:
    atexit.register(_teach, preloaded, learned_path(path.parent))
    local_api.supervisor_starter = functools.partial(start_supervisor, path)
    from driftline.app.cli import main as run_here

    run_here()


def start_supervisor(path: Path, args: list[str], env: Mapping[str, str], log: int) -> int | None:
    """In a served command: start its local API's supervisor (``python -m driftline.app.local_api args``) as a
    fork of the warm parent at ``path``, with ``log`` as its output; its pid, or None (then the caller starts
    it as a new process)."""
    job = {"run": "local-api", "argv": ["driftline.app.local_api", *args], "env": dict(env), "cwd": "/"}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn, open(os.devnull, "rb") as nothing:
            conn.connect(str(path))
            pid = json.loads(_send(conn, job, [nothing.fileno(), log, log]).readline() or b"{}").get("pid")
    except (OSError, ValueError):
        return None
    return pid if isinstance(pid, int) else None


def _supervise(argv: list[str]) -> NoReturn:
    """A forked local API supervisor: it forks the server too (its code is imported here)."""
    code = 1
    try:
        code = local_api.main(argv[1:], fork=True)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0
    except BaseException:  # noqa: BLE001 - to its log; this process must never return into the parent's loop
        import traceback

        traceback.print_exc()
    os._exit(code)


def _teach(preloaded: set[str], learned: Path) -> None:
    """Add the modules this command imported from the interpreter's folders (not the parent's, not already
    listed) to the parent's list."""
    roots = tuple({os.path.join(sys.prefix, ""), os.path.join(sys.base_prefix, "")})
    try:
        listed = set(learned.read_text().split())
    except OSError:
        listed = set()
    new = sorted(
        name
        for name, module in list(sys.modules.items())
        if name not in preloaded
        and name not in listed
        and not name.startswith("__")  # __main__: the command's own script
        and str(getattr(module, "__file__", "") or "").startswith(roots)
    )
    if new:
        with open(learned, "a") as handle:
            handle.write("\n".join(new) + "\n")


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1])))
