"""C4 rules (Raffel et al. 2020, "Exploring the Limits of Transfer Learning...", section 2.2)
and the per-language bad-words list C4 uses (LDNOOBW, shipped in ``curate/data/ldnoobw``).

Line rules *edit* the document: a line is dropped when it has a word longer than
``max_word_length``, does not end in terminal punctuation (or ends in an ellipsis), has
fewer than ``min_words_per_line`` words, mentions "javascript", or carries a cookie/terms
phrase. Wikipedia-style citation marks (``[1]``, ``[edit]``) are removed from lines. Kept
lines are stripped and joined with ``\\n``; a document that lost lines is flagged
``c4.lines_removed``. Document rules remove: "lorem ipsum" (``c4.lorem_ipsum``), a curly
bracket (``c4.curly_bracket``), fewer than ``min_sentences`` sentences left
(``c4.too_few_sentences``), a word from the bad-words list of the document's language
(``c4.bad_words``, value: distinct bad words found).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pyarrow as pa

from curate.filters.text import count_sentences
from curate.schema import add_flag, reject, replace_column
from curate.stage import Stage, StageError

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
POLICY_PHRASES = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"]
# Entries C4 allows in languages written without spaces: as substrings they match ordinary
# words and would remove a large share of all pages.
BAD_WORDS_ALLOWED = {"ja": {"sm", "グロ", "女の子"}, "zh": {"性"}}
NO_SPACE_LANGUAGES = {"ja", "th", "zh"}
NON_WORD = re.compile(r"\W+")


@dataclass
class C4Params:
    terminal_punctuation: list[str] = field(default_factory=lambda: [".", "?", "!", '"'])
    min_words_per_line: int | None = 3
    max_word_length: int | None = 1000
    min_sentences: int | None = 5
    remove_citations: bool = True
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True
    reject_lorem_ipsum: bool = True
    reject_curly_bracket: bool = True
    bad_words: bool = True
    # A folder with one word list per language code (file name = code); default: shipped copy.
    bad_words_dir: str | None = None
    # Language for documents whose `language` is null; languages without a list pass.
    default_language: str = "en"

    def validate(self) -> None:
        if not self.terminal_punctuation:
            raise ValueError("terminal_punctuation must name at least one string")
        for name in ("min_words_per_line", "max_word_length", "min_sentences"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")


def _read_word_list(path) -> set[str]:
    # Shipped lists are read through importlib.resources: inside a --py-files zip they are no file.
    text = path.read_text(encoding="utf-8") if hasattr(path, "read_text") else open(path, encoding="utf-8").read()
    return {line.strip().lower() for line in text.splitlines() if line.strip()}


class BadWords:
    """One language's list, matched the way C4 does: whole words between non-word characters
    (substrings for ja/th/zh). Single-word entries are looked up in a set of the document's
    words; only entries with spaces or symbols need the regular expression."""

    def __init__(self, language: str, words: set[str]):
        words = words - BAD_WORDS_ALLOWED.get(language, set())
        self.language = language
        self.substring = language in NO_SPACE_LANGUAGES
        if self.substring:
            self.single: frozenset[str] = frozenset()
            phrases = sorted(words, key=len, reverse=True)
        else:
            self.single = frozenset(w for w in words if re.fullmatch(r"\w+", w))
            phrases = sorted((w for w in words if w not in self.single), key=len, reverse=True)
        alternatives = "|".join(re.escape(w) for w in phrases)
        if not phrases:
            self.pattern = None
        elif self.substring:
            self.pattern = re.compile(alternatives)
        else:
            self.pattern = re.compile(r"(?:\W|^)(?:{})(?:\W|$)".format(alternatives))

    def count(self, text: str) -> int:
        """Distinct bad words found (a phrase match counts as one)."""
        lowered = text.lower()
        found = len(self.single.intersection(NON_WORD.split(lowered))) if self.single else 0
        if self.pattern is not None and self.pattern.search(lowered):
            found += 1
        return found


class C4Stage(Stage):
    kind = "c4"
    Params = C4Params

    def _word_list_files(self) -> dict[str, str]:
        if self.params.bad_words_dir is not None:
            folder = self.params.bad_words_dir
            if not os.path.isdir(folder):
                raise StageError(f"{self.name}: bad_words_dir {folder!r} is not a folder")
            return {
                name: os.path.join(folder, name) for name in sorted(os.listdir(folder)) if not name.startswith((".", "LICENSE", "README"))
            }
        listing = resources.files("curate").joinpath("data/ldnoobw")
        return {entry.name: entry for entry in listing.iterdir() if not entry.name.startswith((".", "LICENSE", "README"))}

    def check(self) -> None:
        if not self.params.bad_words:
            return
        files = self._word_list_files()
        if not files:
            raise StageError(f"{self.name}: no bad-word lists found in {self.params.bad_words_dir!r}")
        for language, path in files.items():
            try:
                _read_word_list(path)
            except (OSError, UnicodeDecodeError) as e:
                raise StageError(f"{self.name}: cannot read bad-word list {path}: {e}") from None

    def setup(self) -> None:
        self._lists: dict[str, BadWords | None] = {}
        self._list_files = self._word_list_files() if self.params.bad_words else {}
        self._terminal = tuple(self.params.terminal_punctuation)

    def _bad_words_for(self, language: str) -> BadWords | None:
        if language not in self._lists:
            path = self._list_files.get(language)
            self._lists[language] = BadWords(language, _read_word_list(path)) if path else None
        return self._lists[language]

    def clean_lines(self, text: str, every_rule: bool = False) -> tuple[list[str], int, list[str]]:
        """(kept lines, sentences in them, the document rules that fired: the first, or with
        ``every_rule`` each one, reading on as if it were off once it fired)."""
        p = self.params
        c = self.counters
        kept: list[str] = []
        sentences = 0
        fired: list[str] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line:
                continue
            c["lines_total"] += 1
            words = line.split()
            if p.max_word_length is not None and any(len(w) > p.max_word_length for w in words):
                c["lines_dropped:long_word"] += 1
                continue
            if p.remove_citations and "[" in line:
                line = CITATION.sub("", line)
            if not line.endswith(self._terminal) or line.endswith("..."):
                c["lines_dropped:no_terminal_punctuation"] += 1
                continue
            if p.min_words_per_line is not None and len(words) < p.min_words_per_line:
                c["lines_dropped:few_words"] += 1
                continue
            lowered = line.lower()
            if p.reject_lorem_ipsum and "lorem ipsum" in lowered and "lorem_ipsum" not in fired:
                fired.append("lorem_ipsum")
                if not every_rule:
                    return kept, sentences, fired
            if p.drop_javascript_lines and "javascript" in lowered:
                c["lines_dropped:javascript"] += 1
                continue
            if p.reject_curly_bracket and "{" in line and "curly_bracket" not in fired:
                fired.append("curly_bracket")
                if not every_rule:
                    return kept, sentences, fired
            if p.drop_policy_lines and any(phrase in lowered for phrase in POLICY_PHRASES):
                c["lines_dropped:policy"] += 1
                continue
            if p.min_sentences is not None:
                sentences += count_sentences(line)
            kept.append(line)
        return kept, sentences, fired

    def judge(self, text: str, language: str | None, every_rule: bool = False) -> tuple[list[str], str, list[tuple[str, float]]]:
        """(kept lines, the text they make, the document rules it fails with their values): the
        first rule, or with ``every_rule`` each one, as if the ones before it were off."""
        p = self.params
        kept, sentences, fired = self.clean_lines(text, every_rule)
        failures = [(rule, 1.0) for rule in fired]
        cleaned = "\n".join(kept)
        if failures and not every_rule:
            return kept, cleaned, failures
        if p.min_sentences is not None and sentences < p.min_sentences:
            failures.append(("too_few_sentences", float(sentences)))
            if not every_rule:
                return kept, cleaned, failures
        if p.bad_words:
            bad = self._bad_words_for(language or p.default_language)
            found = bad.count(cleaned) if bad is not None else 0
            if bad is None:
                self.counters["bad_words_no_list"] += 1
            if found:
                failures.append(("bad_words", float(found)))
        return kept, cleaned, failures

    def every_failure(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[list[str]]]:
        """Per document, every rule (``"c4.<rule>"``) it fails, not only the first that ``__call__``
        records; and the batch with each text as C4 leaves a document it keeps (its lines
        cleaned), which is what later stages would judge (trainer/rule_mixes.py)."""
        self.ensure_setup()
        texts, languages = batch.column("text").to_pylist(), batch.column("language").to_pylist()
        judged = [self.judge(text or "", language, every_rule=True) for text, language in zip(texts, languages)]
        rules = [[f"{self.name}.{rule}" for rule, _ in failures] for _, _, failures in judged]
        return replace_column(batch, "text", [cleaned for _, cleaned, _ in judged]), rules

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        languages = batch.column("language").to_pylist()
        n = len(texts)
        new_texts: list[str | None] = list(texts)
        mask = np.zeros(n, dtype=bool)
        edited = np.zeros(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        values: list[float | None] = [None] * n
        for i, text in enumerate(texts):
            text = text or ""
            kept, cleaned, failures = self.judge(text, languages[i])
            if failures:
                rule, value = failures[0]
                mask[i], reasons[i], values[i] = True, f"{self.name}.{rule}", value
                continue
            if cleaned != text:
                new_texts[i] = cleaned
                # Stripping whitespace alone is not worth a flag; dropping a line is.
                edited[i] = len(kept) != sum(1 for line in text.splitlines() if line.strip())
        self.counters["documents_edited"] += int(edited.sum())
        batch = replace_column(batch, "text", new_texts)
        batch = add_flag(batch, edited, f"{self.name}.lines_removed")
        return reject(batch, mask, reasons, values)
