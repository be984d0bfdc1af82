"""curate/speedups/gopher_ngrams.py: the compiled n-gram rules give the plain path's verdict and fraction, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.filters.gopher import GopherRepetitionParams, GopherRepetitionStage
from curate.speedups.gopher_ngrams import CompiledNgramRules
from filters_pages import load_pages
from test_filters_gopher import wiki_paragraphs


def plain_and_compiled(params: GopherRepetitionParams, monkeypatch) -> tuple[GopherRepetitionStage, GopherRepetitionStage]:
    monkeypatch.setenv("CURATE_SPEEDUP_GOPHER_NGRAMS", "off")
    plain = GopherRepetitionStage(params)
    assert plain.compiled_rules() is None
    monkeypatch.delenv("CURATE_SPEEDUP_GOPHER_NGRAMS")
    sped_up = GopherRepetitionStage(params)
    assert isinstance(sped_up.compiled_rules(), CompiledNgramRules)
    return plain, sped_up


def same_verdicts(plain: GopherRepetitionStage, sped_up: GopherRepetitionStage, texts: list[str]) -> list:
    verdicts = [plain.text_verdict(t) for t in texts]
    assert [sped_up.text_verdict(t) for t in texts] == verdicts  # floats compared exactly
    return verdicts


def repeated_texts() -> list[str]:
    """Real sentences repeated and interleaved so that each n-gram rule fires somewhere."""
    sentences = [s for p in wiki_paragraphs()[:40] for s in p.split(". ") if len(s.split()) > 3]
    texts = []
    for k in range(1, 40):
        a, b, c = sentences[k], sentences[k + 1], sentences[2 * k]
        texts.append(" ".join([a] * (k % 5 + 1) + [b, c] + [a.split()[0]] * k))
        texts.append(" ".join((a + " " + b).split()[: 4 + k % 7] * (k % 4 + 2) + c.split()))
    return texts


def test_real_pages_and_prose_get_the_same_verdicts(monkeypatch):
    plain, sped_up = plain_and_compiled(GopherRepetitionParams(), monkeypatch)
    texts = [page["text"] for page in load_pages()] + wiki_paragraphs() + repeated_texts()
    verdicts = same_verdicts(plain, sped_up, texts)
    fired = {verdict[0] for verdict in verdicts if verdict}
    assert {"top_2_gram", "top_3_gram", "top_4_gram", "dup_5_gram"} <= fired
    assert sum(verdict is None for verdict in verdicts) > 100


def test_thresholds_in_any_order_and_rules_turned_off(monkeypatch):
    params = GopherRepetitionParams(
        max_dup_para_frac=None, max_dup_para_char_frac=None, max_dup_line_frac=None, max_dup_line_char_frac=None,
        max_top_ngram_char_frac={7: 0.05, 2: None, 3: 0.1},
        max_dup_ngram_char_frac={9: 0.02, 4: 0.05, 6: None},
    )  # fmt: skip
    plain, sped_up = plain_and_compiled(params, monkeypatch)
    verdicts = same_verdicts(plain, sped_up, repeated_texts() + wiki_paragraphs()[:50])
    assert {verdict[0] for verdict in verdicts if verdict} >= {"top_3_gram", "top_7_gram", "dup_4_gram"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "ccc", "dd", "é", "x1", "the", "Zürich"]), min_size=1, max_size=80))
def test_generated_repetitive_word_sequences(words):
    params = GopherRepetitionParams(
        max_dup_para_frac=None, max_dup_para_char_frac=None, max_dup_line_frac=None, max_dup_line_char_frac=None
    )
    plain = GopherRepetitionStage(params)
    text = " ".join(words)
    vocabulary: dict[str, int] = {}
    ids = np.array([vocabulary.setdefault(w, len(vocabulary)) for w in words], np.uint64)
    cumulative = np.concatenate(([0], np.cumsum([len(w) for w in words])))
    compiled = CompiledNgramRules(params.max_top_ngram_char_frac, params.max_dup_ngram_char_frac)
    assert compiled.verdict(ids, cumulative, len(text)) == plain.ngram_verdict(ids, cumulative, len(text))


def test_the_stage_uses_the_compiled_rules_unless_switched_off(monkeypatch):
    monkeypatch.setenv("CURATE_SPEEDUPS", "off")
    assert GopherRepetitionStage(GopherRepetitionParams()).compiled_rules() is None
    monkeypatch.delenv("CURATE_SPEEDUPS")
    stage = GopherRepetitionStage(GopherRepetitionParams())
    assert stage.compiled_rules() is stage.compiled_rules()
    import pickle

    assert not hasattr(pickle.loads(pickle.dumps(stage)), "_compiled_rules")  # rebuilt in each worker


@pytest.mark.parametrize("size", [1, 2, 10])
def test_fewer_words_than_the_rule_needs(size, monkeypatch):
    plain, sped_up = plain_and_compiled(GopherRepetitionParams(), monkeypatch)
    same_verdicts(plain, sped_up, [" ".join(["word"] * size), " ".join(f"w{i}" for i in range(size))])
