"""Real servers for tests, on 127.0.0.1 only: an S3-compatible endpoint (moto's server mode)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

S3_REGION = "us-east-1"
ROOT_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback only
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    process: subprocess.Popen

    def client(self, **keys: str):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=S3_REGION, **(keys or ROOT_KEYS))

    def env(self) -> dict[str, str]:
        """Environment for a Driftline process that reads from this endpoint."""
        return {
            "DRIFTLINE_S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ROOT_KEYS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": ROOT_KEYS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": S3_REGION,
        }


@contextmanager
def s3_server(log_dir: Path, no_auth_actions: int | None = None) -> Iterator[S3Endpoint]:
    """moto's S3 server as a real process; boto3 talks HTTP to it.

    Args:
        log_dir: where the server's output goes (read it when a test fails).
        no_auth_actions: when given, IAM is enforced after this many requests (moto's
            ``INITIAL_NO_AUTH_ACTION_COUNT``), so access-denied paths are real.
    """
    port = free_port()
    env = {**os.environ, "MOTO_PORT": str(port)}
    if no_auth_actions is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(no_auth_actions)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"moto-{port}.log").open("w")
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", process=process)
        yield S3Endpoint(url=f"http://127.0.0.1:{port}", process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def restricted_user(endpoint: S3Endpoint, bucket: str) -> dict[str, str]:
    """An IAM user allowed only ``bucket``; returns its keys (3 requests: count them in no_auth_actions)."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint.url, region_name=S3_REGION, **ROOT_KEYS)
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}],
    }
    iam.put_user_policy(UserName="reader", PolicyName="one-bucket", PolicyDocument=json.dumps(policy))
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
