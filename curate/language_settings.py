"""Per-language filter settings: FineWeb-2's thresholds and stop words per language-script pair.

A settings folder holds one ``<iso639-3>_<script>.yml`` per pair (``deu_Latn.yml``) with
FineWeb-2's keys: ``stopwords``, ``language_score``, ``min_avg_word_length``,
``max_avg_word_length``, ``max_non_alpha_words_ratio``, ``dup_line_frac``, ``top_n_grams``,
``dup_n_grams``, ``line_punct_thr``, ``new_line_ratio``. FineWeb-2's 1,929 files ship in
``curate/data/fineweb2/configs`` (Apache-2.0, provenance in ``curate/data/fineweb2/README.md``)
and are read with ``importlib.resources``, so they work from inside the zip a cluster gets;
a recipe can name another folder instead (a filesystem path).

A document's language comes from the ``langid`` stage: lid.176's code (``de``) is turned into
its pair (``deu_Latn``) with ``curate/data/fineweb2/lid176_languages.csv``; a pair (GlotLID's
labels, or ``langid``'s ``codes: iso639_3``) is used as it is. A language without a settings
file falls back to a named pair (``fallback``), or to the stage's own thresholds when none is
named; the caller counts it.
"""

from __future__ import annotations

import csv
import io
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

SHIPPED = "fineweb2"  # the name a recipe uses for the shipped folder
PAIR_PATTERN = re.compile(r"^[a-z]{2,3}_[A-Z][a-z]{3}$")


@dataclass(frozen=True)
class LanguageSettings:
    """One language-script pair's thresholds, in FineWeb-2's terms."""

    language: str
    stop_words: frozenset[str]
    language_score: float | None
    min_avg_word_length: float | None
    max_avg_word_length: float | None
    max_non_alpha_words_ratio: float | None  # datatrove's name; a minimum share of words with a letter
    dup_line_frac: float | None
    top_n_grams: dict[int, float]
    dup_n_grams: dict[int, float]
    line_punct_thr: float | None
    new_line_ratio: float | None


def settings_from_yaml(language: str, text: str) -> LanguageSettings:
    data = yaml.safe_load(text) or {}

    def number(key: str) -> float | None:
        value = data.get(key)
        return None if value is None else float(value)

    return LanguageSettings(
        language=language,
        stop_words=frozenset(str(w) for w in data.get("stopwords") or ()),
        language_score=number("language_score"),
        min_avg_word_length=number("min_avg_word_length"),
        max_avg_word_length=number("max_avg_word_length"),
        max_non_alpha_words_ratio=number("max_non_alpha_words_ratio"),
        dup_line_frac=number("dup_line_frac"),
        top_n_grams={int(n): float(f) for n, f in data.get("top_n_grams") or ()},
        dup_n_grams={int(n): float(f) for n, f in data.get("dup_n_grams") or ()},
        line_punct_thr=number("line_punct_thr"),
        new_line_ratio=number("new_line_ratio"),
    )


def language_script(code: str | None) -> str | None:
    """The ISO 639-3 + script pair of a language code: a pair as it is, lid.176's codes by the table."""
    if not code:
        return None
    if PAIR_PATTERN.match(code):
        return code
    return lid176_pairs().get(code)


@lru_cache(maxsize=1)
def lid176_pairs() -> dict[str, str]:
    """lid.176 label -> ISO 639-3 + script (``curate/data/fineweb2/lid176_languages.csv``)."""
    listing = resources.files("curate").joinpath("data/fineweb2/lid176_languages.csv").read_text(encoding="utf-8")
    return {row["lid176_label"]: row["language_script"] for row in csv.DictReader(io.StringIO(listing))}


class SettingsFolder:
    """The settings of every pair in one folder, each file read once when first asked for."""

    def __init__(self, folder: str = SHIPPED):
        self.folder = folder
        self._cache: dict[str, LanguageSettings | None] = {}
        self._lock = threading.Lock()

    def _read(self, language: str) -> str | None:
        name = f"{language}.yml"
        if self.folder == SHIPPED:
            entry = resources.files("curate").joinpath("data/fineweb2/configs").joinpath(name)
            return entry.read_text(encoding="utf-8") if entry.is_file() else None
        path = os.path.join(self.folder, name)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as fh:
            return fh.read()

    def get(self, language: str | None) -> LanguageSettings | None:
        """The settings of a pair or lid.176 code; None when the folder has no file for it."""
        pair = language_script(language)
        if pair is None or not PAIR_PATTERN.match(pair):
            return None
        with self._lock:
            if pair in self._cache:
                return self._cache[pair]
        text = self._read(pair)
        settings = None if text is None else settings_from_yaml(pair, text)
        with self._lock:
            self._cache[pair] = settings
        return settings

    def check(self) -> None:
        """Raise ValueError when the folder does not exist (a recipe names a wrong path)."""
        if self.folder != SHIPPED and not os.path.isdir(self.folder):
            raise ValueError(f"language settings folder {self.folder} does not exist")


@lru_cache(maxsize=8)
def settings_folder(folder: str = SHIPPED) -> SettingsFolder:
    """One shared reader per folder per process."""
    return SettingsFolder(folder)
