"""One list of development steps: the training flow and ``reproduce`` both run ``driftline.pipeline.develop``."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import yaml

from driftline.config import load_config
from driftline.ingest import load_data
from driftline.pipeline import PlainSteps, Steps, develop, walk_forward_from_source
from driftline.synthetic import make_ohlcv_panel

ROOT = Path(__file__).resolve().parents[2]
STEPS = [
    "fit_to_rows",
    "check_contract",
    "apply_contract",
    "fit_windows",
    "build_features",
    "size_to_data",
    "hold_out",
    "walk_forward",
]


def _config(tmp_path: Path):
    data = tmp_path / "panel.csv"
    make_ohlcv_panel(n_symbols=2, n_days=700, seed=5).to_csv(data, index=False)
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "steps",
                "data": {"path": str(data)},
                "contract": {"min_rows_per_symbol": 100},
                "models": {"families": ["logreg"]},
                "drift": {"training_report": False},
            }
        )
    )
    return load_config(path)


class Recording(PlainSteps):
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def __getattribute__(self, name: str):
        attribute = super().__getattribute__(name)
        if name in STEPS:

            def record(*args):
                self.calls.append((name, args[-1]))  # every step's last argument is the config (or fit) it runs with
                return attribute(*args)

            return record
        return attribute


def test_develop_runs_the_steps_in_one_order_and_reproduce_gets_the_same_walk_forward(tmp_path):
    config = _config(tmp_path)
    loaded = load_data(config.data, need_target=config.target.needs_label, stage_root=tmp_path / "stage")
    steps = Recording()
    developed = develop(loaded, config, steps)
    assert [name for name, _ in steps.calls] == STEPS
    # The hold-out and the walk-forward use the sizes fitted to the data, the steps before them the config given.
    assert [c is developed.config for _, c in steps.calls] == [False] * 6 + [True, True]
    assert developed.config.splits.n_splits < config.splits.n_splits  # sized down: the check above is live
    reproduced = walk_forward_from_source(config, tmp_path / "stage-again").result
    assert reproduced.selected == developed.result.selected
    for family, metrics in developed.result.pooled.items():
        assert np.allclose(list(reproduced.pooled[family].values()), list(metrics.values()), equal_nan=True)


def test_the_training_flow_runs_every_step_of_the_list_and_no_step_of_its_own():
    """The flow's steps are the protocol's; the flow calls ``develop``, not the step tasks one by one."""
    from flows.training import TrainingSteps

    def public(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")}

    assert public(Steps) == public(PlainSteps) == public(TrainingSteps) == set(STEPS)
    tree = ast.parse((ROOT / "flows" / "training.py").read_text())
    flow = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train_and_promote")
    called = {n.func.id for n in ast.walk(flow) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    step_tasks = {"check_contract_task", "record_validation_task", "build_features_task", "size_to_data_task"}
    step_tasks |= {"fit_to_rows_task", "fit_windows_task"}
    assert "develop" in called and not called & (step_tasks | {"holdout_task", "walk_forward"})


def test_a_loaded_source_is_validated_one_way_in_training_and_scoring():
    """Training and scoring quote the source's own values (``validate_loaded``): no task or flow rebuilds them."""
    calls = []
    for folder in ("tasks", "flows"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    calls.append((path.relative_to(ROOT).as_posix(), node.func.id))
    assert not [c for c in calls if c[1] == "validate_frame"]
    assert {"tasks/data.py", "tasks/scoring.py"} <= {path for path, name in calls if name == "validate_loaded"}
    assert ("tasks/scoring.py", "scoring_contract") in calls  # no training-only minimum of rows per symbol


def test_a_real_yearly_country_panel_trains_as_written(tmp_path):
    """bokeh-sampledata's CO2 emissions per country, 1950-2012, as the package ships it (country, year as
    1950.0, emissions): the year is a time, the countries are the symbols (found by the rows), the six zero
    emissions and the two countries with under 10 clean years are set aside with their reasons, and the other
    countries go through the walk-forward on yearly-sized windows."""
    import gzip
    import shutil
    from importlib import resources

    from driftline.pipeline import validate_loaded

    shipped = Path(str(resources.files("bokeh_sampledata") / "_data" / "emissions.csv.gz"))
    with gzip.open(shipped, "rb") as raw, (tmp_path / "emissions.csv").open("wb") as out:
        shutil.copyfileobj(raw, out)
    windows = {"median_window": 10, "zscore_window": 10, "vol_short": 3, "vol_mid": 5, "vol_long": 10}
    windows |= {"macd_fast": 4, "macd_slow": 8, "macd_signal": 3, "return_windows": [1, 3, 5]}
    settings = {"data.path": str(tmp_path / "emissions.csv"), "target.kind": "direction", "target.horizon": 1}
    settings |= {f"features.{k}": v for k, v in windows.items()} | {"contract.min_rows_per_symbol": 10}
    settings |= {"splits.n_splits": 3, "evaluation.window": 10, "splits.min_train_size": 15}
    settings |= {"models.families": ["logreg"], "models.tuning.enabled": False}
    config = load_config(None, settings)
    loaded = load_data(config.data)
    assert loaded.columns.symbol == "country" and loaded.frame["symbol"].nunique() == 201
    assert loaded.frame["timestamp"].dt.year.min() == 1950 and (loaded.frame["timestamp"].dt.dayofyear == 1).all()
    report = validate_loaded(loaded, config.contract, "emissions")
    reasons = report.quarantined["reason"]
    assert reasons.str.startswith("symbol Lesotho: 4 clean rows").sum() == 4
    assert reasons.str.startswith("symbol Timor-Leste: 9 clean rows").sum() == 9
    assert reasons.str.startswith("close: must be > 0").sum() == 6
    developed = develop(loaded, config, PlainSteps())
    trained = set(developed.features.meta["symbol"])
    # 199 countries kept; the shortest lose every row to the feature windows' warm-up (194 have rows left).
    assert 190 <= len(trained) < 199 and not {"Lesotho", "Timor-Leste"} & trained
    assert len(developed.result.folds) == 3 and 0.5 < developed.result.pooled["logreg"]["auc"] < 0.7
