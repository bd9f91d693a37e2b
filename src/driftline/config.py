"""Typed pipeline configuration, validated once at the edge.

One YAML file is one pipeline. Every section is a frozen pydantic model with ``extra="forbid"`` so a
misspelt key fails fast with a message naming the key and the allowed ones.
"""

from __future__ import annotations

import os
import re
import reprlib
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeVar, cast, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from driftline.errors import ConfigError
from driftline.formats import NAME_SUFFIXES

TargetKind = Literal["direction", "volatility", "label"]
ModelFamily = Literal["logreg", "random_forest", "xgboost", "lightgbm"]


AUTO: Literal["auto"] = "auto"  # a setting decided per run from what the walk-forward measured (calibration.shrink)
# calibration.require_edge: auto: the confidence a price direction target's challenger family must beat the base
# rate at on the walk-forward rows (docs/pipeline.md, "An edge before a spread")
DIRECTION_EDGE_LEVEL = 0.95
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MODEL_PREFIX = "driftline-"  # a pipeline's registered model: driftline-<name>
_GLOB = re.compile(r"[*?\[]")


def pipeline_name_from_data(data: str | None) -> str:
    """The default pipeline name: ``demo`` for the bundled demo panel (no data), else the data's file or
    folder stem made a valid model name (``~/prices/BTC 1h.csv`` -> ``BTC-1h``, ``s3://b/ohlcv/`` ->
    ``ohlcv``, ``data/*.csv`` -> ``data``). User data never lands in ``demo``: a file named ``demo.csv``
    becomes ``demo-data``.
    """
    if data is None or not str(data).strip():
        return "demo"
    text = str(data).strip().rstrip("/\\")
    if text.startswith("s3://"):
        text = text[len("s3://") :]
    parts = [p for p in PurePosixPath(text.replace("\\", "/")).parts if p not in ("/", ".", "..")]
    # A glob names the folder above its first wildcard; a Hive partition folder (key=value) names nothing.
    while parts and (_GLOB.search(parts[-1]) or "=" in parts[-1]):
        parts.pop()
    stem = parts[-1] if parts else ""
    lowered = stem.lower()
    for suffix in NAME_SUFFIXES:
        if lowered.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            lowered = stem.lower()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")[:64].rstrip("-._")
    if not name:
        name = "data"
    if name.lower() == "demo":
        name = "demo-data"
    return name if re.match(NAME_PATTERN, name) else "data"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ONE_SERIES = "series"  # the symbol of a source without a symbol column


class DataConfig(_Section):
    """Where the data is and which columns mean what (detected when left empty)."""

    path: str | None = Field(
        default=None, description="file, glob, folder (Hive partitions welcome) or s3://bucket/prefix"
    )
    time_col: str | None = Field(
        default=None, description="time column; detected (Date, timestamp, time, ...) when empty"
    )
    price_col: str | None = Field(default=None, description="price (close) column; detected when empty")
    symbol_col: str | None = Field(default=None, description="symbol column; one series when there is none")
    target_col: str | None = Field(default=None, description="label column, for target.kind label")
    positive_label: str | None = Field(
        default=None,
        description="label target: the label column's class that is 1, every other 0; not needed for 0/1 and "
        "for pairs such as up/down, yes/no, buy/sell, -1/1",
    )
    exclude_cols: tuple[str, ...] = Field(
        default=(),
        description="columns read as if the source did not have them: never a feature (an id, a note, a column "
        "that leaks the label) nor a detected price or time",
    )
    timezone: str | None = Field(
        default=None,
        description="the zone of times written without one (local clock time: Europe/Berlin, America/New_York): "
        "read in it, daylight saving included, and kept as UTC; times with an offset or zone read as they say",
    )
    demo_symbols: tuple[str, ...] = Field(
        default=("AAPL", "IBM", "MSFT", "GOOG"), description="bundled series used when path is empty"
    )
    encoding: str | None = Field(
        default=None,
        description="text encoding of CSV/JSON files (cp1252, shift_jis, ...); detected per file when empty",
    )
    sheet: str | None = Field(
        default=None,
        description="Excel sheet to read; when empty, the first that holds a table and later ones of its columns",
    )
    incremental: bool = Field(
        default=True, description="read only new or changed files/objects; the rest from the stage"
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="MinIO or any S3-compatible store; else DRIFTLINE_S3_ENDPOINT_URL / AWS_ENDPOINT_URL"
    )
    s3_profile: str | None = Field(default=None, description="AWS profile for s3:// sources; else the environment")

    @field_validator("sheet", mode="before")
    @classmethod
    def _sheet_name(cls, sheet: Any) -> Any:
        return str(sheet) if isinstance(sheet, int | float) and not isinstance(sheet, bool) else sheet  # 2024

    @field_validator("exclude_cols", mode="before")
    @classmethod
    def _column_list(cls, names: Any) -> Any:
        return (names,) if isinstance(names, str) else names  # --set data.exclude_cols=batch: one column

    @field_validator("positive_label", mode="before")
    @classmethod
    def _class_text(cls, label: Any) -> Any:
        if isinstance(label, bool):  # YAML reads yes/no, on/off as booleans
            return str(label).lower()
        if isinstance(label, float) and label.is_integer():
            return str(int(label))
        return str(label) if isinstance(label, int | float) else label

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        if zone is None:
            return None
        from zoneinfo import available_timezones

        if zone not in available_timezones():
            raise ValueError(f"unknown time zone {zone!r}: an IANA name such as Europe/Berlin, America/New_York or UTC")
        return zone

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str | None) -> str | None:
        if encoding is None:
            return None
        import codecs

        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r} (e.g. utf-8, cp1252, shift_jis, gb18030)") from None


Policy = Literal["fail", "quarantine", "warn"]
"""What a broken check does: ``fail`` stops the run, ``quarantine`` moves the rows aside with a reason,
``warn`` keeps them and records a warning. Checks on a whole column (existence, dtype, gaps) have no rows
to move aside: for them ``quarantine`` acts as ``fail``."""


class ColumnRule(_Section):
    """What one column of the canonical frame must hold; a rule for an absent column is skipped.

    ``columns`` entries merge over the built-in rule of the same column field by field, so
    ``adj_close: {nullable: true}`` loosens one thing and keeps the rest; ``volume: null`` resets the
    rule to one that checks nothing.
    """

    type: Literal["number", "integer", "string", "timestamp"] | None = None
    min: float | None = None
    max: float | None = None
    strict_min: bool = Field(default=False, description="min itself is a violation (> min, not >= min)")
    strict_max: bool = False
    nullable: bool = True
    required: bool = Field(default=False, description="a missing column fails the batch, whatever the policy")
    allowed_values: list[str | int | float | bool] | None = None
    policy: Policy | None = Field(default=None, description="None: the contract's on_violation")

    @model_validator(mode="after")
    def _bounds(self) -> ColumnRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        if self.type in ("string", "timestamp") and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max apply to number and integer columns, not {self.type}")
        return self


PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")  # in the order the contract checks them
_PRICE_RULE: dict[str, Any] = {"type": "number", "min": 0.0, "strict_min": True, "max": 1e12, "nullable": False}
DEFAULT_COLUMN_RULES: dict[str, dict[str, Any]] = {
    "symbol": {"type": "string", "required": True, "nullable": False},
    "timestamp": {"type": "timestamp", "required": True, "nullable": False},
    # A bar's close is the series; a missing open, high or low (an index quoted at its close only that day) or a
    # missing volume (Yahoo's `null`, an exchange's `-`) is a feature's missing input, carried forward
    # (features.carry_limit), not a reason to lose the bar and leave a hole in the series.
    **{price: {**_PRICE_RULE, "nullable": price not in ("close", "adj_close")} for price in PRICE_COLUMNS},
    "volume": {"type": "number", "min": 0.0, "max": 1e18, "nullable": True},
    "target": {"nullable": False},
}
"""Rules for the canonical columns; ``contract.columns`` merges over them column by column."""

ALWAYS_REQUIRED = ("symbol", "timestamp")
_CONTRACT_FILE_ERROR = "contract_file"


def _default_columns() -> dict[str, ColumnRule]:
    return {name: ColumnRule(**rule) for name, rule in DEFAULT_COLUMN_RULES.items()}


def _rule_dict(rule: Any) -> Any:
    """Only the fields a user actually set, so that merging keeps the defaults of the others."""
    return rule.model_dump(exclude_unset=True) if isinstance(rule, ColumnRule) else rule


