"""curate.ranged_reader against real servers: tests/fault_server.py (HTTP with injected faults) and moto's S3 server."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.ranged_reader import RangedReadError, ReadPolicy, fetch_small, open_ranged
from curate.storage import quiet_storage_options
from curate.stage import Counters
from curate.storage import StorageReadError
from servers import fault_server, moto_server, s3_storage_options

WARC_DIR = Path(__file__).resolve().parent / "data" / "warc"
WARC = "dolma-sample-0000.warc.gz"
CONTENT = (WARC_DIR / WARC).read_bytes()
# Small blocks, so one 214 kB file takes 14 range requests and every fault kind gets its turns;
# millisecond backoff keeps the tests fast (the policy, not the sleeping, is what is tested).
FAST = ReadPolicy(block_size=16 * 1024, backoff_base_s=0.005, backoff_max_s=0.02, request_timeout_s=5)
FAULTS = {
    "503": ["--p-503", "0.3"],
    "403": ["--p-403", "0.2"],
    "drop": ["--p-drop", "0.3"],
    "slow": ["--p-slow", "0.3", "--slow-s", "0.6"],
    "all": ["--p-503", "0.1", "--p-403", "0.05", "--p-drop", "0.15", "--p-slow", "0.05", "--slow-s", "0.2"],
}
REASONS = {"503": ["throttled"], "403": ["forbidden"], "drop": ["incomplete"], "slow": ["timeout"], "all": ["throttled", "incomplete"]}


def http() -> fsspec.AbstractFileSystem:
    return fsspec.filesystem("http", skip_instance_cache=True)


@pytest.fixture(scope="module")
def plain_server():
    with fault_server(WARC_DIR) as server:
        yield server


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_every_fault_kind_gives_the_same_bytes_and_counts_its_retries(kind: str) -> None:
    # slow answers take 0.6 s before their headers: a 0.3 s request timeout cuts them off
    policy = ReadPolicy(**{**FAST.__dict__, "request_timeout_s": 0.3 if kind == "slow" else 5})
    with fault_server(WARC_DIR, "--seed", "11", *FAULTS[kind]) as server:
        counters = Counters()
        with open_ranged(f"{server.url}/{WARC}", http(), policy, counters) as reader:
            data = reader.read()
        stats = server.stats()
    assert data == CONTENT  # no error body, no byte lost or doubled
    assert sum(stats["faults"].values()) > 0
    for reason in REASONS[kind]:
        assert counters[f"storage.retries:{reason}"] > 0, dict(counters)
    assert counters["storage.resumes"] > 0
    assert counters["storage.requests"] == sum(stats["requests"].values())


def test_a_broken_body_is_continued_where_it_broke_not_fetched_again() -> None:
    with fault_server(WARC_DIR, "--seed", "5", "--p-drop", "0.4") as server:
        counters = Counters()
        with open_ranged(f"{server.url}/{WARC}", http(), FAST, counters) as reader:
            assert reader.read() == CONTENT
        drops = server.stats()["faults"]["drop"]
    assert drops > 0 and counters["storage.retries:incomplete"] > 0
    # every byte crossed the network once: the retries asked only for what was missing
    assert counters["storage.bytes"] == len(CONTENT)


def test_throttle_bodies_are_retried_never_returned_exact_counts() -> None:
    # the first 3 requests to the file (the HEAD and the first GETs) get 503 SlowDown with an XML body
    with fault_server(WARC_DIR, "--fail-first", "3", "--fail-kind", "503") as server:
        counters = Counters()
        with open_ranged(f"{server.url}/{WARC}", http(), FAST, counters) as reader:
            data = reader.read()
    assert data == CONTENT and b"<Code>SlowDown</Code>" not in data
    assert counters["storage.retries:throttled"] == 3
    blocks = -(-len(CONTENT) // FAST.block_size)
    assert counters["storage.requests"] == 1 + blocks + 3


def test_server_errors_are_retried() -> None:
    with fault_server(WARC_DIR, "--fail-first", "2", "--fail-kind", "500") as server:
        counters = Counters()
        assert fetch_small(f"{server.url}/{WARC}", http(), FAST, counters) == CONTENT
    assert counters["storage.retries:server_error"] == 2


def test_a_missing_file_fails_at_once_with_not_found(plain_server) -> None:
    counters = Counters()
    with pytest.raises(StorageReadError) as error:
        open_ranged(f"{plain_server.url}/missing.warc.gz", http(), FAST, counters)
    assert error.value.reason == "not_found" and error.value.attempts == 1
    assert "missing.warc.gz" in str(error.value) and "not_found" in str(error.value)
    assert plain_server.stats()["requests"]["/missing.warc.gz"] == 1
    assert counters["storage.requests"] == 1


def test_a_spent_retry_budget_raises_naming_url_reason_and_offset() -> None:
    # every request is throttled; backoff sleeps of up to 0.4 s until 1.2 s are spent
    policy = ReadPolicy(block_size=16 * 1024, max_attempts=10_000, retry_budget_s=1.2, backoff_base_s=0.4, backoff_max_s=0.4)
    with fault_server(WARC_DIR, "--p-503", "1.0") as server:
        counters = Counters()
        started = time.monotonic()
        with pytest.raises(StorageReadError) as error:
            open_ranged(f"{server.url}/{WARC}", http(), policy, counters)
        elapsed = time.monotonic() - started
    assert error.value.reason == "throttled" and error.value.attempts > 2
    assert str(error.value).startswith(f"{server.url}/{WARC}: throttled at byte 0 after ")
    assert 1.2 <= elapsed < 6  # the budget, not max_attempts, ended it
    assert counters["storage.retries:throttled"] == error.value.attempts - 1
    assert counters["storage.backoff_seconds"] == 1


def test_max_attempts_ends_the_retries() -> None:
    policy = ReadPolicy(**{**FAST.__dict__, "max_attempts": 3})
    with fault_server(WARC_DIR, "--fail-first", "100", "--fail-kind", "500") as server:
        with pytest.raises(StorageReadError) as error:
            open_ranged(f"{server.url}/{WARC}", http(), policy, Counters())
        assert server.stats()["requests"][f"/{WARC}"] == 3
    assert error.value.reason == "server_error" and error.value.attempts == 3


def test_a_connection_closed_before_the_answer_is_a_connection_retry() -> None:
    with fault_server(WARC_DIR, "--fail-first", "1", "--fail-kind", "drop") as server:
        counters = Counters()
        assert fetch_small(f"{server.url}/{WARC}", http(), FAST, counters) == CONTENT
    # the HEAD's connection was closed unanswered; aiohttp itself sends an idempotent request
    # again once on a fresh connection (RFC 9112 9.3.1), so it never reached our retries
    assert counters["storage.requests"] == 2 and counters["storage.retries:connection"] == 0


def test_403_is_retried_a_bounded_number_of_times_then_forbidden() -> None:
    with fault_server(WARC_DIR, "--fail-first", "100", "--fail-kind", "403") as server:
        counters = Counters()
        with pytest.raises(StorageReadError) as error:
            fetch_small(f"{server.url}/{WARC}", http(), FAST, counters)
    assert error.value.reason == "forbidden" and error.value.attempts == FAST.forbidden_attempts
    assert counters["storage.retries:forbidden"] == FAST.forbidden_attempts - 1


def test_a_server_that_ignores_range_is_refused_before_its_body_is_read() -> None:
    with fault_server(WARC_DIR, "--ignore-range") as server:
        counters = Counters()
        reader = open_ranged(f"{server.url}/{WARC}", http(), FAST, counters)
        with pytest.raises(StorageReadError) as error:
            reader.read(100)
    assert error.value.reason == "range_ignored" and error.value.attempts == 1
    assert counters["storage.bytes"] == 0


def test_a_whole_object_asked_for_may_come_as_a_200() -> None:
    with fault_server(WARC_DIR, "--ignore-range") as server:
        assert fetch_small(f"{server.url}/{WARC}", http(), FAST, Counters()) == CONTENT


def test_a_file_rewritten_while_it_is_read_fails_with_changed(tmp_path: Path) -> None:
    shutil.copy(WARC_DIR / WARC, tmp_path / WARC)
    policy = ReadPolicy(**{**FAST.__dict__, "prefetch": False})
    with fault_server(tmp_path) as server:
        reader = open_ranged(f"{server.url}/{WARC}", http(), policy, Counters())
        assert reader.read(1000) == CONTENT[:1000]
        (tmp_path / WARC).write_bytes(CONTENT[::-1])  # same size, new content, new ETag
        with pytest.raises(StorageReadError) as error:
            reader.read(len(CONTENT))
    assert error.value.reason == "changed" and error.value.offset == policy.block_size


def test_a_local_file_rewritten_while_it_is_read_fails_with_changed(tmp_path: Path) -> None:
    path = tmp_path / WARC
    shutil.copy(WARC_DIR / WARC, path)
    reader = open_ranged(path.as_uri(), fsspec.filesystem("file"), ReadPolicy(**{**FAST.__dict__, "prefetch": False}), Counters())
    assert reader.read(1000) == CONTENT[:1000]
    path.write_bytes(CONTENT[: len(CONTENT) // 2])
    with pytest.raises(StorageReadError) as error:
        reader.read()
    assert error.value.reason == "changed"


def test_gzip_and_buffered_readers_work_on_it(plain_server) -> None:
    with open_ranged(f"{plain_server.url}/{WARC}", http(), FAST, Counters()) as reader:
        with gzip.GzipFile(fileobj=io.BufferedReader(reader)) as unzipped:
            assert unzipped.read() == gzip.decompress(CONTENT)


def _records(fh) -> list[tuple]:
    from warcio.archiveiterator import ArchiveIterator

    iterator = ArchiveIterator(fh)
    return [(iterator.offset, r.rec_type, r.rec_headers.get_header("WARC-Record-ID"), r.content_stream().read()) for r in iterator]


@pytest.mark.parametrize("name", ["dolma-sample-0001.warc.gz", "warcio-example.warc.gz"])
def test_warcio_reads_the_same_records_through_a_faulty_server(name: str) -> None:
    with open(WARC_DIR / name, "rb") as fh:
        expected = _records(fh)
    with fault_server(WARC_DIR, "--seed", "3", *FAULTS["all"]) as server:
        counters = Counters()
        with open_ranged(f"{server.url}/{name}", http(), FAST, counters) as reader:
            assert _records(reader) == expected
    assert len(expected) > 2


def test_storage_read_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(RangedReadError("s3://b/k", "throttled", 12, 4096, "SlowDown")))
    assert isinstance(error, StorageReadError)
    assert (error.url, error.reason, error.attempts, error.offset) == ("s3://b/k", "throttled", 12, 4096)
    assert str(error) == "s3://b/k: throttled at byte 4096 after 12 attempt(s): SlowDown"


def test_errors_never_show_passwords_or_signatures(plain_server) -> None:
    url = plain_server.url.replace("http://", "http://reader:hunter2@") + "/missing.warc.gz?X-Amz-Signature=deadbeef"
    with pytest.raises(StorageReadError) as error:
        open_ranged(url, http(), FAST, Counters())
    assert error.value.reason == "not_found"
    assert "hunter2" not in str(error.value) and "deadbeef" not in str(error.value)
    assert "127.0.0.1" in str(error.value) and "missing.warc.gz" in str(error.value)


# --- the cap on concurrent requests, across processes -------------------------------------------

READER_PROCESS = """
import os, sys, time, fsspec
from curate.ranged_reader import ReadPolicy, open_ranged
from curate.stage import Counters
name = sys.argv[1]
print("ready", flush=True)
for url, cap, go in zip(*[iter(sys.argv[2:])] * 3):
    policy = ReadPolicy(block_size=100_000, max_concurrent_requests=int(cap) or None, concurrency_name=name)
    while not os.path.exists(go):
        time.sleep(0.01)
    with open_ranged(url, fsspec.filesystem("http"), policy, Counters()) as reader:
        reader.read()
    print("done", flush=True)
