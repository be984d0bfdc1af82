"""curate/spark/shard_writers.py: the shard writers, run as Spark runs them (an iterator of sorted batches per task) but
without Spark: the one-pass final writer must produce exactly the files of the three separate
writes it replaced (which the mixture path still uses)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.schema import DOCUMENT_SCHEMA, TOKENS_SCHEMA, documents_from_pylist
from curate.shards import list_shards, shard_index
from curate.spark.shard_writers import final_shard_writer, shard_writer
from curate.tokens import DocumentTokenizer

ROOT = Path(__file__).resolve().parents[1]
N_SHARDS = 3


@pytest.fixture(scope="module")
def tokenizer() -> DocumentTokenizer:
    return DocumentTokenizer(str(ROOT / "models" / "tokenizer" / "tokenizer.json"), "<|endoftext|>")


@pytest.fixture(scope="module")
def documents(data_dir) -> pa.Table:
    """Real pages, each twice under another id; every third one rejected by a rule."""
    with open(data_dir / "dedup" / "pages.jsonl") as fh:
        pages = [json.loads(line) for line in fh]
    rows = []
    for copy in range(2):
        for i, page in enumerate(pages):
            rows.append({"id": f"{copy}-{i:03d}", "url": page["url"], "source": "cc" if i % 2 else "wiki", "text": page["text"]})
    for k, row in enumerate(rows):
        if k % 3 == 0:
            row["rejected_by"] = "gopher_quality.min_words"
            row["rejected_value"] = float(k)
    return pa.Table.from_batches([documents_from_pylist(rows)])


def sorted_with_shards(table: pa.Table) -> pa.Table:
    """What Spark hands a writer: ``_shard`` added, rows ordered by (_shard, id)."""
    keyed = table.append_column("_shard", pa.array(shard_index(table.column("id").to_pylist(), N_SHARDS), pa.int64()))
    return keyed.sort_by([("_shard", "ascending"), ("id", "ascending")])


def run_writer(writer, table: pa.Table, batch_rows: int) -> list[dict]:
    infos = []
    for out in writer(iter(table.to_batches(max_chunksize=batch_rows))):
        infos.extend(out.to_pylist())
    return infos


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {os.path.basename(p): open(p, "rb").read() for p in list_shards(str(folder))}


@pytest.mark.parametrize("batch_rows", [1, 5, 1000])
def test_one_pass_writer_equals_three_separate_writes(tmp_path, documents, tokenizer, batch_rows):
    keyed = sorted_with_shards(documents)
    kept = keyed.filter(pc.is_null(keyed.column("rejected_by")))
    rejected = keyed.filter(pc.is_valid(keyed.column("rejected_by")))
    tokens = pa.Table.from_batches([tokenizer.tokenize_documents(b) for b in kept.drop(["_shard"]).to_batches()], schema=TOKENS_SCHEMA)
    tokens = tokens.append_column("_shard", kept.column("_shard"))

    separate = tmp_path / "separate"
    expected = []
    documents_writer = shard_writer(str(separate / "documents"), "part", DOCUMENT_SCHEMA, "zstd", 4, None, count_languages=True)
    expected += run_writer(documents_writer, kept, 1000)
    expected += run_writer(
        shard_writer(str(separate / "rejected"), "part", DOCUMENT_SCHEMA, "zstd", 4, None, count_reasons=True), rejected, 1000
    )
    expected += run_writer(shard_writer(str(separate / "tokens"), "shard", TOKENS_SCHEMA, "zstd", 4, "n_tokens"), tokens, 1000)

    one_pass = tmp_path / "one"
    got = run_writer(final_shard_writer(str(one_pass), "zstd", 4, tokenizer), keyed, batch_rows)

    for folder in ("documents", "rejected", "tokens"):
        assert file_bytes(one_pass / folder) == file_bytes(separate / folder), folder
        assert not [f for f in os.listdir(one_pass / folder) if f.startswith(".")]

    def strip(infos):
        # the separate tokens/ writer (the mixture path's) sees token rows only, which carry no language
        kept = [{k: v for k, v in i.items() if k != "path" and (k, i["folder"]) != ("per_language", "tokens")} for i in infos]
        return sorted(kept, key=lambda i: (i["folder"], i["shard"]))

    assert strip(got) == strip(expected)
    by_folder = {f: sum(i["rows"] for i in got if i["folder"] == f) for f in ("documents", "rejected", "tokens")}
    assert by_folder == {"documents": 21, "rejected": 11, "tokens": 21}
    # rows and characters per rejection reason, which the global stages' funnel entries use
    reasons: Counter = Counter()
    for info in got:
        reasons.update(json.loads(info["reasons"] or "{}"))
    truth: Counter = Counter()
    for reason, text in zip(rejected.column("rejected_by").to_pylist(), rejected.column("text").to_pylist()):
        truth[f"rejected:{reason}"] += 1
        truth[f"rejected_chars:{reason}"] += len(text or "")
    assert reasons == truth and sum(v for k, v in truth.items() if k.startswith("rejected:")) == 11
    assert sum(i["tokens"] for i in got) == sum(tokens.column("n_tokens").to_pylist()) > 0


def test_one_pass_writer_row_groups_do_not_depend_on_batches(tmp_path, documents, tokenizer):
    keyed = sorted_with_shards(documents)
    run_writer(final_shard_writer(str(tmp_path / "a"), "zstd", 3, tokenizer), keyed, 1)
    run_writer(final_shard_writer(str(tmp_path / "b"), "zstd", 3, tokenizer), keyed, 7)
    for folder in ("documents", "rejected", "tokens"):
        a, b = file_bytes(tmp_path / "a" / folder), file_bytes(tmp_path / "b" / folder)
        assert a == b and len(a) == N_SHARDS
    import pyarrow.parquet as pq

    for path in list_shards(str(tmp_path / "a" / "tokens")):
        meta = pq.ParquetFile(path).metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        assert all(s == 3 for s in sizes[:-1]) and 0 < sizes[-1] <= 3
        ids = pq.read_table(path).column("id").to_pylist()
        assert ids == sorted(ids)
    assert np.all(np.diff([len(os.listdir(tmp_path / "a" / f)) for f in ("documents", "rejected", "tokens")]) == 0)


@pytest.fixture(scope="module")
def multilingual(data_dir) -> pa.Table:
    """The eight real pages of tests/data/multilingual (German ... Japanese) three times each under other
    ids, with their ISO 639-3 + script pair, and the dedup pages without a language; every fourth rejected."""
    from curate.language_settings import language_script

    pages = [json.loads(line) for line in (data_dir / "multilingual" / "pages.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [
        {"id": f"{copy}-{i:03d}", "source": "web", "url": page["url"], "text": page["text"], "language": language_script(page["language"])}
        for copy in range(3)
        for i, page in enumerate(pages)
    ]
    with open(data_dir / "dedup" / "pages.jsonl") as fh:
        rows += [
            {"id": f"x-{i:03d}", "source": "cc", "url": page["url"], "text": page["text"]} for i, page in enumerate(map(json.loads, fh))
        ]
    for k, row in enumerate(rows):
        if k % 5 == 0:
            row["rejected_by"] = "langid.low_score"
    return pa.Table.from_batches([documents_from_pylist(rows)])


def sorted_by_partition(table: pa.Table) -> pa.Table:
    """What Spark hands the writer of a partitioned run: kept rows grouped by language within a shard."""
    keyed = sorted_with_shards(table)
    partition = pc.if_else(pc.is_null(keyed.column("rejected_by")), keyed.column("language"), pa.scalar(None, pa.string()))
    keyed = keyed.append_column("_partition", partition)
    return keyed.sort_by([("_shard", "ascending"), ("_partition", "ascending"), ("id", "ascending")])


def test_partitioned_writer_puts_each_language_in_its_folder(tmp_path, multilingual, tokenizer):
    kept = multilingual.filter(pc.is_null(multilingual.column("rejected_by")))
    infos = run_writer(
        final_shard_writer(str(tmp_path / "p"), "zstd", 4, tokenizer, partition_by="language"), sorted_by_partition(multilingual), 5
    )
    run_writer(final_shard_writer(str(tmp_path / "flat"), "zstd", 4, tokenizer), sorted_with_shards(multilingual), 5)

    truth = Counter(kept.column("language").to_pylist())
    folders = sorted(os.listdir(tmp_path / "p" / "documents"))
    assert folders == sorted(f"language={lang or 'und'}" for lang in truth)
    assert "language=deu_Latn" in folders and "language=jpn_Jpan" in folders and len(folders) == 9
    assert sorted(os.listdir(tmp_path / "p" / "tokens")) == folders
    for language, n in truth.items():
        folder = f"language={language or 'und'}"
        documents = list_shards(str(tmp_path / "p" / "documents" / folder))
        tokens = list_shards(str(tmp_path / "p" / "tokens" / folder))
        doc_ids = [pq_ids(path) for path in documents]
        assert sum(len(ids) for ids in doc_ids) == n and all(ids == sorted(ids) for ids in doc_ids)
        assert [pq_ids(path) for path in tokens] == doc_ids
        assert "language" not in pq.ParquetFile(documents[0]).schema_arrow.names  # the folder holds it

    # Readers get the column back from the folder names (documents without a language: und).
    read = pq.read_table(tmp_path / "p" / "documents").sort_by("id")
    assert read.column("language").to_pylist() == kept.sort_by("id").column("language").fill_null("und").to_pylist()
    assert read.drop(["language"]).column("text").to_pylist() == kept.sort_by("id").column("text").to_pylist()
    # rejected/ is not split and is byte-identical to the unpartitioned run's
    assert file_bytes(tmp_path / "p" / "rejected") == file_bytes(tmp_path / "flat" / "rejected")

    per_language: dict[str, Counter] = {"documents": Counter(), "tokens": Counter()}
    for info in infos:
        if info["folder"] in per_language:
            for language, (rows, amount) in json.loads(info["per_language"]).items():
                per_language[info["folder"]][language] += rows
    assert per_language["documents"] == per_language["tokens"] == Counter({lang or "und": n for lang, n in truth.items()})


def pq_ids(path: str) -> list[str]:
    return pq.read_table(path, columns=["id"]).column("id").to_pylist()


def test_languages_are_counted_without_partitions(tmp_path, multilingual, tokenizer):
    infos = run_writer(final_shard_writer(str(tmp_path), "zstd", 4, tokenizer), sorted_with_shards(multilingual), 7)
    kept = multilingual.filter(pc.is_null(multilingual.column("rejected_by")))
    chars, tokens = Counter(), Counter()
    for info in infos:
        for language, (rows, amount) in json.loads(info["per_language"]).items():
            (chars if info["folder"] == "documents" else tokens)[language] += amount
    truth = Counter()
    for language, text in zip(kept.column("language").to_pylist(), kept.column("text").to_pylist()):
        truth[language or "und"] += len(text)
    assert chars == truth and sum(chars.values()) == sum(len(t) for t in kept.column("text").to_pylist())
    assert sum(tokens.values()) == sum(i["tokens"] for i in infos) > 0 and set(tokens) == set(truth)
    assert not any(json.loads(i["per_language"]) for i in infos if i["folder"] == "rejected")


def test_rows_not_grouped_by_partition_are_refused(tmp_path, multilingual, tokenizer):
    writer = final_shard_writer(str(tmp_path), "zstd", 4, tokenizer, partition_by="language")
    with pytest.raises(RuntimeError, match="arrived after its file was written"):
        run_writer(writer, sorted_with_shards(multilingual), 1000)  # (shard, id) order interleaves languages


def test_empty_shards_are_written_in_every_language_folder(tmp_path, multilingual, tokenizer):
    from curate.recipe import ShardSpec
    from curate.spark.shard_writers import shard_entries

    infos = run_writer(
        final_shard_writer(str(tmp_path), "zstd", 4, tokenizer, partition_by="language"), sorted_by_partition(multilingual), 50
    )
    written = {(i["partition"], i["shard"]): i for i in infos if i["folder"] == "documents"}
    entries = shard_entries(str(tmp_path), ShardSpec(num_shards=N_SHARDS), "documents", "part", DOCUMENT_SCHEMA, None, written, "language")
    languages = {i["partition"] for i in infos if i["folder"] == "documents"}
    assert len(entries) == N_SHARDS * len(languages) == len(list_shards(str(tmp_path / "documents")))
    assert [e["path"] for e in entries if e["language"] == "und"] == [
        f"documents/language=und/part-{k:05d}.parquet" for k in range(N_SHARDS)
    ]
    kept = multilingual.filter(pc.is_null(multilingual.column("rejected_by")))
    assert {e["language"] for e in entries} == set(kept.column("language").fill_null("und").to_pylist())
    assert sum(e["rows"] for e in entries) == sum(i["rows"] for i in written.values())


def test_rehydrated_copies_stay_in_their_languages_folder_and_count_there(tmp_path, multilingual, tokenizer):
    from curate.rehydrate import Rehydration
    from curate.schema import add_scores

    # every German and Russian document is a survivor of a cluster of 2 (FineWeb-2's table: 2 copies)
    sizes = [2.0 if lang in ("deu_Latn", "rus_Cyrl") else None for lang in multilingual.column("language").to_pylist()]
    table = pa.Table.from_batches([add_scores(b, {"dedup.cluster_size": sizes}) for b in multilingual.combine_chunks().to_batches()])
    rehydration = Rehydration("dedup.cluster_size", {1: 1, 2: 2, 3: 3})
    writer = final_shard_writer(str(tmp_path), "zstd", 4, tokenizer, rehydration, partition_by="language")
    infos = run_writer(writer, sorted_by_partition(table), 3)
    kept = table.filter(pc.is_null(table.column("rejected_by")))
    for language in set(kept.column("language").fill_null("und").to_pylist()):
        ids = [
            i for i, lang in zip(kept.column("id").to_pylist(), kept.column("language").fill_null("und").to_pylist()) if lang == language
        ]
        rows = pa.concat_tables([pq.ParquetFile(p).read() for p in list_shards(str(tmp_path / "tokens" / f"language={language}"))])
        copies = 2 if language in ("deu_Latn", "rus_Cyrl") else 1
        assert sorted(rows.column("id").to_pylist()) == sorted(ids * copies)
        counted = sum(json.loads(i["per_language"]).get(language, [0, 0])[1] for i in infos if i["folder"] == "tokens")
        assert counted == sum(rows.column("n_tokens").to_pylist()) > 0
