"""Runs that read from and write to object stores, against real servers: moto's S3 server and
tests/fault_server.py (HTTP with Range, and injected throttles, drops and slow responses).

The reference is the demo recipe's local run (the session's ``demo_run``): the same WARCs read
from S3, over a faulty HTTP server, and written to S3 must give the same shards, byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from curate.pipeline import run_recipe
from curate.recipe import parse_recipe
from curate.run_output import RunLockedError
from curate.storage import filesystem
from cluster_util import shard_digests
from servers import fault_server, moto_server, s3_client, s3_storage_options

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "pipelines" / "recipes" / "demo.yaml"
WARCS = sorted((ROOT / "tests" / "data" / "warc").glob("*.warc.gz"))
KEY, SECRET = "AKIACURATETESTKEY", "s3cr3t-that-must-never-be-written-down"
FAST_RETRIES = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "block_size_mb": 0.0625, "max_attempts": 30}


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        options = dict(s3_storage_options(server), key=KEY, secret=SECRET)
        client = s3_client(server, "crawl", "runs", key=KEY, secret=SECRET)
        for warc in WARCS:
            client.upload_file(str(warc), "crawl", f"segments/x/warc/{warc.name}")
        yield {"s3": options}


def demo_recipe(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    data.update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def s3_digests(storage_options: dict, url: str) -> dict[str, str]:
    fs = filesystem(url, storage_options)
    prefix = url.split("://", 1)[1].rstrip("/") + "/"
    fs.invalidate_cache()
    out = {}
    for key in fs.find(url):
        rel = key[len(prefix) :]
        if rel.split("/")[0] in ("documents", "rejected", "tokens"):
            out[rel] = hashlib.sha256(fs.cat_file(key)).hexdigest()
    return out


def test_s3_in_s3_out_equals_local_and_writes_no_secret(spark, demo_run, s3, tmp_path, capfd):
    local, _ = demo_run
    output = "s3://runs/demo-from-s3"
    source = {"name": "web", "kind": "warc", "paths": ["s3://crawl/segments/*/warc/*.warc.gz"]}
    data = dict(yaml.safe_load(DEMO.read_text()), sources=[source], output=output, work_dir=str(tmp_path / "work"))
    recipe = parse_recipe(dict(data, storage_options=s3), file=str(DEMO))
    manifest = run_recipe(recipe, spark=spark)
    assert s3_digests(s3, output) == shard_digests(local)
    assert manifest["output"] == output and manifest["inputs"]["counters"]["warc.kept"] == 38
    assert manifest["inputs"]["counters"]["storage.requests"] > 0
    fs = filesystem(output, s3)
    stored = json.loads(fs.cat_file(f"{output}/manifest.json"))
    assert stored["recipe"]["storage_options"]["s3"]["key"] == "<redacted>"
    assert not fs.exists(f"{output}/_lock.json") and not (tmp_path / "work").exists()
    written = fs.cat_file(f"{output}/manifest.json") + fs.cat_file(f"{output}/report.html")
    logs = capfd.readouterr()
    for secret in (KEY, SECRET):
        assert secret.encode() not in written and secret not in logs.out + logs.err
        assert secret not in repr(recipe) + repr(recipe.input_access())  # what a traceback or a log line could show
    # where the files are read from, and with which credentials, is not part of the recipe's hash
    other = parse_recipe(dict(data, storage_options={"s3": dict(s3["s3"], secret="another")}), file=str(DEMO))
    assert stored["recipe_hash"] == recipe.fingerprint() == other.fingerprint()


def test_a_run_split_by_language_to_s3_equals_the_local_one(spark, language_runs, s3, tmp_path):
    """Same shards, byte for byte, under the same keys (language=<pair>/ folders), with three
    input tasks where the local run had one; each uploaded by the task that wrote it."""
    split_dir, split = language_runs["split"]
    output = "s3://runs/split-by-language"
    data = dict(language_runs["recipe"], output=output, work_dir=str(tmp_path / "work"), spark={"progress": False})
    manifest = run_recipe(parse_recipe(dict(data, storage_options=s3), file=str(tmp_path / "recipe.yaml")), spark=spark)
    local = {}
    for folder in ("documents", "rejected", "tokens"):
        for path in sorted((split_dir / folder).rglob("*.parquet")):
            local[str(path.relative_to(split_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    assert s3_digests(s3, output) == local
    assert "documents/language=deu_Latn/part-00001.parquet" in local and "tokens/language=jpn_Jpan/shard-00000.parquet" in local
    assert manifest["languages"] == split["languages"] and manifest["documents"]["shards"] == split["documents"]["shards"]


def test_listing_over_a_faulty_http_server_keeps_every_record(spark, demo_run, tmp_path):
    local, _ = demo_run
    listing = tmp_path / "warc.paths.gz"
    listing.write_bytes(gzip.compress("".join(f"crawl/{w.name}\n" for w in WARCS).encode() + b"crawl/missing.warc.gz\n"))
    (tmp_path / "served" / "crawl").mkdir(parents=True)
    for warc in WARCS:
        (tmp_path / "served" / "crawl" / warc.name).write_bytes(warc.read_bytes())
    faults = ("--seed", "3", "--p-503", "0.15", "--p-403", "0.05", "--p-drop", "0.15", "--p-slow", "0.05", "--slow-s", "0.2")
    with fault_server(tmp_path / "served", *faults) as server:
        source = {"name": "web", "kind": "warc", "listing": str(listing), "base_url": server.url + "/"}
        recipe = demo_recipe(tmp_path, sources=[source], reading=FAST_RETRIES)
        manifest = run_recipe(str(recipe), output=str(tmp_path / "run"), spark=spark)
        stats = server.stats()
    assert shard_digests(tmp_path / "run") == shard_digests(local)
    counters = manifest["inputs"]["counters"]
    retried = {k: v for k, v in counters.items() if k.startswith("storage.retries:")}
    assert sum(retried.values()) > 0 and counters["storage.resumes"] > 0, counters
    assert counters["storage.failed_files:not_found"] == 1 and counters["warc.kept"] == 38
    assert any("missing.warc.gz" in p and "not_found" in p for p in manifest["inputs"]["problems"])
    assert sum(stats["faults"].values()) > 0


def run_in_subprocess(recipe: Path, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "curate.cli", "run", str(recipe)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(predicate, timeout_s: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_second_run_is_refused_and_a_run_killed_mid_upload_resumes(spark, s3, tmp_path):
    output = "s3://runs/killed"
    recipe = demo_recipe(tmp_path, output=output, storage_options=s3, shards={"num_shards": 24}, work_dir=str(tmp_path / "work"))
    env = dict(os.environ, CURATE_UPLOAD_THREADS="1", PYTHONPATH=str(ROOT))
    fs = filesystem(output, s3)

    def visible(folder: str) -> list[str]:
        fs.invalidate_cache()
        return [k for k in fs.find(f"{output}/{folder}") if k.endswith(".parquet")]

    first = run_in_subprocess(recipe, env)
    try:
        wait_for(lambda: (fs.invalidate_cache(), fs.exists(f"{output}/_lock.json"))[1], 120, "the lock", first)
        with pytest.raises(RunLockedError, match=rf"in use by curate run {output} \(pid {first.pid} on "):
            run_recipe(str(recipe), spark=spark)
        wait_for(lambda: len(visible("documents")) > 0, 240, "the first uploaded shard", first)
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    fs.invalidate_cache()
    assert not fs.exists(f"{output}/manifest.json")
    partial = {key: fs.cat_file(key) for folder in ("documents", "rejected", "tokens") for key in visible(folder)}
    assert 0 < len(partial) < 72
    for data in partial.values():  # every visible shard is whole: it parses
        pq.ParquetFile(pa_buffer(data)).read()
    manifest = run_recipe(str(recipe), resume=True, spark=spark)
    assert manifest["summary"]["documents_out"] == 25
    for key, data in partial.items():  # what was visible was the final shard already
        assert fs.cat_file(key) == data
    local = run_recipe(str(recipe), output=str(tmp_path / "local"), spark=spark)
    assert local["summary"] == {**manifest["summary"], "seconds": local["summary"]["seconds"]}
    assert s3_digests(s3, output) == shard_digests(tmp_path / "local")


def pa_buffer(data: bytes):
    import pyarrow as pa

    return pa.BufferReader(data)
