"""An out-of-core feature store: features computed one symbol at a time into Parquet, read back in time order.

The whole panel is never in memory. ``build_feature_store`` reads a canonical Parquet dataset (columns
``symbol``, ``timestamp`` and the price or label columns, as ``driftline.ingest`` leaves them) one symbol at a
time with ``pyarrow.dataset``, runs the data contract on that symbol's rows (the same ``validate_frame`` and
quarantine accounting as the in-memory path, the quarantine fraction judged over all symbols at the end),
computes ``feature_table`` (every feature only looks back within a symbol, so one symbol's rows are all it
needs) and writes the rows as float32 Parquet under ``symbol=<name>/``, row groups in time order.

``FeatureStore`` reads it back as ``build_features`` would have built it in memory: the same columns (all
missing or constant ones dropped, calendar encodings kept only over two full cycles), the same rows (every
kept feature and the target present), in the same order (timestamp, then symbol), batch by batch over a
range of timestamps. Only the timestamps and labels of all rows (16 bytes a row) are held in memory.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from driftline.config import ContractConfig, FeatureConfig, TargetConfig
from driftline.contracts import (
    SOURCE_ROW,
    QuarantineTally,
    enforce_contract,
    set_short_symbol_aside,
    short_symbols_text,
    source_rows_named,
    too_few_rows,
    validate_frame,
)
from driftline.errors import DataError, InsufficientDataError
from driftline.features import (
    CALENDAR_MIN_SPAN,
    KNOWN_LABEL,
    LEVEL_COLUMN,
    META_COLUMNS,
    Where,
    check_target_classes,
    feature_table,
)
from driftline.ingest import locate_rows
from driftline.sources import LINE_COLUMN, OBJECT_COLUMN

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.json"  # a leading underscore: pyarrow.dataset skips it
ROW_GROUP_ROWS = 65_536  # small enough that a timestamp filter skips most of a symbol's file
META_EXTRA = ("next_return", KNOWN_LABEL)


@dataclass
class _ColumnStats:
    present: int = 0
    low: float = np.inf
    high: float = -np.inf

    def add(self, values: np.ndarray) -> None:
        present = values[~np.isnan(values)]
        if len(present):
            self.present += len(present)
            self.low = min(self.low, float(present.min()))
            self.high = max(self.high, float(present.max()))

    @property
    def constant(self) -> bool:
        return self.present > 0 and self.low == self.high


@dataclass(frozen=True)
class StoreBuild:
    """What building the store saw: rows in, clean and quarantined (as ``ValidationReport``), per symbol too."""

    store: FeatureStore
    rows_in: int
    rows_clean: int
    rows_quarantined: int
    symbols: dict[str, int] = field(default_factory=dict)  # clean rows per symbol
    quarantine_path: str | None = None


def _partition(symbol: str) -> str:
    """The folder of a symbol's rows: ``symbol=<name>``, the name URI-encoded as pyarrow's hive partitioning
    reads it back ("BTC/USDT" is ``symbol=BTC%2FUSDT``, not two folders)."""
    from urllib.parse import quote

    return f"symbol={quote(symbol, safe='')}"


def _distinct(dataset, column: str, at_most: int | None = None) -> set[str]:
    """Distinct values of ``column``, one column batch at a time (never the whole column); the scan stops once
    ``at_most`` are found."""
    import pyarrow.compute as pc

    found: set[str] = set()
    for batch in dataset.to_batches(columns=[column]):
        found.update(str(s) for s in pc.unique(batch.column(0)).to_pylist())
        if at_most is not None and len(found) >= at_most:
            break
    return found


def _symbols(dataset) -> list[str]:
    return sorted(_distinct(dataset, "symbol"))


def _several_files(dataset) -> bool:
    """Whether the staged rows came from several files (False when they do not say)."""
    return OBJECT_COLUMN in dataset.schema.names and len(_distinct(dataset, OBJECT_COLUMN, at_most=2)) > 1


def build_feature_store(
    source: str | Path,
    out: str | Path,
    contract: ContractConfig,
    features: FeatureConfig,
    target: TargetConfig,
    *,
    suite_name: str = "driftline",
    quarantine_dir: str | Path | None = None,
    validate: bool = True,
    label: str | None = None,
) -> StoreBuild:
    """Features of every symbol of the canonical Parquet dataset ``source``, one symbol in memory at a time.

    Args:
        source: a Parquet file or directory (hive partitions allowed) with canonical columns.
        out: the store's directory (replaced).
        contract: the data contract, checked per symbol; quarantined rows go to ``quarantine_dir``.
        validate: False skips the contract (data already validated upstream).
        label: what messages call the data (the user's source, when ``source`` is a copy of it); ``source``
            when None.

    Raises:
        DataError: ``source`` has no ``symbol``/``timestamp`` column, or no feature can be built.
        ValidationFailed: a ``fail`` check failed on a symbol, or more than ``max_quarantine_fraction`` of all
            rows were quarantined.
        InsufficientDataError: a symbol keeps fewer than ``min_rows_per_symbol`` rows.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    dataset = ds.dataset(str(source), format="parquet", partitioning="hive")
    shown = label or str(source)  # what messages call the data
    missing = [c for c in META_COLUMNS if c not in dataset.schema.names]
    if missing:
        raise DataError(f"{shown}: the feature store needs canonical columns; missing {missing}")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    per_symbol = contract.model_copy(update={"max_quarantine_fraction": 1.0})  # judged over all symbols below
    rows_in = rows_quarantined = 0
    tally = QuarantineTally()  # the validated symbols' quarantine, judged over all of them at the end
    clean_rows: dict[str, int] = {}
    left_out: dict[str, int] = {}  # short symbols set aside (short_symbols: quarantine) -> their clean rows
    stats: dict[str, _ColumnStats] = {}
    names: tuple[str, ...] | None = None
    first = last = None
    quarantine_path = None
    import pyarrow.compute as pc

    several = validate and _several_files(dataset)  # a row is named by its file then, as in memory
    for symbol in _symbols(dataset):
        frame = dataset.to_table(filter=pc.field("symbol") == symbol).to_pandas()
        frame["symbol"] = frame["symbol"].astype(str)
        frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
        # The file and line of each row (pipeline.write_canonical), for messages and the quarantine.
        lines = frame[list(LINES)] if set(LINES) <= set(frame.columns) else None
        frame = frame.drop(columns=list(LINES), errors="ignore")
        rows_in += len(frame)
        where = f"{shown} (symbol {symbol})"
        if validate:
            report = validate_frame(frame, contract, suite_name, source=where, locate=_locate(lines, several))
            clean_before = report.rows_clean
            report = set_short_symbol_aside(report, contract)
            rows_quarantined += report.rows_quarantined
            tally.add(report, str(symbol))
            if report.rows_quarantined and quarantine_dir is not None:
                target_dir = Path(quarantine_dir) / _partition(symbol)
                target_dir.mkdir(parents=True, exist_ok=True)
                quarantined = report.quarantined if lines is None else report.quarantined.join(lines, on=SOURCE_ROW)
                quarantined.astype({c: str for c in quarantined.columns if c != "timestamp"}).to_parquet(
                    target_dir / "rows.parquet"
                )
                quarantine_path = str(quarantine_dir)
            if contract.short_symbols == "quarantine" and report.rows_clean == 0:
                left_out[symbol] = clean_before
                continue  # its rows are in the quarantine, with the reason
            frame = enforce_contract(report, per_symbol, where)
        clean_rows[symbol] = len(frame)
        table, symbol_names = feature_table(frame, features, target, Where(where))
        if names is None:
            names = symbol_names
        elif symbol_names != names:
            raise DataError(
                f"{where}: feature columns {list(symbol_names)} differ from the other symbols' {list(names)}"
            )
        columns = {}
        for name in (*names, *(c for c in META_EXTRA if c in table), "y"):
            values = table[name].to_numpy(dtype="float64")
            if name in names:
                stats.setdefault(name, _ColumnStats()).add(values)
            # float32 halves the store; NaN becomes a null so a scan can filter on presence.
            columns[name] = pa.array(values.astype("float32"), from_pandas=True)
        columns["timestamp"] = pa.array(table["timestamp"].to_numpy())
        part = pa.table(columns)
        first = table["timestamp"].iloc[0] if first is None else min(first, table["timestamp"].iloc[0])
        last = table["timestamp"].iloc[-1] if last is None else max(last, table["timestamp"].iloc[-1])
        (out / _partition(symbol)).mkdir()
        # No dictionary pages: features are continuous floats, where Parquet's dictionary only costs decoding and
        # space (the same synthetic store, 40 symbols x 100k rows x 50 random float32 features, written both ways:
        # 1,171 -> 795 MB on disk, a full scan in 500k-row batches 3.8-4.7 -> 3.5-3.8 s, 3 passes; 2026-12-04).
        pq.write_table(
            part, out / _partition(symbol) / "part-0.parquet", row_group_size=ROW_GROUP_ROWS, use_dictionary=False
        )
        del frame, table, part
    if left_out:
        counts = pd.Series({**left_out, **clean_rows}).sort_index()
        short = counts[counts < contract.min_rows_per_symbol]
        if not clean_rows:
            raise too_few_rows(shown, short, counts, contract)
        logger.warning("%s: symbols left out, too few clean rows: %s", shown, short_symbols_text(short, counts))
    if names is None or first is None or last is None:
        raise DataError(f"{shown}: no rows")
    failed = tally.failure(shown, contract)
    if failed is not None:
        raise failed
    span = pd.Timestamp(last) - pd.Timestamp(first)
    calendar = {f"{p}{part}" for p, minimum in CALENDAR_MIN_SPAN.items() if span < minimum for part in ("sin", "cos")}
    empty = [n for n in names if stats[n].present == 0]
    constant = [n for n in names if stats[n].constant]
    if empty or constant:
        logger.warning("%s: dropped feature columns that carry no information: %s", shown, empty + constant)
    # The streamed path's models shrink toward their window's share: no series level (LEVEL_COLUMN) in the store.
    usable = [n for n in names if n not in calendar and n not in empty and n not in constant and n != LEVEL_COLUMN]
    manifest = {"features": usable, "meta": [c for c in META_EXTRA if c in columns], "symbols": clean_rows}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    store = FeatureStore(out)
    check_target_classes(pd.Series(store.labels), target, Where(shown))
    return StoreBuild(store, rows_in, rows_in - rows_quarantined, rows_quarantined, clean_rows, quarantine_path)


LINES = (OBJECT_COLUMN, LINE_COLUMN)


def _locate(lines: pd.DataFrame | None, several: bool) -> Callable[[list[int]], list[str]]:
    """The ``Locate`` of one symbol's rows: the file and line each came from, as the in-memory path says them
    (the file too when the source has ``several``; the source row numbers when the staged rows do not carry
    them)."""
    if lines is None:
        return source_rows_named
    return lambda rows: locate_rows(lines, rows, several)


@dataclass(frozen=True)
class Batch:
    """Rows of the store in time order: float32 features, labels and the meta columns."""

    X: np.ndarray
    y: np.ndarray
    meta: pd.DataFrame


class FeatureStore:
    """A feature store written by ``build_feature_store`` (or any Parquet dataset with its layout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            manifest = json.loads((self.path / MANIFEST).read_text())
        except FileNotFoundError:
            raise DataError(f"{self.path}: not a feature store (no {MANIFEST})") from None
        self.feature_names: tuple[str, ...] = tuple(manifest["features"])
        self.meta_columns: tuple[str, ...] = tuple(manifest.get("meta", []))
        self.symbols: dict[str, int] = manifest.get("symbols", {})

    @cached_property
    def _dataset(self):
        import pyarrow as pa
        import pyarrow.dataset as ds

        # Symbols stay strings ("0001" is not the integer 1).
        partitioning = ds.partitioning(pa.schema([("symbol", pa.string())]), flavor="hive")
        return ds.dataset(str(self.path), format="parquet", partitioning=partitioning)

    def _usable(self):
        import pyarrow.compute as pc

        expression = pc.field("y").is_valid()
        for name in self.feature_names:
            expression = expression & pc.field(name).is_valid()
        return expression

    @cached_property
    def _index(self) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, labels) of every usable row in (timestamp, symbol) order, sorted in Arrow (compact
        strings: no Python object per row)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        batches = list(self._dataset.to_batches(columns=["timestamp", "y", "symbol"], filter=self._usable()))
        index = pa.Table.from_batches(batches) if batches else None
        if index is None or index.num_rows == 0:
            raise InsufficientDataError(f"{self.path}: no row has all features and a target")
        index = index.take(pc.sort_indices(index, sort_keys=[("timestamp", "ascending"), ("symbol", "ascending")]))
        times = index.column("timestamp").to_numpy()
        return times, index.column("y").to_numpy().astype(np.int8)

    @property
    def times(self) -> np.ndarray:
        return self._index[0]

    @property
    def labels(self) -> np.ndarray:
        return self._index[1]

    @property
    def n_rows(self) -> int:
        return len(self.times)

    def batch_bounds(self, start: int, stop: int, batch_rows: int = 500_000) -> list[tuple[int, int]]:
        """Rows ``start:stop`` (positions in time order) cut into ranges of about ``batch_rows`` rows that
        never split a timestamp's rows."""
        times = self.times
        bounds, position = [], start
        while position < stop:
            end = min(stop, position + batch_rows)
            if end < stop:  # extend to the end of the timestamp at end - 1
                end = min(stop, int(np.searchsorted(times, times[end - 1], side="right")))
            bounds.append((position, end))
            position = end
        return bounds

    def _table(self, start: int, stop: int):
        """Rows ``start:stop`` as an Arrow table in (timestamp, symbol) order, read with a timestamp filter."""
        import pyarrow.compute as pc

        times = self.times
        lo, hi = times[start], times[stop - 1]
        table = self._dataset.to_table(
            columns=[*self.feature_names, "y", "timestamp", "symbol", *self.meta_columns],
            filter=self._usable() & (pc.field("timestamp") >= lo) & (pc.field("timestamp") <= hi),
        )
        # Sorted and cut in Arrow: no pandas copy of the batch.
        order = pc.sort_indices(table, sort_keys=[("timestamp", "ascending"), ("symbol", "ascending")])
        # The filter reads whole timestamps; a range that cuts one is trimmed by position.
        first = int(np.searchsorted(times, lo, side="left"))
        return table.take(order.slice(start - first, stop - start))

    def _features(self, table) -> np.ndarray:
        """The table's feature columns straight into one row-major float32 array."""
        X = np.empty((table.num_rows, len(self.feature_names)), dtype=np.float32)
        for i, name in enumerate(self.feature_names):
            X[:, i] = table.column(name).to_numpy()
        return X

    def _meta(self, table):
        return table.select(["symbol", "timestamp", *self.meta_columns])

    def read(self, start: int = 0, stop: int | None = None) -> Batch:
        """Rows ``start:stop`` (positions in time order), in (timestamp, symbol) order."""
        table = self._table(start, self.n_rows if stop is None else stop)
        return Batch(self._features(table), table.column("y").to_numpy().astype(int), _meta_frame(self._meta(table)))

    def batches(self, start: int, stop: int, batch_rows: int = 500_000) -> Iterator[Batch]:
        """Rows ``start:stop`` batch by batch (``batch_bounds``)."""
        for a, b in self.batch_bounds(start, stop, batch_rows):
            yield self.read(a, b)

    @contextmanager
    def spilled(self, stop: int | None = None, batch_rows: int = 500_000) -> Iterator[FeatureStore]:
        """Rows ``0:stop`` copied once into a scratch folder beside the store, for a run that reads them many
        times (``SpilledStore``); the folder is removed on exit."""
        with tempfile.TemporaryDirectory(prefix=".driftline-spill-", dir=self.path.parent) as folder:
            yield SpilledStore(self, Path(folder), self.n_rows if stop is None else stop, batch_rows)


def _meta_frame(meta) -> pd.DataFrame:
    frame = meta.to_pandas()
    frame["symbol"] = frame["symbol"].astype(str)
    return frame


class SpilledStore(FeatureStore):
    """A store's rows ``0:stop`` decoded once, in time order, for a run that reads them many times.

    The walk-forward reads its windows about a dozen times (XGBoost's and LightGBM's passes, predictions).
    A Parquet read decodes every row group that overlaps the batch, once per batch: with many symbols each
    batch holds a few thousand rows of each, so each 64k-row group is decoded many times over (one pass over
    10M rows of 100 symbols took 29.5 s in 500k-row batches, against 0.9 s for 1M rows of 10 symbols). Here
    the rows are read once, in batches of ``4 * batch_rows``, and written as they come: the features as one
    row-major float32 ``.npy`` file, the symbol, timestamp and meta columns as an Arrow IPC file. A read is
    then one contiguous slice of each (``np.fromfile`` at an offset, no memory map, so nothing of the file
    counts in the process's memory); the values are those ``FeatureStore.read`` returns.
    """

    def __init__(self, source: FeatureStore, folder: Path, stop: int, batch_rows: int = 500_000):
        import pyarrow as pa

        self.path = source.path
        self.feature_names, self.meta_columns, self.symbols = source.feature_names, source.meta_columns, source.symbols
        times, labels = source.times[:stop], source.labels[:stop]
        self.__dict__["_index"] = (times, labels)  # the cached_property, set: the source's index, cut at stop
        self.__dict__["_dataset"] = source._dataset
        self._features_path, meta_path = folder / "features.npy", folder / "meta.arrow"
        width = len(self.feature_names)
        writer = None
        with open(self._features_path, "wb") as out:
            np.lib.format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False, "shape": (stop, width)})
            self._offset = out.tell()
            for a, b in source.batch_bounds(0, stop, 4 * batch_rows):
                table = source._table(a, b)
                source._features(table).tofile(out)
                meta = source._meta(table)
                writer = writer or pa.ipc.new_file(str(meta_path), meta.schema)
                writer.write_table(meta)
                del table, meta
        if writer is not None:
            writer.close()
        self._meta_table = pa.ipc.open_file(pa.memory_map(str(meta_path))).read_all()

    def read(self, start: int = 0, stop: int | None = None) -> Batch:
        stop = self.n_rows if stop is None else stop
        if not 0 <= start < stop <= self.n_rows:
            raise ValueError(f"rows {start}:{stop} are outside the {self.n_rows} rows spilled from {self.path}")
        width = len(self.feature_names)
        X = np.fromfile(
            self._features_path, dtype=np.float32, count=(stop - start) * width, offset=self._offset + start * width * 4
        ).reshape(stop - start, width)
        return Batch(X, self.labels[start:stop].astype(int), _meta_frame(self._meta_table.slice(start, stop - start)))
