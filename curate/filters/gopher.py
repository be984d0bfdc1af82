"""Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models: Methods,
Analysis & Insights from Training Gopher", MassiveText, section A.1.1 and table A1).

Defaults are the paper's values. Rules run in the order below and a document is removed by
the first rule it fails; ``rejected_value`` is the measured quantity that crossed the
threshold. Setting a threshold to ``null`` in a recipe turns that rule off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import words as language_words
from curate.filters.common import RuleStage, threshold_or_none
from curate.filters.ngrams import NGRAM_HASH_MULTIPLIER, active_sizes
from curate.filters.per_language import check_language_rules, language_rules
from curate.filters.text import LINE_RUNS, PARAGRAPH_BREAK, cached_words, has_alpha, is_symbol_word, repeated_items
from curate.language_settings import LanguageSettings

GOPHER_STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]


@dataclass
class GopherQualityParams:
    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1  # for "#" and for "..."/"…" separately
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words: list[str] = field(default_factory=lambda: list(GOPHER_STOP_WORDS))
    bullet_starts: list[str] = field(default_factory=lambda: ["•", "-"])
    # per-language thresholds and words (curate/filters/per_language.py); null: these thresholds for all
    language_settings: str | None = None
    language_fallback: str | None = None

    def validate(self) -> None:
        for name in ("max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio", "min_alpha_words_ratio"):
            threshold_or_none(getattr(self, name), name, 0.0, 1.0)
        if self.min_doc_words is not None and self.max_doc_words is not None and self.min_doc_words > self.max_doc_words:
            raise ValueError(f"min_doc_words ({self.min_doc_words}) is above max_doc_words ({self.max_doc_words})")


def quality_settings(settings: LanguageSettings) -> dict:
    """FineWeb-2's Gopher quality thresholds of a language (its pipeline keeps min_stop_words=2)."""
    return {
        "min_avg_word_length": settings.min_avg_word_length,
        "max_avg_word_length": settings.max_avg_word_length,
        "min_alpha_words_ratio": settings.max_non_alpha_words_ratio,  # datatrove's name for the same minimum
        "stop_words": sorted(settings.stop_words),
    }


