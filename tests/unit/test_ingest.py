"""Reading files into the canonical frame: column detection, formats, hashing, timestamps, bad input."""

from __future__ import annotations

import gzip
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.config import ContractConfig, DataConfig
from driftline.errors import DataError
from driftline.ingest import (
    demo_data_path,
    detect_columns,
    epoch_unit,
    hash_files,
    load_data,
    normalise_name,
    parse_timestamps,
    read_source,
)
from driftline.sources import LINE_COLUMN, ReadOptions, _headerless_names, _zero_padded, read_file
from driftline.synthetic import make_labelled_series, make_ohlcv_panel

VENDOR_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


@pytest.fixture
def vendor_frame() -> pd.DataFrame:
    """One symbol, 12 days, columns named the way a vendor CSV names them (with Adj Close)."""
    raw = make_ohlcv_panel(n_symbols=1, n_days=12, seed=5).drop(columns="Symbol")
    raw["Adj Close"] = (raw["Close"] * 0.5).round(4)
    return raw[VENDOR_COLUMNS]


def _detect(raw: pd.DataFrame, need_target: bool = False, **data):
    return detect_columns(raw, DataConfig(**data), "src.csv", need_target)


# --- column detection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title, lambda s: s, lambda s: f"  {s.swapcase()} "])
def test_detects_vendor_columns_in_any_case(vendor_frame, case):
    raw = vendor_frame.rename(columns=case)
    columns = _detect(raw)
    original = dict(zip(VENDOR_COLUMNS, raw.columns, strict=True))
    assert columns.time == original["Date"]
    assert columns.symbol is None
    assert columns.prices == {
        "open": original["Open"],
        "high": original["High"],
        "low": original["Low"],
        "close": original["Close"],
        "adj_close": original["Adj Close"],
        "volume": original["Volume"],
    }


def test_symbol_column_is_detected():
    raw = pd.DataFrame({"TICKER": ["A", "B"], "timestamp": ["2020-01-01", "2020-01-01"], "close": [1.0, 2.0]})
    assert _detect(raw).symbol == "TICKER"


def test_price_column_counts_as_close():
    raw = pd.DataFrame({"timestamp": ["2020-01-01", "2020-01-02"], "Price": [1.0, 2.0], "Volume": [5, 6]})
    columns = _detect(raw)
    assert columns.prices == {"close": "Price", "volume": "Volume"}


def test_lone_numeric_column_counts_as_close():
    raw = pd.DataFrame({"day": ["2020-01-01", "2020-01-02"], "mid": [1.0, 2.0], "note": ["a", "b"]})
    columns = _detect(raw)
    assert columns.time == "day"
    assert columns.prices == {"close": "mid"}


def test_two_unknown_numeric_columns_are_not_guessed():
    raw = pd.DataFrame({"date": ["2020-01-01", "2020-01-02"], "bid": [1.0, 2.0], "ask": [1.1, 2.1]})
    with pytest.raises(DataError, match="no price column") as info:
        _detect(raw)
    assert "'bid'" in str(info.value) and "'ask'" in str(info.value)


def test_explicit_columns_override_detection():
    raw = pd.DataFrame(
        {
            "Date": ["2020-01-01", "2020-01-02"],
            "when": ["2021-01-01", "2021-01-02"],
            "Symbol": ["A", "A"],
            "book": ["X", "X"],
            "Close": [1.0, 2.0],
            "mid": [3.0, 4.0],
            "lbl": [0, 1],
        }
    )
    columns = _detect(raw, time_col="when", symbol_col="book", price_col="mid", target_col="lbl")
    assert columns.time == "when"
    assert columns.symbol == "book"
    assert columns.prices["close"] == "mid"
    assert columns.target == "lbl"


def test_explicit_names_match_after_normalisation():
    raw = pd.DataFrame({"Trade Time": ["2020-01-01"], "Last Px": [1.0], "other": [2.0]})
    columns = _detect(raw, time_col="trade_time", price_col=" LAST-PX ")
    assert columns.time == "Trade Time"
    assert columns.prices["close"] == "Last Px"


@pytest.mark.parametrize("role", ["time", "price", "symbol", "target"])
def test_missing_explicit_column_is_named(role):
    raw = pd.DataFrame({"date": ["2020-01-01"], "close": [1.0]})
    with pytest.raises(DataError) as info:
        _detect(raw, **{f"{role}_col": "nope"})
    message = str(info.value)
    assert f"{role} column 'nope' not found" in message
    assert "src.csv" in message and "'date'" in message
    # Scoring a label model needs its label column too (its past labels are features): the error says so.
    assert ("rows to score need the column too, empty where a label is not known yet" in message) == (role == "target")


def test_columns_that_normalise_alike_are_rejected():
    raw = pd.DataFrame({"date": ["2020-01-01"], "Close": [1.0], "close ": [2.0]})
    with pytest.raises(DataError, match="normalise to 'close'") as info:
        _detect(raw)
    assert "'Close'" in str(info.value) and "'close '" in str(info.value)


def test_no_time_column():
    raw = pd.DataFrame({"when_traded": ["2020-01-01"], "close": [1.0]})
    with pytest.raises(DataError, match="no time column") as info:
        _detect(raw)
    assert "when_traded" in str(info.value)


def test_datetime_typed_column_is_the_time_column_when_no_name_matches():
    raw = pd.DataFrame({"when_traded": pd.to_datetime(["2020-01-01", "2020-01-02"]), "close": [1.0, 2.0]})
    assert _detect(raw).time == "when_traded"


def test_a_year_column_is_the_time_of_yearly_panels(tmp_path):
    # statsmodels' Grunfeld panel: firm, year, value; a date column still wins over a year.
    raw = pd.DataFrame({"firm": ["GM", "GM"], "year": [1935, 1936], "value": [3078.5, 4661.7]})
    assert _detect(raw, price_col="value").time == "year"
    assert _detect(raw.assign(date=["1935-12-31", "1936-12-31"]), price_col="value").time == "date"
    path = tmp_path / "grunfeld.csv"
    raw.to_csv(path, index=False)
    frame = load_data(DataConfig(path=str(path), price_col="value", symbol_col="firm")).frame
    assert frame["timestamp"].tolist() == [pd.Timestamp("1935-01-01"), pd.Timestamp("1936-01-01")]


def test_label_mode_needs_target_and_keeps_numeric_extras():
    raw = pd.DataFrame({"ts": ["2020-01-01"], "f1": [1.0], "f2": [2.0], "text": ["a"], "y": [1]})
    with pytest.raises(DataError, match="target"):
        _detect(raw, need_target=True)
    columns = _detect(raw, need_target=True, target_col="y")
    assert columns.target == "y"
    assert columns.extra == ("f1", "f2")
    assert columns.prices == {}


def test_a_label_series_without_a_close_reads_price_named_columns_as_features():
    # "high" here is a 0/1 feature (a glucose reading above 140), not a price whose zeros break its checks.
    raw = pd.DataFrame({"ts": ["2020-01-01"], "high": [0.0], "volume": [3.0], "y": [1]})
    columns = _detect(raw, need_target=True, target_col="y")
    assert columns.prices == {} and columns.extra == ("high", "volume")
    # With a close they are the bar's prices, as in price mode.
    priced = _detect(raw.assign(close=[1.0]), need_target=True, target_col="y")
    assert priced.prices == {"high": "high", "close": "close", "volume": "volume"} and priced.extra == ()


def test_a_label_series_says_which_columns_it_does_not_use(tmp_path):
    # Text of many values is not a feature: a user's comment or id column would otherwise vanish without a word.
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=4, freq="h"),
            "load": [1.0, 2.0, 3.0, 4.0],
            "busy": [True, False, True, False],
            "shift": ["am", "am", "pm", "pm"],  # a few values: a category (tests/unit/test_categories.py)
            "note": ["a", "b", "c", "d"],
            "y": [0, 1, 0, 1],
        }
    ).to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("driftline.ingest.CATEGORY_LIMIT", 3)  # four rows: 'note' has more values than 3
        loaded = load_data(DataConfig(path=str(path), target_col="y"), need_target=True)
        assert loaded.columns.extra == ("load", "busy") and loaded.columns.categories == ("shift",)
        (warning,) = loaded.warnings
        assert warning.startswith(f"{path}: not used: 'note' (text, 4 values);") and "numeric columns" in warning
        # Every column used (the text is the label here): nothing to say. A price series' other columns are not
        # features (its features come from the prices), nor warned about.
        pd.read_csv(path).drop(columns="note").to_csv(path, index=False)
        as_label = DataConfig(path=str(path), target_col="shift", positive_label="pm")  # classes named by the user
        assert load_data(as_label, need_target=True).warnings == ()
    assert load_data(DataConfig(path=str(path), price_col="load")).warnings == ()


# --- reading files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [";", "\t", "|", ","])
def test_delimiters_are_sniffed(tmp_path, vendor_frame, sep):
    path = tmp_path / "prices.csv"
    vendor_frame.to_csv(path, sep=sep, index=False)
    loaded = load_data(DataConfig(path=str(path)))
    assert list(loaded.frame.columns) == ["symbol", "timestamp", "open", "high", "low", "close", "adj_close", "volume"]
    np.testing.assert_allclose(loaded.frame["close"].to_numpy(), vendor_frame["Close"].to_numpy())
    assert loaded.files == ("prices.csv",)


@pytest.mark.parametrize("sep, thousands", [(";", ""), ("\t", ""), (";", ".")])
def test_decimal_commas_of_european_spreadsheets_are_numbers(tmp_path, vendor_frame, sep, thousands):
    # A spreadsheet saved in a German or French locale: "29.03.1958;316,1", or "1.234,56" with grouping.
    path = tmp_path / "prices.csv"
    frame = vendor_frame.assign(Close=vendor_frame["Close"] * (1000 if thousands else 1))
    frame.assign(Date=pd.to_datetime(frame["Date"]).dt.strftime("%d.%m.%Y")).to_csv(
        path, sep=sep, decimal=",", index=False, float_format="%.4f"
    )
    if thousands:  # group the close's thousands, as a spreadsheet shows them
        text = path.read_text().splitlines()
        close = text[0].split(sep).index("Close")
        rows = [line.split(sep) for line in text[1:]]
        for row in rows:
            whole, fraction = row[close].split(",")
            row[close] = f"{int(whole):,}".replace(",", ".") + "," + fraction
        path.write_text("\n".join([text[0], *(sep.join(row) for row in rows)]) + "\n")
        assert "." in rows[0][close] and "," in rows[0][close]
    loaded = load_data(DataConfig(path=str(path)))
    np.testing.assert_allclose(loaded.frame["close"].to_numpy(), frame["Close"].to_numpy(), rtol=1e-6)
    assert loaded.frame["timestamp"].tolist() == pd.to_datetime(frame["Date"]).tolist()  # day first, from 13.01.


def test_numbers_grouped_by_commas_of_english_spreadsheets_are_numbers(tmp_path, vendor_frame):
    """An English-locale export quotes grouped numbers in a comma-separated file ("1,490.55", "1,541,950"): they
    are numbers (before: every close 'not a number', the volume dropped as empty). Text with commas stays text."""
    path = tmp_path / "prices.csv"
    frame = vendor_frame.assign(**{c: vendor_frame[c] * 1000 for c in ("Open", "High", "Low", "Close", "Adj Close")})
    shown = frame.assign(
        Close=frame["Close"].map(lambda v: f"{v:,.2f}"),
        Volume=frame["Volume"].map(lambda v: f"{v:,.0f}"),
        Note="a,b",
    )
    shown.to_csv(path, index=False)
    assert '"' in path.read_text().splitlines()[1]  # quoted, as a spreadsheet writes them
    loaded = load_data(DataConfig(path=str(path)), stage_root=tmp_path / "stage")
    np.testing.assert_allclose(loaded.frame["close"].to_numpy(), frame["Close"].round(2).to_numpy())
    np.testing.assert_allclose(loaded.frame["volume"].to_numpy(), frame["Volume"].round(0).to_numpy())
    from driftline.sources import read_file

    assert (read_file(path)["Note"] == "a,b").all()


def test_a_decimal_point_anywhere_keeps_commas_as_text(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("date;close;note\n2024-01-01;1.5;a,b\n2024-01-02;2,5;x\n")
    frame = load_data(DataConfig(path=str(path))).frame
    assert frame["close"].iloc[0] == 1.5 and np.isnan(frame["close"].iloc[1])  # "2,5" is not read as 2.5


def test_folder_of_per_symbol_files_takes_symbol_from_file_name(tmp_path, vendor_frame):
    folder = tmp_path / "panel"
    folder.mkdir()
    vendor_frame.to_csv(folder / "AAPL.csv", index=False)
    with gzip.open(folder / "MSFT.csv.gz", "wt") as handle:
        vendor_frame.assign(Close=vendor_frame["Close"] * 2).to_csv(handle, index=False)
    (folder / "notes.txt").write_text("not data")
    loaded = load_data(DataConfig(path=str(folder)))
    frame = loaded.frame
    assert sorted(frame["symbol"].unique()) == ["AAPL", "MSFT"]
    assert len(frame) == 2 * len(vendor_frame)
    assert len(loaded.files) == 2
    msft = frame[frame["symbol"] == "MSFT"]
    np.testing.assert_allclose(msft["close"].to_numpy(), vendor_frame["Close"].to_numpy() * 2)
    assert list(frame.columns[:2]) == ["symbol", "timestamp"]
    assert (frame.groupby("symbol")["timestamp"].diff().dropna() > pd.Timedelta(0)).all()


def test_without_rows_keeps_the_lineage_and_lets_the_frames_go(tmp_path, vendor_frame):
    import gc
    import weakref

    folder = tmp_path / "panel"
    folder.mkdir()
    vendor_frame.to_csv(folder / "AAPL.csv", index=False)
    loaded = load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "stage")
    light = loaded.without_rows()
    assert (light.source, light.content_hash, light.files, light.columns, light.stats, light.warnings) == (
        loaded.source, loaded.content_hash, loaded.files, loaded.columns, loaded.stats, loaded.warnings,
    )  # fmt: skip
    assert list(light.frame.columns) == list(loaded.frame.columns) and len(light.frame) == len(light.raw) == 0
    assert light.staged is None and loaded.staged is not None
    # Nothing in the light copy holds on to the rows: once the full one goes, its frames are freed.
    frame = weakref.ref(loaded.frame)
    del loaded
    gc.collect()
    assert frame() is None


def test_folder_symbol_keeps_dots_in_the_ticker(tmp_path, vendor_frame):
    """BRK.A.csv and BRK.B.csv are two instruments; the symbol is the name without the data suffix."""
    folder = tmp_path / "panel"
    folder.mkdir()
    vendor_frame.to_csv(folder / "BRK.A.csv", index=False)
    vendor_frame.to_csv(folder / "BRK.B.csv", index=False)
    loaded = load_data(DataConfig(path=str(folder)))
    assert sorted(loaded.frame["symbol"].unique()) == ["BRK.A", "BRK.B"]


