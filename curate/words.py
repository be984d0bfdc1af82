"""Words per language: one word-splitting function, the tokenizer chosen by the document's language.

Which tokenizer a language-script pair gets is FineWeb-2's choice, read from datatrove's table
``curate/data/fineweb2/tokenizer_assignment.csv`` (Apache-2.0): spaCy's rule-based tokenizer of
the language (or of a related language it names as proxy) for most pairs, dedicated tokenizers
for scripts without spaces between words. They are run here from their PyPI packages, all
offline (docs/languages.md lists what each language gets):

* spaCy ``spacy.blank(code)``: Chinese segmented with jieba, Japanese with SudachiPy (its
  ``sudachidict_core`` dictionary), Vietnamese with pyvi, as spaCy and datatrove do;
* Thai: PyThaiNLP ``newmm-safe``; Korean: kiwipiepy; Khmer: khmer-nltk; Lao: LaoNLP;
  Indic scripts: indic-nlp-library's ``trivial_tokenize``;
* English (``eng_Latn``): the English stages' own splitter (:func:`curate.filters.text.split_words`,
  NLTK's Treebank tokenizer's decisions at ~30x spaCy's speed), so an English document is judged
  the same with and without per-language settings; FineWeb-2 has no English (datatrove's table
  names spaCy ``en``);
* the default for every other pair, for the pairs FineWeb-2 tokenizes with Stanza (its models
  are downloaded at run time), Tibetan (botok downloads its dictionary) and Burmese: spaCy's
  multi-language ``xx`` tokenizer, which splits on spaces and punctuation.

Like datatrove, tokens are stripped and blank ones dropped. The English rule stages keep
their own regular-expression splitter (:mod:`curate.filters.text`); this module is used only
when a stage is given per-language settings.
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Callable

from curate.filters import text as english_text
from curate.language_settings import language_script

DEFAULT_TOKENIZER = ("spacy", "xx")
# datatrove classes whose packages download models at run time (Stanza, botok) or are not
# installed (pyidaungsu): the default stands in
STAND_IN = {"StanzaTokenizer", "TibetanTokenizer", "BurmeseTokenizer", "WhitespaceTokenizer", ""}
# spaCy's configuration where datatrove changes the default segmenter
SPACY_CONFIGS = {"zh": {"nlp": {"tokenizer": {"segmenter": "jieba"}}}}
# SudachiPy refuses inputs over 49,149 bytes; Japanese is cut below that, at line ends
JAPANESE_CHUNK_BYTES = 40_000


@dataclass(frozen=True)
class TokenizerChoice:
    kind: str  # "spacy", "thai", "korean", "khmer", "lao", "indic", "english"
    code: str  # the spaCy or Indic language code ("" where the kind needs none)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.code}" if self.code else self.kind


@lru_cache(maxsize=1)
def tokenizer_table() -> dict[str, TokenizerChoice]:
    """language-script pair -> tokenizer, from datatrove's ``tokenizer_assignment.csv``."""
    listing = resources.files("curate").joinpath("data/fineweb2/tokenizer_assignment.csv").read_text(encoding="utf-8")
    kinds = {
        "SpaCyTokenizer": "spacy",
        "ThaiTokenizer": "thai",
        "KiwiTokenizer": "korean",
        "KhmerTokenizer": "khmer",
        "LaoTokenizer": "lao",
        "IndicNLPTokenizer": "indic",
    }
    table = {}
    for row in csv.DictReader(io.StringIO(listing)):
        pair = f"{row['code_3']}_{row['script']}"
        if pair in table:  # the first row of a pair counts, as in datatrove
            continue
        if row["type"] in STAND_IN or row["type"] not in kinds:
            table[pair] = TokenizerChoice(*DEFAULT_TOKENIZER)
        else:
            table[pair] = TokenizerChoice(kinds[row["type"]], row["tok_code"])
    table["eng_Latn"] = TokenizerChoice("english", "")
    return table


def tokenizer_choice(language: str | None) -> TokenizerChoice:
    """The tokenizer of a language (lid.176 code or ISO 639-3 + script pair); the default when unknown."""
    pair = language_script(language)
    return tokenizer_table().get(pair or "", TokenizerChoice(*DEFAULT_TOKENIZER))


def is_known(language: str | None) -> bool:
    """True when the table names a tokenizer for the language."""
    return language_script(language) in tokenizer_table()


def strip_blank(tokens) -> list[str]:
    return [s for s in (t.strip() for t in tokens) if s]