"""


def test_the_cap_on_concurrent_requests_holds_across_processes(tmp_path: Path) -> None:
    # Every request is slow (0.1 s before its headers, 0.1 s of body). Four processes read one
    # file each, all at once: first uncapped (with prefetch they overlap), then with a cap of 2.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    slow = ("--p-slow", "1.0", "--slow-s", "0.1")
    with fault_server(WARC_DIR, *slow) as uncapped, fault_server(WARC_DIR, *slow) as capped:
        runs = [(uncapped, 0, tmp_path / "go-uncapped"), (capped, 2, tmp_path / "go-capped")]
        args = [f"cap-test-{os.getpid()}"] + [str(x) for server, cap, go in runs for x in (f"{server.url}/{WARC}", cap, go)]
        children = [
            subprocess.Popen([sys.executable, "-c", READER_PROCESS, *args], stdout=subprocess.PIPE, text=True, env=env) for _ in range(4)
        ]
        try:
            for child in children:
                assert child.stdout.readline().strip() == "ready"
            for _, _, go in runs:
                go.touch()  # all start together
                for child in children:
                    assert child.stdout.readline().strip() == "done"
        finally:
            for child in children:
                assert child.wait(timeout=60) == 0
        assert uncapped.stats()["peak"] > 2
        assert capped.stats()["peak"] <= 2


# --- S3 (moto's server) ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        fs = fsspec.filesystem("s3", skip_instance_cache=True, **quiet_storage_options("s3", s3_storage_options(server)))
        fs.mkdir("warcs")
        for name in os.listdir(WARC_DIR):
            if name.endswith(".warc.gz"):
                fs.pipe(f"warcs/{name}", (WARC_DIR / name).read_bytes())
        yield fs


def test_s3_reads_the_same_bytes_and_records(s3) -> None:
    counters = Counters()
    with open_ranged(f"s3://warcs/{WARC}", s3, FAST, counters) as reader:
        assert reader.read() == CONTENT
        reader.seek(0)
        with open(WARC_DIR / WARC, "rb") as fh:
            assert _records(reader) == _records(fh)
    assert counters["storage.requests"] > 2 * len(CONTENT) // FAST.block_size


def test_s3_reads_through_throttles_and_drops_counting_each_fault(tmp_path: Path) -> None:
    # the fault server speaks enough S3 (HEAD/GET /bucket/key, XML error bodies) for s3fs's
    # botocore client, so the S3 path meets real SlowDown, AccessDenied, drops and stalls
    (tmp_path / "warcs").mkdir()
    shutil.copy(WARC_DIR / WARC, tmp_path / "warcs" / WARC)
    policy = ReadPolicy(**{**FAST.__dict__, "request_timeout_s": 0.4})
    faults = ["--seed", "4", "--p-503", "0.15", "--p-403", "0.1", "--p-drop", "0.2", "--p-slow", "0.05", "--slow-s", "0.8"]
    with fault_server(tmp_path, *faults) as server:
        options = quiet_storage_options("s3", {"endpoint_url": server.url, "key": "k", "secret": "s"})
        fs = fsspec.filesystem("s3", skip_instance_cache=True, **options)
        counters = Counters()
        with open_ranged(f"s3://warcs/{WARC}", fs, policy, counters) as reader:
            assert reader.read() == CONTENT
        seen = server.stats()["faults"]
    assert min(seen.get(kind, 0) for kind in ("503", "403", "drop", "slow")) > 0, seen
    # one retry per fault: botocore's own retries are off, s3fs's wrapper is not used
    assert counters["storage.retries:throttled"] == seen["503"]
    assert counters["storage.retries:forbidden"] == seen["403"]
    assert counters["storage.retries:incomplete"] + counters["storage.retries:connection"] == seen["drop"]
    assert counters["storage.retries:timeout"] >= seen["slow"]
    assert counters["storage.bytes"] == len(CONTENT)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(CONTENT) + 100), st.integers(0, 40_000)), min_size=1, max_size=6))
def test_s3_seek_and_read_anywhere_equals_the_local_file(s3, reads: list[tuple[int, int]]) -> None:
    with open_ranged(f"s3://warcs/{WARC}", s3, ReadPolicy(block_size=8 * 1024), Counters()) as reader:
        for offset, length in reads:
            assert reader.seek(offset) == offset
            expected = CONTENT[offset : offset + length]
            assert reader.read(length) == expected
            assert reader.tell() == offset + len(expected)


def test_s3_memory_stays_within_two_blocks(s3) -> None:
    block = 256 * 1024
    big = CONTENT * 20  # 4.3 MB, 17 blocks
    s3.pipe("warcs/big.bin", big)
    tracemalloc.start()
    try:
        with open_ranged("s3://warcs/big.bin", s3, ReadPolicy(block_size=block), Counters()) as reader:
            total = 0
            while piece := reader.read(8192):
                total += len(piece)
            peak_held = reader.peak_buffered_bytes
        _, peak_traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(big)
    assert peak_held <= 2 * block
    # All Python allocations of every thread, the event loop's included: two blocks and ~0.4 MB
    # of botocore/aiohttp (measured 2.2 blocks); a whole-file read would be 17 blocks.
    assert peak_traced < 4 * block, peak_traced


def test_s3_object_changed_while_read_fails_with_changed(s3) -> None:
    s3.pipe("warcs/changing.bin", CONTENT)
    reader = open_ranged("s3://warcs/changing.bin", s3, ReadPolicy(**{**FAST.__dict__, "prefetch": False}), Counters())
    assert reader.read(100) == CONTENT[:100]
    s3.pipe("warcs/changing.bin", CONTENT[::-1])
    with pytest.raises(StorageReadError) as error:
        reader.read()
    assert error.value.reason == "changed"


def test_s3_missing_key_is_not_found_at_once(s3) -> None:
    counters = Counters()
    with pytest.raises(StorageReadError) as error:
        fetch_small("s3://warcs/none.warc.gz", s3, FAST, counters)
    assert error.value.reason == "not_found" and error.value.attempts == 1 and counters["storage.requests"] == 1
