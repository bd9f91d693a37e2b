"""How a benchmark number is measured and judged: interleaved repeated timings, Wilson intervals, verdicts.

* Timing ratios come from interleaved runs (A B A B ..., after one untimed warm-up of each arm, so both
  arms are warmed the same way and drift in machine load hits both): ``interleaved`` runs them,
  ``ratio_summary`` gives the ratio of the medians with the spread of the per-pair ratios.
* Rates (promotions, drift flags) carry their 95% Wilson interval; ``judge`` meets a "<=" target only
  when the interval's upper bound is at most the target, a ">=" one only when its lower bound is at least
  it, and calls a target *missed* only when the whole interval is on the wrong side. In between the
  verdict is "unsure": not met (a full run does not claim it), but no evidence of a miss either.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

ROUNDS = 3
"""Interleaved rounds per timing ratio in a full run (the median of 3; ``--quick`` runs 1 and is not judged)."""

Verdict = Literal["met", "missed", "unsure", "not run"]


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of repeated measurements, and the runs themselves (stored in latest.json)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("spread of no measurements")
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def interleaved(
    arms: dict[str, Callable[[], float | None]], repeats: int, warm_up: bool = True
) -> dict[str, list[float]]:
    """Seconds of each arm over ``repeats`` rounds, arms alternating within every round (ABAB...).

    An arm is a callable returning its own seconds (for a child process: the time it measured), or None to
    be timed here from the outside. ``warm_up`` runs each arm once first, untimed, in the same order.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")

    def timed(arm: Callable[[], float | None]) -> float:
        started = time.perf_counter()
        inner = arm()
        return float(inner) if inner is not None else time.perf_counter() - started

    if warm_up:
        for arm in arms.values():
            timed(arm)
    runs: dict[str, list[float]] = {name: [] for name in arms}
    for round_ in range(repeats):
        # Alternate which arm goes first (AB BA AB ...): neither always follows the other's cache effects.
        order = list(arms) if round_ % 2 == 0 else list(reversed(arms))
        for name in order:
            runs[name].append(timed(arms[name]))
    return runs


def ratio_summary(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, Any]:
    """``median(numerator) / median(denominator)``, with the per-round ratios' min, max and list."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError("ratio of unpaired or empty runs")
    pairs = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return {
        "ratio": statistics.median(numerator) / statistics.median(denominator),
        "round_ratios": pairs,
        "min": min(pairs),
        "max": max(pairs),
        "rounds": len(pairs),
    }


def judge(op: str, target: float, measured: float | None, interval: Sequence[float] | None = None) -> Verdict:
    """The verdict on one target. With an ``interval`` (a rate's 95% Wilson interval), met on the
    conservative bound, missed only when the whole interval fails; without, on the measured value."""
    if measured is None:
        return "not run"
    if op not in ("<=", ">="):
        raise ValueError(f"unknown comparison {op!r}")
    ok = (lambda v: v <= target) if op == "<=" else (lambda v: v >= target)
    if interval is None:
        return "met" if ok(measured) else "missed"
    low, high = float(interval[0]), float(interval[1])
    conservative, optimistic = (high, low) if op == "<=" else (low, high)
    if ok(conservative):
        return "met"
    return "unsure" if ok(optimistic) else "missed"
