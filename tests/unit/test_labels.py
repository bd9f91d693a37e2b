"""A label column as people write it: 0/1, true/false, up/down, -1/1, named classes, several classes
(``ingest.read_label``, ``data.positive_label``). Before, anything but 0/1 numbers stopped the run: every row
quarantined as "'label' (target): not a number", or "must be binary 0/1" after a misleading note that the data
was too short for the feature windows."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from driftline.config import ContractConfig, DataConfig, TargetConfig, load_config
from driftline.contracts import SOURCE_ROW
from driftline.errors import DataError
from driftline.ingest import load_data, read_label
from driftline.pipeline import validate_loaded
from driftline.synthetic import make_labelled_series

N = 400


def _label_file(tmp_path, labels, name: str = "series.csv"):
    frame = make_labelled_series(n_rows=len(labels), n_features=2, seed=3).drop(columns="y")
    frame["label"] = labels
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _load(path, positive=None):
    return load_data(DataConfig(path=str(path), target_col="label", positive_label=positive), need_target=True)


def _read(values, positive=None):
    return read_label(pd.Series(values, dtype=object), positive, "in.csv", "label")


@pytest.mark.parametrize(
    ("one", "zero"),
    [("up", "down"), ("Yes", "No"), ("y", "n"), ("buy", "sell"), ("long", "short"), (" win ", "loss")],
)
def test_two_classes_of_a_known_pair_read_by_their_names_with_a_warning(tmp_path, one, zero):
    rng = np.random.default_rng(0)
    labels = np.where(rng.uniform(size=N) < 0.4, one, zero)
    loaded = _load(_label_file(tmp_path, labels))
    np.testing.assert_array_equal(loaded.frame["target"].to_numpy(), (labels == one).astype(float))
    [note] = [w for w in loaded.warnings if "label column" in w]
    assert note == (
        f"{tmp_path / 'series.csv'}: label column 'label': {one.strip()!r} is 1 and {zero!r} 0 "
        "(data.positive_label names the class that is 1)"
    )


def test_rows_read_for_a_trained_model_read_the_label_alike_and_say_so_without_a_warning(tmp_path, caplog):
    """Score, compare and monitor read a batch's label as the training did; its "'yes' is 1 and 'no' 0" was a
    warning again with every batch (and in a retrain's), though the model's classes were chosen and said once."""
    labels = np.where(np.random.default_rng(1).uniform(size=N) < 0.3, "yes", "no")
    path = _label_file(tmp_path, labels)
    config = DataConfig(path=str(path), target_col="label")
    with caplog.at_level(logging.INFO, logger="driftline.ingest"):
        trained = load_data(config, need_target=True)
        caplog.clear()
        scored = load_data(config, need_target=True, for_model=True)
    said = [r for r in caplog.records if "'yes' is 1 and 'no' 0" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO]
    assert not [w for w in scored.warnings if "label column" in w]
    assert [w for w in trained.warnings if "label column" in w]  # training still warns
    np.testing.assert_array_equal(scored.frame["target"].to_numpy(), trained.frame["target"].to_numpy())
    assert scored.columns.classes == trained.columns.classes == ("no", "yes")


def test_a_batch_with_one_class_of_a_pair_reads_as_the_whole_file_did():
    # New rows scored later may all be "up": read value by value, never re-decided from what a batch holds.
    out, _, _ = _read(["up", "up", "up"])
    assert out.tolist() == [1.0, 1.0, 1.0]
    out, _, _ = _read(["down", None, "down"])
    assert out[[0, 2]].tolist() == [0.0, 0.0] and np.isnan(out[1])


def test_minus_one_and_one_is_a_sign_label():
    out, note, _ = read_label(pd.Series([1, -1, -1, 1, np.nan]), None, "in.csv", "label")
    assert out[:4].tolist() == [1.0, 0.0, 0.0, 1.0] and np.isnan(out[4])
    assert note == "in.csv: label column 'label': '1' is 1 and '-1' 0 (data.positive_label names the class that is 1)"


def test_zero_one_reads_as_it_is_and_positive_zero_swaps_it(caplog):
    values = pd.Series([0, 1, 1, np.nan])
    out, note, _ = read_label(values, None, "in.csv", "label")
    assert out[:3].tolist() == [0.0, 1.0, 1.0] and np.isnan(out[3]) and note is None
    assert read_label(values, "0", "in.csv", "label")[0][:3].tolist() == [1.0, 0.0, 0.0]
    # A source written back under the user's names (timeline.as_source_columns) holds 0/1 already.
    assert read_label(values, "up", "in.csv", "label")[0][:3].tolist() == [0.0, 1.0, 1.0]


def test_several_classes_need_the_positive_one_named(tmp_path):
    labels = np.array(["up", "down", "flat", "flat"] * (N // 4))
    path = _label_file(tmp_path, labels)
    with pytest.raises(DataError) as info:
        _load(path)
    assert str(info.value) == (
        f"{path}: label column 'label' has 3 classes: 'flat' (200 rows), 'up' (100 rows), 'down' (100 rows); "
        "name the one that is 1 with --set data.positive_label=<class> (the others are 0)"
    )
    loaded = _load(path, positive="flat")
    np.testing.assert_array_equal(loaded.frame["target"].to_numpy(), (labels == "flat").astype(float))
    assert not [w for w in loaded.warnings if "label column" in w]  # the user's own choice is not warned about


def test_two_unknown_classes_need_the_positive_one_named():
    with pytest.raises(DataError, match=r"has two classes: 'calm' \(2 rows\), 'storm' \(1 rows\); name the one"):
        _read(["calm", "storm", "calm"])
    assert _read(["calm", "storm", "calm"], "storm")[0].tolist() == [0.0, 1.0, 0.0]
    assert _read(["calm", "storm", "calm"], "STORM")[0].tolist() == [0.0, 1.0, 0.0]  # named in any case


def test_whole_number_classes_are_classes_and_measurements_are_not():
    with pytest.raises(DataError, match=r"has 3 classes: '0' \(2 rows\), '1' \(1 rows\), '2' \(1 rows\)"):
        read_label(pd.Series([0, 1, 2, 0]), None, "in.csv", "label")
    assert read_label(pd.Series([0, 1, 2, 0]), "2", "in.csv", "label")[0].tolist() == [0.0, 0.0, 1.0, 0.0]
    returns = pd.Series(np.linspace(-0.05, 0.05, 50))
    with pytest.raises(DataError, match=r"holds numbers, not classes \(50 distinct values from -0.05 to 0.05\)"):
        read_label(returns, None, "in.csv", "label")


def test_a_stray_value_beside_a_pair_is_quarantined_with_its_value(tmp_path):
    labels = np.array(["up", "down"] * (N // 2), dtype=object)
    labels[7] = "maybe"
    loaded = _load(_label_file(tmp_path, labels))
    assert np.isnan(loaded.frame["target"].iloc[7]) and loaded.frame["target"].notna().sum() == N - 1
    report = validate_loaded(loaded, ContractConfig(), "unit")
    assert report.quarantined["reason"].tolist() == ["'label' (target): not a class ('maybe')"]
    assert report.quarantined["source_row"].tolist() == [7]


def test_more_than_one_percent_outside_the_pair_is_a_third_class():
    with pytest.raises(DataError, match=r"has 3 classes: 'up' \(60 rows\), 'down' \(38 rows\), 'maybe' \(2 rows\)"):
        _read(["up"] * 60 + ["down"] * 38 + ["maybe"] * 2)


def test_a_positive_class_in_no_row_is_warned_about():
    out, note, _ = _read(["up", "down"], "sideways")
    assert out.tolist() == [0.0, 0.0]
    assert (
        note
        == "in.csv: label column 'label': no row is of class 'sideways' (data.positive_label); every labelled row is 0"
    )


def test_the_positive_label_from_yaml_or_the_command_line(tmp_path, caplog):
    # YAML reads yes/no as booleans and 2 as a number: each still names its class.
    config = load_config(None, {"target.kind": "label", "data.target_col": "label", "data.positive_label": True})
    assert config.data.positive_label == "true"
    assert _read(["Yes", "No"], config.data.positive_label)[0].tolist() == [1.0, 0.0]
    assert DataConfig(positive_label=False).positive_label == "false"
    assert DataConfig(positive_label=2).positive_label == "2" == DataConfig(positive_label=2.0).positive_label
    with caplog.at_level(logging.INFO, logger="driftline.ingest"):
        _read(["Yes", "No"], "no")
    assert "'No' is 1 and 'Yes' 0" in caplog.text


@pytest.mark.parametrize(
    ("values", "positive", "classes"),
    [
        (["up", "down", "Up"], None, ("down", "up")),  # each as first spelt
        (["up", "up"], None, ("down", "up")),  # a batch of one class: the pair names the other
        (["yes", "no", "true"], None, ("no", "yes")),
        ([1, -1, -1], None, ("-1", "1")),
        (["calm", "storm"], "storm", ("calm", "storm")),
        (["flat", "up", "down"], "flat", ("not flat", "flat")),  # one class against several
        ([0, 1, 2], "2", ("not 2", "2")),
        ([0, 1, 1], "0", ("1", "0")),  # 0 is the class the model predicts
        ([0, 1, 1], None, None),  # 0/1 names no class
    ],
)
def test_the_classes_are_named_as_the_column_names_them(values, positive, classes):
    assert _read(values, positive).classes == classes


def test_a_stray_text_value_in_a_column_of_numbered_classes_is_quarantined_not_a_crash():
    # Before: IndexError ("Boolean index has wrong length: 5 instead of 4") from the note about the classes.
    out, _, classes = _read([1, -1, "maybe", 1, 1])
    assert out[[0, 1, 3, 4]].tolist() == [1.0, 0.0, 1.0, 1.0] and np.isnan(out[2]) and classes == ("-1", "1")


def test_not_the_positive_class_reads_as_zero():
    # How a source written back from the model's rows names 0 of several classes (timeline.as_source_columns).
    out, _, classes = _read(["flat", "not flat", "NOT FLAT", None], "flat")
    assert out[:3].tolist() == [1.0, 0.0, 0.0] and np.isnan(out[3]) and classes == ("not flat", "flat")
    out, _, classes = _read(["0", "not 0", "0"], "0")
    assert out.tolist() == [1.0, 0.0, 1.0] and classes == ("not 0", "0")


@pytest.mark.parametrize(
    ("labels", "positive"),
    [
        (["up", "down"], None),
        (["calm", "storm"], "storm"),
        (["flat", "up", "down"], "flat"),
        ([0, 1, 2], "0"),
        ([0, 1], "0"),  # before: written back as 0/1 and read again with 0 as the class, every label flipped
    ],
)
def test_a_source_written_back_reads_as_the_labels_it_was_written_from(tmp_path, labels, positive):
    # A retrain on the champion's source plus monitored rows (tasks/monitoring.retrain_source_task).
    from driftline.timeline import as_source_columns

    rng = np.random.default_rng(1)
    path = _label_file(tmp_path, rng.choice(np.array(labels, dtype=object), size=N))
    loaded = _load(path, positive)
    written = as_source_columns(loaded.frame, loaded.columns)
    written.to_parquet(tmp_path / "combined.parquet", index=False)
    again = _load(tmp_path / "combined.parquet", positive)
    np.testing.assert_array_equal(again.frame["target"].to_numpy(), loaded.frame["target"].to_numpy())
    assert again.columns.classes == loaded.columns.classes
    assert loaded.columns.describe()["classes"] == dict(zip(("0", "1"), loaded.columns.classes, strict=True))


def test_a_source_read_in_local_clock_time_is_written_back_in_utc_and_reads_the_same(tmp_path):
    """A retrain's combined source is written from the model's rows, whose times are UTC: read back with the
    champion's ``data.timezone`` they must not move again (they say UTC in the value)."""
    from driftline.timeline import as_source_columns

    hours = pd.date_range("2021-03-27 20:00", periods=N, freq="h", tz="Europe/Berlin")  # across a clock change
    labels = np.where(np.random.default_rng(2).uniform(size=N) < 0.4, "up", "down")
    path = _label_file(tmp_path, labels)
    frame = pd.read_csv(path).assign(timestamp=hours.tz_localize(None).strftime("%Y-%m-%d %H:%M"))
    frame.to_csv(path, index=False)
    config = DataConfig(path=str(path), target_col="label", timezone="Europe/Berlin")
    loaded = load_data(config, need_target=True)
    assert loaded.frame["timestamp"].tolist() == hours.tz_convert("UTC").tz_localize(None).tolist()
    written = as_source_columns(loaded.frame, loaded.columns)
    for suffix in ("parquet", "csv"):
        combined = tmp_path / f"combined.{suffix}"
        written.to_parquet(combined, index=False) if suffix == "parquet" else written.to_csv(combined, index=False)
        again = load_data(config.model_copy(update={"path": str(combined)}), need_target=True, for_model=True)
        assert again.frame["timestamp"].tolist() == loaded.frame["timestamp"].tolist(), suffix


def test_the_newest_rows_without_a_label_yet_are_kept_to_score_and_a_lost_label_is_missing(tmp_path):
    """A label series' newest rows have no outcome yet (tomorrow's move, a loan still running): they were
    quarantined as "'label' (target): missing" with a warning, and so never scored by the run that trained on the
    file. Rows after the last labelled row of their series are kept (not trained on: the rows to score); a label
    missing between labelled rows, or in a series never labelled, is missing as before."""
    from driftline.features import build_features

    frames = []
    for symbol in ("a", "b", "c"):
        frame = make_labelled_series(n_rows=300, n_features=2, seed=ord(symbol)).rename(columns={"y": "label"})
        frame["label"] = np.where(frame["label"] == 1, "up", "down").astype(object)
        frame.loc[frame.index[-3:], "label"] = ""  # not known yet
        frames.append(frame.assign(symbol=symbol))
    panel = pd.concat(frames, ignore_index=True)
    panel.loc[100, "label"] = None  # lost in the middle of series a
    panel.loc[panel["symbol"] == "c", "label"] = None  # series c never labelled
    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    loaded = load_data(DataConfig(path=str(path), target_col="label", symbol_col="symbol"), need_target=True)
    report = validate_loaded(loaded, ContractConfig(min_rows_per_symbol=50), "panel")
    missing = report.quarantined[report.quarantined["reason"].str.contains("missing")]
    assert sorted(missing[SOURCE_ROW].tolist()) == [100, *panel.index[panel["symbol"] == "c"]]
    newest = report.clean.groupby("symbol").tail(3)
    assert set(newest["symbol"]) == {"a", "b"} and newest["target"].isna().all()
    features = load_config(None).features
    unlagged = build_features(report.clean, features, TargetConfig(kind="label", label_lags=()))
    assert len(unlagged.latest) == 6  # each kept series' 3 newest rows: scored, not trained on
    lagged = build_features(report.clean, features, TargetConfig(kind="label", label_lags=(1,)))
    assert len(lagged.latest) == 2  # the newest known label is lag 1 of the first of them only


def test_a_series_whose_labels_stopped_long_before_its_rows_is_named(tmp_path, caplog):
    """The newest rows without a label are kept to score; many more of them than the label delay look like a
    feed of outcomes that stopped: the series is named with those rows' span and its last known outcome, since
    the model knows nothing after it."""
    from driftline.features import UNLABELLED_TAIL_ROWS, build_features

    frames = []
    for symbol, unlabelled in (("a", 3), ("b", 60)):
        frame = make_labelled_series(n_rows=400, n_features=2, seed=ord(symbol)).astype({"y": float})
        frame.loc[frame.index[-unlabelled:], "y"] = np.nan
        frames.append(frame.assign(symbol=symbol))
    panel = pd.concat(frames, ignore_index=True)
    panel.to_csv(tmp_path / "panel.csv", index=False)
    loaded = load_data(DataConfig(path=str(tmp_path / "panel.csv"), target_col="y", symbol_col="symbol"), True)
    clean = validate_loaded(loaded, ContractConfig(min_rows_per_symbol=50), "panel").clean
    features = load_config(None).features

    def named(target: TargetConfig) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="driftline.features"):
            build_features(clean, features, target)
        return [r.getMessage() for r in caplog.records if "have no label" in r.getMessage()]

    times = pd.to_datetime(panel.loc[panel["symbol"] == "b", "timestamp"])
    assert named(TargetConfig(kind="label")) == [
        (
            f"b: its newest 60 rows ({times.iloc[-60]} .. {times.iloc[-1]}) have no label: they are scored, never "
            f"trained on; if the labels stopped arriving, the model knows no outcome after {times.iloc[-61]}"
        )
    ]
    # A label known only 60 rows later leaves that many rows without one: nothing to name.
    assert named(TargetConfig(kind="label", label_delay=60 - UNLABELLED_TAIL_ROWS)) == []
