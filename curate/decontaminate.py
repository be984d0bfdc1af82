"""Decontamination: remove every document that shares an n-gram with protected text.

Protected text is what a model will later be evaluated on (benchmark tasks, the held-out sets
of ``curate ablate``). A document is removed when any ``ngram`` consecutive words of it
(13 by default, normalised exactly like the dedup shingles: NFKC, lower case, punctuation to
spaces) also occur in a protected document, or when its normalised URL is the URL of a
protected document. The reason is ``<stage>.<set>`` (``<stage>.<set>.url`` for a URL match),
``rejected_value`` the number of the document's n-grams found in that set, ``duplicate_of``
``<set>:<protected document number>``, and the first matching n-gram is kept in ``flags``
as ``<stage>.<set>.ngram=<the words>`` so that ``curate inspect`` and ``report.html`` show
what overlapped.

The index holds the 64-bit hash of every protected n-gram in one sorted array (16 bytes per
n-gram with its owner; 10 million n-grams are 160 MB), and every hash match is checked
against the protected words before a document is removed, so a hash collision can never
remove a document. A protected document shorter than ``ngram`` words is one n-gram of all its
words: only a document with exactly those words matches it (the dedup shingle rule).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from typing import Iterator, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.dedup import MinHasher, as_words, normalize_url
from curate.schema import replace_column, reject
from curate.stage import Stage, StageError

ProtectedKind = Literal["text", "jsonl", "parquet", "warc", "run"]


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
    match_urls: bool = True

    def validate(self) -> None:
        if not self.sets:
            raise ValueError("sets: expected at least one protected set")
        if self.ngram < 1:
            raise ValueError(f"ngram: expected a positive integer, got {self.ngram}")
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

    def ngram_words(self, document: int, start: int) -> list[str]:
        words = self.words[document].as_py() or []
        return words[start : start + self.ngram]


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

    def setup(self) -> None:
        self._index = ProtectedIndex.build(self.params.sets, self.params.ngram)
        if self._index.size == 0 and not self._index.urls:
            raise StageError(f"{self.name}: the protected sets {self._index.set_names} hold no text")
        self.counters["protected_ngrams"] = self._index.size

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
        """Check the hash matches of one document against the protected words; mark it if one holds."""
        index: ProtectedIndex = self._index
        doc_words = words[int(row)].as_py() or []
        for shingle in shingles:
            position = int(shingle - first[shingle])
            candidate = doc_words[position : position + index.ngram]
            slot = int(found[shingle])
            while slot < len(index.hashes) and index.hashes[slot] == hashes[shingle]:
                owner = int(index.owners[slot])
                if index.ngram_words(owner, int(index.starts[slot])) == candidate:
                    name = index.set_names[index.document_set[owner]]
                    reasons[row] = f"{self.name}.{name}"
                    values[row] = float(len(shingles))
                    owners[row] = f"{name}:{owner}"
                    notes[row] = f"{self.name}.{name}.ngram=" + " ".join(candidate)
                    return
                slot += 1
            self.counters["hash_collisions"] += 1


def _add_flags(batch: pa.RecordBatch, notes: list[str | None]) -> pa.RecordBatch:
    if not any(notes):
        return batch
    flags = batch.column("flags").to_pylist()
    for i, note in enumerate(notes):
        if note:
            flags[i] = list(flags[i] or []) + [note]
    return replace_column(batch, "flags", flags)
