"""The cross-run dedup index on Spark: match a run's keys against earlier runs, stage its survivors.

Same rules as the one-process path (:func:`curate.dedup_index.match_earlier`), as joins:
rules in order exact, url, minhash (a shared band bucket); a document matched by one rule is
not tried by the next; among the earlier documents a key matches, the one kept is the
earliest snapshot (``index_keep: oldest``) or the latest (``newest``), then the smallest id.
Only committed parts are read (:func:`curate.dedup_index.committed_parts`).
"""

from __future__ import annotations

import os

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate.dedup import DedupStage
from curate.dedup_index import committed_parts, part_files

_ENTRY = "id string, snapshot int, warc_date string"
_SCHEMAS = {"exact": f"key binary, {_ENTRY}", "url": f"key string, {_ENTRY}", "bucket": f"bucket long, {_ENTRY}"}
MATCHES_SCHEMA = "id string, rule string, earlier_id string, snapshot int"


def _earlier_order(index_keep: str) -> list[Column]:
    snapshot = F.col("snapshot").asc() if index_keep == "oldest" else F.col("snapshot").desc()
    return [snapshot, F.col("id").asc()]


def _read(spark, folders: list[str], schema: str) -> DataFrame | None:
    files = [f for folder in folders for f in part_files(folder)]
    return spark.read.schema(schema).parquet(*files) if files else None


def _best_per_key(entries: DataFrame, key: list[str], index_keep: str) -> DataFrame:
    """One earlier document per key: the earliest (oldest) or latest (newest) snapshot, then smallest id."""
    ranked = entries.withColumn("_rank", F.row_number().over(Window.partitionBy(*key).orderBy(*_earlier_order(index_keep))))
    return ranked.where(F.col("_rank") == 1).select(*key, F.col("id").alias("earlier_id"), "snapshot")


def _earlier_buckets(spark, parts: list[str], bands: int) -> DataFrame | None:
    tables = []
    for band in range(bands):
        table = _read(spark, [os.path.join(p, "minhash", f"band={band}") for p in parts], _SCHEMAS["bucket"])
        if table is not None:
            tables.append(table.withColumn("band", F.lit(band)))
    if not tables:
        return None
    out = tables[0]
    for more in tables[1:]:
        out = out.unionByName(more)
    return out


def earlier_matches(keys: DataFrame, stage: DedupStage, index_keep: str) -> DataFrame:
    """(id, rule, earlier_id, snapshot) for the documents of ``keys`` that match an earlier run."""
    spark = keys.sparkSession
    params = stage.params
    parts = committed_parts(stage.index_session.path)
    found: list[DataFrame] = []
    remaining = keys
    for rule, column in (("exact", "exact_key"), ("url", "url_key")):
        if not getattr(params, rule):
            continue
        table = _read(spark, [os.path.join(p, rule) for p in parts], _SCHEMAS[rule])
        if table is None:
            continue
        best = _best_per_key(table, ["key"], index_keep)
        hits = (
            remaining.where(F.col(column).isNotNull())
            .join(best, F.col(column) == F.col("key"))
            .select("id", F.lit(rule).alias("rule"), "earlier_id", "snapshot")
        )
        hits = hits.localCheckpoint()
        found.append(hits)
        remaining = remaining.join(hits.select("id"), "id", "left_anti")
    if params.minhash is not None:
        buckets = _earlier_buckets(spark, parts, params.minhash.band_layout()[0])
        if buckets is not None:
            best = _best_per_key(buckets, ["band", "bucket"], index_keep)
            exploded = remaining.where(F.col("buckets").isNotNull()).select("id", F.posexplode("buckets").alias("band", "bucket"))
            hits = exploded.join(best, ["band", "bucket"]).select("id", "earlier_id", "snapshot")
            per_doc = Window.partitionBy("id").orderBy(*_earlier_order(index_keep)[:1], F.col("earlier_id").asc())
            hits = hits.withColumn("_rank", F.row_number().over(per_doc)).where(F.col("_rank") == 1)
            found.append(hits.select("id", F.lit("minhash").alias("rule"), "earlier_id", "snapshot"))
    if not found:
        return spark.createDataFrame([], MATCHES_SCHEMA)
    out = found[0]
    for more in found[1:]:
        out = out.unionByName(more)
    return out


def earlier_decisions(keys: DataFrame, stage: DedupStage, counters: dict) -> DataFrame:
    """``index_keep: oldest``: the rejections of documents an earlier run already kept."""
    matches = earlier_matches(keys, stage, "oldest").localCheckpoint()
    for row in matches.groupBy("rule").count().collect():
        counters[f"earlier_{row['rule']}_duplicates"] = row["count"]
    return matches.select(
        "id",
        F.concat(F.lit(f"{stage.name}.earlier_"), F.col("rule")).alias("rejected_by"),
        F.col("snapshot").cast("double").alias("rejected_value"),
        F.col("earlier_id").alias("duplicate_of"),
    )


def stage_survivors(survivors: DataFrame, stage: DedupStage, counters: dict) -> None:
    """Write the run's survivors (KEYS_SCHEMA rows) into the index's staging folder."""
    session = stage.index_session
    params = stage.params
    snapshot = F.lit(session.snapshot).cast(T.IntegerType()).alias("snapshot")
    entry = [F.col("id"), snapshot, F.col("warc_date")]
    for rule, column in (("exact", "exact_key"), ("url", "url_key")):
        rows = survivors.where(F.col(column).isNotNull()) if getattr(params, rule) else survivors.limit(0)
        rows.select(F.col(column).alias("key"), *entry).coalesce(1).write.parquet(session.folder(rule))
    if params.minhash is not None:
        exploded = survivors.where(F.col("buckets").isNotNull()).select(F.posexplode("buckets").alias("band", "bucket"), *entry)
        exploded.repartition("band").write.partitionBy("band").parquet(session.folder("minhash"))
    superseded = 0
    if params.index_keep == "newest":
        matches = earlier_matches(survivors, stage, "newest").localCheckpoint()
        for row in matches.groupBy("rule").count().collect():
            counters[f"superseded_{row['rule']}"] = row["count"]
            superseded += row["count"]
        matches.select(F.col("earlier_id").alias("id"), "snapshot", F.col("id").alias("superseded_by"), "rule").coalesce(1).write.parquet(
            session.folder("superseded")
        )
    session.write_part_info(stage.name, superseded)
    counters["index_snapshot"] = session.snapshot
    counters["index_documents_added"] = survivors.count()
