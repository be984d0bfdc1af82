"""curate/spark/dedup.py: the distributed stage gives exactly run_local's decisions, for any
partitioning and on every run, and writes the cluster assignment."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.dedup import DedupParams, DedupStage, MinHashParams
from curate.schema import DOCUMENT_SCHEMA, documents_from_pylist
from test_dedup import CHAIN, chain_texts, edit

pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def corpus(data_dir) -> pa.Table:
    with (data_dir / "dedup" / "pages.jsonl").open(encoding="utf-8") as fh:
        pages = [json.loads(line) for line in fh]
    a, b, c = chain_texts(pages)
    rows = [
        {"id": "chain-b", "text": b, "url": "https://chain.org/b"},
        {"id": "chain-a", "text": a, "url": "https://chain.org/a"},
        {"id": "chain-c", "text": c, "url": "https://chain.org/c"},
        {"id": "exact-2", "text": pages[5]["text"].upper(), "url": "https://copy.org/2"},
        {"id": "exact-1", "text": pages[5]["text"], "url": "https://copy.org/1"},
        {"id": "url-old", "text": "an older version of the page", "url": "https://www.site.org/p/?utm_medium=x", "warc_date": "2024-01-01"},
        {"id": "url-new", "text": "the page as it is today", "url": "http://site.org/p", "warc_date": "2024-02-01"},
        {"id": "empty-1", "text": ""},
        {"id": "empty-2", "text": "  "},
        {"id": "word-1", "text": "Hello"},
        {"id": "word-2", "text": "hello?"},
    ]
    for n, page in enumerate(pages[6:12]):
        for v in range(3):
            text = page["text"] if v == 0 else edit(page["text"], seed=n * 10 + v, every=200)
            rows.append({"id": f"near-{n}-{v}", "text": text, "url": f"https://near.org/{n}/{v}"})
    return pa.Table.from_batches([documents_from_pylist([{"source": "test", **r} for r in rows])])


def decisions(rows) -> dict[str, tuple]:
    return {r["id"]: (r["rejected_by"], r["duplicate_of"], r["rejected_value"]) for r in rows}


# The two plans: every decision in one task (what a run of up to SINGLE_TASK_MAX_DOCS live
# documents gets), and the distributed joins.
PLANS = {"one task": 10, "distributed": None}


def run_spark(spark, corpus: pa.Table, stage: DedupStage, partitions: int, run_dir=None, live_docs: int | None = None) -> dict[str, tuple]:
    from curate.spark.dedup import dedup_documents
    from curate.spark.job import spark_schema

    df = spark.createDataFrame(corpus, schema=spark_schema(DOCUMENT_SCHEMA)).repartition(partitions)
    # live_docs only picks the plan: 10 (fewer than the corpus has) still means "small".
    out = dedup_documents(df, stage, str(run_dir) if run_dir else None, live_docs)
    assert out.columns == DOCUMENT_SCHEMA.names
    rows = out.collect()
    assert len(rows) == corpus.num_rows
    return decisions(r.asDict() for r in rows)


@pytest.mark.parametrize("plan", PLANS)
def test_spark_matches_run_local_for_any_partitioning(spark, corpus, tmp_path, plan):
    # Two Spark runs (1 and 4 partitions) must both give exactly run_local's decisions.
    params = DedupParams(keep="longest", minhash=MinHashParams(**{**CHAIN.__dict__, "verify": True}))
    local = DedupStage(params)
    expected = decisions(local.run_local(corpus).to_pylist())
    length = {r["id"]: len(r["text"]) for r in corpus.select(["id", "text"]).to_pylist()}
    chain_kept = min(["chain-a", "chain-b", "chain-c"], key=lambda i: (-length[i], i))
    assert expected[chain_kept] == (None, None, None)
    assert {expected[i] for i in ("chain-a", "chain-b", "chain-c") if i != chain_kept} == {("dedup.minhash", chain_kept, 3.0)}
    assert expected["exact-2"] == ("dedup.exact", "exact-1", 2.0)  # equally long: the smaller id stays
    assert expected["url-old"] == ("dedup.url", "url-new", 2.0)
    assert expected["word-1"] == ("dedup.exact", "word-2", 2.0)  # "hello?" is longer
    assert expected["empty-1"] == expected["empty-2"] == (None, None, None)
    assert sum(v[0] == "dedup.minhash" for v in expected.values()) == 2 + 2 * 6

    stage = DedupStage(params)
    assert run_spark(spark, corpus, stage, 1, run_dir=tmp_path, live_docs=PLANS[plan]) == expected
    assert run_spark(spark, corpus, DedupStage(params), 4, live_docs=PLANS[plan]) == expected
    assert stage.counters["decided_in_one_task"] == (plan == "one task")

    clusters = pq.read_table(tmp_path / "dedup" / "clusters").to_pylist()
    assert sorted((r["id"], r["cluster_id"], r["cluster_size"], r["kept"]) for r in clusters) == sorted(local.last_clusters)
    assert len(clusters) == 3 + 3 * 6  # only documents in clusters of two or more
    stats = json.loads((tmp_path / "dedup" / "stats.json").read_text())
    assert stats["minhash_clusters"] == 7 and stats["exact_duplicates"] == 2 and stats["url_duplicates"] == 1
    assert stats["exact_groups"] == 2 and stats["minhash_links"] == 14
    assert stage.counters["minhash_edges_failed_verify"] == 0
    assert stage.counters["minhash_candidate_edges"] >= 14


@pytest.mark.parametrize("plan", PLANS)
def test_keep_oldest_on_spark_matches_run_local(spark, corpus, plan):
    # Dates that make the oldest copy the last id of each group, so "oldest" != "first_id".
    dates = {"chain-c": "2023-05-01", "chain-a": "2023-06-01", "chain-b": None, "exact-2": "2022-01-01"}
    for n in range(6):
        for v in range(3):
            dates[f"near-{n}-{v}"] = f"2024-0{3 - v}-01"
    rows = corpus.to_pylist()
    for r in rows:
        r["warc_date"] = dates.get(r["id"], r["warc_date"])
    dated = pa.Table.from_batches([documents_from_pylist(rows)])
    params = DedupParams(keep="oldest", minhash=MinHashParams(**{**CHAIN.__dict__, "verify": True}))
    expected = decisions(DedupStage(params).run_local(dated).to_pylist())
    assert expected["chain-c"] == (None, None, None)
    assert expected["chain-a"] == expected["chain-b"] == ("dedup.minhash", "chain-c", 3.0)
    assert expected["exact-1"] == ("dedup.exact", "exact-2", 2.0)
    assert all(expected[f"near-{n}-2"] == (None, None, None) for n in range(6))
    assert run_spark(spark, dated, DedupStage(params), 2, live_docs=PLANS[plan]) == expected


# Rules x verify: a cut of the full matrix that still gives every rule a run on both plans
# (longest and oldest are also checked against run_local by the tests above).
@pytest.mark.parametrize("keep,verify", [("newest", True), ("highest_score", False), ("first_id", True)])
def test_one_task_and_distributed_plans_agree_on_everything(spark, corpus, tmp_path, keep, verify):
    # Decisions, the written clusters and every counter, for each survivor rule. Scores and
    # dates with ties and gaps, so that each rule's tie-breaks matter.
    rows = corpus.to_pylist()
    for n, r in enumerate(rows):
        r["warc_date"] = None if n % 4 == 0 else f"2024-0{1 + n % 3}-01"
        r["scores"] = {} if n % 5 == 0 else {"quality": float(n % 3) / 2}
    table = pa.Table.from_batches([documents_from_pylist(rows)])
    mh = MinHashParams(**{**CHAIN.__dict__, "verify": verify, "threshold": 0.9 if verify else CHAIN.threshold})
    params = DedupParams(keep=keep, score_key="quality", minhash=mh)
    got, clusters, counters = {}, {}, {}
    for plan, live_docs in PLANS.items():
        stage = DedupStage(params)
        got[plan] = run_spark(spark, table, stage, 3, run_dir=tmp_path / plan.replace(" ", "-"), live_docs=live_docs)
        written = pq.read_table(tmp_path / plan.replace(" ", "-") / "dedup" / "clusters").to_pylist()
        clusters[plan] = sorted(tuple(r.values()) for r in written)
        counters[plan] = {k: v for k, v in stage.counters.items() if k not in ("spark_seconds", "decided_in_one_task")}
    assert got["one task"] == got["distributed"]
    assert clusters["one task"] == clusters["distributed"] and clusters["one task"]
    assert counters["one task"] == counters["distributed"]
    assert counters["one task"]["exact_duplicates"] == 2 and counters["one task"]["minhash_links"] > 0
    if verify:
        assert counters["one task"]["minhash_edges_failed_verify"] > 0  # the 0.9 threshold bites
    expected = decisions(DedupStage(params).run_local(table).to_pylist())
    assert got["one task"] == expected


def test_one_task_plan_refuses_a_repeated_id():
    from curate.spark.dedup import KEYS_SCHEMA, decide_in_one_task

    keys = pa.table({"id": ["b", "a", "b"]}).append_column("exact_key", pa.nulls(3, pa.binary()))
    for field in KEYS_SCHEMA:
        if field.name not in keys.column_names:
            keys = keys.append_column(field, pa.nulls(3, field.type))
    with pytest.raises(ValueError, match="'b' occurs more than once"):
        decide_in_one_task(keys.select(KEYS_SCHEMA.names).cast(KEYS_SCHEMA), DedupStage(DedupParams()))


def test_connected_components_single_task_and_star_rounds_agree(spark):
    from curate.spark.dedup import connected_components

    rng = random.Random(7)
    nodes = [f"n{i:03d}" for i in range(300)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(220)]
    edges += [(f"c{i}", f"c{i + 1}") for i in range(30)]  # a long chain: one component
    edges += [("self", "self")]  # a self-link alone makes no component
    # Reference: components by breadth-first search, named by their smallest node.
    neighbours: dict[str, set[str]] = {}
    for a, b in edges:
        if a != b:
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
    expected, seen = {}, set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        component, frontier = {start}, [start]
        while frontier:
            for nxt in neighbours[frontier.pop()] - component:
                component.add(nxt)
                frontier.append(nxt)
        seen |= component
        expected.update({n: min(component) for n in component})
    df = spark.createDataFrame(edges, "src string, dst string").repartition(3)
    single, rounds = {}, {}
    got_single = {r["id"]: r["cluster_id"] for r in connected_components(df, single).collect()}
    got_rounds = {r["id"]: r["cluster_id"] for r in connected_components(df, rounds, single_task_max_edges=0).collect()}
    assert got_single == expected
    assert got_rounds == expected
    assert expected["c30"] == "c0" and "self" not in expected
    assert single["minhash_cc_rounds"] == 0 and rounds["minhash_cc_rounds"] >= 2
    assert single["minhash_links"] == rounds["minhash_links"] == len({tuple(sorted(e)) for e in edges if e[0] != e[1]})


def test_words_by_language_on_spark_match_run_local(spark, data_dir):
    # The words are made in the key task both plans share; the distributed plan also verifies.
    from test_dedup import spaceless_corpus

    corpus = spaceless_corpus(data_dir)
    params = DedupParams(minhash=MinHashParams(words="by_language", verify=True))
    expected = decisions(DedupStage(params).run_local(corpus).to_pylist())
    assert sum(v[0] == "dedup.minhash" for v in expected.values()) == 4
    assert run_spark(spark, corpus, DedupStage(params), 2) == expected
