"""Fault points: where a reliability drill may kill or pause a process just before a registry write.

Production writes call an injected hook (``FaultHook``); the default does nothing. ``from_environment``
builds the drills' hook from ``DRIFTLINE_DRILL_KILL_AT`` / ``DRIFTLINE_DRILL_PAUSE_AT`` when a store is
built from the environment, so tests/drills select a point by setting a variable on the process.

Points, in the order a promotion writes: ``intent``, ``champion``, ``champion-event``,
``champion-version-tag``, ``previous-champion``, ``previous-champion-event``,
``previous-champion-version-tag``, ``commit`` (``repair`` inside a repair); and ``artifact:<path>`` before
each run artifact write (e.g. ``artifact:reference/profile.json``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping

FaultHook = Callable[[str], None]

DRILL_KILL_ENV = "DRIFTLINE_DRILL_KILL_AT"
DRILL_PAUSE_ENV = "DRIFTLINE_DRILL_PAUSE_AT"
DRILL_PAUSE_SECONDS_ENV = "DRIFTLINE_DRILL_PAUSE_SECONDS"
DRILL_RESUME_ENV = "DRIFTLINE_DRILL_RESUME_FILE"

# A pause point pauses the first time this process reaches it (a drill breaks something once).
_paused: set[str] = set()


def no_faults(point: str) -> None:
    """The production hook: nothing happens at any point."""


class DrillFaults:
    """Kill (SIGKILL, no clean-up) or pause this process just before the registry write ``kill_at`` /
    ``pause_at``. A pause prints ``driftline drill: paused at <point>`` and sleeps ``pause_seconds`` (or
    until ``resume_file`` exists, when given), so a drill can stop a server at a known moment."""

    def __init__(
        self,
        kill_at: str | None = None,
        pause_at: str | None = None,
        pause_seconds: float = 10.0,
        resume_file: str | None = None,
    ) -> None:
        self.kill_at, self.pause_at = kill_at, pause_at
        self.pause_seconds, self.resume_file = pause_seconds, resume_file

    def __call__(self, point: str) -> None:
        if point == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if point == self.pause_at and point not in _paused:
            _paused.add(point)
            print(f"driftline drill: paused at {point}", flush=True)
            until = time.monotonic() + self.pause_seconds
            resume = self.resume_file
            while time.monotonic() < until and not (resume and os.path.exists(resume)):
                time.sleep(0.2 if resume else max(0.0, until - time.monotonic()))


def from_environment(environ: Mapping[str, str]) -> FaultHook:
    """The drills' hook when a drill variable is set, else ``no_faults``."""
    kill_at, pause_at = environ.get(DRILL_KILL_ENV) or None, environ.get(DRILL_PAUSE_ENV) or None
    if kill_at is None and pause_at is None:
        return no_faults
    return DrillFaults(
        kill_at, pause_at, float(environ.get(DRILL_PAUSE_SECONDS_ENV, "10")), environ.get(DRILL_RESUME_ENV) or None
    )
