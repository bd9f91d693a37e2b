"""Read a file or a folder of files into one canonical frame, with the content hash as lineage.

Canonical columns: ``symbol``, ``timestamp`` (UTC, tz-naive), then whichever of ``open``, ``high``,
``low``, ``close``, ``adj_close``, ``volume`` exist, ``target`` in label mode, and any other numeric
columns under their normalised names. The frame keeps the raw frame's index, so a rejected row can be
traced back to the line it came from.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from driftline.config import ONE_SERIES, DataConfig
from driftline.errors import DataError
from driftline.features import CATEGORY_MARK, KNOWN_LABEL, META_COLUMNS
from driftline.formats import ROW_FILES
from driftline.sources import (
    LINE_COLUMN,
    OBJECT_COLUMN,
    STEM_COLUMN,
    IngestStats,
    ReadOptions,
    StagedSource,
    open_source,
    partition_values,
    read_header,
    read_staged,
    sha256_file,
    stage_source,
    staged_sample,
    staged_schema,
    time_columns,
    unchanged_stage,
)

logger = logging.getLogger(__name__)

TIME_NAMES = (
    "timestamp",
    "date",
    "dates",  # Bloomberg's BDH
    "datetime",
    "time",
    "date_time",
    "ts",
    "open_time",
    "trade_date",
    "day",
    "period",
    "year",
    "t",  # Polygon's and Alpaca's bars (t, o, h, l, c, v), as their JSON is saved to a table
    "datum",  # German exports (onvista, Investing.com's German site)
    "fecha",  # Spanish
)
DATED = ("_date", "_datetime", "_timestamp", "_time", "_at")  # observation_date, Gmt time, snapped_at
SYMBOL_NAMES = (
    "symbol",
    "ticker",
    "asset",
    "instrument",
    "pair",
    "coin",
    "security",
    # Panels of other things (a constant one names a single series: better than "series"); any other key column
    # is found by its rows (infer_symbol).
    "country",
    "firm",
    "company",
    "station",
    "site",
    "sensor",
    "device",
)
# A year column beside a quarter or month column (statsmodels' macrodata: year, quarter) is one time: months
# per step of the second column. So is a date column beside a clock-time column (broker and MetaTrader exports:
# Date 2020.01.02, Time 09:30).
PERIOD_NAMES = {"quarter": 3, "qtr": 3, "month": 1}
TIME_PARTS = {"year": tuple(PERIOD_NAMES), "date": ("time",), "trade_date": ("time",), "day": ("time",)}
CLOCK = re.compile(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?")
# Month columns: a wide table (Year, Jan ... Dec), named as such when no price column is found.
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# English first, then the names German, French, Spanish, Italian and Portuguese exports use (Investing.com's
# localised sites: Zuletzt/Eröffn./Hoch/Tief, Dernier/Ouv./Plus Haut/Plus Bas, Último/Apertura/Máximo/Mínimo),
# accents folded by ``normalise_name``.
PRICE_ALIASES = {
    "open": ("open", "o", "eroffnung", "eroffn", "erster", "ouverture", "ouv", "apertura", "abertura"),
    "high": ("high", "h", "hoch", "hochst", "plus_haut", "maximo", "maxima", "massimo"),
    "low": ("low", "l", "tief", "tiefst", "plus_bas", "minimo", "minima"),
    "close": (
        *("close", "c", "price", "prices", "last", "closing_price", "close_last", "last_price"),
        *("schluss", "schlusskurs", "zuletzt", "cloture", "dernier", "cierre", "ultimo", "chiusura", "fechamento"),
    ),
    "adj_close": ("adj_close", "adjclose", "adjusted_close", "adj_closing_price"),
    "volume": ("volume", "vol", "v", "volumen", "stucke", "tickvol", "tick_volume", "total_volume", "total_volumes"),
}
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
VOLUME_IN_UNITS = re.compile(r"[Vv]olume[ _]\(?([A-Z]{2,6}|Currency)\)?")
# Names the canonical frame and the feature table use for their own columns: a label series' feature of one of
# these names is kept under another (``feature_column``).
RESERVED_COLUMNS = frozenset({*META_COLUMNS, "target", *PRICE_COLUMNS, "volume", "y", "next_return", KNOWN_LABEL})
DEMO_FILE = "stocks.csv.gz"


@dataclass(frozen=True)
class ColumnMap:
    """Which source column became which canonical column."""

    time: str
    symbol: str | None
    prices: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    extra: tuple[str, ...] = ()
    period: str | None = None  # the column that completes the time: a quarter or month, or a clock time (TIME_PARTS)
    symbol_inferred: bool = False  # the symbol column was found by its rows (infer_symbol), not by its name
    wide: tuple[str, ...] = ()  # a column per symbol, each its close (``wide_as_long``)
    symbol_from: str = ""  # where a symbol that is no column comes from: the files' names (a folder)
    categories: tuple[str, ...] = ()  # a label series' text columns of a few values: a 0/1 feature per value
    classes: tuple[str, str] | None = None  # the label's names of 0 and of 1, when it named its classes

    def describe(self) -> dict[str, Any]:
        """Which source columns were read as what (the summary's ``columns``)."""
        return {
            "time": [self.time, self.period] if self.period else [self.time],
            "symbol": None if self.wide or self.symbol_from else self.symbol,  # else its columns' or files' names
            "prices": {} if self.wide else dict(self.prices),
            "target": self.target,
            "features": list(self.extra),
            **({"categories": list(self.categories)} if self.categories else {}),
            **({"classes": {"0": self.classes[0], "1": self.classes[1]}} if self.classes else {}),
            **({"symbols_by_column": list(self.wide)} if self.wide else {}),
            **({"symbol_from": self.symbol_from} if self.symbol_from else {}),
        }


def locate_rows(raw: pd.DataFrame, rows: list[Any], several: bool | None = None) -> list[str]:
    """Where rows of ``raw`` (its index labels) are in their files, as a user finds them: ``line 8`` (a CSV's
    header is line 1), ``row 8`` of a Parquet file, prefixed with the file's key when the source has several
    (``several``; None: when ``raw``'s rows come from several)."""
    if not rows:
        return []
    where = raw.loc[rows, [OBJECT_COLUMN, LINE_COLUMN]]
    several = raw[OBJECT_COLUMN].nunique() > 1 if several is None else several
    out = []
    for key, line in zip(where[OBJECT_COLUMN], where[LINE_COLUMN], strict=True):
        unit = "row" if str(key).lower().endswith(ROW_FILES) else "line"
        out.append(f"{key} {unit} {line}" if several else f"{unit} {line}")
    return out


@dataclass(frozen=True)
class LoadedData:
    """A canonical frame plus the untouched source rows and lineage."""

    frame: pd.DataFrame
    raw: pd.DataFrame
    source: str
    content_hash: str
    columns: ColumnMap
    files: tuple[str, ...]
    stats: IngestStats | None = None
    staged: StagedSource | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()  # what reading had to decide for the user (e.g. a file's price column)
    close_as_adjusted: tuple[str, ...] = ()  # symbols whose adj_close is their close (best_price_per_symbol)
    zone: str | None = None  # the time column's own zone (a zone-aware Parquet column): times are shown on it

    def shown_zone(self, data: DataConfig) -> str | None:
        """The clock a user reads this data's times on: ``data.timezone``, else the time column's own zone."""
        return data.timezone or self.zone

    def without_rows(self) -> LoadedData:
        """The lineage (source, hash, columns, files, stats, warnings) without the rows: once the features
        are built, a run needs only these, and the two frames are the size of the data (1M rows x 50
        float32 columns: ~0.45 GB, the most a training run held that it no longer used)."""
        return replace(self, frame=self.frame.head(0).copy(), raw=self.raw.head(0).copy(), staged=None)

    def source_values(self) -> dict[str, pd.Series]:
        """The canonical columns' values as the source spelled them, for the contract's messages."""
        values = {canonical: self.raw[original] for canonical, original in self.columns.prices.items()}
        if self.close_as_adjusted:
            borrowed = self.frame["symbol"].isin(self.close_as_adjusted).reindex(self.raw.index, fill_value=False)
            values["adj_close"] = values["adj_close"].where(~borrowed, values["close"])
        values["timestamp"] = self.raw[self.columns.time]
        if self.columns.target is not None:
            values["target"] = self.raw[self.columns.target]
        return values

    def column_labels(self) -> dict[str, str]:
        """Canonical column -> the source's name for it, where the source calls it something else (``close`` is
        ``life_expectancy`` with ``--price-col life_expectancy``), for the contract's messages."""
        columns = self.columns
        named = {"timestamp": columns.time, "symbol": columns.symbol, "target": columns.target, **columns.prices}
        return {
            canonical: str(original)
            for canonical, original in named.items()
            if original and original != STEM_COLUMN and normalise_name(original) != canonical
        }

    def locate(self, rows: list[int]) -> list[str]:
        """Where source rows (raw positions) are in their files (``locate_rows``)."""
        return locate_rows(self.raw, rows)

    def source_rows(self, positions: pd.Index | list[int]) -> pd.DataFrame:
        """The complete source rows (every column, not only the projected ones) at raw positions.

        Rows keep their object key and line (``__source_object``, ``__source_line``), so a quarantined
        row can be found in the file it came from.
        """
        wanted = self.raw.loc[list(positions), [OBJECT_COLUMN, LINE_COLUMN]]
        if self.staged is None or not all(f.exists() for f in self.staged.files):
            return self.raw.loc[list(positions)]
        full = read_staged(self.staged).drop(columns=[STEM_COLUMN], errors="ignore")
        if self.columns.wide:  # a line holds every ticker's close: which one this row is
            wanted = wanted.assign(symbol=self.raw.loc[list(positions), "symbol"])
        merged = wanted.reset_index(names="source_row").merge(full, on=[OBJECT_COLUMN, LINE_COLUMN], how="left")
        return merged.set_index("source_row")


# Names in other scripts that price exports use, as the names they mean: Chinese A-share tools (akshare,
# Tongdaxin, East Money: 日期, 开盘, 收盘, 最高, 最低, 成交量, 股票代码) and their traditional forms, Yahoo! Japan
# (日付, 始値, 高値, 安値, 終値, 出来高, 調整後終値), Investing.com's Russian and Korean sites (Дата, Цена, Откр.,
# Макс., Мин., Объём; 날짜, 종가, 시가, 고가, 저가, 거래량). Keys lower case, without spaces or dots.
NATIVE_NAMES = {
    **dict.fromkeys(("日期", "交易日期", "日付", "дата", "날짜"), "date"),
    **dict.fromkeys(("时间", "時間", "время"), "time"),
    **dict.fromkeys(("开盘", "开盘价", "開盤", "開盤價", "始値", "откр", "открытие", "시가"), "open"),
    **dict.fromkeys(("最高", "最高价", "最高價", "高値", "макс", "максимум", "고가"), "high"),
    **dict.fromkeys(("最低", "最低价", "最低價", "安値", "мин", "минимум", "저가"), "low"),
    **dict.fromkeys(("收盘", "收盘价", "收盤", "收盤價", "終値", "цена", "закрытие", "종가"), "close"),
    **dict.fromkeys(("調整後終値", "复权收盘价"), "adj_close"),
    **dict.fromkeys(("成交量", "出来高", "объём", "объем", "거래량"), "volume"),
    **dict.fromkeys(("股票代码", "代码", "代碼", "証券コード", "тикер", "종목코드"), "symbol"),
}


def normalise_name(name: object) -> str:
    """``" Adj Close "`` -> ``"adj_close"``; ``"Open-Time"`` -> ``"open_time"``; ``"Eröffn."`` -> ``"eroffn"``;
    ``"收盘"`` -> ``"close"`` (``NATIVE_NAMES``)."""
    native = NATIVE_NAMES.get(re.sub(r"[\s.。]+", "", str(name)).lower())
    if native:
        return native
    folded = unicodedata.normalize("NFKD", str(name).strip()).encode("ascii", "ignore").decode()
    text = re.sub(r"[^0-9a-zA-Z]+", "_", folded).strip("_").lower()
    # A name in another script (日付, 終値) by its code points (u65e5_u4ed8): as "unnamed", any two would collide.
    return text or "_".join(f"u{ord(c):x}" for c in str(name) if c.isalnum()) or "unnamed"


def hash_files(files: list[Path], root: Path) -> str:
    """sha256 over relative names and bytes (for callers that hash files outside a staged source)."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root) if file != root else file.name).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def read_source(path: str | Path, stage_root: Path | None = None) -> tuple[pd.DataFrame, str, tuple[str, ...]]:
    """Read every column of a file, glob, folder or ``s3://`` prefix, without detection.

    Returns:
        The raw frame (RangeIndex, plus ``__source_object``/``__source_line``), the content hash and
        the object keys read.
    """
    with _stage_dir(stage_root) as root:
        staged = stage_source(open_source(str(path)), root, incremental=stage_root is not None)
        raw = read_staged(staged)
    return raw, staged.content_hash, staged.keys


@contextmanager
def _stage_dir(stage_root: Path | None) -> Iterator[Path]:
    if stage_root is not None:
        yield stage_root
    else:
        with tempfile.TemporaryDirectory(prefix="driftline-stage-") as tmp:
            yield Path(tmp)


def _pick(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in columns:
            return columns[name]
    return None


def detect_columns(
    raw: pd.DataFrame,
    data: DataConfig,
    source: str,
    need_target: bool,
    partition_columns: frozenset[str] = frozenset(),
    require_price: bool = True,
    sample: Callable[[list[str]], pd.DataFrame] | None = None,
) -> ColumnMap:
    """Find time, symbol, price and target columns; explicit names in ``data`` win.

    The time is a column with a time's name, else one with a time type, else the one column named by what it
    dates (``*_date``...), else the one text column whose first rows (``sample`` of those columns) are all
    ISO 8601 times, whatever its name.

    A time column inside the files beats a Hive partition column (``date=2024-01-01/`` folders hold
    intraday ``ts`` values); a partition column is the time only when the files have none.

    ``require_price=False``: no price column is required (a header without types cannot tell the lone
    numeric one).

    Raises:
        DataError: a named column is missing, two columns normalise to the same name, or no time or
            price column can be found.
    """
    by_norm: dict[str, str] = {}
    for column in raw.columns:
        norm = normalise_name(column)
        if norm in by_norm:
            raise DataError(
                f"{source}: columns {_column_name(by_norm[norm])} and {_column_name(column)} both normalise to "
                f"{_column_name(norm)}; rename one"
            )
        by_norm[norm] = str(column)

    def explicit(name: str | None, what: str) -> str | None:
        if name is None:
            return None
        if name in raw.columns:
            return name
        if normalise_name(name) in by_norm:
            return by_norm[normalise_name(name)]
        needed = (
            " (a label model's features include its past labels: rows to score need the column too, empty where "
            "a label is not known yet)"
            if what == "target"
            else ""
        )
        raise DataError(f"{source}: {what} column {name!r} not found{needed}; {_columns_shown(raw.columns)}")

    in_files = {norm: col for norm, col in by_norm.items() if col not in partition_columns}
    time_col = explicit(data.time_col, "time") or _pick(in_files, TIME_NAMES) or _pick(by_norm, TIME_NAMES)
    if time_col is None:
        datetimes = [str(c) for c in raw.columns if pd.api.types.is_datetime64_any_dtype(raw[c])]
        time_col = datetimes[0] if datetimes else None
    if time_col is None:
        # A time named by what it dates (FRED's observation_date, Dukascopy's "Gmt time"): the one column so named.
        dated = [c for n, c in in_files.items() if n.endswith(DATED)]
        time_col = dated[0] if len(dated) == 1 else None
    timelike: list[str] = []
    if time_col is None and sample is not None:
        text = [c for c in in_files.values() if not pd.api.types.is_numeric_dtype(raw[c])]
        timelike = time_columns(sample(text)) if text else []
        time_col = timelike[0] if len(timelike) == 1 else None
    if time_col is None:
        hint = f" (columns {', '.join(map(repr, timelike))} all hold times: name one)" if timelike else ""
        if not hint and raw.shape[1] == 1 and re.search(r"[ :;,\t|]", str(raw.columns[0]).strip()):
            hint = (
                " (one column whose name holds separators: is the file delimited by something other than , ; tab or |?)"
            )
        raise DataError(
            f"{source}: no time column found (looked for {', '.join(TIME_NAMES)}, or one *{'/*'.join(DATED)}); "
            f"{_columns_shown(raw.columns)}{hint}; pass --time-col"
        )
    symbol_col = explicit(data.symbol_col, "symbol") or _pick(by_norm, SYMBOL_NAMES)
    target_col = explicit(data.target_col, "target")
    if need_target and target_col is None:
        raise DataError(f"{source}: label target needs --target-col; {_columns_shown(raw.columns)}")
    # A detected year (date) column with a quarter or month (clock time) column beside it: the two are the time
    # (a column named with --time-col is the time alone, as asked).
    parts = TIME_PARTS.get(normalise_name(time_col), ()) if data.time_col is None else ()
    period_col = _pick(in_files, parts) if parts else None

    taken = {time_col, symbol_col, target_col, period_col}
    prices: dict[str, str] = {}
    for canonical, aliases in PRICE_ALIASES.items():
        found = _pick(by_norm, aliases)
        if found is not None and found not in taken:
            prices[canonical] = found
            taken.add(found)
    if "volume" not in prices:
        # Crypto exports name volume by its unit: CryptoDataDownload's "Volume BTC, Volume USDT", Bitstamp's
        # "Volume_(BTC), Volume_(Currency)"; the first is the base asset's (a feature "volume_change" is not one).
        found = next((c for c in by_norm.values() if VOLUME_IN_UNITS.fullmatch(c.strip()) and c not in taken), None)
        if found is not None:
            prices["volume"] = found
            taken.add(found)
    price_col = explicit(data.price_col, "price")
    if price_col is not None:
        # The named column is the price: an Adj Close found by detection must not take its place.
        prices = {k: v for k, v in prices.items() if v != price_col and k != "adj_close"}
        prices["close"] = price_col
        taken.add(price_col)
    if need_target and not {"close", "adj_close"} & prices.keys():
        # A label series without a close has no price features: a column named high, low, open or volume is
        # one of its features, not a price (whose checks would quarantine a 0/1 column's zeros).
        taken -= set(prices.values())
        prices = {}
    numeric_rest = [str(c) for c in raw.columns if c not in taken and pd.api.types.is_numeric_dtype(raw[c])]
    if "close" not in prices and not need_target and require_price:
        if len(numeric_rest) == 1:
            prices["close"] = numeric_rest.pop()
        else:
            months = [c for c in numeric_rest if normalise_name(c)[:3] in MONTHS]
            if len(months) >= 10:
                wide = (
                    " (a wide table: a column per month, a row per year; Driftline reads one row per time, so "
                    "reshape it long, e.g. pandas' melt, or pick one column)"
                )
            elif len(numeric_rest) >= 2 and symbol_col is None and all(TICKER.fullmatch(c) for c in numeric_rest):
                # Closes side by side, a column per ticker, as yf.download([...])["Close"] and the ECB save them.
                return ColumnMap(time=time_col, symbol=None, period=period_col, wide=tuple(numeric_rest))
            elif len(numeric_rest) >= 2 and symbol_col is None:
                wide = (
                    f" (or, if each column is one symbol's price, reshape the table long: a row per time and symbol, "
                    f"e.g. pandas' df.melt(id_vars=[{str(time_col)!r}], var_name='symbol', value_name='close'))"
                )
            else:
                wide = ""
            raise DataError(
                f"{source}: no price column found (looked for Close/Adj Close/price, or a lone numeric "
                f"column); numeric columns are {numeric_rest}; pass --price-col{wide}"
            )
    extra = tuple(c for c in numeric_rest if c not in prices.values()) if need_target else ()
    return ColumnMap(time=time_col, symbol=symbol_col, prices=prices, target=target_col, extra=extra, period=period_col)


# A ticker as a column name (AAPL, BRK-B, ^GSPC, EURUSD=X, 7203.T, USD; Bloomberg's AAPL US Equity, SPX Index):
# capitals, digits and . - = ^, and a letter at least (not a year). Price fields in capitals (OPEN, CLOSE) are
# prices, found before.
TICKER = re.compile(
    r"(?=.*[A-Z])\^?[A-Z0-9][A-Z0-9.=^/-]{0,14}( [A-Z0-9]{1,4})?( (Equity|Index|Curncy|Comdty|Govt|Corp))?"
)


def wide_as_long(raw: pd.DataFrame, columns: ColumnMap, source: str) -> tuple[pd.DataFrame, ColumnMap]:
    """A table of closes side by side, a column per ticker (``ColumnMap.wide``), as a row per time and ticker:
    each row keeps its file and line, a ticker's empty cells (before its listing) are dropped."""
    kept = [c for c in raw.columns if c not in columns.wide]
    long = raw.melt(id_vars=kept, value_vars=list(columns.wide), var_name="symbol", value_name="close")
    long = long[long["close"].notna()].reset_index(drop=True)
    empty = [c for c in columns.wide if c not in set(long["symbol"])]
    if empty and len(raw):
        logger.warning("%s: no values for %s: left out", source, ", ".join(empty))
    logger.warning(
        "%s: no price column; each of %d columns named like a ticker (%s) is that symbol's close; pass "
        "--price-col to read one alone",
        source,
        len(columns.wide),
        ", ".join(columns.wide[:6]) + (f" and {len(columns.wide) - 6} more" if len(columns.wide) > 6 else ""),
    )
    return long, replace(columns, symbol="symbol", prices={"close": "close"})


def check_columns(data: DataConfig, need_target: bool) -> None:
    """The column errors the header of a single local file shows (no time column, a named column missing, a
    label target without its column, a file without a header row), in a second instead of after the run's
    start-up. Prices are left to the run (judged on the staged types), and so are folders, globs and S3
    sources (partition folders add columns).

    Raises:
        DataError: as ``detect_columns`` would in the run, with the same message.
    """
    location = data.path
    if not location or location.startswith("s3://") or any(c in location for c in "*?["):
        return
    file = Path(location).expanduser()
    if not file.is_file():
        return
    header = read_header(file, location, read_options(data), rows=True)
    if header.shape[1]:
        header = without_excluded(header, data, location)
        detect_columns(
            header.iloc[0:0], data, location, need_target, require_price=False, sample=lambda names: header[names]
        )


COLUMN_NAME = re.compile(r"[\w .()%#&+/-]{1,64}")
"""What a header cell looks like. Anything else (a headerless file's first line: a password hash, a key) is
file content and is never echoed into an error, stdout or the Prefect logs."""


def _column_name(name: object) -> str:
    text = str(name)
    return repr(text) if COLUMN_NAME.fullmatch(text) else f"<a column name of {len(text)} characters, not shown>"


def _columns_shown(columns: Any) -> str:
    """``columns are [...]`` for an error, listing only names that look like column names."""
    names = [str(c) for c in columns]
    shown = [n for n in names if COLUMN_NAME.fullmatch(n)]
    hidden = len(names) - len(shown)
    if not hidden:
        return f"columns are {shown}"
    note = (
        f"{hidden} column name(s) that do not look like a header "
        "(not shown: is this the right file, with a header row?)"
    )
    return f"columns are {shown} and {note}" if shown else f"the file has {note}"


ISO_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")
# A time zone's abbreviation after the time (CoinGecko's "2013-04-28 00:00:00 UTC", broker exports' "EST"):
# pandas reads none but Z, UTC and GMT in a few layouts. Ambiguous ones (IST, and CST: US or China) are not read.
ZONES_BY_OFFSET = {
    "+00:00": "UTC GMT",
    "-04:00": "EDT",
    "-05:00": "EST CDT",
    "-06:00": "MDT",
    "-07:00": "MST PDT",
    "-08:00": "PST",
    "+01:00": "CET BST",
    "+02:00": "CEST EET",
    "+03:00": "EEST",
    "+08:00": "HKT SGT",
    "+09:00": "JST",
    "+10:00": "AEST",
    "+11:00": "AEDT",
}
ZONE_OFFSETS = {zone: offset for offset, zones in ZONES_BY_OFFSET.items() for zone in zones.split()}
ZONED = re.compile(r"(?P<moment>.*\d)\s*(?P<zone>[A-Z]{3,4})")


def _zones_as_offsets(text: pd.Series) -> pd.Series:
    """Times that each end with a known zone's abbreviation (``ZONE_OFFSETS``), with its offset instead
    (``2024-01-02 09:30:00 EST`` -> ``2024-01-02 09:30:00-05:00``); the text as it is otherwise."""
    present = text.dropna().astype(str).str.strip()
    if present.empty or not present.str.fullmatch(ZONED).all():
        return text
    parts = present.str.extract(ZONED.pattern)
    if not parts["zone"].isin(ZONE_OFFSETS.keys()).all():
        return text
    return (parts["moment"] + parts["zone"].map(ZONE_OFFSETS)).reindex(text.index).astype("string")


# A time zone's name after the time (Interactive Brokers' bars: "20240102 16:00:00 US/Eastern"; pandas' text of
# a zoned time is an offset): read in that zone, daylight saving included.
NAMED_ZONE = re.compile(r"(?P<moment>.*\d)\s+(?P<zone>[A-Za-z]+(?:/[A-Za-z0-9_+-]+)+)")


def _named_zones(text: pd.Series) -> pd.Series | None:
    """Times that each end with an IANA zone's name (``20240102 16:00:00 US/Eastern``, ``... Europe/London``)
    as UTC, each read in its zone; None when a value is anything else. The hour a clock change repeats (01:30
    twice on an autumn night) is read in the order of the rows, first in summer time (also in a panel stacked
    by symbol); where the order cannot tell (01:30 once, or four times running), and for a time a clock change
    skips (02:30 on a spring night), there is no one reading: NaT, quarantined as any unreadable time is."""
    from zoneinfo import available_timezones

    present = text.dropna().astype(str).str.strip()
    if present.empty or not present.str.fullmatch(NAMED_ZONE).all():
        return None
    parts = present.str.extract(NAMED_ZONE.pattern)
    zones = parts["zone"].unique()
    if not set(zones) <= available_timezones():
        return None
    moments = parts["moment"]
    form = "ISO8601" if ISO_DATE.match(moments.iloc[0]) else _inferred_format(moments)
    naive = pd.to_datetime(moments, errors="coerce", format=form)
    read = pd.Series(pd.NaT, index=present.index, dtype="datetime64[ns, UTC]")
    for zone in zones:
        rows = parts["zone"] == zone
        read[rows] = _in_zone(naive[rows], zone)
    return read.reindex(text.index)


def _in_zone(naive: pd.Series, zone: str) -> pd.Series:
    """Clock times of ``zone`` as UTC (tz-aware): the hour a clock change repeats read in the order of the
    rows, first in summer time; where the order cannot tell, and for a time a clock change skips, NaT."""
    from pytz.exceptions import InvalidTimeError  # what pandas raises when the order cannot tell

    try:
        local = naive.dt.tz_localize(zone, ambiguous="infer", nonexistent="NaT")
    except InvalidTimeError:
        local = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    utc: pd.Series = local.dt.tz_convert("UTC")
    return utc


# Durations without a date: pandas' text for a timedelta, or a clock time alone (hours may pass 24).
DURATION = re.compile(r"(?:\d+ days? )?\d{1,3}:\d{2}(?::\d{2}(?:\.\d+)?)?")
ELAPSED_FROM = pd.Timestamp("1970-01-01")  # where elapsed time starts, as numbers since the epoch do


def _inferred_format(present: pd.Series) -> str | None:
    """The one strftime format for the column: of the formats guessed from its leading values (month
    first and day first), the one that reads the most of a sample (None: let pandas try).

    A garbage first value must not switch pandas to per-value guessing, and ``02/01/2015`` alone cannot
    tell day-first from month-first: ``13/01/2015`` further down can.
    """
    from pandas.tseries.api import guess_datetime_format  # type: ignore[attr-defined]  # public, not in pandas-stubs

    sample = present.head(2000).astype(str).str.strip()
    candidates: list[str] = []
    for value in sample.head(50):
        for dayfirst in (False, True):
            with warnings.catch_warnings():
                # Both orders are asked on purpose; pandas warns when a value contradicts the order asked.
                warnings.filterwarnings(
                    "ignore", message="Parsing dates in .* format when dayfirst", category=UserWarning
                )
                guessed = guess_datetime_format(value, dayfirst=dayfirst)
            if guessed and guessed not in candidates:
                candidates.append(guessed)
        if candidates:
            break
    if not candidates:
        return None
    parsed = {f: int(pd.to_datetime(sample, format=f, errors="coerce").notna().sum()) for f in candidates}
    return max(candidates, key=lambda f: parsed[f])  # ties: month first, pandas' own default


# Plain numbers since 1970-01-01 UTC (exchange APIs: Binance's open_time is milliseconds), told apart by
# size: the largest |value| each unit reads as a date before the year ~5000.
EpochUnit = Literal["s", "ms", "us", "ns"]
EPOCH_UNITS: tuple[tuple[EpochUnit, float], ...] = (("s", 1e11), ("ms", 1e14), ("us", 1e17), ("ns", float("inf")))
EPOCH_SMALLEST = 1e8
EPOCH_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
YEAR_OR_YYYYMMDD = re.compile(r"\d{4}|\d{8}")
# A day and a clock time in digits (broker exports: 202401020930, 20240102093000), told from 12- and 14-digit
# milliseconds (1973-2001, 2286-) by every value reading as one.
DIGIT_MOMENTS = {12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def _digit_moments(present: pd.Series) -> bool:
    text = present.astype(str).str.strip()
    form = DIGIT_MOMENTS.get(int(text.str.len().max()) if len(text) else 0)
    return (
        form is not None
        and bool(text.str.fullmatch(r"\d+").all())
        and text.str.len().nunique() == 1
        and bool(pd.to_datetime(text, format=form, errors="coerce").notna().all())
    )


def epoch_unit(present: pd.Series) -> EpochUnit | None:
    """The unit (s, ms, us, ns) of a column of plain numbers since the epoch, by the size of its median;
    None when a value is not a number, or when the values read as dates by themselves (years, yyyymmdd,
    yyyymmddHHMM[SS])."""
    if present.empty:
        return None
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any() or present.astype(str).str.strip().str.fullmatch(YEAR_OR_YYYYMMDD).all():
        return None
    if _digit_moments(present):
        return None
    size = float(np.median(np.abs(numbers.to_numpy(dtype=float))))
    if size < EPOCH_SMALLEST:
        return None  # a count or an index (within three years of 1970 in seconds), not a time
    return next(unit for unit, limit in EPOCH_UNITS if size < limit)


def parse_timestamps(values: pd.Series, source: str = "", column: str = "", zone: str | None = None) -> pd.Series:
    """Parse to tz-naive UTC; unparseable values become NaT (the contract then rejects them).

    One format for the whole column: ISO 8601 (any precision, any offset) when the values look like it;
    numbers since 1970-01-01 UTC in the unit their size tells (``epoch_unit``, logged); else the format
    pandas infers from the first value. Never per-value guessing, which would read ``01/02/2020`` and
    ``13/02/2020`` with different day/month orders. Dates and times without an offset or zone are UTC, or
    clock times of ``zone`` (``data.timezone``) when given.
    """
    elapsed = _elapsed(values)
    if elapsed is not None:
        known = elapsed.dropna()
        logger.warning(
            "%s%s: durations without a date (%s to %s), read as time elapsed from %s; "
            "give the rows dates to place them in time",
            f"{source}: " if source else "",
            f"column {column!r}" if column else "time column",
            known.min() if len(known) else "none",
            known.max() if len(known) else "none",
            f"{ELAPSED_FROM:%Y-%m-%d %H:%M}",
        )
        moments: pd.Series = ELAPSED_FROM + elapsed
        return moments
    if pd.api.types.is_datetime64_any_dtype(values):
        aware = isinstance(values.dtype, pd.DatetimeTZDtype)
        parsed = pd.to_datetime(values, utc=True) if aware or zone is None else _in_zone(pd.Series(values), zone)
    else:
        text = _whole_numbers_as_digits(values.astype("string"))
        present = text.dropna()
        unit = epoch_unit(present)
        if unit is not None:
            parsed = pd.to_datetime(pd.to_numeric(text), unit=unit, utc=True, errors="coerce")
            known = parsed.dropna()
            first, last = (f"{known.iloc[i]:%Y-%m-%d %H:%M:%S}" for i in (0, -1))
            logger.warning(
                "%s%s: numbers read as %s since 1970-01-01 UTC (%s to %s); pass dates as text to read them otherwise",
                f"{source}: " if source else "",
                f"column {column!r}" if column else "time column",
                EPOCH_UNIT_NAMES[unit],
                first,
                last,
            )
            return parsed.dt.tz_localize(None)
        serials = _sheet_days(text, present)
        if serials is not None:
            logger.warning(
                "%s%s: numbers read as a spreadsheet's serial dates, days since %s (%s is %s); pass dates as "
                "text to read them otherwise",
                f"{source}: " if source else "",
                f"column {column!r}" if column else "time column",
                SHEET_DAY_ZERO,
                present.iloc[0],
                f"{serials.dropna().iloc[0]:%Y-%m-%d %H:%M}",
            )
            return serials
        decimal = _decimal_years(text, present)
        if decimal is not None:
            logger.warning(
                "%s%s: numbers read as decimal years (%s is %s); pass dates as text to read them otherwise",
                f"{source}: " if source else "",
                f"column {column!r}" if column else "time column",
                present.iloc[0],
                f"{decimal.dropna().iloc[0]:%Y-%m-%d %H:%M}",
            )
            return decimal
        named = _named_zones(text)
        if named is not None:
            read: pd.Series = named.dt.tz_localize(None)
            return read
        text = _zones_as_offsets(text)
        present = text.dropna()
        iso = not present.empty and bool(ISO_DATE.match(str(present.iloc[0])))
        form = "ISO8601" if iso else _inferred_format(present)
        with warnings.catch_warnings():
            # No format fits (pandas then reads each value on its own, with dateutil, and warns): said below in
            # our words, naming the file and column, and only when something was read that way.
            warnings.filterwarnings("ignore", message="Could not infer format", category=UserWarning)
            if zone is not None and not present.astype(str).str.contains(OFFSET_AT_END).any():
                parsed = _in_zone(pd.to_datetime(text, errors="coerce", format=form), zone)  # local clock times
            else:
                parsed = pd.to_datetime(text, errors="coerce", utc=True, format=form)
        if form is None and parsed.notna().any():
            logger.warning(
                "%s%s: no single date format fits its values (first %r), so each value was read on its own; "
                "write dates as ISO 8601 (2024-01-31 or 2024-01-31T09:30:00) to be sure of the reading",
                f"{source}: " if source else "",
                f"column {column!r}" if column else "time column",
                str(present.iloc[0]),
            )
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None)


# An offset after a time (2024-03-31T02:00:00+02:00, ...Z): such a column says its own zone.
OFFSET_AT_END = re.compile(r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$")


def _elapsed(values: pd.Series) -> pd.Series | None:
    """Durations without a date as timedeltas: a timedelta column (Parquet), pandas' text for one
    (``0 days 00:00:01``) or clock times alone (``01:13:11``, ``09:30``: a workout, a sensor log, one session).
    Read as today's date and that time (pandas' way), such a file would move in time every day. None
    when a value is anything else."""
    if pd.api.types.is_timedelta64_dtype(values):
        return values
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return None
    text = values.astype("string").str.strip()
    present = text.dropna()
    if present.empty or not present.str.fullmatch(DURATION).all():
        return None
    minutes_only = text.str.fullmatch(r"\d{1,3}:\d{2}").fillna(False).astype(bool)
    return pd.to_timedelta(text.where(~minutes_only, text + ":00"), errors="coerce")


def _decimal_years(text: pd.Series, present: pd.Series) -> pd.Series | None:
    """Numbers from 1000 to 3000 with fractions (climate series: NOAA's CO2 ``1958.2027``) as the moment that
    share of the year in: 1950.5 is 1950-07-02 12:00, where dateutil would read May 1950. None otherwise."""
    numbers = pd.to_numeric(present, errors="coerce")
    if present.empty or numbers.isna().any() or not numbers.between(1000, 3000, inclusive="left").all():
        return None
    if (numbers == np.floor(numbers)).all():
        return None  # whole years: read as dates
    values = pd.to_numeric(text, errors="coerce")
    years = np.floor(values)
    start = pd.to_datetime(years.astype("Int64").astype("string"), format="%Y", errors="coerce")
    end = pd.to_datetime((years + 1).astype("Int64").astype("string"), format="%Y", errors="coerce")
    seconds = (end - start).dt.total_seconds() * (values - years).astype(float)
    moments: pd.Series = (start + pd.to_timedelta(seconds, unit="s")).dt.round("s")
    return moments


# A spreadsheet's date cells saved as numbers: days since 1899-12-30 (Excel's and LibreOffice's day 0), read
# only from 20000 to 80000 (1954-10-03 to 2119-01-10), far above a count of rows or years.
SHEET_DAY_ZERO = "1899-12-30"
SHEET_DAYS = (20_000, 80_000)


def _sheet_days(text: pd.Series, present: pd.Series) -> pd.Series | None:
    """Numbers from 20000 to 80000 as a spreadsheet's serial dates (45293 is 2024-01-02; 45293.5 noon, to
    the second); None otherwise."""
    numbers = pd.to_numeric(present, errors="coerce")
    if present.empty or numbers.isna().any() or not numbers.between(*SHEET_DAYS).all():
        return None
    days = pd.to_numeric(text, errors="coerce")
    moments: pd.Series = pd.to_datetime(days, unit="D", origin=SHEET_DAY_ZERO).dt.round("s")
    return moments


def _combined_time(raw: pd.DataFrame, columns: ColumnMap) -> pd.Series | None:
    """The time of a year and quarter/month, or of a date and clock-time column pair, as text; None without a
    second column, or when the date's companion holds no clock times (``2024-01-02 09:30:00`` in a ``time``
    column is a time by itself: the date column alone is read then, as before)."""
    if columns.period is None:
        return None
    if normalise_name(columns.period) in PERIOD_NAMES:
        return year_and_period(raw[columns.time], raw[columns.period], columns.period)
    clock = raw[columns.period].astype("string").str.strip()
    present = clock.dropna()
    if present.empty or not present.str.fullmatch(CLOCK).all():
        return None
    combined: pd.Series = raw[columns.time].astype("string").str.strip() + " " + clock
    return combined


def year_and_period(years: pd.Series, parts: pd.Series, period: str) -> pd.Series:
    """``1959`` and quarter ``2`` as ``1959-04-01`` (month ``2``: ``1959-02-01``), whole numbers as text or
    floats; missing where either is not a whole number in range (the contract then quarantines the row)."""
    step = PERIOD_NAMES[normalise_name(period)]
    year = pd.to_numeric(years, errors="coerce")
    part = pd.to_numeric(parts, errors="coerce")
    valid = (year == np.floor(year)) & (part == np.floor(part)) & part.between(1, 12 // step)
    month = ((part - 1) * step + 1).where(valid)
    digits = year.where(valid).astype("Int64").astype("string")
    return digits + "-" + month.astype("Int64").astype("string").str.zfill(2) + "-01"


WHOLE_NUMBER = re.compile(r"\s*[+-]?\d+\.0*\s*")


def _whole_numbers_as_digits(text: pd.Series) -> pd.Series:
    """``1950.0`` -> ``1950``: a year, yyyymmdd or epoch column that went through floats (a spreadsheet, or
    pandas with a missing value in it) reads as the digits it had; anything else is left as it is."""
    present = text.dropna()
    if present.empty or not present.str.fullmatch(WHOLE_NUMBER).all():
        return text
    return text.str.strip().str.replace(r"\.0*$", "", regex=True)


def _numeric(values: pd.Series, keep_float32: bool = False) -> np.ndarray:
    """A column as floats, NaN for anything that is not a finite number (text, inf)."""
    if (
        pd.api.types.is_float_dtype(values)
        or pd.api.types.is_integer_dtype(values)
        or pd.api.types.is_bool_dtype(values)
    ):
        dtype = np.float32 if keep_float32 and values.dtype == np.float32 else np.float64
        array = values.to_numpy(dtype=dtype, na_value=np.nan, copy=True)  # never write into the raw rows
    else:
        array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    array[np.isinf(array)] = np.nan
    return array


# Two classes whose names say which one is 1 (the first of each pair). A label column of one pair's classes reads
# without data.positive_label, value by value, so a later batch holding only one of them reads the same way.
CLASS_PAIRS = (
    *(("true", "false"), ("y", "n"), ("t", "f"), ("up", "down"), ("positive", "negative"), ("pos", "neg")),
    *(("buy", "sell"), ("long", "short"), ("win", "loss"), ("rise", "fall"), ("pass", "fail"), ("1", "-1")),
)
# The spellings YAML reads as true and false (``--set data.positive_label=yes`` arrives as True): yes/no and
# on/off are the pair true/false.
_CLASS_SYNONYMS = {"yes": "true", "on": "true", "no": "false", "off": "false"}
# Values outside a pair's two classes, together at most this share of the labelled rows, are strays: missing,
# which the contract quarantines ("not a class"). More than that is a third class, which needs positive_label.
STRAY_CLASSES = 0.01
MAX_CLASSES = 20  # more distinct numbers than this in a label column: a measurement, not classes


def class_name(value: Any) -> str:
    """A label value as a class is named: stripped text, a whole number without its ``.0``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _same_class(name: str) -> str:
    folded = name.casefold()
    return _CLASS_SYNONYMS.get(folded, folded)


def _classes_shown(counts: pd.Series) -> str:
    shown = ", ".join(f"{name!r} ({count:,} rows)" for name, count in counts.head(6).items())
    return shown + (f" and {len(counts) - 6} more" if len(counts) > 6 else "")


class LabelRead(NamedTuple):
    """A label column read as 0/1 (``read_label``)."""

    values: np.ndarray  # 0/1, NaN where a row holds no class
    note: str | None  # which named class is 1, when the reader chose it (None when the user named it)
    classes: tuple[str, str] | None = None  # the names of 0 and of 1, when the column named its classes


def not_class(positive: str) -> str:
    """The name of 0 when one class stands against several others: ``not <class>``, which reads back as 0."""
    return f"not {class_name(positive)}"


def read_label(values: pd.Series, positive: str | None, source: str, column: str) -> LabelRead:
    """A label column as 0/1 (NaN where it has no value), a note naming its classes when they were named, and
    the names of 0 and 1 (``LabelRead.classes``: a score's ``class``; a written-back source's labels).

    0/1 (a boolean column too) reads as it is; two classes of one pair in ``CLASS_PAIRS`` (up/down, yes/no,
    buy/sell, -1/1, ...) by their names, with a note saying which is 1. Any other classes need ``positive``
    (``data.positive_label``): that class is 1, every other 0 (one class against the rest), ``not <class>``
    too (``not_class``: how a source written back from the model's rows names 0 of several classes). Values
    outside a pair's two, at most ``STRAY_CLASSES`` of the rows, are missing: the contract quarantines them
    with their value, as it does text in a 0/1 column.

    Raises:
        DataError: naming the file, the column, its classes and their rows, and the key that chooses.
    """
    if positive is None:
        return _read_classes(values, None, source, column)
    text = values.astype("string").str.strip().str.casefold()
    negated = text.eq(not_class(positive).casefold()).fillna(False).to_numpy(dtype=bool)
    read = _read_classes(values.mask(negated), positive, source, column)
    if not negated.any():
        return read
    out = read.values.copy()
    out[negated] = 0.0
    one = read.classes[1] if read.classes else class_name(positive)
    return LabelRead(out, read.note, (not_class(positive), one))


def _class_names(shown: pd.Series, ones: np.ndarray, zero_unseen: str) -> tuple[str, str]:
    """The names of 0 and 1 from the labelled values ``shown`` and which of them are 1 (``ones``): each as first
    spelt; 0 of several classes (or of none seen) is ``zero_unseen``."""
    one = str(shown[ones].iloc[0])
    zeros = shown[~ones].astype(str)
    distinct = zeros.map(_same_class).unique()
    return (str(zeros.iloc[0]) if len(distinct) == 1 else zero_unseen), one


def _read_classes(values: pd.Series, positive: str | None, source: str, column: str) -> LabelRead:
    text = values.astype("string").str.strip()
    labelled = (text.notna() & text.ne("")).to_numpy(dtype=bool)
    numbers = _numeric(values)
    if not labelled.any():
        return LabelRead(numbers, None)
    parsed = labelled & ~np.isnan(numbers)
    where = f"{source}: label column {column!r}"
    asked = positive is not None
    out = np.full(len(values), np.nan)
    if parsed.sum() * 2 >= labelled.sum():  # a column of numbers; text in it is quarantined ("not a class")
        names = pd.Series(numbers[parsed]).map(class_name)
        distinct = set(numbers[parsed])
        if distinct <= {0.0, 1.0}:
            if positive == "0":  # 0 is the class the model predicts
                return LabelRead(1.0 - numbers, None, ("1", "0"))
            return LabelRead(numbers, None)
        zero_unseen = not_class(positive) if positive is not None else "-1"
        if positive is None and distinct <= {-1.0, 1.0}:
            positive = "1"
        elif positive is None:
            counts = names.value_counts()
            if len(counts) > MAX_CLASSES or not all(float(v).is_integer() for v in distinct):
                raise DataError(
                    f"{where} holds numbers, not classes ({len(counts):,} distinct values from "
                    f"{min(distinct):g} to {max(distinct):g}); a label is 0/1, two named classes (up/down, yes/no, "
                    "...) or classes with data.positive_label naming the one that is 1"
                )
            raise DataError(
                f"{where} has {len(counts)} classes: {_classes_shown(counts)}; a model here predicts one class "
                f"against the rest: name it with --set data.positive_label=<class>"
            )
        chosen = pd.Series(numbers).map(class_name).eq(class_name(positive)).to_numpy()
        out[parsed] = chosen[parsed]
        shown, counted = names, parsed
    else:
        named = text.to_numpy(dtype=object, na_value="")
        same = np.array([_same_class(str(v)) for v in named], dtype=object)
        shown, counted = pd.Series(named[labelled]), labelled
        if positive is None:
            in_pair = [(int(np.isin(same[labelled], pair).sum()), pair) for pair in CLASS_PAIRS]
            rows, pair = max(in_pair, key=lambda found: found[0])
            if rows == 0 or rows < (1 - STRAY_CLASSES) * labelled.sum():
                counts = shown.value_counts()
                what = "two classes" if len(counts) == 2 else f"{len(counts)} classes"
                raise DataError(
                    f"{where} has {what}: {_classes_shown(counts)}; name the one that is 1 with "
                    f"--set data.positive_label=<class> (the others are 0)"
                )
            out[same == pair[0]] = 1.0
            out[same == pair[1]] = 0.0
            positive = next((str(v) for v in named[same == pair[0]][:1]), pair[0])
            zero_unseen = pair[1]
        else:
            out[labelled] = same[labelled] == _same_class(positive)
            zero_unseen = not_class(positive)
    is_one = out[counted] == 1
    ones = sorted({str(v) for v in shown[is_one]})
    if not ones:
        note = f"{where}: no row is of class {positive!r} (data.positive_label); every labelled row is 0"
        return LabelRead(out, note)
    classes = _class_names(shown, is_one, zero_unseen)
    zeros = ", ".join(sorted({repr(str(v)) for v in shown[~is_one]})) or "no class"
    note = (
        f"{where}: {', '.join(map(repr, ones))} {'is' if len(ones) == 1 else 'are'} 1 and {zeros} 0 "
        "(data.positive_label names the class that is 1)"
    )
    if asked:  # the user's own choice: said, not warned about
        logger.info(note)
        return LabelRead(out, None, classes)
    return LabelRead(out, note, classes)


def normalise_frame(
    raw: pd.DataFrame, columns: ColumnMap, source: str, labels: np.ndarray | None = None, zone: str | None = None
) -> pd.DataFrame:
    """Build the canonical frame; values that do not parse become NaN/NaT for the contract to catch.

    Built in one go (no column-by-column inserts); extra feature columns that arrive as float32 stay
    float32 (half the memory, and the precision they came with).
    """
    combined = _combined_time(raw, columns)
    if combined is None:
        timestamps = parse_timestamps(raw[columns.time], source, columns.time, zone)
    else:
        timestamps = parse_timestamps(combined, source, f"{columns.time} + {columns.period}", zone)
        logger.warning(
            "%s: the time is %r and %r together (%s %s is %s)",
            source,
            columns.time,
            columns.period,
            raw[columns.time].iloc[0] if len(raw) else "",
            raw[columns.period].iloc[0] if len(raw) else "",
            f"{timestamps.dropna().iloc[0]:%Y-%m-%d %H:%M}" if timestamps.notna().any() else "not a time",
        )
    if timestamps.isna().all() and len(raw):
        example = raw[columns.time].iloc[0]
        shown = example.item() if isinstance(example, np.generic) else example  # 1950.5, not np.float64(1950.5)
        raise DataError(f"{source}: column {columns.time!r}: no value parses as a timestamp (first value: {shown!r})")
    data: dict[str, Any] = {
        "symbol": (
            raw[columns.symbol].astype("string").fillna("<missing>").astype(str)
            if columns.symbol
            else np.full(len(raw), ONE_SERIES, dtype=object)
        ),
        "timestamp": timestamps,
    }
    for canonical, original in columns.prices.items():
        data[canonical] = _numeric(raw[original])
    if columns.target is not None:
        data["target"] = (
            labels if labels is not None else read_label(raw[columns.target], None, source, columns.target)[0]
        )
    for name in columns.extra:
        data[feature_column(name)] = _numeric(raw[name], keep_float32=True)
    data.update(category_features(raw, columns.categories))
    frame = pd.DataFrame(data, index=raw.index)
    return frame.sort_values(["symbol", "timestamp"], kind="stable")


def feature_column(name: str) -> str:
    """A label series' feature column as the canonical frame names it: its normalised name, with ``_feature``
    added where that is a name of the frame's own (a feature named ``high`` is not a bar's high price, nor
    one named ``y`` the target)."""
    norm = normalise_name(name)
    return f"{norm}_feature" if norm in RESERVED_COLUMNS else norm


def _file_in(source: str, key: str) -> str:
    """A staged object's file as a warning names it: the source itself, or the file under the folder."""
    return key if key == source or source.endswith(key) else f"{source.rstrip('/')}/{key}"


# What leaving a price column out costs the features (``driftline.features``): each symbol's must be the same.
WITHOUT = {
    "open": (),
    "high": ("range_z", "close_in_range"),
    "low": ("range_z", "close_in_range"),
    "volume": ("volume_z",),
}


def prices_in_every_file(
    frame: pd.DataFrame, objects: pd.Series, columns: ColumnMap, source: str
) -> tuple[pd.DataFrame, ColumnMap, tuple[str, ...]]:
    """Open, high, low and volume only where every file has them. A file of a folder without one of them (it is
    in the unified schema, so its rows would read as missing values and be quarantined: a close-only index beside
    OHLCV stocks) leaves that column out for every symbol, with one warning per set of files naming them and
    what the features lose: each symbol's features must be the same.

    Returns:
        The frame (without those columns then), the column map (likewise) and the warnings, if any.
    """
    by_files: dict[tuple[str, ...], list[str]] = {}
    for name in (n for n in WITHOUT if n in frame.columns):
        present = frame[name].notna().groupby(objects.reindex(frame.index), sort=True).any()
        lacking = tuple(str(key) for key in present.index[~present])
        if lacking:
            by_files.setdefault(lacking, []).append(name)
    told = []
    for lacking, names in by_files.items():
        files = [_file_in(source, key) for key in lacking]
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        what = "the volume is" if names == ["volume"] else f"{', '.join(names)} {'are' if len(names) > 1 else 'is'}"
        lost = list(dict.fromkeys(f for n in names for f in WITHOUT[n]))
        cost = f"no {', '.join(lost)}" if lost else "the features do not use it"
        warning = (
            f"{shown}: no {', '.join(repr(columns.prices[n]) for n in names)} values; {what} left out for every "
            f"symbol (their features must be the same: {cost})"
        )
        logger.warning(warning)
        told.append(warning)
        frame = frame.drop(columns=names)
        columns = replace(columns, prices={k: v for k, v in columns.prices.items() if k not in names})
    return frame, columns, tuple(told)


def best_price_per_symbol(
    frame: pd.DataFrame, objects: pd.Series, columns: ColumnMap, source: str
) -> tuple[pd.DataFrame, tuple[str, ...], tuple[str, ...]]:
    """Each symbol's price series from its best column: the adjusted close, else the close.

    In a folder of files one file may lack the adjusted close that the others have (it is in the
    unified schema, so its rows would read as missing values and be quarantined). A file with no
    adjusted close at all gives its symbols their close instead, in every file of theirs: adjusted and
    unadjusted prices must not meet in one series, where the step between them would read as a return.
    A file whose adjusted close is missing in only some rows keeps them missing (the contract decides).

    Args:
        frame: the canonical frame.
        objects: each row's source object (file key), on the frame's index.

    Returns:
        The frame (``adj_close`` filled from ``close`` for those symbols), those symbols, and one warning
        per such file.
    """
    if "adj_close" not in frame.columns or "close" not in frame.columns:
        return frame, (), ()
    objects = objects.reindex(frame.index)
    adjusted = frame["adj_close"].notna()
    per_file = pd.DataFrame({"adjusted": adjusted, "close": frame["close"].notna()}).groupby(objects, sort=True).any()
    # No adjusted close in the whole file; and a close to use instead (else nothing better is there).
    lacking = [str(key) for key in per_file.index[~per_file["adjusted"] & per_file["close"]]]
    if not lacking:
        return frame, (), ()
    symbols_of = frame["symbol"].groupby(objects, sort=True).unique()
    symbols = sorted({str(symbol) for key in lacking for symbol in symbols_of[key]})
    switched = frame["symbol"].isin(symbols)
    # Those symbols' rows in files that do have an adjusted close: they switch to the close too.
    elsewhere = set(frame.loc[switched & adjusted, "symbol"])
    frame = frame.copy()
    frame.loc[switched, "adj_close"] = frame.loc[switched, "close"]
    adj_name, close_name = columns.prices["adj_close"], columns.prices["close"]
    warnings = []
    for key in lacking:
        where = _file_in(source, key)
        mine = sorted(str(symbol) for symbol in symbols_of[key])
        also = [symbol for symbol in mine if symbol in elsewhere]
        note = (
            f"; {', '.join(also)} use {close_name!r} in their other "
            "files too, so adjusted and unadjusted prices do not mix"
            if also
            else ""
        )
        warnings.append(
            f"{where}: no {adj_name!r} values; prices of {', '.join(mine)} come from {close_name!r} "
            f"(unadjusted: a split or dividend shows as a return){note}"
        )
    for warning in warnings:
        logger.warning(warning)
    return frame, tuple(symbols), tuple(warnings)


MAX_KEY_CANDIDATES = 8
REPEATED_TIMES = 0.05  # the share of rows whose time an earlier row has that makes a file a panel


def _text_columns(header: pd.DataFrame, needed: list[Any], partitions: frozenset[str]) -> list[str]:
    """Text columns not used yet (pandas' categoricals too, as Parquet keeps them), partition folders aside."""
    used = {str(c) for c in needed if c}
    return [
        str(c)
        for c in header.columns
        if str(c) not in used
        and str(c) not in partitions
        and (
            pd.api.types.is_object_dtype(header[c])
            or pd.api.types.is_string_dtype(header[c])
            or isinstance(header[c].dtype, pd.CategoricalDtype)
        )
    ]


def _key_candidates(header: pd.DataFrame, needed: list[Any], partitions: frozenset[str]) -> list[str]:
    """Text columns that could name the series of a panel with no symbol column by name (read with the data,
    then judged by ``infer_symbol``); partition folders and the columns already used are not candidates."""
    return _text_columns(header, needed, partitions)[:MAX_KEY_CANDIDATES]


CATEGORY_LIMIT = 20  # a label series' text column of at most this many values is a categorical feature


def _category_values(values: pd.Series) -> pd.Series:
    """A categorical column's values as its features name them (``normalise_name``: `` Rain `` -> ``rain``)."""
    text = values.astype("string").str.strip()
    return text.where(text.ne("")).map(normalise_name, na_action="ignore")


# A label series' text column of numbers with a few other values is a numeric feature, those values missing (named in
# a warning): strays (a typo like 12O, at most NUMBER_STRAYS of the values) or a mark for a missing value (a text
# without digits, at most MISSING_MARKS of them, as many or fewer than the numbers: "-", "?", "..", "n.a.", "error").
# Before, one such value made the column text: not used in training (or, with at most CATEGORY_LIMIT values, a 0/1
# feature per number), and a scored batch holding one failed outright. At least STRAY_FLOOR values are numbers.
NUMBER_STRAYS = 0.01
MISSING_MARKS = 2
STRAY_FLOOR = 20
N_STRAY_EXAMPLES = 3


def stray_text_in_numbers(values: pd.Series) -> pd.Series | None:
    """The cells of a text column that are not numbers when the rest are, stripped, at their rows (strays or
    marks of a missing value, as above); None when the column is not such (every value a number, as codes kept
    as text are, or text)."""
    text = values.astype("string").str.strip()
    present = text.notna() & text.ne("")
    parsed = pd.to_numeric(text.where(present), errors="coerce")
    stray = (present & parsed.isna()).fillna(False).astype(bool)
    strays, numbers = int(stray.sum()), int((present & parsed.notna()).sum())
    if not strays or numbers < STRAY_FLOOR:
        return None
    found: pd.Series = text[stray]
    if strays <= max(1.0, NUMBER_STRAYS * (strays + numbers)):
        return found
    marks = found.str.casefold().unique()
    if len(marks) <= MISSING_MARKS and strays <= numbers and not any(re.search(r"\d", str(m)) for m in marks):
        return found
    return None


def _numbers_with_strays(
    raw: pd.DataFrame, columns: ColumnMap, candidates: list[str], source: str
) -> tuple[ColumnMap, tuple[str, ...]]:
    """A label series' text columns of numbers with a few other values (``stray_text_in_numbers``) as numeric
    features, in the file's column order, with a warning per column naming those values, their rows and lines."""
    warnings = []
    found = []
    for column in candidates:
        text = stray_text_in_numbers(raw[column])
        if text is None:
            continue
        found.append(column)
        shown = []
        for value, rows in list(text.groupby(text, sort=False).groups.items())[:N_STRAY_EXAMPLES]:
            lines = locate_rows(raw, list(rows[:N_STRAY_EXAMPLES]))
            where = ", ".join(lines) + (", ..." if len(rows) > len(lines) else "")
            shown.append(f"{value!r} ({f'{len(rows)} rows: ' if len(rows) > 1 else ''}{where})")
        others = text.nunique() - len(shown)
        more = f" and {others} more" if others > 0 else ""
        warning = (
            f"{source}: column {column!r}: {len(text)} of {int(raw[column].notna().sum()):,} values "
            f"{'is' if len(text) == 1 else 'are'} not a number: {', '.join(shown)}{more}; "
            "read as missing (a feature's missing value is its series' last known one, for up to "
            "features.carry_limit rows)"
        )
        logger.warning(warning)
        warnings.append(warning)
    if not found:
        return columns, ()
    numeric = {*columns.extra, *found}
    extra = tuple(str(c) for c in raw.columns if c in numeric)  # the file's order, as a clean batch reads it
    return replace(columns, extra=extra), tuple(warnings)


def categorical_columns(raw: pd.DataFrame, candidates: list[str]) -> tuple[str, ...]:
    """Of a label series' unused text columns, those with 2 to ``CATEGORY_LIMIT`` values: weekday names, a
    regime, a sensor's status, a sector. A column of more (an id, free text) stays unused, and is named so."""
    return tuple(c for c in candidates if 2 <= _category_values(raw[c]).nunique() <= CATEGORY_LIMIT)


def category_features(raw: pd.DataFrame, categories: tuple[str, ...]) -> dict[str, np.ndarray]:
    """A 0/1 float32 column per value of each categorical column (a row of no value: 0 in each), named
    ``<feature_column(column)>=<value>``. A value the model never saw is 0 in every one of its columns when
    scored (``features.scoring_rows``)."""
    out: dict[str, np.ndarray] = {}
    for column in categories:
        values = _category_values(raw[column])
        for value in sorted(values.dropna().unique()):
            out[f"{feature_column(column)}{CATEGORY_MARK}{value}"] = values.eq(value).fillna(False).to_numpy(np.float32)
    return out


def infer_symbol(raw: pd.DataFrame, time: str | list[str], candidates: list[str], source: str) -> str | None:
    """The text column that names each series of a panel whose symbol column has another name (``country``,
    ``station``, ``firm``...): when many rows share a time (``REPEATED_TIMES``), the candidate with the fewest
    values under which no two rows share a time (almost: at most 1% of rows, which the contract then
    quarantines as duplicates), each value holding three rows or more on average (an event id is no series).
    None when times do not repeat or no candidate separates them; logged. ``time``: the time column, or the
    columns that are the time together (a year and its quarter)."""
    times = [time] if isinstance(time, str) else list(time)
    repeated = float(raw.duplicated(subset=times).mean()) if len(raw) else 0.0
    if repeated < REPEATED_TIMES:
        return None
    fits = []
    for column in candidates:
        values = raw[column].nunique(dropna=True)
        clashes = float(raw.duplicated(subset=[column, *times]).mean())
        if values > 1 and 3 * values <= len(raw) and clashes <= 0.01:  # a row id is no series key
            fits.append((values, clashes, column))
    if not fits:
        return None
    values, _, chosen = min(fits)
    logger.warning(
        "%s: column %r taken as the symbol: %.0f%% of rows share their time (%s) with another row, and each of "
        "its %d values has one row per time; pass --symbol-col (data.symbol_col) to choose another",
        source,
        chosen,
        100 * repeated,
        " + ".join(repr(t) for t in times),
        values,
    )
    return chosen


def demo_data_path() -> Path:
    """Real daily OHLCV (Quandl WIKI, public domain) shipped inside bokeh-sampledata."""
    return Path(str(resources.files("bokeh_sampledata") / "_data" / DEMO_FILE))


def _schema_frame(schema: Any) -> pd.DataFrame:
    """An empty frame with the staged columns and types: detection runs on it before anything is read."""
    frame: pd.DataFrame = schema.empty_table().to_pandas()
    return frame.drop(columns=[c for c in frame.columns if str(c).startswith("__")])


def read_options(data: DataConfig) -> ReadOptions:
    """The reading choices of the data section (``sources.ReadOptions``): how its files are staged."""
    return ReadOptions(**{f.name: getattr(data, f.name) for f in fields(ReadOptions)})  # each one a data key


def stage_data(data: DataConfig, stage_root: Path) -> StagedSource:
    """Bring the source's new or changed objects into the stage; cheap when nothing changed.

    Its ``content_hash`` identifies the input before anything is parsed.
    """
    location = data.path or str(demo_data_path())
    source = open_source(location, endpoint_url=data.s3_endpoint_url, profile=data.s3_profile)
    return stage_source(source, stage_root, incremental=data.incremental, options=read_options(data))


def unchanged_data(data: DataConfig, stage_root: Path) -> tuple[str, IngestStats] | None:
    """``stage_data``'s content hash and stats when nothing in the source changed since it was last staged
    (None otherwise), without reading or staging anything (``sources.unchanged_stage``)."""
    if not data.incremental:
        return None
    location = data.path or str(demo_data_path())
    source = open_source(location, endpoint_url=data.s3_endpoint_url, profile=data.s3_profile)
    return unchanged_stage(source, stage_root, read_options(data))


DIGITS = re.compile(r"\d+")
SHARED_TIMES = 0.01  # the share of times in two files or more below which files are parts of one series


def parts_of_one_series(stems: pd.Series, times: pd.DataFrame, source: str, part: str = "file") -> str | None:
    """The one symbol of a folder whose files are one series cut by period, not one instrument each: their
    names differ only in digits (``BTCUSDT-1d-2024-01``, ``BTCUSDT-1d-2024-02``) and at most 1% of their times
    are in two of them (files of instruments share their times). The symbol is the names' common start, up
    to its last digits (``BTCUSDT-1d``; ``series`` when nothing is left); None otherwise. ``part``: what the
    stems name, ``file`` or a workbook's ``sheet``, as the warning says.
    """
    names = sorted(stems.astype(str).unique())
    if len(names) < 2 or len({DIGITS.sub("#", n) for n in names}) > 1:
        return None
    stamp = times.iloc[:, 0].astype(str)
    for column in times.columns[1:]:
        stamp = stamp + " " + times[column].astype(str)
    files_per_time = pd.DataFrame({"t": stamp, "f": stems.to_numpy()}).drop_duplicates().groupby("t").size()
    shared = float((files_per_time > 1).mean())
    if shared > SHARED_TIMES:
        return None
    common = _series_name(_common_start(names))
    logger.warning(
        "%s: its %d %ss are one series cut by period, not one symbol each (their names differ only in digits, "
        "%s ... %s, and %.1f%% of their times are in two of them): symbol %r; give the %ss a symbol column "
        "to keep them apart",
        source,
        len(names),
        part,
        names[0],
        names[-1],
        100 * shared,
        common,
        part,
    )
    return common


def _series_name(common: str) -> str:
    """A series' name from the start its files' names share: up to the last separator before the names differ,
    without the dates' digits that end it (``BTCUSDT-1h-2024-0`` -> ``BTCUSDT-1h``, ``DAT_ASCII_EURUSD_M1_20``
    -> ``DAT_ASCII_EURUSD_M1``, ``AAPL20`` -> ``AAPL``); ``series`` when nothing is left."""
    cut = max(common.rfind(sep) for sep in " -_.")
    kept = common[:cut] if cut >= 0 else re.sub(r"\d+$", "", common)
    return re.sub(r"([ \-_.]\d+)+$", "", kept).rstrip(" -_.") or ONE_SERIES


def _common_start(names: list[str]) -> str:
    first, last = names[0], names[-1]  # sorted: what they share, every name between shares
    size = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[:size]


def without_excluded(header: pd.DataFrame, data: DataConfig, source: str) -> pd.DataFrame:
    """The source's columns without those ``data.exclude_cols`` names (as ``--time-col`` names match: exactly or
    by ``normalise_name``), so nothing detects, reads or uses them.

    Raises:
        DataError: a name that is no column, or a column also named as the time, symbol, price or label.
    """
    if not data.exclude_cols:
        return header
    # By its name, its normalised name or its feature's name (a column "high" of a label series is "high_feature").
    by_norm = {**{feature_column(c): c for c in header.columns}, **{normalise_name(c): c for c in header.columns}}
    excluded = []
    for name in data.exclude_cols:
        column = name if name in header.columns else by_norm.get(normalise_name(name))
        if column is None:
            raise DataError(
                f"{source}: data.exclude_cols names {name!r}, not a column; {_columns_shown(header.columns)}"
            )
        excluded.append(column)
    gone = {normalise_name(c) for c in excluded}
    for key in ("time_col", "symbol_col", "price_col", "target_col"):
        value = getattr(data, key)
        if value is not None and (value in excluded or normalise_name(value) in gone):
            raise DataError(f"{source}: column {value!r} is both data.{key} and in data.exclude_cols; keep one")
    return header.drop(columns=excluded)


def load_staged(
    data: DataConfig,
    staged: StagedSource,
    need_target: bool = False,
    keep_stage: bool = True,
    for_model: bool = False,
) -> LoadedData:
    """Detect columns on the staged schema, read only those, normalise. ``for_model``: rows read for a trained
    model (score, compare, monitor, a retrain's source), whose label classes its training chose and said: how
    the label reads is logged, not warned about again with every batch.

    Raises:
        DataError: the data lacks a time or price column, or has no rows.
    """
    source = staged.uri
    schema = staged_schema(staged)  # once: it reads every staged file's footer
    header = _schema_frame(schema)
    if header.shape[1] == 0:
        raise DataError(f"{source}: no columns (empty file)")
    header = without_excluded(header, data, source)
    partitions = frozenset(name for key in staged.keys for name in partition_values(key))
    columns = detect_columns(header, data, source, need_target, partitions, sample=partial(staged_sample, staged))
    needed = [
        *(columns.time, columns.period, columns.symbol, *columns.prices.values(), columns.target, *columns.extra),
        *columns.wide,
    ]
    named = columns.symbol is not None or bool(columns.wide)
    stem = not named and STEM_COLUMN in schema.names  # a folder's files, or a workbook's sheets
    keys = _key_candidates(header, needed, partitions) if not named and not stem else []
    texts = _text_columns(header, needed, partitions) if need_target else []  # categories, perhaps
    ticks = (
        _pick({normalise_name(c): str(c) for c in header.columns}, TICK_VOLUME) if "volume" in columns.prices else None
    )
    wanted = [c for c in dict.fromkeys([*needed, ticks, *keys, *texts]) if c] + ([STEM_COLUMN] if stem else [])
    raw = read_staged(staged, wanted, schema)
    if raw.empty:
        raise DataError(f"{source}: no data rows (header only or empty)")
    columns, tick_note = _ticks_for_no_volume(raw, columns, ticks, source)
    if columns.wide:
        raw, columns = wide_as_long(raw, columns, source)
    if keys:
        symbol = infer_symbol(raw, [c for c in (columns.time, columns.period) if c], keys, source)
        raw = raw.drop(columns=[c for c in keys if c != symbol and c not in texts])
        columns = replace(columns, symbol=symbol, symbol_inferred=symbol is not None)
    strays: tuple[str, ...] = ()
    if texts:
        texts = [c for c in texts if c != columns.symbol]
        columns, strays = _numbers_with_strays(raw, columns, texts, source)
        columns = replace(columns, categories=categorical_columns(raw, [c for c in texts if c not in columns.extra]))
    if stem:
        # A folder of per-instrument files without a symbol column: each file's stem is the symbol; a folder of
        # one series cut by period (Binance's monthly dumps), one symbol.
        part = "sheet" if staged.single_object else "file"
        times = raw[[c for c in (columns.time, columns.period) if c]]
        one = parts_of_one_series(raw[STEM_COLUMN], times, source, part)
        raw = raw.rename(columns={STEM_COLUMN: "symbol"})
        if one is not None:
            raw["symbol"] = one
        named_by = f"the {part}s' names' common start ({one})" if one is not None else f"each {part}'s name"
        columns = replace(columns, symbol="symbol", symbol_from=named_by)
    labels, label_note, classes = (
        read_label(raw[columns.target], data.positive_label, source, columns.target)
        if columns.target is not None
        else (None, None, None)
    )
    columns = replace(columns, classes=classes)
    if label_note:
        logger.log(logging.INFO if for_model else logging.WARNING, label_note)
        label_note = None if for_model else label_note
    frame = normalise_frame(raw, columns, source, labels, data.timezone)
    if data.path is None:
        keep = frame["symbol"].isin(data.demo_symbols)
        frame, raw = frame[keep], raw.loc[keep]
    frame, close_as_adjusted, warnings = best_price_per_symbol(frame, raw[OBJECT_COLUMN], columns, source)
    warnings = tick_note + strays + ((label_note,) if label_note else ()) + warnings
    frame, columns, left_out = prices_in_every_file(frame, raw[OBJECT_COLUMN], columns, source)
    warnings += left_out
    if need_target:
        warnings += unused_columns_note(header, raw, columns, source)
    logger.info("read %d rows from %s (sha256 %s)", len(frame), source, staged.content_hash[:12])
    return LoadedData(
        zone=_own_zone(raw[columns.time]) if columns.time in raw.columns else None,
        frame=frame,
        raw=raw,
        source=source,
        content_hash=staged.content_hash,
        columns=columns,
        files=staged.keys,
        stats=staged.stats,
        staged=staged if keep_stage else None,
        warnings=warnings,
        close_as_adjusted=close_as_adjusted,
    )


def _own_zone(values: pd.Series) -> str | None:
    """The zone a zone-aware time column holds its times in (``Europe/Berlin``), None for UTC or naive times."""
    zone = getattr(values.dtype, "tz", None)
    return None if zone is None or str(zone).upper() in ("UTC", "Z", "ETC/UTC") else str(zone)


# MetaTrader's tick volume: the activity a currency pair has when its real volume (<VOL>) is 0 in every row.
TICK_VOLUME = ("tickvol", "tick_volume", "tickvolume")


def _ticks_for_no_volume(
    raw: pd.DataFrame, columns: ColumnMap, ticks: str | None, source: str
) -> tuple[ColumnMap, tuple[str, ...]]:
    """The tick volume as the volume when the volume column is 0 (or missing) in every row and the tick volume
    is not (MetaTrader 5's forex export: <VOL> 0, <TICKVOL> the ticks), with a warning saying so."""
    volume = columns.prices.get("volume")
    if ticks is None or volume is None or ticks == volume:
        return columns, ()
    counts = pd.to_numeric(raw[ticks], errors="coerce")
    if pd.to_numeric(raw[volume], errors="coerce").fillna(0).ne(0).any() or not counts.fillna(0).ne(0).any():
        return columns, ()
    note = f"{source}: {volume!r} is 0 in every row; {ticks!r} (ticks) is the volume"
    logger.warning(note)
    return replace(columns, prices={**columns.prices, "volume": ticks}), (note,)


def unused_columns_note(header: pd.DataFrame, raw: pd.DataFrame, columns: ColumnMap, source: str) -> tuple[str, ...]:
    """For a label series: the columns that are neither its time, symbol, prices, label nor a feature (the
    features are its numeric columns and its text columns of a few values), as one warning naming each with its
    type (and a text column's count of values); none when every column is used. A column dropped without a
    word would look like a feature the model ignored."""
    used = {
        *(columns.time, columns.period, columns.symbol, *columns.prices.values(), columns.target),
        *(*columns.extra, *columns.categories),
    }
    unused = [column for column in header.columns if column not in used]
    if not unused:
        return ()
    kinds = {"O": "text", "U": "text", "S": "text", "M": "a time", "m": "a duration"}

    def kind(column: Any) -> str:
        named = kinds.get(header[column].dtype.kind, str(header[column].dtype))
        if named == "text" and column in raw.columns:
            count = _category_values(raw[column]).nunique()
            return f"text, {count:,} value{'s' if count != 1 else ''}"
        return named

    named = ", ".join(f"{str(c)!r} ({kind(c)})" for c in unused)
    warning = (
        f"{source}: not used: {named}; a label series' features are its numeric columns and its text columns of "
        f"2 to {CATEGORY_LIMIT} values (a 0/1 feature per value)"
    )
    logger.warning(warning)
    return (warning,)


def load_data(
    data: DataConfig, need_target: bool = False, stage_root: Path | None = None, for_model: bool = False
) -> LoadedData:
    """Stage ``data.path`` (or the bundled demo panel), detect columns, read only those, normalise.

    Args:
        data: where the data is and which columns mean what.
        need_target: label mode (a target column is required).
        stage_root: where staged files and manifests live (``<DRIFTLINE_HOME>/ingest``); with None, a
            temporary stage and no incremental reads.
        for_model: rows read for a trained model (``load_staged``).

    Raises:
        DataError: the source cannot be read or lacks a time or price column.
        SourceUnavailable: the source cannot be reached (worth retrying).
    """
    with _stage_dir(stage_root) as root:
        staged = stage_data(data if stage_root is not None else data.model_copy(update={"incremental": False}), root)
        return load_staged(data, staged, need_target, keep_stage=stage_root is not None, for_model=for_model)