def test_folder_files_with_a_symbol_column_keep_it(tmp_path):
    folder = tmp_path / "panel"
    folder.mkdir()
    raw = make_ohlcv_panel(n_symbols=2, n_days=5, seed=1)
    for symbol, part in raw.groupby("Symbol"):
        part.to_csv(folder / f"part-{symbol}.csv", index=False)
    frame = load_data(DataConfig(path=str(folder))).frame
    assert sorted(frame["symbol"].unique()) == ["SYM0", "SYM1"]


def test_folder_without_data_files(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match=r"no \.csv"):
        load_data(DataConfig(path=str(tmp_path)))


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="no such file") as info:
        load_data(DataConfig(path=str(tmp_path / "ghost.csv")))
    assert "ghost.csv" in str(info.value)


def test_parquet_file(tmp_path):
    raw = make_ohlcv_panel(n_symbols=2, n_days=6, seed=2)
    raw["Date"] = pd.to_datetime(raw["Date"])
    path = tmp_path / "panel.parquet"
    raw.to_parquet(path)
    loaded = load_data(DataConfig(path=str(path)))
    frame = loaded.frame
    assert loaded.columns.time == "Date" and loaded.columns.symbol == "Symbol"
    assert frame["timestamp"].dtype == "datetime64[ns]"
    assert len(frame) == len(raw)
    assert frame["close"].sum() == pytest.approx(raw["Close"].sum())


def _saved_with_index(tmp_path, form: str, index_name: str | None) -> tuple[str, pd.Series]:
    """A close series indexed by time, saved the way pandas saves it by default (index included)."""
    times = pd.date_range("2021-01-01", periods=300, freq="D", name=index_name)
    close = pd.Series(100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, len(times)))), index=times)
    frame = close.rename("co2").to_frame()
    path = tmp_path / f"series.{form}"
    frame.to_csv(path) if form == "csv" else frame.to_parquet(path)
    return str(path), close


@pytest.mark.parametrize("form", ["csv", "parquet"])
@pytest.mark.parametrize("index_name", [None, "date"])
def test_a_series_saved_with_its_time_index_is_read_by_that_index(tmp_path, form, index_name):
    """``df.to_csv(path)`` / ``df.to_parquet(path)`` of a time-indexed frame: the index is the time column (an
    unnamed one as ``timestamp``), in the early header check as in the run. Before, both stopped with "no time
    column found" and no ``--time-col`` could name an unnamed index."""
    from driftline.ingest import check_columns

    path, close = _saved_with_index(tmp_path, form, index_name)
    config = DataConfig(path=path)
    check_columns(config, need_target=False)  # no DataError
    loaded = load_data(config, stage_root=tmp_path / "stage")
    assert loaded.columns.time == (index_name or "timestamp") and loaded.columns.prices["close"] == "co2"
    assert loaded.frame["timestamp"].tolist() == close.index.tolist()
    assert loaded.frame["close"].to_numpy() == pytest.approx(close.to_numpy())


def test_row_numbers_saved_as_an_index_are_not_a_time_column_nor_a_feature(tmp_path):
    """An unnamed index of row numbers (``to_csv`` after a filter, a restored Parquet index) is not taken for
    times: the file still needs a time column of its own. With one, the row numbers are not a feature of a label
    target (they would be a trend the model could learn)."""
    frame = pd.DataFrame({"close": np.linspace(1.0, 2.0, 50)}, index=range(10, 60))
    frame.to_csv(tmp_path / "rows.csv")
    frame.to_parquet(tmp_path / "rows.parquet")
    for name in ("rows.csv", "rows.parquet"):
        with pytest.raises(DataError, match="no time column found"):
            load_data(DataConfig(path=str(tmp_path / name)), stage_root=tmp_path / "stage")
    labelled = make_labelled_series(n_rows=60, seed=1).iloc[5:]  # filtered: the index starts at 5
    labelled.to_csv(tmp_path / "labelled.csv")
    loaded = load_data(DataConfig(path=str(tmp_path / "labelled.csv"), target_col="y"), need_target=True)
    assert loaded.columns.extra == ("x0", "x1", "x2", "x3"), loaded.columns.extra


def _yfinance_download(group_by: str, tickers: tuple[str, ...]) -> pd.DataFrame:
    """Prices as ``yfinance.download(tickers, group_by=...)`` returns them (since 0.2.51, for one ticker too): a
    column per (Price, Ticker) or (Ticker, Price), indexed by ``Date``; a later-listed ticker's first rows empty."""
    panel = make_ohlcv_panel(n_symbols=len(tickers), n_days=120, seed=5)
    panel["Symbol"] = panel["Symbol"].map(dict(zip(sorted(panel["Symbol"].unique()), tickers, strict=True)))
    panel["Date"] = pd.to_datetime(panel["Date"])
    wide = panel.set_index(["Date", "Symbol"])[["Close", "High", "Low", "Open", "Volume"]].unstack("Symbol")
    wide.columns = wide.columns.set_names(["Price", "Ticker"])
    if len(tickers) > 1:
        wide.loc[wide.index[:7], pd.IndexSlice[:, tickers[1]]] = np.nan  # listed a week later
    return wide.swaplevel(axis=1).sort_index(axis=1) if group_by == "ticker" else wide


@pytest.mark.parametrize("form", ["csv", "parquet"])
@pytest.mark.parametrize("group_by", ["column", "ticker"])
@pytest.mark.parametrize("tickers", [("AAPL",), ("AAPL", "MSFT")])
def test_a_yfinance_download_saved_by_pandas_is_read_as_a_row_per_time_and_ticker(tmp_path, form, group_by, tickers):
    """``yf.download(...).to_csv(path)`` writes three header rows (``Price,Close,...``, ``Ticker,AAPL,...``,
    ``Date,,,``), ``to_parquet`` two column levels: read as a long table, the ticker the symbol, a ticker's
    empty rows before its listing dropped, each row's file line kept. Before, both stopped ("no time column
    found"; for Parquet, "no price column found" among columns named like ``('Close', 'AAPL')``)."""
    from driftline.config import ContractConfig
    from driftline.ingest import check_columns
    from driftline.pipeline import validate_loaded

    wide = _yfinance_download(group_by, tickers)
    wide.iloc[9, list(wide.columns).index(("Close", "AAPL") if group_by == "column" else ("AAPL", "Close"))] = -5.0
    path = tmp_path / f"prices.{form}"
    wide.to_csv(path) if form == "csv" else wide.to_parquet(path)
    config = DataConfig(path=str(path))
    check_columns(config, need_target=False)  # no DataError
    loaded = load_data(config, stage_root=tmp_path / "stage")
    assert loaded.columns.time == "Date" and loaded.columns.symbol == "Ticker"
    assert loaded.columns.prices["close"] == "Close" and loaded.columns.prices["volume"] == "Volume"
    frame = loaded.frame
    assert frame.groupby("symbol").size().to_dict() == {t: 120 - 7 * i for i, t in enumerate(tickers)}
    first = {t: g["timestamp"].min() for t, g in frame.groupby("symbol")}
    assert first == {t: wide.index[7 * i] for i, t in enumerate(tickers)}
    aapl = frame[frame["symbol"] == "AAPL"].set_index("timestamp")["close"]
    expected = wide[("Close", "AAPL") if group_by == "column" else ("AAPL", "Close")]
    assert aapl.drop(wide.index[9]).to_numpy() == pytest.approx(expected.drop(wide.index[9]).to_numpy())
    report = validate_loaded(loaded, ContractConfig(min_rows_per_symbol=50), "t")
    where = "line 13" if form == "csv" else "row 10"  # three header lines before the CSV's data
    assert any(f"e.g. -5.0 ({where})" in c.message for c in report.checks), [c.message for c in report.checks]


def test_a_ticker_yfinance_could_not_download_is_left_out_with_a_warning(tmp_path, caplog):
    """yfinance writes a failed ticker's columns empty: it has no rows, and the warning names it."""
    wide = _yfinance_download("column", ("AAPL", "MSFT"))
    wide.loc[:, pd.IndexSlice[:, "MSFT"]] = np.nan
    wide.to_csv(tmp_path / "prices.csv")
    with caplog.at_level("WARNING", logger="driftline.sources"):
        loaded = load_data(DataConfig(path=str(tmp_path / "prices.csv")), stage_root=tmp_path / "stage")
    assert loaded.frame["symbol"].unique().tolist() == ["AAPL"]
    told = [r.getMessage() for r in caplog.records if "no values" in r.getMessage()]
    assert told == [f"{tmp_path / 'prices.csv'}: no values for Ticker MSFT: left out"], told


@pytest.mark.parametrize("names", [("Attributes", "Symbols"), ("field", None)])
def test_column_levels_named_otherwise_are_read_by_the_level_that_names_symbols_or_beside_price_fields(tmp_path, names):
    """pandas-datareader's levels (Attributes, Symbols), or a symbol level with no name beside one of price
    fields (Close, High, ...): the symbols become a ``symbol`` column."""
    wide = _yfinance_download("column", ("AAPL", "MSFT"))
    wide.columns = wide.columns.set_names(list(names))
    wide.to_parquet(tmp_path / "prices.parquet")
    loaded = load_data(DataConfig(path=str(tmp_path / "prices.parquet")), stage_root=tmp_path / "stage")
    assert loaded.columns.symbol == "symbol" and loaded.columns.prices["close"] == "Close"
    assert loaded.frame.groupby("symbol").size().to_dict() == {"AAPL": 120, "MSFT": 113}


def test_a_file_of_two_column_levels_neither_naming_symbols_says_how_to_make_it_long(tmp_path):
    """Two header rows with no Ticker/Symbol level and no price field names in either: no guess, the error names
    the levels and the pandas call that makes the table long."""
    wide = _yfinance_download("column", ("AAPL", "MSFT"))
    wide.columns = pd.MultiIndex.from_tuples([(f"m{i % 5}", f"s{i // 5}") for i in range(10)], names=["a", "b"])
    wide.to_csv(tmp_path / "levels.csv")
    with pytest.raises(DataError, match=r"levels\.csv: two header rows \(a, b\) and neither names symbols"):
        load_data(DataConfig(path=str(tmp_path / "levels.csv")), stage_root=tmp_path / "stage")
    from driftline.ingest import check_columns

    with pytest.raises(DataError, match="neither names symbols"):  # in the header check, before any server starts
        check_columns(DataConfig(path=str(tmp_path / "levels.csv")), need_target=False)


def test_a_csv_whose_second_data_row_is_all_missing_is_not_taken_for_column_levels(tmp_path):
    """The third line of a plain CSV can be a row with only its time (every value missing), after a row of words
    (a regime, a text label): data rows, not the index-name row of a file with two column levels."""
    from driftline.sources import read_file

    text = "Date,regime,label\n2021-01-04,calm,up\n2021-01-05,,\n2021-01-06,calm,down\n"
    (tmp_path / "plain.csv").write_text(text)
    frame = read_file(tmp_path / "plain.csv")
    assert list(frame.columns) == ["Date", "regime", "label", "__source_line"] and len(frame) == 3
    assert frame["label"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("header", "sep", "decimal", "time"),
    [
        ('"Datum";"Zuletzt";"Eröffn.";"Hoch";"Tief";"Vol.";"+/- %"', ";", ",", "Datum"),  # Investing.com, German
        ('"Date";"Dernier";"Ouv.";" Plus Haut";"Plus Bas";"Vol.";"Variation %"', ";", ",", "Date"),  # French
        ('"Fecha","Último","Apertura","Máximo","Mínimo","Vol.","% var."', ",", ".", "Fecha"),  # Spanish
    ],
)
def test_an_investing_com_export_from_a_localised_site_is_read_by_its_column_names(
    tmp_path, header, sep, decimal, time
):
    """Investing.com's German, French and Spanish sites name the columns in their language (accents and all),
    the first two with semicolons and decimal commas. Before: "no time column found" or "no price column"."""
    names = [n.strip('"') for n in header.split(sep)]
    rows = []
    for day in range(40, 0, -1):  # newest first, as the site exports
        close = 100 + day / 3
        values = [f"{day:02d}.01.2024" if sep == ";" else f"{day % 28 + 1:02d}.02.2024"]
        values += [f"{v:.2f}".replace(".", decimal) for v in (close, close - 0.5, close + 1, close - 1)]
        values += [f"{day / 10:.2f}M".replace(".", decimal), f"{day / 100:.2f}%".replace(".", decimal)]
        rows.append(sep.join(f'"{v}"' for v in values))
    (tmp_path / "export.csv").write_text(header + "\n" + "\n".join(rows[:28] if sep == "," else rows[:31]) + "\n")
    loaded = load_data(DataConfig(path=str(tmp_path / "export.csv")), stage_root=tmp_path / "stage")
    assert loaded.columns.time == time
    assert list(loaded.columns.prices) == ["open", "high", "low", "close", "volume"]
    assert loaded.columns.prices["close"] == names[1] and loaded.columns.prices["volume"] == "Vol."
    assert loaded.frame["close"].notna().all() and loaded.frame["volume"].iloc[0] > 1e5


