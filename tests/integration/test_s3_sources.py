"""s3:// sources against a real S3-compatible server (moto's server mode) on 127.0.0.1: boto3 over HTTP."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest

from driftline.config import DataConfig
from driftline.errors import DataError, SourceUnavailable
from driftline.ingest import load_data
from driftline.sources import S3Source
from driftline.synthetic import make_ohlcv_panel
from tests.integration.test_cli import run_cli
from tests.servers import free_port, restricted_user, s3_server

BUCKET = "market-data"


def _day(day: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range(day, periods=24, freq="h")
    return pd.DataFrame(
        {"ts": times, "close": 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 24))), "volume": rng.integers(1, 99, 24)}
    )


def _put_parquet(client, key: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    client.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("moto")) as endpoint:
        client = endpoint.client()
        client.create_bucket(Bucket=BUCKET)
        for symbol in ("BTC", "ETH"):
            for i, day in enumerate(("2024-01-01", "2024-01-02")):
                _put_parquet(client, f"candles/symbol={symbol}/date={day}/part-0.parquet", _day(day, i))
        client.put_object(Bucket=BUCKET, Key="candles/_SUCCESS", Body=b"")
        yield endpoint


@pytest.fixture
def s3_env(s3, monkeypatch):
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return s3


def test_partitioned_prefix_reads_every_partition_over_http(s3_env, tmp_path):
    loaded = load_data(DataConfig(path=f"s3://{BUCKET}/candles/"), stage_root=tmp_path / "stage")
    assert set(loaded.frame["symbol"]) == {"BTC", "ETH"}
    assert len(loaded.frame) == 96
    assert loaded.stats.objects == 4 and len(loaded.stats.new) == 4  # _SUCCESS is not data
    assert loaded.source == f"s3://{BUCKET}/candles/"


def test_new_object_is_the_only_one_read_and_rerun_reads_nothing(s3_env, tmp_path):
    stage = tmp_path / "stage"
    client = s3_env.client()
    first = load_data(DataConfig(path=f"s3://{BUCKET}/candles"), stage_root=stage)
    key = "candles/symbol=SOL/date=2024-01-01/part-0.parquet"
    _put_parquet(client, key, _day("2024-01-01", 9))
    try:
        second = load_data(DataConfig(path=f"s3://{BUCKET}/candles"), stage_root=stage)
        assert second.stats.new == ("symbol=SOL/date=2024-01-01/part-0.parquet",)
        assert second.stats.unchanged == 4
        assert len(second.frame) == len(first.frame) + 24
        third = load_data(DataConfig(path=f"s3://{BUCKET}/candles"), stage_root=stage)
        assert third.stats.read == () and third.content_hash == second.content_hash
        # Same bytes uploaded again under the same key: same ETag, nothing read.
        _put_parquet(client, key, _day("2024-01-01", 9))
        assert load_data(DataConfig(path=f"s3://{BUCKET}/candles"), stage_root=stage).stats.read == ()
        # Different bytes: the ETag changes and only that object is read again.
        _put_parquet(client, key, _day("2024-01-01", 10))
        fourth = load_data(DataConfig(path=f"s3://{BUCKET}/candles"), stage_root=stage)
        assert fourth.stats.changed == ("symbol=SOL/date=2024-01-01/part-0.parquet",) and fourth.stats.new == ()
        assert fourth.content_hash != second.content_hash
    finally:
        client.delete_object(Bucket=BUCKET, Key=key)


def test_single_csv_key(s3_env, tmp_path):
    panel = make_ohlcv_panel(n_symbols=1, n_days=50, seed=1)
    s3_env.client().put_object(Bucket=BUCKET, Key="files/prices.csv.gz", Body=_gzip(panel.to_csv(index=False)))
    loaded = load_data(DataConfig(path=f"s3://{BUCKET}/files/prices.csv.gz"))
    assert len(loaded.frame) == 50
    np.testing.assert_allclose(np.sort(loaded.frame["close"].to_numpy()), np.sort(panel["Close"].to_numpy()))
    # A key named in full is read whatever its kind: an API's response saved as JSON.
    s3_env.client().put_object(Bucket=BUCKET, Key="api/bars.json", Body=panel.to_json(orient="records").encode())
    assert len(load_data(DataConfig(path=f"s3://{BUCKET}/api/bars.json")).frame) == 50


def _gzip(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode())


def test_missing_key_is_named(s3_env):
    with pytest.raises(DataError, match=rf"s3://{BUCKET}/files/nope.csv: no such key"):
        load_data(DataConfig(path=f"s3://{BUCKET}/files/nope.csv"))


def test_missing_bucket_is_named(s3_env):
    with pytest.raises(DataError, match=r"bucket 'no-such-bucket' does not exist"):
        load_data(DataConfig(path="s3://no-such-bucket/x/"))


def test_prefix_without_data_objects(s3_env):
    """A mistyped prefix or key names what the folder above it holds; objects of other kinds are counted."""
    s3_env.client().put_object(Bucket=BUCKET, Key="typed/prices.csv", Body=b"date,close\n2024-01-01,1\n")
    with pytest.raises(
        DataError,
        match=r"no \.csv, \.tsv \(optionally compressed or zipped\), \.parquet, workbook or Feather objects under it",
    ) as raised:
        load_data(DataConfig(path=f"s3://{BUCKET}/typo/"))
    assert f"; s3://{BUCKET}/ holds " in str(raised.value) and "typed/" in str(raised.value)
    with pytest.raises(DataError, match=rf"typed/price\.csv: no such key; s3://{BUCKET}/typed/ holds prices\.csv$"):
        load_data(DataConfig(path=f"s3://{BUCKET}/typed/price.csv"))

    s3_env.client().put_object(Bucket=BUCKET, Key="notes/readme.json", Body=b"{}")
    with pytest.raises(DataError, match=r"under it \(1 other object\(s\), e\.g\. readme\.json\)"):
        load_data(DataConfig(path=f"s3://{BUCKET}/notes/"))


def test_corrupted_object_is_named_by_its_key(s3_env, tmp_path):
    s3_env.client().put_object(Bucket=BUCKET, Key="broken/a.parquet", Body=b"PAR1 not really parquet")
    with pytest.raises(DataError, match=rf"s3://{BUCKET}/broken/a.parquet: cannot be read"):
        load_data(DataConfig(path=f"s3://{BUCKET}/broken/"), stage_root=tmp_path / "stage")


def test_no_credentials_is_a_clear_error(s3_env, monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(DataError, match="no S3 credentials found"):
        load_data(DataConfig(path=f"s3://{BUCKET}/candles/"))


def test_access_denied_names_the_bucket_and_the_permission(tmp_path, monkeypatch):
    # IAM enforced after the set-up requests: create bucket + object (2) and a user limited to another bucket (3).
    with s3_server(tmp_path / "moto", no_auth_actions=6) as endpoint:
        root = endpoint.client()
        root.create_bucket(Bucket="secret")
        root.put_object(Bucket="secret", Key="p/a.csv", Body=b"date,close\n2024-01-01,1\n")
        root.create_bucket(Bucket="allowed")
        keys = restricted_user(endpoint, "allowed")
        monkeypatch.setenv("DRIFTLINE_S3_ENDPOINT_URL", endpoint.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys["aws_access_key_id"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys["aws_secret_access_key"])
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with pytest.raises(
            DataError, match=r"s3://secret/p/: access denied \(AccessDenied\).*s3:ListBucket on secret"
        ) as info:
            load_data(DataConfig(path="s3://secret/p/"))
        assert not isinstance(info.value, SourceUnavailable)  # not worth retrying


def test_unreachable_endpoint_is_retried_then_a_clear_transient_error(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = f"http://127.0.0.1:{free_port()}"
    source = S3Source(f"s3://{BUCKET}/candles/", endpoint_url=endpoint, max_attempts=3)
    calls = []
    source.client.meta.events.register("before-send.s3", lambda **kwargs: calls.append(1))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=rf"cannot reach the S3 endpoint {endpoint} after 3 attempts") as info:
        source.list_objects()
    assert len(calls) == 3  # botocore retried the connection
    assert info.value.transient
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_train_from_s3_then_a_scheduled_run_reads_only_the_new_partition(
    s3, prefect_api, tmp_path, fast_config, monkeypatch
):
    client = s3.client()
    panel = make_ohlcv_panel(n_symbols=2, n_days=900, seed=3)
    panel["Date"] = pd.to_datetime(panel["Date"])
    panel["year"] = panel["Date"].dt.year
    years = sorted(panel["year"].unique())
    for (symbol, year), part in panel[panel["year"] < years[-1]].groupby(["Symbol", "year"]):
        _put_parquet(client, f"daily/symbol={symbol}/year={year}/part-0.parquet", part.drop(columns=["Symbol", "year"]))
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)

    first = run_cli(
        ["train", "--config", str(fast_config), "--data", f"s3://{BUCKET}/daily/", "--summary-json", "a.json"],
        tmp_path,
        prefect_api,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["source"] == f"s3://{BUCKET}/daily/"
    assert a["ingest"]["read"] == a["ingest"]["objects"] == 2 * (len(years) - 1)

    newest = panel[panel["year"] == years[-1]]
    for symbol, part in newest.groupby("Symbol"):
        _put_parquet(
            client, f"daily/symbol={symbol}/year={years[-1]}/part-0.parquet", part.drop(columns=["Symbol", "year"])
        )
    second = run_cli(
        ["train", "--config", str(fast_config), "--data", f"s3://{BUCKET}/daily/", "--summary-json", "b.json"],
        tmp_path,
        prefect_api,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    b = json.loads((tmp_path / "b.json").read_text())
    assert sorted(b["ingest"]["new"]) == sorted(
        f"symbol={s}/year={years[-1]}/part-0.parquet" for s in newest["Symbol"].unique()
    )
    assert b["ingest"]["unchanged"] == a["ingest"]["objects"]
    assert b["rows_in"] == a["rows_in"] + len(newest)
    assert "read 2 new or changed file(s)" in second.stdout
