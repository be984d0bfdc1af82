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
    expected += run_writer(shard_writer(str(separate / "documents"), "part", DOCUMENT_SCHEMA, "zstd", 4, None), kept, 1000)
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
        return sorted(({k: v for k, v in i.items() if k != "path"} for i in infos), key=lambda i: (i["folder"], i["shard"]))

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
