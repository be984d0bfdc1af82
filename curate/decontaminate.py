"""Decontamination: remove every document that shares enough of one protected document.

Protected text is what a model will later be evaluated on (benchmark tasks, the held-out sets
of ``curate ablate``). Evidence is an ``ngram`` of consecutive words (13 by default, normalised
exactly like the dedup shingles: NFKC, lower case, punctuation to spaces) that also occurs in a
protected document. One shared n-gram is not enough: boilerplate is shared too (a wire
service's footer, "All rights reserved. This material may not be published, broadcast,
rewritten or redistributed", is 15 words, three 13-grams, on millions of pages, and on any
protected news article). A document is removed when, for **one** protected document, the words
of the document covered by n-grams found in it number at least ``min_words`` (20), or at least
``min_share`` (0.5) of that protected document's words (a short protected text, a question of
16 words, counts when most of it is there). A planted 40-word window of a benchmark passage
covers 40 words; a footer or a licence line covers its own length and no more. And n-grams that
are boilerplate of the web never count: those found on several pages of a reference sample
(``common_ngrams``, shipped in ``curate/data``) leave the index. The figures that chose the
defaults are in ``docs/recipes.md`` (``bench/decontaminate.py``).

A document whose normalised URL is the URL of a protected document is removed too. The reason is
``<stage>.<set>`` (``<stage>.<set>.url`` for a URL match), ``rejected_value`` the covered words,
``duplicate_of`` ``<set>:<protected document number>``, and the first matching n-gram is kept
in ``flags`` as ``<stage>.<set>.ngram=<the words>`` so that ``curate inspect`` and
``report.html`` show what overlapped.

The index holds the 64-bit hash of every protected n-gram in one sorted array (16 bytes per
n-gram with its owner; 10 million n-grams are 160 MB), and every hash match is checked
against the protected words before it counts, so a hash collision can never remove a
document. A protected document shorter than ``ngram`` words is one n-gram of all its words:
only a document with exactly those words matches it (the dedup shingle rule), and it covers all
of that protected document.
"""

from __future__ import annotations

import gzip
import io
import os
from importlib import resources
from dataclasses import dataclass, field
from typing import Iterator, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.dedup import MinHasher, as_words, normalize_url
from curate.schema import replace_column, reject
from curate.stage import Stage, StageError

ProtectedKind = Literal["text", "jsonl", "parquet", "warc", "run"]
COMMON_NGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "common_ngrams_web.npz")


@dataclass
class ProtectedSet:
    """One body of protected text. ``text`` files are split into paragraphs at blank lines."""

    name: str
    paths: list[str]
    kind: ProtectedKind = "text"
    text_field: str = "text"
    url_field: str = "url"


@dataclass
class DecontaminateParams:
    sets: list[ProtectedSet] = field(default_factory=list)
    ngram: int = 13
    min_words: int = 20  # words of a document covered by one protected document's n-grams that remove it
    min_share: float = 0.5  # ... or this share of that protected document's words
    # protected n-grams found on at least min_docs pages of a reference sample of the web are boilerplate and
    # never count: "" = the shipped sample (COMMON_NGRAMS), "off" = none, else the path of a build_common_ngrams file
    common_ngrams: str = ""
    match_urls: bool = True

    def common_ngrams_path(self) -> str | None:
        if self.common_ngrams == "off":
            return None
        return self.common_ngrams or COMMON_NGRAMS

    def validate(self) -> None:
        if not self.sets:
            raise ValueError("sets: expected at least one protected set")
        if self.ngram < 1:
            raise ValueError(f"ngram: expected a positive integer, got {self.ngram}")
        if self.min_words < 1:
            raise ValueError(f"min_words: expected a positive integer, got {self.min_words}")
        if not 0 < self.min_share <= 1:
            raise ValueError(f"min_share: expected a share in (0, 1], got {self.min_share}")
        names = [s.name for s in self.sets]
        for name in names:
            if names.count(name) > 1 or not name or "." in name:
                raise ValueError(f"sets: set name {name!r} must be unique, non-empty and without dots")


