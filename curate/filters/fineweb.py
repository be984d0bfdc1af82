"""FineWeb's own quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.4), run
after the Gopher and C4 rules in FineWeb's pipeline:

* ``line_punct_ratio``: fraction of non-empty lines ending in sentence-terminal punctuation
  (Unicode Sentence_Terminal: ``.``, ``!``, ``?``, ``。`` ...) is below 0.12;
* ``short_line_ratio``: fraction of non-empty lines of at most 30 characters is above 0.67;
* ``char_dup_ratio``: characters in lines that repeat an earlier line, over all characters
  except newlines, is above 0.01;
* ``list_ratio``: newlines per word above 0.3 (list-like documents);
* ``empty``: no non-empty line at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pyarrow as pa

from curate import words as language_words
from curate.filters.common import RuleStage, threshold_or_none
from curate.filters.per_language import check_language_rules, language_rules
from curate.filters.text import cached_words, repeated_items, sentence_terminals
from curate.language_settings import LanguageSettings


@dataclass
class FineWebParams:
    min_line_punct_ratio: float | None = 0.12
    # FineWeb keeps documents where *no* line ends in punctuation only if this is true.
    line_punct_exclude_zero: bool = False
    max_short_line_ratio: float | None = 0.67
    short_line_length: int = 30
    max_char_dup_ratio: float | None = 0.01
    max_newline_word_ratio: float | None = 0.3
    # Line endings that count as punctuation; default: every Unicode Sentence_Terminal.
    stop_chars: list[str] | None = None
    # per-language thresholds and words (curate/filters/per_language.py); null: these thresholds for all
    language_settings: str | None = None
    language_fallback: str | None = None

    def validate(self) -> None:
        for name in ("min_line_punct_ratio", "max_short_line_ratio", "max_char_dup_ratio"):
            threshold_or_none(getattr(self, name), name, 0.0, 1.0)
        threshold_or_none(self.max_newline_word_ratio, "max_newline_word_ratio", 0.0)
        if self.short_line_length < 0:
            raise ValueError(f"short_line_length must be >= 0, got {self.short_line_length}")


def fineweb_settings(settings: LanguageSettings) -> dict:
    """FineWeb-2's thresholds of a language for FineWeb's rules."""
    return {"min_line_punct_ratio": settings.line_punct_thr, "max_newline_word_ratio": settings.new_line_ratio}


class FineWebStage(RuleStage):
    kind = "fineweb"
    Params = FineWebParams

    def check(self) -> None:
        check_language_rules(self)

    def setup(self) -> None:
        self._stop_chars = tuple(self.params.stop_chars) if self.params.stop_chars is not None else tuple(sentence_terminals())
        self._languages = language_rules(self, fineweb_settings)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.params.language_settings is None:
            return self.apply_verdicts(batch, self.text_verdict)
        return self.apply_language_verdicts(batch, self.language_verdict)

    def text_verdict(self, text: str) -> tuple[str, float] | None:
        return self.rules_verdict(text, self.params, cached_words)

    def language_verdict(self, text: str, language: str | None) -> tuple[str, float] | None:
        """The rules with the document's language's thresholds and words."""
        return next(self.failures(text, language), None)

    def failures(self, text: str, language: str | None = None) -> Iterator[tuple[str, float]]:
        if self._languages is None:
            return self.rule_failures(text, self.params, cached_words)
        params = self._languages.params_for(language, self.params, self.counters)
        return self.rule_failures(text, params, lambda t: language_words.cached_words(t, language))

    def rules_verdict(self, text: str, p: FineWebParams, words_of: Callable[[str], tuple[str, ...]]) -> tuple[str, float] | None:
        return next(self.rule_failures(text, p, words_of), None)

    def rule_failures(self, text: str, p: FineWebParams, words_of: Callable[[str], tuple[str, ...]]) -> Iterator[tuple[str, float]]:
        """Every rule the text fails, in rule order (the first is the verdict)."""
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            yield "empty", 0.0
            return  # nothing below is defined without lines
        if p.min_line_punct_ratio is not None:
            stops = self._stop_chars
            ratio = sum(1 for line in lines if line.endswith(stops)) / len(lines)
            if ratio < p.min_line_punct_ratio and not (ratio == 0 and p.line_punct_exclude_zero):
                yield "line_punct_ratio", ratio
        if p.max_short_line_ratio is not None:
            limit = p.short_line_length
            ratio = sum(1 for line in lines if len(line) <= limit) / len(lines)
            if ratio > p.max_short_line_ratio:
                yield "short_line_ratio", ratio
        if p.max_char_dup_ratio is not None:
            ratio = repeated_items(lines)[1] / (len(text) - text.count("\n"))
            if ratio > p.max_char_dup_ratio:
                yield "char_dup_ratio", ratio
        if p.max_newline_word_ratio is not None:
            n_words = len(words_of(text))
            ratio = text.count("\n") / n_words if n_words else float("inf")
            if ratio > p.max_newline_word_ratio:
                yield "list_ratio", ratio
