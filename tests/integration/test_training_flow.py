"""The training flow on a real (temporary) Prefect API with MLflow in a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from driftline.adapters import registry
from driftline.errors import ConfigError, ValidationFailed
from tests.integration.conftest import run_log

pytestmark = pytest.mark.slow


def _train(prefect_api: str, **params):
    from flows.training import train_and_promote

    return train_and_promote(**params)


LABELLED = {"target": "label", "target_col": "y"}


def test_first_run_registers_challenger_and_champion(prefect_api, tracking, fast_config, labelled_csv):
    # With the Evidently report of training vs hold-out (the default; the fast test config skips it).
    # With calibration.require_edge on (off by default): a family with real signal shows its edge and stays.
    config = yaml.safe_load(fast_config.read_text())
    config = {**config, "drift": {**config.get("drift", {}), "training_report": True}}
    fast_config.write_text(yaml.safe_dump({**config, "calibration": {"require_edge": 0.95}}))
    summary = _train(prefect_api, config_file=str(fast_config), data=str(labelled_csv), **LABELLED)

    assert summary["model_name"] == "driftline-it"
    assert summary["model_version"] == "1"
    assert summary["decision"] == "promote", summary["reasons"]
    assert summary["aliases"] == ["challenger", "champion"]
    assert (summary["champion_version_before"], summary["champion_version_after"]) == (None, "1")
    assert summary["data_path"]["path"] == "memory"
    assert "<= scale.streaming_above_cells" in summary["data_path"]["reason"]
    comparison = summary["comparison"]
    # A first model faces the best naive baseline of the walk-forward, refitted on the development rows.
    baselines = summary["baselines"]
    assert set(baselines) == {"base_rate", "persistence", "lagged_labels"} and not set(baselines) & set(
        summary["families"]
    )
    assert summary["best_baseline"] == min(baselines, key=lambda b: baselines[b]["log_loss"])
    assert comparison["baseline"] == f"best baseline {summary['best_baseline']}" and comparison["metric"] == "log_loss"
    assert comparison["ci_low"] <= comparison["diff"] <= comparison["ci_high"] < 0
    # calibration.require_edge: the challenger family beat the base rate on the walk-forward by more than chance.
    edge = summary["edge"]
    assert edge["family"] == summary["selected_family"] and edge["shown"] and edge["high"] < 0
    assert summary["rows_in"] == summary["rows_clean"] == 1500
    assert summary["metrics"]["brier_skill"] > 0.1
    assert len(summary["folds"]) == 3
    # Calibration out of sample: each fold's calibrator, the worst fold's ECE, and the walk-forward ECE gate.
    assert all(fold["calibration"] for fold in summary["folds"])
    assert summary["metrics"]["ece_worst_fold"] == max(fold["ece"] for fold in summary["folds"])
    assert any(r.startswith("PASS walk-forward-ece-cap: pooled walk-forward ECE") for r in summary["reasons"]), summary[
        "reasons"
    ]
    # A deployed run has no terminal: its log in the Prefect UI ends with what the command would print.
    from driftline.report import render_summary

    flow_run = MlflowClient().get_run(summary["run_id"]).data.tags["prefect.flow_run_id"]
    told = render_summary(summary)
    assert run_log(prefect_api, flow_run, told).count(told) == 1

    client = MlflowClient()
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    for key in (
        "auc",
        "brier",
        "log_loss",
        "ece",
        "ece_worst_fold",
        "logreg.brier",
        "lightgbm.brier",
        "brier_uncalibrated",
        "baseline.persistence.log_loss",
        "edge.ci_high",
    ):
        assert key in run.data.metrics, key
    assert run.data.metrics["brier"] == pytest.approx(summary["metrics"]["brier"])
    assert run.data.tags["driftline.data_sha256"] == summary["data_hash"]
    assert run.data.params["splits.n_splits"] == "3"
    # What the challenger learnt with, library defaults included: its own family's parameters.
    learnt = {k: v for k, v in run.data.params.items() if k.startswith("challenger.")}
    assert learnt and all(k.startswith("challenger.") for k in learnt), sorted(run.data.params)
    assert run.inputs.dataset_inputs, "dataset input with hash was not logged"
    dataset = run.inputs.dataset_inputs[0].dataset
    assert summary["data_hash"].startswith(dataset.digest)
    assert '"name": "x0"' in dataset.schema, dataset.schema

    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{summary['run_id']}'"
    )
    assert sorted(c.data.tags["driftline.fold"] for c in children) == ["1", "2", "3"]
    assert all("logreg.auc" in c.data.metrics for c in children)

    artifacts = {a.path for a in client.list_artifacts(summary["run_id"], "plots")}
    assert artifacts == {
        f"plots/{name}.png"
        for name in ("reliability", "roc", "precision_recall", "metrics_per_fold", "feature_importance", "shap_summary")
    }  # no equity curve: a label target has no returns
    importance = mlflow.artifacts.load_dict(f"runs:/{summary['run_id']}/feature_importance.json")
    # The label depends on x0 and x1 (make_labelled_series): the model must find them, and so must SHAP.
    assert set(list(importance)[:2]) == {"x0", "x1"}, importance
    assert sum(importance.values()) == pytest.approx(1.0)
    shap_importance = mlflow.artifacts.load_dict(f"runs:/{summary['run_id']}/shap_importance.json")
    assert set(list(shap_importance)[:2]) == {"x0", "x1"} and set(shap_importance) == set(importance), shap_importance
    report = mlflow.artifacts.download_artifacts(f"runs:/{summary['run_id']}/evidently/drift_report.html")
    html = Path(report).read_text(encoding="utf-8")
    assert "Dataset Drift" in html and '"x0"' in html and "probability" in html  # training vs hold-out, scores included
    assert {a.path for a in client.list_artifacts(summary["run_id"], "evidently")} == {
        "evidently/drift_report.html",
        "evidently/drift_report.json",
    }
    assert summary["links"] == {}  # a local store has no UI address; the markdown says how to open it

    champion = client.get_model_version_by_alias("driftline-it", "champion")
    assert str(champion.version) == "1"
    assert champion.tags["driftline.run_id"] == summary["run_id"]
    logged = mlflow.artifacts.load_dict(f"runs:/{summary['run_id']}/summary.json")
    assert logged["model_version"] == "1"
    model = mlflow.pyfunc.load_model("models:/driftline-it@challenger")
    assert model.metadata.get_input_schema().input_names() == logged_features(client, summary["run_id"])
    # The default LightGBM learns on a logistic regression's log-odds (models.linear_base) and wins here: the
    # registered pair scores through pyfunc, and its SHAP (linear + TreeSHAP) adds up to its margin.
    from driftline.explain import base_margin, explain_model
    from driftline.features import LEVEL_COLUMN, model_inputs
    from driftline.models import LinearBaseClassifier

    assert summary["selected_family"] == "lightgbm", summary["selection"]
    calibrated = model.unwrap_python_model().model
    assert isinstance(calibrated.base_estimator_, LinearBaseClassifier)
    sample = registry.load_run_frame(summary["run_id"], "reference/sample.parquet")
    rows = sample[logged_features(client, summary["run_id"])].head(50)
    np.testing.assert_allclose(model.predict(rows)["probability"], calibrated.predict_proba(rows)[:, 1], atol=1e-12)
    explained = explain_model(calibrated, rows)
    # The base model's inputs: every feature but the series level (driftline.features.model_inputs).
    assert LEVEL_COLUMN in rows.columns and LEVEL_COLUMN not in explained.features
    np.testing.assert_allclose(
        explained.margin, base_margin(calibrated.base_estimator_, model_inputs(rows))[0], atol=1e-9
    )


def test_walk_forward_reports_progress_and_logs_each_search_to_mlflow(prefect_api, tracking, fast_config, tmp_path):
    """One run with ``models.tuning`` on (2 trials: a few seconds): the progress artifact, and every search
    as an MLflow child run: one per fold and family under the fold's run, the challenger's under the run."""
    import httpx

    from driftline.synthetic import make_labelled_series

    # Data no run has seen (the result cache outlives test sessions): the walk-forward runs, it is not cached.
    data = tmp_path / "unique.csv"
    make_labelled_series(n_rows=1500, seed=int.from_bytes(os.urandom(4), "little")).to_csv(data, index=False)
    config = yaml.safe_load(fast_config.read_text())
    config["models"]["tuning"] = {"enabled": True, "trials": 2, "min_validation_rows": 20}  # fold 1's window: ~40
    fast_config.write_text(yaml.safe_dump(config))
    summary = _train(prefect_api, config_file=str(fast_config), data=str(data), name="progress", **LABELLED)

    client = MlflowClient()
    experiment = client.get_run(summary["run_id"]).info.experiment_id
    children = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{summary['run_id']}'")
    folds = {c.data.tags["driftline.fold"]: c for c in children}
    assert sorted(folds) == ["1", "2", "3", "challenger"]
    assert folds["challenger"].info.run_name == f"tune-{summary['selected_family']}"
    for fold in ("1", "2", "3"):
        searches = client.search_runs(
            [experiment], filter_string=f"tags.mlflow.parentRunId = '{folds[fold].info.run_id}'"
        )
        assert sorted(s.info.run_name for s in searches) == ["tune-lightgbm", "tune-logreg"]
        for search in searches:
            assert search.data.tags["driftline.fold"] == fold and search.data.metrics["trials"] == 2
            assert search.data.metrics["inner_log_loss"] <= search.data.metrics["inner_log_loss_configured"]
        lightgbm = next(s for s in searches if s.info.run_name == "tune-lightgbm")
        assert {"num_leaves", "learning_rate", "inner_validation_rows"} <= set(lightgbm.data.params)
    # Explicit limit/offset/sort: prefect 3.8.8's client sends nulls that its own server refuses.
    query = {
        "artifacts": {"key": {"any_": ["walk-forward-progress"]}},
        "limit": 10,
        "offset": 0,
        "sort": "CREATED_DESC",
    }
    found = httpx.post(f"{prefect_api}/artifacts/filter", json=query, timeout=30).raise_for_status().json()
    assert found and found[0]["type"] == "progress"
    assert (
        float(found[0]["data"]) == 100.0 and found[0]["description"] == "walk-forward: 15 of 15 fits done"
    )  # 3 folds x (2 families + 3 baselines)


def logged_features(client: MlflowClient, run_id: str) -> list[str]:
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/features.json")


def test_without_a_walk_forward_edge_the_challenger_is_the_base_rate_and_is_not_promoted(
    prefect_api, tracking, fast_config, labelled_csv, tmp_path
):
    """Labels drawn independently of every feature: no family can beat the base rate but by chance, so with
    calibration.require_edge the challenger predicts the base rate, is registered, and is rejected."""
    fast_config.write_text(
        yaml.safe_dump({**yaml.safe_load(fast_config.read_text()), "calibration": {"require_edge": 0.95}})
    )
    noise = pd.read_csv(labelled_csv)
    noise["y"] = np.random.default_rng(3).binomial(1, 0.4, len(noise))
    noise_csv = tmp_path / "noise.csv"
    noise.to_csv(noise_csv, index=False)
    summary = _train(prefect_api, config_file=str(fast_config), data=str(noise_csv), name="it-noise", **LABELLED)

    edge = summary["edge"]
    assert edge["family"] == summary["selected_family"] and not edge["shown"] and edge["high"] >= 0
    assert "no walk-forward edge over the base rate" in summary["selection"]
    assert summary["decision"] == "reject" and summary["aliases"] == ["challenger"], summary["reasons"]
    assert summary["champion_version_after"] is None
    assert any(r.startswith("FAIL log_loss-better") for r in summary["reasons"]), summary["reasons"]
    client = MlflowClient()
    assert client.get_run(summary["run_id"]).data.metrics["edge.ci_high"] == pytest.approx(edge["high"])
    # The registered challenger scores every row with the development rows' smoothed positive share.
    model = mlflow.pyfunc.load_model("models:/driftline-it-noise@challenger")
    sample = registry.load_run_frame(summary["run_id"], "reference/sample.parquet")
    probability = model.predict(sample[logged_features(client, summary["run_id"])])["probability"]
    assert np.ptp(probability) == 0 and abs(probability.iloc[0] - noise["y"].mean()) < 0.03


def test_second_run_keeps_champion_and_moves_challenger(prefect_api, tracking, fast_config, labelled_csv):
    first = _train(prefect_api, config_file=str(fast_config), data=str(labelled_csv), **LABELLED)
    second = _train(prefect_api, config_file=str(fast_config), data=str(labelled_csv), force=True, **LABELLED)

    assert (first["model_version"], second["model_version"]) == ("1", "2")
    assert second["decision"] == "keep-champion"
    assert second["aliases"] == ["challenger"]
    assert (second["champion_version_before"], second["champion_version_after"]) == ("1", "1")
    # The same data and seed give the same model: compared on the same rows, no difference at all.
    assert second["comparison"]["baseline"] == "champion v1"
    assert second["comparison"]["diff"] == second["comparison"]["ci_low"] == second["comparison"]["ci_high"] == 0
    assert any(r.startswith("FAIL log_loss-better") for r in second["reasons"])
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("driftline-it", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("driftline-it", "challenger").version) == "2"
    # drift.training_report: false (the fast config) logs no Evidently report.
    assert client.list_artifacts(second["run_id"], "evidently") == []
    # Same data and seed: the same data hash and the same out-of-sample numbers.
    assert first["data_hash"] == second["data_hash"]
    assert first["metrics"] == pytest.approx(second["metrics"])


def test_a_clearly_better_challenger_displaces_the_champion(prefect_api, tracking, fast_config, labelled_csv, tmp_path):
    """v1 is trained where x0 (the stronger of the label's two drivers) is noise; v2 on the same rows with the
    real x0. On the hold-out (the same rows for both) v2's log loss is lower with confidence: the flow itself
    promotes it. (An identical model does not displace the champion: test_second_run_keeps_champion...)."""

    real = pd.read_csv(labelled_csv)
    blind = real.copy()
    blind["x0"] = np.random.default_rng(5).standard_normal(len(blind))
    blind_csv = tmp_path / "blind.csv"
    blind.to_csv(blind_csv, index=False)
    # A plain LightGBM (no linear base): with x0 noise, the fast config's 60 trees at the linear base's rate
    # barely move the logistic regression, whose first fold is miscalibrated on this short series (pooled
    # walk-forward ECE 0.091 against the 0.08 cap, plain trees 0.067): v1 would rightly not be promoted.
    tree = yaml.safe_load(fast_config.read_text())
    tree["models"] = {**tree["models"], "linear_base": []}
    fast_config.write_text(yaml.safe_dump(tree))

    first = _train(prefect_api, config_file=str(fast_config), data=str(blind_csv), **LABELLED)
    assert (first["model_version"], first["champion_version_after"]) == ("1", "1"), first["reasons"]
    second = _train(prefect_api, config_file=str(fast_config), data=str(labelled_csv), **LABELLED)

    assert second["model_version"] == "2" and second["decision"] == "promote", second["reasons"]
    assert (second["champion_version_before"], second["champion_version_after"]) == ("1", "2")
    comparison = second["comparison"]
    assert comparison["baseline"] == "champion v1" and comparison["ci_high"] < 0
    assert all(r.startswith("PASS") for r in second["reasons"]), second["reasons"]
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("driftline-it", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("driftline-it", "previous-champion").version) == "1"

    # The same model name asked to predict another label: refused before any work, champion untouched.
    renamed = tmp_path / "renamed.csv"
    real.rename(columns={"y": "z"}).to_csv(renamed, index=False)
    with pytest.raises(
        ConfigError, match=r"champion \(version 2\) predicts a different question.*label column 'y' -> 'z'.*--name it-2"
    ):
        _train(prefect_api, config_file=str(fast_config), data=str(renamed), target="label", target_col="z")
    assert str(client.get_model_version_by_alias("driftline-it", "champion").version) == "2"
    assert {str(v.version) for v in client.search_model_versions("name='driftline-it'")} == {"1", "2"}


def test_pyfunc_model_returns_calibrated_probabilities(prefect_api, tracking, fast_config, ohlcv_csv):
    from driftline.config import load_config
    from driftline.features import build_features
    from driftline.ingest import load_data

    _train(prefect_api, config_file=str(fast_config), data=str(ohlcv_csv))
    config = load_config(fast_config, {"data.path": str(ohlcv_csv)})
    features = build_features(load_data(config.data).frame, config.features, config.target)

    model = mlflow.pyfunc.load_model("models:/driftline-it@challenger")
    scored = model.predict(features.X.tail(200))
    assert list(scored.columns) == ["probability", "prediction"]
    assert scored["probability"].between(0, 1).all()
    assert scored["probability"].nunique() > 10  # real scores, not a constant
    threshold = float(MlflowClient().get_model_version("driftline-it", "1").tags["driftline.threshold"])
    assert 0.3 <= threshold <= 0.7
    assert (scored["prediction"] == (scored["probability"] >= threshold)).all()


def test_a_panel_above_the_streaming_threshold_trains_out_of_core(prefect_api, tracking, fast_config, ohlcv_csv):
    """Above ``scale.streaming_above_cells`` the flow builds a feature store per symbol and streams the
    walk-forward and the challenger (random forest, which has no streaming learner, is left out and said
    so; LightGBM streams as a plain booster, without its linear base). Against the same panel in memory with
    plain boosters too (``models.linear_base: []``): the same folds and selected family, the trees' pooled metrics
    and hold-out scores equal to 1e-6, logreg's (SGD against L-BFGS) within 0.01; the registered model
    scores like any other and the store is removed."""
    import httpx

    from driftline.config import Settings, load_config
    from driftline.features import build_features
    from driftline.ingest import load_data

    memory = _train(
        prefect_api, config_file=str(fast_config), data=str(ohlcv_csv), overrides={"models.linear_base": []}
    )
    families = ["logreg", "lightgbm", "random_forest"]
    streamed = _train(
        prefect_api,
        config_file=str(fast_config),
        data=str(ohlcv_csv),
        name="it-streamed",
        overrides={"scale.streaming_above_cells": 1000, "models.families": families},
    )
    path = streamed["data_path"]
    assert path["path"] == "streaming" and "> scale.streaming_above_cells 1,000" in path["reason"], path
    assert "streaming leaves out models.families ['random_forest'] (no streaming learner)" in path["reason"]
    assert "the linear base of models.linear_base ['lightgbm'] (plain boosters)" in path["reason"]
    assert memory["data_path"]["path"] == "memory"
    assert set(streamed["families"]) == set(memory["families"]) == {"logreg", "lightgbm"}
    assert streamed["rows_in"] == memory["rows_in"] == 1800 and streamed["rows_quarantined"] == 0
    assert [(f["train_end"], f["test_start"], f["n_test"]) for f in streamed["folds"]] == [
        (f["train_end"], f["test_start"], f["n_test"]) for f in memory["folds"]
    ]
    assert (streamed["data_start"], streamed["training_cutoff"]) == (memory["data_start"], memory["training_cutoff"])
    assert streamed["selected_family"] == memory["selected_family"]
    for key in ("log_loss", "auc", "brier"):
        assert streamed["families"]["lightgbm"][key] == pytest.approx(memory["families"]["lightgbm"][key], abs=1e-6)
        assert streamed["families"]["logreg"][key] == pytest.approx(memory["families"]["logreg"][key], abs=0.01)
    if streamed["selected_family"] == "lightgbm":  # the same challenger: the same hold-out scores
        for key, value in memory["evaluation"]["challenger"].items():
            assert streamed["evaluation"]["challenger"][key] == pytest.approx(value, abs=1e-6), key
    assert streamed["model_version"] == "1" and "challenger" in streamed["aliases"]
    assert streamed["decision"] in ("promote", "reject") and streamed["reasons"]
    assert not (Settings.from_env().run_dir(streamed["run_id"]) / "streamed").exists()
    key = {"key": {"any_": ["walk-forward-it-streamed"]}}
    query = {"artifacts": key, "limit": 1, "offset": 0, "sort": "CREATED_DESC"}
    [progress] = httpx.post(f"{prefect_api}/artifacts/filter", json=query, timeout=30).raise_for_status().json()
    assert progress["description"] == "walk-forward: 6 of 6 fits done"  # 3 folds x 2 families, no baselines
    artifacts = {a.path for a in MlflowClient().list_artifacts(streamed["run_id"], "plots")}
    assert {"plots/feature_importance.png", "plots/reliability.png", "plots/shap_summary.png"} <= artifacts, artifacts

    config = load_config(fast_config, {"data.path": str(ohlcv_csv)})
    features = build_features(load_data(config.data).frame, config.features, config.target)
    scored = mlflow.pyfunc.load_model("models:/driftline-it-streamed@challenger").predict(features.X.tail(200))
    assert scored["probability"].between(0, 1).all() and scored["probability"].nunique() > 10


def test_contract_failure_stops_before_training_and_registers_nothing(
    prefect_api, tracking, fast_config, ohlcv_csv, tmp_path
):
    frame = pd.read_csv(ohlcv_csv)
    frame.loc[[10, 500], "Close"] = -1.0
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    strict = tmp_path / "strict.yaml"
    tree = yaml.safe_load(fast_config.read_text())
    tree["contract"] = {**tree.get("contract", {}), "on_violation": "fail"}
    strict.write_text(yaml.safe_dump(tree))

    with pytest.raises(
        ValidationFailed, match=r"bad.csv: data contract failed: close: must be > 0 and <= 1e\+12: 2 rows"
    ):
        _train(prefect_api, config_file=str(strict), data=str(bad))

    client = MlflowClient()
    assert client.search_registered_models() == []
    (run,) = client.search_runs([client.get_experiment_by_name("driftline-it").experiment_id])
    assert run.info.status == "FAILED"
    assert "brier" not in run.data.metrics
    quarantine = pd.read_parquet(tracking / "runs" / run.info.run_id / "rows.parquet")
    assert len(quarantine) == 2
    assert quarantine["reason"].str.contains("close").all()


def test_a_streamed_run_that_fails_its_contract_keeps_the_quarantine_and_removes_the_store(
    prefect_api, tracking, fast_config, ohlcv_csv, tmp_path
):
    """On the streamed path the contract runs per symbol: the bad rows are quarantined per symbol, the run
    fails over all symbols (above max_quarantine_fraction), nothing is registered, and the run's canonical
    rows and feature store are removed; the quarantine stays."""
    frame = pd.read_csv(ohlcv_csv)
    frame.loc[[10, 500], "Close"] = -1.0
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    overrides = {"scale.streaming_above_cells": 1000, "contract.max_quarantine_fraction": 0.0001}
    failed = (
        r"bad.csv: data contract failed: 2 of 1800 rows \(0.1%\) were quarantined, above "
        r"contract.max_quarantine_fraction 0.0001; most rows: close: [^;]*: 2 rows, e.g. -1.0 \(line 12\), "
        r"-1.0 \(line 502\) \(symbol SYM0\)"
    )
    with pytest.raises(ValidationFailed, match=failed):
        _train(prefect_api, config_file=str(fast_config), data=str(bad), overrides=overrides)

    client = MlflowClient()
    assert client.search_registered_models() == []
    (run,) = client.search_runs([client.get_experiment_by_name("driftline-it").experiment_id])
    assert run.info.status == "FAILED"
    run_dir = tracking / "runs" / run.info.run_id
    assert not (run_dir / "streamed").exists()
    quarantined = pd.concat(pd.read_parquet(f) for f in sorted((run_dir / "quarantine").glob("symbol=*/rows.parquet")))
    assert len(quarantined) == 2 and quarantined["reason"].str.contains("close").all()
    # Each row with its file and line in bad.csv (the header is line 1), as the in-memory quarantine keeps them.
    assert sorted(quarantined["__source_line"].astype(int)) == [12, 502]
    assert set(quarantined["__source_object"]) == {"bad.csv"}


def test_rerun_on_the_same_data_config_and_code_registers_nothing(prefect_api, tracking, fast_config, labelled_csv):
    first = _train(prefect_api, config_file=str(fast_config), data=str(labelled_csv), **LABELLED)
    again = _train(prefect_api, config_file=str(fast_config), data=str(labelled_csv), **LABELLED)

    assert again["rerun_of"] == first["run_id"] and again["run_id"] != first["run_id"]
    assert again["model_version"] == first["model_version"] == "1"
    assert again["metrics"] == first["metrics"] and again["decision"] == first["decision"]
    client = MlflowClient()
    assert len(client.search_model_versions("name='driftline-it'")) == 1
    rerun = client.get_run(again["run_id"])
    assert rerun.info.status == "FINISHED" and rerun.data.tags["driftline.rerun_of"] == first["run_id"]
    # A config change that shapes the model is a different run.
    changed = fast_config.parent / "changed.yaml"
    changed.write_text(fast_config.read_text().replace("n_splits: 3", "n_splits: 4"))
    third = _train(prefect_api, config_file=str(changed), data=str(labelled_csv), **LABELLED)
    assert third["rerun_of"] is None and third["model_version"] == "2"