@pytest.mark.parametrize("real_volume", [0, 500])
def test_a_metatrader_export_takes_its_tick_volume_when_its_real_volume_is_zero(tmp_path, real_volume):
    """MetaTrader 5 exports <TICKVOL> beside <VOL>, which is 0 in every row for a currency pair: the ticks are
    then the volume, with a warning (before: a volume of zeros, its volume_z dropped as constant). A real volume
    is kept."""
    panel = make_ohlcv_panel(n_symbols=1, n_days=60, seed=8)
    bars = pd.DataFrame(
        {
            "<DATE>": pd.to_datetime(panel["Date"]).dt.strftime("%Y.%m.%d"),
            "<TIME>": "00:00:00",
            "<OPEN>": panel["Open"],
            "<HIGH>": panel["High"],
            "<LOW>": panel["Low"],
            "<CLOSE>": panel["Close"],
            "<TICKVOL>": panel["Volume"] // 100,
            "<VOL>": real_volume,
            "<SPREAD>": 12,
        }
    )
    bars.to_csv(tmp_path / "EURUSD_D1.csv", sep="\t", index=False)
    loaded = load_data(DataConfig(path=str(tmp_path / "EURUSD_D1.csv")), stage_root=tmp_path / "stage")
    if real_volume:
        assert loaded.columns.prices["volume"] == "<VOL>" and loaded.warnings == ()
    else:
        assert loaded.columns.prices["volume"] == "<TICKVOL>"
        assert loaded.frame["volume"].tolist() == (panel["Volume"] // 100).astype(float).tolist()
        assert loaded.warnings == (
            f"{tmp_path / 'EURUSD_D1.csv'}: '<VOL>' is 0 in every row; '<TICKVOL>' (ticks) is the volume",
        )


def test_column_names_in_another_script_do_not_collide():
    """日付 and 終値 (a Japanese export): each its own name, so the error is "no time column", not a clash."""
    from driftline.ingest import normalise_name

    assert normalise_name("日付") != normalise_name("終値") and normalise_name(" Clôture ") == "cloture"


def test_a_cryptodatadownload_csv_is_read_below_its_title_line_and_rows_keep_their_file_lines(tmp_path):
    """CryptoDataDownload's CSVs open with the site's address above the header, newest row first. Before, the
    address was taken for the header and the file read as eight unnamed columns ("no time column found")."""
    from driftline.config import ContractConfig
    from driftline.pipeline import validate_loaded

    panel = make_ohlcv_panel(n_symbols=1, n_days=80, seed=6)
    times = pd.to_datetime(panel["Date"])
    rows = pd.DataFrame(
        {
            "unix": times.astype("int64") // 10**6,
            "date": times.dt.strftime("%Y-%m-%d %H:%M:%S"),
            "symbol": "BTC/USD",
            "open": panel["Open"],
            "high": panel["High"],
            "low": panel["Low"],
            "close": panel["Close"],
            "Volume BTC": panel["Volume"],
        }
    ).iloc[::-1]
    rows.iloc[4, rows.columns.get_loc("close")] = np.nan  # data row 5: line 7 (title, header)
    path = tmp_path / "Bitstamp_BTCUSD_d.csv"
    path.write_text("https://www.CryptoDataDownload.com\n" + rows.to_csv(index=False))
    loaded = load_data(DataConfig(path=str(path)), stage_root=tmp_path / "stage")
    assert loaded.columns.time == "date" and loaded.columns.symbol == "symbol" and len(loaded.frame) == 80
    assert loaded.columns.prices["volume"] == "Volume BTC"  # the base asset's volume, named by its unit
    labelled = pd.DataFrame({"Date": ["2021-01-01"], "Close": [1.0], "volume_change": [-0.5], "y": [1]})
    columns = detect_columns(labelled, DataConfig(target_col="y"), "x.csv", need_target=True)
    assert "volume" not in columns.prices and columns.extra == ("volume_change",)  # a feature, not a volume
    assert loaded.locate(list(loaded.frame.index[loaded.frame["close"].isna()])) == ["line 7"]
    report = validate_loaded(loaded, ContractConfig(min_rows_per_symbol=50), "t")
    assert any("newest first" in c.message for c in report.checks), [c.message for c in report.checks]


def test_a_macrotrends_download_is_read_below_its_quoted_disclaimer(tmp_path):
    """Macrotrends' CSVs open with 14 lines of a title and a quoted disclaimer whose sentences hold commas."""
    title = [
        '"Macrotrends Data Download"',
        '"Apple - Historical Price Data"',
        '""',
        '"DISCLAIMER AND TERMS OF USE: HISTORICAL DATA IS PROVIDED ""AS IS"" AND SOLELY"',
        '"FOR INFORMATIONAL PURPOSES, NOT FOR TRADING PURPOSES OR ADVICE."',
        '""',
    ] * 2 + ['""', '""']
    path = tmp_path / "MacroTrends_Data_Download_AAPL.csv"
    path.write_text("\n".join(title) + "\ndate,open,high,low,close,volume\n1980-12-12,0.0995,0.0999,0.0995,0.0995,1\n")
    frame = read_file(path)
    assert list(frame.columns[:2]) == ["date", "open"] and frame[LINE_COLUMN].tolist() == [16]


def test_files_joined_end_to_end_skip_the_header_their_second_part_repeats(tmp_path, caplog):
    """``cat jan.csv feb.csv > all.csv`` repeats the header mid-file: it made every column text, so a label
    series had no feature and its time did not parse, and a price file lost the row to "not a number". The
    repeated header is skipped with a warning naming its line; every other row keeps its own line."""
    part = "date,open,high,low,close,volume\n2024-01-0{d},1.0,1.2,0.9,1.1,100\n2024-01-0{e},1.1,1.3,1.0,1.2,200\n"
    path = tmp_path / "all.csv"
    path.write_text('"Prices"\n' + part.format(d=1, e=2) + part.format(d=3, e=4) + part.format(d=5, e=6))
    with caplog.at_level(logging.WARNING, logger="driftline.sources"):
        frame = read_file(path)
    assert frame["date"].tolist() == [f"2024-01-0{d}" for d in range(1, 7)]
    assert frame["close"].dtype == float and frame["volume"].tolist() == [100, 200] * 3
    assert frame[LINE_COLUMN].tolist() == [3, 4, 6, 7, 9, 10]  # after the title and each header
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: lines 5, 8 repeat the header (files joined end to end?): skipped"
    ]
    # A header's name among a column's values is not a repeated header when the rest of the row is not.
    path.write_text("name,value\nname,1\nother,2\n")
    assert read_file(path)["value"].tolist() == [1, 2]


def test_coingecko_and_coinmarketcap_exports_are_read(tmp_path):
    # CoinGecko: snapped_at ("... UTC"), price, market_cap, total_volume.
    gecko = tmp_path / "btc-usd-max.csv"
    gecko.write_text(
        "snapped_at,price,market_cap,total_volume\n2013-04-28 00:00:00 UTC,135.3,1500517590,0\n"
        "2013-04-29 00:00:00 UTC,141.96,1575032004,0\n"
    )
    loaded = load_data(DataConfig(path=str(gecko)), stage_root=tmp_path / "stage")
    assert loaded.columns.time == "snapped_at" and loaded.columns.prices == {"close": "price", "volume": "total_volume"}
    assert loaded.frame["timestamp"].tolist() == [pd.Timestamp("2013-04-28"), pd.Timestamp("2013-04-29")]
    # CoinMarketCap: semicolons, five times (the bar's is timeOpen), the coin's id as its name, newest first.
    cmc = tmp_path / "Bitcoin_historical_data_coinmarketcap.csv"
    cmc.write_text(
        "timeOpen;timeClose;timeHigh;timeLow;name;open;high;low;close;volume;marketCap;timestamp\n"
        "2024-01-02T00:00:00.000Z;2024-01-02T23:59:59.999Z;2024-01-02T13:00:00.000Z;2024-01-02T03:00:00.000Z;2781;"
        "44187.1;45899.7;44176.9;44957.9;39335274536;880569124767;2024-01-02T23:59:59.999Z\n"
        "2024-01-01T00:00:00.000Z;2024-01-01T23:59:59.999Z;2024-01-01T13:00:00.000Z;2024-01-01T03:00:00.000Z;2781;"
        "42280.2;44175.4;42214.9;44187.1;18426978499;865416085306;2024-01-01T23:59:59.999Z\n"
    )
    frame = load_data(DataConfig(path=str(cmc)), stage_root=tmp_path / "stage").frame
    assert frame["close"].tolist() == [44187.1, 44957.9] and frame["symbol"].nunique() == 1


@pytest.mark.parametrize("hint", ["sep=;", '"sep=;"', "sep=;;;;"])
def test_excels_separator_hint_line_names_the_delimiter_and_is_not_the_header(tmp_path, hint):
    """Exports meant for Excel may open with ``sep=;``. Before, that line was the header: "no time column found
    ... columns are ['level_0', 'level_1', ...]"."""
    path = tmp_path / "export.csv"
    path.write_text(f"{hint}\nDatum;Schluss;Volumen\n02.01.2024;185,64;1200\n03.01.2024;184,25;1300\n")
    frame = read_file(path)
    assert list(frame.columns[:3]) == ["Datum", "Schluss", "Volumen"] and frame[LINE_COLUMN].tolist() == [3, 4]
    assert frame["Schluss"].tolist() == [185.64, 184.25]  # the decimal comma still sniffed below the hint


def test_a_one_column_file_of_decimal_commas_has_no_title_line(tmp_path):
    """A header without a delimiter above rows with commas is a one-column file of decimal commas, not a title."""
    from driftline.sources import read_file

    (tmp_path / "one.csv").write_text("close\n1,5\n2,5\n3,5\n")
    frame = read_file(tmp_path / "one.csv")
    assert list(frame.columns[:1]) == ["close"] and len(frame) == 3


def test_an_investing_com_export_reads_its_volumes_and_changes_with_units_as_numbers(tmp_path):
    """Investing.com's export: quoted grouped prices, volumes as ``19.73M`` / ``850.20K`` (``-`` where unknown),
    changes as ``-2.48%``. Before, the volume was dropped as having no values."""
    from driftline.sources import read_file

    text = (
        '"Date","Price","Open","High","Low","Vol.","Change %"\n'
        '"03/04/2013","1,430.47","1,438.00","1,438.18","1,429.98","19.73M","-2.48%"\n'
        '"03/01/2013","1,441.40","1,444.05","1,447.87","1,441.40","850.20K","0.71%"\n'
        '"02/28/2013","1,444.57","1,448.43","1,452.44","1,440.65","-","1.2%"\n'
        '"02/27/2013","1,444.00","1,448.00","1,452.00","1,440.00","1.5B","x%"\n'
    )
    (tmp_path / "AAPL Historical Data.csv").write_text(text)
    frame = read_file(tmp_path / "AAPL Historical Data.csv")
    assert frame["Vol."].tolist()[:2] == pytest.approx([19.73e6, 850.2e3]) and np.isnan(frame["Vol."][2])
    assert frame["Vol."][3] == pytest.approx(1.5e9)
    assert frame["Price"][0] == pytest.approx(1430.47)
    assert frame["Change %"].tolist() == ["-2.48%", "0.71%", "1.2%", "x%"]  # one value is no number: stays text
    (tmp_path / "b.csv").write_text(text.replace('"x%"', '"0.1%"'))
    assert read_file(tmp_path / "b.csv")["Change %"].tolist() == pytest.approx([-0.0248, 0.0071, 0.012, 0.001])
    loaded = load_data(DataConfig(path=str(tmp_path / "b.csv")), stage_root=tmp_path / "stage")
    assert loaded.columns.prices["volume"] == "Vol." and loaded.columns.prices["close"] == "Price"
    (tmp_path / "c.csv").write_text(text.replace('"850.20K"', '"850,20K"'))  # not this file's decimal mark
    assert read_file(tmp_path / "c.csv")["Vol."][1] == "850,20K"  # text, not a value read as missing


@pytest.mark.parametrize(("time_name", "missing"), [("DATE", "."), ("observation_date", "")])
def test_a_fred_download_is_read_with_its_missing_days_as_missing_values(tmp_path, time_name, missing):
    """FRED's CSVs: ``DATE`` with ``.`` for a day without a value (older downloads), ``observation_date`` with an
    empty cell (fredgraph.csv). Before, the first had no numeric column ("no price column found") and the second
    no time column."""
    from driftline.config import ContractConfig
    from driftline.pipeline import validate_loaded

    values = [f"{4 + i / 100:.2f}" for i in range(120)]
    for i in (5, 50):
        values[i] = missing
    days = pd.bdate_range("2020-01-01", periods=120).strftime("%Y-%m-%d")
    pd.DataFrame({time_name: days, "DGS10": values}).to_csv(tmp_path / "DGS10.csv", index=False)
    loaded = load_data(DataConfig(path=str(tmp_path / "DGS10.csv")), stage_root=tmp_path / "stage")
    assert loaded.columns.time == time_name and loaded.columns.prices == {"close": "DGS10"}
    report = validate_loaded(loaded, ContractConfig(min_rows_per_symbol=50), "t")
    assert loaded.locate(report.quarantined["source_row"].astype(int).tolist()) == ["line 7", "line 52"]
    assert len(report.clean) == 118


def test_a_time_named_by_what_it_dates_is_found_only_when_it_is_the_one_so_named():
    for name in ("observation_date", "Gmt time"):  # FRED's fredgraph.csv; Dukascopy's candles
        one = pd.DataFrame({name: ["2021-01-01"], "x": [1.0]})
        assert detect_columns(one, DataConfig(), "a.csv", need_target=False).time == name
    two = pd.DataFrame({"report_date": ["2021-01-01"], "expiry_date": ["2021-02-01"], "x": [1.0]})
    with pytest.raises(DataError, match=r"no time column found \(looked for .*, or one \*_date/"):
        detect_columns(two, DataConfig(), "a.csv", need_target=False)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_time_with_a_name_detection_does_not_know_is_found_by_its_values(tmp_path, suffix):
    """statsmodels' weekly CO2 saved with its index named ``week``: the one text column whose first rows are all
    ISO 8601 times is the time, in the second's check before the run and in the run (before: "no time column
    found"). Two such columns are named, so the user picks one."""
    from driftline.ingest import check_columns

    weeks = pd.date_range("1958-03-29", periods=60, freq="W-SAT")
    frame = pd.DataFrame({"week": weeks.strftime("%Y-%m-%d"), "co2": np.linspace(316.0, 318.0, 60), "site": "MLO"})
    path = tmp_path / f"co2{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    check_columns(DataConfig(path=str(path)), need_target=False)
    loaded = load_data(DataConfig(path=str(path)), stage_root=tmp_path / "stage")
    assert loaded.columns.time == "week" and loaded.columns.prices == {"close": "co2"}
    assert loaded.frame["timestamp"].tolist() == weeks.tolist()

    two = frame.assign(measured=weeks.strftime("%Y-%m-%dT%H:%M"))
    two.to_csv(tmp_path / "two.csv", index=False)
    for check in (check_columns, lambda data, need_target: load_data(data, stage_root=tmp_path / "stage2")):
        with pytest.raises(
            DataError, match=r"\(columns 'week', 'measured' all hold times: name one\); pass --time-col"
        ):
            check(DataConfig(path=str(tmp_path / "two.csv")), need_target=False)
    # Text that is not an ISO time (a site code, day-first dates) is not taken for one.
    frame.assign(week=weeks.strftime("%d/%m/%Y")).to_csv(tmp_path / "dayfirst.csv", index=False)
    with pytest.raises(DataError, match="no time column found"):
        check_columns(DataConfig(path=str(tmp_path / "dayfirst.csv")), need_target=False)


def test_polygon_and_alpaca_bars_are_read_by_their_one_letter_names(tmp_path):
    """Polygon's and Alpaca's bars saved from their JSON: t (epoch milliseconds), o, h, l, c, v, vw, n."""
    panel = make_ohlcv_panel(n_symbols=1, n_days=60, seed=7)
    times = pd.to_datetime(panel["Date"])
    bars = pd.DataFrame({"v": panel["Volume"], "vw": panel["Close"], "o": panel["Open"], "c": panel["Close"]})
    bars = bars.assign(h=panel["High"], l=panel["Low"], t=times.astype("int64") // 10**6, n=100)
    bars.to_csv(tmp_path / "bars.csv", index=False)
    loaded = load_data(DataConfig(path=str(tmp_path / "bars.csv")), stage_root=tmp_path / "stage")
    assert loaded.columns.time == "t" and loaded.columns.prices == {
        "open": "o",
        "high": "h",
        "low": "l",
        "close": "c",
        "volume": "v",
    }
    assert loaded.frame["timestamp"].tolist() == times.tolist()


def test_contract_messages_name_the_line_a_user_finds_the_row_on(tmp_path):
    """The contract's examples and duplicate reasons name file lines (a CSV's header is line 1; a Parquet file's
    rows count from 1), with the file when the source has several, not the frame's 0-based row numbers."""
    from driftline.config import ContractConfig
    from driftline.pipeline import validate_loaded

    raw = make_ohlcv_panel(n_symbols=1, n_days=150, seed=4).drop(columns=["Symbol"])
    raw["Date"] = pd.to_datetime(raw["Date"])
    raw.loc[9, "Close"] = np.nan  # data row 10: line 11 of the CSV
    raw = pd.concat([raw, raw.iloc[[20]]], ignore_index=True)  # a repeat of data row 21 (line 22) at the end
    raw.to_csv(tmp_path / "one.csv", index=False)
    contract = ContractConfig(min_rows_per_symbol=50)
    report = validate_loaded(
        load_data(DataConfig(path=str(tmp_path / "one.csv")), stage_root=tmp_path / "s1"), contract, "t"
    )
    reasons = report.quarantined.set_index(report.quarantined["source_row"].astype(int))["reason"]
    assert reasons[len(raw) - 1].startswith("duplicate of line 22 for ")
    assert any("e.g. line 11" in c.message for c in report.checks), [c.message for c in report.checks]

    folder = tmp_path / "panel"
    folder.mkdir()
    raw.iloc[:-1].to_csv(folder / "a.csv", index=False)
    raw.iloc[:-1].to_csv(folder / "b.csv", index=False)
    loaded = load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "s2")
    lines = loaded.locate(list(loaded.frame.index[loaded.frame["close"].isna()]))
    assert sorted(lines) == ["a.csv line 11", "b.csv line 11"], lines
    raw.iloc[:-1].to_parquet(tmp_path / "one.parquet", index=False)
    loaded = load_data(DataConfig(path=str(tmp_path / "one.parquet")), stage_root=tmp_path / "s3")
    assert loaded.locate(list(loaded.frame.index[loaded.frame["close"].isna()])) == ["row 10"]


