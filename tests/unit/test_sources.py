"""Sources: globs, Hive-partitioned folders, the staged manifest and incremental reads."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from driftline.config import DataConfig
from driftline.errors import DataError
from driftline.ingest import load_data
from driftline.sources import LocalSource, open_source, partition_values, read_staged, stage_source


def _day_frame(symbol: str, day: str, n: int = 24, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range(day, periods=n, freq="h")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame({"ts": times, "close": close, "volume": rng.integers(1, 1000, n), "unused_note": "x"})


def _write_partition(root, symbol: str, day: str, seed: int = 0) -> None:
    folder = root / f"symbol={symbol}" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    _day_frame(symbol, day, seed=seed).to_parquet(folder / "part-0.parquet", index=False)


@pytest.fixture
def partitioned(tmp_path):
    root = tmp_path / "candles"
    for symbol in ("BTC", "ETH"):
        for i, day in enumerate(("2024-01-01", "2024-01-02")):
            _write_partition(root, symbol, day, seed=i)
    return root


def test_partition_values_come_from_hive_folders():
    assert partition_values("symbol=BTC/date=2024-01-01/part-0.parquet") == {"symbol": "BTC", "date": "2024-01-01"}
    assert partition_values("plain/part.parquet") == {}


def test_hive_folder_gives_partition_columns_and_only_needed_columns(partitioned, tmp_path):
    loaded = load_data(DataConfig(path=str(partitioned)), stage_root=tmp_path / "stage")
    assert set(loaded.frame["symbol"]) == {"BTC", "ETH"}
    assert len(loaded.frame) == 4 * 24
    # Projection: the detected columns are read; the note column nobody needs is not.
    assert "unused_note" not in loaded.raw.columns
    assert {"ts", "close", "volume", "symbol"} <= set(loaded.raw.columns)
    assert loaded.stats.objects == 4 and len(loaded.stats.new) == 4


def test_second_run_with_one_new_partition_reads_only_that_partition(partitioned, tmp_path):
    stage = tmp_path / "stage"
    first = load_data(DataConfig(path=str(partitioned)), stage_root=stage)
    _write_partition(partitioned, "BTC", "2024-01-03", seed=5)
    second = load_data(DataConfig(path=str(partitioned)), stage_root=stage)
    assert second.stats.new == ("symbol=BTC/date=2024-01-03/part-0.parquet",)
    assert second.stats.unchanged == 4 and second.stats.changed == ()
    assert len(second.frame) == len(first.frame) + 24
    assert second.content_hash != first.content_hash
    fresh = load_data(DataConfig(path=str(partitioned)), stage_root=tmp_path / "other-stage")
    assert fresh.content_hash == second.content_hash
    pd.testing.assert_frame_equal(
        fresh.frame.reset_index(drop=True), second.frame.reset_index(drop=True), check_like=True
    )


def test_rerun_on_the_same_input_reads_nothing_and_is_identical(partitioned, tmp_path):
    stage = tmp_path / "stage"
    first = load_data(DataConfig(path=str(partitioned)), stage_root=stage)
    again = load_data(DataConfig(path=str(partitioned)), stage_root=stage)
    assert again.stats.read == () and again.stats.unchanged == 4
    assert again.content_hash == first.content_hash
    pd.testing.assert_frame_equal(first.frame, again.frame)


def test_changed_and_removed_objects_are_noticed(partitioned, tmp_path):
    stage = tmp_path / "stage"
    load_data(DataConfig(path=str(partitioned)), stage_root=stage)
    changed = partitioned / "symbol=ETH" / "date=2024-01-02" / "part-0.parquet"
    frame = pd.read_parquet(changed)
    frame.loc[0, "close"] = 123.0
    frame.to_parquet(changed, index=False)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    (partitioned / "symbol=BTC" / "date=2024-01-01" / "part-0.parquet").unlink()
    loaded = load_data(DataConfig(path=str(partitioned)), stage_root=stage)
    assert loaded.stats.changed == ("symbol=ETH/date=2024-01-02/part-0.parquet",)
    assert loaded.stats.removed == ("symbol=BTC/date=2024-01-01/part-0.parquet",)
    assert 123.0 in loaded.frame["close"].to_numpy()
    assert len(loaded.frame) == 3 * 24


def test_incremental_off_reads_everything(partitioned, tmp_path):
    stage = tmp_path / "stage"
    load_data(DataConfig(path=str(partitioned)), stage_root=stage)
    again = load_data(DataConfig(path=str(partitioned), incremental=False), stage_root=stage)
    assert len(again.stats.read) == 4


def test_manifest_records_fingerprint_hash_and_rows(partitioned, tmp_path):
    staged = stage_source(LocalSource(str(partitioned)), tmp_path / "stage")
    manifest = json.loads(staged.manifest_path.read_text())
    entry = manifest["objects"]["symbol=BTC/date=2024-01-01/part-0.parquet"]
    assert entry["rows"] == 24 and len(entry["sha256"]) == 64 and entry["fingerprint"]


def test_glob_selects_matching_files_only(tmp_path):
    for name in ("AAA.csv", "BBB.csv"):
        _day_frame(name, "2024-01-01").to_csv(tmp_path / name, index=False)
    _day_frame("x", "2024-01-01").to_csv(tmp_path / "skip.txt", index=False)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "other.tsv", index=False)
    loaded = load_data(DataConfig(path=str(tmp_path / "*.csv")))
    assert set(loaded.frame["symbol"]) == {"AAA", "BBB"}
    assert loaded.files == ("AAA.csv", "BBB.csv")


def test_a_folder_of_txt_files_is_read_through_the_glob_its_error_names(tmp_path):
    """Kaggle's "Huge Stock Market Dataset" (Stooq's files): a folder of ``aapl.us.txt`` files, comma-separated.
    The folder alone holds no data files by name, and the error says which glob reads them; that glob reads
    every file it names, each file's stem the symbol. A .tsv file is a data file in a folder."""
    stocks = tmp_path / "Stocks"
    stocks.mkdir()
    for name in ("aapl.us", "ibm.us"):
        _day_frame(name, "2024-01-01").to_csv(stocks / f"{name}.txt", index=False)
    with pytest.raises(
        DataError,
        match=rf"Stocks: folder holds no .* files \(it holds 2 \.txt files: to read "
        rf"them, pass a glob: '{stocks}/\*\*/\*\.txt'\)",
    ):
        load_data(DataConfig(path=str(stocks)), stage_root=tmp_path / "s0")
    loaded = load_data(DataConfig(path=str(stocks / "*.txt")), stage_root=tmp_path / "s1")
    assert set(loaded.frame["symbol"]) == {"aapl.us", "ibm.us"} and loaded.files == ("aapl.us.txt", "ibm.us.txt")
    tsv = tmp_path / "tsv"
    tsv.mkdir()
    _day_frame("X", "2024-01-01").to_csv(tsv / "x.tsv", sep="\t", index=False)
    assert set(load_data(DataConfig(path=str(tsv)), stage_root=tmp_path / "s2").frame["symbol"]) == {"x"}


