"""What a version was made from, retraining from it (driftline reproduce), and online scoring of the
champion through MLflow's own server (mlflow models serve), all on one trained model."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from driftline import provenance
from driftline.adapters import registry
from driftline.synthetic import make_labelled_series
from tests import servers, warm

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LABELLED = {"target": "label", "target_col": "y"}


def members_err_differently(n_rows: int, seed: int) -> pd.DataFrame:
    """A labelled series whose label each ensemble member gets only part of, so their soft vote beats both.

    The log-odds are a diagonal linear term in ``x0 - x1``, which logistic regression fits exactly and
    axis-aligned trees only approximate by steps, plus a bend in ``|x0|``, which trees fit and a linear
    model cannot. On the label of ``make_labelled_series`` (linear in x0 and x1 alone) LightGBM alone wins
    under the walk-forward folds, so the ensemble would not be selected.
    """
    frame = make_labelled_series(n_rows=n_rows, seed=seed)
    x0, x1 = frame["x0"].to_numpy(), frame["x1"].to_numpy()
    logit = 2.0 * (x0 - x1) - 1.5 * (np.abs(x0) - 0.8)
    rng = np.random.default_rng(seed + 1000)
    frame["y"] = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture(scope="module")
def trained(prefect_api, tmp_path_factory):
    """Version 1 of driftline-it, trained by the flow; the tracking URI and paths the tests need."""
    import yaml

    from flows.training import train_and_promote
    from tests.integration.conftest import FAST_CONFIG

    folder = tmp_path_factory.mktemp("provenance")
    home = folder / "home"
    home.mkdir()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    config, data = folder / "fast.yaml", folder / "labelled.csv"
    # With the soft-vote ensemble of logreg and a plain LightGBM: they err differently on this series and the
    # vote wins, so the version below is a VotingClassifier and reproduce, pyfunc and serving all go through
    # it. (On its default linear base LightGBM already adds the trees to the linear model, and wins alone.)
    models = {**FAST_CONFIG["models"], "ensemble": True, "linear_base": []}
    config.write_text(yaml.safe_dump({"name": "it", **FAST_CONFIG, "models": models}))
    members_err_differently(n_rows=1500, seed=11).to_csv(data, index=False)
    saved = {k: os.environ.get(k) for k in ("DRIFTLINE_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    os.environ.update(DRIFTLINE_HOME=str(home), MLFLOW_TRACKING_URI=uri)
    try:
        summary = train_and_promote(config_file=str(config), data=str(data), **LABELLED)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    assert summary["champion_version_after"] == "1"
    env = {"DRIFTLINE_HOME": str(home), "MLFLOW_TRACKING_URI": uri}
    return {"summary": summary, "env": env, "folder": folder, "uri": uri}


def _client(trained, monkeypatch) -> MlflowClient:
    """A client on the trained store; mlflow.artifacts and pyfunc read it too (restored after the test)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    return MlflowClient(trained["uri"], trained["uri"])