def test_frame_keeps_the_raw_row_index(tmp_path):
    raw = make_ohlcv_panel(n_symbols=2, n_days=8, seed=2).sample(frac=1.0, random_state=0)
    path = tmp_path / "shuffled.csv"
    raw.to_csv(path, index=False)
    loaded = load_data(DataConfig(path=str(path)))
    frame = loaded.frame
    # Sorted by symbol and time, yet every row points back at its source line.
    assert not frame.index.is_monotonic_increasing
    np.testing.assert_array_equal(loaded.raw.loc[frame.index, "Close"].to_numpy(), frame["close"].to_numpy())
    np.testing.assert_array_equal(loaded.raw.loc[frame.index, "Symbol"].to_numpy(), frame["symbol"].to_numpy())


def test_infinite_and_non_numeric_prices_become_nan(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("date,close\n2020-01-01,1.5\n2020-01-02,inf\n2020-01-03,n/a?\n2020-01-04,2\n")
    frame = load_data(DataConfig(path=str(path))).frame
    assert frame["close"].isna().tolist() == [False, True, True, False]


# --- content hash ---------------------------------------------------------------------------------------------------


def test_content_hash_is_stable_for_the_same_bytes(tmp_path, vendor_frame):
    first = tmp_path / "a" / "prices.csv"
    second = tmp_path / "b" / "prices.csv"
    for path in (first, second):
        path.parent.mkdir()
        vendor_frame.to_csv(path, index=False)
    hash_a = load_data(DataConfig(path=str(first))).content_hash
    assert hash_a == load_data(DataConfig(path=str(second))).content_hash
    assert hash_a == read_source(first)[1]
    assert re.fullmatch(r"[0-9a-f]{64}", hash_a)


def test_content_hash_changes_with_one_byte(tmp_path, vendor_frame):
    path = tmp_path / "prices.csv"
    vendor_frame.to_csv(path, index=False)
    before = read_source(path)[1]
    data = bytearray(path.read_bytes())
    position = data.rindex(b"1")
    data[position : position + 1] = b"2"
    path.write_bytes(bytes(data))
    assert read_source(path)[1] != before


def test_content_hash_covers_file_names_in_a_folder(tmp_path, vendor_frame):
    folder = tmp_path / "panel"
    folder.mkdir()
    vendor_frame.to_csv(folder / "AAA.csv", index=False)
    before = hash_files([folder / "AAA.csv"], folder)
    shutil.move(folder / "AAA.csv", folder / "BBB.csv")
    assert hash_files([folder / "BBB.csv"], folder) != before


# --- timestamps -----------------------------------------------------------------------------------------------------


def test_mixed_time_zones_parse_to_naive_utc():
    values = pd.Series(
        ["2020-03-01T10:00:00+02:00", "2020-03-01T08:00:00Z", "2020-03-01 08:00:00", "2020-03-01T03:00:00-05:00"]
    )
    parsed = parse_timestamps(values)
    assert parsed.dt.tz is None
    assert (parsed == pd.Timestamp("2020-03-01 08:00:00")).all()


@pytest.mark.parametrize("unit, scale", [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)])
def test_numbers_since_the_epoch_are_read_in_the_unit_their_size_tells(unit, scale, caplog):
    # Exchange APIs send time as numbers (Binance: milliseconds); before 1970 too (weekly CO2 from 1958).
    times = pd.to_datetime(["1958-03-29", "2001-12-29 13:45:10", "2024-06-01"], format="ISO8601")
    numbers = pd.Series(times.as_unit("ns").asi8 // scale)
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        parsed = parse_timestamps(numbers, "bars.csv", "open_time")
    assert parsed.tolist() == list(times)
    unit_name = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}[unit]
    assert f"bars.csv: column 'open_time': numbers read as {unit_name} since 1970-01-01 UTC" in caplog.text
    assert epoch_unit(numbers.astype(str)) == unit  # as text in a CSV the same


def test_years_and_yyyymmdd_numbers_are_dates_not_epoch_seconds(tmp_path):
    assert epoch_unit(pd.Series(["1700", "2008"])) is None and epoch_unit(pd.Series(["20011229"])) is None
    assert epoch_unit(pd.Series(["1700000000", "not a number"])) is None
    assert epoch_unit(pd.Series(["0", "1", "1022015"])) is None  # counts, row numbers: not seconds near 1970
    path = tmp_path / "ms.csv"
    path.write_text("open_time,close\n1704067200000,1\n1704153600000,2\n\n")
    frame = load_data(DataConfig(path=str(path))).frame
    assert frame["timestamp"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")]
    path.write_text("date,close\n20240101,1\n20240102,2\n")
    assert load_data(DataConfig(path=str(path))).frame["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-02"),
    ]


def test_a_day_and_clock_time_in_digits_is_not_milliseconds():
    # Broker exports write 2024-01-02 09:30 as 202401020930 (or ...093000): read as milliseconds, 1976 or 2611.
    assert parse_timestamps(pd.Series([202401020930, 202401021530]), "bars.csv", "date").tolist() == [
        pd.Timestamp("2024-01-02 09:30"),
        pd.Timestamp("2024-01-02 15:30"),
    ]
    assert parse_timestamps(pd.Series(["20240102093000", "20240102093001"])).tolist() == [
        pd.Timestamp("2024-01-02 09:30:00"),
        pd.Timestamp("2024-01-02 09:30:01"),
    ]
    # 12-digit milliseconds (1973-2001) have no month 52 or 84: still milliseconds.
    assert epoch_unit(pd.Series(["631152000000", "946684800000"])) == "ms"
    assert epoch_unit(pd.Series(["202401020930", "202401029930"])) == "ms"  # one value is no clock time (99:30)


def test_a_time_zones_abbreviation_after_the_time_is_its_offset():
    # CoinGecko writes "... UTC"; broker exports "... EST" / "... EDT" across daylight saving.
    zoned = pd.Series(["2024-01-02 09:30:00 EST", "2024-07-02 09:30:00 EDT", None])
    assert parse_timestamps(zoned).tolist()[:2] == [pd.Timestamp("2024-01-02 14:30"), pd.Timestamp("2024-07-02 13:30")]
    assert parse_timestamps(pd.Series(["2013-04-28 00:00:00 UTC"])).tolist() == [pd.Timestamp("2013-04-28")]
    assert parse_timestamps(pd.Series(["2024-01-02 09:30:00 CST"])).isna().all()  # US or China: not guessed


def test_a_time_zones_name_after_the_time_reads_it_in_that_zone_with_its_daylight_saving(tmp_path):
    """Interactive Brokers' bars end with the zone's name (``20240102 16:00:00 US/Eastern``): "no value parses
    as a timestamp" before. Read in the zone, so the UTC time moves by an hour across a clock change."""
    ib = pd.Series(["20240102 16:00:00 US/Eastern", "20240702 16:00:00 US/Eastern", None])
    assert parse_timestamps(ib).tolist()[:2] == [pd.Timestamp("2024-01-02 21:00"), pd.Timestamp("2024-07-02 20:00")]
    mixed = pd.Series(["2024-03-29 09:00:00 Europe/London", "2024-03-29 09:00:00 Asia/Tokyo"])
    assert parse_timestamps(mixed).tolist() == [pd.Timestamp("2024-03-29 09:00"), pd.Timestamp("2024-03-29 00:00")]
    # 02:30 on a spring-forward night never happened in New York: no reading (quarantined), the rest read.
    night = pd.Series(["2024-03-10 01:30:00 America/New_York", "2024-03-10 02:30:00 America/New_York"])
    assert parse_timestamps(night).isna().tolist() == [False, True]
    # 01:30 twice on an autumn night: summer time, then winter time, as the rows run (also for a panel stacked
    # by symbol); four times running, the order cannot tell: no reading for those rows.
    autumn = [f"2024-11-03 {t}:00 America/New_York" for t in ("00:30", "01:30", "01:30", "02:30")]
    in_utc = [pd.Timestamp(f"2024-11-03 {t}") for t in ("04:30", "05:30", "06:30", "07:30")]
    assert parse_timestamps(pd.Series(autumn)).tolist() == in_utc
    assert parse_timestamps(pd.Series(autumn * 2)).tolist() == in_utc * 2
    assert parse_timestamps(pd.Series(autumn[1:3] * 2)).isna().all()
    assert parse_timestamps(pd.Series(["2024-01-02 09:30 Mars/Olympus"])).isna().all()  # no such zone
    path = tmp_path / "ib.csv"
    path.write_text("date,open,high,low,close,volume\n20240102 16:00:00 US/Eastern,1,2,0.5,1.5,10\n")
    assert load_data(DataConfig(path=str(path))).frame["timestamp"].tolist() == [pd.Timestamp("2024-01-02 21:00")]


def test_local_clock_times_read_in_the_zone_data_timezone_names(tmp_path):
    """An hourly export in local time without an offset (a meter, a weather station, a shop's till): the hour
    the clocks go back came twice, so a row of it was quarantined as a duplicate with a hint about events at one
    time, and every time was an hour or two off UTC. ``data.timezone`` reads them as that zone's clock times, the
    same as the file with offsets; times that carry an offset or zone read as they say."""
    from driftline.pipeline import validate_loaded

    hours = pd.date_range("2021-10-30 22:00", "2021-10-31 05:00", freq="h", tz="Europe/Berlin")
    closes = np.linspace(100, 110, len(hours))
    local = pd.DataFrame({"time": hours.strftime("%Y-%m-%d %H:%M"), "close": closes})
    assert local["time"].duplicated().sum() == 1  # 02:00 twice
    local.to_csv(tmp_path / "local.csv", index=False)
    aware = local.assign(time=hours.strftime("%Y-%m-%dT%H:%M:%S%z"))
    aware.to_csv(tmp_path / "aware.csv", index=False)
    in_utc = hours.tz_convert("UTC").tz_localize(None).tolist()

    as_utc = load_data(DataConfig(path=str(tmp_path / "local.csv")))
    report = validate_loaded(as_utc, ContractConfig(), "local")
    [duplicate] = [c.message for c in report.checks if c.message and "duplicate" in c.message]
    assert "a Sunday when clocks go back" in duplicate and "--set data.timezone=Europe/Berlin" in duplicate
    assert "events at one time" not in duplicate

    zoned = load_data(DataConfig(path=str(tmp_path / "local.csv"), timezone="Europe/Berlin"))
    assert zoned.frame["timestamp"].tolist() == in_utc
    assert validate_loaded(zoned, ContractConfig(), "local").quarantined.empty
    for zone in (None, "America/New_York"):  # an offset in the value wins over the key
        assert (
            load_data(DataConfig(path=str(tmp_path / "aware.csv"), timezone=zone)).frame["timestamp"].tolist() == in_utc
        )
    typed = pd.Series(hours.tz_localize(None))  # a Parquet timestamp column without a zone
    assert parse_timestamps(typed, zone="Europe/Berlin").tolist()[:2] == in_utc[:2]
    assert parse_timestamps(pd.Series(["2021-10-31"]), zone="Asia/Tokyo").tolist() == [pd.Timestamp("2021-10-30 15:00")]
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Berlinn': an IANA name"):
        DataConfig(timezone="Europe/Berlinn")


def test_a_zone_aware_time_column_is_the_clock_its_times_are_shown_on(tmp_path):
    """A Parquet column of zone-aware times (pandas' ``tz_localize``) is kept as UTC like any other; the times a
    user reads (summary, scores, monitor's window) are shown on its zone, as with ``data.timezone``, which wins."""
    hours = pd.date_range("2024-05-01 08:00", periods=30, freq="h", tz="Europe/Berlin")
    for name, times in (("berlin", hours), ("utc", hours.tz_convert("UTC")), ("naive", hours.tz_localize(None))):
        pd.DataFrame({"time": times, "close": np.linspace(1, 2, 30)}).to_parquet(tmp_path / f"{name}.parquet")
    berlin = load_data(DataConfig(path=str(tmp_path / "berlin.parquet")))
    assert berlin.frame["timestamp"].iloc[0] == pd.Timestamp("2024-05-01 06:00")  # kept as UTC
    assert berlin.zone == "Europe/Berlin" and berlin.shown_zone(DataConfig()) == "Europe/Berlin"
    assert berlin.shown_zone(DataConfig(timezone="Asia/Tokyo")) == "Asia/Tokyo"
    for name in ("utc", "naive"):
        assert load_data(DataConfig(path=str(tmp_path / f"{name}.parquet"))).zone is None, name


