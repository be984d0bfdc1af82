"""The ``dedup`` stage on Spark: exact, URL and MinHash-LSH with connected components.

Plan (``docs`` are the live documents, DOCUMENT_SCHEMA):

1. ``mapInArrow`` computes, per document, the exact key (hash of normalised text), the URL
   key, the fields the survivor choice needs, and the LSH band buckets of its MinHash
   signature. The NumPy code of :class:`curate.dedup.MinHasher` does the heavy part, one
   Arrow batch at a time; no per-document Python UDF.
2. Exact groups, then URL groups among the survivors: a window per key keeps the first row in
   "keep" order (ties by id).
3. MinHash among the survivors of 1-2: one row per (document, band); every bucket with two or
   more documents links each member to the bucket's smallest id (a star, enough for
   connectivity), optionally only if the two signatures agree on >= threshold of their
   values (``verify``). Connected components of these links come from one union-find in a
   single Spark task when there are at most ``SINGLE_TASK_MAX_EDGES`` distinct links, else
   from alternating large-star / small-star rounds (Kiveris et al., 2014), each round's
   edges checkpointed so the lineage stays one round long. Both give every node the
   smallest document id of its component (tests check they agree).
4. The decisions (only for duplicates) are joined back onto the documents.

When the caller says how many live documents there are and they are at most
``SINGLE_TASK_MAX_DOCS``, steps 2-3 run instead in one Spark task that receives every
document's keys (:func:`decide_in_one_task`): the same rules, tie-breaks, clusters and
counters, in two Spark jobs instead of a dozen. The keys are still computed in parallel.

Nothing proportional to the number of documents reaches the driver: it only collects counts
(convergence checks and the stage's counters). Every choice is by id, so the result is the
same for any partitioning and any number of runs.

Written under ``run_dir/<stage name>/`` when a run folder is given:

* ``clusters/``: Parquet (``id``, ``cluster_id``, ``cluster_size``, ``kept``) for every
  document in a MinHash cluster of two or more documents. Singletons are left out: they are
  the vast majority and carry no information. ``cluster_id`` is the smallest id of the
  cluster; ``kept`` marks the survivor.
* ``stats.json``: the stage's counters (groups, clusters, candidate edges, rounds).
"""

from __future__ import annotations

import os
import time
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from curate.dedup import (
    DedupStage,
    MinHasher,
    MinHashParams,
    band_buckets,
    document_words,
    exact_keys,
    has_shingles,
    normalize_url,
    shingle_words,
)
from curate.dedup_engine import SURVIVOR_ORDER, URL_KEEP, components, groups_to_rejections, minhash_links, survivor_rank
from curate.schema import DOCUMENT_COLUMNS, scores_of

KEYS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("exact_key", pa.binary()),
        pa.field("url_key", pa.string()),
        pa.field("n_chars", pa.int64()),
        pa.field("warc_date", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("buckets", pa.list_(pa.int64())),
        pa.field("signature", pa.list_(pa.int32())),
    ]
)

KEYS_SPARK_SCHEMA = T.StructType(
    [
        T.StructField("id", T.StringType(), False),
        T.StructField("exact_key", T.BinaryType()),
        T.StructField("url_key", T.StringType()),
        T.StructField("n_chars", T.LongType()),
        T.StructField("warc_date", T.StringType()),
        T.StructField("score", T.DoubleType()),
        T.StructField("buckets", T.ArrayType(T.LongType())),
        T.StructField("signature", T.ArrayType(T.IntegerType())),
    ]
)

MAX_ROUNDS = 64
# Up to this many distinct links, the components are found by one union-find in one Spark
# task (an executor holds ~100 bytes per link: 200 MB at the limit). Each large-star /
# small-star round costs several Spark jobs (seconds each even on tiny inputs), so the
# iterative algorithm is kept for edge sets too big for one task.
SINGLE_TASK_MAX_EDGES = 2_000_000


