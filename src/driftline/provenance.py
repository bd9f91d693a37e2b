"""What a model version was made from (code, locked environment, config, data), and whether a retrain
from the same inputs gives the same metrics."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from driftline import code_version
from driftline import tags as tagkeys

GIT_COMMIT = tagkeys.GIT_COMMIT
LOCK_SHA256 = tagkeys.LOCK_SHA256
CODE_VERSION = tagkeys.CODE_VERSION
CONFIG_SHA256 = tagkeys.CONFIG_SHA256
DATA_SHA256 = tagkeys.DATA_SHA256
SOURCE = tagkeys.SOURCE
PYTHON = tagkeys.PYTHON
# Images have no .git: the build passes the commit in (docker build --build-arg GIT_COMMIT=...).
COMMIT_ENV = "DRIFTLINE_GIT_COMMIT"
PROJECT_ENV = "DRIFTLINE_PROJECT_DIR"
UNKNOWN = "unknown"


def project_dir() -> Path | None:
    """The folder holding uv.lock: $DRIFTLINE_PROJECT_DIR, the working folder or a parent, or the checkout
    this package was installed from (editable installs)."""
    candidates = [Path(os.environ[PROJECT_ENV])] if os.environ.get(PROJECT_ENV) else []
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents, Path(__file__).resolve().parents[2]]
    return next((c for c in candidates if (c / "uv.lock").is_file()), None)


def git_commit(folder: Path | None) -> str:
    """The checked-out commit, with ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    if folder is None:
        return UNKNOWN
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return UNKNOWN
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def collect(config_yaml: str, data_sha256: str, source: str) -> dict[str, str]:
    """The tags every model version carries: enough to rebuild it and to tell what changed since."""
    folder = project_dir()
    lock = folder / "uv.lock" if folder else None
    return {
        GIT_COMMIT: git_commit(folder),
        LOCK_SHA256: file_sha256(lock) if lock else UNKNOWN,
        CODE_VERSION: code_version(),
        CONFIG_SHA256: hashlib.sha256(config_yaml.encode()).hexdigest(),
        DATA_SHA256: data_sha256,
        SOURCE: source,
        PYTHON: platform.python_version(),
    }


@dataclass(frozen=True)
class Reproduction:
    """A retrain compared with the version it reproduces."""

    recorded: dict[str, float]
    reproduced: dict[str, float]
    tolerance: float
    environment_changes: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def differences(self) -> dict[str, float]:
        keys = self.recorded.keys() & self.reproduced.keys()
        return {k: abs(self.recorded[k] - self.reproduced[k]) for k in sorted(keys)}

    @property
    def missing(self) -> list[str]:
        return sorted(self.recorded.keys() - self.reproduced.keys())

    @property
    def matches(self) -> bool:
        return bool(self.differences) and not self.missing and max(self.differences.values()) <= self.tolerance

    def lines(self) -> list[str]:
        out = [f"{'metric':<24}{'recorded':>14}{'reproduced':>14}{'|diff|':>12}"]
        for key, diff in self.differences.items():
            mark = "" if diff <= self.tolerance else "  <- differs"
            out.append(f"{key:<24}{self.recorded[key]:>14.6f}{self.reproduced[key]:>14.6f}{diff:>12.2e}{mark}")
        out += [f"{key:<24}{self.recorded[key]:>14.6f}{'missing':>14}" for key in self.missing]
        for key, (then, now) in self.environment_changes.items():
            out.append(f"changed since training: {key}: {then} -> {now}")
        verdict = "match" if self.matches else "DO NOT match"
        out.append(f"metrics {verdict} (tolerance {self.tolerance:g})")
        return out


def environment_changes(recorded: dict[str, str], current: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Which inputs (commit, lock, code, config, data) differ between a version's tags and now."""
    keys = (GIT_COMMIT, LOCK_SHA256, CODE_VERSION, CONFIG_SHA256, DATA_SHA256)
    return {
        k: (recorded.get(k, UNKNOWN), current.get(k, UNKNOWN))
        for k in keys
        if recorded.get(k, UNKNOWN) != current.get(k, UNKNOWN)
    }
