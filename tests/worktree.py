"""What a test session may leave behind in the git work tree: nothing (issue 18, item 7).

The session records ``git status --porcelain`` (untracked files listed one by one; ignored files such as
.venv/, .driftline/ and __pycache__/ are not listed) with a hash of each listed file's bytes, and compares
at the end: a file that appeared, became modified, or changed again while already modified is reported.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def tree_state(root: Path) -> dict[str, str] | None:
    """Every path ``git status`` lists in the work tree holding ``root``, with its status and a hash of its
    bytes; None outside a work tree (an unpacked archive, a machine without git)."""
    try:
        top = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=30
        )
        if top.returncode != 0 or not top.stdout.strip():
            return None
        listed = subprocess.run(
            ["git", "-C", top.stdout.strip(), "status", "--porcelain=v1", "-z", "--untracked-files=all"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    state: dict[str, str] = {}
    entries = iter(listed.decode("utf-8", "surrogateescape").split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            next(entries, None)  # -z lists a rename's source as the next entry
        file = Path(top.stdout.strip()) / path
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16] if file.is_file() else "-"
        state[path] = f"{status} {digest}"
    return state


def tree_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """One line per path the session created, modified or deleted (status, path), sorted."""
    changed = [f"{after[path].split()[0]:>2} {path}" for path in after if before.get(path) != after[path]]
    # A file dirty before the session and clean again after it was restored (checked out) by a test.
    changed += [f"{'restored':>2} {path}" for path in before if path not in after]
    return sorted(changed)
