"""A real Spark standalone cluster (a master and two workers on 127.0.0.1): a recipe submitted
with spark-submit, the package shipped with --py-files, gives byte-for-byte the output of the
same recipe in local mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.pipeline import run_recipe
from cluster_util import ROOT, StandaloneCluster, package_zip, shard_digests, tokenizer_path, write_jsonl_corpus, write_smoke_recipe

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


def check_same_as_local(cluster: StandaloneCluster, curate_zip: Path, recipe: Path, local: Path, tmp_path: Path) -> dict:
    """Runs ``recipe`` on the cluster; its shards must be byte-for-byte those of ``local``, a run
    of the same recipe in local mode (the test session's local Spark)."""
    on_cluster = tmp_path / "cluster-run"
    proc = cluster.submit(recipe, on_cluster, curate_zip)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    manifest = json.loads((on_cluster / "manifest.json").read_text())
    assert manifest["spark"]["master"] == cluster.url
    local_manifest = json.loads((local / "manifest.json").read_text())
    assert local_manifest["spark"]["master"].startswith("local[")
    cluster_files, local_files = shard_digests(on_cluster), shard_digests(local)
    assert sorted(cluster_files) == sorted(local_files)
    assert cluster_files == local_files
    assert (on_cluster / "report.html").exists()
    return manifest


def test_smoke_recipe_on_cluster_equals_local(cluster, curate_zip, spark, tmp_path):
    inputs = write_jsonl_corpus(tmp_path / "in", files=4, per_file=60)
    recipe = write_smoke_recipe(
        tmp_path / "smoke.yaml", str(tmp_path / "in" / "*.jsonl"), tokenizer_path(tmp_path), str(tmp_path / "unused"), shards=3
    )
    run_recipe(str(recipe), output=str(tmp_path / "local-run"), spark=spark)
    manifest = check_same_as_local(cluster, curate_zip, recipe, tmp_path / "local-run", tmp_path)
    assert manifest["summary"]["documents_in"] == 240 == manifest["summary"]["documents_out"]
    assert manifest["inputs"]["files"] == len(inputs)
    # both workers took part: every one of them ran executors for this application
    executor_dirs = [d for w in range(2) for d in (cluster.workdir / f"worker-{w}").glob("app-*/*")]
    assert {d.parts[-3] for d in executor_dirs} == {"worker-0", "worker-1"}


def test_demo_recipe_on_cluster_equals_local(cluster, curate_zip, demo_run, tmp_path):
    local, _ = demo_run  # the demo's local run that test_pipeline checks
    manifest = check_same_as_local(cluster, curate_zip, DEMO, local, tmp_path)
    assert manifest["summary"]["documents_in"] == 38 and manifest["summary"]["documents_out"] == 25
    # the blocks extractor's model was resolved on the driver (no CURATE_EXTRACTOR_MODEL here) and its
    # path reached the executors; curate.zip holds no model
    [extract] = [s for s in manifest["recipe"]["stages"] if s.get("stage") == "extract"]
    assert extract["model_path"] == str(ROOT / "models" / "extractor" / "model.npz")


def test_demo_recipe_on_cluster_reads_and_writes_s3(cluster, curate_zip, demo_run, tmp_path):
    """The demo's WARCs in moto's S3 server, the output written there too, by a spark-submit run
    on the standalone cluster: the same shards as the local run."""
    import yaml

    from curate.storage import filesystem
    from servers import moto_server, s3_client, s3_storage_options
    from test_object_store_runs import s3_digests

    local, _ = demo_run
    with moto_server() as server:
        options = {"s3": s3_storage_options(server)}
        client = s3_client(server, "crawl", "runs")
        for warc in sorted((ROOT / "tests" / "data" / "warc").glob("*.warc.gz")):
            client.upload_file(str(warc), "crawl", f"warc/{warc.name}")
        data = yaml.safe_load(DEMO.read_text())
        data.update(sources=[{"name": "web", "kind": "warc", "paths": ["s3://crawl/warc/*.warc.gz"]}], storage_options=options)
        recipe = tmp_path / "s3.yaml"
        recipe.write_text(yaml.safe_dump(data))
        output = "s3://runs/on-cluster"
        proc = cluster.submit(recipe, output, curate_zip, extra_args=["--work-dir", str(tmp_path / "work")])
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        manifest = json.loads(filesystem(output, options).cat_file(f"{output}/manifest.json"))
        assert manifest["spark"]["master"] == cluster.url and manifest["output"] == output
        assert s3_digests(options, output) == shard_digests(local)
