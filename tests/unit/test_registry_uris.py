"""One MLflow store per run, with its own client: two stores in one process never write into each other,
nothing process-wide is left set, and the production code cannot slip back to MLflow's global URIs."""

from __future__ import annotations

import ast
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pytest

from driftline import tags
from driftline.adapters import registry
from driftline.calibration import CalibratedModel
from driftline.config import ModelsConfig, Settings
from driftline.models import make_estimator
from driftline.synthetic import make_labelled_series
from tests.servers import fresh_mlflow_store

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = [ROOT / "src" / "driftline", ROOT / "tasks", ROOT / "flows", ROOT / "deployments", ROOT / "benchmarks"]
NAME = "driftline-crosstalk"


def _store(tmp_path: Path, name: str) -> registry.MlflowStore:
    uri = fresh_mlflow_store(tmp_path / name / "mlflow.db")
    return registry.MlflowStore(uri, artifact_root=tmp_path / name / "artifacts")


def test_a_model_of_named_classes_gives_each_decision_its_class(tmp_path):
    """``classes`` (the label's names of 0 and 1) go with the version: its pyfunc adds ``class`` beside
    ``prediction``; a version logged without them answers as before."""
    store = _store(tmp_path, "named")
    frame = make_labelled_series(n_rows=300, seed=2)
    X, y = frame[["x0", "x1", "x2", "x3"]], frame["y"]
    model = CalibratedModel(make_estimator("logreg", ModelsConfig(seed=1)), method="sigmoid").fit(X, y)
    run_id = store.start_run(store.ensure_experiment(NAME), "named", {})
    store.log_model(run_id, model, list(X.columns), X, NAME, classes=("calm", "storm"))
    store.log_model(run_id, model, list(X.columns), X, NAME)
    store.finish_run(run_id)
    named = store.predict_pyfunc(f"models:/{NAME}/1", X)
    assert named["prediction"].nunique() == 2
    assert (named["class"] == named["prediction"].map({0: "calm", 1: "storm"})).all()
    assert "class" not in store.predict_pyfunc(f"models:/{NAME}/2", X).columns


def test_two_stores_in_one_process_write_to_their_own_stores(tmp_path, monkeypatch, capfd):
    """Same experiment and model name in both, models logged from two threads at once (the one fluent call,
    pyfunc.log_model, needs MLflow's process-wide URIs for its duration): each store holds only its own run
    and version, the store the environment names gets nothing, and MLflow's globals are as before."""
    elsewhere = tmp_path / "environment" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    stores = {"a": _store(tmp_path, "a"), "b": _store(tmp_path, "b")}
    frame = make_labelled_series(n_rows=300, seed=2)
    X, y = frame[["x0", "x1", "x2", "x3"]], frame["y"]

    def train_into(key: str) -> tuple[str, registry.RegisteredVersion]:
        store = stores[key]
        run_id = store.start_run(store.ensure_experiment(NAME), f"run-{key}", {tags.SOURCE: key})
        model = CalibratedModel(make_estimator("logreg", ModelsConfig(seed=1)), method="sigmoid").fit(X, y)
        store.log_dict(run_id, {"store": key}, "which.json")
        version = store.log_model(run_id, model, list(X.columns), X, NAME)
        store.models().tag_version(NAME, version.version, {tags.RUN_ID: run_id})
        store.finish_run(run_id)
        return run_id, version

    with ThreadPoolExecutor(2) as pool:
        made = dict(zip(stores, pool.map(train_into, stores), strict=True))

    for key, store in stores.items():
        run_id, version = made[key]
        other = made["b" if key == "a" else "a"][0]
        assert version.version == "1", f"store {key} registered into another store's model"
        runs = store.client.search_runs([store.ensure_experiment(NAME)])
        assert [r.info.run_id for r in runs] == [run_id]
        assert store.load_run_dict(run_id, "which.json") == {"store": key}
        assert store.models().version_tags(NAME, "1")[tags.RUN_ID] == run_id
        assert [str(v.version) for v in store.models().versions(NAME)] == ["1"]
        with pytest.raises(mlflow.exceptions.MlflowException):
            store.client.get_run(other)
        assert store.predict_pyfunc(f"models:/{NAME}/1", X.head(3))["probability"].between(0, 1).all()
    assert not elsewhere.exists(), "a store wrote to the store the environment names"
    printed = capfd.readouterr().err  # MLflow's registration prints, muted: the run summary names the version
    assert "Successfully registered model" not in printed and "Created version" not in printed
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{elsewhere}" and "MLFLOW_REGISTRY_URI" not in os.environ


def test_a_store_from_settings_uses_the_registry_the_user_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ops:hunter2@127.0.0.1:9/")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'registry.db'}")
    store = registry.MlflowStore.from_settings(Settings.from_env())
    assert store.registry_uri == f"sqlite:///{tmp_path / 'registry.db'}"
    assert store.client._registry_uri == store.registry_uri and store.client.tracking_uri == store.tracking_uri
    assert "hunter2" not in repr(store)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    assert registry.MlflowStore.from_settings(Settings.from_env()).registry_uri == store.tracking_uri


