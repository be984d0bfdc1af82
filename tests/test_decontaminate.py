"""curate/decontaminate.py: WikiText-2 passages planted in real pages are found; clean pages, and pages sharing only boilerplate, are kept."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
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
    part = " ".join(words[20:40]).title()  # 20 words: min_words
    rows = [
        {"id": "whole", "url": pages[0]["url"], "text": pages[0]["text"] + "\n" + passage},
        {"id": "part", "url": pages[1]["url"], "text": pages[1]["text"] + "\n" + part + ".\n" + pages[2]["text"]},
        {"id": "short", "url": pages[2]["url"], "text": pages[2]["text"] + "\n" + " ".join(words[20:39])},  # 19 words
    ]
    kept, rejected = run_map_stages([wiki_stage], _documents(rows))
    assert kept.column("id").to_pylist() == ["short"]
    found = {r["id"]: r for r in rejected.to_pylist()}
    assert set(found) == {"whole", "part"}
    assert found["whole"]["rejected_by"] == found["part"]["rejected_by"] == "decontaminate.wikitext"
    assert found["part"]["rejected_value"] == 20.0  # words of the document covered by the paragraph's 13-grams
    assert found["whole"]["rejected_value"] == float(len(words))
    assert found["part"]["duplicate_of"].startswith("wikitext:")
    note = [f for f in found["part"]["flags"] if f.startswith("decontaminate.wikitext.ngram=")]
    assert note == ["decontaminate.wikitext.ngram=" + " ".join(words[20:33])]
    assert wiki_stage.counters["documents_below_threshold"] >= 1  # "short" shared n-grams, too few words


# Boilerplate a protected page can carry, as it is printed on millions of pages: a wire service's footer
# (15 words) and Wikipedia's citation notice (25 words, all of its 13-grams in the shipped reference sample).
WIRE_FOOTER = "All rights reserved. This material may not be published, broadcast, rewritten or redistributed."
CITATION_NOTICE = (
    "This article needs additional citations for verification. Please help improve this article by adding citations to "
    "reliable sources. Unsourced material may be challenged and removed."
)
QUESTION = "Which English king founded the college whose chapel choir sings the Christmas Eve service of lessons?"


@pytest.fixture(scope="module")
def boilerplate_protected(tmp_path_factory, wiki_paragraphs) -> str:
    """A protected set of three documents: an article with a wire footer, a page with Wikipedia's notice, a question."""
    path = tmp_path_factory.mktemp("protected") / "eval.jsonl"
    docs = [wiki_paragraphs[20] + " " + WIRE_FOOTER, CITATION_NOTICE + " " + wiki_paragraphs[21], QUESTION]
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in docs), encoding="utf-8")
    return str(path)


def _protected_stage(path: str, **params) -> DecontaminateStage:
    stage = DecontaminateStage(DecontaminateParams(sets=[ProtectedSet("eval", [path], kind="jsonl")], **params))
    stage.check()
    stage.ensure_setup()
    return stage


def test_pages_sharing_only_boilerplate_are_kept_and_contamination_is_not(pages, wiki_paragraphs, boilerplate_protected):
    from curate.dedup import normalize_text

    article = normalize_text(wiki_paragraphs[20]).split()
    rows = [
        {"id": "footer", "url": None, "text": pages[0]["text"] + "\n" + WIRE_FOOTER},
        {"id": "notice", "url": None, "text": CITATION_NOTICE + "\n" + pages[1]["text"]},
        {"id": "window40", "url": None, "text": pages[2]["text"] + "\n" + " ".join(article[5:45]) + "\n" + pages[3]["text"]},
        {"id": "window19", "url": None, "text": pages[3]["text"] + "\n" + " ".join(article[5:24])},
        {"id": "question", "url": None, "text": pages[4]["text"] + "\n" + QUESTION.upper()},
    ]
    kept, rejected = run_map_stages([_protected_stage(boilerplate_protected)], _documents(rows))
    assert kept.column("id").to_pylist() == ["footer", "notice", "window19"]
    assert {r["id"]: (r["rejected_by"], r["rejected_value"], r["duplicate_of"]) for r in rejected.to_pylist()} == {
        "window40": ("decontaminate.eval", 40.0, "eval:0"),
        "question": ("decontaminate.eval", 16.0, "eval:2"),  # 16 words, all of the protected question: min_share
    }
    # without the reference sample the notice is 25 shared words, more than min_words: the old false removal
    kept, rejected = run_map_stages([_protected_stage(boilerplate_protected, common_ngrams="off")], _documents(rows[:2]))
    assert kept.column("id").to_pylist() == ["footer"]
    assert rejected.to_pylist()[0]["rejected_value"] == 25.0


def test_common_ngrams_file_is_checked_before_any_work(tmp_path, boilerplate_protected):
    import numpy as np

    from curate.decontaminate import COMMON_NGRAMS, build_common_ngrams, load_common_ngrams, save_common_ngrams
    from curate.stage import StageError

    shipped = load_common_ngrams(COMMON_NGRAMS, 13)
    assert len(shipped) > 10_000 and np.all(np.diff(shipped.astype(np.float64)) > 0)
    texts = pa.array([CITATION_NOTICE + " one", CITATION_NOTICE + " two", WIRE_FOOTER], type=pa.large_string())
    common = build_common_ngrams(texts, 13, min_docs=2)
    assert len(common) == 13 and np.isin(common, shipped).all()  # the notice's 13-grams, found on two texts
    other = tmp_path / "five.npz"
    save_common_ngrams(str(other), common, 5, 2, "test")
    with pytest.raises(StageError, match=r"five\.npz holds 5-grams, the stage matches 13-grams"):
        _protected_stage(boilerplate_protected, common_ngrams=str(other))
    with pytest.raises(StageError, match=r"missing\.npz: cannot be read"):
        _protected_stage(boilerplate_protected, common_ngrams=str(tmp_path / "missing.npz"))


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
@given(start=st.integers(0, 40), length=st.integers(20, 40), prefix=st.text(max_size=80), suffix=st.text(max_size=80))
def test_any_20_protected_words_in_any_text_are_found(wiki_paragraphs, wiki_stage, start, length, prefix, suffix):
    from curate.dedup import normalize_text

    words = normalize_text(wiki_paragraphs[11]).split()
    start = min(start, len(words) - length)  # always `length` of the paragraph's words
    # line breaks around the planted words: they must not merge with the random text around them
    text = prefix + "\n" + " ".join(words[start : start + length]) + "\n" + suffix
    kept, rejected = run_map_stages([wiki_stage], _documents([{"id": "p", "url": None, "text": text}]))
    assert rejected.num_rows == 1 and rejected.column("rejected_by")[0].as_py() == "decontaminate.wikitext"
