"""curate/wikitext.py: the one WikiText detokenizer, its full rules and the pinned styles.

The pinned styles are what shipped artefacts were built with (models/quality.bin's positives,
bench/make_warc.py's records, bench/decontaminate.py's planted passages,
tests/data/pii/sentences.txt): the expected strings below are their outputs before the five
copies became one, on fragments of real WikiText-2 test lines. A change here means a rebuild.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.wikitext import (
    BENCH_WARC_PARAGRAPHS,
    PII_SENTENCES,
    PLANTED_PASSAGES,
    PROSE,
    QUALITY_POSITIVES,
    detokenize_line,
    detokenize_wikitext,
)

WIKITEXT = Path(__file__).resolve().parent / "data" / "text" / "wikitext-2-test.txt"

QUOTES = ' In 2004 <unk> landed a role as " Craig " in the episode " Teddy \'s Story " of the television series The Long Firm ; he starred '
BRACKETS = " Du Fu ( Wade – Giles : Tu Fu ; Chinese : <unk> ; <unk> – 770 ) was a prominent Chinese poet "
NUMBER = " the census of 754 recorded 52 @.@ 9 million people , but ten years later "

PINNED = {
    "prose": (
        PROSE,
        "",
        [
            'In 2004 landed a role as "Craig" in the episode "Teddy\'s Story" of the television series The Long Firm; he starred',
            "Du Fu (Wade – Giles: Tu Fu; Chinese:; – 770) was a prominent Chinese poet",
        ],
    ),
    "quality positives": (
        QUALITY_POSITIVES,
        "",
        [
            'In 2004 landed a role as "Craig" in the episode "Teddy\'s Story" of the television series The Long Firm; he starred',
            "Du Fu (Wade – Giles: Tu Fu; Chinese: ; – 770) was a prominent Chinese poet",
        ],
    ),
    "bench warc paragraphs": (
        BENCH_WARC_PARAGRAPHS,
        "unknown",
        [
            ' In 2004 unknown landed a role as " Craig " in the episode " Teddy\'s Story " of the television series The Long Firm; he starred ',
            " Du Fu (Wade – Giles: Tu Fu; Chinese: unknown; unknown – 770) was a prominent Chinese poet ",
        ],
    ),
    "planted passages": (
        PLANTED_PASSAGES,
        "",
        [
            'In 2004 <unk> landed a role as " Craig " in the episode " Teddy\'s Story " of the television series The Long Firm; he starred',
            "Du Fu (Wade – Giles: Tu Fu; Chinese: <unk>; <unk> – 770) was a prominent Chinese poet",
        ],
    ),
    "pii sentences": (
        PII_SENTENCES,
        "",
        [
            ' In 2004 <unk> landed a role as "Craig "in the episode "Teddy\'s Story "of the television series The Long Firm; he starred ',
            " Du Fu (Wade – Giles: Tu Fu; Chinese: <unk>; <unk> – 770) was a prominent Chinese poet ",
        ],
    ),
}


def test_fragments_are_real_wikitext():
    text = WIKITEXT.read_text(encoding="utf-8")
    assert QUOTES in text and BRACKETS in text and NUMBER in text


@pytest.mark.parametrize("name", sorted(PINNED))
def test_each_style_keeps_the_output_it_was_pinned_with(name):
    style, unk, expected = PINNED[name]
    assert [detokenize_line(QUOTES, style, unk=unk), detokenize_line(BRACKETS, style, unk=unk)] == expected
    assert detokenize_line(NUMBER, style).strip() == "the census of 754 recorded 52.9 million people, but ten years later"


def test_unk_word_is_written_in_place_and_spaced_like_a_word():
    assert detokenize_line(" Robert <unk> is an English film , television and theatre actor . ", unk="X") == (
        "Robert X is an English film, television and theatre actor."
    )
    assert detokenize_line(" Robert <unk> is an actor . ") == "Robert is an actor."


def test_documents_start_at_top_level_titles_and_keep_section_headings_as_lines():
    lines = WIKITEXT.read_text(encoding="utf-8").splitlines()[:12]
    documents = detokenize_wikitext(lines)
    assert len(documents) == 1
    first = documents[0].split("\n")
    assert first[0] == "Robert" and first[3] == "Career" and first[4] == "2000 – 2005"
    assert "@-@" not in documents[0] and "<unk>" not in documents[0]
