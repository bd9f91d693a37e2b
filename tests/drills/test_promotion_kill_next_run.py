"""Drill, end to end: a promotion SIGKILLed half way, then the next `driftline train` run repairs it (its own
file so that it runs beside the kill-point drill of test_promotion_kill.py, on another test worker)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftline.adapters import registry
from tests import warm
from tests.drills.conftest import PROMOTE, history_consistent

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


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
        args = [
            driftline,
            "train",
            "--config",
            str(config),
            "--data",
            str(data),
            "--target",
            "label",
            "--target-col",
            "y",
        ]
        return warm.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

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
    killed = warm.run(
        [sys.executable, "-c", script, name, str(sample)],
        cwd=ROOT,
        env=env_kill,
        with_prefect=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert aliases.alias_version(name, "champion") == "2" and aliases.intent(name) is not None  # half done

    began = time.monotonic()
    rerun = train(12)  # the next scheduled run: same data, so it registers nothing, but it repairs first
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "rolled back the interrupted promotion of version 2" in rerun.stdout + rerun.stderr
    assert aliases.intent(name) is None
    assert aliases.alias_version(name, "champion") == "1" and aliases.alias_version(name, "previous-champion") == before
    assert history_consistent(aliases, name)["champion"] == ("1", "1")
    print(
        "\ntraining-run repair: the next run repaired and finished "
        f"in {time.monotonic() - began:.0f} s (incl. the lock lease)"
    )