def _document_keys(stage: DedupStage):
    params = stage.params

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        minhash = params.minhash
        hasher = MinHasher.from_params(minhash) if minhash is not None else None
        layout = minhash.band_layout() if minhash is not None else None
        for batch in batches:
            n = batch.num_rows
            if n == 0:
                continue
            texts = batch.column("text")
            words = document_words(texts)  # normalised once, used by the exact and MinHash keys
            exact = exact_keys(words) if params.exact else [None] * n
            urls = [normalize_url(u) for u in batch.column("url").to_pylist()] if params.url else [None] * n
            n_chars = pc.utf8_length(pc.fill_null(texts, "")).cast(pa.int64())
            scores = [None if s is None or s != s else s for s in scores_of(batch, params.score_key)]
            buckets = pa.nulls(n, pa.list_(pa.int64()))
            signature_column = pa.nulls(n, pa.list_(pa.int32()))
            if hasher is not None:
                shingled = shingle_words(batch, minhash.words, words)
                rows = np.flatnonzero(has_shingles(shingled))
                if len(rows):
                    signatures = hasher.signatures(shingled.take(pa.array(rows)))
                    keys = band_buckets(signatures, *layout)
                    buckets = _scatter_lists(keys, rows, n, pa.int64())
                    if minhash.verify:
                        signature_column = _scatter_lists(signatures.view(np.int32), rows, n, pa.int32())
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("id"),
                    pa.array(exact, type=pa.binary()),
                    pa.array(urls, type=pa.string()),
                    n_chars,
                    batch.column("warc_date"),
                    pa.array(scores, type=pa.float64()),
                    buckets,
                    signature_column,
                ],
                schema=KEYS_SCHEMA,
            )

    return run


def _scatter_lists(values: np.ndarray, rows: np.ndarray, n: int, item_type: pa.DataType) -> pa.Array:
    """A list array of length ``n``: row ``rows[i]`` holds ``values[i]``, other rows are null."""
    width = values.shape[1]
    lengths = np.zeros(n, dtype=np.int32)
    lengths[rows] = width
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    valid = np.zeros(n, dtype=bool)
    valid[rows] = True
    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=item_type)
    mask = pa.array(~valid)
    return pa.ListArray.from_arrays(pa.array(offsets), flat, mask=mask)


def survivor_window(keep: str) -> list[Column]:
    """Window order putting the survivor first: :data:`curate.dedup_engine.SURVIVOR_ORDER` as Spark columns."""
    order = [F.col(name).desc_nulls_last() if descending else F.col(name).asc_nulls_last() for name, descending in SURVIVOR_ORDER[keep]]
    return order + [F.col("id").asc()]


def _freeze(df: DataFrame) -> DataFrame:
    """Cut ``df``'s lineage; it is materialised by the first action that reads it.

    A reliable checkpoint when the session has a checkpoint directory (clusters), else a
    local one (kept by the executors).
    """
    if df.sparkSession.sparkContext.getCheckpointDir():
        return df.checkpoint(eager=False)
    return df.localCheckpoint(eager=False)


def _fingerprint(edges: DataFrame) -> tuple:
    """(count, two 64-bit hash sums) of an edge set: equal fingerprints mean equal sets
    (a false match needs two simultaneous 64-bit collisions)."""
    row = edges.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.xxhash64("a", "b").cast("decimal(38,0)")).alias("h1"),
        F.sum(F.hash("b", "a").cast("decimal(38,0)") * F.lit(4294967296) + F.hash("a", "b").cast("decimal(38,0)")).alias("h2"),
    ).collect()[0]
    return (row["n"], row["h1"], row["h2"])


def _group_decisions(keys: DataFrame, key: str, keep: str, reason: str) -> DataFrame:
    """(id, rejected_by, rejected_value, duplicate_of) for every non-survivor of a key group."""
    grouped = keys.where(F.col(key).isNotNull())
    ordered = Window.partitionBy(key).orderBy(*survivor_window(keep))
    whole = Window.partitionBy(key)
    ranked = (
        grouped.withColumn("_rank", F.row_number().over(ordered))
        .withColumn("_kept", F.first("id").over(ordered))
        .withColumn("_size", F.count(F.lit(1)).over(whole))
    )
    return ranked.where(F.col("_rank") > 1).select(
        "id",
        F.lit(reason).alias("rejected_by"),
        F.col("_size").cast("double").alias("rejected_value"),
        F.col("_kept").alias("duplicate_of"),
    )


