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
