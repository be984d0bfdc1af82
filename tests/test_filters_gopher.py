"""Gopher quality and repetition rules on real pages, thresholds, and datatrove-compatible details."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.filters.gopher import GopherQualityParams, GopherQualityStage, GopherRepetitionParams, GopherRepetitionStage
from curate.recipe import RecipeError, parse_recipe
from curate.wikitext import detokenize_line
from filters_pages import outcomes, pages_batch, texts_batch

WIKITEXT = Path(__file__).resolve().parent / "data" / "text" / "wikitext-2-test.txt"


def wiki_paragraphs() -> list[str]:
    """Real Wikipedia paragraphs (WikiText-2 test), de-tokenized enough for the rules."""
    paragraphs = []
    for line in WIKITEXT.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("=") and len(line.split()) > 60:
            paragraphs.append(detokenize_line(line, unk="X"))
    return paragraphs


# Hand-checked by reading each page (see tests/data/filters/README.md):
QUALITY_EXPECTED = {
    # English news and essays: long prose, stop words, few symbols -> kept
    "abc7news.com-Napa.html.gz": None,
    "chocolate.com.pregnant.html.gz": None,  # short (about 70 words) but real prose
    "haitiantimes.com-family.html.gz": None,
    "nytimes.com.blackouts.html.gz": None,
    "theatlantic.com.disasters.html.gz": None,
    "heartlandnewsfeed.com-Christian.html.gz": None,
    # the warcio example page is "This domain is for use in illustrative examples..." (28 words)
    "warcio-example.warc.gz:http://example.com/": ("word_count", 28.0),
    # a Trustpilot page: 1 of 3 lines ends in "...." ("Gousto has changed my life....")
    "uk.trustpilot.com.reviews.html.gz": ("ellipsis_lines", pytest.approx(1 / 3)),
    # code listing (import lines, requirements) and many symbols: under 80% alphabetic words
    "hackernoon.com.scrape.html.gz": ("alpha_words", pytest.approx(0.7073, abs=1e-4)),
    # slideshow captions: "2/5", "Image credit: www.apple.com/in/" repeated
    "economictimes.indiatimes.com.slideshow.html.gz": ("alpha_words", pytest.approx(0.7531, abs=1e-4)),
    # German pages: none of the English stop words ("the", "and", ...) occur
    "litradio.net.bossong.html.gz": ("stop_words", 0.0),
    "vinosytapas.de.rioja.html.gz": ("stop_words", 0.0),
    # German recipe: ingredient list of quantities ("350 g", "4 EL") -> many numeric tokens
    "lecker.de.schneewittchen.html.gz": ("alpha_words", pytest.approx(0.6747, abs=1e-4)),
}

REPETITION_EXPECTED = {
    "abc7news.com-Napa.html.gz": None,
    "nytimes.com.blackouts.html.gz": None,
    "theatlantic.com.disasters.html.gz": None,
    "hackernoon.com.scrape.html.gz": None,
    # an academic home page: "Article", "- ", "Code" and blank lines repeat for every paper
    "dolma-sample-0000.warc.gz:https://dwadden.github.io/": ("dup_line_frac", pytest.approx(0.4958, abs=1e-4)),
    # a police blotter: "October 20: ACCIDENT – A vehicle driven by ... no age or address reported"
    "heartlandnewsfeed.com-Christian.html.gz": ("dup_5_gram", pytest.approx(0.1716, abs=1e-4)),
    # a wine shop page whose product lines repeat
    "vinosytapas.de.rioja.html.gz": ("dup_line_char_frac", pytest.approx(0.5393, abs=1e-4)),
}


def test_gopher_quality_on_real_pages():
    found = outcomes(GopherQualityStage(GopherQualityParams()), pages_batch())
    for doc_id, expected in QUALITY_EXPECTED.items():
        got = found[doc_id]
        if expected is None:
            assert got == (None, None), doc_id
        else:
            assert got == expected, doc_id


def test_gopher_repetition_on_real_pages():
    found = outcomes(GopherRepetitionStage(GopherRepetitionParams()), pages_batch())
    for doc_id, expected in REPETITION_EXPECTED.items():
        got = found[doc_id]
        assert got == (expected or (None, None)), doc_id


def test_wikipedia_prose_passes_both_rule_sets():
    paragraphs = wiki_paragraphs()[:40]
    batch = texts_batch(["\n\n".join(paragraphs[i : i + 3]) for i in range(0, 39, 3)])
    assert set(outcomes(GopherQualityStage(GopherQualityParams()), batch).values()) == {(None, None)}
    assert set(outcomes(GopherRepetitionStage(GopherRepetitionParams()), batch).values()) == {(None, None)}


def test_repeated_real_paragraph_is_caught_as_duplicate_paragraphs():
    first, second = wiki_paragraphs()[:2]
    text = "\n\n".join([first, second, first, first])
    found = outcomes(GopherRepetitionStage(GopherRepetitionParams()), texts_batch([text]))
    # 2 of 4 paragraphs repeat an earlier one
    assert found["0"] == ("dup_para_frac", 0.5)


def test_top_ngram_rule_counts_the_most_frequent_bigram():
    paragraph = wiki_paragraphs()[0]
    text = paragraph + " " + " ".join(["climate change"] * 60)
    stage = GopherRepetitionStage(GopherRepetitionParams(max_dup_ngram_char_frac={}))
    rule, value = outcomes(stage, texts_batch([text]))["0"]
    assert rule == "top_2_gram"
    assert value == pytest.approx(60 * len("climate change") / len(text))


def test_duplicated_ngrams_skip_over_a_repeat_like_massivetext():
    # words a b c d e f a b c d e f: the second "a b c d e" repeats; after it the scan jumps
    # 5 words, so only one 5-gram (10 characters: "alphabravocharliedeltaecho") is counted.
    words = "alpha bravo charlie delta echo foxtrot".split()
    text = " ".join(words + words)
    stage = GopherRepetitionStage(
        GopherRepetitionParams(
            max_dup_para_frac=None,
            max_dup_line_frac=None,
            max_dup_para_char_frac=None,
            max_dup_line_char_frac=None,
            max_top_ngram_char_frac={},
            max_dup_ngram_char_frac={5: 0.0},
        )
    )
    rule, value = outcomes(stage, texts_batch([text]))["0"]
    assert rule == "dup_5_gram"
    assert value == pytest.approx(len("alphabravocharliedeltaecho") / len(text))


def test_thresholds_are_parameters_and_none_turns_a_rule_off():
    batch = pages_batch()
    relaxed = GopherQualityStage(GopherQualityParams(min_alpha_words_ratio=None, min_stop_words=None))
    found = outcomes(relaxed, batch)
    assert found["hackernoon.com.scrape.html.gz"] == (None, None)
    assert found["litradio.net.bossong.html.gz"] == (None, None)
    assert found["warcio-example.warc.gz:http://example.com/"][0] == "word_count"
    stricter = outcomes(GopherQualityStage(GopherQualityParams(min_doc_words=2000)), batch)
    assert stricter["abc7news.com-Napa.html.gz"][0] == "word_count"


def test_a_null_ngram_threshold_turns_that_rule_off():
    text = " ".join(["alpha beta"] * 40 + ["gamma delta epsilon zeta eta theta iota kappa lambda mu"] * 3)
    on = outcomes(GopherRepetitionStage(GopherRepetitionParams()), texts_batch([text]))["0"]
    assert on[0] == "top_2_gram"
    params = GopherRepetitionParams(max_top_ngram_char_frac={2: None, 3: 0.18, 4: 0.16})
    params.validate()
    off = outcomes(GopherRepetitionStage(params), texts_batch([text]))["0"]
    assert off[0] == "top_3_gram"


def test_stop_words_are_case_sensitive_like_the_reference():
    text = " ".join(["The Cat And The Dog Have A Home With Walls"] * 10)
    found = outcomes(GopherQualityStage(GopherQualityParams()), texts_batch([text]))
    assert found["0"] == ("stop_words", 0.0)


def test_defaults_are_the_published_values():
    q = GopherQualityParams()
    assert (q.min_doc_words, q.max_doc_words, q.min_avg_word_length, q.max_avg_word_length) == (50, 100_000, 3, 10)
    assert (q.max_symbol_word_ratio, q.max_bullet_lines_ratio, q.max_ellipsis_lines_ratio, q.min_alpha_words_ratio, q.min_stop_words) == (
        0.1,
        0.9,
        0.3,
        0.8,
        2,
    )
    assert q.stop_words == ["the", "be", "to", "of", "and", "that", "have", "with"]
    r = GopherRepetitionParams()
    assert (r.max_dup_line_frac, r.max_dup_para_frac, r.max_dup_line_char_frac, r.max_dup_para_char_frac) == (0.3, 0.3, 0.2, 0.2)
    assert r.max_top_ngram_char_frac == {2: 0.2, 3: 0.18, 4: 0.16}
    assert r.max_dup_ngram_char_frac == {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def test_recipe_keys_are_type_checked_and_validated():
    base = {"name": "t", "output": "runs/t", "sources": [{"name": "s", "kind": "jsonl", "paths": ["x.jsonl"]}]}
    recipe = parse_recipe({**base, "stages": [{"stage": "gopher_repetition", "max_top_ngram_char_frac": {2: 0.3}}]}, check_files=False)
    assert recipe.stages[0].params.max_top_ngram_char_frac == {2: 0.3}
    with pytest.raises(RecipeError, match=r"stages\[0\].min_alpha_words_ratio: expected a number"):
        parse_recipe({**base, "stages": [{"stage": "gopher_quality", "min_alpha_words_ratio": "high"}]}, check_files=False)
    with pytest.raises(RecipeError, match="max_bullet_lines_ratio must be <= 1.0"):
        parse_recipe({**base, "stages": [{"stage": "gopher_quality", "max_bullet_lines_ratio": 2}]}, check_files=False)
