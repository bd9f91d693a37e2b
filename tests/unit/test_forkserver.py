"""The warm parent of ``driftline`` commands (driftline.app.forkserver): one per environment, serving every
home; commands run as their own processes with their own streams, exit status and signals; off when asked;
gone once idle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from driftline.app import forkserver, warm
from driftline.synthetic import make_labelled_series
from tests.servers import TEMPLATES_VARIABLE, wait_until

BIN = Path(sys.executable).parent
TINY = (
    "name: tiny\ncontract: {min_rows_per_symbol: 50}\nsplits: {n_splits: 2, min_train_size: 50}\n"
    "evaluation: {window: 50}\npromotion: {min_rows: 20}\nmodels: {families: [logreg]}\n"
)


@pytest.fixture
def run_dir():
    """A short TMPDIR for the parent's socket (a Unix socket's path stops at 108 bytes; pytest's are long)."""
    folder = Path(tempfile.mkdtemp(prefix="dl-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _env(root: Path, home: str, run: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLINE_"))}
    if TEMPLATES_VARIABLE in os.environ:
        env[TEMPLATES_VARIABLE] = os.environ[TEMPLATES_VARIABLE]
    env.update(
        TMPDIR=str(run or root),
        PREFECT_HOME=str(root / home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        DRIFTLINE_HOME=str(root / home / "driftline"),
        MLFLOW_TRACKING_URI=f"sqlite:///{root / home / 'mlflow.db'}",
        DRIFTLINE_LOCAL_API_IDLE_SECONDS="6",
        **extra,
    )
    return env


def test_every_home_shares_one_parent_and_any_other_setting_gets_its_own(tmp_path, monkeypatch):
    one = _env(tmp_path, "a")
    assert warm.fingerprint(one) == warm.fingerprint(_env(tmp_path, "b", PWD="/elsewhere"))
    for key, value in (("PYTHONPATH", "/x"), ("PREFECT_LOGGING_LEVEL", "DEBUG"), ("TZ", "Asia/Tokyo")):
        assert warm.fingerprint({**one, key: value}) != warm.fingerprint(one), key
    before = warm.fingerprint(one)
    monkeypatch.setattr("driftline.code_version", lambda: "0.1.0+edited")  # an edit in the project's code
    assert warm.fingerprint(one) != before


def test_no_parent_is_used_or_started_when_off_or_for_a_light_command(tmp_path, run_dir, monkeypatch):
    started: list[tuple] = []
    monkeypatch.setattr(forkserver.atexit, "register", lambda *args: started.append(args))
    on = _env(tmp_path, "a", run_dir)
    for argv, env in (
        (["driftline", "train"], {**on, "DRIFTLINE_LOCAL_API_IDLE_SECONDS": "0"}),
        (["driftline", "train"], {**on, "DRIFTLINE_FORK_SERVER": "0"}),
        (["driftline", "version"], on),
        (["driftline", "--help"], on),
    ):
        assert forkserver.run_in_parent(argv, env) is None
    assert started == []
    assert forkserver.run_in_parent(["driftline", "train"], on) is None  # none running: one starts at exit
    # ... and this command's imports are written down first (atexit runs the last registered first).
    assert [args[0] for args in started] == [forkserver.start_parent, forkserver._teach]


def test_the_socket_folder_must_be_this_users_alone(tmp_path, run_dir):
    assert warm.socket_path(_env(tmp_path, "a", run_dir)).parent == run_dir / f"driftline-{os.getuid()}"
    (run_dir / f"driftline-{os.getuid()}").chmod(0o755)  # others may enter: they could reach the socket
    assert warm.socket_path(_env(tmp_path, "a", run_dir)) is None
    assert (
        warm.socket_path(_env(tmp_path, "a", tmp_path / ("long" * 30))) is None
    )  # too long a path for a socket: no parent


def _forks(socket: Path) -> dict[int, int]:
    """The warm parent of ``socket`` and every process forked from it (they share its command line): their
    session ids by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(socket).encode() in (entry / "cmdline").read_bytes():
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, IndexError, ValueError):
            continue
    return found


def _session(socket: Path, parent: int) -> list[int]:
    """The parent and the monitors and processes of the commands it serves: its session (a command's local
    API, forked from it too, has a session of its own)."""
    return [pid for pid, sid in _forks(socket).items() if sid == parent]


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.slow  # a parent importing the pipeline's libraries, a local Prefect API, two tiny trainings: ~30 s
def test_a_warm_parent_runs_commands_of_any_home_as_their_own_processes_then_stops_once_idle(
    tmp_path, run_dir, capfd, monkeypatch
):
    # A command this test process fails to hand over must not start a parent when pytest exits.
    monkeypatch.setattr(forkserver.atexit, "register", lambda *args: None)
    for n in (1, 2):
        make_labelled_series(n_rows=200, seed=n).to_csv(tmp_path / f"tiny-{n}.csv", index=False)
    (tmp_path / "tiny.yaml").write_text(TINY)
    missing = ["train", "--data", str(tmp_path / "missing.csv")]

    def train(n: int, home: str) -> list[str]:
        return [
            *("train", "--config", str(tmp_path / "tiny.yaml"), "--data", str(tmp_path / f"tiny-{n}.csv")),
            *("--target", "label", "--target-col", "y", "--summary-json", str(tmp_path / home / f"s{n}.json")),
        ]

    # The first command runs on its own (no parent yet) and starts one as it exits.
    first = subprocess.run(
        [str(BIN / "driftline"), *missing],
        env=_env(tmp_path, "a", run_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 2 and "no such file" in first.stderr
    folder = run_dir / f"driftline-{os.getuid()}"
    assert "typer" in warm.learned_path(folder).read_text().split()  # what it imported, for the parent
    wait_until(lambda: list(folder.glob("*.sock")), timeout=240, what="the warm parent's socket", every=0.5)
    socket = next(folder.glob("*.sock"))
    (parent,) = _forks(socket)  # started in a session of its own
    assert _forks(socket) == {parent: parent}
    capfd.readouterr()
    try:
        # Served from this test process's own streams: the same error, once, and the same exit status.
        assert forkserver.run_in_parent(["driftline", *missing], _env(tmp_path, "b", run_dir)) == 2
        err = capfd.readouterr().err
        assert err.count("no such file") == 1, err
        # Another home than the parent's: the run's Prefect database, MLflow store and summary are that home's.
        assert forkserver.run_in_parent(["driftline", *train(1, "b")], _env(tmp_path, "b", run_dir)) == 0
        summary = json.loads((tmp_path / "b" / "s1.json").read_text())
        assert summary["decision"] is not None and not summary.get("rerun_of")
        assert (tmp_path / "b" / "mlflow.db").exists() and (tmp_path / "b" / "prefect" / "prefect.db").exists()
        assert not (tmp_path / "a" / "prefect" / "prefect.db").exists()
        # Its local API (a new home's) was forked from the parent too, in a session of its own: its supervisor
        # and, forked from that, the server; neither a new interpreter.
        supervisor = json.loads((tmp_path / "b" / "prefect" / "driftline-api.json").read_text())["pid"]
        assert _forks(socket).get(supervisor) == supervisor
        assert [child for child in _children(supervisor) if child in _forks(socket)]
        # What the command imported beyond the parent's imports, for the parent: libraries only, not the project.
        learned = warm.learned_path(folder).read_text().split()
        assert learned and not [m for m in learned if m.split(".")[0] in ("driftline", "flows", "tasks")]
        # Ctrl-C reaches the command's own process through the command; the child and its monitor end.
        command = subprocess.Popen(
            [str(BIN / "driftline"), *train(2, "b")],
            env=_env(tmp_path, "b", run_dir),
            stderr=subprocess.PIPE,
            text=True,
        )
        assert command.stderr.readline().startswith("model driftline-tiny")
        # Served: the parent, the command's monitor and its process.
        wait_until(lambda: len(_session(socket, parent)) == 3, timeout=30, what="the served command", every=0.05)
        command.send_signal(signal.SIGINT)
        rest = command.communicate(timeout=120)[1]
        assert command.returncode == 130, rest
        assert (
            not (tmp_path / "b" / "s2.json").exists()
            or json.loads((tmp_path / "b" / "s2.json").read_text())["status"] == "failed"
        )
        wait_until(
            lambda: _session(socket, parent) == [parent], timeout=30, what="the child and monitor to end", every=0.2
        )
    finally:
        capfd.readouterr()
    # No command for DRIFTLINE_LOCAL_API_IDLE_SECONDS: the parent and the local API stop; the socket goes.
    wait_until(lambda: not _forks(socket), timeout=120, what="the idle parent and API to stop", every=0.5)
    assert not socket.exists() and not socket.with_suffix(".log").exists()  # nothing left but the learned list