COMPONENTS_SCHEMA = T.StructType([T.StructField("id", T.StringType(), False), T.StructField("cluster_id", T.StringType(), False)])


def _union_find_components(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """All (a, b) links of the task -> (id, smallest id of its component), one union-find."""
    a_ids: list[str] = []
    b_ids: list[str] = []
    for batch in batches:
        a_ids += batch.column("a").to_pylist()
        b_ids += batch.column("b").to_pylist()
    # Number the nodes in id order: the engine's union-find roots each component at its
    # smallest row, which is then its smallest id.
    names = sorted(set(a_ids) | set(b_ids))
    row = {name: i for i, name in enumerate(names)}
    root = components(len(names), ((row[a], row[b]) for a, b in zip(a_ids, b_ids)))
    chunk = 65_536
    for start in range(0, len(names), chunk):
        ids = names[start : start + chunk]
        roots = [names[root[i]] for i in range(start, start + len(ids))]
        yield pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), pa.array(roots, pa.string())], names=["id", "cluster_id"])


def connected_components(edges: DataFrame, counters: dict | None = None, single_task_max_edges: int = SINGLE_TASK_MAX_EDGES) -> DataFrame:
    """(id, cluster_id) for every node of an undirected graph given as (src, dst) string pairs.

    ``cluster_id`` is the smallest id of the node's component. Up to
    ``single_task_max_edges`` distinct links, one union-find in one Spark task finds the
    components. Above that, alternating large-star and small-star rounds turn every
    component into a star around its smallest node; each round's edge set is checkpointed,
    and the loop stops when a round changes nothing.
    """
    current = _freeze(
        edges.where(F.col("src") != F.col("dst")).select(F.least("src", "dst").alias("a"), F.greatest("src", "dst").alias("b")).distinct()
    )
    fingerprint = _fingerprint(current)
    if counters is not None:
        counters["minhash_links"] = fingerprint[0]
    if fingerprint[0] <= single_task_max_edges:
        if counters is not None:
            counters["minhash_cc_rounds"] = 0  # 0 = one union-find task
        return current.coalesce(1).mapInArrow(_union_find_components, COMPONENTS_SCHEMA)
    stars, rounds = _star_rounds(current, fingerprint)
    if counters is not None:
        counters["minhash_cc_rounds"] = rounds
    # Converged: every edge is (component minimum, member).
    return (
        stars.select(F.col("b").alias("id"), F.col("a").alias("cluster_id"))
        .unionByName(stars.select(F.col("a").alias("id"), F.col("a").alias("cluster_id")))
        .distinct()
    )


def _star_rounds(current: DataFrame, fingerprint: tuple) -> tuple[DataFrame, int]:
    """Large-star then small-star rounds until one changes nothing: (the last round's edges, rounds)."""
    rounds = 0
    while True:
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
        nxt = _freeze(_small_star(_large_star(current)))
        new_fingerprint = _fingerprint(nxt)  # also materialises the checkpoint
        current.unpersist()
        current = nxt
        if new_fingerprint == fingerprint:
            return current, rounds
        fingerprint = new_fingerprint


def _large_star(current: DataFrame) -> DataFrame:
    """Every node links its larger neighbours to the smallest of itself and its neighbours."""
    both = current.select(F.col("a").alias("u"), F.col("b").alias("v")).unionByName(
        current.select(F.col("b").alias("u"), F.col("a").alias("v"))
    )
    smallest = both.groupBy("u").agg(F.min("v").alias("mv")).select("u", F.least("u", "mv").alias("m"))
    return both.where(F.col("v") > F.col("u")).join(smallest, "u").select(F.col("m").alias("a"), F.col("v").alias("b")).distinct()


def _small_star(large: DataFrame) -> DataFrame:
    """Every node links itself and its smaller neighbours to the smallest of them."""
    smallest_below = large.groupBy("b").agg(F.min("a").alias("m"))
    with_min = large.join(smallest_below, "b")
    return (
        with_min.where(F.col("a") != F.col("m"))
        .select(F.col("m").alias("a"), F.col("a").alias("b"))
        .unionByName(with_min.select(F.col("m").alias("a"), F.col("b").alias("b")))
        .distinct()
    )


