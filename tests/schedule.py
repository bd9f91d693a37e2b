"""Longest test files first: the order in which `make test` hands files to its xdist workers.

`--dist loadfile` gives each worker whole files, and by default xdist starts with the files that hold the most
tests. Here the one-test drills and end-to-end files take 1-3 minutes each while the files with the most tests
are fast unit tests, so the long files came last and made the tail of the run: the suite waited on one worker
while the others were idle. `make test` passes ``--no-loadscope-reorder``, and ``conftest.py`` sorts the
collection with ``longest_first`` from the seconds each file took in a recorded run (``durations.json``).

Regenerate after adding or changing slow tests (any run's JUnit XML will do)::

    .venv/bin/pytest -n 3 --dist loadfile --junitxml=/tmp/junit.xml
    .venv/bin/python -m tests.schedule /tmp/junit.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

DURATIONS = Path(__file__).with_name("durations.json")
ROOT = Path(__file__).resolve().parents[1]
# A file not in durations.json yet: a guess from what it holds (a slow test starts servers or runs flows).
UNKNOWN_SLOW_SECONDS = 60.0
UNKNOWN_SECONDS_PER_TEST = 0.5


class Item(Protocol):
    nodeid: str

    def get_closest_marker(self, name: str) -> object | None: ...


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def load(path: Path = DURATIONS) -> dict[str, float]:
    return json.loads(path.read_text()) if path.is_file() else {}


def estimate(file: str, items: Sequence[Item], durations: dict[str, float]) -> float:
    """Seconds ``file`` is expected to take: recorded, else guessed from its markers and size."""
    if file in durations:
        return durations[file]
    if any(item.get_closest_marker("slow") for item in items):
        return UNKNOWN_SLOW_SECONDS * len(items)
    return UNKNOWN_SECONDS_PER_TEST * len(items)


def longest_first(items: list[Item], durations: dict[str, float]) -> list[Item]:
    """``items`` grouped by file, the files longest first (ties: collection order); order within a file kept."""
    files: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        files[file_of(item.nodeid)].append(item)
    ranked = sorted(files, key=lambda f: -estimate(f, files[f], durations))
    return [item for file in ranked for item in files[file]]


def from_junit(paths: Iterable[Path]) -> dict[str, float]:
    """Seconds per test file (setup, call and teardown of its tests) from JUnit XML reports."""
    seconds: dict[str, float] = defaultdict(float)
    for path in paths:
        for case in ET.parse(path).iter("testcase"):
            module = case.get("classname", "")
            parts = module.split(".")
            # classname is the module's dotted path, plus the class for tests inside a class.
            for cut in range(len(parts), 0, -1):
                candidate = "/".join(parts[:cut]) + ".py"
                if (ROOT / candidate).is_file():
                    seconds[candidate] += float(case.get("time", 0.0))
                    break
    return {file: round(total, 1) for file, total in sorted(seconds.items())}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    durations = from_junit(Path(a) for a in argv)
    DURATIONS.write_text(json.dumps(durations, indent=1, sort_keys=True) + "\n")
    print(f"{DURATIONS}: {len(durations)} files, {sum(durations.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