def test_a_spreadsheets_serial_dates_are_days_since_1899_12_30(tmp_path, caplog):
    # A sheet's date cells saved as numbers (the cells' format lost): 45293 is 2024-01-02, .395833 is 09:30.
    path = tmp_path / "sheet.csv"
    path.write_text("Date,Close\n45293,1.0\n45294.395833,1.1\n")
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        frame = load_data(DataConfig(path=str(path))).frame
    assert frame["timestamp"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03 09:30")]
    assert "column 'Date': numbers read as a spreadsheet's serial dates, days since 1899-12-30" in caplog.text
    assert parse_timestamps(pd.Series([1, 2, 3])).isna().all()  # row numbers: not dates
    assert parse_timestamps(pd.Series([19_999, 45_293])).isna().all()  # not all in the range of serial dates


def test_durations_without_a_date_are_elapsed_time_the_same_on_any_day(tmp_path, caplog):
    # A workout or sensor log: pandas' text for a timedelta (bokeh's cycling sample written to CSV) or clock
    # times alone. pandas reads "01:13:11" as today at that time: the file would move in time every day.
    start = pd.Timestamp("1970-01-01")
    path = tmp_path / "ride.csv"
    path.write_text("time,speed\n0 days 00:00:00,1.6\n0 days 00:00:01,2.0\n1 days 01:13:11,2.3\n")
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        frame = load_data(DataConfig(path=str(path), price_col="speed")).frame
    assert frame["timestamp"].tolist() == [
        start,
        start + pd.Timedelta(seconds=1),
        start + pd.Timedelta("1 days 01:13:11"),
    ]
    assert "ride.csv: column 'time': durations without a date (0 days 00:00:00 to 1 days 01:13:11)" in caplog.text
    clock = parse_timestamps(pd.Series(["09:30", "09:31:30", "25:00:00", None]))
    assert clock.tolist()[:3] == [start + pd.Timedelta(t) for t in ("09:30:00", "09:31:30", "25:00:00")]
    assert clock.isna().tolist() == [False, False, False, True]
    typed = pd.Series(pd.to_timedelta([0, 1], unit="s"))  # Parquet keeps the timedelta type
    assert parse_timestamps(typed).tolist() == [start, start + pd.Timedelta(seconds=1)]
    # A date beside the clock is still a date and a time, and dates alone are still dates.
    assert parse_timestamps(pd.Series(["2024-01-02 09:30"])).iloc[0] == pd.Timestamp("2024-01-02 09:30")


def test_tz_aware_datetime_column_converts_to_utc():
    values = pd.Series(pd.to_datetime(["2020-07-01 10:00"]).tz_localize("Europe/Berlin"))
    assert parse_timestamps(values).iloc[0] == pd.Timestamp("2020-07-01 08:00")


def test_mixed_offsets_in_a_file(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text("timestamp,close\n2020-03-01T10:00:00+02:00,1\n2020-03-01T09:00:00Z,2\n")
    frame = load_data(DataConfig(path=str(path))).frame
    assert frame["timestamp"].dt.tz is None
    assert frame["timestamp"].tolist() == [pd.Timestamp("2020-03-01 08:00"), pd.Timestamp("2020-03-01 09:00")]


def test_unparseable_timestamps_become_nat(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("date,close\n2020-01-01,1\nnot a date,2\n2020-01-03,3\n")
    frame = load_data(DataConfig(path=str(path))).frame
    assert frame["timestamp"].isna().sum() == 1
    assert frame.loc[frame["timestamp"].isna(), "close"].tolist() == [2.0]


def test_all_unparseable_timestamps_are_an_error(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("date,close\nfoo,1\nbar,2\n")
    with pytest.raises(DataError, match="no value parses as a timestamp") as info:
        load_data(DataConfig(path=str(path)))
    assert "p.csv" in str(info.value) and "'date'" in str(info.value)


# --- unreadable input -------------------------------------------------------------------------------------------------


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _header_only(path: Path) -> None:
    path.write_text("Date,Close\n")


def _binary(path: Path) -> None:
    path.write_bytes(b"Date,Close\n" + bytes(range(256)) * 4)


def _truncated_gzip(path: Path) -> None:
    payload = make_ohlcv_panel(n_symbols=1, n_days=200, seed=0).to_csv(index=False).encode()
    data = gzip.compress(payload)
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("name", "writer", "pattern"),
    [
        ("empty.csv", _empty, "empty"),
        ("header_only.csv", _header_only, "no data rows"),
        ("binary.csv", _binary, "not text"),
        ("broken.csv.gz", _truncated_gzip, "truncated or corrupted"),
    ],
)
def test_unreadable_files_are_data_errors_naming_the_file(tmp_path, name, writer, pattern):
    path = tmp_path / name
    writer(path)
    with pytest.raises(DataError, match=pattern) as info:
        load_data(DataConfig(path=str(path)))
    assert name in str(info.value)


def _word_file(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as document:  # a .docx is a zip of XML parts, as a workbook is
        document.writestr("[Content_Types].xml", "<Types/>")
        document.writestr("word/document.xml", "<w:document/>")


def _opendocument_text(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as document:
        document.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        document.writestr("content.xml", "<office:document-content/>")


def _binary_workbook(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as workbook:  # Excel's binary workbook: the parts of an .xlsx, binary
        workbook.writestr("[Content_Types].xml", "<Types/>")
        workbook.writestr("xl/workbook.bin", bytes(16))


def _hdf5(path: Path) -> None:
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(504))  # HDF5's signature (PyTables is not installed)


@pytest.mark.parametrize(
    ("name", "writer", "what", "how"),
    [
        ("prices.docx", _word_file, "an office document that is not a workbook (Office Open XML)", ""),
        ("prices.odt", _opendocument_text, "an office document that is not a workbook (application/vnd.oasis", ""),
        ("prices.h5", _hdf5, "an HDF5 file", "read_hdf(path, key).to_parquet"),
        # Before: "an office document that is not a workbook".
        ("prices.xlsb", _binary_workbook, "an Excel binary workbook (.xlsb)", "save it as an Excel Workbook (.xlsx)"),
    ],
)
def test_a_workbook_or_hdf5_file_is_named_as_such_with_how_to_convert_it(tmp_path, name, writer, what, how):
    """Not a column or encoding complaint about bytes that were never CSV: what the file is and what to do."""
    from driftline.sources import preflight

    path = tmp_path / name
    writer(path)
    for check in (lambda: preflight(str(path)), lambda: load_data(DataConfig(path=str(path)))):
        with pytest.raises(DataError) as info:
            check()
        message = str(info.value)
        assert message.startswith(f"{path}: {what}"), message
        reads = "reads CSV text (any delimiter, optionally compressed, or alone in a zip), JSON, Excel .xlsx and .xls"
        assert reads in message and how in message


def test_a_csv_alone_in_a_zip_is_read_as_the_csv_and_an_archive_of_many_says_unzip(tmp_path, vendor_frame):
    import zipfile

    from driftline.sources import preflight

    vendor_frame.to_csv(tmp_path / "prices.csv", index=False)
    expected = read_file(tmp_path / "prices.csv")
    with zipfile.ZipFile(tmp_path / "prices.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(tmp_path / "prices.csv", "prices.csv")
        archive.writestr("__MACOSX/._prices.csv", b"\x00\x05")  # Finder's "Compress" adds a resource fork
    pd.testing.assert_frame_equal(read_file(tmp_path / "prices.zip"), expected)  # line numbers too
    folder = tmp_path / "zips"
    folder.mkdir()
    shutil.move(tmp_path / "prices.zip", folder / "AAPL.zip")
    frame = load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "stage").frame
    assert frame["symbol"].unique().tolist() == ["AAPL"] and len(frame) == len(vendor_frame)
    with zipfile.ZipFile(tmp_path / "archive.zip", "w") as archive:  # Kaggle's download of a dataset
        for name in ("a.csv", "b.csv", "c.csv", "d.csv"):
            archive.write(tmp_path / "prices.csv", name)
    for check in (lambda: preflight(str(tmp_path / "archive.zip")), lambda: read_file(tmp_path / "archive.zip")):
        with pytest.raises(
            DataError, match=r"archive.zip: a zip archive of 4 files \(a.csv, b.csv, c.csv and 1 more\)"
        ):
            check()
    with pytest.raises(DataError, match=r"unzip it \(unzip archive.zip -d archive\) and pass the folder"):
        read_file(tmp_path / "archive.zip")


def _api_json(ohlcv: pd.DataFrame) -> dict[str, object]:
    """The same bars as each API and pandas layout saves them (the file name says which)."""
    times = pd.to_datetime(ohlcv["Date"])
    ms = (times.astype("int64") // 10**6).tolist()
    bars = list(zip(ms, ohlcv["Open"], ohlcv["High"], ohlcv["Low"], ohlcv["Close"], ohlcv["Volume"], strict=True))
    indexed = ohlcv.assign(Date=times).set_index("Date")
    return {
        "records.json": ohlcv.to_json(orient="records"),
        "lines.jsonl": ohlcv.to_json(orient="records", lines=True),
        "pandas_default.json": indexed.to_json(),
        "split.json": indexed.to_json(orient="split"),
        "table.json": indexed.to_json(orient="table"),
        "index.json": ohlcv.set_index("Date").to_json(orient="index"),
        "binance_klines.json": [
            [t, str(o), str(h), str(lo), str(c), str(v), t + 86_399_999, "0"] for t, o, h, lo, c, v in bars
        ],
        "polygon.json": {
            "ticker": "AAPL",
            "queryCount": len(bars),
            "results": [{"v": v, "o": o, "c": c, "h": h, "l": lo, "t": t, "n": 1} for t, o, h, lo, c, v in bars],
            "status": "OK",
        },
        "alpha_vantage.json": {
            "Meta Data": {"1. Information": "Daily Prices", "2. Symbol": "AAPL"},
            "Time Series (Daily)": {
                f"{pd.Timestamp(t, unit='ms'):%Y-%m-%d}": {
                    "1. open": str(o),
                    "2. high": str(h),
                    "3. low": str(lo),
                    "4. close": str(c),
                    "5. volume": str(v),
                }
                for t, o, h, lo, c, v in reversed(bars)
            },
        },
        "coingecko_market_chart.json": {
            "prices": [[t, c] for t, _, _, _, c, _ in bars],
            "market_caps": [[t, c * 1e6] for t, _, _, _, c, _ in bars],
            "total_volumes": [[t, v] for t, *_, v in bars],
        },
    }


@pytest.mark.parametrize(
    "name",
    [
        "records.json",
        "lines.jsonl",
        "pandas_default.json",
        "split.json",
        "table.json",
        "index.json",
        "binance_klines.json",
        "polygon.json",
        "alpha_vantage.json",
        "coingecko_market_chart.json",
    ],
)
def test_json_as_apis_and_pandas_save_bars_is_read_as_the_same_bars(tmp_path, vendor_frame, name):
    import json

    content = _api_json(vendor_frame.drop(columns="Adj Close"))[name]
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    loaded = load_data(DataConfig(path=str(path)), stage_root=tmp_path / "stage")
    frame = loaded.frame.sort_values("timestamp").reset_index(drop=True)
    expected = pd.to_datetime(vendor_frame["Date"]).tolist()
    assert frame["timestamp"].tolist() == expected
    assert frame["close"].tolist() == vendor_frame["Close"].tolist()
    if name != "coingecko_market_chart.json":  # a price and a volume only
        assert frame["high"].tolist() == vendor_frame["High"].tolist()
    assert frame["volume"].tolist() == vendor_frame["Volume"].astype(float).tolist()
    assert frame["symbol"].unique().tolist() == (["AAPL"] if name == "polygon.json" else ["series"])
    assert loaded.locate([int(frame.index[0])])[0].startswith("row ")  # records, not lines


def test_json_that_is_broken_or_holds_no_table_says_so(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"t": 1, "c": 2},\n {"t": 2, "c": }]')
    with pytest.raises(DataError, match=r"broken.json: not valid JSON \(line 2, column 16: Expecting value\)"):
        load_data(DataConfig(path=str(broken)))
    odd = tmp_path / "odd.json"
    odd.write_text('{"status": "OK", "count": 3}')
    with pytest.raises(DataError, match=r"odd.json: JSON without a table .* \(keys: status, count\); save a list"):
        load_data(DataConfig(path=str(odd)))
    folder = tmp_path / "kaggle"
    folder.mkdir()
    vendor = make_ohlcv_panel(n_symbols=1, n_days=5, seed=1).drop(columns="Symbol")
    vendor.to_csv(folder / "AAPL.csv", index=False)
    (folder / "dataset-metadata.json").write_text('{"title": "stocks"}')  # a folder's JSON is not data
    assert load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "stage").frame["symbol"].unique() == ["AAPL"]


def test_an_excel_workbook_is_read_from_its_first_sheet_with_data_and_rows_keep_their_sheet_rows(
    tmp_path, vendor_frame, caplog
):
    frame = vendor_frame.assign(Date=pd.to_datetime(vendor_frame["Date"]))
    plain = tmp_path / "prices.xlsx"
    frame.to_excel(plain, index=False)
    expected = load_data(DataConfig(path=str(plain)), stage_root=tmp_path / "s1").frame
    assert expected["close"].tolist() == vendor_frame["Close"].tolist()
    assert read_file(plain)[LINE_COLUMN].tolist()[:2] == [2, 3]  # row 1 is the header
    # A title above the header, the table off the first column, a second sheet of notes.
    titled = tmp_path / "report.xlsx"
    with pd.ExcelWriter(titled) as book:
        pd.DataFrame([["Daily prices"], ["source: a vendor"]]).to_excel(
            book, sheet_name="AAPL", header=False, index=False
        )
        frame.to_excel(book, sheet_name="AAPL", index=False, startrow=3, startcol=1)
        pd.DataFrame({"note": ["checked"]}).to_excel(book, sheet_name="Notes", index=False)
    with caplog.at_level("WARNING", logger="driftline.sources"):
        loaded = load_data(DataConfig(path=str(titled)), stage_root=tmp_path / "s2")
    pd.testing.assert_frame_equal(loaded.frame, expected)
    assert "sheet 'AAPL' read; its other sheets with data ('Notes') are not" in caplog.text
    assert loaded.locate([0]) == ["row 5"]  # the sheet's row: title, source, blank, header
    # A sheet of prices without a header row is named as a headerless CSV is.
    bare = tmp_path / "bare.xlsx"
    frame[["Date", "Open", "High", "Low", "Close", "Volume"]].to_excel(bare, index=False, header=False)
    assert load_data(DataConfig(path=str(bare)), stage_root=tmp_path / "s3").frame["close"].tolist() == (
        vendor_frame["Close"].tolist()
    )


def test_a_workbooks_sheets_of_the_same_columns_are_a_symbol_each_and_a_sheet_of_notes_is_passed_over(
    tmp_path, vendor_frame, caplog
):
    """A workbook of a sheet per instrument, behind a sheet of notes: the notes stopped the run ("no header
    row") and every instrument after the first went unread. A workbook of a sheet per year is one series."""
    frame = vendor_frame.assign(Date=pd.to_datetime(vendor_frame["Date"]))
    panel = tmp_path / "panel.xlsx"
    with pd.ExcelWriter(panel) as book:
        pd.DataFrame({"Notes": ["exported by hand"]}).to_excel(book, sheet_name="Info", index=False)
        for k, ticker in enumerate(("AAPL", "IBM", "MSFT")):
            frame.assign(Close=frame["Close"] + k).to_excel(book, sheet_name=ticker, index=False)
        pd.DataFrame({"x": [1, 2], "y": [3, 4]}).to_excel(book, sheet_name="Scratch", index=False)
    with caplog.at_level("WARNING", logger="driftline.sources"):
        loaded = load_data(DataConfig(path=str(panel)), stage_root=tmp_path / "s1")
    closes = loaded.frame.groupby("symbol")["close"].apply(list).to_dict()
    assert closes == {t: (frame["Close"] + k).tolist() for k, t in enumerate(("AAPL", "IBM", "MSFT"))}
    assert loaded.columns.symbol_from == "each sheet's name"
    assert "sheets 'AAPL', 'IBM', 'MSFT' read, the same columns in each: a symbol per sheet" in caplog.text
    assert "sheet 'AAPL' read; its other sheets with data ('Info', 'Scratch') are not" in caplog.text
    rows = loaded.frame.index[loaded.frame["symbol"] == "IBM"][:1]
    assert loaded.locate(list(rows)) == ["row 2"]  # IBM's first row: its sheet's row 2
    # data.sheet reads that sheet alone, staged apart from the whole workbook's reading.
    ibm = load_data(DataConfig(path=str(panel), sheet="IBM"), stage_root=tmp_path / "s1").frame
    assert ibm["close"].tolist() == (frame["Close"] + 1).tolist() and ibm["symbol"].nunique() == 1
    with pytest.raises(DataError, match=r"panel\.xlsx: no sheet 'GOOG' \(data\.sheet\); its sheets: 'Info', 'AAPL'"):
        load_data(DataConfig(path=str(panel), sheet="GOOG"))
    assert DataConfig(sheet=2024).sheet == "2024"  # --set data.sheet=2024: a sheet named by a year
    years = tmp_path / "years.xlsx"
    with pd.ExcelWriter(years) as book:
        for half, part in (("2024-1", frame.iloc[:6]), ("2024-2", frame.iloc[6:])):
            part.to_excel(book, sheet_name=half, index=False)
    caplog.clear()
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        one = load_data(DataConfig(path=str(years)), stage_root=tmp_path / "s2")
    assert one.frame["close"].tolist() == frame["Close"].tolist() and one.frame["symbol"].nunique() == 1
    assert "its 2 sheets are one series cut by period" in caplog.text


def test_feather_files_excel_97_workbooks_and_folders_of_workbooks_are_read(tmp_path, vendor_frame, caplog):
    """Feather (pandas' to_feather, read by pyarrow) and Excel 97-2003 .xls (xlrd) were refused with how to
    convert them; a folder skipped its workbooks. The .xls is a real one: statsmodels' macrodata source."""
    import statsmodels

    vendor_frame.to_csv(tmp_path / "prices.csv", index=False)
    expected = load_data(DataConfig(path=str(tmp_path / "prices.csv"))).frame
    vendor_frame.to_feather(tmp_path / "prices.feather")
    feathered = load_data(DataConfig(path=str(tmp_path / "prices.feather")), stage_root=tmp_path / "s1").frame
    pd.testing.assert_frame_equal(feathered, expected, check_dtype=False)
    macro = next(Path(statsmodels.__file__).parent.glob("datasets/macrodata/src/**/macrodata.xls*"))
    macro = macro if macro.is_file() else macro / "macrodata.xls"
    with caplog.at_level("DEBUG", logger="driftline.sources"):
        monthly = read_file(macro, "macrodata.xls")
    assert list(monthly.columns[:5]) == ["DATE", "CPIAUCSL", "M1SL", "POP", "TB3MS"]
    assert monthly["TB3MS"].iloc[0] == 0.72 and monthly[LINE_COLUMN].iloc[0] == 2  # its sheet row
    assert "sheet 'Monthly' read; its other sheets with data ('README', 'Quarterly') are not" in caplog.text
    quarterly = read_file(macro, "macrodata.xls", options=ReadOptions(sheet="Quarterly"))
    assert list(quarterly.columns[:3]) == ["DATE", "DPIC96", "FGCEC96"] and len(quarterly) == 251
    folder = tmp_path / "books"
    folder.mkdir()
    for k, ticker in enumerate(("AAPL", "MSFT")):
        vendor_frame.assign(Close=vendor_frame["Close"] + k).to_excel(folder / f"{ticker}.xlsx", index=False)
    panel = load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "s2").frame
    assert panel.groupby("symbol")["close"].first().tolist() == [vendor_frame["Close"].iloc[0] + k for k in (0, 1)]
    # LibreOffice Calc's own format (.ods), read by calamine: a sheet per symbol as in an .xlsx.
    frame = vendor_frame.assign(Date=pd.to_datetime(vendor_frame["Date"]))
    _write_ods(tmp_path / "calc.ods", {"Notes": pd.DataFrame({"note": ["by hand"]}), "AAPL": frame, "IBM": frame})
    calc = load_data(DataConfig(path=str(tmp_path / "calc.ods")), stage_root=tmp_path / "s3").frame
    pd.testing.assert_frame_equal(
        calc[calc["symbol"] == "IBM"].drop(columns="symbol").reset_index(drop=True),
        expected.drop(columns="symbol").reset_index(drop=True),
        check_dtype=False,
    )
    assert set(calc["symbol"]) == {"AAPL", "IBM"}


def _write_ods(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    """A LibreOffice spreadsheet as Calc saves one (pandas writes .ods only through odfpy, not installed): a
    zip of its ``mimetype``, its manifest and the sheets' cells in ``content.xml``."""
    import zipfile
    from xml.sax.saxutils import escape

    def cell(value: Any) -> str:
        if isinstance(value, pd.Timestamp):
            kind = f'office:value-type="date" office:date-value="{value:%Y-%m-%dT%H:%M:%S}"'
        elif isinstance(value, int | float):
            kind = f'office:value-type="float" office:value="{value}"'
        else:
            kind = 'office:value-type="string"'
        return f"<table:table-cell {kind}><text:p>{escape(str(value))}</text:p></table:table-cell>"

    tables = "".join(
        f'<table:table table:name="{name}">'
        + "".join(
            "<table:table-row>" + "".join(map(cell, row)) + "</table:table-row>"
            for row in [list(frame.columns), *frame.astype(object).to_numpy().tolist()]
        )
        + "</table:table>"
        for name, frame in sheets.items()
    )
    spaces = " ".join(f'xmlns:{k}="urn:oasis:names:tc:opendocument:xmlns:{k}:1.0"' for k in ("office", "table", "text"))
    manifest = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        book.writestr(
            "META-INF/manifest.xml",
            f'<manifest:manifest xmlns:manifest="{manifest}"><manifest:file-entry manifest:full-path="/" '
            'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>',
        )
        book.writestr(
            "content.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {spaces} office:version="1.2">'
            f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>",
        )


def test_gzipped_csv_and_parquet_are_read_by_their_content_whatever_their_name(tmp_path, vendor_frame):
    vendor_frame.to_csv(tmp_path / "prices.csv", index=False)
    expected = load_data(DataConfig(path=str(tmp_path / "prices.csv"))).frame
    # bzip2 and xz too (archives' .csv.bz2 / .csv.xz: "not text" before); Zstandard is named, with the command.
    for name in ("prices.csv.bz2", "prices.csv.xz"):
        vendor_frame.to_csv(tmp_path / name, index=False)
        frame = load_data(DataConfig(path=str(tmp_path / name))).frame
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
    packed = bytearray((tmp_path / "prices.csv.xz").read_bytes())
    packed[40:80] = bytes(40)  # corrupt inside the stream: named, not lzma's own error
    (tmp_path / "corrupt.csv.xz").write_bytes(bytes(packed))
    with pytest.raises(DataError, match=r"corrupt\.csv\.xz: cannot be read \(.*\); is the file truncated or corrupted"):
        load_data(DataConfig(path=str(tmp_path / "corrupt.csv.xz")))
    (tmp_path / "prices.csv.zst").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(32))
    with pytest.raises(DataError, match=r"prices\.csv\.zst: a Zstandard-compressed file; .*zstd -d FILE"):
        load_data(DataConfig(path=str(tmp_path / "prices.csv.zst")))
    (tmp_path / "gzipped.csv").write_bytes(gzip.compress((tmp_path / "prices.csv").read_bytes()))
    (tmp_path / "plain.csv.gz").write_bytes((tmp_path / "prices.csv").read_bytes())  # named .gz, not gzipped
    vendor_frame.to_parquet(tmp_path / "export.dat", index=False)
    for name in ("gzipped.csv", "plain.csv.gz", "export.dat"):
        frame = load_data(DataConfig(path=str(tmp_path / name))).frame
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)


def test_text_saved_in_a_windows_code_page_or_utf16_is_read_in_its_encoding(tmp_path, vendor_frame, caplog):
    """Excel on Windows saves CSV in the system's code page (cp1252 in Western Europe, cp1251, Shift-JIS) and
    "Unicode text" as UTF-16: each stopped the run with "not UTF-8 text". Read in the encoding the bytes show,
    with a warning (one for a folder of such files); UTF-16 by its byte-order mark, without one."""
    expected = load_data(DataConfig(path=_saved(tmp_path / "utf8.csv", vendor_frame, "utf-8"))).frame
    french = vendor_frame.rename(columns={"Close": "Clôture"})
    for name, frame, encoding, sep in (
        ("fr.csv", french, "cp1252", ";"),
        ("unicode.txt", vendor_frame, "utf-16", "\t"),
        ("fr.csv.gz", french, "cp1252", ","),
    ):
        caplog.clear()
        path = _saved(tmp_path / name, frame, encoding, sep)
        frame_read = load_data(DataConfig(path=path)).frame
        pd.testing.assert_frame_equal(frame_read.reset_index(drop=True), expected.reset_index(drop=True))
        said = [r.getMessage() for r in caplog.records if "not UTF-8" in r.getMessage()]
        told = f"{path}: not UTF-8; read as cp1252 (what the bytes show); if names or text look wrong, set "
        told += "data.encoding (--set data.encoding=...) or save it as UTF-8"
        assert said == ([] if encoding == "utf-16" else [told]), said
    # Other scripts: an export's names in them mean what they say (NATIVE_NAMES).
    native = {"Date": "日期", "Open": "开盘", "High": "最高", "Low": "最低", "Close": "收盘", "Volume": "成交量"}
    for name, names, encoding in (
        ("akshare.csv", native, "gbk"),
        ("yahoo_japan.csv", {"Date": "日付", "Close": "終値", "Adj Close": "調整後終値", "Volume": "出来高"}, "cp932"),
        ("investing_ru.csv", {"Date": "Дата", "Close": "Цена", "Open": "Откр.", "Volume": "Объём"}, "cp1251"),
    ):
        caplog.clear()
        frame_read = load_data(DataConfig(path=_saved(tmp_path / name, vendor_frame.rename(columns=names), encoding)))
        pd.testing.assert_frame_equal(
            frame_read.frame.reset_index(drop=True), expected.reset_index(drop=True), check_like=True
        )
        assert f"read as {'gb18030' if encoding == 'gbk' else encoding}" in caplog.text
    # The user's encoding wins (no guess, no warning), and a file read in another one is staged apart.
    russian = _saved(tmp_path / "ru.csv", vendor_frame.rename(columns={"Date": "Дата", "Close": "Цена"}), "cp1251")
    stage = tmp_path / "stage"
    # Read in Latin-1, Дата is mojibake: found by its ISO dates, it shows as such in the run's column line.
    wrong = load_data(DataConfig(path=russian, encoding="latin-1"), stage_root=stage)
    assert wrong.columns.time == "Дата".encode("cp1251").decode("latin-1")
    caplog.clear()
    frame_read = load_data(DataConfig(path=russian, encoding="CP1251"), stage_root=stage).frame
    pd.testing.assert_frame_equal(frame_read.reset_index(drop=True), expected.reset_index(drop=True))
    assert "not UTF-8" not in caplog.text
    with pytest.raises(DataError, match=r"ru\.csv: not utf-8 text \(byte \d+: invalid .*\); check data\.encoding"):
        load_data(DataConfig(path=russian, encoding="utf8"))
    with pytest.raises(ValueError, match=r"unknown encoding 'klingon' \(e\.g\. utf-8, cp1252"):
        DataConfig(path=russian, encoding="klingon")
    folder = tmp_path / "folder"
    folder.mkdir()
    for symbol in ("A", "B", "C"):
        _saved(folder / f"{symbol}.csv", french, "cp1252")
    caplog.clear()
    assert set(load_data(DataConfig(path=str(folder))).frame["symbol"]) == {"A", "B", "C"}
    said = [r.getMessage() for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"3 files ({folder}/A.csv ... {folder}/C.csv): not UTF-8"), said


def _saved(path: Path, frame: pd.DataFrame, encoding: str, sep: str = ",") -> str:
    text = frame.to_csv(index=False, sep=sep)
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


def test_codes_padded_with_zeros_stay_as_written(tmp_path, vendor_frame):
    """Shenzhen's stock codes (000001) and Seoul's (005930) were read as numbers: the symbol became 1. A column
    of digits all of one length, one starting with 0, is text; the rest of the numbers stay numbers."""
    panel = pd.concat([vendor_frame.assign(Code="000001"), vendor_frame.assign(Code="600000")])
    panel = panel.rename(columns={"Code": "股票代码"})  # akshare's name
    path = tmp_path / "ashares.csv"
    panel.to_csv(path, index=False)
    frame = load_data(DataConfig(path=str(path))).frame
    assert sorted(frame["symbol"].unique()) == ["000001", "600000"]
    assert pd.api.types.is_float_dtype(frame["close"])
    records = tmp_path / "ashares.json"
    panel.to_json(records, orient="records")
    assert sorted(load_data(DataConfig(path=str(records))).frame["symbol"].unique()) == ["000001", "600000"]
    # Numbers that merely share a length (dates as yyyymmdd, prices) are numbers.
    assert not _zero_padded(["20240102", "20240103"]) and not _zero_padded(["0.5", "0.25"])
    assert _zero_padded(["005930", "000660"]) and not _zero_padded(["05930", "000660"])


def test_bad_file_inside_a_folder_is_named(tmp_path, vendor_frame):
    vendor_frame.to_csv(tmp_path / "GOOD.csv", index=False)
    _binary(tmp_path / "BAD.csv")
    with pytest.raises(DataError, match=r"BAD\.csv: not text"):
        load_data(DataConfig(path=str(tmp_path)))


# --- bundled demo ----------------------------------------------------------------------------------------------------


def test_demo_panel_is_loaded_without_a_path():
    loaded = load_data(DataConfig())
    frame = loaded.frame
    assert set(frame["symbol"]) == {"AAPL", "IBM", "MSFT", "GOOG"}
    assert Path(loaded.source) == demo_data_path()
    assert {"open", "high", "low", "close", "adj_close", "volume"} <= set(frame.columns)
    assert len(loaded.raw) == len(frame)
    assert frame["timestamp"].notna().all()
    assert frame.groupby("symbol").size().min() > 1000


def test_demo_symbols_filter():
    frame = load_data(DataConfig(demo_symbols=("IBM",))).frame
    assert set(frame["symbol"]) == {"IBM"}


# --- properties -------------------------------------------------------------------------------------------------------


@given(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False)))
def test_normalise_name_is_idempotent_and_clean(name):
    once = normalise_name(name)
    assert normalise_name(once) == once
    assert re.fullmatch(r"[a-z0-9_]+", once)
    assert not once.startswith("_") and not once.endswith("_")