def _text_paragraphs(path: str) -> Iterator[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        paragraph: list[str] = []
        for line in fh:
            if line.strip():
                paragraph.append(line.strip())
            elif paragraph:
                yield " ".join(paragraph)
                paragraph = []
        if paragraph:
            yield " ".join(paragraph)


def protected_documents(spec: ProtectedSet) -> Iterator[tuple[str, str | None]]:
    """(text, url) of every document of a protected set, in file order."""
    if spec.kind == "text":
        for path in spec.paths:
            for paragraph in _text_paragraphs(path):
                yield paragraph, None
        return
    from curate.recipe import SourceSpec
    from curate.sources import read_source, source_files

    source = SourceSpec(name=spec.name, kind=spec.kind, paths=spec.paths, text_field=spec.text_field, url_field=spec.url_field)
    stages = []
    if spec.kind == "warc":
        from curate.extract import ExtractParams, ExtractStage

        stages = [ExtractStage(ExtractParams(), name="extract")]
    from curate.stage import run_map_stages

    for path in source_files(source):
        for batch in read_source(source, path):
            if stages:
                batch, _ = run_map_stages(stages, batch)
            for text, url in zip(batch.column("text").to_pylist(), batch.column("url").to_pylist()):
                if text:
                    yield text, url


@dataclass
class ProtectedIndex:
    """Sorted n-gram hashes of all protected documents, with each n-gram's owner and position."""

    ngram: int
    set_names: list[str]
    hashes: np.ndarray  # uint64, sorted
    owners: np.ndarray  # int64: protected document number, aligned with hashes
    starts: np.ndarray  # int64: the n-gram's first word within its document
    document_set: np.ndarray  # int32: set number of each protected document
    words: pa.Array  # list<string>: each protected document's normalised words
    urls: dict[str, int]  # normalised URL -> protected document number
    word_lists: dict[int, list[str]] = field(default_factory=dict, repr=False)  # documents' words as Python lists, made on first use

    @classmethod
    def build(cls, sets: list[ProtectedSet], ngram: int) -> "ProtectedIndex":
        texts, urls, owners_set = [], {}, []
        for number, spec in enumerate(sets):
            for text, url in protected_documents(spec):
                key = normalize_url(url) if url else None
                if key:
                    urls.setdefault(key, len(texts))
                texts.append(text)
                owners_set.append(number)
        words = as_words(pa.array(texts, type=pa.large_string()))
        doc_index, hashes = MinHasher(ngram=ngram).word_hashes64(words)
        starts = np.arange(len(doc_index), dtype=np.int64) - _first_shingles(words, ngram)
        order = np.argsort(hashes, kind="stable")
        return cls(
            ngram,
            [s.name for s in sets],
            hashes[order],
            doc_index[order],
            starts[order],
            np.asarray(owners_set, dtype=np.int32),
            words,
            urls,
        )

    @property
    def size(self) -> int:
        return len(self.hashes)

    def document_words(self, document: int) -> list[str]:
        """A protected document's normalised words (each converted once and kept)."""
        if document not in self.word_lists:
            self.word_lists[document] = self.words[document].as_py() or []
        return self.word_lists[document]

    def ngram_words(self, document: int, start: int) -> list[str]:
        return self.document_words(document)[start : start + self.ngram]

    def length(self, document: int) -> int:
        """Words of a protected document."""
        return len(self.document_words(document))


def build_common_ngrams(texts: pa.Array, ngram: int, min_docs: int) -> np.ndarray:
    """Sorted 64-bit hashes of the ``ngram``-grams (the stage's normalisation and hash) found in at least
    ``min_docs`` of the texts: a reference sample's boilerplate (footers, menus, licence and cookie notices)."""
    doc_index, hashes = MinHasher(ngram=ngram).word_hashes64(as_words(texts))
    pairs = np.unique(np.stack([hashes, doc_index.astype(np.uint64)], axis=1), axis=0)  # each n-gram once per text
    distinct, pages = np.unique(pairs[:, 0], return_counts=True)
    return distinct[pages >= min_docs]


def save_common_ngrams(path: str, hashes: np.ndarray, ngram: int, min_docs: int, source: str) -> None:
    np.savez_compressed(path, hashes=np.sort(hashes.astype(np.uint64)), ngram=ngram, min_docs=min_docs, source=source)


def load_common_ngrams(path: str, ngram: int) -> np.ndarray:
    """The sorted hashes of a ``save_common_ngrams`` file; ValueError naming the file when it is unusable."""
    source: str | io.BytesIO = path
    if path == COMMON_NGRAMS and not os.path.exists(path):  # inside a --py-files zip the shipped file is no file
        source = io.BytesIO(resources.files("curate").joinpath("data", os.path.basename(path)).read_bytes())
    try:
        with np.load(source, allow_pickle=False) as archive:
            hashes, built_for = archive["hashes"], int(archive["ngram"])
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"common n-grams file {path}: cannot be read ({e})") from e
    if built_for != ngram:
        raise ValueError(f"common n-grams file {path} holds {built_for}-grams, the stage matches {ngram}-grams (set common_ngrams: off)")
    return hashes