def test_glob_without_matches_is_named(tmp_path):
    with pytest.raises(DataError, match=r"\*\.parquet: the pattern matches no"):
        load_data(DataConfig(path=str(tmp_path / "*.parquet")))


def test_integer_and_float_columns_across_files_unify(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    a = _day_frame("A", "2024-01-01")
    b = _day_frame("B", "2024-01-02")
    a["volume"] = a["volume"].astype("int64")
    b["volume"] = b["volume"].astype("float64") + 0.5
    a.to_parquet(folder / "A.parquet", index=False)
    b.to_parquet(folder / "B.parquet", index=False)
    loaded = load_data(DataConfig(path=str(folder)))
    assert loaded.frame["volume"].dtype == np.float64
    assert len(loaded.frame) == 48


def test_a_folder_of_csv_and_parquet_files_whose_dates_differ_in_type_is_read_with_a_warning(tmp_path, caplog):
    """Dates as text in a CSV beside real timestamps in a Parquet file: Arrow cannot unify the column (before: a
    raw ArrowTypeError from the run); it is read as text from every file, told once, and parsed as times."""
    import logging

    folder = tmp_path / "mixed"
    folder.mkdir()
    first, second = _day_frame("BTC", "2024-01-01"), _day_frame("ETH", "2024-01-01", seed=1)
    first.assign(ts=first["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(folder / "BTC.csv", index=False)
    second.to_parquet(folder / "ETH.parquet", index=False)
    with caplog.at_level(logging.WARNING, logger="driftline.sources"):
        loaded = load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "stage")
    frame = loaded.frame
    assert sorted(frame["symbol"].unique()) == ["BTC", "ETH"] and len(frame) == 48
    for symbol, source in (("BTC", first), ("ETH", second)):
        assert frame.loc[frame["symbol"] == symbol, "timestamp"].tolist() == source["ts"].tolist()
    told = [r.getMessage() for r in caplog.records if "is text in some files" in r.getMessage()]
    assert told == ["column 'ts' is text in some files and not in others (ETH.parquet: timestamp[ns]): read as text"]


def test_source_rows_returns_every_original_column_with_its_file_and_line(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("AAA", "BBB"):
        _day_frame(name, "2024-01-01").to_csv(folder / f"{name}.csv", index=False)
    loaded = load_data(DataConfig(path=str(folder)), stage_root=tmp_path / "stage")
    bbb_row = loaded.frame.index[loaded.frame["symbol"] == "BBB"][3]
    rows = loaded.source_rows([bbb_row])
    assert rows.loc[bbb_row, "unused_note"] == "x"
    assert rows.loc[bbb_row, "__source_object"] == "BBB.csv"
    # The 1-based line in the file (the header is line 1): the fourth data row is line 5, as an editor shows it.
    assert rows.loc[bbb_row, "__source_line"] == 5
    line = (folder / "BBB.csv").read_text().splitlines()[5 - 1]
    assert line.split(",")[0] == str(rows.loc[bbb_row, "ts"]) == "2024-01-01 03:00:00", line


def test_read_staged_keeps_source_order(partitioned, tmp_path):
    staged = stage_source(open_source(str(partitioned)), tmp_path / "stage")
    frame = read_staged(staged)
    assert list(frame["__source_object"].drop_duplicates()) == list(staged.keys)
    assert (frame.groupby("__source_object")["__source_line"].diff().dropna() == 1).all()


def test_preflight_names_an_empty_unreadable_or_missing_local_source_and_passes_good_ones(partitioned, tmp_path):
    from driftline.sources import preflight

    preflight(str(partitioned))  # a Hive folder of good files
    preflight("s3://bucket/prefix/")  # not listed here: the flow checks it
    good = tmp_path / "good.csv"
    good.write_text("Date,Close\n2024-01-01,1\n")
    preflight(str(good))

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.csv").write_text("Date,Close\n2024-01-01,1\n")
    (folder / "b.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"folder/b\.csv: file is empty"):
        preflight(str(folder))
    (folder / "b.csv").write_bytes(b"Date,Close\n" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"b\.csv: not text"):
        preflight(str(folder))
    (folder / "b.csv").write_bytes(b"   \n\n")
    with pytest.raises(DataError, match=r"b\.csv: file is empty"):
        preflight(str(folder))
    with pytest.raises(DataError, match=r"missing\.csv: no such file or folder$"):
        preflight(str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match=r"folde: no such file or folder; did you mean .*/folder/\?$"):
        preflight(str(tmp_path / "folde"))
    with pytest.raises(DataError, match=r"b\.cvs: no such file or folder; did you mean .*/folder/b\.csv\?$"):
        preflight(str(folder / "b.cvs"))
    with pytest.raises(DataError, match=r"matches no \.csv"):
        preflight(str(tmp_path / "nothing-*.csv"))


SHADOW = "root:$6$S3cr3tHashNeverEcho$abcdefghij:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"


def test_a_headerless_private_file_is_refused_without_echoing_its_lines(tmp_path, caplog):
    """`--data /etc/shadow`: the error names the file and the problem, never its first line; its staged copy is
    private (0600 in 0700 folders) whatever the umask."""
    import logging
    import stat

    secret = tmp_path / "shadow"
    secret.write_text(SHADOW)
    stage = tmp_path / "home" / "ingest"
    old = os.umask(0o022)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(DataError) as caught:
            load_data(DataConfig(path=str(secret)), stage_root=stage)
    finally:
        os.umask(old)
    message = str(caught.value)
    assert str(secret) in message and "no time column found" in message and "not shown" in message
    for fragment in ("root:", "S3cr3t", "daemon", "19000"):
        assert fragment not in message and fragment not in caplog.text, fragment
    made = [stage, *stage.rglob("*")]
    assert any(p.suffix == ".parquet" for p in made)
    for path in made:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def test_a_missing_column_lists_only_names_that_look_like_a_header(tmp_path):
    data = tmp_path / "prices.csv"
    data.write_text("date,close,ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7+key=\n2020-01-01,1.0,x\n")
    with pytest.raises(DataError) as caught:
        load_data(DataConfig(path=str(data), price_col="price"), stage_root=tmp_path / "stage")
    message = str(caught.value)
    assert (
        "price column 'price' not found" in message and "'date', 'close'" in message and "1 column name(s)" in message
    )
    assert "AAAAB3" not in message


def test_unchanged_stage_gives_the_stage_hash_without_touching_the_stage_and_none_once_anything_changed(
    partitioned, tmp_path
):
    """What `driftline train` checks before Prefect starts: a rerun candidate only when nothing is new."""
    from driftline.ingest import stage_data, unchanged_data

    stage = tmp_path / "stage"
    config = DataConfig(path=str(partitioned))
    assert unchanged_data(config, stage) is None  # nothing staged yet
    first = stage_data(config, stage)
    content, stats = unchanged_data(config, stage)
    assert content == first.content_hash and stats.read == () and stats.unchanged == stats.objects == 4

    _write_partition(partitioned, "BTC", "2024-01-03", seed=5)
    assert unchanged_data(config, stage) is None
    assert unchanged_data(config, stage) is None  # it staged nothing: the flow still finds the partition new
    assert stage_data(config, stage).stats.new == ("symbol=BTC/date=2024-01-03/part-0.parquet",)
    assert unchanged_data(config, stage) is not None
    removed = next(partitioned.rglob("*.parquet"))
    removed.unlink()
    assert unchanged_data(config, stage) is None
    assert unchanged_data(DataConfig(path=str(partitioned), incremental=False), stage) is None
