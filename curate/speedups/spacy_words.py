"""spaCy's rule-based word splitting with the words of each whitespace-separated chunk remembered.

spaCy's tokenizer cuts a text at whitespace first and then splits each chunk on its own (prefixes,
suffixes, infixes, special cases, URL and token matches): a chunk's tokens do not depend on its
neighbours (spaCy itself caches them by chunk, but ``memory_zone``, which keeps a long run's
memory flat, forgets that cache after every text). Web text repeats its words, so here each
chunk's tokens are kept in a bounded dictionary per tokenizer, and the chunks a text brings for
the first time are split by spaCy in one call, joined by newlines (a newline is a token of its
own, so the chunks' tokens come back between them, as they would in place).

Exceptions, where the plain path runs instead:

* a special case with a space in it (Russian ``в т.ч.``, Arabic ``ب. م``) joins tokens across
  chunks: a text that holds one is split whole by the plain path;
* Chinese, Japanese and Vietnamese: their segmenters (jieba, SudachiPy, pyvi) read across
  chunks, so they are never given to this.

Chinese and Japanese get another short cut (:func:`segmenter_tokens`): spaCy's ``zh`` and ``ja``
tokenizers run jieba and SudachiPy and then build a ``Doc`` (Japanese: with part-of-speech tags,
lemmas, readings and inflections for every token); the words are the segmenter's own, whitespace
between them kept as tokens of its own that curate drops. Asking the segmenter spaCy built (same
dictionary, same split mode A) for its words directly gives the same words for 2x (jieba) and 5x
(SudachiPy) less time.

Tokens are what the plain path returns after stripping and dropping blank ones: whitespace tokens
never appear, as chunks hold no whitespace. ``tests/test_speedups_spacy_words.py`` compares it
with the plain path on real pages.
"""

from __future__ import annotations

import re
import threading
from typing import Callable, Iterable

# spaCy languages whose tokenizer is a segmenter that looks across whitespace
CONTEXT_SEGMENTERS = frozenset({"zh", "ja", "vi"})
# chunks remembered per tokenizer; the dictionary is emptied when full (web vocabularies are
# Zipfian: the chunks that matter come back within a few thousand pages)
MAX_CHUNKS = 300_000


def spanning_specials(nlp) -> re.Pattern | None:
    """A pattern for the tokenizer's special cases that hold whitespace between other characters."""
    spanning = [key for key in nlp.tokenizer.rules if not key.isspace() and any(ch.isspace() for ch in key)]
    if not spanning:
        return None
    return re.compile("|".join(re.escape(key) for key in sorted(spanning, key=len, reverse=True)))


class ChunkCachedSplitter:
    """``split(text)`` with the same words as ``plain(text)`` for a blank spaCy pipeline ``nlp``."""

    def __init__(self, nlp, plain: Callable[[str], list[str]], lock: threading.Lock, max_chunks: int = MAX_CHUNKS):
        self.nlp = nlp
        self.plain = plain
        self.lock = lock  # the one the plain path holds: spaCy's tokenizer is used by one thread at a time
        self.max_chunks = max_chunks
        self.specials = spanning_specials(nlp)
        self.chunks: dict[str, tuple[str, ...]] = {}

    @classmethod
    def for_language(cls, code: str, nlp, plain: Callable[[str], list[str]], lock: threading.Lock) -> ChunkCachedSplitter | None:
        """The splitter, or None for a language whose tokenizer reads across chunks (or is not
        spaCy's rule-based one: every other of the 60 codes curate uses is)."""
        if code in CONTEXT_SEGMENTERS or not hasattr(nlp.tokenizer, "rules"):
            return None
        return cls(nlp, plain, lock)

    def __call__(self, text: str) -> list[str]:
        if self.specials is not None and self.specials.search(text):
            return self.plain(text)
        parts = text.split()
        chunks = self.chunks
        new = [chunk for chunk in dict.fromkeys(parts) if chunk not in chunks]
        if new:
            self.learn(new)
        words: list[str] = []
        try:
            for chunk in parts:
                words.extend(chunks[chunk])
        except KeyError:  # another thread emptied the full dictionary meanwhile
            return self.plain(text)
        return words

    def learn(self, new: list[str]) -> None:
        """Split the chunks not seen before, in one call to spaCy."""
        with self.lock, self.nlp.memory_zone():
            doc = self.nlp.make_doc("\n".join(new))
            groups: list[list[str]] = [[]]
            for token in doc:
                if token.is_space:
                    groups.append([])
                else:
                    groups[-1].append(token.text)
        if len(groups) != len(new):  # a separator did not come back as its own token
            groups = [self.plain(chunk) for chunk in new]
        if len(self.chunks) + len(new) > self.max_chunks:
            self.chunks.clear()
        for chunk, tokens in zip(new, groups):
            self.chunks[chunk] = tuple(tokens)


def segmenter_tokens(code: str, nlp) -> Callable[[str], Iterable[str]] | None:
    """The words of the segmenter inside spaCy's Chinese (jieba) or Japanese (SudachiPy) tokenizer,
    whitespace tokens included (the caller strips them, as it does spaCy's); None for other languages."""
    tokenizer = nlp.tokenizer
    if code == "zh" and getattr(tokenizer, "segmenter", None) == "jieba":
        jieba = tokenizer.jieba_seg
        return lambda text: jieba.cut(text, cut_all=False)
    if code == "ja" and getattr(tokenizer, "need_subtokens", True) is False:  # split mode A, as curate builds it
        sudachi = tokenizer.tokenizer
        return lambda text: (m.surface() for m in sudachi.tokenize(text))
    return None