# Up to this many live documents, all decisions come from one Spark task holding every
# document's keys instead of a dozen Spark jobs of joins and windows, whose planning alone took
# 6 s of driver time on 5,000 documents. At the limit, with signatures carried (`verify`), the
# one task took 51 s and 3.2 GB in all against 83 s and 4.0 GB distributed (bench/README.md).
# Both give the same decisions, clusters and counters (tests/test_spark_dedup.py).
SINGLE_TASK_MAX_DOCS = 400_000

OUTCOMES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),  # null only on the task's one counters row
        ("rejected_by", pa.string()),
        ("rejected_value", pa.float64()),
        ("duplicate_of", pa.string()),
        ("cluster_id", pa.string()),  # set for every member of a MinHash cluster
        ("cluster_size", pa.int64()),
        ("kept", pa.bool_()),
        ("task_counters", pa.string()),  # JSON, on the counters row
    ]
)


def _keys_rank(keys: pa.Table, keep: str) -> np.ndarray:
    """Rank of each KEYS_SCHEMA row in "who survives" order (the engine's rule)."""
    columns = {name: keys.column(name).to_pylist() for name, _ in SURVIVOR_ORDER[keep]}
    return survivor_rank(keys.column("id").to_pylist(), keep, columns)


class _OneTaskDecisions:
    """What the one task decides per row (rows in id order), and its counters."""

    def __init__(self, ids: list[str], stage_name: str):
        self.ids, self.stage_name = ids, stage_name
        n = len(ids)
        self.live = np.ones(n, dtype=bool)
        self.rejected_by: list = [None] * n
        self.value: list = [None] * n
        self.duplicate_of: list = [None] * n
        self.counters: dict[str, float] = {}
        # MinHash clusters of two or more, by row: the cluster's smallest row, its size, its survivor
        self.cluster_of: dict[int, int] = {}
        self.size_of: dict[int, int] = {}
        self.kept_of: dict[int, int] = {}

    def reject(self, row: int, rule: str, size: int, kept_row: int) -> None:
        self.rejected_by[row], self.value[row], self.duplicate_of[row] = f"{self.stage_name}.{rule}", float(size), self.ids[kept_row]

    def group_rule(self, group: list, rank: np.ndarray, rule: str) -> None:
        """Exact or URL groups among the live rows: all but the survivor of each are rejected."""
        rejected, kept_row, sizes = groups_to_rejections(group, rank, self.live)
        rows = np.flatnonzero(rejected).tolist()
        for row in rows:
            self.reject(row, rule, sizes[row], kept_row[row])
        self.live[rows] = False
        if rows:
            self.counters[f"{rule}_duplicates"] = len(rows)
            self.counters[f"{rule}_groups"] = len({kept_row[row] for row in rows})

    def outcomes(self) -> pa.Table:
        """OUTCOMES_SCHEMA rows of every rejected or clustered row (no counters row)."""
        cluster_of = self.cluster_of
        out_rows = sorted(set(cluster_of) | {row for row in range(len(self.ids)) if self.rejected_by[row] is not None})
        return pa.table(
            {
                "id": pa.array([self.ids[r] for r in out_rows], pa.string()),
                "rejected_by": pa.array([self.rejected_by[r] for r in out_rows], pa.string()),
                "rejected_value": pa.array([self.value[r] for r in out_rows], pa.float64()),
                "duplicate_of": pa.array([self.duplicate_of[r] for r in out_rows], pa.string()),
                "cluster_id": pa.array([self.ids[cluster_of[r]] if r in cluster_of else None for r in out_rows], pa.string()),
                "cluster_size": pa.array([self.size_of.get(r) for r in out_rows], pa.int64()),
                "kept": pa.array([self.kept_of[r] == r if r in cluster_of else None for r in out_rows], pa.bool_()),
                "task_counters": pa.nulls(len(out_rows), pa.string()),
            },
            schema=OUTCOMES_SCHEMA,
        )


def _minhash_clusters(keys: pa.Table, mh: MinHashParams, rank: np.ndarray, decisions: _OneTaskDecisions) -> None:
    """MinHash clusters among the live rows with buckets; all but each cluster's survivor rejected."""
    n = len(decisions.ids)
    counters = decisions.counters
    bands, rows = mh.band_layout()
    counters["minhash_bands"], counters["minhash_rows"] = bands, rows
    hashed = np.flatnonzero(decisions.live & pc.is_valid(keys.column("buckets")).to_numpy(zero_copy_only=False))
    links: list[tuple[int, int]] = []
    if len(hashed):
        buckets = pc.list_flatten(keys.column("buckets").take(pa.array(hashed))).to_numpy().reshape(len(hashed), bands)
        signature = keys.column("signature")

        def signatures_of(rows: np.ndarray) -> np.ndarray:
            return pc.list_flatten(signature.take(pa.array(rows))).to_numpy().reshape(len(rows), -1)

        links, verify_counters = minhash_links(buckets, hashed, signatures_of if mh.verify else None, mh.num_perm, mh.threshold)
        counters.update(verify_counters)
    counters["minhash_links"] = len(links)
    counters["minhash_cc_rounds"] = 0
    cluster_of = components(n, links)  # root = smallest row = smallest id
    rejected, kept_row, sizes = groups_to_rejections([cluster_of.get(row) for row in range(n)], rank, np.ones(n, dtype=bool))
    for node in cluster_of:
        decisions.size_of[node], decisions.kept_of[node] = sizes[node], kept_row[node]
        if rejected[node]:
            decisions.reject(node, "minhash", sizes[node], kept_row[node])
    decisions.cluster_of = cluster_of
    if cluster_of:
        counters["minhash_duplicates"] = int(rejected.sum())
        counters["minhash_clusters"] = len(cluster_of) - int(rejected.sum())


def decide_in_one_task(keys: pa.Table, stage: DedupStage) -> tuple[pa.Table, dict]:
    """The distributed plan's decisions, clusters and counters, from all keys at once.

    ``keys`` holds KEYS_SCHEMA rows of every live document. Returns OUTCOMES_SCHEMA rows
    (one per rejected or clustered document, no counters row) and the counters.
    """
    params = stage.params
    keys = keys.sort_by("id")
    ids = keys.column("id").to_pylist()
    for a, b in zip(ids, ids[1:]):
        if a == b:
            raise ValueError(f"{stage.name}: document id {a!r} occurs more than once")
    decisions = _OneTaskDecisions(ids, stage.name)
    rank = _keys_rank(keys, params.keep)
    if params.exact:
        decisions.group_rule(keys.column("exact_key").to_pylist(), rank, "exact")
    if params.url:
        decisions.group_rule(keys.column("url_key").to_pylist(), _keys_rank(keys, URL_KEEP), "url")
    if params.minhash is not None:
        _minhash_clusters(keys, params.minhash, rank, decisions)
    return decisions.outcomes(), decisions.counters


def _one_task_outcomes(stage: DedupStage):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import json

        keys = pa.Table.from_batches(list(batches), schema=KEYS_SCHEMA)
        outcomes, counters = decide_in_one_task(keys, stage)
        yield from outcomes.to_batches(max_chunksize=65_536)
        counter_row = {name: None for name in OUTCOMES_SCHEMA.names}
        counter_row["task_counters"] = json.dumps(counters)
        yield pa.RecordBatch.from_pylist([counter_row], schema=OUTCOMES_SCHEMA)

    return run


