"""Real servers for storage tests, each run as a subprocess and stopped afterwards.

* :func:`fault_server`: ``tests/fault_server.py``, an HTTP server with Range support that injects
  throttles, drops and slow responses on purpose.
* :func:`moto_server`: moto's standalone S3 server (as s3fs's own test suite uses), with
  :func:`s3_storage_options` for an fsspec ``s3`` filesystem that talks to it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

FAULT_SERVER = Path(__file__).resolve().parent / "fault_server.py"


class RunningServer:
    def __init__(self, url: str, process: subprocess.Popen):
        self.url, self.process = url, process

    def stats(self) -> dict:
        """The fault server's counts: requests per path, faults per kind, peak concurrent requests."""
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as response:
            return json.loads(response.read())


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def fault_server(root: str | os.PathLike, *options: str) -> Iterator[RunningServer]:
    """tests/fault_server.py serving ``root`` on a free port of 127.0.0.1 with ``options`` (its command-line flags)."""
    command = [sys.executable, str(FAULT_SERVER), "--root", str(root), "--port", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        yield RunningServer(f"http://127.0.0.1:{port}", process)
    finally:
        _stop(process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server(timeout_s: float = 60) -> Iterator[RunningServer]:
    """moto's S3 server on a free port (moto picks no port of its own and says nothing on stdout)."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on port {port}") from None
                time.sleep(0.1)
        yield RunningServer(url, process)
    finally:
        _stop(process)


def s3_storage_options(server: RunningServer) -> dict:
    """fsspec ``s3`` options for the moto server (moto accepts any credentials)."""
    return {"endpoint_url": server.url, "key": "testing", "secret": "testing"}


def s3_client(server: RunningServer, *buckets: str, key: str = "testing", secret: str = "testing"):
    """A boto3 S3 client of the moto server, with ``buckets`` created (moto accepts any credentials)."""
    import boto3

    client = boto3.client("s3", endpoint_url=server.url, aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)
    return client
