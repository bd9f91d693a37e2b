"""What an install of Driftline takes on disk: the runtime packages of uv.lock (no dev group), as a user who
runs the pipeline gets them, measured by installing them for real into a temporary environment.

* ``install_runtime_mb``: the environment as ``make install`` leaves it: the packages, the migrated database
  templates (``driftline.app.db_templates``) and the bytecode of what the demo's commands import
  (``driftline.app.bytecode``); the issue-18 target (<= 1.3 GB) is judged on it.
* ``install_runtime_files_mb``: the packages as their wheels unpack them, without bytecode (``uv sync``'s
  default; Python then compiles only what it imports, where it may write).
* ``install_runtime_all_bytecode_mb``: the same environment with every module of every package compiled
  (``compileall``, as ``pip install`` and ``uv sync --compile-bytecode`` leave it; ``make install`` did
  that until 2026-12-07).
* ``install_runtime_largest``: the ten largest entries of site-packages (MB) as ``make install`` leaves them.

uv installs from its cache (filled by ``make install``), so nothing is downloaded when the lock's packages are
there. ``--quick`` measures the files only (the rest runs the demo's commands and compiles, minutes of CPU).
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def _uv() -> str:
    local = ROOT / ".uv" / "bin" / "uv"  # where the Makefile puts uv when the machine has none
    found = shutil.which("uv")
    if found:
        return found
    if local.is_file():
        return str(local)
    raise RuntimeError("uv is not installed (make install puts it in .uv/bin)")


def _size(path: Path) -> int:
    """Bytes on disk of ``path``, a file or the files under a folder (each hard link once, as ``du`` counts
    them; symlinks not followed)."""
    files = [str(path)] if not path.is_dir() else [os.path.join(d, n) for d, _, names in os.walk(path) for n in names]
    seen: set[tuple[int, int]] = set()
    total = 0
    for name in files:
        stat = os.lstat(name)
        key = (stat.st_dev, stat.st_ino)
        if key not in seen:
            seen.add(key)
            total += stat.st_blocks * 512
    return total


def _sync(env: Path) -> None:
    command = [_uv(), "sync", "--frozen", "--no-dev", "--quiet", "--python", sys.executable]
    environ = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(env), "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(command, cwd=ROOT, env=environ, check=True)


def _as_make_install(env: Path) -> None:
    """The steps ``make install`` runs after ``uv sync``, with the new environment's Python."""
    python = str(env / "bin" / "python")
    environ = {k: v for k, v in os.environ.items() if k != "DRIFTLINE_DB_TEMPLATES"}  # the new environment's own
    for module in ("driftline.app.db_templates", "driftline.app.bytecode"):
        subprocess.run([python, "-m", module], cwd=ROOT, env=environ, check=True, stdout=subprocess.DEVNULL)


def _site_packages(env: Path) -> Path:
    return next(env.glob("lib/python*/site-packages"))


def measure(quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="driftline-bench-install-") as tmp:
        env = Path(tmp) / "venv"
        _sync(env)
        out: dict[str, Any] = {"install_runtime_files_mb": round(_size(env) / MB)}
        if quick:
            return out
        _as_make_install(env)
        out["install_runtime_mb"] = round(_size(env) / MB)
        site = _site_packages(env)
        sizes = {entry.name: _size(entry) for entry in site.iterdir()}
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:10]
        out["install_runtime_largest"] = {name: round(size / MB) for name, size in largest}
        compileall.compile_dir(str(site), quiet=1, workers=0)
        out["install_runtime_all_bytecode_mb"] = round(_size(env) / MB)
    return out


if __name__ == "__main__":
    print(measure(quick="--quick" in sys.argv))
