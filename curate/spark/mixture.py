"""The mixture (``curate/mixture.py``) applied to a Spark DataFrame of token rows.

Only per-source totals reach the driver. Full epochs of an up-sampled source are an
``explode`` of a small ``repeat`` sequence; the partial epoch of a source is a per-source
running sum of tokens in the seeded draw order (a window partitioned by source), which is
the same rule ``mix_table`` applies locally, so both give identical rows.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from curate.mixture import MixturePlan, mixture_report, plan_mixture, sampling_keys
from curate.recipe import MixtureSpec
from curate.schema import TOKENS_SCHEMA

_KEYED_SCHEMA = TOKENS_SCHEMA.append(pa.field("_key", pa.int64(), nullable=False))


def _add_keys(seed: int):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            keys = sampling_keys(batch.column("id"), seed)
            yield pa.RecordBatch.from_arrays(
                [batch.column(name) for name in TOKENS_SCHEMA.names] + [pa.array(keys, type=pa.int64())],
                schema=_KEYED_SCHEMA,
            )

    return run


def apply_mixture(tokens_df: DataFrame, spec: MixtureSpec, seed: int) -> tuple[DataFrame, dict]:
    """Mix token rows (``TOKENS_SCHEMA``, ``repeat == 0``) to ``spec``; returns rows and report.

    The report (per source: available, requested share, achieved tokens and share, epochs,
    repeats) is computed from the mixed rows, which are cached because the caller writes them
    right after.
    """
    totals = tokens_df.groupBy("source").agg(F.sum("n_tokens").alias("tokens"), F.count("*").alias("documents")).collect()
    plan = plan_mixture({r["source"]: (int(r["tokens"] or 0), int(r["documents"])) for r in totals}, spec)
    parts = [part for part in (_full_epochs(tokens_df, plan), _partial_epochs(tokens_df, plan, seed)) if part is not None]
    mixed = parts[0]
    for part in parts[1:]:
        mixed = mixed.unionByName(part)
    mixed = mixed.persist()
    rows = (
        mixed.groupBy("source")
        .agg(F.sum("n_tokens").alias("tokens"), F.count("*").alias("rows"), F.max("repeat").alias("max_repeat"))
        .collect()
    )
    achieved = {r["source"]: (int(r["tokens"]), int(r["rows"]), int(r["max_repeat"])) for r in rows}
    return mixed, mixture_report(plan, achieved, seed, spec)


def _full_epochs(tokens_df: DataFrame, plan: MixturePlan) -> DataFrame | None:
    """Every row of each source with full epochs, once per epoch (``repeat`` 0, 1, ...)."""
    full = {s: p.full_epochs for s, p in plan.sources.items() if p.full_epochs > 0}
    if not full:
        return None
    epochs = F.create_map(*[x for s, e in sorted(full.items()) for x in (F.lit(s), F.lit(e))])
    repeated = (
        tokens_df.filter(F.col("source").isin(list(full)))
        .withColumn("_epochs", epochs[F.col("source")])
        .withColumn("_pass", F.explode(F.sequence(F.lit(0), F.col("_epochs") - 1)))
        .withColumn("repeat", F.col("_pass").cast("int"))
    )
    return repeated.select(*TOKENS_SCHEMA.names)


def _partial_epochs(tokens_df: DataFrame, plan: MixturePlan, seed: int) -> DataFrame | None:
    """Each source's partial epoch: rows in the seeded draw order while their tokens fit."""
    partial = {s: p for s, p in plan.sources.items() if p.partial_tokens > 0}
    if not partial:
        return None
    columns = list(TOKENS_SCHEMA.names)
    wanted = F.create_map(*[x for s, p in sorted(partial.items()) for x in (F.lit(s), F.lit(p.partial_tokens))])
    next_repeat = F.create_map(*[x for s, p in sorted(partial.items()) for x in (F.lit(s), F.lit(p.full_epochs))])
    keyed = (
        tokens_df.filter(F.col("source").isin(list(partial))).select(*columns).mapInArrow(_add_keys(seed), from_arrow_schema(_KEYED_SCHEMA))
    )
    order = Window.partitionBy("source").orderBy("_key", "id").rowsBetween(Window.unboundedPreceding, -1)
    drawn = (
        keyed.withColumn("_before", F.coalesce(F.sum(F.col("n_tokens").cast("long")).over(order), F.lit(0).cast("long")))
        # take a document when more than half of it fits (curate.mixture.take_partial)
        .filter(2 * F.col("_before") + F.col("n_tokens") <= 2 * wanted[F.col("source")])
        .withColumn("repeat", next_repeat[F.col("source")].cast("int"))
    )
    return drawn.select(*columns)
