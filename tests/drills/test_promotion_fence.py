"""Drill: fenced promotion. Real processes against the shared Prefect server and one MLflow store, all three
cases at once (one wait for a lease to run out covers the whole file):

- a rollback holding the lock while a promotion starts: the promotion waits, then fails cleanly (champion moved);
- a promotion holding the lock while `driftline rollback --wait 2` runs: the rollback fails with a clear message;
- a promotion SIGSTOPped past its lease: a second promotion repairs and promotes v4; the first, resumed, stops
  at its next write (lease gone, generation superseded), exits non-zero, and v4 stays champion.
"""

from __future__ import annotations

import contextvars
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from driftline.adapters import registry
from driftline.adapters.registry import DRILL_RESUME_ENV
from tests import warm
from tests.drills.conftest import PROMOTE, driftline_env, history_consistent, log_models

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class Holder:
    """A process (forked warm: tests/warm.py) that takes the promotion lock and pauses just before its champion
    write, after writing its intent record (which is how the drill sees it paused), until ``resume``."""

    def __init__(self, args: list[str], env: dict[str, str], name: str, resume_file: Path) -> None:
        self.name, self.resume_file = name, resume_file
        env = {
            **env,
            "DRIFTLINE_DRILL_PAUSE_AT": "champion",
            "DRIFTLINE_DRILL_PAUSE_SECONDS": "240",
            DRILL_RESUME_ENV: str(resume_file),
        }
        self.result: subprocess.CompletedProcess[str] | None = None
        self.thread = threading.Thread(target=self._run, args=(args, env), daemon=True)
        self.thread.start()

    def _run(self, args: list[str], env: dict[str, str]) -> None:
        self.result = warm.run(args, cwd=ROOT, env=env, timeout=400)

    def wait_paused(self, aliases: registry.MlflowAliasRegistry, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while aliases.intent(self.name) is None:
            assert time.monotonic() < deadline and self.thread.is_alive(), f"{self.name}: never paused: {self.result}"
            time.sleep(0.3)

    def resume(self) -> None:
        self.resume_file.touch()

    def finish(self, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        self.thread.join(timeout)
        assert self.result is not None, f"{self.name}: still running"
        return self.result


# The promotion of PROMOTE (3 over 2), telling the drill its pid first (so that it can be SIGSTOPped).
PROMOTE_PID = "import os, pathlib, sys; pathlib.Path(sys.argv[3]).write_text(str(os.getpid()))\n" + PROMOTE


def test_rollback_races_and_a_stalled_promotion_are_fenced(prefect_api, tracking, tmp_path):
    from mlflow import MlflowClient

    from flows.promotion import promote_with_smoke_test

    began = time.monotonic()
    sources, sample = log_models(4)
    sample_path = tmp_path / "sample.parquet"
    sample.to_parquet(sample_path)
    aliases, client = registry.MlflowAliasRegistry(), MlflowClient()
    names = {case: f"driftline-fence-{case}" for case in ("rollback-first", "promotion-first", "stall")}
    for name in names.values():
        for source in sources:
            client.copy_model_version(source, name)
        aliases.move_champion(registry.ChampionMove(name, "1", None, "first", "run-1"))
        aliases.move_champion(
            registry.ChampionMove(name, "2", "1", "second", "run-2")
        )  # champion 2, previous-champion 1

    set_up = time.monotonic()
    env = driftline_env(prefect_api, tracking, tmp_path / "home", PYTHONPATH=str(ROOT))
    # All three lock holders start together and pause just before their champion write (until the drill lets
    # them go: the races overlap the stalled holder's lease running out, which bounds the drill's wall time).
    rollback_holder = Holder(
        [str(BIN / "driftline"), "rollback", "--name", "fence-rollback-first", "--reason", "drill: v2 misbehaves"],
        env,
        names["rollback-first"],
        tmp_path / "resume-rollback",
    )
    promote = [sys.executable, "-c", PROMOTE_PID]
    promotion_holder = Holder(
        [*promote, names["promotion-first"], str(sample_path), str(tmp_path / "p1.pid")],
        env,
        names["promotion-first"],
        tmp_path / "resume-promotion",
    )
    stalled = Holder(
        [*promote, names["stall"], str(sample_path), str(tmp_path / "stall.pid")],
        env,
        names["stall"],
        tmp_path / "resume-stall",
    )

    # The stalled promotion: frozen (its lease-renewal thread too) right after its intent record is written.
    stalled.wait_paused(aliases)
    stalled_pid = int((tmp_path / "stall.pid").read_text())
    os.kill(stalled_pid, signal.SIGSTOP)
    stalled.resume()  # seen only once it runs again
    stopped_at = time.monotonic()
    second: dict[str, object] = {}

    def second_promotion() -> None:
        try:
            second["previous"] = promote_with_smoke_test(
                names["stall"], "4", "2", "drill: the next run", "run-4", sample
            )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            second["error"] = exc

    waiter = threading.Thread(target=contextvars.copy_context().run, args=(second_promotion,))
    waiter.start()  # waits for the stalled holder's lease to run out (60 s + the repossessor's loop)

    # Promotion first: a rollback that cannot take the lock within --wait fails with a clear message.
    promotion_holder.wait_paused(aliases)
    refused = warm.run(
        [str(BIN / "driftline"), "rollback", "--name", "fence-promotion-first", "--wait", "2"],
        cwd=tmp_path,
        env={k: v for k, v in env.items() if not k.startswith("DRIFTLINE_DRILL")},
        timeout=120,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "promotion lock was not free within 2 s" in refused.stderr and "nothing was changed" in refused.stderr
    assert "Traceback" not in refused.stderr
    promotion_holder.resume()
    done = promotion_holder.finish()
    assert done.returncode == 0 and "PROMOTION FINISHED" in done.stdout, done.stderr[-3000:]
    name = names["promotion-first"]
    assert history_consistent(aliases, name) == {"champion": ("3", "3"), "previous-champion": ("2", "2")}
    assert aliases.intent(name) is None
    # Rollback first: a promotion of 3 over 2 starting while the rollback holds the lock waits for it, then
    # finds the champion moved (2 -> 1) and fails cleanly, writing nothing.
    rollback_holder.wait_paused(aliases)
    threading.Timer(5, rollback_holder.resume).start()  # while the promotion below waits for the lock
    with pytest.raises(registry.ChampionMoved, match="champion moved from 2 to 1"):
        promote_with_smoke_test(names["rollback-first"], "3", "2", "drill: racing a rollback", "run-race", sample)
    done = rollback_holder.finish()
    assert done.returncode == 0 and "champion 2 -> 1" in done.stdout, done.stderr[-3000:]
    name = names["rollback-first"]
    assert history_consistent(aliases, name) == {"champion": ("1", "1"), "previous-champion": ("2", "2")}
    assert aliases.intent(name) is None and aliases.history(name)[-1]["action"] == "rollback"

    races_done = time.monotonic()

    # The stalled promotion: the second one got the lock once the lease ran out, rolled back the stalled
    # one's half-done promotion and promoted 4.
    waiter.join(timeout=240)
    assert not waiter.is_alive() and "error" not in second, second
    assert second["previous"] == "2"
    lock_wait = time.monotonic() - stopped_at
    name = names["stall"]
    assert (aliases.alias_version(name, "champion"), aliases.alias_version(name, "previous-champion")) == ("4", "2")
    os.kill(stalled_pid, signal.SIGCONT)
    done = stalled.finish()
    code, output = done.returncode, done.stdout + done.stderr
    assert code != 0 and "PROMOTION FINISHED" not in output, output[-3000:]
    assert "FenceLost" in output and ("no longer owns" in output or "lost the promotion lock" in output), output[-3000:]
    # Untouched by the stale holder: champion 4, the history ends with the second promotion, no intent left.
    assert history_consistent(aliases, name) == {"champion": ("4", "4"), "previous-champion": ("2", "2")}
    assert aliases.intent(name) is None
    assert "3" not in [e["version"] for e in aliases.history(name) if e["alias"] == "champion"]
    print(
        f"\nfence drill: set-up {set_up - began:.1f} s; races {races_done - set_up:.1f} s; "
        f"second promotion waited {lock_wait:.1f} s for the stalled "
        f"holder's lease; stale holder exit {code}; total {time.monotonic() - began:.1f} s"
    )