class GopherQualityStage(RuleStage):
    """Word count, mean word length, symbol ratios, bullet/ellipsis lines, alphabetic words,
    stop words. Words are the tokens of :func:`curate.filters.text.split_words`; "words" in
    the length rules exclude tokens made only of punctuation or symbols."""

    kind = "gopher_quality"
    Params = GopherQualityParams

    def check(self) -> None:
        check_language_rules(self)

    def setup(self) -> None:
        self._stop_words = frozenset(self.params.stop_words)
        self._bullets = tuple(self.params.bullet_starts)
        self._languages = language_rules(self, quality_settings)
        self._stop_sets: dict[str | None, frozenset[str]] = {}

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.params.language_settings is None:
            return self.apply_verdicts(batch, self.text_verdict)
        return self.apply_language_verdicts(batch, self.language_verdict)

    def text_verdict(self, text: str) -> tuple[str, float] | None:
        return self.rules_verdict(text, cached_words(text), self.params, self._stop_words)

    def language_verdict(self, text: str, language: str | None) -> tuple[str, float] | None:
        """The rules with the document's language's thresholds, stop words and words."""
        return next(self.failures(text, language), None)

    def failures(self, text: str, language: str | None = None) -> Iterator[tuple[str, float]]:
        if self._languages is None:
            return self.rule_failures(text, cached_words(text), self.params, self._stop_words)
        params = self._languages.params_for(language, self.params, self.counters)
        stop_words = self._stop_sets.get(language)
        if stop_words is None:
            stop_words = self._stop_sets[language] = frozenset(params.stop_words)
        return self.rule_failures(text, language_words.cached_words(text, language), params, stop_words)

    def rules_verdict(
        self, text: str, words: tuple[str, ...], p: GopherQualityParams, stop_words: frozenset[str]
    ) -> tuple[str, float] | None:
        return next(self.rule_failures(text, words, p, stop_words), None)

    def rule_failures(
        self, text: str, words: tuple[str, ...], p: GopherQualityParams, stop_words: frozenset[str]
    ) -> Iterator[tuple[str, float]]:
        """Every rule the text fails, in rule order (the first is the verdict)."""
        n_words = len(words)
        total_length = 0
        n_real = 0
        for w in words:
            if w[0].isalnum() or w[-1].isalnum() or not is_symbol_word(w):
                n_real += 1
                total_length += len(w)
        if p.min_doc_words is not None and n_real < p.min_doc_words:
            yield "word_count", float(n_real)
        elif p.max_doc_words is not None and n_real > p.max_doc_words:
            yield "word_count", float(n_real)
        if n_real == 0:
            return  # nothing below is defined without words
        mean_length = total_length / n_real
        if p.min_avg_word_length is not None and mean_length < p.min_avg_word_length:
            yield "mean_word_length", mean_length
        elif p.max_avg_word_length is not None and mean_length > p.max_avg_word_length:
            yield "mean_word_length", mean_length
        if p.max_symbol_word_ratio is not None:
            hash_ratio = text.count("#") / n_words
            if hash_ratio > p.max_symbol_word_ratio:
                yield "hash_ratio", hash_ratio
            ellipsis_ratio = (text.count("...") + text.count("…")) / n_words
            if ellipsis_ratio > p.max_symbol_word_ratio:
                yield "ellipsis_ratio", ellipsis_ratio
        lines = text.splitlines()
        if lines:
            if p.max_bullet_lines_ratio is not None:
                bullets = self._bullets
                ratio = sum(1 for line in lines if line.lstrip().startswith(bullets)) / len(lines)
                if ratio > p.max_bullet_lines_ratio:
                    yield "bullet_lines", ratio
            if p.max_ellipsis_lines_ratio is not None:
                ratio = sum(1 for line in lines if line.rstrip().endswith(("...", "…"))) / len(lines)
                if ratio > p.max_ellipsis_lines_ratio:
                    yield "ellipsis_lines", ratio
        if p.min_alpha_words_ratio is not None:
            ratio = sum(1 for w in words if w[0].isalpha() or has_alpha(w)) / n_words
            if ratio < p.min_alpha_words_ratio:
                yield "alpha_words", ratio
        if p.min_stop_words is not None:
            found = len(stop_words.intersection(words))
            if found < p.min_stop_words:
                yield "stop_words", float(found)


def _default_top_ngrams() -> dict[int, float]:
    return {2: 0.20, 3: 0.18, 4: 0.16}


