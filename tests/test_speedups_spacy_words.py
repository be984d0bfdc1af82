"""curate/speedups/spacy_words.py: spaCy's words with each chunk remembered are the plain path's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate import words
from curate.speedups.spacy_words import ChunkCachedSplitter, segmenter_tokens, spanning_specials

PAGES = {
    row["language"]: row["text"]
    for row in map(json.loads, (Path(__file__).parent / "data" / "multilingual" / "pages.jsonl").read_text(encoding="utf-8").splitlines())
}


def splitters(code: str, monkeypatch) -> tuple:
    """(plain, sped-up) splitters of one spaCy language, built the way curate.words builds them."""
    monkeypatch.setenv("CURATE_SPEEDUP_SPACY_WORDS", "off")
    plain = words.spacy_splitter(code)
    monkeypatch.setenv("CURATE_SPEEDUP_SPACY_WORDS", "on")
    sped = words.spacy_splitter(code)
    assert isinstance(sped, ChunkCachedSplitter) and not isinstance(plain, ChunkCachedSplitter)
    return plain, sped


# each page with its own language's rules, and every page with the default ("xx") and English rules
CASES = [("de", "de"), ("ru", "ru"), ("ar", "ar")] + [(code, page) for code in ("xx", "en") for page in sorted(PAGES)]


@pytest.mark.parametrize("code, page", CASES)
def test_same_words_as_spacy_on_real_pages(code, page, monkeypatch):
    plain, sped = splitters(code, monkeypatch)
    text = PAGES[page]
    expected = plain(text)
    assert len(expected) > 10
    assert sped(text) == expected  # every chunk new
    assert sped(text) == expected  # every chunk remembered
    assert sped(text[len(text) // 3 :]) == plain(text[len(text) // 3 :])  # cut inside a chunk


def test_same_words_when_the_full_dictionary_is_emptied(monkeypatch):
    plain, sped = splitters("de", monkeypatch)
    sped.max_chunks = 40
    for page in ("de", "ru", "de"):
        assert sped(PAGES[page]) == plain(PAGES[page])
    assert set(sped.chunks) == set(PAGES["de"].split())  # emptied before the last page's chunks


def test_a_special_case_with_a_space_sends_the_text_to_spacy(monkeypatch):
    plain, sped = splitters("ru", monkeypatch)
    assert spanning_specials(sped.nlp).search("НАБУ, САП, НАПК и т.д.").group() == "и т.д."
    text = PAGES["ru"].replace(". ", " и т.д. ", 1)
    assert sped(text) == plain(text)
    assert sped.chunks == {}  # the text went to spaCy whole, not chunk by chunk
    assert sped(PAGES["ru"]) == plain(PAGES["ru"]) and sped.chunks  # without it, chunk by chunk


@pytest.mark.parametrize("code", ["zh", "ja", "vi"])
def test_segmenters_that_read_across_spaces_are_not_split_by_chunk(code):
    assert ChunkCachedSplitter.for_language(code, None, None, None) is None


@pytest.mark.parametrize("code", ["zh", "ja"])
def test_jieba_and_sudachi_asked_directly_give_spacys_words(code, monkeypatch):
    import spacy

    assert segmenter_tokens(code, spacy.blank(code, config=words.SPACY_CONFIGS.get(code, {}))) is not None
    monkeypatch.setenv("CURATE_SPEEDUP_SPACY_WORDS", "off")
    plain = words.spacy_splitter(code)
    monkeypatch.setenv("CURATE_SPEEDUP_SPACY_WORDS", "on")
    sped = words.spacy_splitter(code)
    # the page, the page with its lines run together by spaces, and (Japanese) one over Sudachi's input limit
    texts = [PAGES[code], PAGES[code].replace("\n", "  "), (PAGES[code] + "\n") * 60]
    for text in texts:
        expected = plain(text)
        assert len(expected) > 100 and sped(text) == expected


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv("CURATE_SPEEDUPS", "off")
    assert not isinstance(words.spacy_splitter("de"), ChunkCachedSplitter)
