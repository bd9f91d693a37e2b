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