def _first_shingles(words: pa.Array, ngram: int) -> np.ndarray:
    """For every shingle of the batch (in ``word_hashes64`` order), the number of its document's first one."""
    counts = pc.fill_null(pc.list_value_length(words), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    per_doc = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    return np.repeat(np.cumsum(per_doc) - per_doc, per_doc)


class DecontaminateStage(Stage):
    kind = "decontaminate"
    Params = DecontaminateParams

    def check(self) -> None:
        self.params.validate()
        from curate.recipe import SourceSpec
        from curate.sources import source_files

        for spec in self.params.sets:
            if spec.kind == "text":
                missing = [p for p in spec.paths if not os.path.isfile(p)]
            else:
                source = SourceSpec(name=spec.name, kind=spec.kind, paths=spec.paths)
                missing = [] if source_files(source) else spec.paths
            if missing or not spec.paths:
                raise StageError(f"{self.name}: protected set {spec.name!r}: no file matches {missing or spec.paths}")
        self._common_hashes()  # a missing or mismatched common n-grams file fails here, before any work

    def _common_hashes(self) -> np.ndarray:
        path = self.params.common_ngrams_path()
        if path is None:
            return np.zeros(0, dtype=np.uint64)
        try:
            return load_common_ngrams(path, self.params.ngram)
        except ValueError as e:
            raise StageError(f"{self.name}: {e}") from e

    def setup(self) -> None:
        index = self._index = ProtectedIndex.build(self.params.sets, self.params.ngram)
        if index.size == 0 and not index.urls:
            raise StageError(f"{self.name}: the protected sets {index.set_names} hold no text")
        common = self._common_hashes()
        if len(common) and index.size:
            # boilerplate of the web is no evidence: its n-grams leave the index (hashes are sorted, so is the rest)
            at = np.minimum(np.searchsorted(common, index.hashes), len(common) - 1)
            keep = common[at] != index.hashes
            index.hashes, index.owners, index.starts = index.hashes[keep], index.owners[keep], index.starts[keep]
            self.counters["protected_ngrams_common"] = int((~keep).sum())
        self.counters["protected_ngrams"] = index.size

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        index: ProtectedIndex = self._index
        words = as_words(batch.column("text"))
        doc_index, hashes = MinHasher(ngram=index.ngram).word_hashes64(words)
        first = _first_shingles(words, index.ngram)
        found = np.searchsorted(index.hashes, hashes)
        found[found == len(index.hashes)] = 0
        hit = (index.hashes[found] == hashes) if len(index.hashes) else np.zeros(len(hashes), dtype=bool)
        reasons: list[str | None] = [None] * batch.num_rows
        values: list[float | None] = [None] * batch.num_rows
        owners: list[str | None] = [None] * batch.num_rows
        notes: list[str | None] = [None] * batch.num_rows
        hits = np.flatnonzero(hit)
        # shingles come grouped by document: one group of hits per matched document
        for group in np.split(hits, np.flatnonzero(np.diff(doc_index[hits])) + 1) if len(hits) else []:
            row = int(doc_index[group[0]])
            self._match_ngrams(row, group, hashes, found, first, words, reasons, values, owners, notes)
        if index.urls and self.params.match_urls:
            for row, url in enumerate(batch.column("url").to_pylist()):
                key = normalize_url(url) if url and reasons[row] is None else None
                if key in index.urls:
                    owner = index.urls[key]
                    name = index.set_names[index.document_set[owner]]
                    reasons[row], values[row], owners[row] = f"{self.name}.{name}.url", 1.0, f"{name}:{owner}"
        mask = np.array([r is not None for r in reasons], dtype=bool)
        self.counters["documents_matched"] += int(mask.sum())
        batch = _add_flags(batch, notes)
        return reject(batch, mask, reasons, values, owners)

    def _match_ngrams(self, row, shingles, hashes, found, first, words, reasons, values, owners, notes) -> None:
        """Check the hash matches of one document against the protected words; mark it if it shares enough of
        one protected document (see the module docstring)."""
        index: ProtectedIndex = self._index
        doc_words = words[int(row)].as_py() or []
        covered: dict[int, set[int]] = {}  # protected document -> positions of the document's words its n-grams cover
        first_ngram: dict[int, list[str]] = {}
        for shingle in shingles:
            position = int(shingle - first[shingle])
            candidate = doc_words[position : position + index.ngram]
            slot = int(found[shingle])
            matched = False
            while slot < len(index.hashes) and index.hashes[slot] == hashes[shingle]:
                owner = int(index.owners[slot])
                if index.ngram_words(owner, int(index.starts[slot])) == candidate:
                    matched = True
                    covered.setdefault(owner, set()).update(range(position, position + len(candidate)))
                    first_ngram.setdefault(owner, candidate)
                slot += 1
            if not matched:
                self.counters["hash_collisions"] += 1
        if not covered:
            return
        owner = max(covered, key=lambda o: (len(covered[o]), -o))  # the protected document it shares most of
        shared = len(covered[owner])
        if shared < self.params.min_words and shared < self.params.min_share * index.length(owner):
            self.counters["documents_below_threshold"] += 1  # n-grams shared, too few words of one document
            return
        name = index.set_names[index.document_set[owner]]
        reasons[row] = f"{self.name}.{name}"
        values[row] = float(shared)
        owners[row] = f"{name}:{owner}"
        notes[row] = f"{self.name}.{name}.ngram=" + " ".join(first_ngram[owner])


def _add_flags(batch: pa.RecordBatch, notes: list[str | None]) -> pa.RecordBatch:
    if not any(notes):
        return batch
    flags = batch.column("flags").to_pylist()
    for i, note in enumerate(notes):
        if note:
            flags[i] = list(flags[i] or []) + [note]
    return replace_column(batch, "flags", flags)