def chunks_of_bytes(text: str, limit: int) -> list[str]:
    """``text`` cut at line ends (or, for a longer line, anywhere) into pieces of at most ``limit`` UTF-8 bytes."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        n = len(line.encode("utf-8"))
        while n > limit:  # one line longer than the limit: cut it by characters
            cut = limit // 4  # a character is at most 4 bytes
            pieces.append(line[:cut])
            line = line[cut:]
            n = len(line.encode("utf-8"))
        if size + n > limit and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += n
    if current:
        pieces.append("".join(current))
    return pieces


def spacy_splitter(code: str) -> Callable[[str], list[str]]:
    import spacy

    nlp = spacy.blank(code, config=SPACY_CONFIGS.get(code, {}))
    nlp.max_length = 10**10  # the tokenizer alone needs no memory per character beyond the doc
    lock = threading.Lock()  # memory_zone frees each text's strings; one text at a time

    from curate import speedups

    faster = speedups.enabled("spacy_words")  # the same words in less time (curate/speedups/spacy_words.py)
    if faster:
        from curate.speedups.spacy_words import ChunkCachedSplitter, segmenter_tokens

    def tokens(part: str):
        return (token.text for token in nlp.make_doc(part))

    tokens_of = (faster and segmenter_tokens(code, nlp)) or tokens

    def split(text: str) -> list[str]:
        parts = chunks_of_bytes(text, JAPANESE_CHUNK_BYTES) if code == "ja" else [text]
        with lock, nlp.memory_zone():
            return strip_blank(token for part in parts for token in tokens_of(part))

    return (faster and ChunkCachedSplitter.for_language(code, nlp, split, lock)) or split


def thai_splitter(_: str) -> Callable[[str], list[str]]:
    from pythainlp.tokenize import word_tokenize

    return lambda text: strip_blank(word_tokenize(text, keep_whitespace=False, engine="newmm-safe"))


def korean_splitter(_: str) -> Callable[[str], list[str]]:
    import re

    from kiwipiepy import Kiwi

    kiwi = Kiwi()  # the default model; datatrove's "sbg" model is no longer in kiwipiepy's wheel
    long_numbers = re.compile("[0-9,]{20,}")  # kiwipiepy stalls on very long digit runs (datatrove)

    def split(text: str) -> list[str]:
        text = long_numbers.sub("", text)
        return strip_blank(text[t.start : t.end] for t in kiwi.tokenize(text))

    return split


def khmer_splitter(_: str) -> Callable[[str], list[str]]:
    from khmernltk import word_tokenize

    return lambda text: strip_blank(word_tokenize(text, return_tokens=True))


def lao_splitter(_: str) -> Callable[[str], list[str]]:
    from laonlp.tokenize import word_tokenize

    return lambda text: strip_blank(word_tokenize(text))


def indic_splitter(code: str) -> Callable[[str], list[str]]:
    from indicnlp.tokenize.indic_tokenize import trivial_tokenize

    return lambda text: strip_blank(trivial_tokenize(text, code))


def english_splitter(_: str) -> Callable[[str], list[str]]:
    return english_text.split_words


BUILDERS: dict[str, Callable[[str], Callable[[str], list[str]]]] = {
    "english": english_splitter,
    "spacy": spacy_splitter,
    "thai": thai_splitter,
    "korean": korean_splitter,
    "khmer": khmer_splitter,
    "lao": lao_splitter,
    "indic": indic_splitter,
}

_splitters: dict[TokenizerChoice, Callable[[str], list[str]]] = {}
_splitters_lock = threading.Lock()


def splitter(choice: TokenizerChoice) -> Callable[[str], list[str]]:
    """The word-splitting function of a tokenizer, built once per process."""
    with _splitters_lock:
        split = _splitters.get(choice)
        if split is None:
            split = _splitters[choice] = BUILDERS[choice.kind](choice.code)
    return split


def split_words(text: str, language: str | None) -> list[str]:
    """The words of ``text`` as the tokenizer of ``language`` splits them (see the module doc)."""
    return splitter(tokenizer_choice(language))(text)


# The Gopher and FineWeb stages split the same documents one after the other; bounded by
# characters, like curate.filters.text's cache.
WORDS_CACHE = english_text.CharBoundedCache(4_000_000)


def cached_words(text: str, language: str | None) -> tuple[str, ...]:
    """``split_words`` remembered for the next stage that asks for the same text and tokenizer."""
    choice = tokenizer_choice(language)
    return WORDS_CACHE.words((choice.name, text), text, splitter(choice))
