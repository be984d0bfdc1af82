"""A real Spark standalone cluster (a master and two workers on 127.0.0.1): a recipe submitted
with spark-submit, the package shipped with --py-files, gives byte-for-byte the output of the
same recipe in local mode."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cluster_util import PYTHON, ROOT, StandaloneCluster, package_zip, shard_digests, tokenizer_path, write_jsonl_corpus, write_smoke_recipe

pytestmark = pytest.mark.cluster

DEMO = ROOT / "pipelines" / "recipes" / "demo.yaml"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("standalone")
    spark_cluster = StandaloneCluster(work, workers=2, cores=1, memory="1g")
    spark_cluster.start()
    try:
        yield spark_cluster
    finally:
        spark_cluster.stop()  # also when a test failed or was interrupted


@pytest.fixture(scope="module")
def curate_zip(tmp_path_factory) -> Path:
    return package_zip(tmp_path_factory.mktemp("ship") / "curate.zip")


def run_local(recipe: Path, output: Path) -> None:
    proc = subprocess.run(
        [PYTHON, "-m", "curate.pipeline", str(recipe), "--output", str(output), "--master", "local[2]"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def check_same_as_local(cluster: StandaloneCluster, curate_zip: Path, recipe: Path, tmp_path: Path) -> dict:
    on_cluster, local = tmp_path / "cluster-run", tmp_path / "local-run"
    proc = cluster.submit(recipe, on_cluster, curate_zip)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    manifest = json.loads((on_cluster / "manifest.json").read_text())
    assert manifest["spark"]["master"] == cluster.url
    run_local(recipe, local)
    cluster_files, local_files = shard_digests(on_cluster), shard_digests(local)
    assert sorted(cluster_files) == sorted(local_files)
    assert cluster_files == local_files
    assert (on_cluster / "report.html").exists()
    return manifest


def test_smoke_recipe_on_cluster_equals_local(cluster, curate_zip, tmp_path):
    inputs = write_jsonl_corpus(tmp_path / "in", files=4, per_file=60)
    recipe = write_smoke_recipe(
        tmp_path / "smoke.yaml", str(tmp_path / "in" / "*.jsonl"), tokenizer_path(tmp_path), str(tmp_path / "unused"), shards=3
    )
    manifest = check_same_as_local(cluster, curate_zip, recipe, tmp_path)
    assert manifest["summary"]["documents_in"] == 240 == manifest["summary"]["documents_out"]
    assert manifest["inputs"]["files"] == len(inputs)
    # both workers took part: every one of them ran executors for this application
    executor_dirs = [d for w in range(2) for d in (cluster.workdir / f"worker-{w}").glob("app-*/*")]
    assert {d.parts[-3] for d in executor_dirs} == {"worker-0", "worker-1"}


def test_demo_recipe_on_cluster_equals_local(cluster, curate_zip, tmp_path):
    manifest = check_same_as_local(cluster, curate_zip, DEMO, tmp_path)
    assert manifest["summary"]["documents_in"] == 38 and manifest["summary"]["documents_out"] == 22
