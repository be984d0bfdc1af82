"""Shared fixtures: paths to the bundled real data, and one local Spark session per test run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


# Modules whose tests start Spark (a session, a `curate run`, a cluster) or train a model; tests
# that take the `spark` fixture are marked too. `make test-fast` leaves all of these out.
SPARK_MODULES = {"test_pipeline", "test_class_archive", "test_spark_dedup", "test_faults", "test_cluster", "test_mixture"}
TRAINING_MODULES = {"test_trainer_train", "test_trainer_ddp", "test_ablate", "test_notebook"}
TRAINING_TESTS = {"test_classify::test_train_classifier_cli_writes_model_and_card"}
# Over ~5 s each on the 2-core CI box (pytest --durations), so that `make test-fast` stays
# under 90 s; the browser test may first apt-get install chromium (~2 min).
SLOW_TESTS = {
    "test_compiled_xpaths::test_same_nodes_as_libxml2_on_real_pages",
    "test_compiled_xpaths::test_same_nodes_as_libxml2_on_generated_trees",
    "test_pii::test_warm_up_imports_what_setup_needs_and_keeps_nothing_on_the_stage",
    "test_dedup::test_warm_up_loads_the_minhash_kernels_only_when_minhash_is_on",
    "test_report::test_report_renders_in_chromium_without_console_errors",
    "test_compiled_xpaths::test_extracted_text_is_unchanged_on_real_pages",
    "test_pii::test_phone_gate_changes_nothing_on_number_dense_pages",
    "test_pii::test_precheck_changes_nothing_on_real_pages",
    "test_pii::test_recall_and_precision_meet_the_targets",
    "test_pii::test_narrowed_phone_recognizer_equals_whole_line_matching",
    "test_pii::test_a_blank_pipeline_does_not_import_torch_and_a_later_import_still_works",
    "test_pii::test_a_matcher_per_stretch_finds_what_one_matcher_per_line_finds",
    "test_ranged_reader::test_the_cap_on_concurrent_requests_holds_across_processes",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if module in SPARK_MODULES or "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)
        test = f"{module}::{getattr(item, 'originalname', item.name)}"
        if module in TRAINING_MODULES or test in TRAINING_TESTS:
            item.add_marker(pytest.mark.training)
        if test in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def spark():
    from curate.spark.session import spark_session

    session = spark_session("curate-tests", master="local[2]", progress=False, conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def demo_run(spark, tmp_path_factory) -> tuple[Path, dict]:
    """The demo recipe on the bundled WARCs, run once for every test that reads its outputs
    (test_pipeline checks them; test_cluster compares a cluster run with them): (run folder, manifest)."""
    from curate.pipeline import run_recipe

    out = tmp_path_factory.mktemp("demo") / "run"
    manifest = run_recipe(str(ROOT / "pipelines" / "recipes" / "demo.yaml"), output=str(out), spark=spark)
    return out, manifest


@pytest.fixture(scope="session")
def wikitext_bpe(tmp_path_factory) -> Path:
    """A small byte-level BPE (vocab 512, ``<|endoftext|>``) trained on the bundled WikiText-2
    slice: for trainer/mixture tests that must not wait for models/tokenizer/."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders

    lines = [line.strip() for line in (DATA / "text" / "wikitext-2-test.txt").read_text().splitlines() if line.strip()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>"], show_progress=False))
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="session")
def language_runs(spark, tmp_path_factory) -> dict:
    """Real text in eight languages and scripts through ``langid`` (every language, ISO 639-3 +
    script pairs), run twice: as one folder, and split by language (``shards.partition_by``) with
    one input task instead of three. Input: the paragraphs (300+ characters) of the pages of
    tests/data/multilingual and the English pages of tests/data/dedup, in three JSONL files."""
    import json

    from curate.pipeline import run_recipe
    from curate.recipe import parse_recipe

    root = tmp_path_factory.mktemp("languages")
    documents = []
    for line in (DATA / "multilingual" / "pages.jsonl").read_text(encoding="utf-8").splitlines():
        page, chunk = json.loads(line), ""
        for paragraph in page["text"].split("\n"):
            chunk = f"{chunk}\n{paragraph}".strip()
            if len(chunk) >= 300:
                documents.append({"url": page["url"], "text": chunk})
                chunk = ""
    documents += [{"url": p["url"], "text": p["text"]} for p in map(json.loads, (DATA / "dedup" / "pages.jsonl").read_text().splitlines())]
    (root / "in").mkdir()
    for part in range(3):
        rows = [dict(doc, id=f"doc-{i:03d}") for i, doc in enumerate(documents) if i % 3 == part]
        (root / "in" / f"part-{part}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    data = {
        "name": "languages",
        "output": str(root / "flat"),
        "sources": [{"name": "web", "kind": "jsonl", "paths": [str(root / "in" / "*.jsonl")]}],
        "stages": [{"stage": "langid", "languages": "all", "codes": "iso639_3", "min_score": 0.8}],
        "tokenizer": {"path": str(ROOT / "models" / "tokenizer" / "tokenizer.json")},
        "shards": {"num_shards": 2},
        "spark": {"progress": False},
    }
    flat = run_recipe(parse_recipe(data, file=str(root / "flat.yaml")), spark=spark)
    split_data = dict(data, output=str(root / "split"), shards={"num_shards": 2, "partition_by": "language"}, spark={"partitions": 1})
    split = run_recipe(parse_recipe(split_data, file=str(root / "split.yaml")), spark=spark)
    return {"flat": (root / "flat", flat), "split": (root / "split", split), "recipe": split_data, "documents": len(documents)}
