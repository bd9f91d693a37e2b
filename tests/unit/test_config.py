"""load_config: defaults, the shipped YAML, dotted overrides, and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from driftline.config import (
    ColumnRule,
    ContractConfig,
    PipelineConfig,
    PipelineSettings,
    Settings,
    TargetConfig,
    config_to_yaml,
    flatten_config,
    load_config,
    with_settings,
)
from driftline.errors import ConfigError

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"


def _write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- happy paths -------------------------------------------------------------------------------------------


def test_defaults_without_a_file():
    config = load_config()
    assert config == PipelineConfig()
    assert config.target.kind == "volatility"
    # splits.gap left empty: the purge defaults to the horizon.
    assert config.splits.gap is None
    assert config.gap == config.target.horizon
    assert config.model_name == f"driftline-{config.name}"


def test_default_yaml_every_key_reaches_the_config():
    config = load_config(DEFAULT_YAML)
    written = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    dumped = config.model_dump(mode="json")
    for section, values in written.items():
        if isinstance(values, dict):
            for key, value in values.items():
                assert dumped[section][key] == value, f"{section}.{key}"
        else:
            assert dumped[section] == values
    assert config.gap == written["splits"]["gap"]


def test_default_yaml_states_the_defaults_a_run_without_a_file_gets():
    """configs/default.yaml is "every key and its default" (README): `make demo` and the deployments run it,
    `driftline train` without --config the code's defaults; they must be one pipeline. It said
    ``calibration.shrink: false`` after the code's default became ``auto``."""
    from_file = load_config(DEFAULT_YAML).model_dump(mode="json")
    built_in = load_config(None).model_dump(mode="json")
    differ = {
        f"{section}.{key}": (built_in[section][key], value)
        for section, values in from_file.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if built_in[section][key] != value
    }
    # The one difference: the file writes the purge gap its horizon implies (5), the code derives it.
    assert differ == {"splits.gap": (None, 5)}, differ
    assert load_config(None).gap == load_config(DEFAULT_YAML).gap


def test_dotted_overrides_replace_only_their_key(tmp_path):
    base = load_config(DEFAULT_YAML)
    config = load_config(
        DEFAULT_YAML,
        {"target.kind": "direction", "splits.n_splits": "3", "models.params.logreg.C": 2.0, "splits.gap": None},
    )
    assert config.target.kind == "direction"
    assert config.splits.n_splits == 3  # coerced from the CLI's string
    assert config.models.params["logreg"] == {"C": 2.0}
    assert config.models.params == {**base.models.params, "logreg": {"C": 2.0}}  # the other families' untouched
    assert (config.models.families, config.models.tuning) == (base.models.families, base.models.tuning)
    # None means "not given": the file's value stays.
    assert config.splits.gap == base.splits.gap
    assert config.target.horizon == base.target.horizon
    assert config.models.families == base.models.families


def test_override_creates_missing_section_on_defaults():
    config = load_config(None, {"data.path": "/some/file.csv", "name": "other"})
    assert config.data.path == "/some/file.csv"
    assert config.model_name == "driftline-other"


def test_override_through_a_scalar_is_an_error():
    # default.yaml sets ``name: demo``; "name.x" cannot descend into a string.
    with pytest.raises(ConfigError, match=r"name\.x.*not a section"):
        load_config(DEFAULT_YAML, {"name.x": 1})


def test_empty_yaml_file_means_defaults(tmp_path):
    assert load_config(_write(tmp_path, "# nothing here\n")) == PipelineConfig()


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = load_config(DEFAULT_YAML, {"target.kind": "direction", "splits.scheme": "sliding"})
    again = load_config(_write(tmp_path, config_to_yaml(config)))
    assert again == config


def test_flatten_config_uses_dotted_keys():
    flat = flatten_config(load_config(None, {"target.horizon": 7}))
    assert flat["target.horizon"] == "7"
    assert flat["calibration.method"] == "sigmoid"
    assert all(isinstance(v, str) for v in flat.values())


# --- errors ------------------------------------------------------------------------------------------------


