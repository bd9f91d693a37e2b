"""The out-of-core feature store gives what build_features gives in memory, one symbol at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.config import ContractConfig
from driftline.errors import DataError, ValidationFailed
from driftline.feature_store import FeatureStore, build_feature_store
from driftline.features import LEVEL_COLUMN, build_features


def _stage(frame: pd.DataFrame, root: Path) -> Path:
    """The canonical panel as a hive-partitioned Parquet dataset, one directory per symbol."""
    frame.to_parquet(root, partition_cols=["symbol"])
    return root


def _build(frame: pd.DataFrame, root: Path, features, target, **options):
    """``frame`` staged under ``root`` and built into ``root / "store"``."""
    return build_feature_store(
        _stage(frame, root / "stage"), root / "store", ContractConfig(), features, target, **options
    )


def test_store_equals_in_memory_features(panel, small_features, vol_target, tmp_path):
    built = _build(panel, tmp_path, small_features, vol_target, validate=False)  # the contract: a later test
    expected = build_features(panel, small_features, vol_target)
    store = built.store
    assert built.rows_in == len(panel) and built.rows_quarantined == 0
    # Every feature but the series level (the streamed path shrinks toward its window's share: no level).
    names = [n for n in expected.feature_names if n != LEVEL_COLUMN]
    assert store.feature_names == tuple(names) != expected.feature_names
    got = store.read()
    assert len(got.y) == len(expected.y) == store.n_rows
    np.testing.assert_array_equal(got.y, expected.y.to_numpy())
    np.testing.assert_array_equal(got.meta["timestamp"].to_numpy(), expected.times)
    np.testing.assert_array_equal(got.meta["symbol"].to_numpy(), expected.meta["symbol"].astype(str).to_numpy())
    assert got.X.dtype == np.float32
    np.testing.assert_array_equal(got.X, expected.X[names].to_numpy())  # both at float32 precision
    np.testing.assert_allclose(got.meta["next_return"], expected.meta["next_return"], rtol=1e-6, atol=1e-7)
    # Batches of whole timestamps, read over a middle range, are those rows of the whole.
    parts = list(store.batches(101, 401, batch_rows=64))
    assert all(len(set(b.meta["timestamp"])) * 2 >= len(b.y) for b in parts)
    np.testing.assert_array_equal(np.concatenate([b.y for b in parts]), expected.y.to_numpy()[101:401])
    np.testing.assert_array_equal(np.concatenate([b.X for b in parts]), got.X[101:401])
    # The symbol's files only: one partition per symbol, float32 columns.
    assert sorted(p.name for p in store.path.glob("symbol=*")) == [
        f"symbol={s}" for s in sorted(panel["symbol"].unique())
    ]


def test_a_symbol_with_a_slash_is_one_partition_read_back_by_its_name(panel, small_features, vol_target, tmp_path):
    """Crypto pairs are often spelled "BTC/USDT": the symbol's folder is URI-encoded, not two folders."""
    pairs = panel.assign(
        symbol=panel["symbol"].map(dict(zip(sorted(panel["symbol"].unique()), ["BTC/USDT", "ETH/USDT"], strict=True)))
    )
    store = _build(pairs, tmp_path, small_features, vol_target).store
    assert sorted(p.name for p in store.path.iterdir() if p.is_dir()) == ["symbol=BTC%2FUSDT", "symbol=ETH%2FUSDT"]
    assert set(store.read().meta["symbol"]) == {"BTC/USDT", "ETH/USDT"} == set(store.symbols)


def test_quarantine_counts_per_partition_and_over_all(panel, small_features, vol_target, tmp_path):
    bad = panel.copy()
    first = bad.index[bad["symbol"] == bad["symbol"].iloc[0]][:3]
    bad.loc[first, "close"] = -1.0  # non-positive prices: quarantined rows of one symbol
    built = _build(bad, tmp_path, small_features, vol_target, quarantine_dir=tmp_path / "quarantine")
    assert built.rows_quarantined == 3 and built.rows_clean == len(panel) - 3
    assert len(pd.read_parquet(next((tmp_path / "quarantine").glob("symbol=*/rows.parquet")))) == 3
    with pytest.raises(ValidationFailed, match=r"3 of 600 rows .*above contract.max_quarantine_fraction"):
        build_feature_store(
            tmp_path / "stage",
            tmp_path / "store2",
            ContractConfig(max_quarantine_fraction=0.0001),
            small_features,
            vol_target,
        )