def _minhash_decisions(keys: DataFrame, stage: DedupStage, counters: dict, run_dir: str | None) -> DataFrame:
    mh = stage.params.minhash
    hashed = keys.where(F.col("buckets").isNotNull())
    bands = hashed.select("id", F.posexplode("buckets").alias("band", "bucket"))
    roots = bands.groupBy("band", "bucket").agg(F.min("id").alias("root"), F.count(F.lit(1)).alias("n")).where(F.col("n") >= 2).drop("n")
    edges = bands.join(roots, ["band", "bucket"]).where(F.col("id") != F.col("root"))
    edges = edges.select(F.col("id").alias("src"), F.col("root").alias("dst")).distinct()
    if mh.verify:
        signatures = hashed.select("id", "signature")
        pairs = edges.join(signatures.withColumnRenamed("id", "src").withColumnRenamed("signature", "s1"), "src").join(
            signatures.withColumnRenamed("id", "dst").withColumnRenamed("signature", "s2"), "dst"
        )
        agree = F.aggregate(F.zip_with("s1", "s2", lambda x, y: F.when(x == y, 1).otherwise(0)), F.lit(0), lambda acc, x: acc + x)
        checked = _freeze(pairs.withColumn("_pass", agree / F.lit(float(mh.num_perm)) >= F.lit(mh.threshold)).select("src", "dst", "_pass"))
        row = checked.agg(F.count(F.lit(1)).alias("n"), F.sum(F.when(F.col("_pass"), 0).otherwise(1)).alias("failed")).collect()[0]
        counters["minhash_candidate_edges"] = row["n"]
        counters["minhash_edges_failed_verify"] = row["failed"] or 0
        edges = checked.where("_pass").select("src", "dst")
    components = connected_components(edges, counters)
    ordered = Window.partitionBy("cluster_id").orderBy(*survivor_window(stage.params.keep))
    whole = Window.partitionBy("cluster_id")
    clusters = _freeze(
        components.join(keys.select("id", "n_chars", "warc_date", "score"), "id")
        .withColumn("_rank", F.row_number().over(ordered))
        .withColumn("_kept_id", F.first("id").over(ordered))
        .withColumn("cluster_size", F.count(F.lit(1)).over(whole))
        .select("id", "cluster_id", "cluster_size", (F.col("_rank") == 1).alias("kept"), "_kept_id")
    )
    if run_dir:
        target = os.path.join(run_dir, stage.name, "clusters")
        clusters.drop("_kept_id").write.mode("overwrite").parquet(target)
    return clusters.where(~F.col("kept")).select(
        "id",
        F.lit(f"{stage.name}.minhash").alias("rejected_by"),
        F.col("cluster_size").cast("double").alias("rejected_value"),
        F.col("_kept_id").alias("duplicate_of"),
    )


def _decisions_in_one_task(keys: DataFrame, stage: DedupStage, counters: dict, run_dir: str | None) -> DataFrame:
    import json

    outcomes = _freeze(keys.repartition(1).mapInArrow(_one_task_outcomes(stage), from_arrow_schema(OUTCOMES_SCHEMA)))
    for row in outcomes.where(F.col("id").isNull()).select("task_counters").collect():  # materialises it
        counters.update(json.loads(row["task_counters"]))
    if run_dir and stage.params.minhash is not None:
        target = os.path.join(run_dir, stage.name, "clusters")
        outcomes.where(F.col("cluster_id").isNotNull()).select("id", "cluster_id", "cluster_size", "kept").write.mode("overwrite").parquet(
            target
        )
    return outcomes.where(F.col("rejected_by").isNotNull()).select("id", "rejected_by", "rejected_value", "duplicate_of")


def dedup_documents(docs: DataFrame, stage: DedupStage, run_dir: str | None, live_docs: int | None = None) -> DataFrame:
    """The live documents with duplicates marked (same rows, same columns).

    ``rejected_by`` is ``<stage>.exact``, ``<stage>.url`` or ``<stage>.minhash``,
    ``duplicate_of`` the surviving document's id and ``rejected_value`` the size of the group
    (exact or URL copies, or MinHash cluster). With a cross-run index (``index``), documents
    that match an earlier run's survivor are ``<stage>.earlier_<rule>`` (``index_keep:
    oldest``), and this run's survivors are staged for the index (:mod:`curate.dedup_index`).

    ``live_docs``, when the caller knows it (the job counts the live documents), picks the
    plan: up to ``SINGLE_TASK_MAX_DOCS`` documents are decided in one
    task (:func:`decide_in_one_task`), more by the distributed joins.
    """
    started = time.time()
    counters: dict[str, float] = {}
    keys = docs.select("id", "text", "language", "url", "warc_date", "scores").mapInArrow(_document_keys(stage), KEYS_SPARK_SCHEMA)
    session = stage.index_session
    if session is None:
        marked = _run_decisions(keys, stage, counters, run_dir, live_docs)
        return _mark(docs, marked, stage, counters, run_dir, started)
    from curate.spark.dedup_index import earlier_decisions, stage_survivors

    keys = _freeze(keys)  # read again to stage the survivors
    rest, earlier = keys, None
    if stage.params.index_keep == "oldest":
        earlier = _freeze(earlier_decisions(keys, stage, counters))
        rest = keys.join(earlier.select("id"), "id", "left_anti")
    marked = _run_decisions(rest, stage, counters, run_dir, live_docs)
    if earlier is not None:
        marked = _freeze(earlier.unionByName(marked))
    stage_survivors(keys.join(marked.select("id"), "id", "left_anti"), stage, counters)
    return _mark(docs, marked, stage, counters, run_dir, started)


