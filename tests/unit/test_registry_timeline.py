"""Against a local SQLite MLflow store: monitoring a model without a champion, and forced rollbacks."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from driftline.adapters import registry
from driftline.errors import DriftlineError
from driftline.model_registry import NotRegistered
from tests.drills.test_promotion_kill import KILL_POINTS

NAME = "driftline-tl"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds); each test its own model."""
    home = tmp_path_factory.mktemp("registry-timeline")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRIFTLINE_HOME", str(home / "home"))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        yield home


@pytest.fixture
def versions(store, request):
    """Three versions of a fresh model (no model files: aliases and tags only need the registry entries);
    v1 was promoted, v2 rejected by its training run, v3 kept out by the champion. Returns its name."""
    name = f"{NAME}-{request.node.name[5:40]}".replace("_", "-")
    client = MlflowClient()
    client.create_registered_model(name)
    decisions = {"1": "promote", "2": "reject", "3": "keep-champion"}
    for version, decision in decisions.items():
        created = client.create_model_version(name, source=str(store / f"{name}-{version}"))
        assert str(created.version) == version
        client.set_model_version_tag(name, version, "driftline.decision", decision)
        client.set_model_version_tag(name, version, "driftline.reasons", f"gates of v{version}")
        client.set_model_version_tag(name, version, "driftline.train_cutoff", f"2020-0{version}-01T00:00:00")
    return name


def test_without_a_champion_the_newest_version_is_monitored_and_the_note_says_so(versions):
    NAME, aliases = versions, registry.MlflowAliasRegistry()
    version, note, tags = aliases.monitored(NAME)

    assert (version, tags["driftline.train_cutoff"]) == ("3", "2020-03-01T00:00:00")
    assert "no champion" in note and "v3" in note and "keep-champion" in note

    aliases.move_champion(registry.ChampionMove(NAME, "1", None, "first", "run-1"))
    version, note, tags = aliases.monitored(NAME)
    assert (version, note, tags["driftline.train_cutoff"]) == ("1", None, "2020-01-01T00:00:00")


def test_a_retrain_starts_from_the_champions_config_else_the_newest_versions(versions):
    """Without a champion a retrain used the defaults: a label model's retrain looked for a price column
    (what a monitor with --retrain-on-drift started after the first model was rejected)."""
    from driftline.config import Settings
    from tasks.monitoring import retrain_basis_task

    store = registry.MlflowStore.from_settings(Settings.from_env())
    assert retrain_basis_task.fn(store, versions).version == "3"  # no champion: the newest version
    registry.MlflowAliasRegistry().move_champion(registry.ChampionMove(versions, "1", None, "first", "run-1"))
    assert retrain_basis_task.fn(store, versions).version == "1"
    assert retrain_basis_task.fn(store, "driftline-nobody") is None  # nothing registered: the defaults


def test_the_cooldown_runs_from_a_retrain_that_finished_not_from_one_that_started(versions):
    """A retrain that failed (no price column: the label model's retrain before the fix above) left its start
    as the last retrain, and the monitor's next retrain was skipped for 6 h after the cause was fixed."""
    from driftline.config import Settings
    from tasks.monitoring import cooldown_task, record_retrain_task

    store = registry.MlflowStore.from_settings(Settings.from_env())
    assert cooldown_task.fn(store, versions, 6.0, "drift")[0]  # started, then failed: nothing recorded
    assert cooldown_task.fn(store, versions, 6.0, "drift again")[0]
    record_retrain_task.fn(store, versions)  # this one finished
    allowed, why = cooldown_task.fn(store, versions, 6.0, "drift once more")
    assert not allowed and "cooldown is 6.0 h" in why
    skipped = MlflowClient().get_registered_model(versions).tags
    assert any(k.startswith("driftline.retrain_skipped.") and "drift once more" in v for k, v in skipped.items())


