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


# --- where the files are: listings, URLs, files that keep failing --------------------------------


def write_listing(path, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def test_a_listing_is_prefixed_sampled_and_limited_reproducibly(tmp_path):
    from curate.sources import SampleSpec, listing_paths

    lines = [f"crawl-data/CC-MAIN-2024-10/segments/{i:03d}/warc/part-{i:05d}.warc.gz" for i in range(200)]
    write_listing(tmp_path / "warc.paths.gz", ["# comment", *lines, ""])
    base = "https://data.commoncrawl.org/"  # only prefixed to the listing's lines (and hashed by the sample): never fetched
    spec = SourceSpec(name="cc", kind="warc", listing=str(tmp_path / "warc.paths.gz"), base_url=base)
    assert listing_paths(spec) == [base + line for line in lines]
    sampled = listing_paths(SourceSpec(name="cc", kind="warc", listing=spec.listing, base_url=base, sample=SampleSpec(n=5, seed=1)))
    again = listing_paths(SourceSpec(name="cc", kind="warc", listing=spec.listing, base_url=base, sample=SampleSpec(n=5, seed=1)))
    other = listing_paths(SourceSpec(name="cc", kind="warc", listing=spec.listing, base_url=base, sample=SampleSpec(n=5, seed=2)))
    assert sampled == again and sampled != other and len(sampled) == 5
    assert [p[len(base) :] for p in sampled] == [line for line in lines if base + line in sampled]  # listing order kept
    assert [p.rsplit("-", 1)[1] for p in sampled] == ["00016.warc.gz", "00024.warc.gz", "00093.warc.gz", "00142.warc.gz", "00176.warc.gz"]
    limited = SourceSpec(name="cc", kind="warc", listing=spec.listing, base_url=base, sample=SampleSpec(n=50, seed=1), limit=3)
    assert (
        listing_paths(limited)
        == listing_paths(SourceSpec(name="cc", kind="warc", listing=spec.listing, base_url=base, sample=SampleSpec(n=50, seed=1)))[:3]
    )


def test_a_listing_and_its_files_over_a_throttling_http_server(tmp_path, data_dir):
    from servers import fault_server

    warcs = sorted((data_dir / "warc").glob("*.warc.gz"))
    (tmp_path / "served").mkdir()
    for warc in warcs:
        (tmp_path / "served" / warc.name).write_bytes(warc.read_bytes())
    write_listing(tmp_path / "served" / "warc.paths", [w.name for w in warcs])
    local = [b for w in warcs for b in read_source(SourceSpec(name="web", kind="warc", paths=[str(w)]), str(w))]
    with fault_server(tmp_path / "served", "--fail-first", "2", "--fail-kind", "503") as server:
        from curate.sources import InputAccess

        spec = SourceSpec(name="web", kind="warc", listing=f"{server.url}/warc.paths", base_url=server.url + "/")
        files = source_files(spec)
        assert files == sorted(f"{server.url}/{w.name}" for w in warcs)
        counters, access = Counters(), InputAccess(policy_options={"backoff_base_s": 0.01, "backoff_max_s": 0.02})
        remote = [b for f in files for b in read_source(spec, f, counters, [], access=access)]
    assert pa.Table.from_batches(remote).equals(pa.Table.from_batches(local))
    assert counters["storage.retries:throttled"] >= 2 * len(warcs) and counters["warc.kept"] == 38


def test_a_file_that_keeps_failing_is_skipped_or_stops_the_run(tmp_path):
    from curate.sources import InputAccess, InputFailedError
    from servers import fault_server

    with fault_server(tmp_path) as server:
        url = f"{server.url}/crawl/gone.warc.gz?X-Amz-Signature=secret"
        spec = SourceSpec(name="web", kind="warc", paths=[url])
        counters, problems = Counters(), []
        assert list(read_source(spec, url, counters, problems)) == []
        assert counters["storage.failed_files:not_found"] == 1
        assert problems == [
            f"{server.url}/crawl/gone.warc.gz?X-Amz-Signature=%3Credacted%3E: unreadable after 1 attempt(s) (not_found: HEAD answered 404); skipped (reading.on_error: skip)"
        ]
        with pytest.raises(InputFailedError, match=r"gone\.warc\.gz.*not_found.*reading\.on_error: fail") as failed:
            list(read_source(spec, url, Counters(), [], access=InputAccess(on_error="fail")))
        assert "secret" not in str(failed.value)
