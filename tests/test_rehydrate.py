"""curate/rehydrate.py (and curate/spark/rehydrate.py): survivors of near-duplicate clusters
repeated by cluster size, with the same scores from run_local and Spark, and nothing changed
when the option is off."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from curate.dedup import DedupParams, DedupStage, MinHashParams
from curate.recipe import RecipeError, parse_recipe
from curate.rehydrate import FINEWEB2_COPIES, Rehydration, copies_for, copies_table, rehydrate_table, repeat_rows
from curate.schema import TOKENS_SCHEMA, documents_from_pylist
from curate.tokens import DocumentTokenizer
from test_dedup import CHAIN, chain_texts, edit

TOKENIZER = str(ROOT / "models" / "tokenizer" / "tokenizer.json")
PARAMS = {"num_perm": CHAIN.num_perm, "bands": CHAIN.bands, "rows": CHAIN.rows, "threshold": CHAIN.threshold}


def corpus_rows(data_dir) -> list[dict]:
    """Seven clusters of three (one joined only through a chain), four pages on their own."""
    with (data_dir / "dedup" / "pages.jsonl").open(encoding="utf-8") as fh:
        pages = [json.loads(line) for line in fh]
    a, b, c = chain_texts(pages)
    rows = [{"id": "chain-a", "text": a}, {"id": "chain-b", "text": b}, {"id": "chain-c", "text": c}]
    for n, page in enumerate(pages[6:12]):
        for v in range(3):
            text = page["text"] if v == 0 else edit(page["text"], seed=n * 10 + v, every=200)
            rows.append({"id": f"near-{n}-{v}", "text": text})
    rows += [{"id": f"single-{i}", "text": page["text"]} for i, page in enumerate(pages[12:16])]
    return rows


@pytest.fixture(scope="module")
def corpus(data_dir) -> pa.Table:
    return pa.Table.from_batches([documents_from_pylist([{"source": "s", **r} for r in corpus_rows(data_dir)])])


def dedup_params(rehydrate) -> DedupParams:
    return DedupParams(minhash=MinHashParams(**{**CHAIN.__dict__, "verify": True}), rehydrate=rehydrate)


# --- the rule ---------------------------------------------------------------------------------


def test_fineweb2_table_is_the_published_step_rule():
    # huggingface/fineweb-2 README: 1 -> 1, 2 -> 2, 3 -> 3, 4 -> 3, 5..99 -> 5, 100..999 -> 8, >= 1000 -> 1
    sizes = np.array([1, 2, 3, 4, 5, 99, 100, 999, 1000, 250_000])
    assert copies_for(sizes, copies_table("fineweb2")).tolist() == [1, 2, 3, 3, 5, 5, 8, 8, 1, 1]
    assert FINEWEB2_COPIES == {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}


@pytest.mark.parametrize(
    "setting, message",
    [
        ("fineweb3", "rehydrate: unknown table 'fineweb3'"),
        ({2: 2}, "rehydrate: expected a key 1"),
        ({1: 1, 0: 2}, "rehydrate.0: expected a cluster size"),
        ({1: 1, 3: 0}, "rehydrate.3: expected a number of copies from 1 to 100, got 0"),
        ({1: 1, 3: 500}, "rehydrate.3: expected a number of copies from 1 to 100, got 500"),
        ({1: True}, "rehydrate.1: expected a number of copies"),
    ],
)
def test_bad_tables_are_refused_naming_the_key(setting, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.").replace("(", r"\(")):
        copies_table(setting)


def recipe(tmp_path, stages: list[dict], **more) -> dict:
    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"id": "1", "text": "one document"}) + "\n", encoding="utf-8")
    return {
        "name": "t",
        "output": str(tmp_path / "run"),
        "sources": [{"name": "s", "kind": "jsonl", "paths": [str(source)]}],
        "tokenizer": {"path": TOKENIZER},
        "stages": stages,
        **more,
    }


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(RecipeError, match=r"r\.yaml: stages\[0\]: rehydrate\.2: expected a number of copies"):
        parse_recipe(recipe(tmp_path, [{"stage": "dedup", "rehydrate": {1: 1, 2: 0}}]), file="r.yaml")
    with pytest.raises(RecipeError, match=r"stages\[0\]: rehydrate: needs minhash"):
        parse_recipe(recipe(tmp_path, [{"stage": "dedup", "minhash": None, "rehydrate": "fineweb2"}]), file="r.yaml")
    with pytest.raises(RecipeError, match=r"stages\[0\]\.rehydrate: cannot be combined with mixture"):
        parse_recipe(recipe(tmp_path, [{"stage": "dedup", "rehydrate": "fineweb2"}], mixture={}), file="r.yaml")
    two = [{"stage": "dedup", "rehydrate": "fineweb2"}, {"stage": "dedup", "name": "again", "rehydrate": {1: 1}}]
    with pytest.raises(RecipeError, match=r"stages\[1\]\.rehydrate: only one dedup stage may rehydrate"):
        parse_recipe(recipe(tmp_path, two), file="r.yaml")
    ok = parse_recipe(recipe(tmp_path, [{"stage": "dedup", "rehydrate": {1: 1, 10: 2}}]), file="r.yaml")
    assert ok.stages[0].params.rehydrate == {1: 1, 10: 2}


def token_batch(ids: list[str]) -> pa.RecordBatch:
    n = len(ids)
    return pa.RecordBatch.from_pydict(
        {
            "id": ids,
            "source": ["s"] * n,
            "n_tokens": [i + 1 for i in range(n)],
            "tokens": [[i] * (i + 1) for i in range(n)],
            "repeat": [0] * n,
        },
        schema=TOKENS_SCHEMA,
    )


def test_repeat_rows_numbers_the_copies_in_place():
    out, source = repeat_rows(token_batch(["a", "b", "c"]), np.array([1, 3, 2]))
    assert out.column("id").to_pylist() == ["a", "b", "b", "b", "c", "c"]
    assert out.column("repeat").to_pylist() == [0, 0, 1, 2, 0, 1]
    assert source.tolist() == [0, 1, 1, 1, 2, 2]
    assert out.schema == TOKENS_SCHEMA


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=0, max_size=30))
def test_repeat_rows_keeps_every_row_and_order(copies):
    ids = [f"d{i:03d}" for i in range(len(copies))]
    out, source = repeat_rows(token_batch(ids), np.array(copies, dtype=np.int64))
    assert out.num_rows == sum(copies)
    rows = out.to_pylist()
    # (id, repeat) ascending: the writer's (shard, id) order stays sorted
    assert [(r["id"], r["repeat"]) for r in rows] == sorted((ids[i], k) for i, c in enumerate(copies) for k in range(c))
    original = token_batch(ids).to_pylist()
    assert all({**r, "repeat": 0} == original[s] for r, s in zip(rows, source.tolist()))


# --- run_local and Spark ----------------------------------------------------------------------


def survivor_sizes(rows) -> dict[str, float]:
    return {r["id"]: dict(r["scores"])["dedup.cluster_size"] for r in rows if "dedup.cluster_size" in dict(r["scores"] or [])}


def test_run_local_scores_each_survivor_with_its_cluster_size(corpus):
    out = DedupStage(dedup_params("fineweb2")).run_local(corpus).to_pylist()
    kept = [r for r in out if r["rejected_by"] is None]
    sizes = survivor_sizes(out)
    assert len(kept) == 7 + 4 and len(sizes) == 7 and set(sizes.values()) == {3.0}
    assert all(r["rejected_by"] is None for r in out if r["id"] in sizes)
    assert {i.rsplit("-", 1)[0] for i in sizes} == {"chain"} | {f"near-{n}" for n in range(6)}
    # Off: no score, the same decisions.
    off = DedupStage(dedup_params(None)).run_local(corpus).to_pylist()
    assert survivor_sizes(off) == {}
    assert [(r["id"], r["rejected_by"], r["duplicate_of"]) for r in off] == [(r["id"], r["rejected_by"], r["duplicate_of"]) for r in out]


@pytest.mark.parametrize("table, copies", [("fineweb2", 3), ({1: 1, 3: 2}, 2), ({1: 1, 4: 9}, 1)])
def test_rehydrate_table_repeats_survivors_exactly(corpus, table, copies):
    out = DedupStage(dedup_params(table)).run_local(corpus)
    kept = out.filter(pa.compute.is_null(out.column("rejected_by")))
    tokenizer = DocumentTokenizer(TOKENIZER)
    tokens = pa.Table.from_batches([tokenizer.tokenize_documents(b) for b in kept.to_batches()], schema=TOKENS_SCHEMA)
    rehydrated = rehydrate_table(kept, tokens, Rehydration("dedup.cluster_size", copies_table(table)))
    counts: dict[str, list[int]] = {}
    for r in rehydrated.to_pylist():
        counts.setdefault(r["id"], []).append(r["repeat"])
    sizes = survivor_sizes(kept.to_pylist())
    assert {i: c for i, c in counts.items()} == {i: list(range(copies if i in sizes else 1)) for i in kept.column("id").to_pylist()}
    assert rehydrated.num_rows == kept.num_rows + 7 * (copies - 1)
    again = rehydrate_table(kept, tokens, Rehydration("dedup.cluster_size", copies_table(table)))
    assert again.equals(rehydrated)


@pytest.mark.parametrize("live_docs", [10, None], ids=["one task", "distributed"])
def test_spark_scores_equal_run_local(spark, corpus, tmp_path, live_docs):
    from curate.schema import DOCUMENT_SCHEMA
    from curate.spark.dedup import dedup_documents
    from curate.spark.job import spark_schema

    expected = survivor_sizes(DedupStage(dedup_params("fineweb2")).run_local(corpus).to_pylist())
    df = spark.createDataFrame(corpus, schema=spark_schema(DOCUMENT_SCHEMA)).repartition(3)
    rows = [r.asDict() for r in dedup_documents(df, DedupStage(dedup_params("fineweb2")), str(tmp_path), live_docs).collect()]
    assert survivor_sizes([{**r, "scores": list((r["scores"] or {}).items())} for r in rows]) == expected


def stale_singles(corpus: pa.Table) -> pa.Table:
    """The four pages without near-duplicates, carrying a cluster size an earlier run wrote."""
    rows = [r for r in corpus.to_pylist() if r["id"].startswith("single-")]
    rows = [{**r, "scores": [("q", 0.5), ("dedup.cluster_size", 50.0)]} for r in rows]
    return pa.Table.from_batches([documents_from_pylist(rows)])


def test_run_local_drops_a_stale_cluster_size(corpus):
    out = DedupStage(dedup_params("fineweb2")).run_local(stale_singles(corpus)).to_pylist()
    assert len(out) == 4 and all(r["rejected_by"] is None and r["scores"] == [("q", 0.5)] for r in out)


@pytest.mark.parametrize("live_docs", [10, None], ids=["one task", "distributed"])
def test_spark_without_any_cluster_drops_a_stale_cluster_size(spark, corpus, tmp_path, live_docs):
    from curate.schema import DOCUMENT_SCHEMA
    from curate.spark.dedup import dedup_documents
    from curate.spark.job import spark_schema

    df = spark.createDataFrame(stale_singles(corpus), schema=spark_schema(DOCUMENT_SCHEMA))
    rows = [r.asDict() for r in dedup_documents(df, DedupStage(dedup_params("fineweb2")), str(tmp_path), live_docs).collect()]
    assert len(rows) == 4 and all(r["rejected_by"] is None and r["scores"] == {"q": 0.5} for r in rows)


# --- the Spark job: tokens/, documents/ and the manifest --------------------------------------


def run_job(spark, data_dir, tmp_path, rehydrate, partitions: int = 2) -> tuple[dict, pa.Table, pa.Table]:
    from curate.pipeline import run_recipe

    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in corpus_rows(data_dir)), encoding="utf-8")
    stage = {"stage": "dedup", "minhash": {**PARAMS, "verify": True}}
    if rehydrate is not None:
        stage["rehydrate"] = rehydrate
    data = {
        "name": "t",
        "output": str(tmp_path / "run"),
        "sources": [{"name": "s", "kind": "jsonl", "paths": [str(source)]}],
        "tokenizer": {"path": TOKENIZER},
        "shards": {"num_shards": 2},
        "spark": {"partitions": partitions},
        "stages": [stage],
    }
    manifest = run_recipe(parse_recipe(data, file=str(tmp_path / "r.yaml")), spark=spark)
    return manifest, pq.read_table(tmp_path / "run" / "tokens"), pq.read_table(tmp_path / "run" / "documents")


@pytest.fixture(scope="module")
def job_runs(spark, data_dir, tmp_path_factory):
    runs = (("off", None), ("on", "fineweb2"))
    return {setting: run_job(spark, data_dir, tmp_path_factory.mktemp(name), setting) for name, setting in runs}


def test_job_writes_each_survivor_copies_times_and_reports_it(job_runs):
    manifest, tokens, documents = job_runs["fineweb2"]
    sizes = survivor_sizes(documents.to_pylist())
    assert len(sizes) == 7 and set(sizes.values()) == {3.0} and documents.num_rows == 11
    repeats: dict[str, list[int]] = {}
    for r in tokens.select(["id", "repeat"]).to_pylist():
        repeats.setdefault(r["id"], []).append(r["repeat"])
    assert repeats == {i: [0, 1, 2] if i in sizes else [0] for i in documents.column("id").to_pylist()}
    n_tokens = dict(zip(tokens.column("id").to_pylist(), tokens.column("n_tokens").to_pylist()))
    report = manifest["rehydrate"]
    assert report["documents_repeated"] == 7 and report["rows_added"] == 14
    assert report["tokens_added"] == 2 * sum(n_tokens[i] for i in sizes)
    assert report["tokens_total"] == manifest["summary"]["tokens"] == sum(tokens.column("n_tokens").to_pylist())
    assert report["copies"] == {"1": 1, "2": 2, "3": 3, "5": 5, "100": 8, "1000": 1}


def test_job_with_rehydrate_off_is_unchanged(job_runs):
    off_manifest, off_tokens, off_documents = job_runs[None]
    _, on_tokens, on_documents = job_runs["fineweb2"]
    assert "rehydrate" not in off_manifest
    assert survivor_sizes(off_documents.to_pylist()) == {}
    first_copies = on_tokens.filter(pa.compute.equal(on_tokens.column("repeat"), 0))
    assert first_copies.equals(off_tokens)
    # documents/ differ only by the survivors' new score
    strip = [{**r, "scores": [kv for kv in r["scores"] if kv[0] != "dedup.cluster_size"]} for r in on_documents.to_pylist()]
    assert strip == off_documents.to_pylist()


def test_job_token_shards_do_not_depend_on_partitioning(job_runs, spark, data_dir, tmp_path):
    _, tokens, _ = job_runs["fineweb2"]
    _, again, _ = run_job(spark, data_dir, tmp_path, "fineweb2", partitions=1)
    assert again.equals(tokens)
