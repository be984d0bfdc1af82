"""curate/store.py: one set of operations over a local folder and an S3 prefix (moto's server),
and the lock that keeps two runs off one output or index."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from curate.store import LockedError, Store, StoreLock, is_stale
from servers import moto_server, s3_client, s3_storage_options


@pytest.fixture(scope="module")
def s3_options():
    with moto_server() as server:
        s3_client(server, "store")
        yield {"s3": s3_storage_options(server)}


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, s3_options) -> Store:
    if request.param == "local":
        return Store(str(tmp_path / "root"))
    return Store(f"s3://store/{tmp_path.name}", s3_options)


def test_objects_appear_whole_and_list_the_same_everywhere(store, tmp_path):
    assert store.read_bytes("missing.json") is None and store.listdir() == [] and store.files_under() == []
    store.write_json({"a": 1}, "x", "y.json")
    store.write_bytes(b"one", "z.bin")
    (tmp_path / "local.parquet").write_bytes(b"PAR1")
    store.put_file(str(tmp_path / "local.parquet"), "documents", "part-00000.parquet")
    assert store.read_json("x", "y.json") == {"a": 1} and store.read_bytes("z.bin") == b"one"
    assert store.listdir() == ["documents", "x", "z.bin"]
    assert store.files_under() == ["documents/part-00000.parquet", "x/y.json", "z.bin"]
    assert store.exists("documents", "part-00000.parquet") and not store.exists("documents", "part-00001.parquet")
    store.delete_all(keep=("z.bin",))
    assert store.listdir() == ["z.bin"]


def test_create_exclusive_creates_once(store):
    assert store.create_exclusive(b"first", "LOCK") is True
    assert store.create_exclusive(b"second", "LOCK") is False
    assert store.read_bytes("LOCK") == b"first"


def test_a_held_lock_refuses_naming_its_holder_and_is_released(store):
    lock = StoreLock(store, "LOCK", "output X")
    info = lock.acquire("curate run X")
    with pytest.raises(LockedError, match=rf"output X is in use by curate run X \(pid {info['pid']} on .*delete .*LOCK"):
        StoreLock(store, "LOCK", "output X").acquire("curate run Y")
    lock.release()
    assert not store.exists("LOCK")
    StoreLock(store, "LOCK", "output X").acquire("curate run Y")


def test_a_lock_of_a_dead_process_on_this_host_is_broken(store):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    import socket

    store.write_json({"host": socket.gethostname(), "pid": int(gone), "holder": "curate run killed"}, "LOCK")
    info = StoreLock(store, "LOCK", "output X").acquire("curate run again")
    assert store.read_json("LOCK")["token"] == info["token"]


def test_a_remote_lock_is_renewed_and_an_unrenewed_one_from_elsewhere_goes_stale(s3_options, tmp_path):
    store = Store(f"s3://store/{tmp_path.name}", s3_options)
    lock = StoreLock(store, "LOCK", "index", lease_s=600, renew_s=0.2)
    first = lock.acquire("run A")["heartbeat"]
    time.sleep(1.0)
    assert store.read_json("LOCK")["heartbeat"] > first and store.read_json("LOCK")["renewed"] is True
    lock.release()
    old = {"host": "elsewhere", "pid": 1, "holder": "run B", "heartbeat": time.time() - 700}
    assert is_stale(dict(old, renewed=True), 600) and not is_stale(old, 600)  # a local lock is never judged by age
    store.write_bytes(json.dumps(dict(old, renewed=True)).encode(), "LOCK")
    StoreLock(store, "LOCK", "index").acquire("run C")
