"""Invariants of the word splitter and of every rule set over any text (hypothesis)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.filters.c4 import C4Params, C4Stage
from curate.filters.fineweb import FineWebParams, FineWebStage
from curate.filters.gopher import GopherQualityParams, GopherQualityStage, GopherRepetitionParams, GopherRepetitionStage
from curate.filters.text import count_sentences, split_words
from curate.filters.url import UrlFilterParams, UrlFilterStage
from curate.stage import run_map_stages
from filters_pages import load_pages, texts_batch

STAGES = [
    GopherRepetitionStage(GopherRepetitionParams()),
    GopherQualityStage(GopherQualityParams()),
    C4Stage(C4Params()),
    FineWebStage(FineWebParams()),
    UrlFilterStage(UrlFilterParams()),
]
REASON = re.compile(r"^(gopher_repetition|gopher_quality|c4|fineweb|url_filter)\.[a-z0-9_]+$")

# Text drawn from real pages' characters plus any Unicode, line breaks and repeats.
real_text = "\n".join(r["text"] for r in load_pages()[:5])
texts = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.sampled_from(sorted(set(real_text)) + ["\n", " ", "…", "#", "{", "•", "-", "."]), max_size=2000),
    st.lists(st.sampled_from(real_text.splitlines()), max_size=30).map("\n".join),
)


def test_split_words_on_real_text():
    assert split_words("It's l'homme, don't U.S. policy -- 1,000.50 well-known... #tag") == [
        "It",
        "'s",
        "l'homme",
        ",",
        "don",
        "'t",
        "U.S.",
        "policy",
        "--",
        "1,000.50",
        "well-known",
        "...",
        "#",
        "tag",
    ]


@given(st.text())
def test_split_words_keeps_every_non_space_character(text):
    words = split_words(text)
    assert "".join(words) == "".join(text.split())
    assert all(w and not any(ch.isspace() for ch in w) for w in words)


def test_count_sentences():
    assert count_sentences("He left. She stayed! Why? Because.") == 4
    assert count_sentences("Guido B. Stella lived in Rome, e.g. in 1914.") == 1
    assert count_sentences("No terminal punctuation here") == 1
    assert count_sentences("   ") == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(texts, min_size=1, max_size=6))
def test_every_stage_returns_the_same_rows_and_known_reasons(batch_texts):
    batch = texts_batch(batch_texts, urls=[f"https://example.org/{i}" for i in range(len(batch_texts))])
    for stage in STAGES:
        stage.ensure_setup()
        out = stage(batch)
        assert out.num_rows == batch.num_rows
        assert out.column("id").to_pylist() == batch.column("id").to_pylist()
        for reason in out.column("rejected_by").to_pylist():
            assert reason is None or REASON.match(reason), reason


def test_empty_null_and_huge_documents():
    page = load_pages()[0]["text"]
    huge = (page + "\n") * 400  # about 1 MB of real text, all lines repeated
    batch = texts_batch(["", None, huge, "{" * 10_000, "\n" * 5000, "あ" * 50_000])
    kept, rejected = run_map_stages(STAGES, batch)
    assert kept.num_rows + rejected.num_rows == batch.num_rows
    reasons = dict(zip(rejected.column("id").to_pylist(), rejected.column("rejected_by").to_pylist()))
    assert reasons["0"] == "gopher_quality.word_count" and reasons["1"] == "gopher_quality.word_count"
    assert reasons["2"].startswith("gopher_repetition.dup_")


def test_cached_words_hold_a_batch_and_stay_bounded_by_characters(monkeypatch):
    from curate.filters import text as text_module

    cache = text_module.CharBoundedCache(4_000)
    monkeypatch.setattr(text_module, "WORDS_CACHE", cache)
    texts = [f"Document {i} says it's 1,000.50 U.S. dollars -- roughly." * 3 for i in range(20)]
    first = [text_module.cached_words(t) for t in texts]
    assert first == [tuple(split_words(t)) for t in texts]
    # a second stage over the same batch gets the very same tuples back
    assert all(text_module.cached_words(t) is words for t, words in zip(texts, first))
    assert cache.chars == sum(map(len, texts)) <= 4_000
    # more text than the budget: the oldest entries go, the answers stay right
    more = [f"Another page {i}, with other words." * 10 for i in range(30)]
    assert [text_module.cached_words(t) for t in more] == [tuple(split_words(t)) for t in more]
    assert cache.chars <= 4_000 and texts[0] not in cache.entries
    # a text over a quarter of the budget is split but never cached
    huge = "word " * 1_000
    assert text_module.cached_words(huge) == tuple(split_words(huge)) and huge not in cache.entries