def test_bad_inputs_name_the_problem(tmp_path, small_features, vol_target):
    pd.DataFrame({"ts": pd.date_range("2020", periods=3), "close": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"x.parquet.*missing \['symbol', 'timestamp'\]"):
        build_feature_store(tmp_path / "x.parquet", tmp_path / "s", ContractConfig(), small_features, vol_target)
    with pytest.raises(DataError, match="not a feature store"):
        FeatureStore(tmp_path)


def test_a_spilled_store_reads_what_the_store_reads(panel, small_features, vol_target, tmp_path):
    """The walk-forward's scratch copy (``FeatureStore.spilled``): every range gives the rows, values and meta
    of the Parquet store, across the copy's own batch edges, on a panel whose timestamps hold one or two
    rows; rows past its stop are refused, and the folder is gone afterwards."""
    first = sorted(panel["symbol"].unique())[0]
    gappy = panel.drop(panel.index[panel["symbol"] == first][120:150])  # 30 days with one symbol only
    store = _build(gappy, tmp_path, small_features, vol_target, validate=False).store
    n = store.n_rows
    stop = n - 7
    with store.spilled(stop, batch_rows=16) as spilled:  # written in batches of 64 rows: many edges
        folder = spilled._features_path.parent
        assert folder.parent == store.path.parent and folder.name.startswith(".driftline-spill-")
        assert spilled.n_rows == stop and spilled.feature_names == store.feature_names
        np.testing.assert_array_equal(spilled.times, store.times[:stop])
        rng = np.random.default_rng(0)
        ranges = [(0, stop), (0, 1), (stop - 1, stop), (63, 65)]
        ranges += [tuple(int(v) for v in sorted(rng.choice(stop + 1, 2, replace=False))) for _ in range(25)]
        for a, b in ranges:
            want, got = store.read(a, b), spilled.read(a, b)
            assert got.X.dtype == np.float32 and got.X.shape == (b - a, len(store.feature_names))
            np.testing.assert_array_equal(got.X, want.X)
            np.testing.assert_array_equal(got.y, want.y)
            pd.testing.assert_frame_equal(got.meta, want.meta)
        whole = np.concatenate([b.X for b in spilled.batches(0, stop, batch_rows=50)])
        np.testing.assert_array_equal(whole, store.read(0, stop).X)
        with pytest.raises(ValueError, match="outside"):
            spilled.read(0, n)
    assert not folder.exists()


def test_a_short_symbol_is_set_aside_in_the_streamed_path_too(panel, small_features, vol_target, tmp_path):
    """The streamed path validates one symbol at a time: a symbol with too few clean rows goes to the
    quarantine with the reason, as in memory, and the others are the store; with ``short_symbols: fail``, or
    when no symbol is long enough, the run stops naming them."""
    from driftline.errors import InsufficientDataError

    short_one = sorted(panel["symbol"].unique())[0]
    cut = panel.drop(panel.index[panel["symbol"] == short_one][50:])  # 50 rows left, fewer than 100
    stage = _stage(cut, tmp_path / "stage")
    contract = ContractConfig(max_quarantine_fraction=0.5)
    built = build_feature_store(
        stage, tmp_path / "store", contract, small_features, vol_target, quarantine_dir=tmp_path / "q"
    )
    assert set(built.store.symbols) == set(panel["symbol"]) - {short_one}
    assert built.rows_quarantined == 50 and built.rows_clean == len(cut) - 50
    aside = pd.read_parquet(next((tmp_path / "q").glob("symbol=*/rows.parquet")))
    assert len(aside) == 50
    assert set(aside["reason"]) == {f"symbol {short_one}: 50 clean rows, fewer than contract.min_rows_per_symbol (100)"}
    with pytest.raises(InsufficientDataError, match=rf"\(need 100, contract.min_rows_per_symbol\): {short_one}: 50$"):
        build_feature_store(
            stage, tmp_path / "s2", contract.model_copy(update={"short_symbols": "fail"}), small_features, vol_target
        )
    with pytest.raises(InsufficientDataError, match=r"need 400, contract.min_rows_per_symbol\): .*: 50, .*: 300$"):
        build_feature_store(
            stage,
            tmp_path / "s3",
            contract.model_copy(update={"min_rows_per_symbol": 400, "max_quarantine_fraction": 1.0}),
            small_features,
            vol_target,
        )


def test_a_streamed_failure_names_the_checks_and_the_ways_on_as_in_memory(panel, small_features, vol_target, tmp_path):
    """Validated one symbol at a time, the failure still says which checks set most rows aside (summed over the
    symbols, the first symbol's example shown), that prices must be > 0, and which symbols the data does not
    cover with the setting that would let the run go on without them."""
    from driftline.contracts import PRICE_SIGN_HINT

    bad = panel.copy()
    gone, kept = sorted(bad["symbol"].unique())
    bad.loc[bad["symbol"] == gone, "close"] = -1.0
    bad.loc[bad.index[bad["symbol"] == kept][:3], "close"] = -1.0
    with pytest.raises(ValidationFailed) as info:
        _build(bad, tmp_path, small_features, vol_target)
    message = str(info.value)
    assert "303 of 600 rows (50.5%) were quarantined, above contract.max_quarantine_fraction" in message
    assert f"; most rows: close: must be > 0 and <= 1e+12: 303 rows in 2 symbols, e.g. in {gone}: -1.0 (" in message
    assert PRICE_SIGN_HINT in message
    assert f"300 of those rows are the whole of 1 of the 2 symbols, left with nothing to train on ({gone}: " in message
    assert message.endswith("with --set contract.max_quarantine_fraction=0.51")


def test_a_streamed_message_names_the_file_when_the_source_has_several(panel, small_features, vol_target, tmp_path):
    """A folder of one file per symbol: each symbol's rows come from one file, but the source has several, so
    a row is named by its file and line, as the in-memory path names it (before: "line 9" of no file)."""
    from driftline.sources import LINE_COLUMN, OBJECT_COLUMN

    staged = panel.sort_values(["symbol", "timestamp"]).reset_index(drop=True)
    first, second = sorted(staged["symbol"].unique())
    staged[OBJECT_COLUMN] = staged["symbol"].map({first: "a.csv", second: "b.csv"})
    staged[LINE_COLUMN] = staged.groupby("symbol").cumcount() + 2  # the header is line 1
    staged.loc[staged.index[staged["symbol"] == second][7], "close"] = -1.0
    contract = ContractConfig(max_quarantine_fraction=0.0)
    with pytest.raises(ValidationFailed, match=r"-1\.0 \(b\.csv line 9\)"):
        build_feature_store(
            _stage(staged, tmp_path / "stage"), tmp_path / "store", contract, small_features, vol_target
        )
    # One file for the whole source: its lines alone, as in memory.
    staged[OBJECT_COLUMN] = "one.csv"
    with pytest.raises(ValidationFailed, match=r"-1\.0 \(line 9\)"):
        build_feature_store(_stage(staged, tmp_path / "one"), tmp_path / "store", contract, small_features, vol_target)


def test_the_store_holds_no_series_level(panel, small_features, vol_target, tmp_path):
    """The streamed path's models shrink toward their window's share: ``features.level_window`` adds nothing to
    the store (the in-memory features carry it)."""
    features = small_features.model_copy(update={"level_window": 30})
    store = _build(panel, tmp_path, features, vol_target, validate=False).store
    expected = build_features(panel, features, vol_target)
    assert LEVEL_COLUMN in expected.feature_names
    assert store.feature_names == tuple(n for n in expected.feature_names if n != LEVEL_COLUMN)
