"""The bad-input suite: one ``Case`` per way an input goes wrong, and what the pipeline must do about it.

Every case starts from a clean synthetic file (a two-symbol GARCH OHLCV panel, or a labelled series),
breaks it in one way and says what must happen:

- ``error``: the run stops with this ``DataError`` subclass; the message matches the regex and names the
  file (and the column, when there is one);
- ``quarantine``: exactly these source rows (0-based data rows of the file as written) are set aside,
  each with a reason matching the regex; the rest is trained on;
- ``ok``: the run goes on with every row (``warning``: a warning matching this regex is given).

``flow`` marks the cases that ``tests/integration/test_bad_inputs.py`` also runs end to end (every error
case, and one of each kind of quarantine/ok case). S3 access denied, missing key and unreachable endpoint
are covered by ``tests/integration/test_s3_sources.py``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftline.config import FeatureConfig, PipelineConfig, TargetConfig
from driftline.errors import DataError, InsufficientDataError, ValidationFailed
from driftline.synthetic import make_labelled_series, make_ohlcv_panel

N_DAYS = 700  # per symbol; two symbols
LABEL_ROWS = 800

# The pipeline every case runs under: short windows (700 days leave ~600 labelled rows per symbol), two
# small model families, three folds.
PIPELINE: dict[str, Any] = {
    "name": "bad-inputs",
    "features": {"vol_long": 40, "zscore_window": 40, "median_window": 60},
    "target": {"median_window": 60},
    "splits": {"n_splits": 3, "min_train_size": 150},
    "evaluation": {"window": 250},
    "promotion": {"ece_cap": 0.15, "n_bootstrap": 500},
    # The Evidently report of training vs hold-out (importing Evidently, then one report per training: about
    # half the CPU of this suite's trainings) is no bad-input outcome; tests/integration/test_training_flow.py
    # checks it. The reference the monitor needs (profile + sample) is still written with every version.
    "drift": {"training_report": False},
    "models": {"families": ["logreg", "lightgbm"], "params": {"lightgbm": {"n_estimators": 40, "n_jobs": 1}}},
}
GARCH = (1e-5, 0.15, 0.83)  # strong volatility clustering: the price cases train on a real signal


def pipeline_config(target: str = "volatility", target_col: str | None = None) -> PipelineConfig:
    tree = {**PIPELINE, "target": {**PIPELINE["target"], "kind": target}, "data": {"target_col": target_col}}
    return PipelineConfig.model_validate(tree)


def feature_config() -> FeatureConfig:
    return pipeline_config().features


def target_config(kind: str) -> TargetConfig:
    return pipeline_config(kind, "y" if kind == "label" else None).target


RowSet = frozenset[int]


@dataclass(frozen=True)
class Case:
    """One bad input and the outcome the pipeline owes it.

    Attributes:
        name: pytest id.
        build: writes the file(s) into a folder; returns the ``--data`` path.
        target: ``volatility`` (price panel) or ``label`` (``target_col`` is the label).
        error: (exception class, regex the message must match).
        quarantine: (source rows, or a callable of the data path giving them; regex every reason matches).
        warning: regex of a warning the run must give (ok and quarantine cases).
        check: more assertions on the loaded canonical frame (ok cases).
        dropped_features: columns that must not become model features.
        flow: also run end to end in the integration suite.
        names_file: the file name an error message must contain (default: the built file's name).
    """

    name: str
    build: Callable[[Path], Path]
    target: Literal["volatility", "label"] = "volatility"
    target_col: str | None = None
    error: tuple[type[DataError], str] | None = None
    quarantine: tuple[RowSet | Callable[[Path], RowSet], str] | None = None
    warning: str | None = None
    check: Callable[[pd.DataFrame], None] | None = field(default=None, repr=False)
    dropped_features: tuple[str, ...] = ()
    flow: bool = False
    names_file: str | None = None

    @property
    def outcome(self) -> str:
        return "error" if self.error else "quarantine" if self.quarantine else "ok"

    @property
    def need_target(self) -> bool:
        return self.target == "label"

    def expected_rows(self, data: Path) -> RowSet:
        assert self.quarantine is not None
        rows = self.quarantine[0]
        return frozenset(rows(data) if callable(rows) else rows)

    def __str__(self) -> str:
        return self.name


# --- clean inputs -----------------------------------------------------------------------------------------------------


@cache
def _panel() -> pd.DataFrame:
    return make_ohlcv_panel(n_symbols=2, n_days=N_DAYS, seed=21, garch=GARCH)


def clean_panel() -> pd.DataFrame:
    """Date, Symbol, Open, High, Low, Close, Volume: SYM0 in rows 0-699, SYM1 in rows 700-1399."""
    return _panel().copy()


@cache
def _labelled() -> pd.DataFrame:
    return make_labelled_series(n_rows=LABEL_ROWS, n_features=4, seed=17)


def clean_labelled() -> pd.DataFrame:
    """timestamp, x0..x3, y (hourly; y depends on x0 and x1)."""
    return _labelled().copy()


CHAMPION_ROWS = 1500


def write_champion_data(folder: Path) -> Path:
    """A labelled series with a strong signal: its first run beats the base rate and becomes the champion.

    (Two symbols of GARCH volatility carry too little signal for a hold-out of 250 days to clear the
    base rate reliably.) The price cases meet a champion of their own (a model answers one question:
    tests/integration/test_bad_inputs.py). It ends (2010) before every case's data starts (2015, 2020): each run's
    hold-out lies after the champion's training cutoff, as it does in production.
    """
    frame = make_labelled_series(n_rows=CHAMPION_ROWS, n_features=4, seed=11, start="2010-01-01")
    return _csv(folder, "champion.csv", frame)


def _csv(folder: Path, name: str, frame: pd.DataFrame, **kwargs: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False, **kwargs)
    return path


def _with_rows_inserted(
    frame: pd.DataFrame, after: list[int], change: Callable[[pd.DataFrame], pd.DataFrame]
) -> tuple[pd.DataFrame, RowSet]:
    """Insert a changed copy of each row in ``after`` right below it; returns the frame and the copies' rows."""
    order = np.arange(len(frame), dtype=float)
    copies = change(frame.iloc[after].copy())
    combined = pd.concat(
        [frame.assign(_order=order, _copy=False), copies.assign(_order=np.asarray(after) + 0.5, _copy=True)]
    )
    combined = combined.sort_values("_order", kind="stable").reset_index(drop=True)
    rows = frozenset(int(i) for i in np.flatnonzero(combined["_copy"].to_numpy()))
    return combined.drop(columns=["_order", "_copy"]), rows


# --- the cases --------------------------------------------------------------------------------------------------------

UNPARSEABLE_DATES = {10: "not a date", 500: "2016-02-30", 1000: "31/12/2016"}
FUTURE_ROWS = (697, 698, 699)  # the last three days of SYM0: still in order, but in 2099
NAN_BURST = range(300, 312)
INF_ROWS = (50, 760)
NON_POSITIVE = {200: 0.0, 950: -3.5}
STRING_VALUES = {120: "abc", 640: "1.2.3", 1210: "twelve"}
HUGE_ROWS = (150, 1100)
DUPLICATED_AFTER = [100, 400, 900]


def _empty(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "empty.csv"
    path.write_bytes(b"")
    return path


def _header_only(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "header_only.csv"
    path.write_text(",".join(clean_panel().columns) + "\n")
    return path


def _wrong_delimiter(folder: Path) -> Path:
    # A space-separated export: the delimiter is none of , ; tab |, so everything lands in one column.
    return _csv(folder, "wrong_delimiter.csv", clean_panel(), sep=" ")


def _missing_time_column(folder: Path) -> Path:
    return _csv(folder, "no_time.csv", clean_panel().drop(columns="Date"))


def _unparseable_dates_some(folder: Path) -> Path:
    frame = clean_panel()
    for row, text in UNPARSEABLE_DATES.items():
        frame.loc[row, "Date"] = text
    return _csv(folder, "some_bad_dates.csv", frame)


def _unparseable_dates_all(folder: Path) -> Path:
    frame = clean_panel()
    frame["Date"] = [f"day {i}" for i in range(len(frame))]
    return _csv(folder, "all_bad_dates.csv", frame)


MIXED_TZ_UTC_HOUR = 21


def _mixed_time_zones(folder: Path) -> Path:
    # The same instant (21:00 UTC) written with two offsets, alternating row by row.
    frame = clean_panel()
    day = pd.to_datetime(frame["Date"])
    new_york = (day + pd.Timedelta(hours=16)).dt.strftime("%Y-%m-%dT%H:%M:%S-05:00")
    paris = (day + pd.Timedelta(hours=22)).dt.strftime("%Y-%m-%dT%H:%M:%S+01:00")
    frame["Date"] = np.where(np.arange(len(frame)) % 2 == 0, new_york, paris)
    return _csv(folder, "mixed_tz.csv", frame)


def _check_mixed_time_zones(frame: pd.DataFrame) -> None:
    expected = pd.to_datetime(clean_panel()["Date"]) + pd.Timedelta(hours=MIXED_TZ_UTC_HOUR)
    assert frame["timestamp"].dt.tz is None
    pd.testing.assert_series_equal(frame["timestamp"].sort_index(), expected, check_names=False)


def _duplicates_frame() -> tuple[pd.DataFrame, RowSet]:
    return _with_rows_inserted(clean_panel(), DUPLICATED_AFTER, lambda rows: rows.assign(Close=rows["Close"] * 1.01))


def _duplicate_timestamps(folder: Path) -> Path:
    return _csv(folder, "duplicates.csv", _duplicates_frame()[0])


def _unsorted_rows(folder: Path) -> Path:
    frame = clean_panel()
    shuffled = frame.sample(frac=1.0, random_state=4).reset_index(drop=True)
    return _csv(folder, "unsorted.csv", shuffled)


def _check_sorted(frame: pd.DataFrame) -> None:
    for _, group in frame.groupby("symbol"):
        assert group["timestamp"].is_monotonic_increasing
    assert len(frame) == 2 * N_DAYS


def _future_timestamps(folder: Path) -> Path:
    frame = clean_panel()
    for k, row in enumerate(FUTURE_ROWS):
        frame.loc[row, "Date"] = f"2099-01-0{k + 5}"
    return _csv(folder, "future.csv", frame)


def _nan_burst(folder: Path) -> Path:
    frame = clean_panel()
    frame.loc[list(NAN_BURST), ["Open", "Close"]] = np.nan
    return _csv(folder, "nan_burst.csv", frame)


def _inf_values(folder: Path) -> Path:
    frame = clean_panel()
    frame.loc[list(INF_ROWS), "Close"] = np.inf
    return _csv(folder, "inf.csv", frame)


def _non_positive_prices(folder: Path) -> Path:
    frame = clean_panel()
    for row, value in NON_POSITIVE.items():
        frame.loc[row, "Close"] = value
    return _csv(folder, "non_positive.csv", frame)


def _strings_in_numeric(folder: Path) -> Path:
    frame = clean_panel()
    frame["Close"] = frame["Close"].astype(object)
    for row, text in STRING_VALUES.items():
        frame.loc[row, "Close"] = text
    return _csv(folder, "strings.csv", frame)


def _one_row(folder: Path) -> Path:
    return _csv(folder, "one_row.csv", clean_panel().head(1))


def _eight_rows(folder: Path) -> Path:
    return _csv(folder, "eight_rows.csv", clean_panel().head(8))


def _single_class(folder: Path) -> Path:
    return _csv(folder, "single_class.csv", clean_labelled().assign(y=0))


IMBALANCE_POSITIVES = np.linspace(100, LABEL_ROWS - 100, 8).astype(int)  # 8 of 800: 1%


def _imbalance(folder: Path) -> Path:
    frame = clean_labelled()
    frame["y"] = 0
    frame.loc[IMBALANCE_POSITIVES, "y"] = 1
    return _csv(folder, "imbalanced.csv", frame)


def _constant_and_empty_features(folder: Path) -> Path:
    return _csv(folder, "useless_features.csv", clean_labelled().assign(const=1.0, empty=np.nan))


def _huge_values(folder: Path) -> Path:
    frame = clean_panel()
    frame.loc[list(HUGE_ROWS), "Close"] = 1e300
    return _csv(folder, "huge.csv", frame)


def _corrupted_parquet(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corrupted.parquet"
    clean_panel().to_parquet(path, index=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the footer (schema, row groups) is gone
    return path


def _truncated_gzip(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "truncated.csv.gz"
    data = gzip.compress(clean_panel().to_csv(index=False).encode())
    path.write_bytes(data[: len(data) // 2])
    return path


def _non_utf8(folder: Path) -> Path:
    """A spreadsheet's export on Windows in Western Europe: code page 1252, not UTF-8."""
    frame = clean_panel().rename(columns={"Close": "Clôture"})
    frame.loc[frame["Symbol"] == "SYM1", "Symbol"] = "SOCIÉTÉ"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cp1252.csv"
    path.write_bytes(frame.to_csv(index=False).encode("cp1252"))
    return path


def _check_non_utf8(frame: pd.DataFrame) -> None:
    assert sorted(frame["symbol"].unique()) == ["SOCIÉTÉ", "SYM0"]  # as written, not mojibake
    assert frame["close"].notna().all() and len(frame) == 2 * N_DAYS  # Clôture: the French close


def _binary(folder: Path) -> Path:
    """A frame pickled under a CSV's name (``df.to_pickle("prices.csv")``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pickled.csv"
    clean_panel().to_pickle(path)
    return path


def _duplicate_columns(folder: Path) -> Path:
    frame = clean_panel()
    frame["close "] = frame["Close"]
    return _csv(folder, "dup_columns.csv", frame)


MAJORITY_BAD = (
    frozenset(range(0, 2 * N_DAYS, 5)) | frozenset(range(1, 2 * N_DAYS, 5)) | frozenset(range(2, 2 * N_DAYS, 5))
)


def _majority_bad(folder: Path) -> Path:
    frame = clean_panel()
    frame.loc[sorted(MAJORITY_BAD), "Close"] = -1.0  # 60% of the rows
    return _csv(folder, "majority_bad.csv", frame)


# Regexes name the column and the problem; the file is checked separately (``file_named``).
CASES: list[Case] = [
    Case("empty_file", _empty, error=(DataError, r"empty\.csv: file is empty"), flow=True),
    Case(
        "header_only",
        _header_only,
        error=(DataError, r"header_only\.csv: no data rows \(header only or empty\)"),
        flow=True,
    ),
    Case(
        "wrong_delimiter",
        _wrong_delimiter,
        error=(DataError, r"no time column found.*columns are \['Date Symbol Open High Low Close Volume'\]"),
        flow=True,
    ),
    Case(
        "missing_time_column",
        _missing_time_column,
        error=(DataError, r"no time column found.*columns are \['Symbol', 'Open', .*pass --time-col"),
        flow=True,
    ),
    Case(
        "unparseable_dates_some",
        _unparseable_dates_some,
        quarantine=(
            frozenset(UNPARSEABLE_DATES),
            r"^timestamp: not a timestamp \('(not a date|2016-02-30|31/12/2016)'\)$",
        ),
    ),
    Case(
        "unparseable_dates_all",
        _unparseable_dates_all,
        error=(DataError, r"column 'Date': no value parses as a timestamp \(first value: 'day 0'\)"),
        flow=True,
    ),
    Case("mixed_time_zones", _mixed_time_zones, check=_check_mixed_time_zones),
    Case(
        "duplicate_timestamps",
        _duplicate_timestamps,
        quarantine=(lambda _: _duplicates_frame()[1], r"^duplicate of line \d+ for \(SYM\d, 20\d\d-"),
        flow=True,
    ),
    Case(
        "unsorted_rows",
        _unsorted_rows,
        warning=r"timestamp: out of time order within its symbol: \d+ rows",
        check=_check_sorted,
    ),
    Case(
        "future_timestamps",
        _future_timestamps,
        quarantine=(frozenset(FUTURE_ROWS), r"^timestamp: in the future \(2099-01-0[567]"),
        flow=True,
    ),
    Case("nan_burst", _nan_burst, quarantine=(frozenset(NAN_BURST), r"^close: missing$"), flow=True),
    Case("inf_values", _inf_values, quarantine=(frozenset(INF_ROWS), r"^close: not a number \(inf\)$")),
    Case(
        "non_positive_prices",
        _non_positive_prices,
        quarantine=(frozenset(NON_POSITIVE), r"^close: must be > 0 \(got (0\.0|-3\.5)\)"),
    ),
    Case(
        "strings_in_numeric",
        _strings_in_numeric,
        quarantine=(frozenset(STRING_VALUES), r"^close: not a number \('(abc|1\.2\.3|twelve)'\)$"),
        flow=True,
    ),
    Case(
        "one_row",
        _one_row,
        error=(
            InsufficientDataError,
            r"too few clean rows per symbol \(need 100, contract.min_rows_per_symbol\): SYM0: 1$",
        ),
        flow=True,
    ),
    Case(
        "eight_rows",
        _eight_rows,
        error=(
            InsufficientDataError,
            r"too few clean rows per symbol \(need 100, contract.min_rows_per_symbol\): SYM0: 8$",
        ),
        flow=True,
    ),
    Case(
        "single_class_target",
        _single_class,
        target="label",
        target_col="y",
        error=(InsufficientDataError, r"target column 'y' has a single class: all \d+ labelled rows are 0"),
        flow=True,
    ),
    # 8 positives in 800 rows; the first 5 rows have no lagged label yet (lags 1, 2, 5 behind label_delay 1), so 795
    # are labelled.
    Case(
        "imbalance_99_1",
        _imbalance,
        target="label",
        target_col="y",
        error=(
            InsufficientDataError,
            r"target column 'y': too few rows of class 1 .*class 0: 787 rows \(99\.0%\), class 1: 8 rows \(1\.0%\)",
        ),
        flow=True,
    ),
    Case(
        "constant_and_empty_features",
        _constant_and_empty_features,
        target="label",
        target_col="y",
        warning=r"useless_features\.csv: dropped feature columns .*all missing: empty; constant: const",
        dropped_features=("const", "empty"),
        flow=True,
    ),
    Case(
        "huge_values_1e300",
        _huge_values,
        quarantine=(frozenset(HUGE_ROWS), r"^close: must be <= 1e\+12 \(got 1e\+300\)"),
    ),
    Case(
        "corrupted_parquet",
        _corrupted_parquet,
        error=(DataError, r"corrupted\.parquet: cannot be read \(.*\); is the file truncated or corrupted\?"),
        flow=True,
    ),
    Case(
        "truncated_gzip_csv",
        _truncated_gzip,
        error=(DataError, r"truncated\.csv\.gz: cannot be read \(.*\); is the file truncated or corrupted\?"),
        flow=True,
    ),
    Case(
        "non_utf8_bytes",
        _non_utf8,
        warning=r"cp1252\.csv: not UTF-8; read as cp1252 \(what the bytes show\)",
        check=_check_non_utf8,
    ),
    Case(
        "binary_file",
        _binary,
        error=(DataError, r"pickled\.csv: not text \(not UTF-8 from byte \d+, and no other encoding reads it\)"),
        flow=True,
    ),
    Case(
        "duplicate_column_names",
        _duplicate_columns,
        error=(DataError, r"columns 'Close' and 'close ' both normalise to 'close'; rename one"),
        flow=True,
    ),
    Case(
        "majority_bad_batch",
        _majority_bad,
        error=(
            ValidationFailed,
            (
                r"majority_bad\.csv: data contract failed: 840 of 1400 rows \(60\.0%\) would be quarantined"
                r".*close: must be > 0"
            ),
        ),
        flow=True,
    ),
]

# Covered elsewhere, listed so the table is complete.
COVERED_ELSEWHERE = {
    "s3_access_denied": "tests/integration/test_s3_sources.py",
    "s3_missing_key": "tests/integration/test_s3_sources.py",
    "s3_unreachable": "tests/integration/test_s3_sources.py",
}

FLOW_CASES = [c for c in CASES if c.flow]


def file_named(case: Case, data: Path) -> str:
    """The file name an error message must contain."""
    return case.names_file or data.name