def test_unknown_top_level_key_names_key_and_allowed_sections(tmp_path):
    path = _write(tmp_path, "name: x\ntargte:\n  kind: direction\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "'targte'" in message
    for section in PipelineConfig.model_fields:
        assert section in message


def test_unknown_key_inside_a_section_lists_that_sections_keys():
    with pytest.raises(ConfigError) as info:
        load_config(None, {"target.horizn": 3})
    message = str(info.value)
    assert "target.horizn" in message
    allowed = message.split("allowed here:")[1]
    assert {k.strip() for k in allowed.split(",")} == set(TargetConfig.model_fields)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("target.kind", "foo"),
        ("calibration.fraction", 0.9),
        ("calibration.method", "platt"),
        ("splits.n_splits", 1),
        ("contract.on_violation", "ignore"),
        ("models.families", ["catboost"]),
        ("metrics.top_k_fraction", 0.0),
        ("name", "has spaces"),
    ],
)
def test_wrong_value_names_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        load_config(None, {key: value})
    assert key in str(info.value)


def test_valid_values_next_to_the_wrong_ones_load():
    config = load_config(None, {"target.kind": "direction", "calibration.fraction": 0.49, "splits.n_splits": 2})
    assert (config.target.kind, config.calibration.fraction, config.splits.n_splits) == ("direction", 0.49, 2)


def test_feature_windows_must_be_ordered():
    with pytest.raises(ConfigError, match="vol_short < vol_mid < vol_long"):
        load_config(None, {"features.vol_short": 100})


def test_gap_smaller_than_horizon_is_an_error():
    with pytest.raises(ConfigError) as info:
        load_config(None, {"splits.gap": 4, "target.horizon": 5})
    assert "splits.gap" in str(info.value) and "target.horizon" in str(info.value)


def test_gap_equal_to_horizon_is_fine():
    assert load_config(None, {"splits.gap": 5, "target.horizon": 5}).gap == 5


LABEL_TARGET = {"target.kind": "label", "data.target_col": "y"}


def test_label_delay_defaults_to_one_for_labels_and_the_horizon_for_price_targets():
    label = load_config(None, {**LABEL_TARGET, "target.horizon": 5})
    assert (label.target.label_delay, label.label_delay, label.gap) == (None, 1, 1)
    volatility = load_config(None, {"target.horizon": 7})
    assert (volatility.label_delay, volatility.gap) == (7, 7)
    # Set explicitly, it drives the purge gap (and through it the hold-out and calibration gaps).
    late = load_config(None, {**LABEL_TARGET, "target.label_delay": 3})
    assert (late.label_delay, late.gap) == (3, 3)
    assert load_config(None, {"target.label_delay": 9}).gap == 9


def test_label_delay_shapes_the_fingerprint():
    from driftline.config import training_fingerprint

    one = training_fingerprint("h", load_config(None, LABEL_TARGET), "v")
    assert training_fingerprint("h", load_config(None, {**LABEL_TARGET, "target.label_delay": 2}), "v") != one
    assert flatten_config(load_config(None, LABEL_TARGET))["target.label_delay"] == "1"  # the effective value


def test_gap_must_cover_the_label_delay():
    with pytest.raises(ConfigError, match=r"splits\.gap \(1\) must be >= target\.label_delay \(2\)"):
        load_config(None, {**LABEL_TARGET, "target.label_delay": 2, "splits.gap": 1})
    # A label target is free of the horizon rule: only its label delay counts.
    assert load_config(None, {**LABEL_TARGET, "splits.gap": 1, "target.horizon": 5}).gap == 1
    with pytest.raises(ConfigError, match=r"splits\.gap \(0\) must be >= target\.label_delay \(1\)"):
        load_config(None, {**LABEL_TARGET, "splits.gap": 0})


def test_a_price_target_label_is_not_known_before_its_horizon():
    with pytest.raises(
        ConfigError, match=r"target: label_delay \(2\) must be >= horizon \(5\) for the volatility target: its label"
    ) as raised:
        load_config(None, {"target.label_delay": 2})
    assert "(got {" not in str(raised.value)  # not the whole section again
    with pytest.raises(ConfigError) as raised:
        load_config(None, sets={"data.encoding": "foo"})
    assert str(raised.value) == (
        "--set: data.encoding: unknown encoding 'foo' (e.g. utf-8, cp1252, shift_jis, gb18030)"
    )