def driftline(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return warm.run(
        [str(BIN / "driftline"), *args], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_every_version_records_commit_lock_code_config_and_data(trained, monkeypatch):
    client = _client(trained, monkeypatch)
    tags = client.get_model_version("driftline-it", "1").tags
    run = client.get_run(trained["summary"]["run_id"])
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert tags[provenance.GIT_COMMIT].removesuffix("-dirty") == head
    assert tags[provenance.LOCK_SHA256] == hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest()
    config_text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config/pipeline.yaml")
    assert tags[provenance.CONFIG_SHA256] == hashlib.sha256(config_text.encode()).hexdigest()
    assert tags[provenance.DATA_SHA256] == run.data.tags["driftline.data_sha256"] == trained["summary"]["data_hash"]
    assert tags[provenance.SOURCE].endswith("labelled.csv")
    assert tags[provenance.CODE_VERSION].startswith("0.")


def test_the_ensemble_wins_and_is_registered_scored_and_explained(trained, monkeypatch):
    from sklearn.ensemble import VotingClassifier

    summary = trained["summary"]
    assert set(summary["families"]) == {"logreg", "lightgbm", "ensemble"}
    assert summary["selected_family"] == "ensemble", summary["selection"]
    assert [fold["family"] for fold in summary["folds"]] == ["ensemble"] * 3
    _client(trained, monkeypatch)
    model = mlflow.pyfunc.load_model("models:/driftline-it/1")
    calibrated = model.unwrap_python_model().model
    assert isinstance(calibrated.base_estimator_, VotingClassifier)
    assert [name for name, _ in calibrated.base_estimator_.estimators] == ["logreg", "lightgbm"]
    run_id = summary["run_id"]
    sample = registry.load_run_frame(run_id, "reference/sample.parquet")
    rows = sample[mlflow.artifacts.load_dict(f"runs:/{run_id}/features.json")].head(20)
    np.testing.assert_allclose(
        model.predict(rows)["probability"], calibrated.predict_proba(rows)[:, 1], rtol=0, atol=1e-12
    )
    importance = mlflow.artifacts.load_dict(f"runs:/{run_id}/feature_importance.json")
    assert set(list(importance)[:2]) == {"x0", "x1"} and sum(importance.values()) == pytest.approx(1.0), importance


def test_reproduce_retrains_from_the_recorded_inputs_and_the_metrics_match(trained, monkeypatch):
    result = driftline(["reproduce", "--name", "it", "--version", "1"], trained["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metrics match" in result.stdout
    for metric in ("auc", "brier", "log_loss", "ece"):
        assert metric in result.stdout
    changed = [line for line in result.stdout.splitlines() if line.startswith("changed since training")]
    assert not [line for line in changed if "data_sha256" in line or "config_sha256" in line or "uv_lock" in line], (
        changed
    )
    client = _client(trained, monkeypatch)
    assert [str(v.version) for v in client.search_model_versions("name='driftline-it'")] == ["1"], (
        "reproduce must not register"
    )


def test_reproduce_on_other_data_says_what_changed_and_fails(trained):
    other = trained["folder"] / "other.csv"
    make_labelled_series(n_rows=1500, seed=12).to_csv(other, index=False)
    result = driftline(["reproduce", "--name", "it", "--version", "1", "--data", str(other)], trained["env"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DO NOT match" in result.stdout and "<- differs" in result.stdout
    assert "changed since training: driftline.data_sha256" in result.stdout


def test_reproduce_of_an_unknown_version_is_one_clear_line(trained):
    result = driftline(["reproduce", "--name", "it", "--version", "9"], trained["env"])
    assert result.returncode == 2
    assert "driftline-it has no version 9; its versions: 1 (" in result.stderr and "Traceback" not in result.stderr


def _post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _exact_split(frame) -> dict:
    """A frame as MLflow's ``dataframe_split`` with every float exact (Python's JSON writes shortest
    round-trip floats; pandas' to_json keeps 10 digits, which moves a value across a tree's split
    threshold now and then, and the served probability with it)."""
    data = [
        [value.item() if hasattr(value, "item") else value for value in row] for row in frame.itertuples(index=False)
    ]
    return {"columns": list(frame.columns), "data": data}


def test_champion_serves_through_mlflow_models_serve(trained, monkeypatch):
    client = _client(trained, monkeypatch)
    run_id = trained["summary"]["run_id"]
    sample = registry.load_run_frame(run_id, "reference/sample.parquet")
    features = mlflow.artifacts.load_dict(f"runs:/{run_id}/features.json")
    rows = sample[features].head(50)
    local = mlflow.pyfunc.load_model("models:/driftline-it@champion").predict(rows)
    assert str(client.get_model_version_by_alias("driftline-it", "champion").version) == "1"

    with servers.model_server("models:/driftline-it@champion", trained["folder"] / "serve", trained["env"]) as url:
        status, body = _post(f"{url}/invocations", {"dataframe_split": _exact_split(rows)})
        assert status == 200, body
        served = body["predictions"]
        assert len(served) == len(rows)
        probabilities = np.array([row["probability"] for row in served])
        np.testing.assert_allclose(probabilities, local["probability"].to_numpy(), rtol=0, atol=1e-9)
        assert [row["prediction"] for row in served] == local["prediction"].tolist()

        # A request without a feature the model needs is refused with a message, not a 500.
        status, body = _post(f"{url}/invocations", {"dataframe_split": _exact_split(rows.drop(columns=features[0]))})
        assert status == 400 and features[0] in json.dumps(body), body


def test_explanations_of_the_champion_are_reproducible_from_its_version(trained, monkeypatch):
    """Scoring with ``explain`` twice on the registered champion (the flow behind `driftline score --explain K`;
    test_cli runs the flag): the same contributions, adding up to its base model's margin, which its
    calibrator maps to the scored probability."""
    from driftline.errors import ConfigError
    from flows.scoring import score_batch

    data, folder = trained["folder"] / "labelled.csv", trained["folder"] / "explained"
    _client(trained, monkeypatch)
    monkeypatch.setenv("DRIFTLINE_HOME", trained["env"]["DRIFTLINE_HOME"])
    model = registry.load_estimator("models:/driftline-it/1")
    n = len(model.feature_names_in_)
    runs = [
        score_batch(data=str(data), out=str(folder / f"{i}.parquet"), name="it", target_col="y", explain=n)
        for i in (1, 2)
    ]
    first, second = (pd.read_parquet(run["out"]) for run in runs)

    assert len(first) == runs[0]["rows_scored"] > 1000 and runs[0]["explain"] == n
    explained = [c for c in first.columns if c.startswith("explain_")]
    assert len(explained) == 2 * n + 3
    pd.testing.assert_frame_equal(first[explained], second[explained], check_exact=True)
    assert set(first["explain_1_feature"]) <= set(model.feature_names_in_)
    # Every feature (K = n): contributions + base = the base model's margin ...
    values = first[[f"explain_{i}_value" for i in range(1, n + 1)]].sum(axis=1)
    np.testing.assert_allclose(values + first["explain_base"], first["explain_margin"], rtol=0, atol=1e-6)
    # ... and the registered version's calibrator (then its shrinkage) maps that margin to the probability it scored.
    margin = first["explain_margin"].to_numpy()
    p_base = 1 / (1 + np.exp(-margin)) if (first["explain_space"] == "log-odds").all() else margin
    np.testing.assert_allclose(model.map_probability(p_base), first["probability"], rtol=0, atol=1e-6)

    with pytest.raises(ConfigError, match=rf"--explain {n + 1}: K must be between 1 and {n}"):
        score_batch(data=str(data), out=str(folder / "c.csv"), name="it", target_col="y", explain=n + 1)
