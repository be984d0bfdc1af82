"""Parquet / JSONL / run readers: schema mapping, stable ids, bad records reported by position."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.recipe import SourceSpec
from curate.schema import DOCUMENT_SCHEMA, document_id
from curate.sources import read_source, source_files
from curate.stage import Counters


@pytest.fixture(scope="module")
def paragraphs(data_dir):
    path = data_dir / "text" / "wikitext-2-test.txt"
    lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines() if len(l.strip()) > 300]
    return lines[:40]


def test_jsonl_bad_lines_are_reported_and_neighbours_kept(tmp_path, paragraphs):
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i, text in enumerate(paragraphs[:5]):
            fh.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
            if i == 1:
                fh.write("{broken json\n")
            if i == 2:
                fh.write(json.dumps({"id": "d-num", "text": 42}) + "\n")
    counters, problems = Counters(), []
    spec = SourceSpec(name="wiki", kind="jsonl", paths=[str(path)])
    batches = list(read_source(spec, str(path), counters, problems))
    table = pa.Table.from_batches(batches)
    assert table.schema == DOCUMENT_SCHEMA
    assert table.column("id").to_pylist() == ["d0", "d1", "d2", "d3", "d4"]
    assert table.column("text").to_pylist() == paragraphs[:5]
    assert counters["source.records"] == 5 and counters["source.bad_records"] == 2
    assert problems[0].startswith(f"{path}: line 3: ")
    assert problems[1] == f"{path}: line 5: field 'text' is int, expected a string"


def test_parquet_field_mapping_and_generated_ids(tmp_path, paragraphs):
    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"body": paragraphs[:3], "link": ["http://a/1", None, "http://a/3"]}), path)
    spec = SourceSpec(name="c", kind="parquet", paths=[str(path)], text_field="body", url_field="link")
    table = pa.Table.from_batches(list(read_source(spec, str(path))))
    assert table.column("text").to_pylist() == paragraphs[:3]
    assert table.column("url").to_pylist() == ["http://a/1", None, "http://a/3"]
    assert table.column("id").to_pylist() == [document_id("c", "corpus.parquet", str(i)) for i in range(3)]


def test_parquet_without_text_column_is_reported(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"content": ["a"]}), path)
    problems: list[str] = []
    spec = SourceSpec(name="c", kind="parquet", paths=[str(path)])
    assert list(read_source(spec, str(path), Counters(), problems)) == []
    assert problems == [f"{path}: no column 'text' (columns: content)"]


def test_not_parquet_is_reported_by_name(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("hello")
    problems: list[str] = []
    counters = Counters()
    spec = SourceSpec(name="c", kind="parquet", paths=[str(path)])
    assert list(read_source(spec, str(path), counters, problems)) == []
    assert problems[0].startswith(f"{path}: not a readable Parquet file")
    assert counters["source.unreadable_files"] == 1


def test_run_source_reads_documents_folder(tmp_path, paragraphs):
    docs = tmp_path / "run" / "documents"
    docs.mkdir(parents=True)
    rows = [{"id": "x", "source": "old", "text": paragraphs[0], "scores": [], "flags": []}]
    pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), docs / "part-00000.parquet")
    spec = SourceSpec(name="old", kind="run", paths=[str(tmp_path / "run")])
    files = source_files(spec)
    assert files == [str(docs / "part-00000.parquet")]
    table = pa.Table.from_batches(list(read_source(spec, files[0])))
    assert table.column("text").to_pylist() == [paragraphs[0]]
