"""The bad-input suite end to end: the training flow on each broken file, against a registry with a champion.

An error must stop the run with a clear ``DataError`` and leave the registry exactly as it was (same
champion, no new version, the MLflow run marked FAILED). A quarantine or an ok case must finish, with the
set-aside rows in a Parquet file that says why, and every registered version complete. The cases live in
``tests/data/bad_inputs.py``; the fast, complete pass over every case is ``tests/unit/test_bad_inputs.py``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from driftline.errors import DataError
from driftline.synthetic import make_ohlcv_panel
from tests import warm
from tests.data.bad_inputs import FLOW_CASES, GARCH, N_DAYS, PIPELINE, Case, file_named, write_champion_data
from tests.integration.test_cli import DRIFTLINE
from tests.servers import fresh_mlflow_store

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Store:
    """The module's tracking store, pipeline config and registered model, with a champion in place."""

    home: Path
    uri: str
    config: Path
    model_name: str
    champion: str

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


@dataclass(frozen=True)
class RegistryState:
    champion: str | None
    versions: tuple[str, ...]
    runs: frozenset[str]


def _train(config: Path, data: Path, target: str = "volatility", target_col: str | None = None) -> dict[str, Any]:
    from flows.training import train_and_promote

    return train_and_promote(config_file=str(config), data=str(data), target=target, target_col=target_col)


def _state(store: Store) -> RegistryState:
    client = store.client()
    try:
        champion = str(client.get_model_version_by_alias(store.model_name, "champion").version)
    except mlflow.exceptions.MlflowException:
        champion = None
    versions = tuple(
        sorted((str(v.version) for v in client.search_model_versions(f"name = '{store.model_name}'")), key=int)
    )
    experiment = client.get_experiment_by_name(store.model_name)
    runs = frozenset(r.info.run_id for r in client.search_runs([experiment.experiment_id], max_results=5000))
    return RegistryState(champion, versions, runs)


def _assert_versions_complete(store: Store) -> None:
    """Every version: READY, traceable to its run, a loadable pyfunc model, and the drift reference beside it."""
    client = store.client()
    for version in client.search_model_versions(f"name = '{store.model_name}'"):
        where = f"{store.model_name} v{version.version}"
        assert version.status == "READY", where
        run_id = version.tags.get("driftline.run_id")
        assert run_id == version.run_id, where
        assert "driftline.train_cutoff" in version.tags, where
        artifacts = {a.path for a in client.list_artifacts(run_id, "reference")}
        assert {"reference/profile.json", "reference/sample.parquet"} <= artifacts, where
        info = mlflow.models.get_model_info(f"models:/{store.model_name}/{version.version}")
        assert info.signature is not None and info.signature.inputs.input_names(), where