def test_set_options_are_yaml_values_validated_like_the_file(tmp_path):
    from driftline.config import parse_set_options

    sets = parse_set_options(
        ["splits.gap=7", "models.families=[logreg, lightgbm]", "splits.test_size=null", "name = px"]
    )
    assert sets == {"splits.gap": 7, "models.families": ["logreg", "lightgbm"], "splits.test_size": None, "name": "px"}
    file = tmp_path / "p.yaml"
    file.write_text("splits: {test_size: 30, n_splits: 4}\n")
    config = load_config(file, {"name": None}, sets=sets)
    # --set wins over the file, keeps the file's other keys, and null resets a key.
    assert (config.splits.gap, config.splits.test_size, config.splits.n_splits, config.name) == (7, None, 4, "px")
    assert config.models.families == ("logreg", "lightgbm")
    # Options given beside --set win over it.
    assert load_config(None, {"splits.gap": 9}, sets={"splits.gap": 6}).gap == 9
    for item, message in (
        ("splits.gapp=3", r"^--set: unknown key 'splits\.gapp'; allowed here: gap, "),
        ("splits.gap=-1", r"^--set: splits\.gap: Input should be greater than or equal to 0"),
        ("splits.n_splits.x=1", r"^--set splits\.n_splits\.x: cannot set"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_config(file, None, sets=parse_set_options([item]))
    for item, message in (
        ("gap", "expected key=value"),
        ("=3", "expected key=value"),
        ("splits.gap=[1", "not valid YAML"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_set_options([item])


def test_label_target_needs_target_col():
    with pytest.raises(ConfigError, match="target_col"):
        load_config(None, {"target.kind": "label"})
    assert load_config(None, {"target.kind": "label", "data.target_col": "y"}).data.target_col == "y"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_yaml_that_is_not_a_mapping(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="mapping") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_invalid_yaml(tmp_path):
    path = _write(tmp_path, "target: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(ValidationError):
        config.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.target.horizon = 10  # type: ignore[misc]
    assert config.name == "demo" and config.target.horizon == 5


def test_settings_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings.from_env()
    assert settings.home == (tmp_path / "home").resolve()
    assert settings.tracking_uri == f"sqlite:///{settings.home / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert Settings.from_env().tracking_uri == "http://tracking:5000"


# --- the data contract section and contract files ---------------------------------------------------------

CONTRACTS = DEFAULT_YAML.parent / "contracts"


def test_contract_defaults():
    contract = load_config().contract
    assert contract.on_violation == "quarantine"
    assert (contract.unique, contract.monotonic_time, contract.max_gap_policy) == ("quarantine", "warn", "warn")
    assert (contract.calendar, contract.max_future, contract.max_quarantine_fraction) == ("any", "1D", 0.1)
    close, volume = contract.columns["close"], contract.columns["volume"]
    assert (close.type, close.min, close.strict_min, close.max, close.nullable) == ("number", 0.0, True, 1e12, False)
    assert (volume.min, volume.strict_min, volume.max, volume.nullable) == (0.0, False, 1e18, True)
    assert contract.columns["target"].nullable is False
    assert contract.columns["symbol"].required and contract.columns["timestamp"].required
    assert not close.required


def test_column_rules_merge_over_the_built_in_ones_field_by_field():
    config = load_config(None, {"contract.columns.volume.nullable": False, "contract.columns.rsi": {"max": 100}})
    volume = config.contract.columns["volume"]
    assert volume.nullable is False
    assert (volume.type, volume.min, volume.max) == ("number", 0.0, 1e18)  # the rest of the built-in rule stays
    assert config.contract.columns["close"] == PipelineConfig().contract.columns["close"]
    assert config.contract.columns["rsi"].max == 100 and config.contract.columns["rsi"].type is None
    assert config.contract.policy_of("rsi") == "quarantine"


def test_a_null_column_rule_checks_nothing_and_survives_a_round_trip(tmp_path):
    config = load_config(_write(tmp_path, "contract:\n  columns:\n    volume: null\n"))
    volume = config.contract.columns["volume"]
    assert (volume.type, volume.min, volume.max, volume.nullable) == (None, None, None, True)
    assert load_config(_write(tmp_path, config_to_yaml(config), "again.yaml")) == config


@pytest.mark.parametrize("column", ["symbol", "timestamp"])
def test_symbol_and_timestamp_stay_required(tmp_path, column):
    with pytest.raises(ConfigError, match=f"columns.{column} is always required"):
        load_config(_write(tmp_path, f"contract:\n  columns:\n    {column}: {{required: false}}\n"))


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("contract.max_gap", "soon", "max_gap must be a duration"),
        ("contract.max_future", "-1D", "max_future must be positive"),
        ("contract.max_gap_policy", "quarantine", "contract.max_gap_policy"),
        ("contract.max_quarantine_fraction", 1.5, "contract.max_quarantine_fraction"),
        ("contract.columns.close.policy", "ignore", "contract.columns.close.policy"),
        ("contract.columns.close.min", 10, "must not exceed max"),
        ("contract.columns.close.max", -1, "must not exceed max"),
    ],
)
def test_wrong_contract_values_name_the_key(key, value, fragment):
    overrides = {key: value}
    if key.endswith("close.min"):
        overrides["contract.columns.close.max"] = 5
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(None, overrides)


def test_unknown_column_rule_key_lists_the_rule_keys():
    with pytest.raises(ConfigError) as info:
        load_config(None, {"contract.columns.close.minn": 3})
    message = str(info.value)
    assert "'contract.columns.close.minn'" in message
    allowed = message.split("allowed here:")[1]
    assert {k.strip() for k in allowed.split(",")} == set(ColumnRule.model_fields)


def _contract_file(tmp_path: Path, text: str, name: str = "contracts/prices.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_contract_file_next_to_the_pipeline_file_with_inline_overrides(tmp_path, monkeypatch):
    _contract_file(
        tmp_path,
        (
            "on_violation: warn\nmin_rows_per_symbol: 50\ncalendar: weekdays\n"
            "columns:\n  volume: {nullable: true, policy: fail}\n  close: {max: 1000}\n"
        ),
    )
    pipeline = _write(
        tmp_path,
        ("contract:\n  file: contracts/prices.yaml\n  min_rows_per_symbol: 7\n  columns:\n    volume: {max: 5}\n"),
    )
    monkeypatch.chdir(tmp_path.parent)  # relative to the pipeline file, not the working directory
    contract = load_config(pipeline).contract
    assert contract.file is None  # resolved: every key is now inline
    assert (contract.on_violation, contract.calendar) == ("warn", "weekdays")  # from the file
    assert contract.min_rows_per_symbol == 7  # inline wins
    volume = contract.columns["volume"]
    assert (volume.nullable, volume.policy, volume.max, volume.min) == (True, "fail", 5.0, 0.0)
    assert contract.columns["close"].max == 1000 and contract.columns["close"].strict_min is True


def test_contract_file_without_a_pipeline_file_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    _contract_file(tmp_path, "unique: warn\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(None, {"contract.file": "contracts/prices.yaml"}).contract.unique == "warn"
    assert ContractConfig(file="contracts/prices.yaml").unique == "warn"


def test_resolved_contract_needs_no_file_to_load_again(tmp_path):
    path = _contract_file(tmp_path, "max_gap: 9D\ncolumns:\n  adj_close: null\n")
    config = load_config(_write(tmp_path, "contract:\n  file: contracts/prices.yaml\n"))
    path.unlink()
    again = load_config(_write(tmp_path, config_to_yaml(config), "resolved.yaml"))
    assert again == config and again.contract.max_gap == "9D"
    assert again.contract.columns["adj_close"].nullable is True


def test_missing_contract_file_is_named(tmp_path):
    pipeline = _write(tmp_path, "contract:\n  file: contracts/nope.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_config(pipeline)
    message = str(info.value)
    assert message.startswith(f"{pipeline}: contract: contract file ")
    assert str(tmp_path / "contracts" / "nope.yaml") in message and "does not exist" in message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("on_violatoin: warn\n", ["unknown key 'on_violatoin'", "allowed here:", "max_quarantine_fraction"]),
        ("columns:\n  close: {minn: 1}\n", ["unknown key 'columns.close.minn'", "strict_min"]),
        ("unique: maybe\n", ["unique:", "'fail', 'quarantine' or 'warn'"]),
        ("file: other.yaml\n", ["key 'file' is not allowed inside a contract file"]),
        ("- a\n", ["must hold a mapping"]),
        ("columns: [unclosed\n", ["is not valid YAML"]),
    ],
)
def test_bad_contract_file_names_the_file_and_the_key(tmp_path, text, fragments):
    path = _contract_file(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, "contract:\n  file: contracts/prices.yaml\n"))
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("name", ["ohlcv.yaml", "label.yaml"])
def test_shipped_contract_files_load_and_every_key_reaches_the_contract(name):
    written = yaml.safe_load((CONTRACTS / name).read_text(encoding="utf-8"))
    contract = ContractConfig(file=str(CONTRACTS / name))
    dumped = contract.model_dump(mode="json")
    for key, value in written.items():
        if key == "columns":
            for column, rule in value.items():
                for field, setting in rule.items():
                    assert dumped["columns"][column][field] == setting, f"columns.{column}.{field}"
        else:
            assert dumped[key] == value, key


def test_default_yaml_points_at_the_example_contract():
    """The commented ``file:`` line in default.yaml names a file that exists and loads."""
    text = DEFAULT_YAML.read_text(encoding="utf-8")
    assert "# file: contracts/ohlcv.yaml" in text
    config = load_config(DEFAULT_YAML, {"contract.file": "contracts/ohlcv.yaml"})
    assert config.contract.calendar == "weekdays"
    assert config.contract.max_quarantine_fraction == yaml.safe_load(text)["contract"]["max_quarantine_fraction"]


def test_runner_defaults_to_sequential_and_checks_its_values():
    runner = load_config().runner
    assert (runner.kind, runner.address, runner.n_workers, runner.threads_per_worker) == ("sequential", None, 2, 1)
    assert runner.processes is False
    dask = load_config(None, {"runner.kind": "dask", "runner.address": "tcp://10.0.0.5:8786"}).runner
    assert (dask.kind, dask.address) == ("dask", "tcp://10.0.0.5:8786")
    for key, value in (("runner.kind", "ray"), ("runner.n_workers", 0), ("runner.threads_per_worker", 0)):
        with pytest.raises(ConfigError, match=key):
            load_config(None, {key: value})


def test_where_the_fits_run_is_not_part_of_the_training_fingerprint():
    from driftline.config import training_fingerprint

    sequential = load_config()
    dask = load_config(None, {"runner.kind": "dask", "runner.n_workers": 4})
    assert training_fingerprint("abc", sequential, "v1") == training_fingerprint("abc", dask, "v1")
    assert training_fingerprint("abc", sequential, "v1") != training_fingerprint("abd", sequential, "v1")


# --- PipelineSettings: the typed run parameter behind the Prefect UI form ------------------------------


def test_pipeline_settings_reach_the_config_over_the_file(tmp_path):
    from driftline.config import PipelineSettings, with_settings

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"target": {"kind": "volatility", "horizon": 5}, "evaluation": {"window": 500}}))
    settings = PipelineSettings(
        target_kind="direction",
        target_horizon=3,
        evaluation_window=300,
        model_families=["logreg", "xgboost"],
        drift_share=0.5,
        min_hours_between_retrains=0,
    )
    config = load_config(path, with_settings({"name": "form", "data.path": None}, settings))
    assert config.name == "form"
    assert (config.target.kind, config.target.horizon, config.evaluation.window) == ("direction", 3, 300)
    assert config.models.families == ("logreg", "xgboost")
    assert config.drift.drift_share == 0.5 and config.drift.min_hours_between_retrains == 0
    # Fields left empty keep the file's values and the defaults.
    assert config.splits.n_splits == 5 and config.drift.psi_alert == 0.25


