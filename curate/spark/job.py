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

Where each concern lives: the segment plan as plain data (``plan.py``), what the tasks run
(``tasks.py``), the worker warm-up (``worker_warm_up.py``), global stages by kind
(``global_stages.py``), the shard writers (``shard_writers.py``), the funnel and the manifest
(``manifest.py``). This module drives them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from curate.recipe import Recipe
from curate.rehydrate import rehydration_of
from curate.run_output import RunOutput
from curate.sources import InputFailedError
from curate.schema import DOCUMENT_SCHEMA, TOKENS_SCHEMA
from curate.shards import NO_LANGUAGE, remove_temporaries, write_json_atomic
from curate.spark import manifest
from curate.spark.global_stages import run_global_stage
from curate.spark.plan import Segment, first_segment_counts_every_document, later_stages, plan_segments
from curate.spark.session import spark_session
from curate.spark.shard_writers import SHARD_INFO_SCHEMA, final_shard_writer, shard_entries, shard_writer
from curate.spark.tasks import process_documents, process_files, tokenize_documents
from curate.stage import Stage
from curate.tokens import DocumentTokenizer

OUTPUT_FOLDERS = ("documents", "rejected", "tokens")


def spark_schema(schema: pa.Schema):
    return from_arrow_schema(schema)


@dataclass
class Progress:
    """What the driver carries from one segment to the next."""

    funnel: list[dict] = field(default_factory=list)
    reader_stats: dict = field(default_factory=dict)
    # (documents, characters) still live after the previous segment, when its counters saw them all
    live_known: tuple[int, int] | None = None
    # (funnel position, stage, what entered it): filled in after the final write, whose shard
    # writers count what each global stage removed
    global_entries: list[tuple[int, Stage, dict]] = field(default_factory=list)
    previous_path: str = ""
    final: DataFrame | None = None  # the fused last segment's rows, written by the final job
    fused: Segment | None = None


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
        self.destination = RunOutput(output or recipe.output, recipe.storage_options, recipe.work_dir)
        # Where this run's files are written: the output folder itself, or (for an object-store
        # output) a local folder that is uploaded when the run is complete.
        self.output = self.destination.staging
        self.master = master
        self.overwrite = overwrite
        self.resume = resume
        self.keep_work = keep_work
        self._spark = spark
        self.work = self.destination.work
        self.timings: dict[str, float] = {}
        # rejected:<reason> and rejected_chars:<reason> over rejected/, from the shard writers
        self.rejections: Counter = Counter()
        # shards the writing tasks already uploaded to an object-store output (paths in the run)
        self.published: set[str] = set()
        self.publish_to = self.destination.store if self.destination.remote else None

    # -- set-up -------------------------------------------------------------------------
    def prepare_output(self) -> dict | None:
        """Refuse to clobber a run or to share one; return the finished manifest when resuming a complete run."""
        return self.destination.prepare(self.recipe.fingerprint(), self.overwrite, self.resume, f"curate run {self.destination.shown}")

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
            for path in self.recipe.input_files(source):
                tasks.append({"file_index": len(tasks), "source_index": si, "path": path})
        return tasks

    def _done(self, path: str) -> bool:
        return self.resume and os.path.exists(os.path.join(path, "_SUCCESS"))

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict:
        self._indexed: list[Stage] = []
        self._holds_output = False
        try:
            return self._run()
        except BaseException:
            # A failed run publishes nothing to a cross-run dedup index (docs/dedup.md).
            for stage in self._indexed:
                stage.close_index()
            if self._holds_output:
                self.destination.abandon()
            raise

    def _run(self) -> dict:
        started = time.time()
        finished = self.prepare_output()
        if finished is not None:
            finished["resumed"] = "complete"
            return finished
        self._holds_output = True
        recipe = self.recipe
        stages = recipe.build_stages(run_dir=self.output)
        # Cross-run dedup indexes are locked before any work, so a second run on one index
        # fails in a second, not after hours.
        self._indexed = [stage for stage in stages if getattr(stage.params, "index", None)]
        for stage in self._indexed:
            stage.open_index(f"curate run {self.output}")
        tokenizer = DocumentTokenizer(recipe.tokenizer.path, recipe.tokenizer.eos_token, recipe.tokenizer.batch_size)
        tokenizer.check()
        tasks = self.tasks()
        if not tasks:
            raise RuntimeError("no input files")
        segments = plan_segments(stages, with_mixture=recipe.mixture is not None)
        progress = Progress()
        for segment in segments:
            t0 = time.time()
            if segment.global_stage is None:
                self._run_files(segment, tasks, later_stages(segments), progress)
            else:
                self._run_global(segment, progress)
            self.timings[f"segment{segment.index}"] = time.time() - t0
            progress.previous_path = self._segment_path(segment)
        final = progress.final if progress.final is not None else self._read_documents(progress.previous_path)
        written = self._write_outputs(final, tokenizer, progress)
        for position, stage, entering in progress.global_entries:
            progress.funnel[position] = manifest.global_funnel(stage, entering, self.rejections, self.output)
        run_facts = manifest.RunFacts(recipe, self.output, self._spark_facts(), started, self.timings)
        result = manifest.build_manifest(run_facts, progress.funnel, progress.reader_stats, written)
        rehydration = rehydration_of(recipe.stages)
        if rehydration is not None:
            from curate.spark.rehydrate import rehydration_totals

            result["rehydrate"] = rehydration_totals(self.spark, os.path.join(self.output, "tokens"), rehydration)
        result["output"] = self.destination.shown
        self.destination.publish(result, self._write_report, skip=self.published)
        self.destination.finish(self.keep_work)
        self._holds_output = False
        # Last: the run's survivors join the index only once its outputs are complete.
        for stage in self._indexed:
            stage.commit_index()
        return result

    def _segment_path(self, segment: Segment) -> str:
        return os.path.join(self.work, segment.work_name)

    def _stats_dir(self, segment: Segment) -> str:
        return os.path.join(self.work, "stats", segment.work_name)

    def _read_documents(self, path: str) -> DataFrame:
        return self.spark.read.schema(spark_schema(DOCUMENT_SCHEMA)).parquet(path)

    def _run_files(self, segment: Segment, tasks: list[dict], later: list[Stage], progress: Progress) -> None:
        """Segment 0: one task per input file (or group), through the map stages before the first global stage."""
        seg_path, stats_dir = self._segment_path(segment), self._stats_dir(segment)
        if not self._done(seg_path):
            spark = self.spark
            n = self.recipe.spark.partitions or len(tasks)
            # Task numbers from the JVM's range, not a Python RDD: each task then starts one Python
            # worker (the mapInArrow one), not also an RDD worker to unpickle its row.
            task_df = spark.range(0, len(tasks), 1, min(n, len(tasks)))
            files = process_files(self.recipe, segment.map_stages, stats_dir, tasks, later)
            out = task_df.mapInArrow(files, spark_schema(DOCUMENT_SCHEMA))
            try:
                out.write.mode("overwrite").parquet(seg_path)
            except Exception as e:  # Spark wraps the executor's error in its own
                found = re.search(r"InputFailedError: (.+)", str(e))
                if found:  # reading.on_error: fail; say which file, not a page of JVM stack
                    raise InputFailedError(found.group(1).strip()) from None
                raise
        progress.reader_stats = manifest.collect_reader_stats(stats_dir)
        progress.funnel.extend(manifest.map_funnel(segment.map_stages, stats_dir))
        if first_segment_counts_every_document(segment.map_stages, self.recipe.sources):
            progress.live_known = (progress.funnel[-1]["docs_out"], progress.funnel[-1]["chars_out"])

    def _run_global(self, segment: Segment, progress: Progress) -> None:
        """A global stage over the live documents, then the map stages after it in the same pass."""
        seg_path, stats_dir = self._segment_path(segment), self._stats_dir(segment)
        entering_path = os.path.join(self.work, "stats", f"global{segment.index}-in.json")
        # A resumed run redoes a stage with an index: its staged part died with the run.
        if self._done(seg_path) and segment.global_stage not in self._indexed:
            with open(entering_path) as fh:
                entering = json.load(fh)
        else:
            entering = self._run_global_stage(segment, progress, entering_path)
        progress.global_entries.append((len(progress.funnel), segment.global_stage, entering))
        progress.funnel.append({})  # filled in after the final write
        progress.live_known = None
        if not segment.fused:  # a fused segment's counters exist only after the final write
            progress.funnel.extend(manifest.map_funnel(segment.map_stages, stats_dir))
            if segment.map_stages:
                progress.live_known = (progress.funnel[-1]["docs_out"], progress.funnel[-1]["chars_out"])

    def _run_global_stage(self, segment: Segment, progress: Progress, entering_path: str) -> dict:
        previous = self._read_documents(progress.previous_path)
        live = previous.filter(F.col("rejected_by").isNull())
        done = previous.filter(F.col("rejected_by").isNotNull())
        # What enters the global stage (its document count picks its plan): known from the
        # previous segment's counters when they saw every document, else one small Spark job.
        if progress.live_known is None:
            row = live.agg(F.count(F.lit(1)).alias("n"), F.sum(F.length("text")).alias("chars")).collect()[0]
            progress.live_known = (int(row["n"]), int(row["chars"] or 0))
        entering = {"docs": progress.live_known[0], "chars": progress.live_known[1]}
        write_json_atomic(entering, entering_path)  # for a resumed run, which skips this
        marked = run_global_stage(segment.global_stage, live, self.output, progress.live_known[0])
        # One pass over the marked documents: the map stages after the global stage see its
        # survivors, its rejections pass through (nothing is written to _work and read back).
        if segment.map_stages:
            marked = marked.mapInArrow(process_documents(segment.map_stages, self._stats_dir(segment)), spark_schema(DOCUMENT_SCHEMA))
        result = done.unionByName(marked)
        if segment.fused:
            progress.final, progress.fused = result, segment
        else:
            result.write.mode("overwrite").parquet(self._segment_path(segment))
        return entering

    def _write_outputs(self, final: DataFrame, tokenizer: DocumentTokenizer, progress: Progress) -> manifest.WrittenShards:
        t0 = time.time()
        if self.recipe.mixture is None:
            # Documents, rejected documents and tokens share the shard key: one shuffle, one job.
            written = self._write_final(final, tokenizer)
            self.timings["write_outputs"] = time.time() - t0
            if progress.fused is not None:
                progress.funnel.extend(manifest.map_funnel(progress.fused.map_stages, self._stats_dir(progress.fused)))
        else:
            written = self._write_mixture(final, tokenizer)
        for folder in OUTPUT_FOLDERS:
            remove_temporaries(os.path.join(self.output, folder))
        return written

    def _write_mixture(self, final: DataFrame, tokenizer: DocumentTokenizer) -> manifest.WrittenShards:
        from curate.spark.mixture import apply_mixture

        recipe = self.recipe
        t0 = time.time()
        kept = final.filter(F.col("rejected_by").isNull())
        rejected = final.filter(F.col("rejected_by").isNotNull())
        doc_infos = self._write_sharded(kept, "documents", "part", DOCUMENT_SCHEMA, None)
        rej_infos = self._write_sharded(rejected, "rejected", "part", DOCUMENT_SCHEMA, None)
        self.timings["write_documents"] = time.time() - t0

        t0 = time.time()
        tokens = kept.mapInArrow(tokenize_documents(tokenizer), spark_schema(TOKENS_SCHEMA))
        # A source's share is mixture.weights[name] when named there, else its own weight.
        weights = {src.name: recipe.mixture.weights.get(src.name, src.weight) for src in recipe.sources}
        spec = dataclasses.replace(recipe.mixture, weights=weights)
        tokens, mixture_report = apply_mixture(tokens, spec, recipe.seed)
        token_infos = self._write_sharded(tokens, "tokens", "shard", TOKENS_SCHEMA, "n_tokens")
        language_tokens = self._tokens_per_language(tokens)
        self.timings["tokenize_and_write"] = time.time() - t0
        return manifest.WrittenShards(doc_infos, rej_infos, token_infos, mixture_report, language_tokens)

    def _tokens_per_language(self, tokens: DataFrame) -> dict[str, int]:
        """Tokens of the mixed rows per language: mixed token rows carry no language, so each gets
        its document's, from the documents/ just written (two columns of them)."""
        documents = self.spark.read.parquet(os.path.join(self.output, "documents")).select("id", "language").dropDuplicates(["id"])
        language = F.coalesce(F.col("language"), F.lit(NO_LANGUAGE)).alias("language")
        rows = tokens.join(documents, "id").groupBy(language).agg(F.sum("n_tokens").alias("tokens")).collect()
        return {r["language"]: int(r["tokens"] or 0) for r in rows}

    def _keyed(self, df: DataFrame, order: list[str]) -> DataFrame:
        n = self.recipe.shards.num_shards
        return df.withColumn("_shard", F.pmod(F.xxhash64("id"), F.lit(n))).repartition(n, "_shard").sortWithinPartitions("_shard", *order)

    def _write_sharded(self, df: DataFrame, folder: str, prefix: str, schema: pa.Schema, token_column: str | None) -> list[dict]:
        os.makedirs(os.path.join(self.output, folder), exist_ok=True)
        keyed = self._keyed(df, ["id"] + (["repeat"] if "repeat" in schema.names else []))
        shards = self.recipe.shards
        writer = shard_writer(
            os.path.join(self.output, folder),
            prefix,
            schema,
            shards.compression,
            shards.row_group_size,
            token_column,
            count_reasons=folder == "rejected",
            publish_to=self.publish_to,
            count_languages=folder == "documents",
        )
        rows = keyed.mapInArrow(writer, spark_schema(SHARD_INFO_SCHEMA)).collect()
        self._note_published(rows)
        if folder == "rejected":
            self._count_reasons(rows)
        return shard_entries(self.output, shards, folder, prefix, schema, token_column, {("", r["shard"]): r.asDict() for r in rows})

    def _note_published(self, rows) -> None:
        self.published.update(os.path.relpath(r["path"], self.output) for r in rows if r["published"])

    def _count_reasons(self, rows) -> None:
        for r in rows:
            self.rejections.update(json.loads(r["reasons"] or "{}"))

    def _write_final(self, final: DataFrame, tokenizer: DocumentTokenizer) -> manifest.WrittenShards:
        """documents/, rejected/ and tokens/ (no mixture) from one shuffle of the final rows."""
        for folder in OUTPUT_FOLDERS:
            os.makedirs(os.path.join(self.output, folder), exist_ok=True)
        shards = self.recipe.shards
        by = shards.partition_by
        rehydration = rehydration_of(self.recipe.stages)
        writer = final_shard_writer(self.output, shards.compression, shards.row_group_size, tokenizer, rehydration, self.publish_to, by)
        if by is None:
            keyed = self._keyed(final, ["id"])
        else:  # kept rows grouped by their partition within a shard; rejected rows (no partition) stay in id order
            # The sort key is the folder the writer picks: a missing language and langid's own
            # "und" share one folder, so they must arrive as one group, not two.
            folder = F.coalesce(F.col(by), F.lit(NO_LANGUAGE))
            keyed = self._keyed(final.withColumn("_partition", F.when(F.col("rejected_by").isNull(), folder)), ["_partition", "id"])
        rows = keyed.mapInArrow(writer, spark_schema(SHARD_INFO_SCHEMA)).collect()
        self._note_published(rows)
        written: dict[str, dict[tuple[str, int], dict]] = {folder: {} for folder in OUTPUT_FOLDERS}
        self._count_reasons([r for r in rows if r["folder"] == "rejected"])
        for r in rows:
            written[r["folder"]][r["partition"], r["shard"]] = r.asDict()
        return manifest.WrittenShards(
            shard_entries(self.output, shards, "documents", "part", DOCUMENT_SCHEMA, None, written["documents"], by),
            shard_entries(self.output, shards, "rejected", "part", DOCUMENT_SCHEMA, None, written["rejected"]),
            shard_entries(self.output, shards, "tokens", "shard", TOKENS_SCHEMA, "n_tokens", written["tokens"], by),
        )

    # -- bookkeeping ------------------------------------------------------------------------
    def _spark_facts(self) -> dict:
        context = self.spark.sparkContext
        return {"master": context.master, "version": self.spark.version, "default_parallelism": context.defaultParallelism}

    @staticmethod
    def _write_report(folder: str, result: dict) -> str:
        try:
            from curate.report import write_report
        except ImportError:
            return ""
        return write_report(folder, result)