def test_failed_retrains_are_counted_until_one_finishes(versions):
    from driftline.config import Settings
    from tasks.monitoring import cooldown_task, record_retrain_failure_task, record_retrain_task

    store = registry.MlflowStore.from_settings(Settings.from_env())
    assert record_retrain_failure_task.fn(store, versions, "DataError: no price column found") == 1
    allowed, why = cooldown_task.fn(store, versions, 6.0, "drift")
    assert not allowed and "(1 in a row, DataError: no price column found)" in why and "0.25 h after it" in why
    assert record_retrain_failure_task.fn(store, versions, "DataError: again") == 2
    assert "(2 in a row, DataError: again); the next may start 0.5 h" in cooldown_task.fn(store, versions, 6.0, "d")[1]

    record_retrain_task.fn(store, versions)  # one finished: the count starts again, the cooldown runs from it
    allowed, why = cooldown_task.fn(store, versions, 6.0, "drift")
    assert not allowed and "cooldown is 6.0 h" in why
    assert cooldown_task.fn(store, versions, 0.0, "no cooldown")[0]
    assert record_retrain_failure_task.fn(store, versions, "DataError: once more") == 1
    assert record_retrain_failure_task.fn(store, "driftline-unregistered", "DataError: x") == 0


def test_a_model_with_no_version_is_a_clear_error(versions):
    MlflowClient().create_registered_model("driftline-nobody")
    with pytest.raises(DriftlineError, match="driftline-nobody has no registered version to monitor; train one first"):
        registry.MlflowAliasRegistry().monitored("driftline-nobody")


def test_an_unknown_model_or_version_names_what_the_registry_holds(versions):
    """Before: MLflow's "Registered Model with name=driftline-nosuch not found" (history, rollback, reproduce),
    or "has no champion to score with; train one first" for a mistyped --name."""
    aliases = registry.MlflowAliasRegistry()
    typo = versions[:-1] + "x"  # one letter off the fixture's model

    with pytest.raises(NotRegistered) as raised:
        aliases.history(typo)
    message = str(raised.value)
    assert f"no model {typo} in the registry at sqlite:" in message and versions in message
    assert f"did you mean --name {versions.removeprefix('driftline-')}?" in message
    with pytest.raises(NotRegistered, match="pick one with --name, or train one first: driftline train --name zzz"):
        aliases.monitored("driftline-zzz")

    aliases.move_champion(registry.ChampionMove(versions, "1", None, "first", "run-1"))
    with pytest.raises(NotRegistered, match=rf"^{versions} has no version 7; its versions: 1 \(champion\), 2, 3$"):
        aliases.rollback(versions, "7", "typo")
    with pytest.raises(DriftlineError, match=r"\(v1 is the first champion\); pass --to-version with one of: 2, 3$"):
        aliases.rollback(versions, None, "no default")
    assert aliases.alias_version(versions, "champion") == "1"


def test_scoring_a_registered_model_without_a_champion_says_why_and_how_to_score_anyway(versions):
    """Before: "train one first (driftline train)" to a user whose first model had just been trained and
    rejected. Now the newest version's decision, its failed checks and the command that makes it the champion."""
    from driftline.config import Settings
    from tasks.scoring import resolve_models_task

    store = registry.MlflowStore.from_settings(Settings.from_env())
    client = MlflowClient()
    client.set_model_version_tag(versions, "3", "driftline.decision", "reject")
    failed = "FAIL log_loss-better: log_loss difference -0.04 vs best baseline persistence, 95% CI [-0.09, +0.01]"
    client.set_model_version_tag(versions, "3", "driftline.reasons", f"PASS min-rows: 500 rows; {failed}")
    with pytest.raises(DriftlineError) as raised:
        resolve_models_task.fn(store, versions, shadow=False)
    assert str(raised.value) == (
        f"{versions} has no champion to score with: no version was promoted, and the newest, v3, was rejected by "
        f"its training ({failed}). Train again (more data, other settings), or score with v3 anyway by making it "
        f"the champion: driftline rollback --name {versions} --to-version 3 --force --reason '<why>'"
    )
    client.create_registered_model("driftline-nothing-yet")
    with pytest.raises(DriftlineError, match=r"^driftline-nothing-yet has no champion to score with; train one first"):
        resolve_models_task.fn(store, "driftline-nothing-yet", shadow=False)


