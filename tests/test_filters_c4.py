"""C4 line edits and document rules, and the LDNOOBW bad-words list per language, on real pages."""

from __future__ import annotations

import pytest

from curate.filters.c4 import BadWords, C4Params, C4Stage
from curate.stage import StageError
from filters_pages import load_pages, outcomes, pages_batch, texts_batch
from test_filters_gopher import wiki_paragraphs

EXPECTED = {
    # English news pages: five and more sentence lines survive the line rules
    "abc7news.com-Napa.html.gz": None,
    "nytimes.com.blackouts.html.gz": None,
    "theatlantic.com.disasters.html.gz": None,
    # a Python tutorial: the code line "data = {'q': query}" has a curly bracket
    "hackernoon.com.scrape.html.gz": ("curly_bracket", 1.0),
    # German opinion piece titled "Arschloch", a word on the German LDNOOBW list
    "tonight.de-Arschloch.html.gz": ("bad_words", 1.0),
    # "This domain is for use in illustrative examples in documents. ..." two sentences
    "warcio-example.warc.gz:http://example.com/": ("too_few_sentences", 2.0),
    # slideshow captions: only 4 caption lines end in a full stop
    "economictimes.indiatimes.com.slideshow.html.gz": ("too_few_sentences", 4.0),
    # a listing of dates and places without any sentence
    "gelbe-liste.de-chininum.html.gz": ("too_few_sentences", 0.0),
}


def test_c4_on_real_pages():
    found = outcomes(C4Stage(C4Params()), pages_batch())
    for doc_id, expected in EXPECTED.items():
        assert found[doc_id] == (expected or (None, None)), doc_id


def test_kept_documents_keep_their_edited_text_and_a_flag():
    stage = C4Stage(C4Params())
    stage.ensure_setup()
    pages = {r["id"]: r for r in load_pages()}
    out = stage(pages_batch([pages["abc7news.com-Napa.html.gz"]]))
    original = pages["abc7news.com-Napa.html.gz"]["text"]
    text = out.column("text")[0].as_py()
    assert out.column("flags")[0].as_py() == ["c4.lines_removed"]
    kept_lines = text.split("\n")
    # every kept line is an original line (stripped), in order, and ends in terminal punctuation
    original_lines = [line.strip() for line in original.splitlines()]
    positions = [original_lines.index(line) for line in kept_lines]
    assert positions == sorted(positions)
    assert all(line.endswith((".", "?", "!", '"')) and len(line.split()) >= 3 for line in kept_lines)
    assert len(kept_lines) < len([l for l in original_lines if l])
    assert stage.counters["documents_edited"] == 1
    assert stage.counters["lines_dropped:no_terminal_punctuation"] > 0


def test_rejected_documents_keep_their_original_text():
    stage = C4Stage(C4Params())
    stage.ensure_setup()
    page = next(r for r in load_pages() if r["id"] == "hackernoon.com.scrape.html.gz")
    out = stage(pages_batch([page]))
    assert out.column("rejected_by")[0].as_py() == "c4.curly_bracket"
    assert out.column("text")[0].as_py() == page["text"]


def test_line_rules_on_real_sentences():
    sentences = [p for p in wiki_paragraphs()[:6]]
    lines = sentences[:5] + [
        "Please enable JavaScript to view the comments powered by Disqus.",
        "This site uses cookies to improve your experience.",
        "Home",
        "Thank you!",
        "Read more...",
        "The lobster was described in 1758 [1] by Linnaeus [edit].",
    ]
    stage = C4Stage(C4Params())
    stage.ensure_setup()
    out = stage(texts_batch(["\n".join(lines)]))
    text = out.column("text")[0].as_py()
    assert out.column("rejected_by")[0].as_py() is None
    assert text.split("\n") == sentences[:5] + ["The lobster was described in 1758  by Linnaeus ."]
    for counter in ("lines_dropped:javascript", "lines_dropped:policy", "lines_dropped:no_terminal_punctuation", "lines_dropped:few_words"):
        assert stage.counters[counter] >= 1, counter


def test_lorem_ipsum_removes_the_document():
    text = "\n".join(wiki_paragraphs()[:5] + ["Lorem ipsum dolor sit amet, consectetur adipiscing elit."])
    assert outcomes(C4Stage(C4Params()), texts_batch([text]))["0"] == ("lorem_ipsum", 1.0)


def test_bad_words_follow_the_document_language():
    stage = C4Stage(C4Params())
    page = next(r for r in load_pages() if r["id"] == "tonight.de-Arschloch.html.gz")
    assert outcomes(stage, pages_batch([page]))[page["id"]] == ("bad_words", 1.0)
    # the same text labelled with a language whose list lacks the word passes
    assert outcomes(stage, pages_batch([{**page, "language": "ja"}]))[page["id"]] == (None, None)
    # no list for the language: kept and counted
    assert outcomes(stage, pages_batch([{**page, "language": "xx"}]))[page["id"]] == (None, None)
    assert stage.counters["bad_words_no_list"] == 1


def test_bad_words_match_whole_words_case_insensitively():
    german = BadWords("de", {"arschloch", "scheiße"})
    assert german.count("Du bist ein Arschloch!") == 1
    assert german.count("Arschlochkind und Scheißegal") == 0  # inside longer words: no match
    phrases = BadWords("en", {"two girls one cup", "anal"})
    assert phrases.count("They watched Two Girls One Cup.") == 1
    assert phrases.count("An analysis of canals.") == 0
    chinese = BadWords("zh", {"性", "色情"})  # "性" is allowed in Chinese (C4's allow list)
    assert chinese.count("这是一个色情网站") == 1
    assert chinese.count("性别平等") == 0


def test_custom_bad_words_dir_and_a_missing_one(tmp_path):
    (tmp_path / "en").write_text("television\n", encoding="utf-8")
    text = "\n".join(wiki_paragraphs()[:5])
    stage = C4Stage(C4Params(bad_words_dir=str(tmp_path)))
    stage.check()
    assert outcomes(stage, texts_batch([text]))["0"][0] == "bad_words"  # the paragraphs are about an actor
    with pytest.raises(StageError, match="not a folder"):
        C4Stage(C4Params(bad_words_dir=str(tmp_path / "missing"))).check()


def test_defaults_are_the_published_values():
    p = C4Params()
    assert p.terminal_punctuation == [".", "?", "!", '"']
    assert (p.min_words_per_line, p.max_word_length, p.min_sentences) == (3, 1000, 5)
    assert p.reject_lorem_ipsum and p.reject_curly_bracket and p.drop_javascript_lines and p.bad_words
