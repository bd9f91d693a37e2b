"""The warm runner (tests/warm.py) behaves like ``subprocess.run`` for what the suite relies on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests import warm

SCRIPT = """
import atexit, json, os, sys
atexit.register(lambda: print("atexit ran"))
print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "argv": sys.argv,
                  "env": os.environ.get("WARM_PROBE"), "home": os.environ.get("HOME"),
                  "prefect": "prefect" in sys.modules}))
sys.stderr.write("to stderr\\n")
sys.exit(int(sys.argv[1]))
"""


def test_a_command_is_its_own_process_with_its_own_environment_directory_and_exit_status(tmp_path):
    done = warm.run(
        [sys.executable, "-c", SCRIPT, "3"], cwd=tmp_path, env={"WARM_PROBE": "yes", "PATH": os.environ["PATH"]}
    )

    assert done.returncode == 3 and done.stderr == "to stderr\n"
    first, last = done.stdout.strip().split("\n")

    seen = json.loads(first)
    assert last == "atexit ran"
    assert seen["pid"] not in (os.getpid(), seen["ppid"]) and seen["cwd"] == str(tmp_path)
    assert seen["argv"] == ["-c", "3"] and seen["env"] == "yes" and seen["home"] is None
    assert seen["prefect"] is False  # Prefect reads its settings at import: never preloaded


def test_a_killed_command_and_an_uncaught_exception_report_as_subprocess_does():
    killed = warm.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    failed = warm.run([sys.executable, "-c", "raise ValueError('boom')"])

    assert killed.returncode == -9
    assert failed.returncode == 1 and failed.stderr.startswith("Traceback") and "ValueError: boom" in failed.stderr
    assert "zygote" not in failed.stderr


def test_a_command_past_its_timeout_is_killed():
    with pytest.raises(subprocess.TimeoutExpired) as expired:
        warm.run([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], timeout=3)
    assert expired.value.stdout == "started\n"


SETTINGS = """
import json, os, sys
from prefect.settings import get_current_settings
settings = get_current_settings()
monitor = open(f"/proc/{os.getppid()}/stat").read().rsplit(")", 1)[1].split()
print(json.dumps({"url": settings.api.url, "home": str(settings.home), "preloaded": sys.argv[1] in sys.modules,
                  "parent": int(monitor[1]), "path": sys.path}))
"""


def test_commands_forked_with_prefect_preloaded_each_read_their_own_prefect_settings(tmp_path):
    seen = []
    for name in ("a", "b"):
        env = {
            **os.environ,
            "PREFECT_API_URL": f"http://127.0.0.1:1/{name}/api",
            "PREFECT_HOME": str(tmp_path / name),
            "PYTHONPATH": str(tmp_path),
        }
        done = warm.run([sys.executable, "-c", SETTINGS, "flows.training"], env=env, with_prefect=True)
        assert done.returncode == 0, done.stderr
        seen.append(json.loads(done.stdout))

    assert [s["url"] for s in seen] == ["http://127.0.0.1:1/a/api", "http://127.0.0.1:1/b/api"]
    assert [s["home"] for s in seen] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert all(s["preloaded"] for s in seen)  # imported by the parent, not by the command
    assert seen[0]["parent"] == seen[1]["parent"]  # forked from one parent: only per-command variables differ
    for s in seen:  # the command's sys.path as Python makes it: its PYTHONPATH, not the zygote's own folder
        assert s["path"][:2] == ["", str(tmp_path)] and str(warm.ZYGOTE.parent) not in s["path"], s["path"]


BESIDE = """
import os, signal, sys, time
print("started", os.getpid(), os.getsid(0), flush=True)
sys.stderr.write("to stderr\\n")
sys.stderr.flush()
signal.signal(signal.SIGTERM, lambda *_: (print("stopping", flush=True), sys.exit(7)))
time.sleep(60)
"""


def test_a_command_beside_the_test_appends_to_its_log_and_stops_when_told(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("an earlier run\n")
    process = warm.popen([sys.executable, "-c", BESIDE], stdout=log, start_new_session=True)

    try:
        # As subprocess.Popen returns once its child exec'd: the command's session is there at once.
        assert os.getpgid(process.pid) == os.getsid(process.pid) == process.pid
        lines = _until(lambda: log.read_text().splitlines(), lambda seen: "to stderr" in seen)
        assert process.poll() is None
        started = lines[1].split()
        assert started[0] == "started" and int(started[1]) == process.pid != os.getpid()
        assert int(started[2]) == process.pid  # start_new_session: the leader of a session of its own
    finally:
        process.terminate()
    assert process.wait(timeout=30) == 7
    assert log.read_text().splitlines() == ["an earlier run", *lines[1:], "stopping"]
    assert process.poll() == 7


def test_a_command_beside_the_test_is_read_line_by_line_as_it_runs_and_reports_a_kill(tmp_path):
    process = warm.popen([sys.executable, "-c", BESIDE], stdout=subprocess.PIPE)

    assert process.stdout.readline().split()[0] == "started"  # while it runs: it sleeps a minute after this
    assert process.stdout.readline() == "to stderr\n"
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.5)
    process.kill()
    assert process.wait(timeout=30) == -9
    assert process.stdout.read() == ""  # the pipe's end: no writer left
    process.stdout.close()


def _until(read, done, timeout: float = 60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if done(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out; last seen {value!r}")
