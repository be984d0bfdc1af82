"""curate/decontaminate.py: WikiText-2 passages planted in real pages are found, clean pages are kept."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.decontaminate import DecontaminateParams, DecontaminateStage, ProtectedSet
from curate.schema import documents_from_pylist
from curate.stage import run_map_stages


@pytest.fixture(scope="module")
def wiki_paragraphs(data_dir) -> list[str]:
    lines = (data_dir / "text" / "wikitext-2-test.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if len(line.split()) > 60 and not line.strip().startswith("=")]


@pytest.fixture(scope="module")
def pages(data_dir) -> list[dict]:
    """Main text of the real pages of the bundled sample WARC (the clean side)."""
    from curate.extract import ExtractParams, ExtractStage
    from curate.recipe import SourceSpec
    from curate.sources import read_source

    source = SourceSpec(name="web", kind="warc", paths=[str(data_dir / "warc" / "dolma-sample-0000.warc.gz")])
    stage = ExtractStage(ExtractParams(), name="extract")
    rows = []
    for batch in read_source(source, source.paths[0]):
        kept, _ = run_map_stages([stage], batch)
        rows += kept.select(["id", "url", "text"]).to_pylist()
    return rows


@pytest.fixture(scope="module")
def wiki_stage(data_dir) -> DecontaminateStage:
    stage = DecontaminateStage(DecontaminateParams(sets=[ProtectedSet("wikitext", [str(data_dir / "text" / "wikitext-2-test.txt")])]))
    stage.check()
    stage.ensure_setup()
    return stage


def _documents(rows: list[dict]):
    return documents_from_pylist([{"source": "web", **row} for row in rows])


def test_clean_pages_are_kept(pages, wiki_stage):
    assert len(pages) >= 15
    kept, rejected = run_map_stages([wiki_stage], _documents(pages))
    assert rejected.num_rows == 0 and kept.num_rows == len(pages)


def test_planted_passages_are_found_whole_and_in_part(pages, wiki_paragraphs, wiki_stage):
    from curate.dedup import normalize_text

    passage = wiki_paragraphs[7]
    words = normalize_text(passage).split()  # the words the stage compares
    # the whole passage goes in raw: WikiText's "@-@", spaces before commas and its case do
    # not hide it, since both sides are normalised to words
    part = " ".join(words[20:34]).title()
    rows = [
        {"id": "whole", "url": pages[0]["url"], "text": pages[0]["text"] + "\n" + passage},
        {"id": "part", "url": pages[1]["url"], "text": pages[1]["text"] + "\n" + part + ".\n" + pages[2]["text"]},
        {"id": "short", "url": pages[2]["url"], "text": pages[2]["text"] + "\n" + " ".join(words[20:32])},  # 12 words
    ]
    kept, rejected = run_map_stages([wiki_stage], _documents(rows))
    assert kept.column("id").to_pylist() == ["short"]
    found = {r["id"]: r for r in rejected.to_pylist()}
    assert set(found) == {"whole", "part"}
    assert found["whole"]["rejected_by"] == found["part"]["rejected_by"] == "decontaminate.wikitext"
    assert found["part"]["rejected_value"] == 2.0  # 14 words hold two 13-grams
    assert found["whole"]["rejected_value"] >= len(words) - 12
    assert found["part"]["duplicate_of"].startswith("wikitext:")
    note = [f for f in found["part"]["flags"] if f.startswith("decontaminate.wikitext.ngram=")]
    assert note == ["decontaminate.wikitext.ngram=" + " ".join(words[20:33])]


def test_a_hash_match_with_other_words_removes_nothing(pages, wiki_paragraphs, wiki_stage, data_dir):
    stage = DecontaminateStage(DecontaminateParams(sets=[ProtectedSet("wikitext", [str(data_dir / "text" / "wikitext-2-test.txt")])]))
    stage.ensure_setup()
    index = stage._index
    # make every stored n-gram point at other words: each hash still matches, the words never do
    import numpy as np

    index.starts = np.where(index.starts > 0, index.starts - 1, index.starts + 1)
    rows = [{"id": "x", "url": None, "text": wiki_paragraphs[3]}]
    kept, rejected = run_map_stages([stage], _documents(rows))
    assert rejected.num_rows == 0 and kept.num_rows == 1
    assert stage.counters["hash_collisions"] > 0


def test_urls_of_protected_documents_are_removed(tmp_path, pages):
    protected = tmp_path / "eval.jsonl.gz"
    with gzip.open(protected, "wt") as fh:
        fh.write(json.dumps({"text": "a short protected page", "url": pages[4]["url"]}) + "\n")
    stage = DecontaminateStage(DecontaminateParams(sets=[ProtectedSet("heldout", [str(protected)], kind="jsonl")]))
    stage.check()
    variant = pages[4]["url"] + ("&" if "?" in pages[4]["url"] else "?") + "utm_source=feed"
    rows = [{"id": "same", "url": variant, "text": pages[4]["text"]}, {"id": "other", "url": pages[5]["url"], "text": pages[5]["text"]}]
    kept, rejected = run_map_stages([stage], _documents(rows))
    assert kept.column("id").to_pylist() == ["other"]
    assert rejected.to_pylist()[0]["rejected_by"] == "decontaminate.heldout.url"
    assert rejected.to_pylist()[0]["duplicate_of"] == "heldout:0"


def test_a_missing_protected_file_fails_before_any_work(tmp_path):
    stage = DecontaminateStage(DecontaminateParams(sets=[ProtectedSet("gone", [str(tmp_path / "nope.txt")])]), name="decont")
    with pytest.raises(Exception, match="decont: protected set 'gone': no file matches"):
        stage.check()
    with pytest.raises(ValueError, match="set name"):
        DecontaminateParams(sets=[ProtectedSet("a.b", ["x"])]).validate()


@settings(max_examples=25, deadline=None)
@given(start=st.integers(0, 40), length=st.integers(13, 30), prefix=st.text(max_size=80), suffix=st.text(max_size=80))
def test_any_13_protected_words_in_any_text_are_found(wiki_paragraphs, wiki_stage, start, length, prefix, suffix):
    from curate.dedup import normalize_text

    words = normalize_text(wiki_paragraphs[11]).split()
    # line breaks around the planted words: they must not merge with the random text around them
    text = prefix + "\n" + " ".join(words[start : start + length]) + "\n" + suffix
    kept, rejected = run_map_stages([wiki_stage], _documents([{"id": "p", "url": None, "text": text}]))
    assert rejected.num_rows == 1 and rejected.column("rejected_by")[0].as_py() == "decontaminate.wikitext"
