"""Read a file or a folder of files into one canonical frame, with the content hash as lineage.

Canonical columns: ``symbol``, ``timestamp`` (UTC, tz-naive), then whichever of ``open``, ``high``,
``low``, ``close``, ``adj_close``, ``volume`` exist, ``target`` in label mode, and any other numeric
columns under their normalised names. The frame keeps the raw frame's index, so a rejected row can be
traced back to the line it came from.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from driftline.config import DataConfig
from driftline.errors import DataError

logger = logging.getLogger(__name__)

TIME_NAMES = ("timestamp", "date", "datetime", "time", "date_time", "ts", "open_time", "trade_date", "day")
SYMBOL_NAMES = ("symbol", "ticker", "asset", "instrument", "pair", "coin", "security")
PRICE_ALIASES = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "price", "last", "closing_price"),
    "adj_close": ("adj_close", "adjclose", "adjusted_close", "adj_closing_price"),
    "volume": ("volume", "vol", "v"),
}
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq")  # longest first: "x.csv.gz" ends with ".gz" too
DEMO_FILE = "stocks.csv.gz"


@dataclass(frozen=True)
class ColumnMap:
    """Which source column became which canonical column."""

    time: str
    symbol: str | None
    prices: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedData:
    """A canonical frame plus the untouched source rows and lineage."""

    frame: pd.DataFrame
    raw: pd.DataFrame
    source: str
    content_hash: str
    columns: ColumnMap
    files: tuple[str, ...]


def normalise_name(name: object) -> str:
    """``" Adj Close "`` -> ``"adj_close"``; ``"Open-Time"`` -> ``"open_time"``."""
    text = re.sub(r"[^0-9a-zA-Z]+", "_", str(name).strip()).strip("_").lower()
    return text or "unnamed"


def _list_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES))
        if not files:
            raise DataError(f"{path}: folder holds no .csv, .csv.gz or .parquet files")
        return files
    raise DataError(f"{path}: no such file or folder")


def hash_files(files: list[Path], root: Path) -> str:
    """sha256 over relative names and bytes, so renaming or editing any file changes it."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root) if file != root else file.name).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _sniff_delimiter(file: Path) -> str:
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    try:
        with opener(file, "rt", encoding="utf-8", newline="") as handle:
            sample = handle.read(64 * 1024)
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text (byte {exc.start}: {exc.reason}); re-save it as UTF-8") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{file}: cannot be read ({exc}); is the file truncated or corrupted?") from None
    if not sample.strip():
        raise DataError(f"{file}: file is empty")
    try:
        return csv.Sniffer().sniff(sample.splitlines()[0], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_file(file: Path) -> pd.DataFrame:
    name = file.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(file)
        return pd.read_csv(file, sep=_sniff_delimiter(file), encoding="utf-8", low_memory=False)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{file}: file is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text (byte {exc.start}: {exc.reason}); re-save it as UTF-8") from None
    except (OSError, EOFError, ValueError, pd.errors.ParserError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{file}: cannot be read ({first_line}); is the file truncated or corrupted?") from None


def read_source(path: str | Path) -> tuple[pd.DataFrame, str, tuple[str, ...]]:
    """Read one file or every data file under a folder.

    In a folder of per-instrument files without a symbol column, each file's stem becomes the
    ``symbol`` (``AAPL.csv`` -> ``AAPL``).

    Returns:
        The concatenated raw frame (RangeIndex), its sha256 content hash and the files read.
    """
    root = Path(path).expanduser()
    files = _list_files(root)
    frames = []
    for file in files:
        frame = _read_file(file)
        if len(files) > 1 and not any(normalise_name(c) in SYMBOL_NAMES for c in frame.columns):
            stem = next(file.name[: -len(sfx)] for sfx in SUFFIXES if file.name.lower().endswith(sfx))
            frame.insert(0, "symbol", stem)
        frames.append(frame)
    raw = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    return raw, hash_files(files, root), tuple(str(f) for f in files)


def _pick(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in columns:
            return columns[name]
    return None


def detect_columns(raw: pd.DataFrame, data: DataConfig, source: str, need_target: bool) -> ColumnMap:
    """Find time, symbol, price and target columns; explicit names in ``data`` win.

    Raises:
        DataError: a named column is missing, two columns normalise to the same name, or no time or
            price column can be found.
    """
    by_norm: dict[str, str] = {}
    for column in raw.columns:
        norm = normalise_name(column)
        if norm in by_norm:
            raise DataError(
                f"{source}: columns {by_norm[norm]!r} and {column!r} both normalise to {norm!r}; rename one"
            )
        by_norm[norm] = str(column)

    def explicit(name: str | None, what: str) -> str | None:
        if name is None:
            return None
        if name in raw.columns:
            return name
        if normalise_name(name) in by_norm:
            return by_norm[normalise_name(name)]
        raise DataError(f"{source}: {what} column {name!r} not found; columns are {list(map(str, raw.columns))}")

    time_col = explicit(data.time_col, "time") or _pick(by_norm, TIME_NAMES)
    if time_col is None:
        datetimes = [str(c) for c in raw.columns if pd.api.types.is_datetime64_any_dtype(raw[c])]
        time_col = datetimes[0] if datetimes else None
    if time_col is None:
        raise DataError(
            f"{source}: no time column found (looked for {', '.join(TIME_NAMES)}); "
            f"columns are {list(map(str, raw.columns))}; pass --time-col"
        )
    symbol_col = explicit(data.symbol_col, "symbol") or _pick(by_norm, SYMBOL_NAMES)
    target_col = explicit(data.target_col, "target")
    if need_target and target_col is None:
        raise DataError(f"{source}: label target needs --target-col; columns are {list(map(str, raw.columns))}")

    taken = {time_col, symbol_col, target_col}
    prices: dict[str, str] = {}
    for canonical, aliases in PRICE_ALIASES.items():
        found = _pick(by_norm, aliases)
        if found is not None and found not in taken:
            prices[canonical] = found
            taken.add(found)
    price_col = explicit(data.price_col, "price")
    if price_col is not None:
        # The named column is the price: an Adj Close found by detection must not take its place.
        prices = {k: v for k, v in prices.items() if v != price_col and k != "adj_close"}
        prices["close"] = price_col
        taken.add(price_col)
    numeric_rest = [
        str(c) for c in raw.columns if c not in taken and pd.api.types.is_numeric_dtype(raw[c])
    ]
    if "close" not in prices and not need_target:
        if len(numeric_rest) == 1:
            prices["close"] = numeric_rest.pop()
        else:
            raise DataError(
                f"{source}: no price column found (looked for Close/Adj Close/price, or a lone numeric "
                f"column); numeric columns are {numeric_rest}; pass --price-col"
            )
    extra = tuple(c for c in numeric_rest if c not in prices.values()) if need_target else ()
    return ColumnMap(time=time_col, symbol=symbol_col, prices=prices, target=target_col, extra=extra)


ISO_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse to tz-naive UTC; unparseable values become NaT (the contract then rejects them).

    One format for the whole column: ISO 8601 (any precision, any offset) when the values look like it,
    else the format pandas infers from the first value. Never per-value guessing, which would read
    ``01/02/2020`` and ``13/02/2020`` with different day/month orders.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        text = values.astype("string")
        first = text.dropna()
        iso = not first.empty and bool(ISO_DATE.match(str(first.iloc[0])))
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601" if iso else None)
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None)


def normalise_frame(raw: pd.DataFrame, columns: ColumnMap, source: str) -> pd.DataFrame:
    """Build the canonical frame; values that do not parse become NaN/NaT for the contract to catch."""
    frame = pd.DataFrame(index=raw.index)
    frame["symbol"] = (
        raw[columns.symbol].astype("string").fillna("<missing>") if columns.symbol else pd.Series("series", index=raw.index)
    ).astype(str)
    frame["timestamp"] = parse_timestamps(raw[columns.time])
    if frame["timestamp"].isna().all() and len(frame):
        example = raw[columns.time].iloc[0]
        raise DataError(f"{source}: column {columns.time!r}: no value parses as a timestamp (first value: {example!r})")
    for canonical, original in columns.prices.items():
        frame[canonical] = pd.to_numeric(raw[original], errors="coerce").astype("float64")
    if columns.target is not None:
        frame["target"] = pd.to_numeric(raw[columns.target], errors="coerce").astype("float64")
    for name in columns.extra:
        frame[normalise_name(name)] = pd.to_numeric(raw[name], errors="coerce").astype("float64")
    numeric = frame.select_dtypes("number")
    frame[numeric.columns] = numeric.replace([np.inf, -np.inf], np.nan)
    return frame.sort_values(["symbol", "timestamp"], kind="stable")


def demo_data_path() -> Path:
    """Real daily OHLCV (Quandl WIKI, public domain) shipped inside bokeh-sampledata."""
    return Path(str(resources.files("bokeh_sampledata") / "_data" / DEMO_FILE))


def load_data(data: DataConfig, need_target: bool = False) -> LoadedData:
    """Read ``data.path`` (or the bundled demo panel), detect columns and normalise.

    Raises:
        DataError: the source cannot be read or lacks a time or price column.
    """
    path = Path(data.path).expanduser() if data.path else demo_data_path()
    raw, content_hash, files = read_source(path)
    source = str(path)
    if raw.shape[1] == 0 or raw.empty:
        raise DataError(f"{source}: no data rows (header only or empty)")
    columns = detect_columns(raw, data, source, need_target)
    frame = normalise_frame(raw, columns, source)
    if data.path is None:
        keep = frame["symbol"].isin(data.demo_symbols)
        frame, raw = frame[keep], raw.loc[keep]
    logger.info("read %d rows from %s (sha256 %s)", len(frame), source, content_hash[:12])
    return LoadedData(frame=frame, raw=raw, source=source, content_hash=content_hash, columns=columns, files=files)
