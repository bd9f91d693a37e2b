"""Where a ``driftline`` command finds its warm parent (driftline.app.forkserver): whether it is on, which
parent serves an environment (its fingerprint), the private folder of its socket, whether it runs, and the
list of modules commands have taught it. Used by the command, the parent and ``driftline doctor``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from driftline.app.local_api import idle_seconds

SWITCH = "DRIFTLINE_FORK_SERVER"
# Read by each command when it runs, never by a library at import: the same warm parent serves them all.
PER_COMMAND_PREFIXES = ("DRIFTLINE_",)
PER_COMMAND = frozenset(
    {
        "PREFECT_HOME",  # Prefect's settings are read again in the child (refresh_global_settings_context)
        "PREFECT_API_URL",
        "PREFECT_UI_URL",
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH",
        "PREFECT_LOCAL_STORAGE_PATH",
        "PREFECT_SERVER_ANALYTICS_ENABLED",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "COLUMNS",
        "LINES",
    }
)


def per_command(key: str) -> bool:
    return key in PER_COMMAND or key.startswith(PER_COMMAND_PREFIXES)


def enabled(env: Mapping[str, str]) -> bool:
    return sys.platform == "linux" and env.get(SWITCH, "1").strip() != "0" and idle_seconds(env) > 0


def _folder(env: Mapping[str, str]) -> Path | None:
    """A folder only this user can enter (the socket's permissions are the parent's only door), in the
    command's temporary folder."""
    folder = Path(env.get("TMPDIR") or tempfile.gettempdir()) / f"driftline-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


def _installation() -> str:
    """The interpreter and its installed packages: a package added, removed or upgraded changes their folder's
    time."""
    import sysconfig

    paths = sysconfig.get_paths()
    folders = [(p, os.stat(p).st_mtime_ns) for p in sorted({paths["purelib"], paths["platlib"]}) if os.path.isdir(p)]
    return hashlib.sha256(json.dumps([sys.executable, sys.version, folders]).encode()).hexdigest()[:16]


def fingerprint(env: Mapping[str, str]) -> str:
    """Which parent may serve a command with ``env``: the installation, the project's code and lock, and every
    variable but the per-command ones. Anything else that differs gets a parent of its own."""
    from driftline import code_version

    fixed = sorted((k, v) for k, v in env.items() if not per_command(k))
    return hashlib.sha256(json.dumps([_installation(), code_version(), fixed]).encode()).hexdigest()[:20]


def socket_path(env: Mapping[str, str]) -> Path | None:
    folder = _folder(env)
    if folder is None:
        return None
    path = folder / f"{fingerprint(env)}.sock"
    return path if len(str(path)) < 100 else None  # AF_UNIX paths stop at 108 bytes


def running(path: Path) -> bool:
    """Whether a parent holds ``path``'s lock, its log (it does from its start until it stops)."""
    import fcntl

    try:
        with open(path.with_suffix(".log"), "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def learned_path(folder: Path) -> Path:
    return folder / f"{_installation()}.modules"