@given(st.text(alphabet="abcXYZ019 _-./", min_size=1))
def test_normalise_name_ignores_case_and_separators(name):
    assert normalise_name(name.upper()) == normalise_name(name.lower())


_SEPARATORS = st.sampled_from([" ", "_", "-", "  ", ".", " - "])
_PADDING = st.sampled_from(["", " ", "  ", "\t", "_"])


@st.composite
def _spelled(draw, words: tuple[str, ...]) -> str:
    """A column name made of ``words`` with random case, separators and padding."""
    joined = draw(_SEPARATORS).join(words)
    flips = draw(st.lists(st.booleans(), min_size=len(joined), max_size=len(joined)))
    cased = "".join(c.upper() if flip else c.lower() for c, flip in zip(joined, flips, strict=True))
    return draw(_PADDING) + cased + draw(_PADDING)


_TIME_WORDS = st.sampled_from([("date",), ("timestamp",), ("datetime",), ("date", "time"), ("trade", "date"), ("ts",)])
_CLOSE_WORDS = st.sampled_from([("close",), ("price",), ("last",), ("closing", "price")])


@given(data=st.data())
def test_detect_columns_finds_time_and_close_whatever_the_spelling(data):
    time_name = data.draw(_TIME_WORDS.flatmap(_spelled))
    close_name = data.draw(_CLOSE_WORDS.flatmap(_spelled))
    raw = pd.DataFrame({time_name: ["2020-01-01", "2020-01-02"], close_name: [1.0, 2.0], "Symbol": ["A", "A"]})
    columns = detect_columns(raw, DataConfig(), "src", need_target=False)
    assert columns.time == time_name
    assert columns.prices == {"close": close_name}
    assert columns.symbol == "Symbol"


def test_a_file_without_adjusted_close_uses_its_close_with_a_warning_naming_the_file(tmp_path, vendor_frame, caplog):
    from driftline.config import ContractConfig
    from driftline.contracts import validate_frame

    folder = tmp_path / "panel"
    folder.mkdir()
    vendor_frame.to_csv(folder / "AAPL.csv", index=False)
    vendor_frame.drop(columns="Adj Close").to_csv(folder / "MSFT.csv", index=False)

    with caplog.at_level("WARNING", logger="driftline.ingest"):
        loaded = load_data(DataConfig(path=str(folder)))

    frame = loaded.frame
    aapl, msft = frame[frame["symbol"] == "AAPL"], frame[frame["symbol"] == "MSFT"]
    np.testing.assert_allclose(aapl["adj_close"].to_numpy(), vendor_frame["Adj Close"].to_numpy())  # its best column
    np.testing.assert_allclose(
        msft["adj_close"].to_numpy(), vendor_frame["Close"].to_numpy()
    )  # Close stands in (Adj Close is half)
    assert loaded.close_as_adjusted == ("MSFT",)
    (warning,) = loaded.warnings
    assert warning.startswith(f"{folder}/MSFT.csv: no 'Adj Close' values; prices of MSFT come from 'Close'")
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [warning]
    # Not one row quarantined for it (before: every MSFT row, "adj_close: missing").
    report = validate_frame(frame, ContractConfig(), "t", source_values=loaded.source_values(), source=loaded.source)
    assert report.rows_quarantined == 0 and report.rows_clean == 2 * len(vendor_frame)


def test_a_file_without_volume_leaves_the_volume_out_for_every_symbol_with_a_warning(tmp_path, vendor_frame):
    from driftline.config import ContractConfig
    from driftline.contracts import validate_frame

    folder = tmp_path / "panel"
    folder.mkdir()
    vendor_frame.to_csv(folder / "AAPL.csv", index=False)
    vendor_frame.drop(columns="Volume").to_csv(folder / "MSFT.csv", index=False)
    loaded = load_data(DataConfig(path=str(folder)))
    assert "volume" not in loaded.frame.columns and "volume" not in loaded.columns.prices
    (warning,) = loaded.warnings
    assert warning.startswith(f"{folder}/MSFT.csv: no 'Volume' values; the volume is left out for every symbol")
    # Not one row quarantined for it (before: every MSFT row, "volume: missing", and the batch failed).
    report = validate_frame(loaded.frame, ContractConfig(), "t", source_values=loaded.source_values())
    assert report.rows_quarantined == 0 and report.rows_clean == 2 * len(vendor_frame)
    # Every file with its volume: kept.
    vendor_frame.to_csv(folder / "MSFT.csv", index=False)
    again = load_data(DataConfig(path=str(folder)))
    assert "volume" in again.frame.columns and again.warnings == ()


def test_a_close_only_file_beside_ohlcv_files_leaves_open_high_low_and_volume_out_with_one_warning(
    tmp_path, vendor_frame
):
    """An index saved with its close alone (FRED, a two-column export) in a folder of OHLCV stocks: before, every
    one of its rows was quarantined (open, high, low missing) and the batch failed. Now the columns it lacks are
    left out for every symbol, in one warning naming the file and the features lost."""
    from driftline.config import ContractConfig
    from driftline.contracts import validate_frame

    folder = tmp_path / "panel"
    folder.mkdir()
    vendor_frame.drop(columns="Adj Close").to_csv(folder / "AAPL.csv", index=False)
    vendor_frame[["Date", "Close"]].to_csv(folder / "SPX.csv", index=False)
    loaded = load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "stage")
    assert set(loaded.columns.prices) == {"close"} and not {"open", "high", "low", "volume"} & set(loaded.frame)
    (warning,) = loaded.warnings
    assert warning == (
        f"{folder}/SPX.csv: no 'Open', 'High', 'Low', 'Volume' values; open, high, low, volume are left out for "
        "every symbol (their features must be the same: no range_z, close_in_range, volume_z)"
    )
    report = validate_frame(loaded.frame, ContractConfig(), "t", source_values=loaded.source_values())
    assert report.rows_quarantined == 0 and report.rows_clean == 2 * len(vendor_frame)


def test_a_symbol_lacking_adjusted_close_in_one_of_its_files_uses_close_in_all_of_them(tmp_path, vendor_frame):
    """Adjusted and unadjusted prices must not meet in one series: the step would read as a return."""
    folder = tmp_path / "panel"
    folder.mkdir()
    early, late = vendor_frame.iloc[:6].assign(Ticker="AAPL"), vendor_frame.iloc[6:].assign(Ticker="AAPL")
    early.to_csv(folder / "2020a.csv", index=False)
    late.drop(columns="Adj Close").to_csv(folder / "2020b.csv", index=False)
    vendor_frame.assign(Ticker="IBM").to_csv(folder / "ibm.csv", index=False)

    loaded = load_data(DataConfig(path=str(folder)))

    frame = loaded.frame
    aapl, ibm = frame[frame["symbol"] == "AAPL"], frame[frame["symbol"] == "IBM"]
    np.testing.assert_allclose(aapl["adj_close"].to_numpy(), vendor_frame["Close"].to_numpy())
    np.testing.assert_allclose(ibm["adj_close"].to_numpy(), vendor_frame["Adj Close"].to_numpy())
    (warning,) = loaded.warnings
    assert warning.startswith(f"{folder}/2020b.csv: no 'Adj Close' values; prices of AAPL come from 'Close'")
    assert "AAPL use 'Close' in their other files too" in warning


def test_adjusted_close_missing_in_some_rows_of_a_file_stays_missing(tmp_path, vendor_frame):
    """Gaps inside a file's adjusted close are bad rows for the contract, not a reason to switch columns."""
    folder = tmp_path / "panel"
    folder.mkdir()
    vendor_frame.to_csv(folder / "AAPL.csv", index=False)
    vendor_frame.assign(**{"Adj Close": vendor_frame["Adj Close"].where(vendor_frame.index % 2 == 0)}).to_csv(
        folder / "MSFT.csv", index=False
    )

    loaded = load_data(DataConfig(path=str(folder)))

    assert loaded.warnings == () and loaded.close_as_adjusted == ()
    assert loaded.frame.loc[loaded.frame["symbol"] == "MSFT", "adj_close"].isna().sum() == len(vendor_frame) // 2