def test_an_empty_registry_says_so_and_how_to_train(tmp_path):
    empty = registry.MlflowStore(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(NotRegistered, match=r"\(it holds none yet\); train one first: driftline train --name btc$"):
        empty.models().require("driftline-btc")


def test_rollback_to_a_rejected_version_needs_force_and_records_why(versions):
    NAME, versions = versions, registry.MlflowAliasRegistry()
    versions.move_champion(registry.ChampionMove(NAME, "1", None, "first", "run-1"))

    with pytest.raises(DriftlineError, match=r"version 2 was not promoted.*reject.*gates of v2.*--force"):
        versions.rollback(NAME, "2", "try v2", force=False)
    assert versions.alias_version(NAME, "champion") == "1"

    before, after, _ = versions.rollback(NAME, "2", "v1 broke on live data", force=True)

    assert (before, after) == ("1", "2") and versions.alias_version(NAME, "champion") == "2"
    tags = versions.version_tags(NAME, "2")
    assert (
        "v1 broke on live data" in tags["driftline.forced_rollback"] and "reject" in tags["driftline.forced_rollback"]
    )
    (event,) = [e for e in versions.history(NAME) if e["action"] == "rollback" and e["alias"] == "champion"]
    assert "forced" in event["reason"] and "v1 broke on live data" in event["reason"]
    # Back to the promoted v1 (the previous champion): no force needed, nothing forced recorded.
    assert versions.rollback(NAME, None, "v1 is fine after all") == ("2", "1", None)


def test_a_superseded_lock_holder_writes_nothing_and_the_newer_one_goes_on(versions):
    """Fencing: holder A bumps the generation, stalls; B takes the lock (generation + 1), rolls back; A's next
    write is refused before it reaches the registry, and B's state stays."""
    name = versions
    registry.MlflowAliasRegistry().move_champion(registry.ChampionMove(name, "1", None, "first", "run-1"))
    stale = registry.MlflowAliasRegistry()
    first = stale.acquire_fence(name, "promotion-A")
    newer = registry.MlflowAliasRegistry()
    second = newer.acquire_fence(name, "rollback-B")
    assert second.generation == first.generation + 1

    with pytest.raises(registry.FenceLost, match=r"promotion-A.*lost the promotion lock to rollback-B"):
        stale.move_champion(registry.ChampionMove(name, "3", "1", "stale holder", "run-A"))
    assert stale.intent(name) is None and stale.alias_version(name, "champion") == "1"

    assert newer.rollback(name, "2", "v1 broke", force=True)[:2] == ("1", "2")
    with pytest.raises(registry.FenceLost):
        stale.commit_promotion(name)
    assert newer.alias_version(name, "champion") == "2" and newer.alias_version(name, "previous-champion") == "1"


def test_a_lost_lease_or_a_moved_champion_stops_the_write_under_the_fence(versions):
    name = versions
    registry.MlflowAliasRegistry().move_champion(registry.ChampionMove(name, "1", None, "first", "run-1"))
    lost = []

    def lease_check():
        if lost:
            raise registry.FenceLost("lease gone (410)")

    aliases = registry.MlflowAliasRegistry()
    aliases.acquire_fence(name, "holder", lease_check)
    lost.append(True)
    with pytest.raises(registry.FenceLost, match="410"):
        aliases.set_alias(name, "champion", "3", "late", champion="1")
    lost.clear()
    with pytest.raises(registry.ChampionMoved, match="champion is 1, expected 2"):
        aliases.set_alias(name, "champion", "3", "stale view", champion="2")
    assert aliases.alias_version(name, "champion") == "1"
    assert [e["version"] for e in aliases.history(name) if e["alias"] == "champion"] == ["1"]


def test_a_commit_that_leaves_its_intent_record_fails_instead_of_reporting_success(versions, monkeypatch):
    """A rollback whose commit could not clear the record used to print success, and the next training run
    then "repaired" it back; now the error reaches the caller (an injected server-side refusal)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    name = versions
    aliases = registry.MlflowAliasRegistry()
    aliases.move_champion(registry.ChampionMove(name, "1", None, "first", "run-1"))

    def refuse(*args, **kwargs):
        raise MlflowException("permission denied", error_code=PERMISSION_DENIED)

    monkeypatch.setattr(aliases.client, "delete_registered_model_tag", refuse)
    with pytest.raises(MlflowException, match="permission denied"):
        aliases.rollback(name, "2", "v1 broke", force=True)
    assert aliases.intent(name) is not None  # still marked half done: the next run rolls it back, as it should


@pytest.mark.parametrize(
    ("promotions", "dies_at"),
    [(3, "previous-champion"), (3, "champion"), (2, "previous-champion")],
    ids=["prev", "champ", "prev-gone"],  # short: the model's name is made of the test's (versions)
)
def test_dead_repair_is_finished(versions, monkeypatch, promotions, dies_at):
    """A repair that died between an alias write and its record is finished by the next one: the alias it
    wrote is right, its history event is missing (the drill kills a real repair there:
    tests/drills/test_promotion_kill.py). With 2 promotions there was no previous-champion before the
    half-done one, so the repair deletes it."""
    name, aliases = versions, registry.MlflowAliasRegistry()
    aliases.move_champion(registry.ChampionMove(name, "1", None, "first", "run-1"))
    if promotions == 3:
        aliases.move_champion(registry.ChampionMove(name, "2", "1", "second", "run-2"))
    half_done = str(promotions)
    aliases.move_champion(
        registry.ChampionMove(name, half_done, str(promotions - 1), "half done", "run-killed"), commit=False
    )
    before = {"champion": str(promotions - 1), "previous-champion": "1" if promotions == 3 else None}
    record = aliases._record

    def dies(self_name, alias, *args):
        if alias == dies_at:
            raise RuntimeError("killed between the alias write and its record")
        record(self_name, alias, *args)

    monkeypatch.setattr(aliases, "_record", dies)
    with pytest.raises(RuntimeError, match="killed"):
        aliases.repair_promotion(name, "run-dead-repair")
    assert aliases.alias_version(name, dies_at) == before[dies_at] and aliases.intent(name) is not None
    monkeypatch.setattr(aliases, "_record", record)

    assert aliases.repair_promotion(name, "run-next")["version"] == half_done
    assert aliases.intent(name) is None
    for alias, version in before.items():
        recorded = [e["version"] for e in aliases.history(name) if e["alias"] == alias]
        assert (aliases.alias_version(name, alias), recorded[-1] if recorded else None) == (version, version), alias


def test_a_promotion_reaches_its_fault_points_in_write_order_through_the_injected_hook(store, versions):
    """The drills' points (tests/drills) come from the hook the store was built with, in the order the
    writes happen; the default hook is a no-op and nothing is read from the environment at write time."""
    points: list[str] = []
    uri = f"sqlite:///{store / 'mlflow.db'}"
    models = registry.MlflowStore(uri, faults=points.append).models()
    models.move_champion(registry.ChampionMove(versions, "1", None, "first", "run-1"))
    models.move_champion(registry.ChampionMove(versions, "3", "1", "better", "run-3"))

    # A first promotion has no previous champion to write; the second makes every write the kill drill kills at.
    promotion = ["intent", "champion", "champion-event", "champion-version-tag", "commit"]
    assert points == promotion + list(KILL_POINTS)
    assert models.alias_version(versions, "champion") == "3"
