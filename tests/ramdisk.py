"""The suite's temporary files in memory when the machine has a tmpfs with room for them.

The tests write ~0.5 GB of SQLite stores (MLflow commits with ``synchronous=FULL``: an fsync per logged
batch), model artifacts, Parquet stages and server logs. On a disk that is 10% of a 2-core CI machine's
time spent waiting on I/O (``iowait`` in /proc/stat over a whole run); on tmpfs almost none: `make test`
1003 s → 834 s wall, the same 932 tests (fresh clone, 4 workers, quiet machine, 2026-12-04).

Nothing the tests check depends on the disk: a killed process's writes survive in the page cache either
way, and the disk-full drill mounts a tmpfs of its own. ``DRIFTLINE_TEST_TMP=disk`` keeps the system temp
folder; ``DRIFTLINE_TEST_TMP=/some/dir`` uses that folder; ``--basetemp`` given on the command line wins.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

VARIABLE = "DRIFTLINE_TEST_TMP"
CANDIDATE = Path("/dev/shm")  # a tmpfs on Linux; absent on macOS, 64 MB by default in a Docker container
MIN_FREE_BYTES = 2 * 1024**3  # the suite's peak is ~0.5 GB; less free than this and the disk is safer
PREFIX = "driftline-tests-"


def _is_tmpfs(path: Path) -> bool:
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            return any(line.split()[1] == str(path) and line.split()[2] == "tmpfs" for line in mounts)
    except OSError:
        return False


def choose() -> Path | None:
    """The folder to put the session's temporary files in, or None for the system's temp folder."""
    wanted = os.environ.get(VARIABLE, "")
    if wanted == "disk":
        return None
    if wanted:
        return Path(wanted)
    if not (CANDIDATE.is_dir() and os.access(CANDIDATE, os.W_OK) and _is_tmpfs(CANDIDATE)):
        return None
    if shutil.disk_usage(CANDIDATE).free < MIN_FREE_BYTES:
        return None
    return CANDIDATE


def remove_stale(parent: Path) -> None:
    """Earlier sessions' folders whose test process is gone (a failed session keeps its folder for a look;
    memory is not a place to let them pile up)."""
    for folder in parent.glob(f"{PREFIX}*"):
        pid = folder.name.removeprefix(PREFIX).split("-", 1)[0]
        # /proc/PID is there while that process lives (no /proc: keep everything)
        if pid.isdigit() and Path("/proc/self").exists() and not Path("/proc", pid).exists():
            shutil.rmtree(folder, ignore_errors=True)


def enter(parent: Path) -> Path:
    """A folder of this session's own under ``parent``, made the temp folder of this process and of every
    process it starts (TMPDIR); returns it. World-traversable: the PostgreSQL test runs its cluster as the
    ``postgres`` user inside it."""
    remove_stale(parent)
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
    root.chmod(0o755)
    (root / "tmp").mkdir(mode=0o755)
    os.environ["TMPDIR"] = str(root / "tmp")
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    return root