def test_drill_variables_select_the_fault_hook_only_when_set(monkeypatch):
    from driftline import faults

    monkeypatch.delenv(faults.DRILL_KILL_ENV, raising=False)
    monkeypatch.delenv(faults.DRILL_PAUSE_ENV, raising=False)
    assert registry.MlflowStore.from_settings(Settings.from_env()).faults is faults.no_faults
    monkeypatch.setenv(faults.DRILL_KILL_ENV, "commit")
    hook = registry.MlflowStore.from_settings(Settings.from_env()).faults
    assert isinstance(hook, faults.DrillFaults) and hook.kill_at == "commit"
    hook("intent")  # another point: nothing happens (the drill would SIGKILL at "commit")


@functools.cache
def _sources() -> list[tuple[Path, ast.Module]]:
    files = sorted(p for folder in PRODUCTION for p in folder.rglob("*.py"))
    return [(path, ast.parse(path.read_text(), str(path))) for path in files]


def _enclosing_functions(tree: ast.Module) -> dict[ast.AST, str]:
    """Each node's innermost enclosing function (ast.walk visits outer functions before inner ones)."""
    owner: dict[ast.AST, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for child in ast.walk(node):
                if child is not node:
                    owner[child] = node.name
    return owner


def _global_state_uses(rel: str, tree: ast.Module) -> list[str]:
    found = []
    owner = _enclosing_functions(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            base = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            where = f"{rel}:{node.lineno}"
            if name in {"MlflowClient", "MlflowAliasRegistry"} and not node.args and not node.keywords:
                found.append(f"{where}: bare {name}()")
            if name in {"set_tracking_uri", "set_registry_uri"} and (
                rel != "src/driftline/adapters/registry.py" or owner.get(node) != "_fluent"
            ):
                found.append(f"{where}: mlflow.{name} outside MlflowStore._fluent")
            if (
                name == "start_run"
                and base == "mlflow"
                and (rel != "src/driftline/adapters/registry.py" or owner.get(node) != "_active")
            ):
                found.append(f"{where}: mlflow.start_run outside registry._active")
            if name == "from_env" and base == "Settings" and rel.startswith("tasks/"):
                found.append(f"{where}: Settings.from_env() inside a task")
        if rel == "src/driftline/adapters/registry.py":
            continue
        if (
            isinstance(node, ast.Attribute)
            and getattr(node.value, "id", "") == "registry"
            and node.attr in registry.ENVIRONMENT_HELPERS
        ):
            found.append(f"{rel}:{node.lineno}: registry.{node.attr} (build one MlflowStore per run)")
        if isinstance(node, ast.ImportFrom) and node.module == "driftline.adapters.registry":
            found += [
                f"{rel}:{node.lineno}: imports registry.{alias.name}"
                for alias in node.names
                if alias.name in registry.ENVIRONMENT_HELPERS
            ]
    return found


def test_production_code_sets_no_process_wide_mlflow_state():
    """No bare ``MlflowClient()``; MLflow's global URIs and fluent runs only inside the store's one
    documented place (``MlflowStore._fluent`` / ``_active``); the environment helpers kept for scripts and
    tests unused; ``Settings.from_env()`` never read inside a task."""
    found = []
    for path, tree in _sources():
        found += _global_state_uses(path.relative_to(ROOT).as_posix(), tree)
    assert found == []


def test_the_check_above_is_live():
    bad = (
        "import mlflow\nfrom mlflow import MlflowClient\nfrom driftline.adapters import registry\n"
        "def task():\n    MlflowClient().get_run('r')\n    mlflow.set_tracking_uri('x')\n"
        "    mlflow.start_run()\n    registry.log_dict('r', {}, 'a.json')\n    Settings.from_env()\n"
    )
    found = _global_state_uses("tasks/bad.py", ast.parse(bad))
    assert sorted(f.split(": ", 1)[1] for f in found) == [
        "Settings.from_env() inside a task",
        "bare MlflowClient()",
        "mlflow.set_tracking_uri outside MlflowStore._fluent",
        "mlflow.start_run outside registry._active",
        "registry.log_dict (build one MlflowStore per run)",
    ]


def test_every_driftline_tag_key_is_spelled_only_in_the_tags_module():
    keys = {v for k, v in vars(tags).items() if k.isupper() and isinstance(v, str) and v.startswith("driftline.")}
    assert {"driftline.promotion.intent", "driftline.run_id", "driftline.event."} <= keys
    found = []
    for path, tree in _sources():
        if path.name == "tags.py" and path.parent.name == "driftline":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in keys:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
            if isinstance(node, ast.JoinedStr) and node.values:
                head = node.values[0]
                if isinstance(head, ast.Constant) and str(head.value) in keys | {"driftline."}:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: f-string tag key {head.value!r}")
    assert found == []
