"""Ingestion as a user meets it: partitioned folders, incremental scheduled runs, quarantine, cached reruns."""

from __future__ import annotations

import asyncio
import json
import uuid

import numpy as np
import pandas as pd
import pytest

from driftline.synthetic import make_ohlcv_panel
from tests.integration.test_cli import run_cli

pytestmark = pytest.mark.slow


def _write_year_partitions(root, panel: pd.DataFrame, years) -> list[str]:
    keys = []
    for (symbol, year), part in panel[panel["year"].isin(years)].groupby(["Symbol", "year"]):
        folder = root / f"symbol={symbol}" / f"year={year}"
        folder.mkdir(parents=True, exist_ok=True)
        part.drop(columns=["Symbol", "year"]).to_parquet(folder / "part-0.parquet", index=False)
        keys.append(f"symbol={symbol}/year={year}/part-0.parquet")
    return keys


def test_partitioned_folder_and_a_scheduled_run_that_reads_only_the_new_partition(prefect_api, tmp_path, fast_config):
    panel = make_ohlcv_panel(n_symbols=2, n_days=900, seed=3)
    panel["year"] = pd.to_datetime(panel["Date"]).dt.year
    years = sorted(panel["year"].unique())
    root = tmp_path / "bars"
    _write_year_partitions(root, panel, years[:-1])

    first = run_cli(
        ["train", "--config", str(fast_config), "--data", "bars/", "--summary-json", "a.json"], tmp_path, prefect_api
    )
    assert first.returncode == 0, first.stderr[-3000:]
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["ingest"]["read"] == a["ingest"]["objects"] == 2 * (len(years) - 1)

    added = _write_year_partitions(root, panel, years[-1:])
    second = run_cli(
        ["train", "--config", str(fast_config), "--data", "bars/", "--summary-json", "b.json"], tmp_path, prefect_api
    )
    assert second.returncode == 0, second.stderr[-3000:]
    b = json.loads((tmp_path / "b.json").read_text())
    assert sorted(b["ingest"]["new"]) == sorted(added)
    assert b["ingest"]["unchanged"] == a["ingest"]["objects"] and b["ingest"]["changed"] == []
    assert b["rows_in"] == len(panel)
    assert f"read {len(added)} new or changed file(s) of {b['ingest']['objects']}" in second.stdout


def test_a_few_bad_rows_are_quarantined_and_the_run_succeeds(prefect_api, tmp_path, fast_config):
    panel = make_ohlcv_panel(n_symbols=2, n_days=900, seed=4)
    panel["Close"] = panel["Close"].astype(object)
    bad = {37: ("Close", -3.0), 250: ("Close", "n/a?"), 901: ("Volume", -10), 1200: ("Close", 1e300)}
    for row, (column, value) in bad.items():
        panel.loc[row, column] = value
    duplicate = panel.iloc[[500]]
    panel = pd.concat([panel, duplicate], ignore_index=True)  # the repeat, at the end, is the bad one
    panel.to_csv(tmp_path / "bars.csv", index=False)

    done = run_cli(
        ["train", "--config", str(fast_config), "--data", "bars.csv", "--summary-json", "s.json"], tmp_path, prefect_api
    )

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rows_in"] == len(panel) == summary["rows_clean"] + summary["rows_quarantined"]
    assert summary["rows_quarantined"] == len(bad) + 1
    quarantined = pd.read_parquet(summary["quarantine_path"])
    assert sorted(quarantined["source_row"].astype(int)) == sorted([*bad, len(panel) - 1])
    reasons = dict(zip(quarantined["source_row"].astype(int), quarantined["reason"], strict=True))
    assert "close" in reasons[37].lower() and "volume" in reasons[901].lower()
    assert "not a number" in reasons[250]
    assert "duplicate" in reasons[len(panel) - 1].lower()
    # The quarantine keeps the source values as they were, with where they came from.
    assert quarantined.set_index(quarantined["source_row"].astype(int)).loc[250, "Close"] == "n/a?"
    # ... and the line an editor shows for it: the header is line 1, so data row 250 is line 252.
    lines = (tmp_path / "bars.csv").read_text().splitlines()
    for row in quarantined.to_dict("records"):
        line = int(row["__source_line"])
        assert line == int(row["source_row"]) + 2 and f",{row['Close']}," in f",{lines[line - 1]},", (
            row,
            lines[line - 1],
        )
    assert "quarantined rows and reasons" in done.stdout


def test_batch_level_failure_exits_non_zero_naming_file_column_and_problem(prefect_api, tmp_path, fast_config):
    panel = make_ohlcv_panel(n_symbols=2, n_days=600, seed=5)
    panel["Close"] = panel["Close"].astype(object)
    panel.loc[panel.index[::2], "Close"] = "missing"  # half the prices are text: not a few bad rows
    panel.to_csv(tmp_path / "broken.csv", index=False)

    done = run_cli(["train", "--config", str(fast_config), "--data", "broken.csv"], tmp_path, prefect_api)

    assert done.returncode != 0
    message = done.stderr + done.stdout
    assert "broken.csv" in message and "close" in message.lower() and "Traceback" not in message


def test_forced_rerun_on_unchanged_input_fits_nothing_again(prefect_api, tracking, fast_config, tmp_path):
    from mlflow import MlflowClient
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    from flows.training import train_and_promote

    # Bytes no other test has used: Prefect's cache is shared by every run that has the same inputs.
    ohlcv_csv = tmp_path / "unique.csv"
    make_ohlcv_panel(n_symbols=2, n_days=900, seed=3).assign(note=uuid.uuid4().hex).to_csv(ohlcv_csv, index=False)
    first = train_and_promote(config_file=str(fast_config), data=str(ohlcv_csv))
    second = train_and_promote(config_file=str(fast_config), data=str(ohlcv_csv), force=True)
    assert first["data_hash"] == second["data_hash"]

    async def states(run_id: str) -> dict[str, str]:
        flow_run_id = MlflowClient().get_run(run_id).data.tags["prefect.flow_run_id"]
        async with get_client() as client:
            # prefect 3.8.8's client sends limit/sort null unless given; its server answers 422.
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                limit=200,
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            )
        return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs}

    before, after = asyncio.run(states(first["run_id"])), asyncio.run(states(second["run_id"]))
    # Reading, validating and featurising run again: persisting their frames through Prefect's result
    # store costs as much as recomputing them (benchmarks: P2). The fits are cached, on the feature set's
    # content (which the note column does not change, so even the first run may find them), the config
    # and the code: a forced rerun fits nothing again.
    assert before["check-contract"] == before["build-features"] == "Completed"
    assert after["check-contract"] == after["build-features"] == "Completed"
    assert after["walk-forward"] == after["fit-challenger"] == "Cached"
    assert second["rows_in"] == first["rows_in"] and np.isclose(second["metrics"]["auc"], first["metrics"]["auc"])
