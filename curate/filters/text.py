"""Word and line splitting shared by the heuristic rule sets.

The published rule sets (Gopher, C4, FineWeb) were defined over the output of a word
tokenizer; datatrove uses NLTK's Treebank tokenizer for English. Running NLTK costs more
than all the rules together, so :func:`split_words` is one regular expression that cuts text
the way that matters to the rules:

* runs of letters/digits are words; hyphenated words and numbers with ``.``/``,`` between
  digits stay whole, like in the Treebank tokenizer;
* English clitics (``'s``, ``'ll``, ``'t`` ...) become their own token; other apostrophes
  between letters stay inside the word (``l'homme``), as do dotted abbreviations and
  initials (``U.S.``, ``B.``), which the Treebank tokenizer does not split either;
* ``...`` and ``--`` are one token; any other punctuation or symbol character is a token of
  its own, so punctuation counts in the word total the way the Treebank tokenizer counts it.

bench/filters.py measures how often the rule decisions agree with datatrove's NLTK-based
ones (see bench/README.md).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from functools import lru_cache
from importlib import resources

WORD_PATTERN = re.compile(
    r"""(?i:['’](?:s|m|d|ll|re|ve|t)\b)    # clitic after a word: it's -> it 's
    |[^\W\d_]\.(?:[^\W\d_]\.)+            # dotted abbreviation: e.g. U.S. A.G.
    |\b[A-Z]\.(?=\s)                       # an initial: "Guido B. Stella"
    |\w+(?:(?:-|['’](?!(?:s|m|d|ll|re|ve|t)\b)|(?<=\d)[.,](?=\d))\w+)*
                                          # word, hyphenated word, l'homme, 1,000.50
    |\.\.\.|--                            # multi-character punctuation tokens
    |[^\w\s]                              # any other symbol, one per token
    """,
    re.VERBOSE,
)

# C4 "lines" and Gopher's line rules follow str.splitlines(); the Gopher repetition rules
# split on runs of "\n" and paragraphs on two or more "\n" (MassiveText's definition).
LINE_RUNS = re.compile(r"\n+")
PARAGRAPH_BREAK = re.compile(r"\n{2,}")


def split_words(text: str) -> list[str]:
    """Word tokens of ``text``, punctuation included (see the module doc)."""
    return WORD_PATTERN.findall(text)


class CharBoundedCache:
    """Word tuples by key, least recently used first out, bounded by the characters of the texts
    they came from, not by entries: one huge page must not pin gigabytes of word tuples. A text
    over a quarter of the bound is split but never kept. Shared by the threads of a process."""

    def __init__(self, limit_chars: int):
        self.limit = limit_chars
        self.entries: OrderedDict[object, tuple[tuple[str, ...], int]] = OrderedDict()
        self.chars = 0
        self.lock = threading.Lock()

    def words(self, key: object, text: str, split) -> tuple[str, ...]:
        """``tuple(split(text))``, remembered under ``key``."""
        with self.lock:
            hit = self.entries.get(key)
            if hit is not None:
                self.entries.move_to_end(key)
                return hit[0]
        words = tuple(split(text))
        if len(text) <= self.limit // 4:
            with self.lock:
                if key not in self.entries:
                    self.entries[key] = (words, len(text))
                    self.chars += len(text)
                    while self.chars > self.limit:
                        _, (_, size) = self.entries.popitem(last=False)
                        self.chars -= size
        return words


# Gopher quality, Gopher repetition and FineWeb each split every document of a batch, one
# stage after the other, so the cache must hold a whole batch's texts to be hit.
WORDS_CACHE = CharBoundedCache(4_000_000)


def cached_words(text: str) -> tuple[str, ...]:
    """``split_words`` for stages that follow each other on the same texts (Gopher, FineWeb)."""
    return WORDS_CACHE.words(text, text, WORD_PATTERN.findall)


def is_symbol_word(word: str) -> bool:
    """True for a token with no letter, digit or other word character (punctuation, symbols)."""
    return not any(ch.isalnum() for ch in word)


def has_alpha(word: str) -> bool:
    return any(ch.isalpha() for ch in word)


@lru_cache(maxsize=1)
def sentence_terminals() -> frozenset[str]:
    """Characters with the Unicode Sentence_Terminal property (``.``, ``?``, ``!``, ``。`` ...)."""
    listing = resources.files("curate").joinpath("data/sentence_terminal.txt").read_text(encoding="utf-8")
    return frozenset(chr(int(line[2:], 16)) for line in listing.splitlines() if line.startswith("U+"))


# A sentence ends at a run of terminal punctuation followed by closing quotes/brackets and
# then whitespace or the end of the line. Cheaper than Punkt and agrees with it on the
# question C4 asks ("at least 5 sentences?") for all but a handful of documents.
SENTENCE_END = re.compile(
    r"""(?:[!?。！？]|(?<!\b\w)\.)[.!?。！？]*['"’”)\]]*   # not the period of an initial
    (?=\s*$|\s+[^a-z,;:\s])                          # next word does not continue the sentence
    """,
    re.VERBOSE,
)


def count_sentences(line: str) -> int:
    """Number of sentences in one line; a line with any text holds at least one."""
    stripped = line.strip()
    if not stripped:
        return 0
    count = 0
    last_end = 0
    for match in SENTENCE_END.finditer(stripped):
        count += 1
        last_end = match.end()
    # Words after the last terminator form a sentence of their own, as Punkt counts them.
    if any(ch.isalnum() for ch in stripped[last_end:]):
        count += 1
    return max(count, 1)


def repeated_items(items: list[str]) -> tuple[int, int]:
    """(number of items seen before, characters in those items)."""
    seen: set[str] = set()
    count = 0
    chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars
