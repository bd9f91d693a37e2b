"""A label series' text columns of a few values (a regime, a weekday's name, a sensor's status) are features: a 0/1
column per value (``ingest.category_features``). Before, each was left out with a warning asking the user to
encode it as numbers."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from driftline.config import DataConfig, load_config
from driftline.errors import DataError
from driftline.features import scoring_rows
from driftline.ingest import CATEGORY_LIMIT, load_data
from driftline.pipeline import walk_forward_from_source
from driftline.synthetic import make_labelled_series
from driftline.timeline import as_source_columns


def _regime_series(n_rows: int = 1200, seed: int = 11) -> pd.DataFrame:
    """y depends mostly on a text column ``regime``, written as people write it (a stray space, mixed case)."""
    frame = make_labelled_series(n_rows=n_rows, n_features=2, seed=seed)
    rng = np.random.default_rng(seed)
    regime = rng.choice(["calm", "storm", "normal"], size=n_rows)
    logit = np.select([regime == "storm", regime == "calm"], [2.0, -2.0], 0.0) + 0.3 * frame["x0"]
    frame["y"] = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["regime"] = np.where(np.arange(n_rows) % 7 == 0, [f" {r.title()} " for r in regime], regime)
    frame.loc[5, "regime"] = None
    return frame


def _load(path):
    return load_data(DataConfig(path=str(path), target_col="y"), need_target=True)


def test_a_text_column_of_a_few_values_is_a_0_1_feature_per_value(tmp_path):
    frame = _regime_series()
    frame["note"] = [f"free text {i}" for i in range(len(frame))]  # an id or a comment: too many values
    frame.to_csv(tmp_path / "regimes.csv", index=False)
    loaded = _load(tmp_path / "regimes.csv")
    assert loaded.columns.categories == ("regime",)
    ones = loaded.frame[["regime=calm", "regime=normal", "regime=storm"]]
    written = frame["regime"].str.strip().str.lower()
    for value in ("calm", "normal", "storm"):  # " Storm " and "storm" are one value
        np.testing.assert_array_equal(ones[f"regime={value}"].to_numpy(), (written == value).to_numpy(float))
    assert ones.iloc[5].sum() == 0  # no value: none of them
    [warning] = [w for w in loaded.warnings if "not used" in w]
    assert f"'note' (text, {len(frame):,} values)" in warning and f"text columns of 2 to {CATEGORY_LIMIT} values" in (
        warning
    )


def test_a_number_column_with_a_stray_text_value_is_a_feature_and_the_stray_is_named_with_its_line(tmp_path):
    """One typo (12O for 120) or note ("error") in a column of numbers, or a mark for a missing value ("n.a."),
    made the whole column text: left out of training, or a 0/1 feature per number when it has few values, and a
    scored batch holding one failed with "the model needs features this data cannot produce". Strays (at most 1%)
    and up to two marks without digits are missing values, named with their lines."""
    frame = _regime_series()
    n = len(frame)
    rng = np.random.default_rng(5)
    frame["power"] = rng.integers(80, 300, n).astype(str).astype(object)
    frame.loc[1100, "power"] = "12O"  # late in the file
    frame["gear"] = rng.integers(1, 6, n).astype(str).astype(object)  # 5 values: not a category
    frame.loc[[40, 41], "gear"] = " error "
    frame["depth"] = np.where(np.arange(n) % 20 == 0, "n.a.", frame["x0"].round(2).astype(str))  # 5%: a mark
    words = np.array(["low", "high", "n/k", "see note", "tbd"], dtype=object)
    frame["remark"] = np.where(
        np.arange(n) % 10 == 0, words[(np.arange(n) // 10) % 5], frame["x1"].round(1).astype(str)
    )
    frame.to_csv(tmp_path / "ride.csv", index=False)
    loaded = _load(tmp_path / "ride.csv")
    assert loaded.columns.extra == ("x0", "x1", "power", "gear", "depth")  # the file's column order
    assert loaded.columns.categories == ("regime",)  # remark: numbers beside five words (10%) is text
    assert len(loaded.frame) == n  # every row kept
    by_row = loaded.frame.sort_index()
    assert np.isnan(by_row.loc[1100, "power"]) and by_row["power"].notna().sum() == n - 1
    assert by_row.loc[[40, 41], "gear"].isna().all() and by_row.loc[42, "gear"] == float(frame.loc[42, "gear"])
    assert by_row["depth"].isna().sum() == n // 20 and by_row.loc[1, "depth"] == pytest.approx(frame.loc[1, "x0"], 0.01)
    power, gear, depth = (w for w in loaded.warnings if "not a number" in w)
    assert f"ride.csv: column 'power': 1 of {n:,} values is not a number: '12O' (line 1102); read as missing" in power
    assert "features.carry_limit" in power
    assert f"column 'gear': 2 of {n:,} values are not a number: 'error' (2 rows: line 42, line 43);" in gear
    assert f"column 'depth': {n // 20} of {n:,} values are not a number: 'n.a.' ({n // 20} rows: line 2, line 22, " in (
        depth
    )
    [unused] = [w for w in loaded.warnings if "not used" in w]
    assert "'remark' (text" in unused and "'power'" not in unused and "'depth'" not in unused


def test_the_category_is_what_the_models_learn_from(tmp_path):
    frame = _regime_series()
    frame.to_csv(tmp_path / "regimes.csv", index=False)
    frame.drop(columns="regime").to_csv(tmp_path / "without.csv", index=False)
    auc = {}
    for name in ("regimes", "without"):
        config = load_config(
            None,
            {
                "target.kind": "label",
                "data.path": str(tmp_path / f"{name}.csv"),
                "data.target_col": "y",
                "models.families": ["logreg"],
                "splits.n_splits": 3,
                "evaluation.window": 200,
            },
        )
        auc[name] = walk_forward_from_source(config, tmp_path / f"stage-{name}").result.pooled["logreg"]["auc"]
    assert auc["regimes"] > 0.75 and auc["regimes"] > auc["without"] + 0.15, auc


def test_rows_to_score_without_a_value_the_model_knows_score_it_as_0(tmp_path, caplog):
    frame = _regime_series()
    frame.to_csv(tmp_path / "regimes.csv", index=False)
    trained = _load(tmp_path / "regimes.csv")
    config = load_config(None, {"target.kind": "label", "data.target_col": "y"})
    names = ["x0", "x1", "regime=calm", "regime=normal", "regime=storm"]
    later = frame.tail(60).copy()
    later["regime"] = later["regime"].where(~later["regime"].str.strip().str.lower().eq("calm"), "frozen")
    later.to_csv(tmp_path / "later.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="driftline.features"):
        rows, _ = scoring_rows(_load(tmp_path / "later.csv").frame, config.features, config.target, names)
    assert len(rows) > 0 and (rows["regime=calm"] == 0).all()  # "frozen": a value it never saw, none it knows
    frozen = int(later["regime"].eq("frozen").sum())
    assert (
        f"values the model never saw in training, scored as none of its values: regime 'frozen' ({frozen} rows)"
        in caplog.text
    )
    assert set(rows["regime=storm"].unique()) == {0.0, 1.0}
    later.drop(columns="regime").to_csv(tmp_path / "no_regime.csv", index=False)
    with pytest.raises(DataError, match=r"the model needs features this data cannot produce: \['regime=calm'"):
        scoring_rows(_load(tmp_path / "no_regime.csv").frame, config.features, config.target, names)
    assert "regime=storm" in trained.frame.columns


def test_a_combined_source_writes_the_category_back_as_its_column(tmp_path):
    # A retrain on the champion's source plus monitored rows (tasks/monitoring.retrain_source_task).
    _regime_series().to_csv(tmp_path / "regimes.csv", index=False)
    loaded = _load(tmp_path / "regimes.csv")
    c = loaded.columns
    written = as_source_columns(loaded.frame, c)
    assert "regime" in written.columns and not any("=" in str(name) for name in written.columns)
    written.to_parquet(tmp_path / "combined.parquet", index=False)
    again = _load(tmp_path / "combined.parquet")
    features = [n for n in loaded.frame.columns if n.startswith("regime=")]
    pd.testing.assert_frame_equal(
        again.frame[features].reset_index(drop=True), loaded.frame[features].reset_index(drop=True)
    )


def test_a_symbol_found_by_its_rows_is_not_a_category(tmp_path):
    a, b = _regime_series(300, seed=1), _regime_series(300, seed=2)
    panel = pd.concat([a.assign(station="north"), b.assign(station="south")])
    panel.to_csv(tmp_path / "stations.csv", index=False)
    loaded = _load(tmp_path / "stations.csv")
    assert loaded.columns.symbol == "station" and loaded.columns.categories == ("regime",)


def test_a_pandas_categorical_saved_to_parquet_is_a_category_too(tmp_path):
    # pandas keeps a categorical as a dictionary column in Parquet; before, it was "not used: 'regime' (text)".
    frame = _regime_series()
    frame["regime"] = frame["regime"].str.strip().str.lower().astype("category")
    frame["y"] = frame["y"].map({1: "storm", 0: "calm"}).astype("category")
    frame.to_parquet(tmp_path / "regimes.parquet", index=False)
    loaded = load_data(
        DataConfig(path=str(tmp_path / "regimes.parquet"), target_col="y", positive_label="storm"), need_target=True
    )
    assert loaded.columns.categories == ("regime",) and loaded.warnings == ()
    assert loaded.frame[["regime=calm", "regime=normal", "regime=storm"]].sum(axis=1).tolist() == [
        0.0 if pd.isna(v) else 1.0 for v in frame["regime"]
    ]
    np.testing.assert_array_equal(loaded.frame["target"].to_numpy(), (frame["y"] == "storm").to_numpy(float))


def test_columns_the_user_excludes_are_read_as_if_the_source_had_none(tmp_path):
    """``data.exclude_cols``: a batch id of a few values would be a category, a column that leaks the label a
    feature; excluded (by its name as written or normalised), neither is read, used or warned about."""
    frame = _regime_series()
    frame["batch"] = [f"B{i // 100:03d}" for i in range(len(frame))]  # 12 values: a category without it
    frame["Outcome Amount"] = frame["y"] * 10.0  # known only after the label: a leak
    frame.to_csv(tmp_path / "regimes.csv", index=False)
    plain = _load(tmp_path / "regimes.csv")
    assert "batch" in plain.columns.categories and "Outcome Amount" in plain.columns.extra

    def load(*names, **data):
        return load_data(
            DataConfig(path=str(tmp_path / "regimes.csv"), target_col="y", exclude_cols=names, **data), need_target=True
        )

    loaded = load("batch", "outcome_amount")
    assert loaded.columns.categories == ("regime",) and "Outcome Amount" not in loaded.columns.extra
    assert not [c for c in loaded.frame.columns if c.startswith("batch") or "outcome" in c.lower()]
    assert not [w for w in loaded.warnings if "not used" in w]
    assert "regime=storm" in loaded.frame.columns  # the rest as before
    with pytest.raises(DataError, match=r"data.exclude_cols names 'bacth', not a column; columns are \["):
        load("bacth")
    with pytest.raises(DataError, match=r"column 'y' is both data.target_col and in data.exclude_cols"):
        load("y")
    assert DataConfig(exclude_cols="batch").exclude_cols == ("batch",)  # --set data.exclude_cols=batch
    # By its feature's name too, as the leak warning names it: a label series' "High" is the feature high_feature.
    frame.assign(High=frame["x0"] * 2).to_csv(tmp_path / "regimes.csv", index=False)
    assert "high_feature" in _load(tmp_path / "regimes.csv").frame.columns
    assert "high_feature" not in load("high_feature", "batch").frame.columns


def test_a_column_that_orders_the_label_almost_perfectly_is_named_as_a_possible_leak(tmp_path, caplog):
    """A value known only after the label (a settled amount, a status set later) makes every score look better
    than it will be: a label series' own column that alone orders the label almost perfectly is named, with the
    key that leaves it out; columns of an honest signal are not."""
    frame = _regime_series()
    rng = np.random.default_rng(0)
    frame["Settled Amount"] = frame["y"] * 100 + rng.uniform(0, 5, len(frame))  # known after the outcome
    frame["status"] = np.where(frame["y"] == 1, "paid", "open")  # a category, set with the outcome
    frame.to_csv(tmp_path / "leaky.csv", index=False)
    config = load_config(
        None, {"data.path": str(tmp_path / "leaky.csv"), "data.target_col": "y", "target.kind": "label"}
    )
    with caplog.at_level(logging.WARNING, logger="driftline.features"):
        walk_forward_from_source(config)
    [warning] = [r.getMessage() for r in caplog.records if "almost perfectly" in r.getMessage()]
    assert "'settled_amount' (AUC 1.000)" in warning and "'status=open' (AUC 1.000)" in warning
    assert warning.endswith("leave it out with --set data.exclude_cols=[settled_amount, status]")
    assert "regime" not in warning and "'x0'" not in warning  # the honest signal (regime AUC ~0.85) is not named
    caplog.clear()
    left_out = config.model_copy(
        update={"data": config.data.model_copy(update={"exclude_cols": ("settled_amount", "status")})}
    )
    with caplog.at_level(logging.WARNING, logger="driftline.features"):
        walk_forward_from_source(left_out)
    assert not [r for r in caplog.records if "almost perfectly" in r.getMessage()]
