"""curate.extract_eval: the WCXB word-F1 scorer and the fixed held-out split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curate.extract_eval import is_held_out, word_f1, words


def test_words_are_lower_cased_word_runs():
    assert words("Hello, World! it's 3.5 Ünï_cödé") == ["hello", "world", "it", "s", "3", "5", "ünï_cödé"]
    assert words(None) == [] and words("") == []


def test_word_f1_is_multiset_overlap():
    # 3 of the 4 extracted words are in the reference, 3 of its 6 words are found
    assert word_f1("the cat the dog", "The cat sat on the mat") == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert word_f1("mat the on sat cat the", "The cat sat on the mat") == 1.0
    assert word_f1("nothing shared", "The cat sat") == 0.0


def test_empty_cases_follow_wcxbs_evaluate_py():
    assert word_f1(None, "The cat sat") == 0.0
    assert word_f1("", "The cat sat") == 0.0
    # WCXB marks some pages as having no main text: extracting nothing is right there, anything else wrong
    assert word_f1(None, "") == 1.0
    assert word_f1("  ...  ", " - ") == 1.0
    assert word_f1("Accept cookies", "") == 0.0


@given(st.text(max_size=80), st.text(max_size=80))
def test_word_f1_is_symmetric_and_bounded(a, b):
    assert word_f1(a, b) == pytest.approx(word_f1(b, a))
    assert 0.0 <= word_f1(a, b) <= 1.0


def test_held_out_split_is_fixed_by_url():
    urls = [f"https://example.com/page/{i}" for i in range(2000)]
    # SHA-1 of the URL, not a random draw: the same pages are held out on every machine and in every run
    assert sum(map(is_held_out, urls)) == 609
    assert [i for i, u in enumerate(urls[:40]) if is_held_out(u)] == [0, 1, 5, 6, 15, 17, 19, 20, 21, 23, 27, 32, 33, 35, 36, 38]
    assert (
        is_held_out(
            "https://scratchculinary.com/2025/09/04/top-nutrition-trends-for-fall-2025-what-fitness-experts-are-eating-and-how-scratch-makes-it-easy/"
        )
        is False
    )