@pytest.mark.parametrize(
    "values", [["24/03/2010", "13/01/2015", "01/02/2015"], ["03/24/2010", "01/13/2015"], ["2010/03/24", "2015/01/13"]]
)
def test_guessing_the_day_order_warns_nothing(values):
    """Both day orders are tried on purpose; pandas' warning about the one that does not fit stays inside."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parsed = parse_timestamps(pd.Series(values))
    assert parsed.notna().all() and parsed.iloc[1].month == 1 and parsed.iloc[1].day == 13


def test_years_written_as_floats_are_years(tmp_path):
    # bokeh-sampledata's emissions panel: "1950.0" (a year column that went through floats).
    path = tmp_path / "yearly.csv"
    path.write_text("year,value\n1950.0,1.5\n1951.0,1.7\n1952.0,1.6\n")
    frame = load_data(DataConfig(path=str(path), price_col="value")).frame
    assert frame["timestamp"].tolist() == [pd.Timestamp(f"{y}-01-01") for y in (1950, 1951, 1952)]
    assert parse_timestamps(pd.Series([20240102.0, np.nan, 20240103.0])).dropna().tolist() == [
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-03"),
    ]
    path.write_text("year,value\n1950.5,1.5\n1951.25,1.7\n")  # decimal years (NOAA's CO2: 1958.2027)
    frame = load_data(DataConfig(path=str(path), price_col="value")).frame
    assert frame["timestamp"].tolist() == [pd.Timestamp("1950-07-02 12:00"), pd.Timestamp("1951-04-02 06:00")]
    path.write_text("year,value\n-1.5,1.5\n-2.5,1.7\n")  # numbers that are neither
    with pytest.raises(DataError, match=r"column 'year': no value parses as a timestamp \(first value: -1\.5\)$"):
        load_data(DataConfig(path=str(path), price_col="value"))


def test_dates_in_no_single_format_are_read_one_by_one_with_our_warning_not_pandas(tmp_path, caplog, recwarn):
    # No format can be guessed from the leading values: pandas would read each value with dateutil and warn.
    path = tmp_path / "mixed.csv"
    path.write_text("date,close\n" + "3.3.2020 10.30,1\n" * 50 + "March 5 2020,2\n")
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        frame = load_data(DataConfig(path=str(path))).frame
    assert frame["timestamp"].dropna().tolist() == [pd.Timestamp("2020-03-05")]
    assert "mixed.csv: column 'date': no single date format fits its values (first '3.3.2020 10.30')" in caplog.text
    path.write_text("date,close\n3.3.2020 10.30,1\n")  # nothing read: the error, without the warning
    caplog.clear()
    with pytest.raises(DataError, match="no value parses as a timestamp"):
        load_data(DataConfig(path=str(path)))
    assert "no single date format" not in caplog.text
    assert not [w for w in recwarn if "Could not infer format" in str(w.message)]


def test_a_panel_without_a_symbol_column_by_name_is_split_by_the_text_column_that_keys_it(tmp_path, caplog):
    # Yearly emissions per country, as Our World in Data names the key ("Entity"): the file says it by its rows.
    rows = [f"{c},{y},{1 + i + y % 7}" for i, c in enumerate(["Chad", "Peru", "Oman"]) for y in range(1950, 1990)]
    path = tmp_path / "emissions.csv"
    path.write_text("region,Entity,Year,emissions\n" + "\n".join(f"Earth,{r}" for r in rows) + "\n")
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        loaded = load_data(DataConfig(path=str(path)))
    assert loaded.columns.symbol == "Entity"  # "region" does not separate the rows (one value)
    assert sorted(loaded.frame["symbol"].unique()) == ["Chad", "Oman", "Peru"]
    assert "column 'Entity' taken as the symbol" in caplog.text and "--symbol-col" in caplog.text
    assert "region" not in loaded.raw.columns  # the other candidates are not kept
    named = load_data(DataConfig(path=str(path), symbol_col="region"))  # the user's word wins
    assert named.columns.symbol == "region"
    # A key column named as one (bokeh-sampledata's emissions: "country") needs no inference: a batch of one
    # country, whose times do not repeat, is still that country.
    path.write_text("country,year,emissions\n" + "\n".join(r for r in rows if r.startswith("Peru")) + "\n")
    assert set(load_data(DataConfig(path=str(path))).frame["symbol"]) == {"Peru"}
    # An event log whose times repeat, with an id per row: an id is no series key.
    events = tmp_path / "events.csv"
    events.write_text("ts,event,value\n" + "\n".join(f"2020-01-0{1 + i // 4},e{i},{i}" for i in range(36)) + "\n")
    assert load_data(DataConfig(path=str(events), price_col="value")).columns.symbol is None
    # One series with a text column: times do not repeat, nothing is inferred.
    single = tmp_path / "single.csv"
    single.write_text("date,note,close\n" + "\n".join(f"2020-01-{d:02d},n{d},{d}" for d in range(1, 29)) + "\n")
    assert load_data(DataConfig(path=str(single))).columns.symbol is None


def test_a_year_column_with_a_quarter_or_month_column_beside_it_is_one_time(tmp_path, caplog):
    # statsmodels' macrodata: year, quarter (floats), realgdp... 4 rows a year, which the year alone made duplicates.
    path = tmp_path / "macro.csv"
    path.write_text(
        "year,quarter,realgdp\n1959.0,1.0,2710.3\n1959.0,2.0,2778.8\n1959.0,4.0,2785.2\n1960.0,1.0,2847.7\n"
    )
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        loaded = load_data(DataConfig(path=str(path), price_col="realgdp"))
    assert loaded.frame["timestamp"].dt.strftime("%Y-%m-%d").tolist() == [
        "1959-01-01",
        "1959-04-01",
        "1959-10-01",
        "1960-01-01",
    ]
    assert "the time is 'year' and 'quarter' together (1959.0 1.0 is 1959-01-01 00:00)" in caplog.text
    assert loaded.columns.period == "quarter" and "quarter" not in loaded.columns.extra
    path.write_text("Year,Month,value\n2001,11,1.0\n2001,12,2.0\n2002,1,3.0\n2002,13,4.0\n")
    frame = load_data(DataConfig(path=str(path), price_col="value")).frame
    assert frame["timestamp"].dt.strftime("%Y-%m").tolist()[:3] == ["2001-11", "2001-12", "2002-01"]
    assert frame["timestamp"].isna().sum() == 1  # month 13: not a time (the contract quarantines the row)
    # A quarterly panel keyed by a column of another name: the key separates the rows of each year and quarter.
    rows = [f"{r},{y},{q},{100 + q}" for r in ("North", "South") for y in (2001, 2002, 2003) for q in (1, 2, 3, 4)]
    path.write_text("region,year,quarter,value\n" + "\n".join(rows) + "\n")
    panel = load_data(DataConfig(path=str(path), price_col="value"))
    assert panel.columns.symbol == "region" and panel.frame.groupby("symbol")["timestamp"].nunique().tolist() == [
        12,
        12,
    ]
    path.write_text("Year,Month,value\n2001,11,1.0\n2001,12,2.0\n2002,1,3.0\n2002,13,4.0\n")
    named = load_data(DataConfig(path=str(path), price_col="value", time_col="Year")).frame  # as asked: the year alone
    assert named["timestamp"].dt.year.tolist() == [2001, 2001, 2002, 2002] and (named["timestamp"].dt.month == 1).all()


def test_a_date_column_with_a_clock_time_column_beside_it_is_one_time(tmp_path, caplog):
    # MetaTrader and many broker exports: Date 2020.01.02, Time 09:30; the date alone made every bar of a day a
    # duplicate of its first.
    path = tmp_path / "EURUSD_M30.csv"
    path.write_text(
        "Date,Time,Open,High,Low,Close,Volume\n2020.01.02,09:30,1.1,1.2,1.0,1.15,10\n"
        "2020.01.02,10:00,1.15,1.2,1.1,1.12,12\n2020.01.03,00:00,1.12,1.13,1.1,1.11,9\n"
    )
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        frame = load_data(DataConfig(path=str(path))).frame
    assert frame["timestamp"].tolist() == [
        pd.Timestamp("2020-01-02 09:30"),
        pd.Timestamp("2020-01-02 10:00"),
        pd.Timestamp("2020-01-03 00:00"),
    ]
    assert "the time is 'Date' and 'Time' together (2020.01.02 09:30 is 2020-01-02 09:30)" in caplog.text
    # A "time" column that holds whole timestamps is not a clock: the date column is read alone, as before.
    path.write_text("date,time,close\n2020-01-02,2020-01-02 09:30:00,1.0\n2020-01-03,2020-01-03 09:30:00,1.1\n")
    assert load_data(DataConfig(path=str(path))).frame["timestamp"].tolist() == [
        pd.Timestamp("2020-01-02"),
        pd.Timestamp("2020-01-03"),
    ]


def test_headerless_price_files_are_named_by_what_their_columns_hold(tmp_path, caplog):
    # Exchanges' dumps have no header row: Binance's klines (data.binance.vision), Kraken's OHLCVT, HistData
    # (semicolons, yyyymmdd hhmmss), MetaTrader 4's history (a date, then a clock time).
    klines = tmp_path / "BTCUSDT-1h-2024-01.csv"
    line = "{t},42021.13,42038.75,42000.02,42021.13,808.076,{e},1.0,1000,1.0,1.0,0"
    rows = [line.format(t=1704067200000 + i * 3_600_000, e=1704067200000 + (i + 1) * 3_600_000 - 1) for i in range(3)]
    klines.write_text("\n".join(rows) + "\n")
    with caplog.at_level("WARNING", logger="driftline.sources"):
        frame = load_data(DataConfig(path=str(klines))).frame
    assert frame["timestamp"].tolist() == [pd.Timestamp("2024-01-01") + pd.Timedelta(hours=h) for h in range(3)]
    assert frame[["open", "high", "low", "close", "volume"]].iloc[0].tolist() == [
        42021.13,
        42038.75,
        42000.02,
        42021.13,
        808.076,
    ]
    assert (
        "BTCUSDT-1h-2024-01.csv: no header row; its columns read as time, open, high, low, close, volume (high >= "
        "open, close >= low in the first rows), column_7 to column_12 not used" in caplog.text
    )
    assert read_file(klines)[LINE_COLUMN].tolist() == [1, 2, 3]  # no header line above the first row
    mt4 = tmp_path / "EURUSD1440.csv"
    mt4.write_text(
        "2024.01.02,00:00,1.1040,1.1046,1.0940,1.0942,1234\n2024.01.03,00:00,1.0942,1.0950,1.0900,1.0920,99\n"
    )
    assert load_data(DataConfig(path=str(mt4))).frame["timestamp"].tolist() == [
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-03"),
    ]
    histdata = tmp_path / "DAT_ASCII_EURUSD_M1_2024.csv"
    histdata.write_text("20240102 170000;1.104;1.1046;1.094;1.0942;0\n20240102 170100;1.0942;1.095;1.09;1.092;0\n")
    frame = load_data(DataConfig(path=str(histdata))).frame
    assert frame["timestamp"].tolist() == [pd.Timestamp("2024-01-02 17:00"), pd.Timestamp("2024-01-02 17:01")]
    assert frame["close"].tolist() == [1.0942, 1.092]
    # Columns that are not a time, then open, high, low, close: named as a file without a header.
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("1704067200000,42038.75,42021.13,42000.02,42021.13\n")  # high first: 42021.13 < open
    with pytest.raises(DataError, match=r"swapped.csv: no header row .* are not a time, then open, high, low, close"):
        load_data(DataConfig(path=str(swapped)))
    # A bad print (high below low) in the first row of 300 does not unname the file: that row is quarantined.
    bad_print = tmp_path / "EURUSD_M1.csv"
    bars = [f"20240102 {h:02d}{m:02d}00;1.104;1.1046;1.094;1.0942;0" for h in range(5) for m in range(60)]
    bad_print.write_text("\n".join(["20240101 235900;1.104;1.090;1.094;1.0942;0", *bars[1:]]) + "\n")
    assert len(load_data(DataConfig(path=str(bad_print))).frame) == 300
    good, bad = ["20240102", "2", "3", "1", "2"], ["20240102", "2", "1", "3", "2"]  # bad: high below low
    assert _headerless_names([bad] + [good] * 99, ".", "x")[1:5] == ["open", "high", "low", "close"]
    with pytest.raises(DataError, match="no header row"):  # 2 of 100 rows: not a bad print but another order
        _headerless_names([bad] * 2 + [good] * 98, ".", "x")
    with pytest.raises(DataError, match="no header row"):  # under 100 rows, no slip at all
        _headerless_names([bad] + [good] * 98, ".", "x")
    short = tmp_path / "short.csv"
    short.write_text("1,2.5\n2,2.6\n")  # row numbers, not times
    with pytest.raises(DataError, match=r"short.csv: no header row .* add a header row naming them"):
        load_data(DataConfig(path=str(short)))


def test_a_folder_of_one_series_cut_by_month_is_one_symbol_and_instruments_stay_apart(tmp_path, caplog):
    # data.binance.vision's monthly dumps of one pair, headerless: one series, not a symbol per month.
    folder = tmp_path / "klines"
    folder.mkdir()
    start = pd.Timestamp("2024-01-01")
    for month in (1, 2, 3):
        hours = pd.date_range(start + pd.DateOffset(months=month - 1), periods=24 * 5, freq="h")
        ms = hours.astype("int64") // 10**6
        rows = [f"{t},42021.1,42038.7,42000.0,42021.1,808.0,{t + 3_599_999},1.0,1000,1.0,1.0,0" for t in ms]
        (folder / f"BTCUSDT-1h-2024-{month:02d}.csv").write_text("\n".join(rows) + "\n")
    with caplog.at_level("WARNING", logger="driftline"):
        loaded = load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "stage")
    assert loaded.frame["symbol"].unique().tolist() == ["BTCUSDT-1h"]
    assert loaded.columns.describe()["symbol_from"] == "the files' names' common start (BTCUSDT-1h)"
    assert len(loaded.frame) == 3 * 24 * 5 and loaded.frame["timestamp"].is_monotonic_increasing
    told = [r.getMessage() for r in caplog.records]
    assert sum("no header row" in m for m in told) == 1  # one warning for the three files
    assert any("3 files" in m and "BTCUSDT-1h-2024-01.csv ... " in m for m in told if "no header row" in m)
    assert any("its 3 files are one series cut by period" in m and "symbol 'BTCUSDT-1h'" in m for m in told)
    # Tokyo's tickers are numbers: files whose names differ only in digits, but over the same days, are two.
    tokyo = tmp_path / "tokyo"
    tokyo.mkdir()
    for code in ("7203", "6758"):
        pd.DataFrame({"Date": pd.date_range("2024-01-01", periods=10), "Close": 100.0}).to_csv(
            tokyo / f"{code}.csv", index=False
        )
    frame = load_data(DataConfig(path=str(tokyo)), stage_root=tmp_path / "stage").frame
    assert sorted(frame["symbol"].unique()) == ["6758", "7203"]


def test_prices_written_with_their_currency_are_numbers(tmp_path):
    # nasdaq.com's historical download: Close/Last, dollars before every price, newest first.
    path = tmp_path / "HistoricalData_1704500000000.csv"
    path.write_text(
        "Date,Close/Last,Volume,Open,High,Low\n"
        '01/05/2024,$181.18,62379660,$181.99,$182.76,$180.17\n01/04/2024,"$1,181.91",71983570,$182.15,$183.09,$180.88\n'
    )
    frame = load_data(DataConfig(path=str(path))).frame
    assert frame[["open", "high", "low", "close"]].values.tolist() == [
        [182.15, 183.09, 180.88, 1181.91],
        [181.99, 182.76, 180.17, 181.18],
    ]
    # A German export: euros after the number, decimal commas; a column of two currencies stays text.
    euros = tmp_path / "kurse.csv"
    euros.write_text("Datum;Schluss;Notiz\n02.01.2024;1.234,56 €;1 €\n03.01.2024;1.240,00 €;2 $\n")
    frame = load_data(DataConfig(path=str(euros))).frame
    assert frame["close"].tolist() == [1234.56, 1240.0]


def test_the_ecbs_reference_rates_are_a_symbol_per_currency(tmp_path, caplog):
    # eurofxref-hist.csv: a trailing comma on every line (an unnamed, empty column), N/A for a currency
    # no longer quoted (the Cypriot pound), newest first.
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text("Date,USD,JPY,CYP,GBP,\n2024-01-05,1.0921,158.64,N/A,0.86,\n2024-01-04,1.0953,158.38,N/A,0.8622,\n")
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        frame = load_data(DataConfig(path=str(path)), stage_root=tmp_path / "stage").frame
    assert sorted(frame["symbol"].unique()) == ["GBP", "JPY", "USD"] and len(frame) == 6
    assert "no values for CYP: left out" in caplog.text
    assert "Unnamed" not in " ".join(read_file(path).columns)
    # Bloomberg's BDH sheet saved as CSV: Dates, then a column per security.
    sheet = pd.DataFrame({"Dates": ["2024-01-02"], "AAPL US Equity": [185.6], "SPX Index": [4742.8]})
    columns = detect_columns(sheet, DataConfig(), "bdh.csv", need_target=False)
    assert columns.time == "Dates" and columns.wide == ("AAPL US Equity", "SPX Index")


def test_a_wide_table_of_months_is_named_as_such(tmp_path):
    # bokeh-sampledata's unemployment1948 and statsmodels' elnino: Year, Jan ... Dec (and Annual).
    path = tmp_path / "unemployment1948.csv"
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    path.write_text("Year," + ",".join(months) + ",Annual\n1948," + ",".join(["3.4"] * 13) + "\n")
    with pytest.raises(DataError, match=r"pass --price-col \(a wide table: a column per month, a row per year"):
        load_data(DataConfig(path=str(path)))


def test_a_wide_table_of_tickers_is_read_long_and_other_wide_tables_are_told_how_to_reshape(tmp_path, caplog):
    """Closes side by side, a column per ticker (``yf.download([...])["Close"].to_csv()``): a row per time and
    ticker, a ticker's empty cells before its listing dropped, a bad cell quarantined with its line and ticker.
    Columns not named like tickers are not guessed: the error shows the melt that makes them long."""
    from driftline.pipeline import validate_loaded

    path = tmp_path / "closes.csv"
    frame = pd.DataFrame(
        {"Date": pd.bdate_range("2024-01-01", periods=120).strftime("%Y-%m-%d"), "AAPL": 185.0, "BRK-B": 360.0}
    )
    frame["^GSPC"] = 4700.0
    frame.loc[:9, "BRK-B"] = None  # listed ten days later
    frame.loc[20, "BRK-B"] = -1.0
    frame.to_csv(path, index=False)
    with caplog.at_level("WARNING", logger="driftline.ingest"):
        loaded = load_data(DataConfig(path=str(path)), stage_root=tmp_path / "stage")
    assert loaded.frame.groupby("symbol").size().to_dict() == {"AAPL": 120, "BRK-B": 110, "^GSPC": 120}
    assert "each of 3 columns named like a ticker (AAPL, BRK-B, ^GSPC) is that symbol's close" in caplog.text
    assert loaded.columns.describe()["symbols_by_column"] == ["AAPL", "BRK-B", "^GSPC"]
    report = validate_loaded(loaded, ContractConfig(), "t")
    assert report.quarantined["reason"].tolist() == ["close: must be > 0 (got -1.0)"]
    rows = loaded.source_rows(report.quarantined["source_row"])
    assert rows[["symbol", LINE_COLUMN, "Date"]].values.tolist() == [["BRK-B", 22, "2024-01-29"]]

    sensors = tmp_path / "sensors.csv"
    sensors.write_text("date,north,south,east\n2000-03-01,4.19,73.67,30.23\n2000-03-02,3.92,75.78,30.5\n")
    with pytest.raises(DataError) as caught:
        load_data(DataConfig(path=str(sensors)), stage_root=tmp_path / "stage1")
    assert "numeric columns are ['north', 'south', 'east']; pass --price-col (or, if each column is one symbol's" in (
        str(caught.value)
    )
    assert "df.melt(id_vars=['date'], var_name='symbol', value_name='close')" in str(caught.value)
    # A label series' columns are its features, whatever their names.
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("date,AAPL,MSFT,y\n2000-03-01,4.19,30.23,1\n2000-03-02,3.92,30.5,0\n")
    features = load_data(DataConfig(path=str(labelled), target_col="y"), need_target=True).columns.extra
    assert features == ("AAPL", "MSFT")
    panel = tmp_path / "panel.csv"
    panel.write_text("date,symbol,BID,ASK\n2000-03-01,A,4.19,4.2\n2000-03-01,B,3.92,3.93\n")
    with pytest.raises(DataError) as caught:
        load_data(DataConfig(path=str(panel)), stage_root=tmp_path / "stage2")
    assert "pass --price-col" in str(caught.value) and "melt" not in str(caught.value)


def test_the_early_column_check_leaves_what_it_cannot_read_to_the_run(tmp_path):
    from driftline.ingest import check_columns

    broken = tmp_path / "bars.parquet"
    broken.write_bytes(b"PAR1 not really parquet PAR1")
    check_columns(DataConfig(path=str(broken)), need_target=False)  # no header to judge: the run reports it
    good = tmp_path / "px.csv"
    good.write_text("when,px\n2020-01-01,1.0\n")
    check_columns(DataConfig(path=str(good), time_col="when"), need_target=False)  # prices are not judged here
    with pytest.raises(DataError, match=r"px\.csv: time column 'date' not found"):
        check_columns(DataConfig(path=str(good), time_col="date"), need_target=False)


def test_a_feature_named_like_a_canonical_column_is_kept_as_a_feature(tmp_path):
    from driftline.config import ContractConfig, FeatureConfig, TargetConfig
    from driftline.features import KNOWN_LABEL, build_features
    from driftline.ingest import RESERVED_COLUMNS, feature_column
    from driftline.pipeline import validate_loaded

    assert KNOWN_LABEL in RESERVED_COLUMNS and feature_column("High") == "high_feature"
    rng = np.random.default_rng(2)
    n = 400
    path = tmp_path / "cgm.csv"
    pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="5min"),
            "high": rng.integers(0, 2, n).astype(float),  # a 0/1 reading-above-140 flag, not a price
            "y": rng.normal(size=n),  # a feature that happens to be called y
            "label": rng.integers(0, 2, n),
        }
    ).to_csv(path, index=False)
    loaded = load_data(DataConfig(path=str(path), target_col="label"), need_target=True)
    assert loaded.columns.extra == ("high", "y") and loaded.columns.prices == {}
    report = validate_loaded(loaded, ContractConfig(min_rows_per_symbol=10), "unit")
    assert report.rows_quarantined == 0  # the flag's zeros are not prices that must be > 0
    features = build_features(report.clean, FeatureConfig(), TargetConfig(kind="label"), min_class_rows=5)
    assert {"high_feature", "y_feature"} <= set(features.feature_names)
    assert features.X["high_feature"].isin([0.0, 1.0]).all()
