"""Where data comes from: a file, a glob, a (Hive-partitioned) folder or an S3 prefix — staged once.

Every source object (a local file or an S3 object) is read once into a staged Parquet file under
``<stage root>/<source id>/``. A manifest remembers each object's fingerprint (size and mtime, or the
S3 ETag) and the sha256 of its bytes, so a scheduled run reads only new or changed objects and takes
the rest from the stage; running again on the same input reads nothing and gives the same hash.

Hive-style folder names (``symbol=BTC/date=2024-01-01/part-0.parquet``) become string columns. The
staged files are then scanned together with ``pyarrow.dataset``, projecting only the columns the
pipeline needs.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import hashlib
import io
import json
import logging
import lzma
import os
import re
import tempfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from driftline.errors import DataError, SourceUnavailable
from driftline.formats import FOLDER_FILES

logger = logging.getLogger(__name__)

STAGE_VERSION = "9"  # bump when staging changes what a staged file holds (3: decimal commas read as numbers; 4: a
# saved pandas index as columns, numbers grouped by commas as numbers; 5: two column levels read long; 6: headerless
# price files named, numbers with a currency sign read, a trailing delimiter's empty column dropped; 7: a workbook's
# sheets of the same columns read, a symbol each; 8: codes padded with zeros as text; 9: rows repeating the header
# skipped)
OBJECT_COLUMN = "__source_object"
LINE_COLUMN = "__source_line"
STEM_COLUMN = "__file_stem"  # what names a row's symbol when nothing in it does: its file's stem, its sheet


@dataclass(frozen=True)
class ReadOptions:
    """How files are read beyond what they show: the user's choices (``data.encoding``, ``data.sheet``), None
    where the file decides. Part of the stage's name (``_source_id``), so files read otherwise are staged apart
    and a new option cannot be missed."""

    encoding: str | None = None  # a codecs name; None: each file's own (``_encoding``)
    sheet: str | None = None  # a workbook's sheet; None: its first table and the sheets alike (``_read_workbook``)

    def key(self) -> str:
        """The options set, as text ("" when none is)."""
        chosen = {k: v for k, v in sorted(self.__dict__.items()) if v is not None}
        return json.dumps(chosen, sort_keys=True) if chosen else ""


AS_SHOWN = ReadOptions()
_PARTITION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SourceObject:
    """One file or S3 object: its key relative to the source root and a cheap change fingerprint."""

    key: str
    fingerprint: str


@dataclass(frozen=True)
class IngestStats:
    """What this run read from the source and what it took from the stage."""

    objects: int
    new: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: int = 0
    removed: tuple[str, ...] = ()

    @property
    def read(self) -> tuple[str, ...]:
        return self.new + self.changed

    def as_dict(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "read": len(self.read),
            "new": list(self.new),
            "changed": list(self.changed),
            "unchanged": self.unchanged,
            "removed": list(self.removed),
        }


@dataclass(frozen=True)
class StagedSource:
    """A source's objects as staged Parquet files, in key order, with the dataset's content hash."""

    uri: str
    content_hash: str
    keys: tuple[str, ...]
    files: tuple[Path, ...]
    stats: IngestStats
    single_object: bool
    manifest_path: Path | None = field(default=None)


class Source(Protocol):
    uri: str
    single_object: bool

    def list_objects(self) -> list[SourceObject]: ...

    def fetch(self, obj: SourceObject, workdir: Path) -> Path: ...


# --- reading one file -------------------------------------------------------------------------------------------------


def is_data_file(name: str) -> bool:
    return name.lower().endswith(FOLDER_FILES)


def file_stem(name: str) -> str:
    """``AAPL.csv.gz`` -> ``AAPL``; ``BRK.B.csv`` -> ``BRK.B``; ``aapl.us.txt`` (a glob's file) -> ``aapl.us``."""
    base = PurePosixPath(name).name
    return next((base[: -len(sfx)] for sfx in FOLDER_FILES if base.lower().endswith(sfx)), PurePosixPath(base).stem)


def partition_values(key: str) -> dict[str, str]:
    """Hive-style ``name=value`` folder segments of an object key."""
    values = {}
    for part in PurePosixPath(key).parts[:-1]:
        match = _PARTITION.match(part)
        if match:
            values[match.group(1)] = match.group(2)
    return values


DECIMAL_COMMA = re.compile(r"[-+]?(\d+|\d{1,3}(\.\d{3})+),\d+")  # 316,1 and 1.234,56
DECIMAL_POINT = re.compile(r"[-+]?\d+\.\d+")  # 316.1


# The leading bytes of files a user may pass by mistake: what each is, and how to make it a file we read.
_NOT_READ = (
    (b"\x28\xb5\x2f\xfd", "a Zstandard-compressed file", "decompress it first: zstd -d FILE"),
    (b"\x89HDF", "an HDF5 file", "convert it with pandas: read_hdf(path, key).to_parquet(...)"),
    (b"SQLite format 3", "an SQLite database", "export the table as CSV"),
)
_READS = (
    "Driftline reads CSV text (any delimiter, optionally compressed, or alone in a zip), JSON, Excel .xlsx and .xls, "
    "LibreOffice .ods, Feather and Parquet"
)
OLE2_MAGIC = b"\xd0\xcf\x11\xe0"  # Office 97-2003's container: an Excel .xls workbook (or a Word file, ...)
ARROW_MAGICS = (b"ARROW1", b"FEA1")  # Arrow IPC files (pandas' to_feather) and Feather V1 files
# ``_zip_member``'s answers for a workbook (no file inside a zip is so named): Excel's .xlsx, LibreOffice's .ods.
EXCEL, CALC = "\0excel", "\0calc"
ODS_TYPE = "application/vnd.oasis.opendocument.spreadsheet"  # an .ods file's ``mimetype`` member
GZIP_MAGIC, PARQUET_MAGIC, ZIP_MAGIC = b"\x1f\x8b", b"PAR1", b"PK\x03\x04"
# Compressed text, by its leading bytes whatever its name: pandas' name for the compression, and its opener.
COMPRESSIONS = {GZIP_MAGIC: "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
OPENERS: dict[str, Any] = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
SNIFF_BYTES = 64 * 1024  # the text that decides a CSV's delimiter, decimal mark and header


def _leading_bytes(file: Path) -> bytes:
    with file.open("rb") as handle:
        return handle.read(16)


def is_parquet(file: Path) -> bool:
    """Parquet by its suffix, or by its content (a Parquet file passed under another name)."""
    if file.name.lower().endswith((".parquet", ".pq")):
        return True
    try:
        return _leading_bytes(file).startswith(PARQUET_MAGIC)
    except OSError:
        return False


def _sniff_format(file: Path, label: str, options: ReadOptions = AS_SHOWN) -> dict[str, str]:
    """``read_csv``'s delimiter (sniffed from the header) and, in a file not delimited by commas, its decimal
    mark: a comma when numbers such as ``316,1`` appear and none such as ``316.1``, as in spreadsheets saved
    in many European locales (grouped ``1.234,56``: ``_ungroup``). Gzipped text is read whatever its name.

    Raises:
        DataError: a workbook, an archive of several files or another file that is not text, named as such,
            with what is read instead. JSON is told (``json``: whole or lines) for ``_read_json``. Its
            ``encoding`` is told when not UTF-8 (``_encoding``, unless ``options`` give it: ``data.encoding``).
    """
    try:
        head = _leading_bytes(file)
    except OSError as exc:
        raise DataError(f"{label}: cannot be read ({exc.strerror})") from None
    for magic, what, how in _NOT_READ:
        if head.startswith(magic):
            raise DataError(f"{label}: {what}; {_READS}; {how}")
    if head.startswith(OLE2_MAGIC):
        return {"excel": "xls"}
    if head.startswith(ARROW_MAGICS):
        return {"arrow": "feather"}
    compressed = next((name for magic, name in COMPRESSIONS.items() if head.startswith(magic)), None)
    zipped = {"zip": _zip_member(file, label)} if head.startswith(ZIP_MAGIC) else {}
    if zipped.get("zip") in (EXCEL, CALC):
        return {"excel": "xlsx" if zipped["zip"] == EXCEL else "ods"}
    try:
        with _binary(file, compressed, zipped) as handle:
            raw = handle.read(SNIFF_BYTES)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DataError(f"{label}: cannot be read ({exc}); is the file truncated or corrupted?") from None
    encoding = options.encoding or _encoding(raw, label)
    try:
        sample = codecs.getincrementaldecoder(encoding)().decode(raw, final=False)  # the last character may be cut
    except UnicodeDecodeError as exc:  # only in the encoding a user chose
        raise DataError(f"{label}: not {encoding} text (byte {exc.start}: {exc.reason}); check data.encoding") from None
    compression = {"compression": compressed} if compressed else zipped  # by content, not by name
    if encoding != "utf-8":
        compression = {**compression, "encoding": encoding}
    opening = sample.lstrip("\ufeff \t\r\n")
    if opening[:1] in ("[", "{"):
        texts = [line.strip() for line in opening.splitlines() if line.strip()]
        lines_of_records = len(texts) > 1 and all(r.startswith("{") and r.endswith("}") for r in texts[:2])
        return {"json": "lines" if lines_of_records else "whole", **compression}
    if not sample.strip():
        raise DataError(f"{label}: file is empty")
    lines = sample.splitlines()
    hint = SEP_HINT.fullmatch(lines[0].strip())
    skip = 1 if hint else _title_lines(lines)
    if skip:
        lines = lines[skip:]
        compression = {**compression, "skip": str(skip)}
    try:
        sep = hint.group(1) if hint else csv.Sniffer().sniff(lines[0], delimiters=DELIMITERS).delimiter
    except csv.Error:
        sep = ","
    form = {"sep": sep, **compression}
    if sep != ",":
        fields = [f.strip().strip('"').strip(CURRENCY + " ") for line in lines[1:200] for f in line.split(sep)]
        if any(DECIMAL_COMMA.fullmatch(f) for f in fields) and not any(DECIMAL_POINT.fullmatch(f) for f in fields):
            form["decimal"] = ","
    if _two_column_levels(lines, sep):
        form["levels"] = "2"
        return form
    whole = lines[:-1] if len(raw) == SNIFF_BYTES and len(lines) > 1 else lines  # the last may be cut short
    rows = list(csv.reader(whole[:HEADERLESS_SAMPLE], delimiter=sep))
    if _no_header(lines[0], sep):
        form["names"] = ",".join(_headerless_names(rows, form.get("decimal", "."), label))
    else:
        rows = rows[1:]
    codes = [k for k in range(len(rows[0]) if rows else 0) if _zero_padded(row[k] for row in rows if len(row) > k)]
    if codes:
        form["codes"] = ",".join(map(str, codes))
    return form


# Excel's separator hint, a first line ``sep=;`` that some exports write so that Excel splits the columns.
SEP_HINT = re.compile(r'"?sep=(.)"?[,;\t]*')
ZERO_PADDED = re.compile(r"\d{4,}")


def _zero_padded(values: Iterable[str]) -> bool:
    """Whether a column's values are codes padded with zeros (Shenzhen's stock codes ``000001``, Seoul's
    ``005930``): digits, all of one length, one at least starting with 0. Read as numbers, ``000001`` became
    the symbol ``1``: such a column is read as text, as written."""
    present = [v.strip() for v in values if v and v.strip()]
    return (
        bool(present)
        and all(ZERO_PADDED.fullmatch(v) for v in present)
        and len({len(v) for v in present}) == 1
        and any(v.startswith("0") for v in present)
    )


def _zip_member(file: Path, label: str) -> str:
    """The one file inside a zip archive (data.binance.vision's downloads; a single CSV zipped by hand), read
    as that file would be; macOS's resource forks (``__MACOSX/``) and hidden files do not count.

    Raises:
        DataError: an office document that is not a workbook (a Word .docx or an OpenDocument text is a zip of
            XML parts too), an archive of several files or none, or one that cannot be read, with what to do.
            An Excel workbook is ``EXCEL``, a LibreOffice (OpenDocument) spreadsheet ``CALC``.
    """
    try:
        with zipfile.ZipFile(file) as archive:
            names = [
                n
                for n in archive.namelist()
                if not n.endswith("/") and not n.startswith("__MACOSX/") and not PurePosixPath(n).name.startswith(".")
            ]
            kind = archive.read("mimetype")[:200].decode("ascii", "replace").strip() if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{label}: a zip archive that cannot be read ({exc}); is it truncated?") from None
    if "xl/workbook.xml" in names:
        return EXCEL  # an Excel workbook: ``_read_workbook``
    if "xl/workbook.bin" in names:
        raise DataError(
            f"{label}: an Excel binary workbook (.xlsb); {_READS}; save it as an Excel Workbook (.xlsx) or as CSV"
        )
    if kind == ODS_TYPE:
        return CALC
    if "[Content_Types].xml" in names or kind:
        raise DataError(f"{label}: an office document that is not a workbook ({kind or 'Office Open XML'}); {_READS}")
    if len(names) == 1 and not names[0].lower().endswith((".parquet", ".pq")):
        return names[0]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    folder = file_stem(PurePosixPath(label).name)
    raise DataError(
        f"{label}: a zip archive of {len(names)} files ({shown or 'none'}); {_READS}; unzip it "
        f"(unzip {PurePosixPath(label).name} -d {folder}) and pass the folder or the file"
    )


# The code pages spreadsheets on Windows save CSV in, most used first: Western Europe and the Americas, simplified
# Chinese, Japanese, Cyrillic, Korean, Central Europe, then the rest. When a file's few non-ASCII bytes read
# cleanly in several encodings (charset-normalizer's matches with the least "chaos"), the first of these wins:
# on a French header, ``Clôture`` alone, charset-normalizer's own first choice was cp775 (``Cl¶ture``), and on a
# Chinese one cp949 (Korean).
CODE_PAGES = ("cp1252", "gb18030", "cp932", "cp1251", "cp949", "cp1250", "big5", "cp1253", "cp1254", "cp1257")
CLEAN = 0.01  # charset-normalizer's chaos (0: clean text) up to which a match reads as well as the best


def _encoding(raw: bytes, label: str) -> str:
    """The text encoding of a file's first bytes: UTF-8 (its byte-order mark or none), UTF-16 by its byte-order
    mark (what Excel saves as "Unicode text"), else the code page they read in (charset-normalizer's reading,
    ``CODE_PAGES`` first among equals), which ``read_file`` names in a warning (``_say_notes``).

    Raises:
        DataError: no encoding reads them as text (a binary file).
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
        return "utf-8"
    except UnicodeDecodeError as exc:
        failed = exc
    import charset_normalizer

    matches = charset_normalizer.from_bytes(raw)
    best = matches.best()
    if best is None:
        raise DataError(
            f"{label}: not text (not UTF-8 from byte {failed.start}, and no other encoding reads it); {_READS}"
        )
    readable = {name for m in matches if m.chaos <= best.chaos + CLEAN for name in m.could_be_from_charset}
    return next((page for page in CODE_PAGES if page in readable), str(best.encoding))


@contextmanager
def _binary(file: Path, compressed: str | None, zipped: dict[str, str]) -> Iterator[Any]:
    """A sniffed file's bytes: decompressed (``COMPRESSIONS``), or its zip's one member (``_zip_member``)."""
    if zipped:
        with _csv_input(file, zipped) as member:
            yield member
    else:
        with OPENERS.get(compressed or "", open)(file, "rb") as handle:
            yield handle


@contextmanager
def _text(file: Path, form: dict[str, str]) -> Iterator[Any]:
    """A sniffed file's text in its encoding (``_encoding``)."""
    zipped = {"zip": form["zip"]} if "zip" in form else {}
    with _binary(file, form.get("compression"), zipped) as handle:
        yield io.TextIOWrapper(handle, encoding=form.get("encoding", "utf-8"), newline="")


@contextmanager
def _csv_input(file: Path, form: dict[str, str]) -> Iterator[Any]:
    """What ``read_csv`` reads for a sniffed file: the file, or its zip's one member, opened."""
    if "zip" in form:
        with zipfile.ZipFile(file) as archive, archive.open(form["zip"]) as member:
            yield member
    else:
        yield file


def _read_json(file: Path, form: dict[str, str], label: str) -> pd.DataFrame:
    """A JSON file's table (``_json_table``), a row per record; text that holds numbers (Alpha Vantage's
    ``"187.15"``) as numbers.

    Raises:
        DataError: not valid JSON (the line and what is wrong), or no table found in it.
    """
    with _text(file, form) as handle:
        text = handle.read()
    try:
        if form["json"] == "lines":  # JSON Lines: a record per line
            data: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{label}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    frame = _json_table(data, label)
    for column in frame.select_dtypes(include="object").columns:
        values = frame[column].dropna()
        if _zero_padded(values.astype(str)):
            continue  # codes, not numbers: 000001
        numbers = pd.to_numeric(values, errors="coerce") if len(values) else values
        if len(values) and numbers.notna().all() and not values.map(lambda v: isinstance(v, bool)).any():
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _json_table(data: Any, label: str) -> pd.DataFrame:
    """The table inside parsed JSON, as APIs and pandas save it: a list of records (``df.to_json(orient=
    "records")``, JSON Lines; nested fields flattened, ``a.b``), a list of rows without names (Binance's klines:
    named as a headerless CSV is), the one list of them under a key (Polygon's ``results``, ``data``; the
    response's text fields, such as its ``ticker``, as columns), lists of [time, value] pairs side by side
    (CoinGecko's ``prices``, ``total_volumes``), records keyed by time (Alpha Vantage's ``Time Series
    (Daily)``; ``1. open`` is ``open``), pandas' other ``to_json`` layouts (columns, index, split, table).

    Raises:
        DataError: no table found, naming the keys that are there.
    """
    if isinstance(data, list):
        if not data:
            raise DataError(f"{label}: JSON with no records (an empty list)")
        if all(isinstance(r, dict) for r in data):
            return pd.json_normalize(data)
        if all(isinstance(r, list) for r in data):
            rows = [["" if v is None else str(v) for v in r] for r in data[:HEADERLESS_SAMPLE]]
            names = _headerless_names(rows, ".", label)
            _say_headerless([label], tuple(names))
            return pd.DataFrame(data, columns=names)
    if isinstance(data, dict):
        if {"columns", "data"} <= data.keys() and isinstance(data["data"], list):  # orient="split"
            frame = pd.DataFrame(data["data"], columns=data["columns"])
            return _keyed_by(frame, data.get("index"))
        tables = {k: v for k, v in data.items() if isinstance(v, list) and v}
        if len(tables) == 1:
            rows = next(iter(tables.values()))
            if all(isinstance(r, dict | list) for r in rows):
                frame = _json_table(rows, label)
                texts = {k: v for k, v in data.items() if isinstance(v, str) and k not in frame.columns}
                return frame.assign(**texts) if texts else frame
        if len(tables) > 1 and all(_pairs(v) and len(v) == len(next(iter(tables.values()))) for v in tables.values()):
            first = next(iter(tables.values()))
            frame = pd.DataFrame({k: [pair[1] for pair in v] for k, v in tables.items()})
            return frame.assign(timestamp=[pair[0] for pair in first])[["timestamp", *tables]]
        nested = {
            k: v for k, v in data.items() if isinstance(v, dict) and v and all(isinstance(r, dict) for r in v.values())
        }
        if len(nested) == 1 and len(data) <= 3:  # Alpha Vantage: "Meta Data" beside one "Time Series (...)"
            series: dict[str, Any] = next(iter(nested.values()))
            return _keyed_by(pd.DataFrame.from_dict(series, orient="index"), list(series)).rename(columns=_unnumbered)
        if data and all(isinstance(v, dict) for v in data.values()):
            inner = next(iter(data.values()))
            if inner and all(HEADERLESS_TIME.fullmatch(str(k)) for k in data):  # orient="index", keyed by time
                return _keyed_by(pd.DataFrame.from_dict(data, orient="index"), list(data))
            frame = pd.DataFrame(data)  # orient="columns", pandas' default: {column: {row: value}}
            return _keyed_by(frame.reset_index(drop=True), list(frame.index))
    keys = ", ".join(map(str, list(data)[:8])) if isinstance(data, dict) else type(data).__name__
    raise DataError(
        f"{label}: JSON without a table Driftline can find (keys: {keys}); save a list of records, "
        "df.to_json(path, orient='records')"
    )


WorkbookReader = Literal["openpyxl", "xlrd", "calamine"]  # pandas.read_excel's engines
WORKBOOK_READERS: dict[str, WorkbookReader] = {
    "xlsx": "openpyxl",
    "xls": "xlrd",  # Excel 97-2003
    "ods": "calamine",  # LibreOffice Calc's own format
}


def _read_workbook(file: Path, label: str, kind: str, chosen: str | None = None) -> pd.DataFrame:
    """A workbook's table (``kind``: xlsx, xls or ods, read by its ``WORKBOOK_READERS``): the ``chosen`` sheet
    (``data.sheet``) or else its first sheet that holds a table (``_sheet_table``; a sheet of notes is passed
    over), each row with its row number in the sheet (``LINE_COLUMN``), dates as the sheet's dates. Unless a
    sheet is chosen, the later sheets with the same columns are read too, a sheet per instrument (a workbook of
    AAPL, IBM ...): each row's sheet is its ``STEM_COLUMN``, the symbol a folder's file name would be. Sheets of
    other columns are named in a warning.

    Raises:
        DataError: no sheet holds data (or the chosen one is missing or empty, naming the sheets), no header
            row is found, or the workbook cannot be read.
    """
    engine = WORKBOOK_READERS[kind]
    failures: tuple[type[Exception], ...] = (OSError, ValueError, KeyError, AssertionError, zipfile.BadZipFile)
    if engine == "xlrd":
        import xlrd

        failures += (xlrd.XLRDError,)
    elif engine == "calamine":
        import python_calamine

        failures += (python_calamine.CalamineError,)
    said = io.StringIO()  # xlrd writes its notes on a file's quirks to stdout unless told otherwise
    engine_kwargs: dict[str, Any] | None = {"logfile": said} if engine == "xlrd" else None
    try:
        sheets = pd.read_excel(file, sheet_name=None, header=None, engine=engine, engine_kwargs=engine_kwargs)
    except failures as exc:
        raise DataError(f"{label}: a workbook that cannot be read ({exc})") from None
    if said.getvalue().strip():
        logger.debug("%s: xlrd: %s", label, said.getvalue().strip())
    filled = {name: sheet.dropna(how="all").dropna(axis=1, how="all") for name, sheet in sheets.items()}
    if chosen is not None:
        if chosen not in filled:
            raise DataError(f"{label}: no sheet {chosen!r} (data.sheet); its sheets: {', '.join(map(repr, sheets))}")
        if filled[chosen].empty:
            raise DataError(f"{label}: sheet {chosen!r} (data.sheet) holds no data")
        return _sheet_table(filled[chosen], label)
    filled = {name: sheet for name, sheet in filled.items() if not sheet.empty}
    if not filled:
        raise DataError(f"{label}: a workbook without data in any sheet")
    tables = {name: sheet for name, sheet in filled.items() if min(sheet.shape) >= 2} or filled
    name, sheet = next(iter(tables.items()))
    table = _sheet_table(sheet, label)
    alike = {name: table}
    for other, rows in list(tables.items())[1:]:
        try:
            more = _sheet_table(rows, label, said=False)
        except DataError:
            continue
        if list(more.columns) == list(table.columns):
            alike[other] = more
    unread = [other for other in filled if other not in alike]
    if len(alike) > 1:
        logger.warning(
            "%s: sheets %s read, the same columns in each: a symbol per sheet, by its name",
            label,
            ", ".join(map(repr, alike)),
        )
        for sheet_name, rows_read in alike.items():
            rows_read[STEM_COLUMN] = str(sheet_name)
        table = pd.concat(alike.values(), ignore_index=True)
    if unread:
        others = ", ".join(repr(other) for other in unread)
        logger.warning("%s: sheet %r read; its other sheets with data (%s) are not", label, name, others)
    return table


def _sheet_table(sheet: pd.DataFrame, label: str, said: bool = True) -> pd.DataFrame:
    """One sheet's table: its header the first row of two or more names (title rows above it skipped), or,
    when its first row is data, named as a headerless CSV is (``said``: with the warning)."""
    header = next(
        (i for i in sheet.index[: TITLE_LINES + 1] if sum(isinstance(v, str) for v in sheet.loc[i].dropna()) >= 2),
        None,
    )
    first = sheet.index[0]
    if header is None or (header != first and _no_header(",".join(map(str, sheet.loc[first].dropna())), ",")):
        rows = [["" if pd.isna(v) else str(v) for v in sheet.loc[i]] for i in sheet.index[:HEADERLESS_SAMPLE]]
        names = _headerless_names(rows, ".", label)  # raises when the sheet is not prices either
        if said:
            _say_headerless([label], tuple(names))
        table = sheet.set_axis(names, axis=1)
    else:
        names = [str(v).strip() if not pd.isna(v) else f"Unnamed: {k}" for k, v in enumerate(sheet.loc[header])]
        table = _without_empty_unnamed(sheet.loc[sheet.index > header].set_axis(names, axis=1))
    table[LINE_COLUMN] = table.index + 1  # the sheet's row number
    return table.reset_index(drop=True).infer_objects()


def _pairs(values: list[Any]) -> bool:
    return all(isinstance(v, list) and len(v) == 2 for v in values)


def _unnumbered(name: str) -> str:
    """``1. open`` -> ``open`` (Alpha Vantage numbers its fields)."""
    return re.sub(r"^\d+\.\s*", "", str(name))


def _keyed_by(frame: pd.DataFrame, keys: list[Any] | None) -> pd.DataFrame:
    """``frame`` with its row keys as a ``timestamp`` column when they are times (dates, or numbers since 1970
    as pandas writes a DatetimeIndex), dropped when they are row numbers."""
    frame = frame.reset_index(drop=True)
    if keys and all(HEADERLESS_TIME.fullmatch(str(k)) for k in keys) and TIME_INDEX not in frame.columns:
        frame.insert(0, TIME_INDEX, [str(k) for k in keys])
    return frame


NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
DELIMITERS = ",;\t|"

# A headerless file (exchange dumps: Binance's klines, Kraken's OHLCVT, HistData, MetaTrader 4's history) opens
# with data: every cell of its first line a number, a date or a clock time (digits and separators only).
DATA_CELL = re.compile(r"[-+]?[\d.,:/ +T-]*\d[\d.,:/ +T-]*Z?")
CLOCK = re.compile(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?")
# A headerless time: a date (digits with separators), a yyyymmdd day or numbers since 1970 (8 digits or more).
HEADERLESS_TIME = re.compile(r"\d+[-./: T]\d[\d.,:/ +T-]*Z?|\d{8,}")
HEADERLESS_SAMPLE = 200  # rows that decide a headerless file's columns
OHLC = ("open", "high", "low", "close")


def _no_header(line: str, sep: str) -> bool:
    """Whether a CSV's first line is data, not names: two cells or more, the first filled, none with a word."""
    cells = [cell.strip().strip('"') for cell in next(csv.reader([line], delimiter=sep), [])]
    return len(cells) > 1 and bool(cells[0]) and all(not c or DATA_CELL.fullmatch(c) for c in cells)


def _headerless_names(rows: list[list[str]], decimal: str, label: str) -> list[str]:
    """The names of a headerless file's columns, by what its first rows hold: a time (or a date, then a clock
    time), then open, high, low, close (high >= open, close >= low in the rows read: ``_ohlc``), then, if its values are
    numbers >= 0, a volume; any further column is ``column_<position>``, unused unless an option names it
    (``--target-col column_8``).

    Raises:
        DataError: the columns are not in that order, with what to do (add a header row).
    """
    width = len(rows[0])
    columns = list(zip(*(row for row in rows if len(row) == width), strict=True))

    def numbers(k: int) -> list[float] | None:
        if k >= width:
            return None
        try:
            return [float(v.strip().replace(decimal, ".")) if v.strip() else float("nan") for v in columns[k]]
        except ValueError:
            return None

    clock = width > 2 and all(CLOCK.fullmatch(v.strip()) for v in columns[1])
    names = ["date", "time"] if clock else ["time"]
    prices = [numbers(k) for k in range(len(names), len(names) + 4)]
    if all(HEADERLESS_TIME.fullmatch(v.strip()) for v in columns[0]) and _ohlc(prices):
        names += OHLC
        volume = numbers(len(names))
        if volume is not None and all(v >= 0 for v in volume if v == v):
            names.append("volume")
        return names + [f"column_{k + 1}" for k in range(len(names), width)]
    raise DataError(
        f"{label}: no header row (the first line holds data: {rows[0][:6]}) and its columns are not a time, then "
        "open, high, low, close (and volume) as exchanges save prices; add a header row naming them"
    )


def _say_headerless(labels: list[str], names: tuple[str, ...]) -> None:
    """The warning that headerless files' columns were named (``_headerless_names``): one for every file so
    named alike (a folder of monthly dumps), naming the first and the last."""
    used = [n for n in names if not n.startswith("column_")]
    unused = ""
    if len(names) > len(used):
        unused = f", {names[len(used)]}" + (f" to {names[-1]}" if len(names) > len(used) + 1 else "") + " not used"
    files = labels[0] if len(labels) == 1 else f"{len(labels)} files ({labels[0]} ... {labels[-1]})"
    logger.warning(
        "%s: no header row; %s read as %s (high >= open, close >= low in the first rows)%s; add a header row "
        "to name them otherwise",
        files,
        "its columns" if len(labels) == 1 else "their columns",
        ", ".join(used),
        unused,
    )


OHLC_SLIPS = 0.01  # the share of rows read that may break high >= open, close >= low (a bad print): quarantined


def _ohlc(prices: list[list[float] | None]) -> bool:
    """Whether four columns are open, high, low, close: numbers, and high >= open, close >= low in every row
    with all four (one such row at least) but ``OHLC_SLIPS`` of them (none in fewer than 100 rows)."""
    if any(p is None for p in prices):
        return False
    rows = [r for r in zip(*prices, strict=True) if all(v == v for v in r)]
    slips = sum(not (h >= max(o, c, lo) and lo <= min(o, c)) for o, h, lo, c in rows)
    return len(rows) > slips and slips <= int(OHLC_SLIPS * len(rows))


TITLE_LINES = 20  # at most this many lines of text above a header
QUOTED = re.compile(r'"[^"]*"')


def _delimited(line: str) -> bool:
    """Whether a line holds a delimiter outside quotes (a quoted sentence's commas are its own)."""
    return any(d in QUOTED.sub("", line) for d in DELIMITERS)


def _title_lines(lines: list[str]) -> int:
    """How many lines of text stand above a CSV's header (CryptoDataDownload's files open with the site's
    address, Macrotrends' with a title and a quoted disclaimer): up to 20 leading lines without a delimiter
    outside quotes, above a header of names (not numbers: a one-column file's values may hold decimal commas)
    and a first row, both delimited."""
    for skip in range(min(TITLE_LINES + 1, len(lines) - 1)):
        if _delimited(lines[skip]):
            names = re.split(f"[{DELIMITERS}]", lines[skip])
            delimited = _delimited(lines[skip + 1])
            return skip if delimited and not any(NUMBER.fullmatch(n.strip().strip('"')) for n in names) else 0
    return 0


def _two_column_levels(lines: list[str], sep: str) -> bool:
    """Whether a CSV is pandas' ``to_csv`` of a frame with two column levels and a named index, as yfinance's
    ``download(...)`` saves prices: a ``Price,Close,High,...`` row, a ``Ticker,AAPL,AAPL,...`` row, then a
    ``Date,,,`` row naming the index, then the data. The second row is names, not numbers, and the first cells of
    the second and third rows are words (not a time: a data row, the third perhaps one with every value missing)."""
    rows = list(csv.reader(lines[:3], delimiter=sep))
    if len(rows) < 3 or not len(rows[0]) == len(rows[1]) == len(rows[2]) > 1:
        return False
    first, second, names = ([cell.strip() for cell in row] for row in rows)
    return (
        bool(first[0])
        and all(row[0] and not re.search(r"\d", row[0]) for row in (second, names))
        and not any(names[1:])
        and all(cell and not NUMBER.fullmatch(cell) for cell in second[1:])
    )


# Numbers grouped by thousands, per decimal mark: 1.234,56 / 1.234 / 316,1 and 1,234.56 / 1,234 / 316.1.
GROUPED = {
    ",": re.compile(r"[-+]?\d{1,3}(\.\d{3})+(,\d+)?|[-+]?\d+(,\d+)?"),
    ".": re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?|[-+]?\d+(\.\d+)?"),
}


def _ungroup(frame: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """Text columns of numbers grouped by thousands as numbers: by points after ``decimal=","`` (``1.234,56``;
    not ``read_csv(thousands=".")``, which would read the date ``01.02.2015`` as the number 1022015), by commas
    with a decimal point (``"1,490.55"``, quoted in a CSV, as an English-locale spreadsheet exports them). Only a
    column whose every value is such a number, one at least grouped."""
    group = "." if decimal == "," else ","
    for column in frame.select_dtypes(include="object").columns:
        values = frame[column].dropna().astype(str).str.strip()
        if (
            len(values)
            and values.str.fullmatch(GROUPED[decimal]).all()
            and values.str.contains(group, regex=False).any()
        ):
            text = frame[column].astype("string").str.strip().str.replace(group, "", regex=False)
            frame[column] = pd.to_numeric(text.str.replace(decimal, ".", regex=False), errors="coerce")
    return frame


# Numbers written with a unit, as Investing.com exports them: volumes 19.73M / 850.2K / 1.2B, changes -2.48%.
SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "%": 0.01}


def _unsuffixed(frame: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """Text columns of numbers with a unit (``19.73M``, ``-2.48%``; ``19,73M`` after ``decimal=","``) as numbers
    (19730000.0, -0.0248): only a column whose every value is such a number, or ``-`` (the export's mark for a
    missing volume), of one unit."""
    suffixed = rf"([-+]?\d+(?:{re.escape(decimal)}\d+)?)([KMB%])"
    for column in frame.select_dtypes(include="object").columns:
        values = frame[column].dropna().astype(str).str.strip()
        values = values[values != "-"]
        if not len(values):
            continue
        if not values.str.fullmatch(suffixed).all():
            continue
        found = values.str.extract(suffixed)
        shares = found[1].eq("%")
        if shares.any() != shares.all():
            continue  # shares beside counts: not one quantity
        numbers = pd.to_numeric(found[0].str.replace(decimal, ".", regex=False), errors="coerce")
        frame[column] = (numbers * found[1].map(SCALE)).reindex(frame.index)
    return frame


# Prices written with their currency, as nasdaq.com's downloads write them ($181.18, -$1.20) or German ones
# (1.234,56 €).
CURRENCY = "$€£¥"
PRICED = re.compile(rf"[-+]?\s*[{CURRENCY}]\s*[^{CURRENCY}]+|[^{CURRENCY}]+?\s*[{CURRENCY}]")
SIGN = re.compile(rf"^([-+]?)\s*[{CURRENCY}]\s*|\s*[{CURRENCY}]$")


def _uncurrencied(frame: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """Text columns of numbers each written with the one currency sign of the column, before or after it
    (``$181.18``, ``1.234,56 €``; grouped as the file's decimal mark groups them), as numbers: only a column
    whose every value is such."""
    for column in frame.select_dtypes(include="object").columns:
        values = frame[column].dropna().astype(str).str.strip()
        if not len(values) or not values.str.fullmatch(PRICED).all():
            continue
        if values.str.extract(f"([{CURRENCY}])")[0].nunique() != 1:
            continue  # dollars beside euros: not one quantity
        text = values.str.replace(SIGN, r"\1", regex=True)
        if not text.str.fullmatch(GROUPED[decimal]).all():
            continue
        group = "." if decimal == "," else ","
        numbers = pd.to_numeric(
            text.str.replace(group, "", regex=False).str.replace(decimal, ".", regex=False), errors="coerce"
        )
        frame[column] = numbers.reindex(frame.index)
    return frame


def _csv_options(form: dict[str, str]) -> dict[str, Any]:
    """``read_csv``'s arguments for a sniffed file (``_sniff_format``); two header rows and the index's column
    for a file of two column levels (``_two_column_levels``)."""
    levels = {"header": [0, 1], "index_col": 0} if form.get("levels") == "2" else {}
    if "names" in form:
        levels = {"header": None, "names": form["names"].split(",")}
    codes = {int(k): str for k in form["codes"].split(",")} if "codes" in form else {}
    return {
        "sep": form["sep"],
        "decimal": form.get("decimal", "."),
        "dtype": codes or None,
        "compression": form.get("compression"),  # gzip, bz2 or xz by content (pandas would go by the name)
        "encoding": form.get("encoding", "utf-8"),
        "skiprows": int(form.get("skip", 0)),
        "na_values": ["."],  # FRED's mark for a missing value (a holiday), beside pandas' own (empty, NA, ...)
        **levels,
    }


def _first_data_line(form: dict[str, str]) -> int:
    """The 1-based line of a sniffed CSV's first row: after its title lines, two header rows and the index's name
    row for a file of two column levels, none for a headerless file, else one header row."""
    return int(form.get("skip", 0)) + (4 if "levels" in form else 1 if "names" in form else 2)


# A column level that names symbols (yfinance: Ticker; pandas-datareader: Symbols), or, unnamed, the level
# beside one of price fields.
SYMBOL_LEVELS = frozenset({"ticker", "tickers", "symbol", "symbols"})
FIELD_NAMES = frozenset({"open", "high", "low", "close", "adj close", "adj_close", "volume", "price"})


def _long_by_symbol(wide: pd.DataFrame, label: str, first_line: int) -> pd.DataFrame:
    """A frame with two column levels (a field and a symbol: yfinance's ``Close``/``AAPL``) as a long table: a
    row per time and symbol, a column per field. A symbol's rows without a value (the wide table's padding:
    before its listing, or on a day only another symbol traded) are dropped, and a symbol without any (a ticker
    yfinance could not download) with a warning; each row keeps the 1-based line it has in its file
    (``first_line``: its first row's).

    Raises:
        DataError: neither level names symbols.
    """
    names = [str(n or "").strip().lower() for n in wide.columns.names]
    level = next((i for i, n in enumerate(names) if n in SYMBOL_LEVELS), None)
    if level is None:
        fields = [
            i for i in (0, 1) if any(str(v).strip().lower() in FIELD_NAMES for v in wide.columns.get_level_values(i))
        ]
        if len(fields) != 1:
            raise DataError(
                f"{label}: two header rows ({', '.join(map(str, wide.columns.names))}) and neither names symbols "
                "(Ticker, Symbol); save it long, a row per time and symbol: df.stack(level=...).reset_index()"
            )
        level = 1 - fields[0]
    symbol = wide.columns.names[level] if names[level] in ("ticker", "symbol") else "symbol"
    time = wide.index.name or TIME_INDEX
    lines = pd.RangeIndex(first_line, first_line + len(wide), name=LINE_COLUMN)
    wide = wide.set_axis(pd.MultiIndex.from_arrays([wide.index, lines], names=[time, LINE_COLUMN]))
    long = wide.stack(level=level, future_stack=True).dropna(how="all")
    long.columns.name = None
    empty = sorted(set(wide.columns.get_level_values(level)) - set(long.index.get_level_values(2)))
    if len(wide) and empty:
        logger.warning("%s: no values for %s %s: left out", label, symbol, ", ".join(map(str, empty)))
    return long.rename_axis([time, LINE_COLUMN, symbol]).reset_index()


# ``read_csv``'s name for an empty first header cell: where ``DataFrame.to_csv`` writes an unnamed index.
CSV_INDEX = "Unnamed: 0"
INDEX_SAMPLE_ROWS = 20  # rows that decide whether that column holds times (``read_header`` reads as many)
TIME_INDEX = "timestamp"  # the column an unnamed time index becomes


def _times(values: pd.Series) -> bool:
    """Whether ``values`` (a sample) are all ISO 8601 times, as pandas writes a DatetimeIndex to CSV."""
    text = values.dropna()
    if text.empty or pd.api.types.is_numeric_dtype(text):
        return False
    return bool(pd.to_datetime(text.astype(str), errors="coerce", format="ISO8601").notna().all())


def time_columns(sample: pd.DataFrame) -> list[str]:
    """The columns of ``sample`` (a file's first rows) whose values are all ISO 8601 times, whatever their name
    (``week``, ``dt``, ``Zeit``): the time of a file whose time column has a name detection does not know."""
    return [str(c) for c in sample.columns if not str(c).startswith("__") and _times(sample[c])]


def _index_as_columns(frame: pd.DataFrame, sample: pd.DataFrame | None = None) -> pd.DataFrame:
    """The index pandas saved with a frame, as columns (``df.to_parquet()`` / ``df.to_csv()`` of a frame indexed
    by time, the usual way to save a series): a named index keeps its name, an unnamed time index becomes
    ``timestamp``, an unnamed index of row numbers is dropped. ``sample``: the rows that decide
    whether a CSV's empty-named first column holds times (default: the frame's first ``INDEX_SAMPLE_ROWS``).
    """
    if isinstance(frame.index, pd.MultiIndex) or frame.index.name is not None:
        taken = [n for n in frame.index.names if n is not None and n in frame.columns]
        return frame if taken else frame.reset_index()
    if not isinstance(frame.index, pd.RangeIndex):  # a restored unnamed Parquet index
        if isinstance(frame.index, pd.DatetimeIndex) and TIME_INDEX not in frame.columns:
            return frame.rename_axis(TIME_INDEX).reset_index()
        return frame.reset_index(drop=True)
    if len(frame.columns) and frame.columns[0] == CSV_INDEX:
        values = (frame if sample is None else sample)[CSV_INDEX].head(INDEX_SAMPLE_ROWS)
        if _times(values) and TIME_INDEX not in frame.columns:
            return frame.rename(columns={CSV_INDEX: TIME_INDEX})
        if pd.api.types.is_integer_dtype(values) and values.is_monotonic_increasing and values.is_unique:
            return frame.drop(columns=CSV_INDEX)  # row numbers, not data: never a feature of a label target
    return frame


def _without_empty_unnamed(frame: pd.DataFrame) -> pd.DataFrame:
    """Without the columns a trailing delimiter makes (``Date,USD,JPY,`` as the ECB writes its rates): no name
    (read_csv's ``Unnamed: N``) and no value."""
    empty = [c for c in frame.columns if str(c).startswith("Unnamed: ") and frame[c].isna().all()]
    return frame.drop(columns=empty) if empty else frame


def _repeated_header_rows(frame: pd.DataFrame) -> list[int]:
    """Positions of the rows that repeat the header, each cell its column's name (``cat a.csv b.csv``). Only
    possible when every column is text (the names are), so a file with any number column costs nothing."""
    names = list(frame.columns)
    if len(names) < 2 or not all(frame[c].dtype == object for c in names):
        return []
    first = frame[names[0]].astype("string").str.strip().eq(str(names[0]).strip()).fillna(False).to_numpy(bool)
    return [
        int(i)
        for i in np.flatnonzero(first)
        if all(str(frame.iat[int(i), k]).strip() == str(name).strip() for k, name in enumerate(names))
    ]


def _numbered(frame: pd.DataFrame, first_line: int) -> pd.DataFrame:
    frame[LINE_COLUMN] = range(first_line, first_line + len(frame))
    return frame


# What ``read_file`` tells about files, said once for many alike (a folder of monthly dumps): (kind, details...)
# -> the files' labels. Kinds: ``headerless`` (details: the names given), ``encoding`` (details: the encoding).
Notes = dict[tuple[str, ...], list[str]]


def _note(notes: Notes | None, key: tuple[str, ...], label: str) -> None:
    if notes is None:
        _say_notes({key: [label]})
    else:
        notes.setdefault(key, []).append(label)


def _say_notes(notes: Notes) -> None:
    for (kind, *details), labels in notes.items():
        if kind == "headerless":
            _say_headerless(labels, tuple(details))
        else:
            files = labels[0] if len(labels) == 1 else f"{len(labels)} files ({labels[0]} ... {labels[-1]})"
            logger.warning(
                "%s: not UTF-8; read as %s (what the bytes show); if names or text look wrong, set "
                "data.encoding (--set data.encoding=...) or save %s as UTF-8",
                files,
                details[0],
                "it" if len(labels) == 1 else "them",
            )


def read_file(
    file: Path, label: str | None = None, notes: Notes | None = None, options: ReadOptions = AS_SHOWN
) -> pd.DataFrame:
    """Read one CSV (optionally compressed, delimiter and encoding sniffed) or Parquet file, each row with the
    1-based line it has in the file (``LINE_COLUMN``; a Parquet file's rows count from 1); an index pandas saved
    with the rows becomes columns (``_index_as_columns``), two column levels a long table (``_long_by_symbol``).
    A headerless file's columns are named by what they hold and text not in UTF-8 is read in the encoding its
    bytes show (``_encoding``), each with a warning, or, given ``notes``, its label added there, for the caller
    to say once for many files (``_say_notes``). ``options``: the user's (an encoding is then not guessed).

    Raises:
        DataError: empty, not text, truncated or corrupted; the message names ``label`` (the file).
    """
    label = label or str(file)
    try:
        if is_parquet(file):
            stored = pd.read_parquet(file)
            if stored.columns.nlevels == 2:
                return _long_by_symbol(stored, label, first_line=1)
            return _numbered(_index_as_columns(stored), 1)
        form = _sniff_format(file, label, options)
        if "json" in form:
            return _numbered(_read_json(file, form, label), 1)
        if "excel" in form:
            return _read_workbook(file, label, form["excel"], options.sheet)
        if "arrow" in form:
            import pyarrow.feather

            return _numbered(_index_as_columns(pyarrow.feather.read_table(file).to_pandas()), 1)
        if options.encoding is None and form.get("encoding", "utf-16") != "utf-16":  # UTF-16: by its byte-order mark
            _note(notes, ("encoding", form["encoding"]), label)
        if "names" in form:
            _note(notes, ("headerless", *form["names"].split(",")), label)
        with _csv_input(file, form) as text:
            read = _without_empty_unnamed(pd.read_csv(text, **_csv_options(form), low_memory=False))
        first = _first_data_line(form)
        repeats = [] if "levels" in form or "names" in form else [first + i for i in _repeated_header_rows(read)]
        if repeats:
            # Read again without them, so each column's type is what its values make it (the repeated names
            # had made every column text); the kept rows keep their own lines.
            logger.warning(
                "%s: line%s %s repeat%s the header (files joined end to end?): skipped",
                label,
                "s" if len(repeats) > 1 else "",
                ", ".join(map(str, repeats[:5])) + (", ..." if len(repeats) > 5 else ""),
                "" if len(repeats) > 1 else "s",
            )
            skip = [*range(int(form.get("skip", 0))), *(line - 1 for line in repeats)]  # titles, repeats
            with _csv_input(file, form) as text:
                again = {**_csv_options(form), "skiprows": skip, "header": 0}
                read = _without_empty_unnamed(pd.read_csv(text, **again, low_memory=False))
        frame = _long_by_symbol(read, label, first) if "levels" in form else _numbered(_index_as_columns(read), first)
        if repeats:
            skipped = set(repeats)
            frame[LINE_COLUMN] = [n for n in range(first, first + len(frame) + len(repeats)) if n not in skipped]
        decimal = form.get("decimal", ".")
        return _unsuffixed(_ungroup(_uncurrencied(frame, decimal), decimal), decimal)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: file is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{label}: not {form.get('encoding', 'UTF-8')} text from byte {exc.start} ({exc.reason}), though its "
            "start is; save it as UTF-8"
        ) from None
    except (OSError, EOFError, lzma.LZMAError, ValueError, pd.errors.ParserError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{label}: cannot be read ({first_line}); is the file truncated or corrupted?") from None


def read_header(
    file: Path, label: str | None = None, options: ReadOptions = AS_SHOWN, rows: bool = False
) -> pd.DataFrame:
    """The columns of one CSV or Parquet file as ``read_file`` names them, without its rows (a Parquet file's
    types; a CSV's are not read); with ``rows``, its first ``INDEX_SAMPLE_ROWS`` rows too (a CSV's as text)."""
    label = label or str(file)
    try:
        if is_parquet(file):
            import pyarrow.parquet as pq

            if rows:
                first = next(pq.ParquetFile(file).iter_batches(batch_size=INDEX_SAMPLE_ROWS), None)
                empty = pq.read_schema(file).empty_table().to_pandas() if first is None else first.to_pandas()
            else:
                empty = pq.read_schema(file).empty_table().to_pandas()
            if empty.columns.nlevels == 2:
                return _long_by_symbol(empty.iloc[0:0], label, first_line=1).drop(columns=LINE_COLUMN)
            header: pd.DataFrame = _index_as_columns(empty)
            return header
        # A few rows: whether an empty-named first column holds times decides its name, as in ``read_file``.
        form = _sniff_format(file, label, options)
        if "json" in form or "excel" in form or "arrow" in form:
            return pd.DataFrame()  # its table is found by reading all of it: the run's reader does
        with _csv_input(file, form) as text:
            sample = _without_empty_unnamed(pd.read_csv(text, **_csv_options(form), nrows=INDEX_SAMPLE_ROWS))
        if "levels" in form:
            return _long_by_symbol(sample.iloc[0:0], label, _first_data_line(form)).drop(columns=LINE_COLUMN)
        columns: pd.DataFrame = _index_as_columns(sample if rows else sample.iloc[0:0], sample=sample)
        return columns
    except DataError:
        raise  # what is wrong is known already: said before the run starts
    except (OSError, ValueError, pd.errors.ParserError):  # pyarrow's ArrowInvalid is a ValueError
        return pd.DataFrame()  # no header to judge: the run's reader says what is wrong


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- sources ----------------------------------------------------------------------------------------------------------


def nearest_path(missing: str) -> str:
    """'; did you mean …?' naming the entry of the missing path's folder closest to its name, or ''."""
    import difflib

    path = Path(missing).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    try:
        names = [entry.name for entry in folder.iterdir()] if folder.is_dir() else []
    except OSError:
        return ""
    near = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    if not near:
        return ""
    shown = str(folder / near[0]) + ("/" if (folder / near[0]).is_dir() else "")
    return f"; did you mean {shown.removeprefix('./')}?"


_KINDS = ".csv, .tsv (optionally compressed or zipped), .parquet, workbook or Feather"


def _other_files(folder: str, found: list[Path]) -> str:
    """What a folder without data files holds instead, and the glob that reads the most common kind."""
    kinds = Counter(p.suffix.lower() for p in found if p.suffix)
    if not kinds:
        return ""
    suffix, count = kinds.most_common(1)[0]
    files = f"{count} {suffix} file{'s' if count > 1 else ''}"
    return f" (it holds {files}: to read them, pass a glob: '{folder.rstrip('/')}/**/*{suffix}')"


class LocalSource:
    """A file, a folder (searched recursively, Hive partitions welcome) or a glob such as ``data/*.csv``."""

    def __init__(self, location: str | Path) -> None:
        text = str(Path(location).expanduser()) if not isinstance(location, str) else os.path.expanduser(location)
        self.uri = text
        self.pattern: str | None = None
        if _GLOB_CHARS.search(text):
            parts = Path(text).parts
            fixed = next(i for i, p in enumerate(parts) if _GLOB_CHARS.search(p))
            self.root = Path(*parts[:fixed]) if fixed else Path(".")
            self.pattern = "/".join(parts[fixed:])
        else:
            self.root = Path(text)
        self.single_object = self.pattern is None and self.root.is_file()

    def _files(self) -> list[Path]:
        if self.single_object:
            return [self.root]
        if self.pattern is not None:
            # A pattern that names a suffix (Kaggle's Stocks/*.txt) reads every file it matches, as named.
            named = PurePosixPath(self.pattern).suffix.lower()
            wanted = (lambda n: n.lower().endswith(named)) if named and not _GLOB_CHARS.search(named) else is_data_file
            files = sorted(p for p in self.root.glob(self.pattern) if p.is_file() and wanted(p.name))
            if not files:
                raise DataError(f"{self.uri}: the pattern matches no {_KINDS} files")
            return files
        if self.root.is_dir():
            found = [p for p in self.root.rglob("*") if p.is_file()]
            files = sorted(p for p in found if is_data_file(p.name))
            if not files:
                raise DataError(f"{self.uri}: folder holds no {_KINDS} files{_other_files(self.uri, found)}")
            return files
        raise DataError(f"{self.uri}: no such file or folder{nearest_path(self.uri)}")

    def list_objects(self) -> list[SourceObject]:
        objects = []
        for file in self._files():
            stat = file.stat()
            key = file.name if self.single_object else file.relative_to(self.root).as_posix()
            objects.append(SourceObject(key=key, fingerprint=f"{stat.st_size}:{stat.st_mtime_ns}"))
        return objects

    def fetch(self, obj: SourceObject, workdir: Path) -> Path:
        return self.root if self.single_object else self.root / obj.key


class S3Source:
    """``s3://bucket/prefix/`` (every data object under it) or ``s3://bucket/key.csv`` through boto3.

    The endpoint comes from ``endpoint_url``, else ``DRIFTLINE_S3_ENDPOINT_URL``, else boto3's own
    ``AWS_ENDPOINT_URL``/config; credentials from the environment or ``profile`` (boto3's chain).
    Connection errors are retried by botocore (``max_attempts``), then raised as ``SourceUnavailable``.
    """

    def __init__(
        self, uri: str, endpoint_url: str | None = None, profile: str | None = None, max_attempts: int = 4
    ) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise DataError(f"{uri}: not an s3://bucket/prefix URI")
        self.uri = uri
        self.bucket = parsed.netloc
        self.prefix = parsed.path.lstrip("/")
        self.endpoint_url = endpoint_url or os.environ.get("DRIFTLINE_S3_ENDPOINT_URL") or None
        self.profile = profile
        self.max_attempts = max_attempts
        self.single_object = False
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(profile_name=self.profile) if self.profile else boto3.session.Session()
            config = Config(
                retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            )
            self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        return self._client

    def _explain(self, exc: Exception, action: str) -> DataError:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            NoCredentialsError,
            ProfileNotFound,
            ReadTimeoutError,
        )

        where = f"{self.uri}"
        if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
            endpoint = self.endpoint_url or "the default AWS endpoint"
            return SourceUnavailable(
                f"{where}: cannot reach the S3 endpoint {endpoint} after {self.max_attempts} attempts while "
                f"{action} ({type(exc).__name__}); check that it is up and that DRIFTLINE_S3_ENDPOINT_URL or "
                "data.s3_endpoint_url points to it"
            )
        if isinstance(exc, NoCredentialsError):
            return DataError(
                f"{where}: no S3 credentials found while {action}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "or AWS_PROFILE (or data.s3_profile)"
            )
        if isinstance(exc, ProfileNotFound):
            return DataError(f"{where}: {exc}; set data.s3_profile or AWS_PROFILE to a profile that exists")
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}:
                return DataError(
                    f"{where}: access denied ({code}) while {action}; the credentials in use need "
                    f"s3:ListBucket on {self.bucket} and s3:GetObject on its objects"
                )
            if code in {"NoSuchBucket"}:
                return DataError(f"{where}: bucket {self.bucket!r} does not exist")
            if code in {"NoSuchKey", "404"}:
                return DataError(f"{where}: no such key while {action}")
            if status is not None and int(status) >= 500:
                return SourceUnavailable(f"{where}: S3 answered {status} ({code}) while {action}; try again later")
            return DataError(f"{where}: S3 error {code or status} while {action}: {exc}")
        return SourceUnavailable(f"{where}: {type(exc).__name__} while {action}: {exc}")

    def list_objects(self) -> list[SourceObject]:
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            found = [
                item
                for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)
                for item in page.get("Contents", [])
            ]
        except Exception as exc:  # noqa: BLE001 - every botocore failure is explained by _explain
            raise self._explain(exc, "listing objects") from None
        exact = [item for item in found if item["Key"] == self.prefix]
        inside = any(item["Key"].startswith(self.prefix.rstrip("/") + "/") for item in found)
        if exact and (is_data_file(self.prefix) or not inside):  # a key named in full: any kind (prices.json)
            self.single_object = True
            item = exact[0]
            return [SourceObject(key=PurePosixPath(item["Key"]).name, fingerprint=f"{item['ETag']}:{item['Size']}")]
        folder = self.prefix if not self.prefix or self.prefix.endswith("/") else self.prefix + "/"
        objects = [
            SourceObject(key=item["Key"][len(folder) :], fingerprint=f"{item['ETag']}:{item['Size']}")
            for item in found
            if item["Key"].startswith(folder) and is_data_file(item["Key"])
        ]
        if not objects:
            what = "no such key" if is_data_file(self.prefix) else f"no {_KINDS} objects under it"
            others = [item["Key"][len(folder) :] for item in found if item["Key"].startswith(folder)]
            if others and not is_data_file(self.prefix):
                what += f" ({len(others)} other object(s), e.g. {', '.join(others[:3])})"
            raise DataError(f"{self.uri}: {what}{self._beside()}")
        return sorted(objects, key=lambda o: o.key)

    def _beside(self) -> str:
        """What the folder above a prefix that held no data does hold (a mistyped prefix or key), or ''."""
        parent = self.prefix.rstrip("/").rpartition("/")[0]
        parent = parent + "/" if parent else ""
        try:
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=parent, Delimiter="/", MaxKeys=20)
        except Exception:  # noqa: BLE001 - only a hint; the error above stands on its own
            return ""
        names = [p["Prefix"][len(parent) :] for p in page.get("CommonPrefixes", [])]
        names += [item["Key"][len(parent) :] for item in page.get("Contents", [])]
        if not names:
            return ""
        shown = ", ".join(names[:8]) + (" …" if len(names) > 8 or page.get("IsTruncated") else "")
        return f"; s3://{self.bucket}/{parent} holds {shown}"

    def _object_key(self, obj: SourceObject) -> str:
        if self.single_object:
            return self.prefix
        folder = self.prefix if not self.prefix or self.prefix.endswith("/") else self.prefix + "/"
        return folder + obj.key

    def fetch(self, obj: SourceObject, workdir: Path) -> Path:
        target = workdir / PurePosixPath(obj.key).name
        try:
            self.client.download_file(self.bucket, self._object_key(obj), str(target))
        except Exception as exc:  # noqa: BLE001 - explained below
            raise self._explain(exc, f"downloading {obj.key}") from None
        return target


def open_source(location: str, endpoint_url: str | None = None, profile: str | None = None) -> Source:
    """The source behind a path, a glob or an ``s3://`` URI."""
    if location.startswith("s3://"):
        return S3Source(location, endpoint_url=endpoint_url, profile=profile)
    return LocalSource(location)


# --- staging ----------------------------------------------------------------------------------------------------------


def _source_id(uri: str, options: ReadOptions = AS_SHOWN) -> str:
    """The stage folder's name for a source; read with other options (``ReadOptions``), another stage."""
    slug = re.sub(r"[^0-9a-zA-Z]+", "-", uri).strip("-")[-40:] or "source"
    read_as = f"{uri}\0{options.key()}" if options.key() else uri
    return f"{slug}-{hashlib.sha256(read_as.encode()).hexdigest()[:12]}"


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        logger.warning("%s: unreadable manifest, re-reading every object", path)
        return {}
    if manifest.get("stage_version") != STAGE_VERSION:
        return {}
    return manifest


def private_dir(path: Path) -> Path:
    """``mkdir -p`` where every folder it creates is 0700 (and ``path`` itself is made 0700): staged copies,
    quarantined rows and run outputs hold the input's content, which may be anyone's to read only."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Make a just-written file 0600 (before it is renamed into place)."""
    os.chmod(path, 0o600)
    return path


def _write_atomic(path: Path, text: str) -> None:
    private_dir(path.parent)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def _stage_object(
    file: Path, key: str, label: str, stem_symbol: bool, target: Path, notes: Notes, options: ReadOptions
) -> int:
    """Read one object, add its partition (and file-name symbol) columns, write it as Parquet."""
    frame = read_file(file, label, notes, options)
    frame.columns = [str(c) for c in frame.columns]
    for name, value in partition_values(key).items():
        if name not in frame.columns:
            frame[name] = value
    if stem_symbol and STEM_COLUMN not in frame.columns:  # a workbook's sheets name their own symbols
        frame[STEM_COLUMN] = file_stem(key)
    private_dir(target.parent)
    partial = target.with_suffix(".tmp")
    try:
        frame.to_parquet(partial, index=False)
    except (ValueError, TypeError) as exc:  # e.g. a column that mixes numbers and text in a Parquet input
        mixed = [c for c in frame.columns if frame[c].dtype == object]
        frame[mixed] = frame[mixed].astype("string")
        logger.info("%s: stored columns %s as text (%s)", label, mixed, exc)
        frame.to_parquet(partial, index=False)
    os.replace(private_file(partial), target)
    return len(frame)


def stage_source(
    source: Source, stage_root: Path, incremental: bool = True, options: ReadOptions = AS_SHOWN
) -> StagedSource:
    """Bring every object of ``source`` into the stage, reading only new or changed ones.

    Args:
        source: where the objects are.
        stage_root: folder for staged files and manifests (``<DRIFTLINE_HOME>/ingest``).
        incremental: when false, read every object again (the manifest is still rewritten).
        options: the user's choices of how to read the files (``ReadOptions``).

    Raises:
        DataError: an object cannot be read (the message names it), or the source has none.
        SourceUnavailable: the source cannot be reached (transient; worth retrying).
    """
    objects = source.list_objects()
    home = stage_root / _source_id(source.uri, options)
    manifest_path = home / "manifest.json"
    previous = _read_manifest(manifest_path).get("objects", {}) if incremental else {}
    stem_symbol = not source.single_object
    entries: dict[str, dict[str, Any]] = {}
    new: list[str] = []
    changed: list[str] = []
    notes: Notes = {}
    with tempfile.TemporaryDirectory(prefix="driftline-fetch-") as workdir:
        for obj in objects:
            known = previous.get(obj.key)
            staged = home / "objects" / known["staged"] if known else None
            if known and known["fingerprint"] == obj.fingerprint and staged is not None and staged.exists():
                entries[obj.key] = known
                continue
            label = source.uri if source.single_object else f"{source.uri.rstrip('/')}/{obj.key}"
            local = source.fetch(obj, Path(workdir))
            digest = sha256_file(local)
            name = (
                hashlib.sha256(f"{STAGE_VERSION}\0{obj.key}\0{digest}\0{stem_symbol}".encode()).hexdigest() + ".parquet"
            )
            target = home / "objects" / name
            rows = known["rows"] if known and known["staged"] == name and target.exists() else None
            if rows is None:
                rows = _stage_object(local, obj.key, label, stem_symbol, target, notes, options)
            if local.parent == Path(workdir):
                local.unlink(missing_ok=True)
            entries[obj.key] = {"fingerprint": obj.fingerprint, "sha256": digest, "rows": rows, "staged": name}
            (changed if known else new).append(obj.key)
    _say_notes(notes)
    removed = tuple(sorted(set(previous) - set(entries)))
    manifest = {"stage_version": STAGE_VERSION, "uri": source.uri, "objects": entries}
    _write_atomic(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    content = _content_hash(entries, source.single_object)
    keys = tuple(sorted(entries))
    stats = IngestStats(
        objects=len(keys),
        new=tuple(new),
        changed=tuple(changed),
        unchanged=len(keys) - len(new) - len(changed),
        removed=removed,
    )
    if stats.read:
        logger.info(
            "%s: read %d new/changed object(s), %d unchanged from the stage",
            source.uri,
            len(stats.read),
            stats.unchanged,
        )
    return StagedSource(
        uri=source.uri,
        content_hash=content,
        keys=keys,
        files=tuple(home / "objects" / entries[k]["staged"] for k in keys),
        stats=stats,
        single_object=source.single_object,
        manifest_path=manifest_path,
    )


def _content_hash(entries: dict[str, dict[str, Any]], single_object: bool) -> str:
    content = hashlib.sha256()
    for key in sorted(entries):
        # A single file hashes as its bytes alone, so renaming it keeps the hash; in a folder the key counts.
        content.update(f"{'' if single_object else key}\0{entries[key]['sha256']}\n".encode())
    return content.hexdigest()


def unchanged_stage(
    source: Source, stage_root: Path, options: ReadOptions = AS_SHOWN
) -> tuple[str, IngestStats] | None:
    """The content hash ``stage_source`` would give and its stats, when nothing in ``source`` is new, changed
    or removed since the last staging; None otherwise. Reads no object and writes nothing, so a later
    ``stage_source`` still sees (and reports) whatever is new."""
    home = stage_root / _source_id(source.uri, options)
    previous = _read_manifest(home / "manifest.json").get("objects", {})
    objects = source.list_objects()
    if not previous or {obj.key for obj in objects} != set(previous):
        return None
    for obj in objects:
        known = previous[obj.key]
        if known.get("fingerprint") != obj.fingerprint or not (home / "objects" / known["staged"]).exists():
            return None
    return _content_hash(previous, source.single_object), IngestStats(objects=len(objects), unchanged=len(objects))


_TEXT_COLUMNS_TOLD: set[tuple[str, str]] = set()


def staged_sample(staged: StagedSource, columns: list[str]) -> pd.DataFrame:
    """The first ``INDEX_SAMPLE_ROWS`` rows of ``columns`` in the first staged file that has rows."""
    import pyarrow.parquet as pq

    for file in staged.files:
        parquet = pq.ParquetFile(file)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        batch = next(parquet.iter_batches(batch_size=INDEX_SAMPLE_ROWS, columns=present), None)
        if batch is not None and batch.num_rows:
            sample: pd.DataFrame = batch.to_pandas()
            return sample
    return pd.DataFrame(columns=columns)


def staged_schema(staged: StagedSource) -> Any:
    """The unified Arrow schema of every staged file (numbers widen, e.g. int64 + double -> double).

    A column whose types cannot be unified (dates as text in a CSV beside real timestamps in a Parquet file) is
    read as text from every file, with a warning naming the files and types; the run then parses it as it
    parses any text column.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(f) for f in staged.files]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    fields: dict[str, Any] = {}
    for schema in schemas:
        for schema_field in schema:
            if schema_field.name not in fields:
                fields[schema_field.name] = schema_field
                continue
            try:
                fields[schema_field.name] = pa.unify_schemas(
                    [pa.schema([fields[schema_field.name]]), pa.schema([schema_field])], promote_options="permissive"
                ).field(0)
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                fields[schema_field.name] = pa.field(schema_field.name, pa.string())
    for name, unified in fields.items():
        if unified.type == pa.string():
            kinds = {
                key: str(schema.field(name).type)
                for key, schema in zip(staged.keys, schemas, strict=True)
                if name in schema.names and schema.field(name).type not in (pa.string(), pa.large_string())
            }
            shown = ", ".join(f"{key}: {kind}" for key, kind in list(kinds.items())[:3])
            if kinds and (name, shown) not in _TEXT_COLUMNS_TOLD:  # once per process, not per read
                _TEXT_COLUMNS_TOLD.add((name, shown))
                logger.warning("column %r is text in some files and not in others (%s): read as text", name, shown)
    return pa.schema(list(fields.values()))


def read_staged(staged: StagedSource, columns: list[str] | None = None, schema: Any = None) -> pd.DataFrame:
    """Scan the staged files with ``pyarrow.dataset``, projecting ``columns`` (all when None).

    The frame gains ``__source_object`` (the object key) and ``__source_line`` (the row's 1-based line in
    that file: a CSV's header is line 1). ``schema``: ``staged_schema(staged)`` when the caller has it already
    (it reads every staged file's footer).
    """
    import pyarrow.dataset as ds

    schema = staged_schema(staged) if schema is None else schema
    wanted = [c for c in (columns or schema.names) if c in schema.names and c != OBJECT_COLUMN]
    if LINE_COLUMN not in wanted:
        wanted.append(LINE_COLUMN)
    dataset = ds.dataset([str(f) for f in staged.files], schema=schema, format="parquet")
    table = dataset.to_table(columns=[*wanted, "__filename"])
    # Column by column, freeing Arrow buffers as they convert: no second copy of the whole table.
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    by_file = {str(f): key for f, key in zip(staged.files, staged.keys, strict=True)}
    with warnings.catch_warnings():
        # A block per column is what split_blocks asked for; with a hundred columns pandas calls the frame "highly
        # fragmented" at this insert (a warning in every wide training run), which a copy would only cure at
        # the cost of the whole table again.
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        frame[OBJECT_COLUMN] = frame.pop("__filename").map(by_file)
    # Object order, then line order: the raw frame reads like the source, whatever the scan order was.
    order = {key: i for i, key in enumerate(staged.keys)}
    frame = frame.sort_values(
        [OBJECT_COLUMN, LINE_COLUMN], key=lambda s: s.map(order) if s.name == OBJECT_COLUMN else s
    )
    ordered: pd.DataFrame = frame.reset_index(drop=True)
    return ordered


def manifest_summary(staged: StagedSource) -> dict[str, Any]:
    return {"uri": staged.uri, "content_hash": staged.content_hash, **staged.stats.as_dict()}


__all__ = [
    "IngestStats",
    "LocalSource",
    "ReadOptions",
    "S3Source",
    "SourceObject",
    "StagedSource",
    "manifest_summary",
    "open_source",
    "read_file",
    "read_staged",
    "stage_source",
]


def preflight(location: str) -> None:
    """The checks a local source can pass or fail in milliseconds, made before any server starts or any
    flow runs: it exists, holds data files, and none of them is empty, unreadable or (CSV) not UTF-8 text.

    The reader makes the same checks with the same messages; this only makes them early. ``s3://``
    sources are checked by the flow (listing them needs the network and credentials).

    Raises:
        DataError: naming the file and the problem.
    """
    if location.startswith("s3://"):
        return
    for file in LocalSource(location)._files():
        try:
            size = file.stat().st_size
            readable = os.access(file, os.R_OK)
        except OSError as exc:
            raise DataError(f"{file}: cannot be read ({exc.strerror})") from None
        if size == 0:
            raise DataError(f"{file}: file is empty")
        if not readable:
            raise DataError(f"{file}: cannot be read (permission denied)")
        if not is_parquet(file):
            _sniff_format(file, str(file))
