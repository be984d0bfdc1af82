"""FineWeb's extra rules on real pages."""

from __future__ import annotations

import pytest

from curate.filters.fineweb import FineWebParams, FineWebStage
from curate.filters.text import sentence_terminals
from filters_pages import outcomes, pages_batch, texts_batch
from test_filters_gopher import wiki_paragraphs

EXPECTED = {
    "abc7news.com-Napa.html.gz": None,
    "nytimes.com.blackouts.html.gz": None,
    "hackernoon.com.scrape.html.gz": None,
    # a recipe: 16 of 22 non-empty lines are ingredients of at most 30 characters
    "lecker.de.schneewittchen.html.gz": ("short_line_ratio", pytest.approx(0.7273, abs=1e-4)),
    # event announcement without a single line ending in punctuation
    "feuerwehrverband.de-vorbereitungstagung.html.gz": ("line_punct_ratio", 0.0),
    # slideshow: "Image credit: www.apple.com/in/" and "Agencies" repeat on every slide
    "economictimes.indiatimes.com.slideshow.html.gz": ("char_dup_ratio", pytest.approx(0.0819, abs=1e-4)),
}


def test_fineweb_on_real_pages():
    found = outcomes(FineWebStage(FineWebParams()), pages_batch())
    for doc_id, expected in EXPECTED.items():
        assert found[doc_id] == (expected or (None, None)), doc_id


def test_list_like_document():
    # one real sentence cut into a line every two words: many newlines per word
    words = wiki_paragraphs()[0].split()
    text = "\n".join(" ".join(words[i : i + 2]) + "." for i in range(0, 60, 2))
    stage = FineWebStage(FineWebParams(max_short_line_ratio=None, max_char_dup_ratio=None))
    rule, value = outcomes(stage, texts_batch([text]))["0"]
    assert rule == "list_ratio"
    assert value > 0.3


def test_empty_and_blank_documents():
    found = outcomes(FineWebStage(FineWebParams()), texts_batch(["", "  \n\n \t", None]))
    assert set(found.values()) == {("empty", 0.0)}


def test_line_punct_exclude_zero_keeps_unpunctuated_pages():
    stage = FineWebStage(FineWebParams(line_punct_exclude_zero=True))
    found = outcomes(stage, pages_batch())
    assert found["feuerwehrverband.de-vorbereitungstagung.html.gz"][0] != "line_punct_ratio"


def test_sentence_terminals_cover_scripts_beyond_latin():
    terminals = sentence_terminals()
    for ch in ".!?。！？։؟।":
        assert ch in terminals, ch
    assert "," not in terminals and ":" not in terminals


def test_defaults_are_the_published_values():
    p = FineWebParams()
    assert (p.min_line_punct_ratio, p.max_short_line_ratio, p.short_line_length, p.max_char_dup_ratio, p.max_newline_word_ratio) == (
        0.12,
        0.67,
        30,
        0.01,
        0.3,
    )