def _default_dup_ngrams() -> dict[int, float]:
    return {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


@dataclass
class GopherRepetitionParams:
    max_dup_para_frac: float | None = 0.30
    max_dup_para_char_frac: float | None = 0.20
    max_dup_line_frac: float | None = 0.30
    max_dup_line_char_frac: float | None = 0.20
    # n -> highest allowed fraction of characters in the most frequent n-gram
    max_top_ngram_char_frac: dict[int, float] = field(default_factory=_default_top_ngrams)
    # n -> highest allowed fraction of characters in n-grams seen before in the document
    max_dup_ngram_char_frac: dict[int, float] = field(default_factory=_default_dup_ngrams)
    # per-language thresholds and words (curate/filters/per_language.py); null: these thresholds for all
    language_settings: str | None = None
    language_fallback: str | None = None

    def validate(self) -> None:
        for name in ("max_dup_para_frac", "max_dup_para_char_frac", "max_dup_line_frac", "max_dup_line_char_frac"):
            threshold_or_none(getattr(self, name), name, 0.0, 1.0)
        for table in ("max_top_ngram_char_frac", "max_dup_ngram_char_frac"):
            for n, frac in getattr(self, table).items():
                if n < 1:
                    raise ValueError(f"{table}: n-gram size must be >= 1, got {n}")
                threshold_or_none(frac, f"{table}.{n}", 0.0, 1.0)


def word_ids_and_offsets(words: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each word's id (ids in order of first use) and the cumulative word lengths (n + 1 values, from 0)."""
    column = pa.array(words, pa.string())
    ids = column.dictionary_encode().indices.to_numpy().astype(np.uint64)
    cumulative = np.zeros(len(words) + 1, np.int64)
    np.cumsum(pc.utf8_length(column).to_numpy(), out=cumulative[1:])
    return ids, cumulative


def repetition_settings(settings: LanguageSettings) -> dict:
    """FineWeb-2's Gopher repetition thresholds of a language."""
    return {
        # FineWeb-2 hands datatrove dup_line_frac 0 for six languages, and there 0 turns the rule off
        "max_dup_line_frac": settings.dup_line_frac or None,
        "max_top_ngram_char_frac": dict(settings.top_n_grams),
        "max_dup_ngram_char_frac": dict(settings.dup_n_grams),
    }


class GopherRepetitionStage(RuleStage):
    """Duplicate paragraphs/lines (by count and by characters), the most frequent 2/3/4-gram's
    share of characters, and the share of characters in repeated 5..10-grams.

    N-grams are hashed over integer word ids with numpy instead of joining strings, so the
    cost per document is a few array passes plus one loop over the repeated n-grams only.
    """

    kind = "gopher_repetition"
    Params = GopherRepetitionParams

    def check(self) -> None:
        check_language_rules(self)

    def setup(self) -> None:
        self._languages = language_rules(self, repetition_settings)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.params.language_settings is None:
            return self.apply_verdicts(batch, self.text_verdict)
        return self.apply_language_verdicts(batch, self.language_verdict)

    def text_verdict(self, text: str) -> tuple[str, float] | None:
        return self.rules_verdict(text, self.params, cached_words)

    def language_verdict(self, text: str, language: str | None) -> tuple[str, float] | None:
        """The rules with the document's language's thresholds and words."""
        params = self._languages.params_for(language, self.params, self.counters)
        return self.rules_verdict(text, params, lambda t: language_words.cached_words(t, language))

    def failures(self, text: str, language: str | None = None) -> Iterator[tuple[str, float]]:
        # the plain n-gram rules: the compiled ones stop at the first that fails
        if self._languages is None:
            return self.rule_failures(text, self.params, cached_words, compiled=False)
        params = self._languages.params_for(language, self.params, self.counters)
        return self.rule_failures(text, params, lambda t: language_words.cached_words(t, language), compiled=False)

    def rules_verdict(self, text: str, p: GopherRepetitionParams, words_of: Callable[[str], tuple[str, ...]]) -> tuple[str, float] | None:
        return next(self.rule_failures(text, p, words_of), None)

    def rule_failures(
        self, text: str, p: GopherRepetitionParams, words_of: Callable[[str], tuple[str, ...]], compiled: bool = True
    ) -> Iterator[tuple[str, float]]:
        """Every rule the text fails, in rule order (the first is the verdict); with ``compiled``
        and that speed-up on, the n-gram rules give only their first."""
        if not text:
            return
        text_length = len(text)
        paragraphs = PARAGRAPH_BREAK.split(text.strip())
        dup_count, dup_chars = repeated_items(paragraphs)
        if p.max_dup_para_frac is not None and dup_count / len(paragraphs) > p.max_dup_para_frac:
            yield "dup_para_frac", dup_count / len(paragraphs)
        if p.max_dup_para_char_frac is not None and dup_chars / text_length > p.max_dup_para_char_frac:
            yield "dup_para_char_frac", dup_chars / text_length
        lines = LINE_RUNS.split(text)
        dup_count, dup_chars = repeated_items(lines)
        if p.max_dup_line_frac is not None and dup_count / len(lines) > p.max_dup_line_frac:
            yield "dup_line_frac", dup_count / len(lines)
        if p.max_dup_line_char_frac is not None and dup_chars / text_length > p.max_dup_line_char_frac:
            yield "dup_line_char_frac", dup_chars / text_length
        if not active_sizes(p.max_top_ngram_char_frac) and not active_sizes(p.max_dup_ngram_char_frac):
            return
        words = words_of(text)
        if not words:
            return
        ids, cumulative = word_ids_and_offsets(words)
        rules = self.compiled_rules(p) if compiled else None
        if rules is not None:
            found = rules.verdict(ids, cumulative, text_length)
            if found is not None:
                yield found
            return
        yield from self.ngram_failures(ids, cumulative, text_length, p)

    def compiled_rules(self, params: GopherRepetitionParams | None = None):
        """The n-gram rules of ``params`` (default: the stage's) compiled (:mod:`curate.speedups.gopher_ngrams`),
        or None when that speed-up is off."""
        p = params or self.params
        key = (tuple(p.max_top_ngram_char_frac.items()), tuple(p.max_dup_ngram_char_frac.items()))
        if not hasattr(self, "_compiled_rules"):  # once per process: "_" attributes are not pickled
            self._compiled_rules = {}
        if key not in self._compiled_rules:
            from curate import speedups

            self._compiled_rules[key] = None
            if speedups.enabled("gopher_ngrams"):
                from curate.speedups.gopher_ngrams import CompiledNgramRules

                self._compiled_rules[key] = CompiledNgramRules(p.max_top_ngram_char_frac, p.max_dup_ngram_char_frac)
        return self._compiled_rules[key]

    def ngram_verdict(
        self, ids: np.ndarray, cumulative: np.ndarray, text_length: int, params: GopherRepetitionParams | None = None
    ) -> tuple[str, float] | None:
        """The n-gram rules over a document's word ids (in order of first use) and cumulative word lengths."""
        return next(self.ngram_failures(ids, cumulative, text_length, params), None)

    def ngram_failures(
        self, ids: np.ndarray, cumulative: np.ndarray, text_length: int, params: GopherRepetitionParams | None = None
    ) -> Iterator[tuple[str, float]]:
        """Every n-gram rule the document fails, in rule order."""
        p = params or self.params
        words = len(ids)
        hashes = {1: ids}

        def ngram_hashes(n: int) -> np.ndarray:
            for k in range(max(h for h in hashes if h <= n) + 1, n + 1):
                previous = hashes[k - 1]
                hashes[k] = previous[:-1] * NGRAM_HASH_MULTIPLIER + ids[k - 1 :]
            return hashes[n]

        for n in active_sizes(p.max_top_ngram_char_frac):
            if words < n:
                continue
            keys = ngram_hashes(n)
            _, first, counts = np.unique(keys, return_index=True, return_counts=True)
            top = counts.max()
            # Among equally frequent n-grams the one seen first counts (Counter.most_common order).
            start = int(first[counts == top].min())
            chars = int(cumulative[start + n] - cumulative[start]) + (n - 1)
            fraction = int(top) * chars / text_length
            if fraction > p.max_top_ngram_char_frac[n]:
                yield f"top_{n}_gram", fraction

        for n in active_sizes(p.max_dup_ngram_char_frac):
            if words < n:
                continue
            keys = ngram_hashes(n)
            unique, inverse = np.unique(keys, return_inverse=True)
            if len(unique) == len(keys):
                continue
            window_chars = (cumulative[n:] - cumulative[:-n]).tolist()
            fraction = _greedy_repeated_chars(inverse.tolist(), window_chars, n, len(unique)) / text_length
            if fraction > p.max_dup_ngram_char_frac[n]:
                yield f"dup_{n}_gram", fraction


def _greedy_repeated_chars(ngram_ids: list[int], window_chars: list[int], n: int, n_unique: int) -> int:
    """Characters in n-grams that repeat an earlier one, scanning left to right and jumping
    over a repeated n-gram so overlapping repeats are not counted twice (MassiveText)."""
    seen = bytearray(n_unique)
    repeated = 0
    index = 0
    end = len(ngram_ids)
    while index < end:
        gram = ngram_ids[index]
        if seen[gram]:
            repeated += window_chars[index]
            index += n
        else:
            seen[gram] = 1
            index += 1
    return repeated