@pytest.fixture(scope="module")
def stores(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Store]]:
    """One tracking store with a champion per target: a model answers one question, so the price cases
    (volatility) and the label cases each meet a champion of their own target, which an error must leave
    exactly as it was.

    The label champion is trained by a first clean run of the flow. The price champion is trained on the
    clean panel moved five years earlier (its training cutoff before every case's data) and made champion
    by the fixture: two symbols of GARCH volatility carry too little signal for a 250-day hold-out to clear
    the base rate reliably, and what is tested is that an error leaves a champion alone, not how it got there.
    """
    root = tmp_path_factory.mktemp("bad-inputs")
    home = root / "home"
    home.mkdir()
    uri = fresh_mlflow_store(home / "mlflow.db")  # a migrated copy: the store's first start is not under test here
    label_config = root / "pipeline.yaml"
    label_config.write_text(yaml.safe_dump(PIPELINE))
    price_config = root / "pipeline-prices.yaml"
    price_config.write_text(yaml.safe_dump({**PIPELINE, "name": "bad-inputs-prices"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRIFTLINE_HOME", str(home))
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        summary = _train(label_config, write_champion_data(root / "clean"), "label", "y")
        assert summary["decision"] == "promote", summary["reasons"]
        assert summary["champion_version_after"] == summary["model_version"] == "1"
        label = Store(home, uri, label_config, summary["model_name"], summary["champion_version_after"])

        earlier = make_ohlcv_panel(n_symbols=2, n_days=N_DAYS, seed=21, garch=GARCH, start="2008-01-01")
        (root / "clean-prices").mkdir()
        earlier.to_csv(root / "clean-prices" / "panel.csv", index=False)
        prices = _train(price_config, root / "clean-prices" / "panel.csv", "volatility")
        MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
            prices["model_name"], "champion", prices["model_version"]
        )
        yield {
            "label": label,
            "volatility": Store(home, uri, price_config, prices["model_name"], prices["model_version"]),
        }


@pytest.mark.parametrize("case", FLOW_CASES, ids=str)
def test_flow_on_bad_input(
    case: Case, stores: dict[str, Store], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = stores[case.target]
    data = case.build(tmp_path / "data")
    before = _state(store)
    assert before.champion is not None

    if case.error is not None:
        kind, pattern = case.error
        with pytest.raises(DataError) as info:
            _train(store.config, data, case.target, case.target_col)
        message = str(info.value)
        assert isinstance(info.value, kind), f"{type(info.value).__name__}: {message}"
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
        assert file_named(case, data) in message, message
        after = _state(store)
        # The champion is untouched and nothing is half-registered.
        assert after.champion == before.champion
        assert after.versions == before.versions
        new_runs = [store.client().get_run(r) for r in after.runs - before.runs]
        parents = [r for r in new_runs if "mlflow.parentRunId" not in r.data.tags]
        assert [r.info.status for r in parents] == ["FAILED"]
        _assert_versions_complete(store)
        return

    caplog.set_level("WARNING", logger="driftline")
    summary = _train(store.config, data, case.target, case.target_col)
    assert summary["rows_in"] == summary["rows_clean"] + summary["rows_quarantined"]
    assert store.client().get_run(summary["run_id"]).info.status == "FINISHED"
    if case.quarantine is not None:
        expected = case.expected_rows(data)
        assert summary["rows_quarantined"] == len(expected)
        path = Path(summary["quarantine_path"])
        assert path.suffix == ".parquet" and path.is_file()
        rows = pd.read_parquet(path)
        assert "reason" in rows.columns
        assert set(rows["source_row"].astype(int)) == expected
        for reason in rows["reason"]:
            assert re.search(case.quarantine[1], reason), reason
    else:
        assert summary["rows_quarantined"] == 0 and summary["quarantine_path"] is None
    if case.dropped_features:
        logged = mlflow.artifacts.load_dict(f"runs:/{summary['run_id']}/features.json")
        assert not set(case.dropped_features) & set(logged), logged
    if case.warning is not None:
        found = [*summary.get("contract_warnings", []), *(r.getMessage() for r in caplog.records)]
        assert any(re.search(case.warning, w) for w in found), found
    after = _state(store)
    assert len(after.versions) == len(before.versions) + 1
    _assert_versions_complete(store)


def test_cli_batch_failure_is_one_paragraph_without_traceback(
    stores: dict[str, Store], prefect_api: str, tmp_path: Path
) -> None:
    case = next(c for c in FLOW_CASES if c.name == "majority_bad_batch")
    store = stores[case.target]
    data = case.build(tmp_path / "data")
    before = _state(store)
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "DRIFTLINE_HOME": str(store.home),
        "MLFLOW_TRACKING_URI": store.uri,
    }

    done = warm.run(
        [DRIFTLINE, "train", "--config", str(store.config), "--data", str(data), "--summary-json", "out/summary.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    paragraph = done.stderr[done.stderr.rindex("error: ") :].strip()
    assert "\n\n" not in paragraph, paragraph
    assert file_named(case, data) in paragraph and re.search(case.error[1], paragraph), paragraph
    # Printed once: the CLI's paragraph, not again by the failed task and flow on the console.
    tail = paragraph.splitlines()[0][-60:]  # the end of the message: the file's path is on the progress line too
    assert (done.stdout + done.stderr).count(tail) == 1, done.stderr[-3000:]
    # A failed run still writes its summary, strict JSON, saying so.
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "failed" and tail in summary["error"] and file_named(case, data) in summary["error"], (
        summary
    )
    after = _state(store)
    assert (after.champion, after.versions) == (before.champion, before.versions)