def test_every_pipeline_setting_is_a_valid_config_key():
    from driftline.config import SETTING_KEYS, PipelineSettings

    assert set(SETTING_KEYS) == set(PipelineSettings.model_fields)
    everything = PipelineSettings(
        target_kind="direction",
        target_horizon=2,
        target_label_delay=3,
        evaluation_window=100,
        n_splits=4,
        model_families=["logreg"],
        promotion_metric="brier",
        drift_share=0.4,
        drift_method="chi2",
        null_quantile=0.95,
        null_margin=1.5,
        psi_alert=0.3,
        prediction_psi=0.2,
        min_hours_between_retrains=1.5,
    )
    flat = flatten_config(load_config(None, everything.overrides()))
    for field, key in SETTING_KEYS.items():
        assert flat[key] == str(getattr(everything, field)), key


def test_pipeline_settings_from_a_form_are_validated_like_the_yaml():
    from driftline.config import with_settings

    # What a run started from the UI sends: plain JSON. A value the section refuses names its config key.
    with pytest.raises(ConfigError, match="settings: target_kind"):
        with_settings({}, {"target_kind": "price"})
    with pytest.raises(ConfigError, match="unknown key 'horizon'"):
        with_settings({}, {"horizon": 3})
    overrides = with_settings({"target.kind": None}, {"target_kind": "direction", "evaluation_window": None})
    assert overrides == {"target.kind": "direction"}
    # Valid for the form, refused by the pipeline's cross-section rule: the message names both keys.
    with pytest.raises(ConfigError, match=r"splits\.gap \(2\) must be >= target\.horizon \(4\)"):
        load_config(None, with_settings({"splits.gap": 2}, {"target_horizon": 4}))


