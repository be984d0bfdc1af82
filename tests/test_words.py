"""curate/words.py on real pages of eight languages and six script families (tests/data/multilingual)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from curate import words

PAGES = {
    row["language"]: row["text"]
    for row in map(json.loads, (Path(__file__).parent / "data" / "multilingual" / "pages.jsonl").read_text(encoding="utf-8").splitlines())
}

# The first 14 words of each page, as its language's tokenizer splits them.
FIRST_WORDS = {
    "de": (
        "spacy:de",
        [
            "Hatte",
            "zwischenzeitlich",
            "noch",
            "einmal",
            "Hoffnung",
            "bestanden",
            "im",
            "Abstiegskampf",
            "der",
            "dritten",
            "Liga",
            ",",
            "ist",
            "spätestens",
        ],
    ),
    "ru": (
        "spacy:ru",
        ["МОСКВА", ",", "29", "июня", ".", "/ТАСС/.", "Движение", "от", "Можайского", "до", "Новорижского", "шоссе", "на", "пятом"],
    ),
    "ar": ("spacy:ar", ["دمشق", "،", "سوريا", "(", "CNN", ")", "--", "أكدت", "جهات", "سورية", "معارضة", "أن", "فصائل", "مسلحة"]),
    "hi": ("indic:hi", ["प्रयागराज", ",", "जेएनएन", "।", "आम", "आदमी", "पार्टी", "के", "कार्यकर्ता", "जन", "सामान्य", "की", "समस्याओं", "को"]),
    "th": ("thai", ["21", "ม.ค.", "2561", "เวลา", "ประมาณ", "12.00", "น.", "ผู้สื่อข่าว", "ได้รับ", "แจ้ง", "จาก", "นาย", "ต.", "("]),
    "zh": ("spacy:zh", ["香港", "行政长官", "梁振英", "在", "各方", "压力", "下", "就", "其", "大宅", "的", "违章建筑", "（", "僭"]),
    "ko": ("korean", ["㈜", "디지털이엠씨", "경기도", "용인", "에", "자리", "잡", "은", "민간", "시험", "인증", "전문", "기업", "㈜"]),
    "ja": (
        "spacy:ja",
        ["パレスチナ", "自治", "区", "ガザ", "地区", "の", "イスラム", "組織", "ハマス", "と", "イスラエル", "の", "停戦", "交渉"],
    ),
}


@pytest.mark.parametrize("language", sorted(FIRST_WORDS))
def test_each_script_is_split_by_its_languages_tokenizer(language):
    tokenizer, first = FIRST_WORDS[language]
    assert words.tokenizer_choice(language).name == tokenizer
    found = words.split_words(PAGES[language], language)
    assert found[:14] == first
    assert all(w and w == w.strip() for w in found)  # stripped, no blank tokens


@pytest.mark.parametrize("language", ["de", "ru", "ar", "hi", "th", "zh", "ja"])
def test_words_cover_the_text_but_its_whitespace(language):
    # Korean is left out: kiwipiepy's morphemes overlap (입 and 입니다 from the same characters).
    text = PAGES[language]
    assert "".join(words.split_words(text, language)) == re.sub(r"\s", "", text)


def test_pairs_and_lid_codes_name_the_same_tokenizer():
    assert words.tokenizer_choice("deu_Latn") == words.tokenizer_choice("de")
    assert words.tokenizer_choice("cmn_Hani").name == "spacy:zh"
    assert words.tokenizer_choice("jpn_Jpan").name == "spacy:ja"
    assert words.tokenizer_choice("urd_Arab").name == "indic:ur"


def test_languages_without_an_offline_tokenizer_get_the_default():
    # FineWeb-2 uses Stanza for Welsh and botok for Tibetan: both download models at run time
    assert words.tokenizer_choice("cym_Latn").name == "spacy:xx"
    assert words.tokenizer_choice("bod_Tibt").name == "spacy:xx"
    assert words.tokenizer_choice("zzz_Zzzz").name == "spacy:xx"
    assert words.tokenizer_choice(None).name == "spacy:xx"
    assert not words.is_known("zzz_Zzzz") and words.is_known("de")
    assert words.split_words("Mae hi'n braf heddiw.", "cy") == ["Mae", "hi'n", "braf", "heddiw", "."]


def test_english_keeps_the_english_stages_splitter():
    from curate.filters.text import split_words as english_split

    text = "It's the U.S. team's 1,000.50-dollar state-of-the-art plan... isn't it?"
    assert words.tokenizer_choice("en").name == words.tokenizer_choice("eng_Latn").name == "english"
    assert words.split_words(text, "en") == english_split(text)


def test_long_japanese_is_cut_below_sudachis_input_limit():
    text = (PAGES["ja"] + "\n") * 60  # ~50,000 characters, ~150,000 UTF-8 bytes
    assert len(text.encode("utf-8")) > 49_149
    pieces = words.chunks_of_bytes(text, words.JAPANESE_CHUNK_BYTES)
    assert "".join(pieces) == text and all(len(p.encode("utf-8")) <= words.JAPANESE_CHUNK_BYTES for p in pieces)
    assert len(words.split_words(text, "ja")) == 60 * len(words.split_words(PAGES["ja"], "ja"))


def test_cached_words_returns_what_split_words_returns():
    text = PAGES["th"]
    assert words.cached_words(text, "th") == tuple(words.split_words(text, "th"))
    assert words.cached_words(text, "th") is words.cached_words(text, "tha_Thai")


@pytest.mark.slow
def test_every_tokenizer_of_the_table_runs_offline():
    # one splitter per distinct tokenizer: a missing
    # or model-downloading package fails here, not in the middle of a run
    sample = "Test text 1, two."
    choices = sorted(set(words.tokenizer_table().values()), key=lambda c: c.name)
    assert len(choices) == 81  # 59 spaCy languages, spaCy xx, 16 Indic codes, Thai, Korean, Khmer, Lao, English
    for choice in choices:
        assert words.splitter(choice)(sample), choice.name
