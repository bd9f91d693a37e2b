"""Transactional promotion: compare-and-set under a Prefect lock, smoke test, rollback hook, concurrency."""

from __future__ import annotations

import contextvars
import os
import threading
from pathlib import Path

import pytest

from driftline.adapters import registry
from driftline.evaluation import SmokeTestFailed
from tests.integration.conftest import register_versions

pytestmark = pytest.mark.slow
NAME = "driftline-promo"


@pytest.fixture
def versions(tracking):
    """Three registered versions of one model, version 1 champion; and a scoring sample."""
    sample = register_versions(NAME, 3)
    aliases = registry.MlflowAliasRegistry()
    aliases.move_champion(registry.ChampionMove(NAME, "1", None, "first champion", "setup"))
    return aliases, sample


def test_promotion_moves_champion_and_keeps_previous(prefect_api, versions):
    from flows.promotion import promote_with_smoke_test

    aliases, sample = versions
    previous = promote_with_smoke_test(NAME, "2", "1", "better on hold-out", "run-2", sample)

    assert previous == "1"
    assert aliases.alias_version(NAME, "champion") == "2"
    assert aliases.alias_version(NAME, "previous-champion") == "1"
    # champion moves first (never absent), then previous-champion: the last champion event is this move.
    last = [e for e in aliases.history(NAME) if e["alias"] == "champion"][-1]
    assert (last["alias"], last["version"], last["previous"], last["run_id"]) == ("champion", "2", "1", "run-2")
    assert "better on hold-out" in aliases.version_tags(NAME, "2")["driftline.alias.champion"]


def test_failure_after_the_alias_move_restores_the_old_champion(prefect_api, versions, monkeypatch):
    import tasks.promotion
    from flows.promotion import promote_with_smoke_test

    aliases, sample = versions
    seen = []

    def broken(scores, n_rows):
        seen.append(aliases.alias_version(NAME, "champion"))  # the alias had moved when the fault hit
        raise SmokeTestFailed("injected failure after the alias move")

    monkeypatch.setattr(tasks.promotion, "check_scores", broken)
    with pytest.raises(SmokeTestFailed, match="injected"):
        promote_with_smoke_test(NAME, "2", "1", "would be better", "run-2", sample)

    assert seen == ["2"]
    assert aliases.alias_version(NAME, "champion") == "1"
    actions = [(e["action"], e["alias"], e["version"]) for e in aliases.history(NAME)]
    assert actions[-1] == ("restore", "champion", "1")


def test_concurrent_promotions_leave_one_consistent_winner(prefect_api, versions):
    from flows.promotion import promote_with_smoke_test

    aliases, sample = versions
    outcomes: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def promote(version: str) -> None:
        barrier.wait()
        try:
            outcomes[version] = promote_with_smoke_test(NAME, version, "1", f"race {version}", f"run-{version}", sample)
        except Exception as exc:  # noqa: BLE001
            outcomes[version] = exc

    # Each thread runs in a copy of this context: Prefect's settings (the session server's URL) live in a
    # context variable, which a plain thread starts without.
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(promote, v)) for v in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    winners = [v for v, result in outcomes.items() if result == "1"]
    losers = [v for v, result in outcomes.items() if isinstance(result, registry.ChampionMoved)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert aliases.alias_version(NAME, "champion") == winners[0]
    assert aliases.alias_version(NAME, "previous-champion") == "1"


def test_a_promotion_lock_is_one_registrys_model_not_every_model_of_that_name(
    prefect_api, versions, tmp_path, monkeypatch
):
    """Two registries on one Prefect server (a team's server, each person's local store) hold a model of the same
    name under two locks; the same registry reached by another URI finds the one its other clients hold."""
    from flows.promotion import PromotionLockBusy, promotion_lock
    from tests.servers import fresh_mlflow_store

    here = registry.MlflowStore(os.environ["MLFLOW_TRACKING_URI"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_mlflow_store(tmp_path / "other" / "mlflow.db"))
    register_versions(NAME, 1)
    other = registry.MlflowStore(os.environ["MLFLOW_TRACKING_URI"])
    database = Path(here.tracking_uri.removeprefix("sqlite:///"))
    (tmp_path / "link").symlink_to(database.parent, target_is_directory=True)
    same = registry.MlflowStore(f"sqlite:///{tmp_path / 'link' / database.name}")

    with promotion_lock(here, NAME, "holder"):
        with promotion_lock(other, NAME, "another registry", timeout_seconds=3) as fence:
            assert fence.generation == 1
        with (
            pytest.raises(PromotionLockBusy, match="not free within 3 s"),
            promotion_lock(same, NAME, "the same registry by another path", timeout_seconds=3),
        ):
            pass