def _run_decisions(keys: DataFrame, stage: DedupStage, counters: dict, run_dir: str | None, live_docs: int | None) -> DataFrame:
    """(id, rejected_by, rejected_value, duplicate_of) of the duplicates among ``keys``."""
    params = stage.params
    if live_docs is not None and live_docs <= SINGLE_TASK_MAX_DOCS:
        marked = _decisions_in_one_task(keys, stage, counters, run_dir)
        counters["decided_in_one_task"] = 1
        return marked
    keys = _freeze(keys)
    decisions: list[DataFrame] = []
    live = keys
    if params.exact:
        exact = _freeze(_group_decisions(live, "exact_key", params.keep, f"{stage.name}.exact"))
        decisions.append(exact)
        live = live.join(exact.select("id"), "id", "left_anti")
    if params.url:
        url = _freeze(_group_decisions(live, "url_key", URL_KEEP, f"{stage.name}.url"))
        decisions.append(url)
        live = live.join(url.select("id"), "id", "left_anti")
    if params.minhash is not None:
        bands, rows = params.minhash.band_layout()
        counters["minhash_bands"], counters["minhash_rows"] = bands, rows
        decisions.append(_minhash_decisions(live, stage, counters, run_dir))
    if decisions:
        marked = decisions[0]
        for more in decisions[1:]:
            marked = marked.unionByName(more)
    else:
        marked = keys.sparkSession.createDataFrame([], "id string, rejected_by string, rejected_value double, duplicate_of string")
    # One small job for all counters: duplicates and groups (distinct survivors) per rule.
    for row in marked.groupBy("rejected_by").agg(F.count(F.lit(1)).alias("n"), F.countDistinct("duplicate_of").alias("groups")).collect():
        rule = row["rejected_by"].rsplit(".", 1)[-1]
        counters[f"{rule}_duplicates"] = row["n"]
        counters[f"{rule}_groups" if rule != "minhash" else "minhash_clusters"] = row["groups"]
    counters["decided_in_one_task"] = 0
    return marked


def _mark(docs: DataFrame, marked: DataFrame, stage: DedupStage, counters: dict, run_dir: str | None, started: float) -> DataFrame:
    """``docs`` with the decisions (id, rejected_by, rejected_value, duplicate_of) applied."""
    marked = marked.select(
        "id", F.col("rejected_by").alias("_by"), F.col("rejected_value").alias("_value"), F.col("duplicate_of").alias("_of")
    )
    joined = docs.join(marked, "id", "left")
    newly = F.col("rejected_by").isNull() & F.col("_by").isNotNull()
    out = (
        joined.withColumn("rejected_value", F.when(newly, F.col("_value")).otherwise(F.col("rejected_value")))
        .withColumn("duplicate_of", F.when(newly, F.col("_of")).otherwise(F.col("duplicate_of")))
        .withColumn("rejected_by", F.coalesce(F.col("rejected_by"), F.col("_by")))
        .select(*DOCUMENT_COLUMNS)
    )
    if stage.params.rehydrate is not None:
        from curate.spark.rehydrate import add_cluster_sizes

        out = add_cluster_sizes(out, stage, run_dir)
    counters["spark_seconds"] = round(time.time() - started, 3)
    stage.counters.update(counters)
    if run_dir:
        from curate.shards import write_json_atomic

        os.makedirs(os.path.join(run_dir, stage.name), exist_ok=True)
        write_json_atomic(counters, os.path.join(run_dir, stage.name, "stats.json"))
    return out
