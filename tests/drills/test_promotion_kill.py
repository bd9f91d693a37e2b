"""Drill: SIGKILL at every registry write of a promotion. ``champion`` is never absent, every half-done
state carries its intent record, and the next run rolls it back (history consistent) and can promote again.

Kill during repair: the repair of a half-done promotion (the training run's start,
``repair_interrupted_promotion``) is itself SIGKILLed at its registry writes; its intent record stays, and
the repair after it still ends with champion, previous-champion and history consistent (a killed repair
that had restored previous-champion without recording it used to leave the history saying otherwise). These run in the
same pool, first, so their lock leases run out while the promotion kills go on (no extra lease wait)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from driftline.adapters import registry
from tests import warm
from tests.drills.conftest import PROMOTE, history_consistent, log_models

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# Every write of a promotion, in order (registry.drill_point): the kill hits just before that write.
KILL_POINTS = (
    "intent",
    "champion",
    "champion-event",
    "champion-version-tag",
    "previous-champion",
    "previous-champion-event",
    "previous-champion-version-tag",
    "commit",
)
# Writes of a repair of "champion 3, previous 2, intent {3 over 2, previous 1}" (a promotion killed at
# "commit"): killed holding the lock (and a new fencing generation) before any write; after restoring
# previous-champion but before recording it in the history. Two, as each costs a subprocess (CI time);
# the same half-writes of champion and of a deleted previous-champion are unit-tested
# (tests/unit/test_registry_timeline.py::test_dead_repair_is_finished).
REPAIR_KILL_POINTS = ("repair", "previous-champion-event")
REPAIR = """
import sys
from flows.promotion import repair_interrupted_promotion
repair_interrupted_promotion(sys.argv[1], "run-repair-killed")
print("REPAIR FINISHED")
"""


def _run_and_die(
    script: str, point: str, name: str, sample: Path, api: str, uri: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
    env.update(PREFECT_API_URL=api, MLFLOW_TRACKING_URI=uri, DRIFTLINE_DRILL_KILL_AT=point, PYTHONPATH=str(ROOT))
    return warm.run(
        [sys.executable, "-c", script, name, str(sample)],
        cwd=ROOT,
        env=env,
        with_prefect=True,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sigkill_at_every_promotion_write_leaves_a_champion_and_the_next_run_repairs(prefect_api, tracking, tmp_path):
    from mlflow import MlflowClient

    from flows.promotion import promote_with_smoke_test, repair_interrupted_promotion

    began = time.monotonic()
    sources, sample = log_models(3)
    sample_path = tmp_path / "sample.parquet"
    sample.to_parquet(sample_path)
    aliases, client = registry.MlflowAliasRegistry(), MlflowClient()
    names = {point: f"driftline-kill-{point}" for point in KILL_POINTS}
    repairs = {point: f"driftline-kill-repair-{point}" for point in REPAIR_KILL_POINTS}
    for name in [*names.values(), *repairs.values()]:
        for source in sources:
            client.copy_model_version(source, name)
        # Champion 2, previous-champion 1: the drill promotes 3 over 2.
        aliases.move_champion(registry.ChampionMove(name, "1", None, "first", "run-1"))
        aliases.move_champion(registry.ChampionMove(name, "2", "1", "second", "run-2"))
    for name in repairs.values():
        # The promotion's own writes up to its commit: what a promotion SIGKILLed at "commit" leaves (above).
        aliases.move_champion(
            registry.ChampionMove(name, "3", "2", "drill: better on hold-out", "run-killed"), commit=False
        )

    jobs = [(REPAIR, point, repairs[point]) for point in REPAIR_KILL_POINTS]
    jobs += [(PROMOTE, point, names[point]) for point in KILL_POINTS]
    took: dict[str, float] = {}  # seconds per killed repair subprocess: what the repair drill adds

    def run(job: tuple[str, str, str]) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = _run_and_die(*job, sample_path, prefect_api, tracking)
        if job[0] is REPAIR:
            took[job[1]] = time.monotonic() - started
        return result

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, jobs))
    done = {point: result for (script, point, _), result in zip(jobs, results, strict=True) if script is PROMOTE}
    repair_done = {point: result for (script, point, _), result in zip(jobs, results, strict=True) if script is REPAIR}

    for point, name in names.items():
        result = done[point]
        assert result.returncode == -9, (
            f"{point}: not killed (rc {result.returncode})\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
        )
        assert "PROMOTION FINISHED" not in result.stdout
        champion = aliases.alias_version(name, "champion")
        # Never absent, never a third version, and exactly where the kill leaves it: killed before the
        # champion write ("intent", "champion") it is still 2; after it (every later point) it is 3.
        expected = "2" if KILL_POINTS.index(point) <= KILL_POINTS.index("champion") else "3"
        assert champion == expected, f"{point}: champion is {champion}, expected {expected}"
        intent = aliases.intent(name)
        if point == "intent":  # killed before the first write: nothing changed
            assert intent is None and champion == "2"
            assert history_consistent(aliases, name) == {"champion": ("2", "2"), "previous-champion": ("1", "1")}
        else:  # every half-done state is covered by its intent record, which holds how to undo it
            assert intent is not None, point
            assert (intent["version"], intent["champion"], intent["previous_champion"]) == ("3", "2", "1")

    for point, name in repairs.items():  # a repair killed half way: still a champion, still its intent record
        result = repair_done[point]
        assert result.returncode == -9, (
            f"repair {point}: not killed (rc {result.returncode})\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
        )
        assert "REPAIR FINISHED" not in result.stdout
        assert aliases.alias_version(name, "champion") == "3", point  # not restored yet (the last alias restored)
        intent = aliases.intent(name)
        assert intent is not None, point
        assert (intent["version"], intent["champion"], intent["previous_champion"]) == ("3", "2", "1")

    killed_at = time.monotonic()
    for point, name in names.items():
        record = repair_interrupted_promotion(name, "run-next")  # the start of the next training run
        assert (record is None) == (point == "intent"), point
        assert aliases.intent(name) is None
        assert history_consistent(aliases, name) == {"champion": ("2", "2"), "previous-champion": ("1", "1")}, point
        if record is not None:
            assert "interrupted" in aliases.version_tags(name, "3")["driftline.promotion.rolled_back"]
            assert aliases.history(name)[-1]["action"] == "repair"
    for point, name in repairs.items():  # the repair after the killed repair finishes it
        record = repair_interrupted_promotion(name, "run-next")
        assert record is not None, point
        assert aliases.intent(name) is None, point
        assert history_consistent(aliases, name) == {"champion": ("2", "2"), "previous-champion": ("1", "1")}, point
        assert "interrupted" in aliases.version_tags(name, "3")["driftline.promotion.rolled_back"]
        assert aliases.history(name)[-1]["action"] == "repair"
    repaired_at = time.monotonic()

    # The next promotion (under the same lock) goes through and leaves a consistent history.
    for point, name in {**names, **repairs}.items():
        assert promote_with_smoke_test(name, "3", "2", "next run: better", "run-next", sample) == "2", point
        assert history_consistent(aliases, name) == {"champion": ("3", "3"), "previous-champion": ("2", "2")}, point
        assert aliases.intent(name) is None
    print(
        f"\nkill drill: {len(KILL_POINTS)} promotion and {len(REPAIR_KILL_POINTS)} repair kill points; kills "
        f"{killed_at - began:.1f} s, repairs (incl. waiting for "
        f"dead holders' lock leases) {repaired_at - killed_at:.1f} "
        f"s, next promotions {time.monotonic() - repaired_at:.1f} s; killed repairs "
        + ", ".join(f"{point} {seconds:.1f} s" for point, seconds in took.items())
    )
