"""The Gopher and FineWeb stages with ``language_settings``: each document judged with its
language's FineWeb-2 thresholds and words (curate/filters/per_language.py), on real pages."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import pytest

from curate import words
from curate.extract import html_to_text
from curate.filters.fineweb import FineWebParams, FineWebStage
from curate.filters.gopher import GopherQualityParams, GopherQualityStage, GopherRepetitionParams, GopherRepetitionStage
from curate.language_settings import settings_folder
from curate.schema import documents_from_pylist
from curate.stage import StageError

DATA = Path(__file__).parent / "data"
PAGES = {
    row["language"]: row["text"]
    for row in map(json.loads, (DATA / "multilingual" / "pages.jsonl").read_text(encoding="utf-8").splitlines())
}


def _english_page() -> str:
    expectations = json.loads((DATA / "html" / "expectations.json").read_text())
    url = next(u for u in expectations if u.startswith("https://www.msn.com/en-gb/news/uknews/uk-university-student-halls-too-full"))
    return html_to_text(gzip.open(DATA / "html" / "pages" / expectations[url]["file"]).read(), url)


def _stage(cls, params):
    stage = cls(params)
    stage.ensure_setup()
    return stage


def _docs(texts, languages):
    rows = [{"id": str(i), "source": "t", "text": t, "language": lang} for i, (t, lang) in enumerate(zip(texts, languages))]
    return documents_from_pylist(rows)


def test_english_tuned_rules_remove_every_page_that_its_languages_settings_keep():
    languages = sorted(PAGES)
    texts = [PAGES[lang] for lang in languages]
    plain = _stage(GopherQualityStage, GopherQualityParams())
    per_language = _stage(GopherQualityStage, GopherQualityParams(language_settings="fineweb2"))
    before = [r["rejected_by"] for r in plain(_docs(texts, languages)).to_pylist()]
    after = [r["rejected_by"] for r in per_language(_docs(texts, languages)).to_pylist()]
    assert dict(zip(languages, before)) == {
        "ar": "gopher_quality.stop_words",
        "de": "gopher_quality.stop_words",
        "hi": "gopher_quality.mean_word_length",
        "ja": "gopher_quality.mean_word_length",
        "ko": "gopher_quality.stop_words",
        "ru": "gopher_quality.alpha_words",
        "th": "gopher_quality.alpha_words",
        "zh": "gopher_quality.mean_word_length",
    }
    assert dict(zip(languages, after)) == {lang: None for lang in languages if lang != "th"} | {"th": "gopher_quality.alpha_words"}
    assert not any(k.startswith("language_fallback") for k in per_language.counters)


def test_thresholds_and_words_are_the_languages():
    stage = _stage(GopherQualityStage, GopherQualityParams(language_settings="fineweb2"))
    thai = settings_folder().get("tha_Thai")
    thai_words = words.split_words(PAGES["th"], "th")
    share = sum(any(ch.isalpha() for ch in w) for w in thai_words) / len(thai_words)
    assert share < thai.max_non_alpha_words_ratio  # FineWeb-2's minimum share of words with a letter for Thai
    assert stage.language_verdict(PAGES["th"], "th") == ("alpha_words", share)
    params = stage._languages.params_for("th", stage.params, stage.counters)
    assert params.min_alpha_words_ratio == thai.max_non_alpha_words_ratio
    assert frozenset(params.stop_words) == thai.stop_words
    assert (params.min_avg_word_length, params.max_avg_word_length) == (thai.min_avg_word_length, thai.max_avg_word_length)
    assert params.min_doc_words == 50 and params.min_stop_words == 2  # what FineWeb-2 leaves as it is


def test_repetition_uses_the_languages_duplicate_line_share():
    lines = PAGES["de"].split("\n")  # 8 lines of a German page
    shortest = sorted(lines, key=len)[:3]
    text = "\n".join(lines + shortest)  # 3 of 11 lines repeat: 0.273, between German's 0.263 and Gopher's 0.30
    plain = _stage(GopherRepetitionStage, GopherRepetitionParams())
    per_language = _stage(GopherRepetitionStage, GopherRepetitionParams(language_settings="fineweb2"))
    assert plain.text_verdict(text) is None
    assert per_language.language_verdict(text, "de") == ("dup_line_frac", 3 / 11)
    german = settings_folder().get("de")
    params = per_language._languages.params_for("de", per_language.params, per_language.counters)
    assert (params.max_dup_line_frac, params.max_top_ngram_char_frac, params.max_dup_ngram_char_frac) == (
        german.dup_line_frac,
        german.top_n_grams,
        german.dup_n_grams,
    )


def test_a_duplicate_line_share_of_zero_turns_the_rule_off():
    # FineWeb-2 gives six languages dup_line_frac 0, which datatrove reads as "rule off" (bench/languages.py)
    lines = PAGES["de"].split("\n")
    text = "\n".join(lines + sorted(lines, key=len)[:3])
    assert settings_folder().get("chj_Latn").dup_line_frac == 0
    stage = _stage(GopherRepetitionStage, GopherRepetitionParams(language_settings="fineweb2"))
    assert stage._languages.params_for("chj_Latn", stage.params, stage.counters).max_dup_line_frac is None
    assert stage.language_verdict(text, "chj_Latn")[0] != "dup_line_frac"
    assert stage.language_verdict(text, "de")[0] == "dup_line_frac"


def test_fineweb_uses_the_languages_newline_share():
    german_words = words.split_words(PAGES["de"], "de")
    lines = [" ".join(german_words[i : i + 5]) + "." for i in range(0, 200, 5)]  # 40 lines of 5 words and a period
    text = "\n".join(lines)
    off = {"max_short_line_ratio": None, "max_char_dup_ratio": None}
    plain = _stage(FineWebStage, FineWebParams(**off))
    per_language = _stage(FineWebStage, FineWebParams(**off, language_settings="fineweb2"))
    ratio = 39 / len(words.split_words(text, "de"))
    assert settings_folder().get("de").new_line_ratio < ratio < 0.3
    assert plain.text_verdict(text) is None
    assert per_language.language_verdict(text, "de") == ("list_ratio", ratio)


@pytest.mark.parametrize(
    "cls,params",
    [(GopherQualityStage, GopherQualityParams), (GopherRepetitionStage, GopherRepetitionParams), (FineWebStage, FineWebParams)],
)
def test_a_language_without_settings_falls_back_with_a_counter(cls, params):
    english = _english_page()
    stage = _stage(cls, params(language_settings="fineweb2"))
    out = stage(_docs([english, PAGES["de"], PAGES["de"]], ["en", "zzz_Zzzz", None]))
    assert out.num_rows == 3
    assert stage.counters["language_fallback:en"] == 1
    assert stage.counters["language_fallback:zzz_Zzzz"] == 1
    assert stage.counters["language_fallback:none"] == 1
    # the fallback is the stage's own thresholds, with the default word tokenizer for unknown languages
    own = _stage(cls, params())
    expected = [own.rules_verdict(PAGES["de"], *_rules_args(own, "zzz_Zzzz"))]
    assert [stage.language_verdict(PAGES["de"], "zzz_Zzzz")] == expected


def _rules_args(stage, language):
    words_of = lambda text: words.cached_words(text, language)  # noqa: E731
    if isinstance(stage, GopherQualityStage):
        return words_of(PAGES["de"]), stage.params, frozenset(stage.params.stop_words)
    return stage.params, words_of


@pytest.mark.parametrize(
    "cls,params",
    [(GopherQualityStage, GopherQualityParams), (GopherRepetitionStage, GopherRepetitionParams), (FineWebStage, FineWebParams)],
)
def test_english_is_judged_as_without_language_settings(cls, params):
    expectations = json.loads((DATA / "html" / "expectations.json").read_text())
    texts = [html_to_text(gzip.open(DATA / "html" / "pages" / e["file"]).read(), url) for url, e in expectations.items()]
    plain = _stage(cls, params())
    per_language = _stage(cls, params(language_settings="fineweb2"))
    assert plain(_docs(texts, ["en"] * len(texts))).equals(per_language(_docs(texts, ["en"] * len(texts))))
    assert per_language.counters["language_fallback:en"] == len(texts) == 24  # every page of tests/data/html


def test_a_named_fallback_language_stands_in():
    english = _english_page()
    own = _stage(GopherQualityStage, GopherQualityParams(language_settings="fineweb2"))
    german_for_all = _stage(GopherQualityStage, GopherQualityParams(language_settings="fineweb2", language_fallback="deu_Latn"))
    assert own.language_verdict(english, "en") is None  # Gopher's English thresholds keep WikiText
    verdict = german_for_all.language_verdict(english, "en")
    assert verdict is not None and verdict[0] == "stop_words"  # German stop words are rare in English
    assert german_for_all.counters["language_fallback:en"] == 1


def test_check_names_a_missing_folder_or_fallback(tmp_path):
    with pytest.raises(StageError, match="does not exist"):
        GopherQualityStage(GopherQualityParams(language_settings=str(tmp_path / "nowhere"))).check()
    with pytest.raises(StageError, match="language_fallback 'eng_Latn' has no settings file"):
        FineWebStage(FineWebParams(language_settings="fineweb2", language_fallback="eng_Latn")).check()
    (tmp_path / "deu_Latn.yml").write_text("dup_line_frac: 0.01\n", encoding="utf-8")
    stage = GopherRepetitionStage(GopherRepetitionParams(language_settings=str(tmp_path)))
    stage.check()
    stage.ensure_setup()
    assert stage.language_verdict(PAGES["de"] + "\n" + PAGES["de"].split("\n")[0], "de") == ("dup_line_frac", 1 / 9)


def test_a_pickled_stage_rebuilds_its_per_language_rules():
    # Spark ships stages to executors pickled; loaded settings and tokenizers stay behind
    stage = _stage(GopherQualityStage, GopherQualityParams(language_settings="fineweb2"))
    copy = pickle.loads(pickle.dumps(stage))
    assert not hasattr(copy, "_languages")
    copy.ensure_setup()
    texts, languages = [PAGES["ru"], PAGES["zh"]], ["ru", "zh"]
    assert copy(_docs(texts, languages)).equals(stage(_docs(texts, languages)))
