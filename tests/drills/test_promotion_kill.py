"""Drill: SIGKILL at every registry write of a promotion. ``champion`` is never absent, every half-done
state carries its intent record, and the next run rolls it back (history consistent) and can promote again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from driftline import registry
from tests.drills.conftest import history_consistent, log_models

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
PROMOTE = """
import sys
import pandas as pd
from flows.promotion import promote_with_smoke_test
promote_with_smoke_test(sys.argv[1], "3", "2", "drill: better on hold-out", "run-killed", pd.read_parquet(sys.argv[2]))
print("PROMOTION FINISHED")
"""


def _promote_and_die(point: str, name: str, sample: Path, api: str, uri: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
    env.update(PREFECT_API_URL=api, MLFLOW_TRACKING_URI=uri, DRIFTLINE_DRILL_KILL_AT=point, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", PROMOTE, name, str(sample)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_sigkill_at_every_promotion_write_leaves_a_champion_and_the_next_run_repairs(prefect_api, tracking, tmp_path):
    from mlflow import MlflowClient

    from flows.promotion import promote_with_smoke_test, repair_interrupted_promotion

    began = time.monotonic()
    sources, sample = log_models(3)
    sample_path = tmp_path / "sample.parquet"
    sample.to_parquet(sample_path)
    aliases, client = registry.MlflowAliasRegistry(), MlflowClient()
    names = {point: f"driftline-kill-{point}" for point in KILL_POINTS}
    for name in names.values():
        for source in sources:
            client.copy_model_version(source, name)
        # Champion 2, previous-champion 1: the drill promotes 3 over 2.
        aliases.move_champion(name, "1", None, "first", "run-1")
        aliases.move_champion(name, "2", "1", "second", "run-2")

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(KILL_POINTS, pool.map(lambda p: _promote_and_die(p, names[p], sample_path, prefect_api, tracking), KILL_POINTS)))

    for point, name in names.items():
        result = done[point]
        assert result.returncode == -9, f"{point}: not killed (rc {result.returncode})\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
        assert "PROMOTION FINISHED" not in result.stdout
        champion = aliases.alias_version(name, "champion")
        assert champion in {"2", "3"}, f"{point}: champion is {champion}"  # never absent, never a third version
        intent = aliases.intent(name)
        if point == "intent":  # killed before the first write: nothing changed
            assert intent is None and champion == "2"
            assert history_consistent(aliases, name) == {"champion": ("2", "2"), "previous-champion": ("1", "1")}
        else:  # every half-done state is covered by its intent record, which holds how to undo it
            assert intent is not None, point
            assert (intent["version"], intent["champion"], intent["previous_champion"]) == ("3", "2", "1")
        if point in KILL_POINTS[2:]:
            assert champion == "3", f"{point}: the champion moves first"

    killed_at = time.monotonic()
    for point, name in names.items():
        record = repair_interrupted_promotion(name, "run-next")  # the start of the next training run
        assert (record is None) == (point == "intent"), point
        assert aliases.intent(name) is None
        assert history_consistent(aliases, name) == {"champion": ("2", "2"), "previous-champion": ("1", "1")}, point
        if record is not None:
            assert "interrupted" in aliases.version_tags(name, "3")["driftline.promotion.rolled_back"]
            assert aliases.history(name)[-1]["action"] == "repair"
    repaired_at = time.monotonic()

    # The next promotion (under the same lock) goes through and leaves a consistent history.
    for point, name in names.items():
        assert promote_with_smoke_test(name, "3", "2", "next run: better", "run-next", sample) == "2", point
        assert history_consistent(aliases, name) == {"champion": ("3", "3"), "previous-champion": ("2", "2")}, point
        assert aliases.intent(name) is None
    print(
        f"\nkill drill: {len(KILL_POINTS)} kill points; kills {killed_at - began:.1f} s, repairs (incl. waiting for "
        f"dead holders' lock leases) {repaired_at - killed_at:.1f} s, next promotions {time.monotonic() - repaired_at:.1f} s"
    )


def test_the_next_training_run_rolls_back_a_promotion_killed_half_way(prefect_api, tracking, tmp_path):
    """End to end: `driftline train` finds the leftover intent record at its start and repairs it under the lock."""
    import yaml

    from driftline.synthetic import make_labelled_series
    from tests.drills.conftest import driftline_env
    from tests.integration.conftest import FAST_CONFIG

    config = tmp_path / "fast.yaml"
    config.write_text(yaml.safe_dump({"name": "it", **FAST_CONFIG}))
    env = driftline_env(prefect_api, tracking, tmp_path / "home")
    driftline = str(Path(sys.executable).with_name("driftline"))

    def train(seed: int) -> subprocess.CompletedProcess[str]:
        data = tmp_path / f"labelled-{seed}.csv"
        if not data.exists():
            make_labelled_series(n_rows=1500, seed=seed).to_csv(data, index=False)
        args = [driftline, "train", "--config", str(config), "--data", str(data), "--target", "label", "--target-col", "y"]
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    for seed in (11, 12):  # version 1 (champion), version 2 (challenger)
        done = train(seed)
        assert done.returncode == 0, done.stderr[-3000:]
    aliases, name = registry.MlflowAliasRegistry(), "driftline-it"
    assert aliases.alias_version(name, "champion") == "1"
    before = aliases.alias_version(name, "previous-champion")

    sample = tmp_path / "sample.parquet"
    make_labelled_series(n_rows=50, seed=2)[["x0", "x1", "x2", "x3"]].to_parquet(sample)
    script = PROMOTE.replace('"3", "2"', '"2", "1"')
    env_kill = {**env, "DRIFTLINE_DRILL_KILL_AT": "champion-event", "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", script, name, str(sample)], cwd=ROOT, env=env_kill, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert aliases.alias_version(name, "champion") == "2" and aliases.intent(name) is not None  # half done

    began = time.monotonic()
    rerun = train(12)  # the next scheduled run: same data, so it registers nothing, but it repairs first
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "rolled back the interrupted promotion of version 2" in rerun.stdout + rerun.stderr
    assert aliases.intent(name) is None
    assert aliases.alias_version(name, "champion") == "1" and aliases.alias_version(name, "previous-champion") == before
    assert history_consistent(aliases, name)["champion"] == ("1", "1")
    print(f"\ntraining-run repair: the next run repaired and finished in {time.monotonic() - began:.0f} s (incl. the lock lease)")
