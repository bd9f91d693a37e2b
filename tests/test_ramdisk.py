"""The suite's temporary files in memory (tests/ramdisk.py): where they go, and what is cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests import ramdisk


def test_this_session_writes_where_ramdisk_chose(tmp_path: Path):
    chosen = ramdisk.choose()
    where = tempfile.gettempdir()
    if chosen is None:
        assert not where.startswith(f"/dev/shm/{ramdisk.PREFIX}")
    else:
        assert str(tmp_path).startswith(str(chosen)) and where.startswith(str(chosen))
        assert os.environ["TMPDIR"] == where  # the servers and commands the tests start inherit it


def test_the_variable_overrides_the_choice(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(ramdisk.VARIABLE, "disk")
    assert ramdisk.choose() is None
    monkeypatch.setenv(ramdisk.VARIABLE, str(tmp_path))
    assert ramdisk.choose() == tmp_path


def test_folders_of_finished_sessions_are_removed_live_ones_kept(tmp_path: Path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{ramdisk.PREFIX}{gone.stdout.strip()}-abc"
    live = tmp_path / f"{ramdisk.PREFIX}{os.getpid()}-def"
    other = tmp_path / "someone-elses"
    for folder in (dead, live, other):
        folder.mkdir()
    ramdisk.remove_stale(tmp_path)
    assert not dead.exists() and live.exists() and other.exists()
