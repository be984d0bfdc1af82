"""Executor-side functions: what each Spark task runs (``mapInArrow``), pickled into the Python workers.

* :func:`process_files`: segment 0, one task per input file (or group of files): read it, run
  the map stages before the first global stage, write the file's counters to ``stats_dir``.
* :func:`process_documents`: the map stages after a global stage, over its marked documents.
* :func:`tokenize_documents`: kept documents -> token rows (the mixture path).
"""

from __future__ import annotations

import os
import time
from typing import Iterator

import pyarrow as pa

from curate.recipe import Recipe
from curate.schema import RECORD_SCHEMA, conform
from curate.shards import write_json_atomic
from curate.sources import read_source, skips_stages
from curate.spark.worker_warm_up import files_task_ended, files_task_started
from curate.stage import Counters, Stage, run_map_stages
from curate.storage import display_url
from curate.tokens import DocumentTokenizer


def reads_records(stage: Stage) -> bool:
    # By value, not identity: this runs inside closures that Spark pickles by value, globals
    # included, so a worker's RECORD_SCHEMA here is a copy of the one the stage classes hold.
    return stage.input_schema.names == RECORD_SCHEMA.names


def process_files(recipe: Recipe, stages: list[Stage], stats_dir: str, tasks: list[dict], later: list[Stage] | None = None):
    """Rows ``id`` (a task's index in ``tasks``: file_index, source_index, path) -> the documents of those files."""
    sources = recipe.sources
    access = recipe.input_access()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        files_task_started()
        try:
            yield from run_files(batches)
        finally:
            files_task_ended(later or [])

    def run_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for task_batch in batches:
            for index in task_batch.column("id").to_pylist():
                task = tasks[index]
                source = sources[task["source_index"]]
                reader_counters = Counters()
                problems: list[str] = []
                for stage in stages:
                    stage.counters = Counters()
                # An already-curated run is not filtered again (it only joins the mixture) unless
                # the recipe asks for its stages on it.
                active = [] if skips_stages(source) else stages
                started = time.perf_counter()
                for batch in read_source(source, task["path"], reader_counters, problems, access=access):
                    use = active if batch.schema.names == RECORD_SCHEMA.names else [s for s in active if not reads_records(s)]
                    if batch.schema.names == RECORD_SCHEMA.names and not use:
                        continue
                    kept, rejected = run_map_stages(use, batch)
                    if kept.num_rows:
                        yield kept
                    if rejected.num_rows:
                        yield rejected
                stats = {
                    "file": display_url(task["path"]),
                    "source": source.name,
                    "seconds": time.perf_counter() - started,
                    "reader": dict(reader_counters),
                    "problems": problems,
                    "stages": {s.name: dict(s.counters) for s in active},
                }
                write_json_atomic(stats, os.path.join(stats_dir, f"file-{task['file_index']:07d}.json"))

    return run


def process_documents(stages: list[Stage], stats_dir: str):
    """The map stages over live documents; rows a global stage rejected pass through as they are."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc
        from pyspark import TaskContext

        for stage in stages:
            stage.counters = Counters()
        started = time.perf_counter()
        for batch in batches:
            batch = conform(batch)
            is_live = pc.is_null(batch.column("rejected_by"))
            already = batch.filter(pc.invert(is_live))
            if already.num_rows:
                yield already
            kept, rejected = run_map_stages(stages, batch.filter(is_live))
            if kept.num_rows:
                yield kept
            if rejected.num_rows:
                yield rejected
        part = TaskContext.get().partitionId()
        stats = {"seconds": time.perf_counter() - started, "stages": {s.name: dict(s.counters) for s in stages}}
        write_json_atomic(stats, os.path.join(stats_dir, f"part-{part:07d}.json"))

    return run


def tokenize_documents(tokenizer: DocumentTokenizer):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield tokenizer.tokenize_documents(conform(batch))

    return run