def _merge_columns(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Column by column, field by field; ``None`` for a column resets it to a rule that checks nothing.

    The reset rule sets every field, so it also wins when merged over a built-in rule again: a resolved
    config dumped to YAML loads back to the same contract.
    """
    merged = {name: _rule_dict(rule) for name, rule in base.items()}
    for name, rule in over.items():
        rule = ColumnRule().model_dump() if rule is None else _rule_dict(rule)
        if isinstance(rule, dict) and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **rule}
        else:
            merged[name] = rule
    return merged


def _parse_timedelta(value: str | None, key: str) -> None:
    if value is None:
        return
    import pandas as pd  # lazily: importing the config stays cheap for `driftline --help`

    try:
        delta = pd.Timedelta(value)
    except (ValueError, TypeError):
        raise ValueError(f"{key} must be a duration like '7D' or '36h', not {value!r}") from None
    if delta <= pd.Timedelta(0):
        raise ValueError(f"{key} must be positive, not {value!r}")


class ContractConfig(_Section):
    """The data contract checked with Great Expectations before anything is trained.

    ``file`` names a per-dataset contract YAML holding the keys of this section. It is read when the
    config is validated (relative to the pipeline file's folder, else the working directory); keys
    given inline override the file's (``columns`` field by field). Afterwards ``file`` is None and the
    section holds every key itself, so a resolved config stored with a model does not need the file.
    """

    file: str | None = Field(default=None, description="per-dataset contract YAML with the keys of this section")
    on_violation: Policy = Field(default="quarantine", description="policy of column rules without their own")
    min_rows_per_symbol: int = Field(
        default=100,
        ge=1,
        description="clean rows a symbol needs; when no symbol has this many and it is not set, a quarter of the "
        "longest symbol's rows (at least 10; docs/pipeline.md#short-data)",
    )
    short_symbols: Literal["fail", "quarantine"] = Field(
        default="quarantine",
        description="a symbol left with fewer than min_rows_per_symbol clean rows: quarantine sets its rows aside "
        "(with the reason) and trains on the other symbols; fail stops the run. No symbol long enough fails either way",
    )
    columns: dict[str, ColumnRule] = Field(default_factory=_default_columns)
    unique: Policy = Field(default="quarantine", description="(symbol, timestamp); the first occurrence is kept")
    monotonic_time: Policy = Field(default="warn", description="timestamps going back within a symbol, in source order")
    max_gap: str | None = Field(default=None, description="largest step between a symbol's timestamps, e.g. '7D'")
    max_gap_policy: Literal["fail", "warn"] = "warn"
    calendar: Literal["any", "weekdays"] = Field(default="any", description="weekdays: no Saturday/Sunday (UTC) rows")
    calendar_policy: Policy = "quarantine"
    max_future: str | None = Field(default="1D", description="timestamps later than now + this are in the future")
    future_policy: Policy = "quarantine"
    price_consistency: Policy = Field(
        default="quarantine", description="high >= low; open and close within [low, high]"
    )
    max_quarantine_fraction: float = Field(
        default=0.1, ge=0.0, le=1.0, description="more quarantined rows fail the batch"
    )

    @model_validator(mode="before")
    @classmethod
    def _read_file(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or not data.get("file"):
            return data
        base_dir = (info.context or {}).get("base_dir")
        path = Path(str(data["file"])).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or Path.cwd()) / path
        inline = {key: value for key, value in data.items() if key != "file"}
        merged = _merge_contract(_read_contract_file(path, info.context), inline)
        return {**merged, "file": None}

    @field_validator("columns", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return value
        return _merge_columns(DEFAULT_COLUMN_RULES, value)

    @model_validator(mode="after")
    def _consistent(self) -> ContractConfig:
        for name in ALWAYS_REQUIRED:
            rule = self.columns.get(name)
            if rule is None or not rule.required:
                raise ValueError(f"columns.{name} is always required (the pipeline keys rows on it)")
        _parse_timedelta(self.max_gap, "max_gap")
        _parse_timedelta(self.max_future, "max_future")
        return self

    def policy_of(self, column: str) -> Policy:
        """The policy of a column's rules: its own, else ``on_violation``."""
        rule = self.columns.get(column)
        return (rule.policy if rule is not None else None) or self.on_violation


def _merge_contract(from_file: dict[str, Any], inline: dict[str, Any]) -> dict[str, Any]:
    merged = {**from_file, **inline}
    if isinstance(from_file.get("columns"), dict) and isinstance(inline.get("columns"), dict):
        merged["columns"] = _merge_columns(from_file["columns"], inline["columns"])
    return merged


MAX_YAML_BYTES = 1_000_000
"""Largest config or contract file read: a pipeline file is a few kB."""


class _NoAliasLoader(yaml.SafeLoader):
    """Safe loading without anchors or aliases: a few hundred bytes of nested aliases ("billion laughs")
    expand to gigabytes once anything walks the result."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML's parser is untyped
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _AliasFound(event.start_mark.line + 1, event.start_mark.column + 1)
        return super().compose_node(parent, index)


class _AliasFound(Exception):
    def __init__(self, line: int, column: int) -> None:
        super().__init__(line, column)
        self.line, self.column = line, column


def read_yaml(text: str, source: str) -> Any:
    """Parse a Driftline YAML file (config or contract): safe types only, no anchors or aliases, bounded size.

    Raises:
        ConfigError: naming ``source``, the line and column and the problem; never quoting the input.
    """
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(
            f"{source} is {len(text):,} characters long; a Driftline YAML file may have at most {MAX_YAML_BYTES:,}"
        )
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except _AliasFound as found:
        raise ConfigError(
            f"{source}, line {found.line}, column {found.column}: YAML anchors and aliases (&name, *name) are not "
            "allowed in Driftline files (nested aliases can expand a small file into gigabytes); write the values out"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{source} is not valid YAML: {problem}{where}") from None


def _read_contract_file(path: Path, context: Any) -> dict[str, Any]:
    """The mapping in a contract file, checked on its own so that errors name the file and the key."""

    def fail(message: str) -> PydanticCustomError:
        return PydanticCustomError(_CONTRACT_FILE_ERROR, "{detail}", {"detail": message})

    if not path.is_file():
        raise fail(f"contract file {path} does not exist")
    try:
        loaded = read_yaml(path.read_text(encoding="utf-8"), f"contract file {path}")
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise fail(f"contract file {path} must hold a mapping of contract keys, not {type(loaded).__name__}")
    if "file" in loaded:
        raise fail(f"{path}: key 'file' is not allowed inside a contract file (contract files do not chain)")
    try:
        ContractConfig.model_validate(loaded, context=context)
    except ValidationError as exc:
        raise fail("; ".join(_describe(e, str(path), ContractConfig) for e in exc.errors(include_url=False))) from None
    return loaded


# The fewest labelled rows of each class worth training on (``target.min_class_rows``). The default pipeline fits
# a calibrator on the end of every training window, scores 5 walk-forward test folds and one hold-out window:
# about 7 time segments that each need both classes. 50 leaves some 7 minority rows per segment when they are
# spread evenly; with fewer, a single-class calibration slice is likely and fold AUC, Brier and the hold-out
# log-loss CI are noise. Imbalance itself is fine: 1% of 100 000 rows is plenty.
MIN_CLASS_ROWS = 50


class TargetConfig(_Section):
    kind: TargetKind = "volatility"
    horizon: int = Field(default=5, ge=1, le=250)
    dead_band: float = Field(default=0.0, ge=0.0, description="direction: |forward log return| below this is dropped")
    median_window: int = Field(default=250, ge=10, description="volatility: trailing window of the median threshold")
    label_delay: int | None = Field(
        default=None,
        ge=1,
        description="periods until a row's label is known; drives the label lags, the purge gap and the hold-out gap "
        "(default: 1 for label, horizon for direction and volatility)",
    )
    label_lags: tuple[int, ...] = Field(
        default=(1, 2, 5),
        description="lags of the known label as features (price targets: the label the prices gave); lag 1 is "
        "the newest known label (label_delay rows back), lag k is k-1 rows before it; [] for none",
    )
    ahead: int = Field(
        default=0,
        ge=0,
        le=250,
        description="label: predict the label column this many rows after the row (a state such as 'raining' as "
        "it will be 6 rows later: 6; known that many rows later, the current state is lag 1); 0: each row's "
        "label is its own outcome",
    )
    min_class_rows: int = Field(
        default=MIN_CLASS_ROWS,
        ge=2,
        description="fewest labelled rows of either class to train on: each calibration slice, test fold and the "
        "hold-out needs both (rare events: lower it, and the folds' metrics get noisier)",
    )

    @property
    def needs_label(self) -> bool:
        """The data must carry a label column (``data.target_col``): the target is given, not built."""
        return self.kind == "label"

    @property
    def price_target(self) -> bool:
        """The label is built from the prices (direction or volatility regime)."""
        return self.kind != "label"

    @property
    def is_direction(self) -> bool:
        """The label is the sign of the forward return: a long/flat strategy and its metrics exist."""
        return self.kind == "direction"

    @property
    def known_after(self) -> int:
        """The effective ``label_delay``: rows until a row's label is known."""
        if self.label_delay is not None:
            return self.label_delay
        return max(1, self.ahead) if self.needs_label else self.horizon

    def unread_horizon(self) -> str | None:
        """Why a ``horizon`` set for a label target changes nothing, or None: a label target reads ``ahead``
        (``--horizon`` on the command line becomes it; a file, ``--set`` or a deployment's ``target_horizon``
        set ``horizon``). Only a value other than the default is named: the default config file sets it for
        the price targets."""
        default = type(self).model_fields["horizon"].default
        if not self.needs_label or "horizon" not in self.model_fields_set or self.horizon == default:
            return None
        known = f"known {self.known_after} row{'s' if self.known_after > 1 else ''} later"
        now = f"the label {self.ahead} rows on ({known})" if self.ahead else f"each row's own label ({known})"
        return (
            f"target.horizon ({self.horizon}) is read by no label target: this one predicts {now}; to predict the "
            f"label {self.horizon} rows on, set target.ahead={self.horizon} (--horizon {self.horizon} on the command "
            "line does), and leave horizon out"
        )

    @model_validator(mode="after")
    def _delay_covers_horizon(self) -> TargetConfig:
        if self.price_target and self.ahead:
            raise ValueError(
                f"ahead ({self.ahead}) is for a label target; the {self.kind} target looks ahead by horizon"
            )
        if self.needs_label and self.label_delay is not None and self.label_delay < self.ahead:
            raise ValueError(
                f"label_delay ({self.label_delay}) must be >= ahead ({self.ahead}): the label {self.ahead} rows "
                "later is known no sooner"
            )
        if self.price_target and self.label_delay is not None and self.label_delay < self.horizon:
            raise ValueError(
                f"label_delay ({self.label_delay}) must be >= horizon ({self.horizon}) for the {self.kind} target: "
                "its label describes the next horizon periods, so it is known no sooner"
            )
        return self


class FeatureConfig(_Section):
    """Trailing windows, in rows, sized for daily bars. When their warm-up leaves too little data for the
    walk-forward and the hold-out (yearly or monthly data), the windows not set are scaled down together
    (``driftline.short_data``, docs/pipeline.md#short-data)."""

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
    level_window: int = Field(
        default=1000,
        ge=0,
        description="known labels per series behind its recent share of positives, the level a model's probability "
        "is shrunk toward (calibration.shrink) instead of the training window's share; not a model input; 0: the "
        "window's share",
    )
    carry_limit: int = Field(
        default=5,
        ge=0,
        description="a label series' feature, or a bar's volume: a missing value is its series' last known one for "
        "at most this many rows (a sensor's short dropout); rows further into a gap, or all with 0, are left out",
    )

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
    test_size: int | None = Field(
        default=None,
        ge=1,
        description=(
            "timestamps per test fold; default: expanding, n_splits + 1 equal parts, "
            "the first training window one of them (at least min_train_size)"
        ),
    )
    gap: int | None = Field(
        default=None, ge=0, description="timestamps purged between train and test; default: target.label_delay"
    )
    min_train_size: int = Field(default=250, ge=2, description="timestamps in the first training window")
    max_train_size: int | None = Field(default=None, ge=2, description="sliding: timestamps per training window")


class CalibrationConfig(_Section):
    """How probabilities are calibrated (``driftline.calibration``).

    ``auto`` chooses per walk-forward fold, from rows before the fold's test rows only: the base model's
    own probability (or the slice's sigmoid when the slice has >= 1000 rows) unless a calibrator beat it on
    every earlier fold, at least two, in log loss. Candidates: fitted on the window's last slice or on the
    earlier folds' pooled out-of-fold predictions, each as sigmoid, beta (>= 200 rows) or isotonic
    (>= 1000 rows). The challenger's calibrator follows the same rule over all folds. ``sigmoid``,
    ``beta`` and ``isotonic`` fit that form on each window's slice; a slice of one class (a short window in
    one regime) leaves that window's model uncalibrated (``none-one-class-slice``).

    The default stays ``sigmoid``: on the bundled four-stock demo panel ``auto`` raised the pooled
    walk-forward log loss of logreg from 0.638 to 0.669 (``make demo`` vs ``--set calibration.method=auto``,
    2026-12-03), though it helped single stocks (docs/pipeline.md, "Calibration out of sample").

    ``level``: a slice-fitted calibrator sets the forecast's level to the slice's share of positives (the
    newest regime); half way toward the whole window's share in logit space lowered the pooled
    walk-forward log loss of every family on the bundled equity targets (docs/pipeline.md, "The calibrated
    level"). ``shrink: auto`` shrinks only a family that lost to the base rate on the walk-forward
    (docs/pipeline.md, "Shrinkage toward the base rate").

    ``require_edge``: the challenger family must beat the base rate on the walk-forward's rows by more than
    chance (the interval of its mean row log-loss difference, a moving-block bootstrap over timestamps with
    the promotion test's block, wholly below 0); otherwise the challenger predicts the development rows'
    positive share, Laplace-smoothed as the ``base_rate`` baseline states it. ``auto`` (the default) asks it of
    a price direction target only, at ``DIRECTION_EDGE_LEVEL``: on the sign of a stock's 5-day return no
    family's edge was more than chance and the best family's spread lost 0.0048 log loss to the base rate on
    the hold-out, which the rule makes a tie; the sea temperature's direction showed its edge and kept its
    model. Volatility regimes and labels are not asked: on the demo panel's volatility target for 2000-2006
    the walk-forward saw no edge (its 2000-2002 folds), and the flattened challenger's hold-out log loss was
    0.7103 where the model's is 0.6555, persistence's 0.7009 (docs/pipeline.md, "An edge before a spread").
    """

    method: Literal["auto", "isotonic", "sigmoid", "beta"] = Field(
        default="sigmoid",
        description="sigmoid on each window's last slice; auto: per fold, what held best on earlier folds' rows",
    )
    fraction: float = Field(default=0.2, gt=0.0, lt=0.5, description="share of each training window used to calibrate")
    shrink: bool | Literal["auto"] = Field(
        default=AUTO,
        description="pull probabilities toward the training base rate by a weight fitted on earlier folds' "
        "out-of-fold rows (first fold: on the calibration slice); 0 on a series without signal. auto: only "
        "a family whose walk-forward log loss lost to the base rate (true for every family: a "
        "weight learnt in an old regime can erase a model's edge on recent rows)",
    )
    level: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="weight of the whole training window's positive share in a slice-fitted calibrator's level, "
        "against the calibration slice's own share (logit space): 0 keeps the slice's level; ignored by auto",
    )
    require_edge: Annotated[float, Field(gt=0.5, lt=1.0)] | Literal["auto"] | None = Field(
        default=AUTO,
        description="two-sided confidence at which the challenger family's pooled walk-forward log loss must beat "
        "the base rate's (moving-block bootstrap, as the promotion test); when the interval reaches 0 the "
        "challenger predicts the development rows' positive share, since a spread with no shown edge only costs "
        f"log loss; auto: {DIRECTION_EDGE_LEVEL} for a price direction target, off for the others; null: off",
    )

    def edge_level(self, is_direction: bool) -> float | None:
        """``require_edge`` for a target: ``auto`` asks a price direction target for an edge at
        ``DIRECTION_EDGE_LEVEL``, and no other target for one."""
        if self.require_edge == AUTO:
            return DIRECTION_EDGE_LEVEL if is_direction else None
        return self.require_edge


class TuningConfig(_Section):
    """Hyperparameter search inside each walk-forward training window (``driftline.tuning``).

    Per fold and family, Optuna's seeded TPE sampler searches the family's key hyperparameters on the
    window's fitting rows only: an inner training part, a purge gap of ``splits.gap`` timestamps, and the
    last ``inner_fraction`` of them as inner validation (scored by log loss). The calibration slice and the
    test fold are never seen. The first trial is always the configured parameters. XGBoost and LightGBM
    stop early on the inner validation slice; the refit uses the best trial's number of trees.
    Hyperparameters set in ``models.params`` are kept fixed, not searched. Part of ``models``, so of every
    fit's cache key. With ``timeout_seconds`` the number of trials depends on the machine's speed, so
    results are reproducible only without it.
    """

    enabled: bool = Field(default=False, description="search hyperparameters per fold and family (costs trials x fits)")
    trials: int = Field(
        default=12, ge=1, le=1000, description="Optuna trials per search, the configured parameters first"
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="stop a search after this long (then not reproducible)"
    )
    inner_fraction: float = Field(
        default=0.25, gt=0.0, lt=0.5, description="share of the fitting rows used as inner validation"
    )
    families: tuple[ModelFamily, ...] | None = Field(
        default=None, description="families to tune; null: every family in models.families"
    )
    min_validation_rows: int = Field(
        default=200,
        ge=10,
        description="a window whose inner validation slice has fewer rows keeps the configured parameters",
    )


class ModelsConfig(_Section):
    families: tuple[ModelFamily, ...] = ("logreg", "random_forest", "xgboost", "lightgbm")
    ensemble: bool = False
    seed: int = 42
    params: dict[ModelFamily, dict[str, float | int | str | bool | None]] = Field(default_factory=dict)
    linear_base: tuple[Literal["lightgbm"], ...] = Field(
        default=("lightgbm",),
        description="boosted families whose trees learn on top of a logistic regression's log-odds (init score), "
        "in memory only; [] for plain boosters",
    )
    tuning: TuningConfig = Field(default_factory=TuningConfig)

    def params_for(self, family: str) -> dict[str, float | int | str | bool | None]:
        """``params[family]``, empty when none are set (``family`` as a plain string: validated elsewhere)."""
        return self.params.get(cast(ModelFamily, family), {})

    @model_validator(mode="after")
    def _non_empty(self) -> ModelsConfig:
        if not self.families:
            raise ValueError("at least one model family is required")
        if len(set(self.families)) != len(self.families):
            raise ValueError("families must not repeat")
        return self


class EvaluationConfig(_Section):
    """The hold-out window at the end of the data on which champion and challenger are compared."""

    window: int = Field(
        default=500,
        ge=10,
        description="timestamps at the end never trained on by the challenger; when not set, 5% of the "
        "timestamps if that is more (at most 5000), and fewer on short data",
    )


class PromotionConfig(_Section):
    """When a challenger may replace the champion (or, for the first model, the base-rate predictor)."""

    metric: Literal["log_loss", "brier"] = "log_loss"
    level: float = Field(
        default=0.95, gt=0.5, lt=1.0, description="two-sided confidence level of the loss-difference CI"
    )
    n_bootstrap: int = Field(default=2000, ge=200, le=100_000)
    block_length: int | None = Field(
        default=None,
        ge=1,
        description="bootstrap block, in timestamps; default max(10, 2 x the "
        "label's overlap: horizon, or label_delay for label targets)",
    )
    min_rows: int = Field(default=200, ge=10, description="evaluation rows needed before any promotion")
    ece_cap: float = Field(default=0.1, gt=0.0, le=1.0, description="hold-out ECE cap; equal-mass bins of >= 100 rows")
    walk_forward_ece_cap: float | None = Field(
        default=0.08,
        gt=0.0,
        le=1.0,
        description="cap on the challenger family's pooled walk-forward ECE, over bins of >= 100 rows (10 bins from "
        "1,000 rows: a calibrated model's is about 0.4*sqrt(10/rows), 0.026 at 2,500 rows); null turns the check off",
    )
    auc_tolerance: float = Field(
        default=0.02, ge=0.0, le=1.0, description="challenger AUC may trail the champion's by this"
    )
    sharpe_tolerance: float = Field(default=0.25, ge=0.0, description="direction target: Sharpe may trail by this")
    drawdown_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="direction target: max drawdown may exceed the champion's by this (a first model's: the larger "
        "of the best baseline's and holding the asset's)",
    )
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
    """When a batch has drifted away from the training data.

    ``method: null`` (the default) judges a window's PSI against how far the same PSI moves between a window
    of the reference period and the rest of it (the null stored with the reference profile): valid on
    autocorrelated rows, where a chi-square p-value on the row count is ~0 even when nothing changed. A
    profile without a null (built before it existed, or without timestamps) falls back to ``chi2``: the
    p-value, ``min_psi``, ``psi_alert`` and ``prediction_psi`` rule, which assumes independent rows.
    """

    method: Literal["null", "chi2"] = Field(
        default="null",
        description="null: PSI against the reference's own window-to-window PSI; chi2: independent-rows test",
    )
    null_windows: tuple[int, ...] = Field(
        default=(21, 63, 126, 252),
        description="window lengths (timestamps) of the null, each at most a third of the reference period",
    )
    null_quantile: float = Field(
        default=0.99, ge=0.5, le=1.0, description="a column drifts above this quantile of its null PSI"
    )
    null_margin: float = Field(default=1.0, gt=0.0, description="factor on the null quantile")
    psi_warn: float = Field(default=0.1, gt=0.0)
    psi_alert: float = Field(
        default=0.25, gt=0.0, description="chi2: a column with this PSI has drifted, whatever its p-value"
    )
    p_value: float = Field(default=0.01, gt=0.0, lt=1.0, description="chi2: homogeneity test on the PSI bins")
    min_psi: float = Field(default=0.02, ge=0.0, description="smallest PSI that counts as a shift worth acting on")
    drift_share: float = Field(
        default=0.3, gt=0.0, le=1.0, description="share of drifted features that is dataset drift"
    )
    prediction_psi: float = Field(default=0.1, gt=0.0, description="chi2: score PSI that is prediction drift")
    brier_tolerance: float = Field(default=0.02, ge=0.0)
    ece_cap: float = Field(default=0.1, gt=0.0, le=1.0)
    min_rows: int = Field(default=100, ge=1)
    min_labelled_rows: int = Field(default=200, ge=10)
    bins: int = Field(default=10, ge=3, le=100)
    report_sample: int = Field(default=5000, ge=100, description="rows per side in the Evidently report")
    training_report: bool = Field(
        default=True,
        description="an Evidently report of training vs hold-out rows with every "
        "trained version (about 15 s, mostly importing Evidently)",
    )
    min_hours_between_retrains: float = Field(default=6.0, ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        if self.psi_warn > self.psi_alert:
            raise ValueError("psi_warn must not exceed psi_alert")
        if not self.null_windows or min(self.null_windows) < 2:
            raise ValueError("null_windows must be a non-empty list of window lengths of at least 2 timestamps")
        return self


class MetricsConfig(_Section):
    top_k_fraction: float = Field(default=0.1, gt=0.0, le=1.0, description="precision@K: K as a share of rows")
    ece_bins: int = Field(default=10, ge=2, le=100)
    periods_per_year: int | None = Field(default=None, ge=1, description="annualises Sharpe; null: timestamps per year")
    cost_bps: float = Field(default=0.0, ge=0.0, description="strategy: cost per unit of turnover, basis points")


class RunnerConfig(_Section):
    """Where the walk-forward fits run. The result is the same either way, so no cache key or training
    fingerprint includes this section.

    ``dask`` runs every (fold, family) fit as its own task, single-threaded, on a local cluster or an
    existing scheduler. A local cluster's workers are threads of this process by default: the learners
    release the GIL while fitting, the feature set is shared rather than copied, and the cluster is up in
    well under a second. Worker processes (``processes: true``) isolate the fits but each one starts a
    Python, imports the libraries and receives its own copy of the features: about 10 s more here.
    Workers of an existing scheduler need this package (same version), the run's Prefect API
    (``PREFECT_API_URL``, not the ephemeral one of a local run) and its result storage.
    """

    kind: Literal["sequential", "dask"] = Field(
        default="sequential", description="dask: every (fold, family) fit is a task on a Dask cluster, in parallel"
    )
    address: str | None = Field(
        default=None, description="dask: an existing scheduler, e.g. tcp://host:8786; None starts a local cluster"
    )
    n_workers: int = Field(default=2, ge=1, description="local cluster: workers (about one per core)")
    threads_per_worker: int = Field(default=1, ge=1, description="local cluster: fits at once per worker")
    processes: bool = Field(default=False, description="local cluster: workers are processes, not threads of this one")


class ScaleConfig(_Section):
    """In memory or out of core (``driftline.feature_store``, ``driftline.streaming``).

    ``auto`` streams when the feature rows times feature columns exceed ``streaming_above_cells``: the
    in-memory path peaked at 3.7 GiB for 1M rows x 50 features (benchmarks, ``scale_1m_peak_rss_gib``)
    and grows linearly. The streamed path has logreg, xgboost and lightgbm, no tuning and no naive
    baselines: under ``auto`` the rest is left out (said in the summary's ``data_path``), a forced
    ``streaming`` refuses it.
    """

    path: Literal["auto", "memory", "streaming"] = Field(
        default="auto", description="auto: stream above streaming_above_cells; memory or streaming forces one"
    )
    streaming_above_cells: int = Field(
        default=50_000_000, ge=1, description="auto: feature rows x columns above which training streams"
    )
    batch_rows: int = Field(default=500_000, ge=1_000, description="streaming: rows read per batch")


MIN_BLOCK_LENGTH = 10
"""Least default bootstrap block, in timestamps: model errors persist beyond the label's own overlap."""


class FitSpec(_Section):
    """Everything that shapes a fit, given its feature set: the argument of every fitting task and, hashed
    with the features' content hash and the code version, its cache key (``tasks.caching.fit_cache_key``).

    A fitting task receives this and the features, nothing else from the config, so a setting it reads is
    part of its key by construction: a new fitting setting goes here (or in one of these sections) or the
    fit cannot see it. The core's fitting functions (``driftline.training``, ``driftline.streaming``) take it
    whole as well. Built from a config by ``PipelineConfig.fit_spec``, which sets every field; the defaults
    (each section's own) are for tests and benchmarks that vary one section.
    """

    splits: SplitConfig = SplitConfig()
    gap: int = Field(ge=0, description="timestamps purged before every test fold and calibration slice")
    label_delay: int = Field(default=1, ge=1, description="rows until a row's label is known")
    calibration: CalibrationConfig = CalibrationConfig()
    models: ModelsConfig = ModelsConfig()
    metrics: MetricsConfig = MetricsConfig()
    threshold: ThresholdConfig = ThresholdConfig()
    is_direction: bool = Field(
        default=False, description="direction target: strategy metrics on the next return are scored too"
    )
    block_length: int = Field(
        default=MIN_BLOCK_LENGTH,
        ge=1,
        description="timestamps per bootstrap block of the walk-forward edge (calibration.require_edge)",
    )
    scale: ScaleConfig = Field(default_factory=ScaleConfig, description="in memory or streamed")

    @property
    def edge_level(self) -> float | None:
        """The confidence of the challenger family's edge over the base rate (``calibration.require_edge`` for
        this target); None: not asked for."""
        return self.calibration.edge_level(self.is_direction)


class DecisionSpec(_Section):
    """Everything that shapes a promotion decision, given the two models' scores on the same rows: the
    argument of ``evaluate_challenger``, ``decide_promotion`` and ``compare_shadow``. Built from a config by
    ``PipelineConfig.decision_spec``, which sets every field; the defaults are for tests and benchmarks.
    """

    promotion: PromotionConfig = PromotionConfig()
    metrics: MetricsConfig = MetricsConfig()
    block_length: int = Field(ge=1, description="timestamps per block of the moving-block bootstrap")
    gap: int = Field(default=0, ge=0, description="timestamps after a champion's training cutoff left out")
    is_direction: bool = Field(
        default=False, description="direction target: strategy guardrails (Sharpe, drawdown) are checked too"
    )


SpecT = TypeVar("SpecT", FitSpec, DecisionSpec)


class PipelineConfig(_Section):
    """The whole pipeline; core functions receive only the section they need."""

    name: str = Field(default="demo", pattern=NAME_PATTERN)
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
    runner: RunnerConfig = RunnerConfig()
    scale: ScaleConfig = ScaleConfig()

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        if self.splits.gap is not None:
            if self.target.price_target and self.splits.gap < self.target.horizon:
                raise ValueError(
                    f"splits.gap ({self.splits.gap}) must be >= target.horizon ({self.target.horizon}), "
                    "or training labels overlap the test window"
                )
            if self.splits.gap < self.label_delay:
                raise ValueError(
                    f"splits.gap ({self.splits.gap}) must be >= target.label_delay ({self.label_delay}), "
                    "or training rows use labels not yet known when the test window starts"
                )
        if self.target.needs_label and not self.data.target_col:
            raise ValueError("target.kind 'label' needs data.target_col (or --target-col)")
        return self

    @field_validator("name")
    @classmethod
    def _pipeline_not_model(cls, name: str) -> str:
        """The registered model's name (``driftline-btc``, as every command prints it) names its pipeline (btc)."""
        return name.removeprefix(MODEL_PREFIX) or name

    @property
    def model_name(self) -> str:
        """Registered model name in the model registry."""
        return f"{MODEL_PREFIX}{self.name}"

    @property
    def decision_spec(self) -> DecisionSpec:
        """Everything that shapes a promotion decision, in one frozen object."""
        return self._spec(DecisionSpec)

    @property
    def fit_spec(self) -> FitSpec:
        """Everything that shapes a fit (and keys its cache), in one frozen object."""
        return self._spec(FitSpec)

    def _spec(self, kind: type[SpecT]) -> SpecT:
        """``kind`` with each field read from this config's attribute of the same name (a section or a derived
        property): a field added to a spec without a setting behind it fails here, at the first run, instead of
        silently keeping its default."""
        return kind(**{name: getattr(self, name) for name in kind.model_fields})

    @property
    def is_direction(self) -> bool:
        """The target is the price's direction: strategy metrics are scored and guarded too."""
        return self.target.is_direction

    @property
    def label_delay(self) -> int:
        """Rows until a row's label is known: ``target.label_delay``, else 1 for a label target and the
        horizon for the price targets."""
        return self.target.known_after

    @property
    def gap(self) -> int:
        """Timestamps purged before every test fold, calibration slice and the hold-out window."""
        return self.splits.gap if self.splits.gap is not None else self.label_delay

    @property
    def label_overlap(self) -> int:
        """Rows a label spans, so neighbouring labels share: the horizon for the price targets (a label is
        the next h periods' return or volatility); for a given label, ``label_delay`` (a label known after d
        rows describes up to those d rows). A label target's ``horizon`` shapes no label and counts not."""
        return self.label_delay if self.target.needs_label else self.target.horizon

    @property
    def block_length(self) -> int:
        """Bootstrap block (timestamps): ``promotion.block_length``, else ``max(MIN_BLOCK_LENGTH, 2 x
        label_overlap)``.

        The hold-out's loss differences are autocorrelated over the label's overlap (measured on GARCH
        panels: lag-1..5 autocorrelation 0.49, 0.31, 0.24, 0.15, 0.11 at horizon 5; about 0 at horizon
        1), and also over the time the models' errors persist, which no setting tells. The floor covers
        the latter: in the promotion benchmark's world (errors AR(1) with phi 0.9) with one-period labels,
        blocks of 2 promoted 6.0% of equal-skill challengers and blocks of 10 3.5% (200 simulations each),
        at the same power (97.5% vs 96.5% on the modest-gain scenario).
        """
        return self.promotion.block_length or max(MIN_BLOCK_LENGTH, 2 * self.label_overlap)


class PipelineSettings(BaseModel):
    """The pipeline's main settings as one typed run parameter (the Prefect UI renders it as a form).

    Every field is optional: empty keeps the value of the config file. Each one maps to a dotted
    config key (``SETTING_KEYS``) and is validated there like the YAML, so a bad value names the key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_kind: TargetKind | None = Field(default=None, description="target.kind: what to predict")
    target_horizon: int | None = Field(default=None, ge=1, le=250, description="target.horizon: rows ahead")
    target_label_delay: int | None = Field(
        default=None, ge=1, le=250, description="target.label_delay: rows until a row's label is known"
    )
    evaluation_window: int | None = Field(default=None, ge=10, description="evaluation.window: hold-out timestamps")
    n_splits: int | None = Field(default=None, ge=2, le=50, description="splits.n_splits: walk-forward folds")
    model_families: list[ModelFamily] | None = Field(default=None, min_length=1, description="models.families")
    promotion_metric: Literal["log_loss", "brier"] | None = Field(default=None, description="promotion.metric")
    drift_share: float | None = Field(
        default=None, gt=0.0, le=1.0, description="drift.drift_share: share of drifted features that is dataset drift"
    )
    drift_method: Literal["null", "chi2"] | None = Field(
        default=None, description="drift.method: null (the reference's own window-to-window PSI) or chi2"
    )
    null_quantile: float | None = Field(
        default=None, ge=0.5, le=1.0, description="drift.null_quantile: a column drifts above this quantile of its null"
    )
    null_margin: float | None = Field(
        default=None, gt=0.0, description="drift.null_margin: factor on the null quantile"
    )
    psi_alert: float | None = Field(default=None, gt=0.0, description="drift.psi_alert (chi2 rule)")
    prediction_psi: float | None = Field(default=None, gt=0.0, description="drift.prediction_psi (chi2 rule)")
    min_hours_between_retrains: float | None = Field(
        default=None, ge=0.0, description="drift.min_hours_between_retrains"
    )

    def overrides(self) -> dict[str, Any]:
        """Dotted config overrides for the fields that are set."""
        return {SETTING_KEYS[field]: value for field, value in self.model_dump(exclude_none=True).items()}

    def drift_overrides(self) -> dict[str, Any]:
        """Overrides for a monitoring run, which scores with the champion's own training settings.

        Raises:
            ConfigError: a setting that shapes training was given.
        """
        overrides = self.overrides()
        shaping = sorted(key for key in overrides if not key.startswith("drift."))
        if shaping:
            raise ConfigError(
                "monitoring uses the champion's training settings; only "
                f"drift.* settings apply here, not {', '.join(shaping)}"
            )
        return overrides


SETTING_KEYS: dict[str, str] = {
    "target_kind": "target.kind",
    "target_horizon": "target.horizon",
    "target_label_delay": "target.label_delay",
    "evaluation_window": "evaluation.window",
    "n_splits": "splits.n_splits",
    "model_families": "models.families",
    "promotion_metric": "promotion.metric",
    "drift_share": "drift.drift_share",
    "drift_method": "drift.method",
    "null_quantile": "drift.null_quantile",
    "null_margin": "drift.null_margin",
    "psi_alert": "drift.psi_alert",
    "prediction_psi": "drift.prediction_psi",
    "min_hours_between_retrains": "drift.min_hours_between_retrains",
}
"""PipelineSettings field -> the config key it overrides."""


def with_settings(overrides: dict[str, Any], settings: PipelineSettings | dict[str, Any] | None) -> dict[str, Any]:
    """``overrides`` plus the settings that are set (a setting wins over an override left empty or given).

    Raises:
        ConfigError: ``settings`` is a mapping that is not valid PipelineSettings.
    """
    if settings is None:
        return dict(overrides)
    if not isinstance(settings, PipelineSettings):
        try:
            settings = PipelineSettings.model_validate(settings)
        except ValidationError as exc:
            raise ConfigError(
                "; ".join(_describe(e, "settings", PipelineSettings) for e in exc.errors(include_url=False))
            ) from None
    return {**overrides, **settings.overrides()}


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted!r}: {key!r} is not a section")
        node = child
    node[leaf] = value


_SHORT = reprlib.Repr()  # a wrong value is quoted in an error, never at length
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = 4
_SHORT.maxlevel = 2


def _describe(error: ErrorDetails, source: str, root: type[BaseModel] | None = None) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "<top level>"
    if error["type"] == _CONTRACT_FILE_ERROR:
        return f"{source}: {where}: {error['msg']}"
    if error["type"] == "extra_forbidden":
        section: type[BaseModel] = root or PipelineConfig
        keyed = False  # the part after a dict[str, Model] field is a user's key, not a field
        for part in error["loc"][:-1]:
            if keyed:
                keyed = False
                continue
            field = section.model_fields.get(str(part))
            annotation = getattr(field, "annotation", None) if field else None
            if get_origin(annotation) is dict:
                annotation, keyed = get_args(annotation)[-1], True
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                section = annotation
        allowed = ", ".join(sorted(section.model_fields))
        return f"{source}: unknown key {where!r}; allowed here: {allowed}"
    message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix on a validator's own message
    got = _SHORT.repr(error.get("input"))
    if error["type"] == "value_error" and (got in message or isinstance(error.get("input"), dict)):
        return f"{source}: {where}: {message}"  # the message names the value (or the section's values)
    return f"{source}: {where}: {message} (got {got})"


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    sets: dict[str, Any] | None = None,
) -> PipelineConfig:
    """Load a YAML config and apply dotted-key overrides (``{"target.kind": "direction"}``).

    Args:
        path: the pipeline YAML; the defaults when None.
        overrides: dotted keys; a None value keeps the file's value (an option left empty).
        sets: dotted keys a user set explicitly (``--set key=value``), applied before ``overrides``;
            None sets the key to null. Errors on these keys name ``--set``.

    Raises:
        ConfigError: naming the file (or ``--set``), the key and what is allowed.
    """
    source = str(path) if path else "<defaults>"
    tree: dict[str, Any] = {}
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {source} does not exist")
        loaded = read_yaml(file.read_text(encoding="utf-8"), source)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{source} must hold a mapping of sections, not {type(loaded).__name__}")
        tree = loaded or {}
    # A contract file named in the pipeline file is found next to it.
    return _validated(tree, source, overrides, base_dir=Path(path).resolve().parent if path else None, sets=sets)


def config_from_yaml(text: str, source: str, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """A config stored as YAML text (e.g. the one a model was trained with), with dotted overrides."""
    return _validated(read_yaml(text, source) or {}, source, overrides)


def data_overrides(
    data: str | None,
    time_col: str | None = None,
    price_col: str | None = None,
    symbol_col: str | None = None,
    target_col: str | None = None,
) -> dict[str, str | None]:
    """The dotted overrides that point a pipeline at other data (None keeps the config's value)."""
    return {
        "data.path": data,
        "data.time_col": time_col,
        "data.price_col": price_col,
        "data.symbol_col": symbol_col,
        "data.target_col": target_col,
    }


# What --set may change where a command reads rows for a trained model (score, compare, monitor): how files are
# read and checked. The rest (target, features, sizes, a label's classes: its lags were built with them; the
# columns it left out) is the model's own, read from its run; the path is --data.
READING_SECTIONS = ("data.", "contract.")
MODEL_DATA_KEYS = ("data.path", "data.positive_label", "data.exclude_cols")


def reading_overrides(sets: dict[str, Any] | None, command: str) -> dict[str, Any]:
    """The ``--set`` keys of a command that reads rows for a trained model, as dotted overrides.

    Raises:
        ConfigError: a key outside ``data.*`` and ``contract.*``, or one of ``MODEL_DATA_KEYS``, naming it.
    """
    for key in sets or {}:
        if not key.startswith(READING_SECTIONS) or key in MODEL_DATA_KEYS:
            raise ConfigError(
                f"--set {key}: {command} reads rows as the model was trained (its target, features, sizes and "
                "label classes come from its run); here --set takes data.* and contract.* keys, e.g. "
                "data.encoding=cp1252 or contract.unique=warn (the path is --data)"
            )
    return dict(sets or {})


def parse_set_options(items: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """``key=value`` strings (``--set``) as dotted overrides; each value is read as YAML (a scalar or a
    list: ``splits.gap=3``, ``models.families=[logreg, lightgbm]``, ``splits.test_size=null``).

    Raises:
        ConfigError: an item without ``=``, an empty or malformed key, or a value that is not YAML.
    """
    parsed: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*", key):
            raise ConfigError(f"--set {item!r}: expected key=value with a dotted config key, e.g. --set splits.gap=3")
        try:
            parsed[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set {key}: the value {text!r} is not valid YAML: {' '.join(str(exc).split())}"
            ) from None
    return parsed


def _validated(
    tree: dict[str, Any],
    source: str,
    overrides: dict[str, Any] | None,
    base_dir: Path | None = None,
    sets: dict[str, Any] | None = None,
) -> PipelineConfig:
    for key, value in (sets or {}).items():
        try:
            _set_path(tree, key, value)
        except ConfigError as exc:
            raise ConfigError(f"--set {key}: {exc}") from None
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_path(tree, key, value)
    data = tree.get("data")
    if "name" not in tree and isinstance(data, dict) and data.get("path"):
        # No name given anywhere: the pipeline is named after its data, never "demo" for user data.
        tree["name"] = pipeline_name_from_data(str(data["path"]))
    try:
        return PipelineConfig.model_validate(tree, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(
            "; ".join(_describe(e, _source_of(e, source, sets)) for e in exc.errors(include_url=False))
        ) from None


def _source_of(error: ErrorDetails, source: str, sets: dict[str, Any] | None) -> str:
    """``--set`` when the error is on a key a user set there (or inside it), else the config's source."""
    where = ".".join(str(p) for p in error["loc"])
    if where and any(where == key or where.startswith(f"{key}.") for key in sets or {}):
        return "--set"
    return source


def config_to_yaml(config: PipelineConfig) -> str:
    """The resolved config, as it would be written in a file."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def training_fingerprint(content_hash: str, config: PipelineConfig, code_version: str) -> str:
    """What makes two training runs the same: the input's content hash, every config section that shapes
    the result (where it runs does not) and the code version."""
    import hashlib
    import json

    shaping = config.model_dump(mode="json", exclude={"runner"} if "runner" in type(config).model_fields else None)
    blob = json.dumps([content_hash, shaping, code_version], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


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
    if isinstance(config, PipelineConfig):
        flat["target.label_delay"] = str(config.label_delay)  # the effective value, not an empty default
    return flat


class Settings(BaseModel):
    """Environment-level settings (never from the pipeline file)."""

    model_config = ConfigDict(frozen=True)

    home: Path
    tracking_uri: str
    # The model registry, when not the tracking store itself (MLFLOW_REGISTRY_URI).
    registry_uri: str | None = None

    @classmethod
    def from_env(cls, cwd: Path | None = None) -> Settings:
        home = Path(os.environ.get("DRIFTLINE_HOME") or (cwd or Path.cwd()) / ".driftline").resolve()
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
        return cls(home=home, tracking_uri=uri, registry_uri=os.environ.get("MLFLOW_REGISTRY_URI") or None)

    @property
    def tracking_file(self) -> Path | None:
        """The SQLite file of a local tracking store (``sqlite:///...``); None for a tracking server."""
        prefix = "sqlite:///"
        return Path(self.tracking_uri.removeprefix(prefix)) if self.tracking_uri.startswith(prefix) else None

    @property
    def ingest_dir(self) -> Path:
        """Staged source objects and their manifests (incremental ingestion)."""
        return self.home / "ingest"

    @property
    def timeline_dir(self) -> Path:
        """Combined sources a retrain trains on (a champion's source plus monitored rows), per model."""
        return self.home / "timeline"

    def run_dir(self, run_id: str) -> Path:
        """A run's own output (quarantined rows, reports)."""
        return self.home / "runs" / run_id