def test_monitoring_takes_only_drift_settings():
    from driftline.config import PipelineSettings

    assert PipelineSettings(psi_alert=0.4).drift_overrides() == {"drift.psi_alert": 0.4}
    with pytest.raises(ConfigError, match=r"only drift\.\* settings apply here, not models\.families, target\.kind"):
        PipelineSettings(target_kind="label", model_families=["logreg"], psi_alert=0.4).drift_overrides()


def test_bootstrap_block_follows_the_labels_overlap_with_a_floor():
    from driftline.config import MIN_BLOCK_LENGTH

    # Price targets: the label spans the horizon.
    assert load_config(None, {"target.horizon": 5}).block_length == 10
    assert load_config(None, {"target.horizon": 20, "splits.gap": 20}).block_length == 40
    assert load_config(None, {"target.horizon": 1}).block_length == MIN_BLOCK_LENGTH  # persistent errors, not the label
    # Label targets: the label_delay, not the (unused) horizon.
    label = {"target.kind": "label", "data.target_col": "y"}
    assert load_config(None, {**label, "target.horizon": 30}).block_length == MIN_BLOCK_LENGTH
    assert load_config(None, {**label, "target.label_delay": 12}).block_length == 24
    # Set by the user: kept as given.
    assert load_config(None, {**label, "promotion.block_length": 3}).block_length == 3


