"""The `driftline` command as a user runs it: subprocesses against the session's Prefect API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from driftline.synthetic import make_labelled_series, make_ohlcv_panel
from tests import warm
from tests.servers import fresh_mlflow_store, seed_database
from tests.unit.test_report import CONTRACT_KEYS as REPORT_CONTRACT_KEYS

pytestmark = pytest.mark.slow
DRIFTLINE = str(Path(sys.executable).with_name("driftline"))
# The summary's contract (tests/unit/test_report.py) and what a finished CLI run adds to it.
CONTRACT_KEYS = REPORT_CONTRACT_KEYS | {
    "data_start",
    "data_end",
    "training_cutoff",
    "champion_version_before",
    "champion_version_after",
    "comparison",
}


def migrated_store(cwd: Path) -> None:
    """The default tracking store (``.driftline/mlflow.db`` in ``cwd``) as a copy of the session's migrated
    template, for the runs that do not test its creation: ``daily_csv_run`` and the local-API test start from
    the product's own (driftline.app.db_templates), or migrate where ``make install`` made none."""
    fresh_mlflow_store(cwd / ".driftline" / "mlflow.db")


def run_cli(args: list[str], cwd: Path, api: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DRIFTLINE_HOME")}
    if api:
        env["PREFECT_API_URL"] = api
    return warm.run([DRIFTLINE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_two_column_price_series_with_explicit_columns(prefect_api, tmp_path, fast_config):
    bars = make_ohlcv_panel(n_symbols=1, n_days=900, seed=6)
    pd.DataFrame({"when": bars["Date"], "px": bars["Close"]}).to_csv(tmp_path / "px.csv", index=False)
    migrated_store(tmp_path)

    done = run_cli(
        [
            "train",
            "--config",
            str(fast_config),
            "--data",
            "px.csv",
            "--time-col",
            "when",
            "--price-col",
            "px",
            "--target",
            "direction",
            "--name",
            "px",
            "--summary-json",
            "s.json",
        ],
        tmp_path,
        prefect_api,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["model_name"] == "driftline-px"
    assert summary["target"] == "direction"
    assert summary["rows_in"] == 900
    # A price direction target must show its edge over the base rate by default (calibration.require_edge: auto).
    assert summary["edge"]["level"] == 0.95 and summary["edge"]["against"] == "base_rate", summary["edge"]
    # What detection chose, in the JSON and on screen (the explicit columns here).
    assert summary["columns"] == {
        "time": ["when"],
        "symbol": None,
        "prices": {"close": "px"},
        "target": None,
        "features": [],
    }
    assert "       columns time 'when', close 'px'" in done.stdout
    # A price target gets the equity curve of the long/flat book beside the other plots.
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / '.driftline' / 'mlflow.db'}")
    plots = {a.path for a in client.list_artifacts(summary["run_id"], "plots")}
    assert "plots/equity.png" in plots and "plots/precision_recall.png" in plots, plots


def test_labelled_series_with_arbitrary_feature_columns(prefect_api, tmp_path, fast_config):
    """No --name and a config without one: every command works on the model named after the data. The label's
    classes are named ("storm" is 1, by data.positive_label); score and monitor read them as training did. The
    times are New York clock times (data.timezone): kept as UTC, printed on that clock."""
    import yaml

    labelled = make_labelled_series(n_rows=1500, seed=7)
    labelled["y"] = labelled["y"].map({1: "storm", 0: "calm"})
    labelled.to_csv(tmp_path / "labelled.csv", index=False)
    unnamed = {k: v for k, v in yaml.safe_load(fast_config.read_text()).items() if k != "name"}
    (tmp_path / "unnamed.yaml").write_text(yaml.safe_dump(unnamed))
    migrated_store(tmp_path)

    done = run_cli(
        [
            "train",
            "--config",
            "unnamed.yaml",
            "--data",
            "labelled.csv",
            "--target",
            "label",
            "--target-col",
            "y",
            "--set",
            "data.positive_label=storm",
            "--set",
            "data.timezone=America/New_York",
            "--summary-json",
            "s.json",
        ],
        tmp_path,
        prefect_api,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0].startswith("Driftline training: driftline-labelled ")
    assert "Driftline training:" not in done.stderr  # the flow's outcome log line: printed once, as stdout
    assert "model driftline-labelled (named after --data labelled.csv" in done.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["model_name"] == "driftline-labelled"
    # y depends on x0 and x1: a real signal the models must find.
    assert summary["metrics"]["auc"] > 0.7
    assert summary["decision"] == "promote" and summary["champion_version_after"] == "1"
    assert summary["status"] == "finished" and summary["error"] is None
    assert summary["columns"]["classes"] == {"0": "calm", "1": "storm"}
    assert "target 'y' ('storm' is 1, 'calm' 0)" in done.stdout
    # Kept as UTC (New York is 5 h behind in winter), printed on the data's clock.
    local = pd.to_datetime(labelled["timestamp"])
    assert pd.Timestamp(summary["data_start"]) == local.iloc[5] + pd.Timedelta(hours=5)  # after 5 rows of lags
    shown = pd.Timestamp(summary["data_start"]).tz_localize("UTC").tz_convert("America/New_York")
    assert f"rows {shown.isoformat()} .. " in done.stdout and "times in America/New_York" in done.stdout
    assert "Warning" not in done.stderr, done.stderr[-3000:]  # the happy path leaks no library warning
    assert "great_expectations" not in done.stderr, done.stderr[-3000:]  # nor GX's INFO line about a docs folder

    scored = run_cli(
        ["score", "--data", "labelled.csv", "--target-col", "y", "--out", "p.csv", "--explain", "2"],
        tmp_path,
        prefect_api,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    # Only the signature's columns reach the pyfunc model: MLflow has no extra inputs to warn about.
    assert "extra inputs" not in scored.stderr and "Warning" not in scored.stderr, scored.stderr[-3000:]
    # Label lags 1, 2 and 5 behind a label_delay of 1: the first 5 rows cannot have every feature.
    assert "scored 1495 of 1500 rows with driftline-labelled v1" in scored.stdout
    assert "5 rows lacked history" in scored.stdout
    assert "with each row's top 2 SHAP contributions" in scored.stdout
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert len(predictions) == 1495
    # Each decision by the label's own names too (the registered model's classes.json).
    assert (predictions["class"] == predictions["decision"].map({1: "storm", 0: "calm"})).all()
    assert predictions["decision"].nunique() == 2
    # y depends on x0 and x1: most rows' largest contribution is one of them.
    assert predictions["explain_1_feature"].isin(["x0", "x1"]).mean() > 0.5
    assert (predictions["explain_1_value"].abs() >= predictions["explain_2_value"].abs()).all()

    # Without --data: the champion's recorded source (as monitor and the deployed score run read it).
    recorded = run_cli(["score", "--name", "labelled", "--out", "r.csv"], tmp_path, prefect_api)
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    assert "scored 1495 of 1500 rows with driftline-labelled v1" in recorded.stdout
    again = pd.read_csv(tmp_path / "r.csv")
    assert again["probability"].tolist() == predictions["probability"].tolist()

    # The same growing source, monitored: only the rows after the training cutoff are judged.
    watched = run_cli(
        [
            "monitor",
            "--data",
            "labelled.csv",
            "--target-col",
            "y",
            "--summary-json",
            "d.json",
            "--set",
            "data.encoding=utf-8",
        ],
        tmp_path,
        prefect_api,
    )
    assert watched.returncode == 0, watched.stderr[-3000:]
    drift = json.loads((tmp_path / "d.json").read_text())
    assert watched.stdout.startswith("driftline-labelled v1: drift ") and f"on {drift['rows']} rows" in watched.stdout
    assert drift["window_start"] > summary["training_cutoff"] and drift["window_end"] == summary["data_end"]
    times = local + pd.Timedelta(hours=5)  # the file's New York times in UTC, as monitor read them
    assert drift["rows"] == int((times > pd.Timestamp(summary["training_cutoff"])).sum())
    end = pd.Timestamp(drift["window_end"]).tz_localize("UTC").tz_convert("America/New_York")
    assert f" .. {end})" in watched.stdout.splitlines()[0] and str(end).endswith("-05:00")

    other = run_cli(["score", "--data", "p.csv", "--out", "q.csv"], tmp_path, prefect_api)
    assert other.returncode == 2 and "no model driftline-p in the registry at " in other.stderr
    assert (
        "which holds driftline-labelled" in other.stderr and "(the name was derived from --data p.csv" in other.stderr
    )

    # Events at one time are kept for scoring by a reading --set; the model's own keys are refused at once.
    rows = pd.read_csv(tmp_path / "labelled.csv")
    pd.concat([rows, rows.tail(3).assign(x0=rows["x0"].tail(3) + 1.0)]).to_csv(tmp_path / "events.csv", index=False)
    events = ["score", "--name", "labelled", "--data", "events.csv", "--target-col", "y", "--out", "e.csv"]
    kept = run_cli([*events, "--set", "contract.unique=warn"], tmp_path, prefect_api)
    assert kept.returncode == 0, kept.stderr[-3000:]
    assert "scored 1498 of 1503 rows with driftline-labelled v1" in kept.stdout  # without it: 3 quarantined
    refused = run_cli(["score", "--name", "labelled", "--set", "target.horizon=3"], tmp_path, prefect_api)
    assert refused.returncode == 2 and "--set target.horizon: score reads rows as the model was trained" in (
        refused.stderr
    )


def _stock_bars(symbol: str, n_rows: int) -> pd.DataFrame:
    """The last ``n_rows`` daily bars of a real stock (bokeh-sampledata), headed as a vendor CSV."""
    from bokeh_sampledata import stocks

    names = {
        "date": "Date",
        "open": "Open",
        "high": "High",
        "low": "Low",
        "close": "Close",
        "volume": "Volume",
        "adj_close": "Adj Close",
    }
    return pd.DataFrame(getattr(stocks, symbol)).rename(columns=names).tail(n_rows)


@dataclass(frozen=True)
class CliRun:
    folder: Path
    done: subprocess.CompletedProcess[str]
    summary: dict


@pytest.fixture(scope="module")
def daily_csv_run(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """One `driftline train` on a real daily OHLCV CSV with a vendor's headers (Date, Open, ..., Adj Close):
    800 bars of AAPL, the fast test families and default sizes, in a fresh working directory. The tests of
    the vendor CSV and of the default sizes both judge this run (one training instead of two)."""
    import yaml

    from tests.integration.conftest import FAST_CONFIG

    folder = tmp_path_factory.mktemp("daily-csv")
    # The fast test families, but no sizes: splits and evaluation keep their defaults.
    wiring = {k: v for k, v in FAST_CONFIG.items() if k not in ("splits", "evaluation")}
    (folder / "sizes-default.yaml").write_text(yaml.safe_dump(wiring))
    _stock_bars("AAPL", 800).to_csv(folder / "AAPL.csv", index=False)
    done = run_cli(
        ["train", "--config", "sizes-default.yaml", "--data", "AAPL.csv", "--summary-json", "out/s.json"],
        folder,
        prefect_api,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return CliRun(folder, done, json.loads((folder / "out" / "s.json").read_text()))


def test_daily_ohlcv_csv_with_vendor_headers(daily_csv_run: CliRun) -> None:
    done, summary = daily_csv_run.done, daily_csv_run.summary
    assert summary.keys() >= CONTRACT_KEYS
    assert set(summary["metrics"]) == {
        "accuracy",
        "auc",
        "brier",
        "log_loss",
        "ece",
        "precision_at_k",
        "brier_skill",
        "ece_worst_fold",
    }
    assert summary["model_version"] == "1"
    assert set(summary["comparison"]) >= {"metric", "diff", "ci_low", "ci_high"}
    assert (
        "Walk-forward folds" in done.stdout
        and "Hold-out comparison" in done.stdout
        and "Registered driftline-AAPL version 1" in done.stdout
    )
    # Default tracking store: a SQLite file under .driftline/ in the working directory.
    assert (daily_csv_run.folder / ".driftline" / "mlflow.db").is_file()


def test_real_short_series_and_a_folder_where_one_file_lacks_adj_close_train_with_default_sizes(
    daily_csv_run: CliRun, prefect_api: str
) -> None:
    """800 daily bars (651 timestamps after the features' warm-up) do not fit the default 5 folds and
    500-timestamp hold-out: the run lowers them, says so, and records the sizes it used. A folder of
    per-symbol files where one lacks Adj Close trains on that file's Close, without quarantining it."""
    import yaml
    from mlflow import MlflowClient

    tmp_path, done, summary = daily_csv_run.folder, daily_csv_run.done, daily_csv_run.summary
    folder = tmp_path / "stocks"
    folder.mkdir()
    for symbol in ("AAPL", "IBM", "MSFT"):
        bars = _stock_bars(symbol, 800)
        (bars.drop(columns="Adj Close") if symbol == "MSFT" else bars).to_csv(folder / f"{symbol}.csv", index=False)

    assert {k: (v["from"], v["to"]) for k, v in summary["adjusted"].items()} == {
        "splits.n_splits": (5, 3),
        "evaluation.window": (500, 241),
    }
    assert "651 timestamps" in summary["adjusted"]["evaluation.window"]["reason"]
    assert "warning: short data: evaluation.window 500 -> 241" in done.stdout
    assert [f["fold"] for f in summary["folds"]] == [1, 2, 3]
    assert summary["comparison"]["rows"] == 241 or summary["comparison"]["rows"] is None
    client = MlflowClient(f"sqlite:///{tmp_path / '.driftline' / 'mlflow.db'}")
    params = client.get_run(summary["run_id"]).data.params
    assert (params["splits.n_splits"], params["evaluation.window"], params["splits.min_train_size"]) == (
        "3",
        "241",
        "250",
    )
    logged = yaml.safe_load(
        Path(client.download_artifacts(summary["run_id"], "config/pipeline.yaml", str(tmp_path))).read_text()
    )
    assert (logged["splits"]["n_splits"], logged["evaluation"]["window"]) == (3, 241)  # the config the run used
    # The windows fitted nothing here (800 daily bars are long enough for them); logged once, as configured.
    assert (params["features.vol_long"], params["contract.min_rows_per_symbol"]) == ("60", "100")
    # None of the sizes was set: a retrain of this version sizes all three again on its own data.
    from driftline.sizing import FITTED_KEYS, SHRINK_ORDER, retrain_config_yaml

    automatic = json.loads(
        Path(client.download_artifacts(summary["run_id"], "config/automatic_sizes.json", str(tmp_path))).read_text()
    )
    # Every size and window (the test config sets contract.min_rows_per_symbol: kept, not refitted; the symbol
    # column is pinned only when found by its rows).
    assert automatic["automatic"][:3] == list(SHRINK_ORDER)
    assert set(automatic["automatic"]) == set(FITTED_KEYS) - {"contract.min_rows_per_symbol", "data.symbol_col"}
    retrain = yaml.safe_load(retrain_config_yaml(yaml.safe_dump(logged), automatic["automatic"]))
    assert "n_splits" not in retrain["splits"] and "window" not in retrain["evaluation"]
    assert "vol_long" not in retrain["features"]

    done = run_cli(
        ["train", "--config", "sizes-default.yaml", "--data", "stocks", "--summary-json", "p.json"],
        tmp_path,
        prefect_api,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    panel = json.loads((tmp_path / "p.json").read_text())
    assert panel["rows_in"] == panel["rows_clean"] == 2400 and panel["rows_quarantined"] == 0
    (warning,) = panel["data_warnings"]
    assert "stocks/MSFT.csv: no 'Adj Close' values; prices of MSFT come from 'Close'" in warning
    assert f"warning: {warning}" in done.stdout
    assert panel["adjusted"]["evaluation.window"]["to"] == 241  # 3 symbols: 723 rows, above promotion.min_rows


def test_bad_input_is_one_paragraph_without_traceback(prefect_api, tmp_path, fast_config):
    pd.DataFrame({"a": ["x", "y"], "b": [1, 2]}).to_csv(tmp_path / "nodates.csv", index=False)
    migrated_store(tmp_path)

    done = run_cli(["train", "--config", str(fast_config), "--data", "nodates.csv"], tmp_path, prefect_api)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "no time column found" in done.stderr and "nodates.csv" in done.stderr

    # Column errors a single file's header shows are said before any flow or MLflow run starts (they took a
    # whole flow start-up): a file without a header row, a --time-col it does not have.
    (tmp_path / "klines.csv").write_text("1704067200000,42038.7,42021.1,42000.0,42021.1,808.0\n" * 3)  # high first
    for args, expected in (
        (["--data", "klines.csv"], "klines.csv: no header row"),
        (["--data", "nodates.csv", "--time-col", "when"], "nodates.csv: time column 'when' not found"),
    ):
        done = run_cli(
            ["train", "--config", str(fast_config), *args, "--summary-json", "f.json"], tmp_path, prefect_api
        )
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert "Task run" not in done.stdout + done.stderr  # no flow ran
        failed = json.loads((tmp_path / "f.json").read_text())
        assert failed["status"] == "failed" and failed["run_id"] is None and expected in failed["error"]


def test_bad_config_fails_fast_naming_the_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("splits:\n  n_split: 5\n")

    done = run_cli(["train", "--config", "bad.yaml"], tmp_path, api=None)

    assert done.returncode == 2
    assert "unknown key 'splits.n_split'" in done.stderr and "n_splits" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".driftline").exists()  # nothing ran

    # --set is validated like the YAML: the error names the key and where it came from.
    for option, expected in (
        ("splits.n_split=3", "--set: unknown key 'splits.n_split'"),
        ("splits.gap=-1", "--set: splits.gap"),
    ):
        done = run_cli(["train", "--set", option], tmp_path, api=None)
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    done = run_cli(["train", "--target", "label", "--target-col", "y", "--set", "splits.gap=0"], tmp_path, api=None)
    assert done.returncode == 2 and "splits.gap (0) must be >= target.label_delay (1)" in done.stderr, done.stderr
    assert not (tmp_path / ".driftline").exists()

    # An empty or undecodable file is named before the local API starts (it used to take a whole flow run).
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "binary.csv").write_bytes(b"Date,Close\n" + bytes(range(256)) * 4)
    for name, expected in (("empty.csv", "empty.csv: file is empty"), ("binary.csv", "binary.csv: not text")):
        for command in ("train", "monitor", "score"):
            done = run_cli([command, "--data", name], tmp_path, api=None)
            assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, (
                command,
                done.stderr,
            )
    assert not (tmp_path / ".driftline").exists()


def test_without_a_prefect_server_each_command_starts_its_own_local_api_and_leaves_nothing_running(
    tmp_path, fast_config
):
    """No PREFECT_API_URL anywhere: train and score each bring up the local API on PREFECT_HOME's database
    (driftline.app.local_api) and stop it when they exit."""
    import sqlite3

    make_labelled_series(n_rows=1500, seed=7).to_csv(tmp_path / "labelled.csv", index=False)
    home = tmp_path / "prefect-home"
    # Each command still starts its own server on this home; its database starts as a copy of the session's
    # migrated one (when there is one): a fresh home's first start, migrations included, is
    # tests/unit/test_local_api.py's (~5 s of CPU here).
    seed_database(home / "prefect.db", "prefect")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "DRIFTLINE_HOME"))
    }
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return warm.run([DRIFTLINE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    train = ("train", "--config", str(fast_config), "--data", "labelled.csv", "--target", "label", "--target-col", "y")
    trained = cli(*train, "--name", "lab")
    assert trained.returncode == 0, trained.stderr[-3000:]
    scored = cli("score", "--name", "lab", "--data", "labelled.csv", "--target-col", "y", "--out", "p.csv")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert "View at" not in trained.stdout + trained.stderr  # no links to a server that is gone
    # The first command made the MLflow store (.driftline/mlflow.db) without MLflow's INFO lines about it.
    assert "mlflow.store.db.utils" not in trained.stderr, trained.stderr[-3000:]

    # The same train again: the CLI finds the finished run itself and starts no flow run and no MLflow run.
    again = cli(*train, "--name", "lab", "--summary-json", "again.json")
    assert again.returncode == 0, again.stderr[-3000:]
    first_run = json.loads((tmp_path / "again.json").read_text())["rerun_of"]
    assert f"Same data, config and code as run {first_run}: nothing retrained, nothing registered." in again.stdout

    with sqlite3.connect(home / "prefect.db") as db:
        runs = db.execute("select f.name, r.state_type from flow_run r join flow f on f.id = r.flow_id").fetchall()
    assert sorted(runs) == [("score-batch", "COMPLETED"), ("train-and-promote", "COMPLETED")], runs
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / '.driftline' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("driftline-lab")
    parents = [r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name.startswith("train-")]
    assert [r.info.run_id for r in parents] == [first_run]

    def servers_of_this_home() -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and f"PREFECT_HOME={home}".encode() in (proc / "environ").read_bytes().split(
                    b"\0"
                ):
                    found.append(int(proc.name))
            except OSError:
                continue
        return found

    assert servers_of_this_home() == []
