"""Rehydration (``curate/rehydrate.py``) on Spark: the survivors' cluster sizes as a score,
and the manifest's totals of what the repeated rows added.

The repeating itself happens in the final writer's tasks (``curate/spark/job.py``), on the
Arrow batches it tokenizes, with :meth:`curate.rehydrate.Rehydration.expand`.
"""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from curate.rehydrate import Rehydration, cluster_size_key, rehydration_report
from curate.schema import DOCUMENT_COLUMNS

# The dedup stage's clusters/ (curate/spark/dedup.py); given, not inferred: a run without any
# MinHash cluster writes the folder without rows.
CLUSTERS_SCHEMA = "id string, cluster_id string, cluster_size long, kept boolean"


def add_cluster_sizes(docs: DataFrame, stage, run_dir: str | None) -> DataFrame:
    """``docs`` with ``<stage>.cluster_size`` added to the scores of every cluster survivor.

    The sizes come from the ``clusters/`` folder the dedup stage has just written (survivors
    of clusters of two or more); ``run_local`` adds the same scores.
    """
    if not run_dir:
        raise ValueError(f"{stage.name}: rehydrate needs a run folder (it reads {stage.name}/clusters)")
    folder = os.path.join(run_dir, stage.name, "clusters")
    session = docs.sparkSession
    clusters = (
        session.read.schema(CLUSTERS_SCHEMA).parquet(folder) if os.path.isdir(folder) else session.createDataFrame([], CLUSTERS_SCHEMA)
    )
    survivors = clusters.where(F.col("kept")).select("id", F.col("cluster_size").cast("double").alias("_cluster_size"))
    key = cluster_size_key(stage.name)
    # A size an earlier run recorded does not survive a new dedup (and map_concat refuses a
    # repeated key).
    others = F.map_filter(F.col("scores"), lambda k, v: k != F.lit(key))
    added = F.map_concat(others, F.create_map(F.lit(key), F.col("_cluster_size")))
    return (
        docs.join(survivors, "id", "left")
        .withColumn("scores", F.when(F.col("_cluster_size").isNotNull(), added).otherwise(others))
        .select(*DOCUMENT_COLUMNS)
    )


def rehydration_totals(spark: SparkSession, tokens_dir: str, rehydration: Rehydration) -> dict:
    """The manifest's ``rehydrate`` entry, counted from the written token shards."""
    tokens = spark.read.parquet(tokens_dir).select("id", "n_tokens", "repeat")
    row = tokens.agg(
        F.sum(F.when(F.col("repeat") > 0, 1).otherwise(0)).alias("rows"),
        F.sum(F.when(F.col("repeat") > 0, F.col("n_tokens")).otherwise(0)).alias("tokens"),
        F.countDistinct(F.when(F.col("repeat") > 0, F.col("id"))).alias("documents"),
        F.sum("n_tokens").alias("total"),
    ).collect()[0]
    counts = [int(row[name] or 0) for name in ("rows", "tokens", "documents", "total")]
    return rehydration_report(rehydration, *counts)