BILLION_LAUGHS = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_billion_laughs_config_is_refused_at_its_first_anchor_without_expanding(tmp_path):
    import resource
    import time

    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    before, began = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"{path}, line 1, column 4: YAML anchors and aliases" in message
    assert "lol" not in message and len(message) < 400
    # Refused while parsing: no expansion (an unbounded one took 4.3 GB and 120 s)
    assert time.monotonic() - began < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB


def test_a_contract_file_with_an_alias_is_refused_and_bad_yaml_is_not_quoted(tmp_path):
    contract = tmp_path / "contract.yaml"
    contract.write_text("columns:\n  price: {min: 0}\n  volume: *price\n")
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"contract:\n  file: {contract}\n")
    with pytest.raises(
        ConfigError, match=r"contract file .*contract.yaml, line 3, column 11: YAML anchors and aliases"
    ):
        load_config(config)

    secret = tmp_path / "broken.yaml"
    secret.write_text("name: demo\npassword: hunter2: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config(secret)
    assert "not valid YAML" in str(caught.value) and "line 2" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_wrong_long_value_is_quoted_short(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("splits:\n  n_splits: '" + "9" * 5000 + "x'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "splits.n_splits" in str(caught.value) and len(str(caught.value)) < 500


def test_the_tracking_file_is_the_sqlite_path_of_a_local_store_only(tmp_path):
    from driftline.config import Settings

    assert Settings(home=tmp_path, tracking_uri=f"sqlite:///{tmp_path / 'm.db'}").tracking_file == tmp_path / "m.db"
    assert Settings(home=tmp_path, tracking_uri="http://127.0.0.1:5000").tracking_file is None


def test_the_registered_models_name_names_its_pipeline():
    # Every command prints "model driftline-btc"; a user who passes that name back means the same model.
    assert PipelineConfig(name="driftline-btc").model_name == "driftline-btc"
    assert PipelineConfig(name="btc").model_name == "driftline-btc"
    assert PipelineConfig(name="driftline-").model_name == "driftline-driftline-"  # nothing else to name it


def test_commands_that_read_rows_for_a_model_set_only_how_rows_are_read():
    """``score``, ``compare`` and ``monitor --set``: data.* and contract.* keys (an encoding, a sheet, events at one
    time kept); the model's own settings, its label classes and the path (--data) are refused by name."""
    from driftline.config import parse_set_options, reading_overrides

    sets = parse_set_options(["data.encoding=cp1252", "contract.unique=warn"])
    assert reading_overrides(sets, "score") == {"data.encoding": "cp1252", "contract.unique": "warn"}
    assert reading_overrides(None, "score") == {}
    model = ("target.horizon=3", "features.vol_long=30", "data.positive_label=up", "data.exclude_cols=[batch]")
    for key in (*model, "data.path=x.csv"):
        with pytest.raises(
            ConfigError, match=rf"^--set {re.escape(key.split('=')[0])}: monitor reads rows as the model"
        ):
            reading_overrides(parse_set_options([key]), "monitor")


def test_a_label_targets_horizon_is_named_as_unread_with_the_key_that_is_read(tmp_path, caplog):
    """A label target reads ``ahead``, not ``horizon``: ``horizon: 6`` in a file, ``--set`` or a deployment's
    ``target_horizon`` used to change nothing, silently. The run now says so and names ``target.ahead``; the default
    file's ``horizon: 5`` (there for the price targets) and a price target's horizon are not named."""
    from driftline.pipeline import say_unread_settings

    path = tmp_path / "label.yaml"
    path.write_text("target:\n  kind: label\n  horizon: 6\ndata:\n  target_col: raining\n", encoding="utf-8")
    unread = load_config(path).target.unread_horizon()
    assert unread is not None
    assert "target.horizon (6) is read by no label target" in unread
    assert "each row's own label (known 1 row later)" in unread
    assert "target.ahead=6" in unread
    sets = {"target.kind": "label", "data.target_col": "y", "target.ahead": 2}
    assert "the label 2 rows on (known 2 rows later)" in str(
        load_config(None, sets={**sets, "target.horizon": 3}).target.unread_horizon()
    )
    deployed = with_settings({"target.kind": "label", "data.target_col": "y"}, PipelineSettings(target_horizon=4))
    assert "target.horizon (4)" in str(load_config(None, deployed).target.unread_horizon())
    caplog.set_level("WARNING", logger="driftline.pipeline")
    say_unread_settings(load_config(path))
    assert [r.getMessage() for r in caplog.records] == [unread]
    # Not named: what --horizon on a label target becomes, the default file's horizon, a price target's horizon.
    assert load_config(None, sets={**sets, "target.ahead": 6}).target.unread_horizon() is None
    assert load_config(DEFAULT_YAML, {"target.kind": "label", "data.target_col": "y"}).target.unread_horizon() is None
    assert load_config(None, {"target.kind": "direction", "target.horizon": 1}).target.unread_horizon() is None


def test_by_default_only_a_price_direction_target_must_show_an_edge_over_the_base_rate():
    """calibration.require_edge: auto asks the sign of a return for an edge (markets leave little to find, and a
    spread without one only costs log loss); volatility regimes and labels keep their model. A number or null
    applies to every target."""
    assert PipelineConfig().calibration.require_edge == "auto"
    levels = {
        kind: PipelineConfig.model_validate({"target": {"kind": kind}}).fit_spec.edge_level
        for kind in ("direction", "volatility")
    }
    assert levels == {"direction": 0.95, "volatility": None}
    label = {"target": {"kind": "label"}, "data": {"target_col": "y"}}
    assert PipelineConfig.model_validate(label).fit_spec.edge_level is None
    for kind in ("direction", "volatility"):
        assert (
            PipelineConfig.model_validate(
                {"target": {"kind": kind}, "calibration": {"require_edge": 0.9}}
            ).fit_spec.edge_level
            == 0.9
        )
        assert (
            PipelineConfig.model_validate(
                {"target": {"kind": kind}, "calibration": {"require_edge": None}}
            ).fit_spec.edge_level
            is None
        )
    for wrong in (0.5, 1.0, "always"):
        with pytest.raises(ValidationError, match="require_edge"):
            PipelineConfig.model_validate({"calibration": {"require_edge": wrong}})
