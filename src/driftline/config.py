"""Typed pipeline configuration, validated once at the edge.

One YAML file is one pipeline. Every section is a frozen pydantic model with ``extra="forbid"`` so a
misspelt key fails fast with a message naming the key and the allowed ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from driftline.errors import ConfigError

TargetKind = Literal["direction", "volatility", "label"]
ModelFamily = Literal["logreg", "random_forest", "xgboost", "lightgbm"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Section):
    """Where the data is and which columns mean what (detected when left empty)."""

    path: str | None = None
    time_col: str | None = None
    price_col: str | None = None
    symbol_col: str | None = None
    target_col: str | None = None
    demo_symbols: tuple[str, ...] = ("AAPL", "IBM", "MSFT", "GOOG")


class ContractConfig(_Section):
    """The data contract checked with Great Expectations before anything is trained."""

    on_violation: Literal["fail", "quarantine"] = "fail"
    min_rows_per_symbol: int = Field(default=100, ge=1)


class TargetConfig(_Section):
    kind: TargetKind = "volatility"
    horizon: int = Field(default=5, ge=1, le=250)
    dead_band: float = Field(default=0.0, ge=0.0, description="direction: |forward log return| below this is dropped")
    median_window: int = Field(default=250, ge=10, description="volatility: trailing window of the median threshold")
    label_lags: tuple[int, ...] = Field(default=(1, 2, 5), description="label: lags of the target, in units of horizon")


class FeatureConfig(_Section):
    return_windows: tuple[int, ...] = (1, 5, 10, 20)
    vol_short: int = Field(default=5, ge=2)
    vol_mid: int = Field(default=20, ge=2)
    vol_long: int = Field(default=60, ge=3)
    zscore_window: int = Field(default=120, ge=10)
    median_window: int = Field(default=250, ge=10, description="trailing window for volatility-vs-median features")
    rsi_window: int = Field(default=14, ge=2)
    macd_fast: int = Field(default=12, ge=2)
    macd_slow: int = Field(default=26, ge=3)
    macd_signal: int = Field(default=9, ge=2)
    calendar: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> FeatureConfig:
        if not self.vol_short < self.vol_mid < self.vol_long:
            raise ValueError("vol_short < vol_mid < vol_long must hold")
        if self.macd_fast >= self.macd_slow:
            raise ValueError("macd_fast must be smaller than macd_slow")
        if not self.return_windows or min(self.return_windows) < 1:
            raise ValueError("return_windows must be a non-empty list of positive integers")
        return self


class SplitConfig(_Section):
    scheme: Literal["expanding", "sliding"] = "expanding"
    n_splits: int = Field(default=5, ge=2, le=50)
    test_size: int | None = Field(default=None, ge=1, description="timestamps per test fold; default: divide evenly")
    gap: int | None = Field(default=None, ge=0, description="timestamps purged between train and test; default: horizon")
    min_train_size: int = Field(default=250, ge=2, description="timestamps in the first training window")
    max_train_size: int | None = Field(default=None, ge=2, description="sliding: timestamps per training window")


class CalibrationConfig(_Section):
    method: Literal["isotonic", "sigmoid"] = "sigmoid"
    fraction: float = Field(default=0.2, gt=0.0, lt=0.5, description="share of each training window used to calibrate")


class ModelsConfig(_Section):
    families: tuple[ModelFamily, ...] = ("logreg", "random_forest", "xgboost", "lightgbm")
    ensemble: bool = False
    seed: int = 42
    params: dict[ModelFamily, dict[str, float | int | str | bool | None]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _non_empty(self) -> ModelsConfig:
        if not self.families:
            raise ValueError("at least one model family is required")
        if len(set(self.families)) != len(self.families):
            raise ValueError("families must not repeat")
        return self


class EvaluationConfig(_Section):
    """The hold-out window at the end of the data on which champion and challenger are compared."""

    window: int = Field(default=500, ge=10, description="timestamps at the end never trained on by the challenger")


class PromotionConfig(_Section):
    """When a challenger may replace the champion (or, for the first model, the base-rate predictor)."""

    metric: Literal["log_loss", "brier"] = "log_loss"
    level: float = Field(default=0.95, gt=0.5, lt=1.0, description="two-sided confidence level of the loss-difference CI")
    n_bootstrap: int = Field(default=2000, ge=200, le=100_000)
    block_length: int | None = Field(default=None, ge=1, description="bootstrap block, in timestamps; default 2 x horizon")
    min_rows: int = Field(default=200, ge=10, description="evaluation rows needed before any promotion")
    ece_cap: float = Field(default=0.1, gt=0.0, le=1.0, description="equal-mass bins of >= 100 rows")
    auc_tolerance: float = Field(default=0.02, ge=0.0, le=1.0, description="challenger AUC may trail the champion's by this")
    sharpe_tolerance: float = Field(default=0.25, ge=0.0, description="direction target: Sharpe may trail by this")
    drawdown_tolerance: float = Field(default=0.05, ge=0.0, le=1.0, description="direction target: max drawdown may exceed by this")
    seed: int = 7


class ThresholdConfig(_Section):
    """How the probability that triggers an action is chosen, on each model's calibration slice."""

    objective: Literal["none", "f1", "precision_at_k", "strategy_return"] = "f1"
    min: float = Field(default=0.3, gt=0.0, lt=1.0)
    max: float = Field(default=0.7, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _bounds(self) -> ThresholdConfig:
        if self.min >= self.max:
            raise ValueError("threshold.min must be below threshold.max")
        return self


class DriftConfig(_Section):
    """When a batch has drifted away from the training data."""

    psi_warn: float = Field(default=0.1, gt=0.0)
    psi_alert: float = Field(default=0.25, gt=0.0, description="a column with this PSI has drifted, whatever its p-value")
    p_value: float = Field(default=0.01, gt=0.0, lt=1.0, description="chi-square homogeneity test on the PSI bins")
    min_psi: float = Field(default=0.02, ge=0.0, description="smallest PSI that counts as a shift worth acting on")
    drift_share: float = Field(default=0.3, gt=0.0, le=1.0, description="share of drifted features that is dataset drift")
    prediction_psi: float = Field(default=0.1, gt=0.0)
    brier_tolerance: float = Field(default=0.02, ge=0.0)
    ece_cap: float = Field(default=0.1, gt=0.0, le=1.0)
    min_rows: int = Field(default=100, ge=1)
    min_labelled_rows: int = Field(default=200, ge=10)
    bins: int = Field(default=10, ge=3, le=100)
    report_sample: int = Field(default=5000, ge=100, description="rows per side in the Evidently report")
    min_hours_between_retrains: float = Field(default=6.0, ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        if self.psi_warn > self.psi_alert:
            raise ValueError("psi_warn must not exceed psi_alert")
        return self


class MetricsConfig(_Section):
    top_k_fraction: float = Field(default=0.1, gt=0.0, le=1.0, description="precision@K: K as a share of rows")
    ece_bins: int = Field(default=10, ge=2, le=100)
    periods_per_year: int = Field(default=252, ge=1)
    cost_bps: float = Field(default=0.0, ge=0.0, description="strategy: cost per unit of turnover, basis points")


class PipelineConfig(_Section):
    """The whole pipeline; core functions receive only the section they need."""

    name: str = Field(default="demo", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    data: DataConfig = DataConfig()
    contract: ContractConfig = ContractConfig()
    target: TargetConfig = TargetConfig()
    features: FeatureConfig = FeatureConfig()
    splits: SplitConfig = SplitConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    models: ModelsConfig = ModelsConfig()
    metrics: MetricsConfig = MetricsConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    promotion: PromotionConfig = PromotionConfig()
    threshold: ThresholdConfig = ThresholdConfig()
    drift: DriftConfig = DriftConfig()

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        if self.splits.gap is not None and self.splits.gap < self.target.horizon:
            raise ValueError(
                f"splits.gap ({self.splits.gap}) must be >= target.horizon ({self.target.horizon}), "
                "or training labels overlap the test window"
            )
        if self.target.kind == "label" and not self.data.target_col:
            raise ValueError("target.kind 'label' needs data.target_col (or --target-col)")
        return self

    @property
    def model_name(self) -> str:
        """Registered model name in the model registry."""
        return f"driftline-{self.name}"

    @property
    def gap(self) -> int:
        return self.splits.gap if self.splits.gap is not None else self.target.horizon

    @property
    def block_length(self) -> int:
        """Bootstrap block: long enough to carry the autocorrelation that overlapping h-period labels create."""
        return self.promotion.block_length or max(2, 2 * self.target.horizon)


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted!r}: {key!r} is not a section")
        node = child
    node[leaf] = value


def _describe(error: dict[str, Any], source: str) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "<top level>"
    if error["type"] == "extra_forbidden":
        section: type[BaseModel] = PipelineConfig
        for part in error["loc"][:-1]:
            field = section.model_fields.get(str(part))
            annotation = getattr(field, "annotation", None) if field else None
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                section = annotation
        allowed = ", ".join(sorted(section.model_fields))
        return f"{source}: unknown key {where!r}; allowed here: {allowed}"
    return f"{source}: {where}: {error['msg']} (got {error.get('input')!r})"


def load_config(path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load a YAML config and apply dotted-key overrides (``{"target.kind": "direction"}``).

    Raises:
        ConfigError: naming the file, the key and what is allowed.
    """
    source = str(path) if path else "<defaults>"
    tree: dict[str, Any] = {}
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {source} does not exist")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{source} must hold a mapping of sections, not {type(loaded).__name__}")
        tree = loaded or {}
    return _validated(tree, source, overrides)


def config_from_yaml(text: str, source: str, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """A config stored as YAML text (e.g. the one a model was trained with), with dotted overrides."""
    return _validated(yaml.safe_load(text) or {}, source, overrides)


def data_overrides(
    data: str | None, time_col: str | None = None, price_col: str | None = None,
    symbol_col: str | None = None, target_col: str | None = None,
) -> dict[str, str | None]:
    """The dotted overrides that point a pipeline at other data (None keeps the config's value)."""
    return {"data.path": data, "data.time_col": time_col, "data.price_col": price_col,
            "data.symbol_col": symbol_col, "data.target_col": target_col}


def _validated(tree: dict[str, Any], source: str, overrides: dict[str, Any] | None) -> PipelineConfig:
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(tree, key, value)
    try:
        return PipelineConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e, source) for e in exc.errors(include_url=False))) from None


def config_to_yaml(config: PipelineConfig) -> str:
    """The resolved config, as it would be written in a file."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def flatten_config(config: PipelineConfig) -> dict[str, str]:
    """Dotted key -> string value, for experiment trackers."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child)
        else:
            flat[prefix] = str(value)

    walk("", config.model_dump(mode="json"))
    return flat


class Settings(BaseModel):
    """Environment-level settings (never from the pipeline file)."""

    model_config = ConfigDict(frozen=True)

    home: Path
    tracking_uri: str

    @classmethod
    def from_env(cls, cwd: Path | None = None) -> Settings:
        home = Path(os.environ.get("DRIFTLINE_HOME") or (cwd or Path.cwd()) / ".driftline").resolve()
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
        return cls(home=home, tracking_uri=uri)
