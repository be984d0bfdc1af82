"""Deduplication: exact text, normalised URL and MinHash-LSH near-duplicates.

This module is Spark-free. It holds everything that decides *what* a duplicate is:

* :func:`normalize_texts` / :func:`document_words`: the text normalisation every rule uses
  (NFKC, lower case, punctuation to spaces, whitespace collapsed);
* :func:`exact_keys`: a 128-bit hash of the normalised text (exact rule);
* :func:`shingle_words`: the words of MinHash's shingles, the normalised text's or, with
  ``minhash.words: by_language``, each document's language's tokenizer's (:mod:`curate.words`);
* :func:`normalize_url`: the URL key (url rule);
* :class:`MinHasher`: word n-gram shingles and MinHash signatures computed for a whole batch
  of documents at once with NumPy. The signatures are identical, value for value, to
  ``datasketch.MinHash(num_perm, seed, scheme=...)`` updated with the same shingles
  (:func:`shingle_lists` gives them as bytes);
* :func:`optimal_bands`: bands x rows for a threshold, minimising the same weighted sum of
  false-positive and false-negative probability mass that ``datasketch.MinHashLSH`` does;
* :class:`DedupStage`: the recipe stage ``dedup``. ``run_local`` does the whole job in one
  process (tests, small corpora); :mod:`curate.spark.dedup` does it on Spark with the same
  helpers and the same decisions.

Which copy survives, union-find and groups -> rejections: :mod:`curate.dedup_engine` (shared
with the Spark paths). Dedup across runs (``index``): :mod:`curate.dedup_index`.

Rules run in order exact, url, minhash; each sees only the documents the previous one kept.
In a group of duplicates one document is kept, chosen by ``keep`` (ties broken by the
smallest id, so the choice never depends on input order or partitioning); the others are
rejected with ``rejected_by = "<stage>.<rule>"``, ``duplicate_of`` = the kept id and
``rejected_value`` = the size of the group (exact/url group, or MinHash cluster).

Edge cases (documented in docs/dedup.md and tested):

* a document whose normalised text has no words (empty, only punctuation) has no exact key
  and no shingles: it is never a duplicate of anything;
* a document with fewer words than ``ngram`` is one shingle (all its words), so it can only
  be a near-duplicate of a document with exactly the same words;
* a document without a URL (null or empty) is never a URL duplicate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from curate.dedup_engine import SURVIVOR_ORDER, URL_KEEP, components, groups_to_rejections, minhash_links, survivor_rank
from curate.dedup_index import (
    BUCKET_SCHEMA,
    EXACT_SCHEMA,
    SUPERSEDED_SCHEMA,
    URL_SCHEMA,
    IndexSession,
    index_settings,
    match_earlier,
    read_earlier,
)
from curate.rehydrate import cluster_size_key, copies_table, set_cluster_sizes
from curate.schema import DOCUMENT_SCHEMA, conform, reject, scores_of
from curate.stage import GlobalStage

KeepPolicy = Literal["first_id", "longest", "newest", "oldest", "highest_score"]
IndexKeep = Literal["oldest", "newest"]
Scheme = Literal["affine32", "legacy"]
ShingleHash = Literal["sha1", "words"]
ShingleWords = Literal["whitespace", "by_language"]

MAX_HASH32 = np.uint32(0xFFFFFFFF)
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
# Rows of the (shingles x permutations) uint64 matrix of the legacy scheme computed at once,
# so that the block stays in the CPU cache between the multiply, the modulo and the minimum.
_CHUNK_SHINGLES = 1024
_WORDS_PER_PASS = 2_000_000

# Characters that are neither letters, marks, digits nor whitespace become spaces, so that
# "Hello, world!" and "hello world" normalise to the same words.
_PUNCTUATION = r"[^\pL\pM\pN\s]+"


# --- parameters ------------------------------------------------------------------------------


@dataclass
class MinHashParams:
    """Near-duplicate detection. ``bands`` x ``rows`` override the ones derived from ``threshold``.

    The defaults give FineWeb's layout: threshold 0.65 with 112 permutations derives 14 bands
    x 8 rows (a pair at 5-gram Jaccard 0.75 is a candidate with probability 0.77, at 0.8
    with 0.92). Before issue #22 they were 0.8 and 128 (9 x 13: 0.40 at 0.8), which let a
    quarter of lightly edited copies through; docs/dedup.md has the measurements.
    """

    ngram: int = 5
    num_perm: int = 112
    threshold: float = 0.65
    bands: int | None = None
    rows: int | None = None
    seed: int = 1
    # "affine32" is datasketch >= 2.0's default permutation scheme; "legacy" reproduces
    # datasketch < 2.0 ((a*h + b) mod (2^61 - 1), truncated to 32 bits).
    scheme: Scheme = "affine32"
    # How a shingle becomes a 32-bit hash before the permutations. "sha1": datasketch's default
    # (sha1_hash32 of the shingle's UTF-8 bytes). "words": word_shingle_hash32, which hashes
    # each distinct word of a batch once and combines word hashes with NumPy: several times
    # faster, and equal to datasketch with hashfunc=curate.dedup.word_shingle_hash32.
    shingle_hash: ShingleHash = "sha1"
    # Link two candidates only if their signatures agree on >= threshold of the permutations.
    verify: bool = False
    # What a shingle's words are: "whitespace" (the normalised text split on whitespace), or
    # "by_language": each document's words as its language's tokenizer splits them
    # (curate.words, FineWeb-2's choice), then normalised the same way. Chinese, Japanese or
    # Thai have few or no spaces: whitespace shingles there are whole phrases or the whole text.
    words: ShingleWords = "whitespace"

    # Not named ``validate``: the recipe loader would call it inside the ``MinHashParams | None``
    # union and report only "expected a mapping"; DedupParams.validate calls it instead, so
    # the message names the offending keys.
    def check(self) -> None:
        if self.ngram < 1:
            raise ValueError(f"minhash.ngram: expected a positive integer, got {self.ngram}")
        if self.num_perm < 2:
            raise ValueError(f"minhash.num_perm: expected at least 2, got {self.num_perm}")
        if self.words not in ("whitespace", "by_language"):
            raise ValueError(f"minhash.words: expected whitespace or by_language, got {self.words!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"minhash.threshold: expected a number in (0, 1], got {self.threshold}")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("minhash.bands and minhash.rows: give both or neither")
        if self.bands is not None and self.rows is not None:
            if self.bands < 1 or self.rows < 1:
                raise ValueError(f"minhash.bands x rows: expected positive integers, got {self.bands} x {self.rows}")
            if self.bands * self.rows > self.num_perm:
                raise ValueError(
                    f"minhash.bands x rows = {self.bands} x {self.rows} = {self.bands * self.rows} exceeds num_perm = {self.num_perm}"
                )

    def band_layout(self) -> tuple[int, int]:
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        return optimal_bands(self.threshold, self.num_perm)


@dataclass
class DedupParams:
    exact: bool = True
    url: bool = True
    minhash: MinHashParams | None = field(default_factory=MinHashParams)
    # Which document of a duplicate group survives (exact and minhash groups; URL groups
    # always keep the newest copy). Ties go to the smallest id.
    keep: KeepPolicy = "first_id"
    score_key: str = "classify.quality"
    # Folder of the cross-run index (docs/dedup.md, "Across runs"); None = this run only.
    index: str | None = None
    # Across runs, which copy survives: the earlier run's (oldest) or this run's (newest).
    # Not ``keep``: that one chooses within a run, among five policies.
    index_keep: IndexKeep = "oldest"
    # Up-sampling by cluster size (curate/rehydrate.py): ``fineweb2`` or a step table
    # ``{smallest cluster size: copies}``; None writes every survivor once.
    rehydrate: str | dict[int, int] | None = None

    def validate(self) -> None:
        if self.minhash is not None:
            self.minhash.check()
        if self.rehydrate is not None:
            if self.minhash is None:
                raise ValueError("rehydrate: needs minhash (it repeats survivors by MinHash cluster size)")
            copies_table(self.rehydrate)
        if self.index is not None and not self.index.strip():
            raise ValueError("dedup.index: expected a folder path, got an empty string")
        if not (self.exact or self.url or self.minhash is not None):
            raise ValueError("dedup: every rule is off (exact: false, url: false, minhash: null)")


# --- normalisation ---------------------------------------------------------------------------


_SPACE = pa.scalar(" ", pa.large_string())


def document_words(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The normalised words of each document (a list array, one list per document).

    Normalisation: NFKC, lower case, punctuation to spaces, split on whitespace.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if texts.type != pa.large_string():
        texts = texts.cast(pa.large_string())
    texts = pc.fill_null(texts, "")
    # ASCII text is already in NFKC: normalise only the other rows (most of a web crawl is ASCII).
    not_ascii = pc.invert(pc.string_is_ascii(texts))
    if pc.any(not_ascii).as_py():
        texts = pc.replace_with_mask(texts, not_ascii, pc.utf8_normalize(texts.filter(not_ascii), form="NFKC"))
    texts = pc.utf8_lower(texts)
    texts = pc.replace_substring_regex(texts, pattern=_PUNCTUATION, replacement=" ")
    # Arrow's split yields an empty word for leading/trailing whitespace (and for a blank text):
    # trim, and make blank texts null so that they have no words at all.
    texts = pc.utf8_trim_whitespace(texts)
    texts = pc.if_else(pc.equal(texts, ""), pa.scalar(None, pa.large_string()), texts)
    return pc.utf8_split_whitespace(texts)


def shingle_words(batch: pa.RecordBatch | pa.Table, words: ShingleWords, normalized: pa.Array | None = None) -> pa.Array:
    """The normalised words MinHash makes its shingles of, one list per document of ``batch``.

    ``whitespace``: :func:`document_words` of the text (``normalized`` when the caller has it).
    ``by_language``: the text split by the tokenizer of the document's ``language``
    (:func:`curate.words.cached_words`: the one the filters used, and their cache), each token
    then normalised as :func:`document_words` normalises a text (a token may become several
    words, or none: punctuation).
    """
    if words == "whitespace":
        return normalized if normalized is not None else document_words(batch.column("text"))
    from curate.words import cached_words  # loads a tokenizer only for a language present

    texts = batch.column("text").to_pylist()
    languages = batch.column("language").to_pylist()
    joined = [" ".join(cached_words(t, language)) if t else None for t, language in zip(texts, languages)]
    return document_words(pa.array(joined, pa.large_string()))


def normalize_texts(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The normalised words of each text joined by single spaces."""
    return pc.fill_null(pc.binary_join(document_words(texts), _SPACE), "")


def normalize_text(text: str | None) -> str:
    """The normalised form of one text (same code path as the batch version)."""
    return normalize_texts(pa.array([text], type=pa.large_string()))[0].as_py()


def as_words(texts_or_words: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``document_words`` of texts; word lists (already normalised) pass through unchanged.

    Every function below takes either, so a caller that needs several of them normalises
    each batch once.
    """
    if pa.types.is_list(texts_or_words.type) or pa.types.is_large_list(texts_or_words.type):
        return texts_or_words.combine_chunks() if isinstance(texts_or_words, pa.ChunkedArray) else texts_or_words
    return document_words(texts_or_words)


def exact_keys(texts: pa.Array | pa.ChunkedArray) -> list[bytes | None]:
    """A 128-bit hash of each normalised text (texts or word lists); None for no words."""
    normalized = pc.fill_null(pc.binary_join(as_words(texts), _SPACE), "")
    return [xxhash.xxh3_128_digest(t.encode("utf-8")) if t else None for t in normalized.to_pylist()]


# Query parameters that identify a visit, a campaign or a click, never the content.
_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gclsrc",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "ref_url",
        "spm",
        "scid",
        "si",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wickedid",
        "s_cid",
        "cmpid",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")


def normalize_url(url: str | None) -> str | None:
    """A key equal for URLs that name the same page, or None for a missing/unparsable URL.

    Scheme is ignored (http and https copies are one page), the host is lower-cased without
    ``www.`` and default port, the fragment and tracking parameters (``utm_*``, ``fbclid``,
    ``gclid``, ...) are dropped, the other parameters are sorted, and a trailing slash is
    removed from the path.
    """
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    if host.startswith("www."):
        host = host[4:]
    if port is not None and not (port == 80 or port == 443):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    key = host + path
    if query:
        key += "?" + urlencode(sorted(query))
    return key


# --- LSH band layout -------------------------------------------------------------------------


def _integrate(func, lower: float, upper: float, nodes: np.ndarray, weights: np.ndarray) -> float:
    # Gauss-Legendre with n nodes is exact for polynomials up to degree 2n-1; the integrands
    # below are polynomials of degree bands*rows <= num_perm, so n = num_perm suffices.
    half = (upper - lower) / 2.0
    mid = (upper + lower) / 2.0
    return float(half * np.sum(weights * func(mid + half * nodes)))


def optimal_bands(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive + false negative probability mass.

    The same objective and search order as ``datasketch.MinHashLSH`` (which integrates with
    SciPy's adaptive quadrature; the integrands are polynomials, integrated exactly here).
    """
    nodes, weights = np.polynomial.legendre.leggauss(max(num_perm, 2))
    best, best_error = (0, 0), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):

            def collide(s, b=bands, r=rows):
                return 1.0 - (1.0 - s ** float(r)) ** float(b)

            fp = _integrate(collide, 0.0, threshold, nodes, weights)
            fn = _integrate(lambda s: 1.0 - collide(s), threshold, 1.0, nodes, weights)
            error = fp * false_positive_weight + fn * false_negative_weight
            if error < best_error:
                best_error, best = error, (bands, rows)
    return best


# --- MinHash ---------------------------------------------------------------------------------


def _fmix32(values: np.ndarray) -> np.ndarray:
    # MurmurHash3's finaliser, as datasketch applies it before the affine32 permutations.
    h = values.astype(np.uint32, copy=True)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _fmix64(values: np.ndarray) -> np.ndarray:
    h = values.astype(np.uint64, copy=True)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def sha1_hash32_batch(values: Sequence[bytes]) -> np.ndarray:
    """datasketch's ``sha1_hash32`` (first 4 bytes of SHA-1, little endian) for many values."""
    if not values:
        return np.zeros(0, dtype=np.uint32)
    offsets, data = _large_buffers(pa.array(values, type=pa.large_binary()))
    return _kernels().sha1_hash32_values(data, offsets)


def _kernels():
    # Imported on first use: numba costs about half a second to import, and most processes
    # that import this module (the recipe checker, the driver) never compute a signature.
    from curate.speedups import minhash_kernels

    return minhash_kernels


def _large_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a large_string/large_binary array as NumPy views, slice-aware."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets, data


class MinHasher:
    """Shingles and MinHash signatures for batches of documents.

    The expensive parts are done once per batch rather than once per document: words are
    normalised with Arrow kernels, then one compiled pass (``curate.speedups.minhash_kernels``)
    hashes every shingle with SHA-1 straight from the word buffer, and another folds the
    permuted hashes into the per-document minima.
    """

    def __init__(self, num_perm: int = 128, seed: int = 1, ngram: int = 5, scheme: Scheme = "affine32", shingle_hash: ShingleHash = "sha1"):
        if scheme not in ("affine32", "legacy"):
            raise ValueError(f"unknown MinHash scheme {scheme!r}; expected 'affine32' or 'legacy'")
        if shingle_hash not in ("sha1", "words"):
            raise ValueError(f"unknown shingle hash {shingle_hash!r}; expected 'sha1' or 'words'")
        self.num_perm, self.seed, self.ngram, self.scheme = num_perm, seed, ngram, scheme
        self.shingle_hash = shingle_hash
        gen = np.random.RandomState(seed)
        if scheme == "legacy":
            # The same draws, in the same order, as datasketch's legacy permutations.
            pairs = [
                (gen.randint(1, _MERSENNE_PRIME, dtype=np.uint64), gen.randint(0, _MERSENNE_PRIME, dtype=np.uint64))
                for _ in range(num_perm)
            ]
            self.a, self.b = np.array(pairs, dtype=np.uint64).T.copy()
        else:
            self.a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
            self.b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)

    @classmethod
    def from_params(cls, params: MinHashParams) -> "MinHasher":
        return cls(params.num_perm, params.seed, params.ngram, params.scheme, params.shingle_hash)

    # -- shingles ---------------------------------------------------------------------------
    def shingle_positions(self, texts: pa.Array | pa.ChunkedArray):
        """Where each shingle starts and ends in the flattened word array of the batch."""
        words = as_words(texts)
        n = self.ngram
        counts = pc.fill_null(pc.list_value_length(words), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        all_offsets = np.asarray(words.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        # .values ignores a slice of the list array: cut out this array's words and rebase.
        flat = words.values.slice(all_offsets[0], all_offsets[-1] - all_offsets[0])
        offsets = all_offsets[:-1] - all_offsets[0]
        per_doc = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
        total = int(per_doc.sum())
        doc_index = np.repeat(np.arange(len(counts), dtype=np.int64), per_doc)
        first = np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
        start = offsets[doc_index] + (np.arange(total, dtype=np.int64) - first)
        end = offsets[doc_index] + counts[doc_index]  # one past the document's last word
        return doc_index, start, end, flat

    def shingles(self, texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
        """All shingles of all documents: (document index per shingle, shingle strings).

        A shingle is ``ngram`` consecutive normalised words joined by one space. A document
        with 1..ngram-1 words has one shingle (its words); one with no words has none.
        Shingles come out grouped by document, in document order.
        """
        doc_index, start, end, flat = self.shingle_positions(texts)
        if len(doc_index) == 0:
            return doc_index, pa.array([], type=pa.large_string())
        parts = []
        for k in range(self.ngram):
            position = start + k
            # Past the end of a short document: null, which the join below skips.
            parts.append(flat.take(pa.array(position, mask=position >= end)))
        joined = parts[0] if self.ngram == 1 else pc.binary_join_element_wise(*parts, _SPACE, null_handling="skip")
        return doc_index, joined

    def shingle_lists(self, texts: Sequence[str | None]) -> list[list[bytes]]:
        """Each document's distinct shingles as UTF-8 bytes: what to feed ``datasketch.MinHash``."""
        doc_index, joined = self.shingles(pa.array(list(texts), type=pa.large_string()))
        out: list[set[bytes]] = [set() for _ in texts]
        for d, s in zip(doc_index.tolist(), joined.to_pylist()):
            out[d].add(s.encode("utf-8"))
        return [sorted(s) for s in out]

    # -- signatures -------------------------------------------------------------------------
    def shingle_hashes(self, shingles: pa.Array) -> np.ndarray:
        """sha1_hash32 of each shingle string."""
        if len(shingles) == 0:
            return np.zeros(0, dtype=np.uint32)
        offsets, data = _large_buffers(shingles.cast(pa.large_binary()))
        return _kernels().sha1_hash32_values(data, offsets)

    def sha1_hashes(self, texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """(document index, sha1_hash32) per shingle, hashed without building shingle strings."""
        doc_index, start, end, flat = self.shingle_positions(texts)
        if len(doc_index) == 0:
            return doc_index, np.zeros(0, dtype=np.uint32)
        offsets, data = _large_buffers(flat.cast(pa.large_string()))
        return doc_index, _kernels().shingle_sha1_hash32(data, offsets, start, end, self.ngram)

    def permute_min(self, doc_index: np.ndarray, hashes: np.ndarray, n_docs: int) -> np.ndarray:
        """Per-document minimum over shingles of each permuted hash: (n_docs, num_perm) uint32.

        ``doc_index`` must be non-decreasing. Documents without shingles keep the empty
        signature (all 0xFFFFFFFF), as an empty datasketch MinHash does.
        """
        signatures = np.full((n_docs, self.num_perm), MAX_HASH32, dtype=np.uint32)
        if len(hashes) == 0:
            return signatures
        if self.scheme == "affine32":
            mixed = _fmix32(hashes)
        else:
            mixed = hashes.astype(np.uint64)
        if self.scheme == "affine32":
            _kernels().affine32_minima(doc_index, mixed, self.a, self.b, signatures)
            return signatures
        a, b = self.a, self.b
        for lo in range(0, len(hashes), _CHUNK_SHINGLES):
            hi = min(lo + _CHUNK_SHINGLES, len(hashes))
            with np.errstate(over="ignore"):
                wide = mixed[lo:hi, None] * a + b  # wraps mod 2^64, as datasketch's uint64 code does
            wide %= _MERSENNE_PRIME
            permuted = (wide & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            docs = doc_index[lo:hi]
            starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
            partial = np.minimum.reduceat(permuted, starts, axis=0)
            owners = docs[starts]
            signatures[owners] = np.minimum(signatures[owners], partial)
        return signatures

    def word_hashes(self, texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """(document index, word_shingle_hash32) per shingle, without building shingle strings."""
        doc_index, wide = self.word_hashes64(texts)
        return doc_index, (wide >> np.uint64(32)).astype(np.uint32)

    def word_hashes64(self, texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """(document index, 64-bit hash of the shingle's words) per shingle, in shingle order.

        ``word_hashes`` keeps the upper 32 bits; decontamination keeps all 64, since it looks
        millions of protected n-grams up by hash alone before checking the words.
        """
        doc_index, start, end, flat = self.shingle_positions(texts)
        if len(doc_index) == 0:
            return doc_index, np.zeros(0, dtype=np.uint64)
        encoded = flat.dictionary_encode()
        distinct = encoded.dictionary.cast(pa.large_binary()).to_pylist()
        per_word = np.fromiter((xxhash.xxh3_64_intdigest(w) for w in distinct), dtype=np.uint64, count=len(distinct))
        word_hash = per_word[encoded.indices.to_numpy(zero_copy_only=False)]
        h = np.full(len(doc_index), _WORD_HASH_START, dtype=np.uint64)
        last = len(word_hash) - 1
        for k in range(self.ngram):
            position = start + k
            mixed = _fmix64(h ^ word_hash[np.minimum(position, last)])
            # Positions past a short document's end leave the hash as it was.
            h = np.where(position < end, mixed, h)
        return doc_index, h

    def signatures(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """MinHash signatures of a batch of texts (or word lists): (len, num_perm) uint32."""
        words = as_words(texts)
        counts = pc.fill_null(pc.list_value_length(words), 0).to_numpy(zero_copy_only=False)
        if counts.sum() <= _WORDS_PER_PASS:
            return self._signatures(words)
        # Bound the per-shingle arrays (about 40 bytes per word) on huge batches: slices of
        # whole documents with at most _WORDS_PER_PASS words (or one larger document).
        ends = np.cumsum(counts)
        out, start = [], 0
        while start < len(words):
            base = ends[start - 1] if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, base + _WORDS_PER_PASS, side="right")))
            out.append(self._signatures(words.slice(start, stop - start)))
            start = stop
        return np.vstack(out)

    def _signatures(self, texts: pa.Array) -> np.ndarray:
        if self.shingle_hash == "words":
            doc_index, hashes = self.word_hashes(texts)
        else:
            doc_index, hashes = self.sha1_hashes(texts)
        return self.permute_min(doc_index, hashes, len(texts))


_WORD_HASH_START = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


def word_shingle_hash32(shingle: bytes) -> int:
    """The "words" shingle hash of one shingle (space-separated normalised words, UTF-8).

    Pass it as ``datasketch.MinHash(hashfunc=word_shingle_hash32)`` to reproduce signatures
    computed with ``shingle_hash: words``.
    """
    h = int(_WORD_HASH_START)
    for word in shingle.split(b" "):
        h = _fmix64_int(h ^ xxhash.xxh3_64_intdigest(word))
    return h >> 32


def has_shingles(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where a document has at least one word after normalisation."""
    return pc.fill_null(pc.list_value_length(as_words(texts)), 0).to_numpy(zero_copy_only=False) > 0


def band_buckets(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit bucket key per (document, band): (n_docs, bands) int64.

    Two documents share a bucket in band i when their signatures agree on all ``rows`` values
    of that band (up to 64-bit hash collisions, about n^2 / 2^65 over a whole corpus).
    """
    n = signatures.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            block = signatures[:, band * rows : (band + 1) * rows].astype(np.uint64)
            h = np.full(n, np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(band), dtype=np.uint64)
            for col in range(rows):
                h = _fmix64(h ^ block[:, col]) + np.uint64(col + 1)
            keys[:, band] = h
    return keys.view(np.int64)


# --- choosing the survivor -------------------------------------------------------------------


def keep_order(table: pa.Table, keep: KeepPolicy, score_key: str) -> np.ndarray:
    """Rank of each row in "who survives" order (0 = keep first); ties by smallest id."""
    return survivor_rank(table.column("id").to_pylist(), keep, survivor_columns(table, keep, score_key))


def survivor_columns(table: pa.Table | pa.RecordBatch, keep: KeepPolicy, score_key: str) -> dict[str, list]:
    """The columns :data:`curate.dedup_engine.SURVIVOR_ORDER` names for ``keep``, from documents."""
    columns: dict[str, list] = {}
    for name, _ in SURVIVOR_ORDER.get(keep, ()):
        if name == "n_chars":
            columns[name] = pc.utf8_length(pc.fill_null(table.column("text"), "")).to_pylist()
        elif name == "warc_date":
            columns[name] = table.column("warc_date").to_pylist()
        elif name == "score":
            columns[name] = scores_of(table, score_key)
    return columns


def _entry_table(schema: pa.Schema, keys: list, ids: list, snapshot: int, dates: list) -> pa.Table:
    return pa.table(
        [
            pa.array(keys, schema.field(0).type),
            pa.array(ids, pa.string()),
            pa.array([snapshot] * len(ids), pa.int32()),
            pa.array(dates, pa.string()),
        ],
        schema=schema,
    )


# --- the stage -------------------------------------------------------------------------------


class DedupStage(GlobalStage):
    """Exact, URL and MinHash-LSH deduplication over all live documents of a run."""

    kind = "dedup"
    Params = DedupParams

    def __init__(self, params: DedupParams | None = None, context=None, name: str | None = None):
        super().__init__(params if params is not None else DedupParams(), context, name)
        self.index_session: IndexSession | None = None
        self.last_superseded: list[tuple[str, int, str, str]] = []

    def band_layout(self) -> tuple[int, int] | None:
        mh = self.params.minhash
        return None if mh is None else mh.band_layout()

    def check(self) -> None:
        # Nothing to load; fail early on parameters that passed the loader but make no sense.
        self.params.validate()

    def warm_up(self) -> None:
        # numba's import and the first call of the cached MinHash kernels: ~0.8 s of a
        # worker's first key task otherwise.
        if self.params.minhash is not None:
            MinHasher.from_params(self.params.minhash).signatures(pa.array(["warm up the minhash kernels"]))

    def open_index(self, holder: str) -> None:
        """Lock the cross-run index (``index``) for this run; a no-op without one."""
        if self.params.index and self.index_session is None:
            settings = index_settings(self.params)
            self.index_session = IndexSession(self.params.index, settings, holder, self.context.storage_options).open()

    def commit_index(self) -> int | None:
        """Publish the survivors staged by this run (call once the run's outputs are written)."""
        session, self.index_session = self.index_session, None
        return session.commit() if session is not None else None

    def close_index(self) -> None:
        """Drop what this run staged and release the index (a failed run)."""
        session, self.index_session = self.index_session, None
        if session is not None:
            session.close()

    def run_local(self, table: pa.Table) -> pa.Table:
        """All live documents in, the same documents in the same order out, duplicates marked.

        With ``index``, a call is a whole run: it locks the index (unless :meth:`open_index`
        was called), dedups against it, and commits its survivors before returning.
        """
        started = time.perf_counter()
        owns_index = bool(self.params.index) and self.index_session is None
        self.open_index(f"DedupStage.run_local ({self.name})")
        try:
            result = self._run_local(table)
            if owns_index:
                self.commit_index()
        except BaseException:
            if owns_index:
                self.close_index()
            raise
        self.counters["seconds"] += time.perf_counter() - started
        return result

    def _run_local(self, table: pa.Table) -> pa.Table:
        batch = conform(table)
        ids = batch.column("id").to_pylist()
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            repeated = next(i for i in ids if i in seen or seen.add(i))
            raise ValueError(f"{self.name}: document id {repeated!r} occurs more than once")
        # Work in id order: every tie-break ("smallest id") is then "first row".
        by_id = np.argsort(np.array(ids, dtype=object), kind="stable")
        batch = batch.take(pa.array(by_id))
        table = pa.Table.from_batches([batch], schema=DOCUMENT_SCHEMA)
        p = self.params
        n = batch.num_rows
        live = np.ones(n, dtype=bool)
        rank = keep_order(table, p.keep, p.score_key)
        ids = batch.column("id").to_pylist()
        words = document_words(batch.column("text"))  # normalised once for both text rules
        shingled = shingle_words(batch, p.minhash.words, words) if p.minhash is not None else words
        self.last_clusters: list[tuple[str, str, int, bool]] = []
        exact = exact_keys(words) if p.exact else None
        urls = [normalize_url(u) for u in batch.column("url").to_pylist()] if p.url else None
        signatures = earlier = None
        if self.index_session is not None:
            signatures = self._all_signatures(shingled)
            earlier = read_earlier(self.index_session.path, p.minhash.band_layout()[0] if p.minhash else 0)
            if p.index_keep == "oldest":
                batch, live = self._reject_earlier(batch, live, earlier, exact, urls, signatures, ids)
        if p.exact:
            batch, live = self._apply_groups(batch, exact, rank, live, "exact", ids)
        if p.url:
            url_rank = keep_order(table, URL_KEEP, p.score_key)
            batch, live = self._apply_groups(batch, urls, url_rank, live, "url", ids)
        if p.minhash is not None:
            batch = self._minhash_local(batch, shingled, rank, live, ids, signatures)
        if self.index_session is not None:
            survivors = np.flatnonzero(pc.is_null(batch.column("rejected_by")).to_numpy(zero_copy_only=False))
            self._stage_survivors(batch, survivors, earlier, exact, urls, signatures, ids)
        restore = np.empty_like(by_id)
        restore[by_id] = np.arange(len(by_id))
        return pa.Table.from_batches([batch.take(pa.array(restore))], schema=DOCUMENT_SCHEMA)

    def _all_signatures(self, words: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows with shingles, their MinHash signatures), or None without MinHash."""
        if self.params.minhash is None:
            return None
        rows = np.flatnonzero(has_shingles(words))
        return rows, MinHasher.from_params(self.params.minhash).signatures(words.take(pa.array(rows)))

    def _bucket_map(self, signatures, rows: np.ndarray) -> dict[int, dict[int, int]] | None:
        """band -> {row: bucket} for the given rows that have shingles."""
        if signatures is None:
            return None
        hashed, sigs = signatures
        wanted = np.isin(hashed, rows)
        buckets = band_buckets(sigs[wanted], *self.params.minhash.band_layout())
        members = hashed[wanted].tolist()
        return {band: dict(zip(members, buckets[:, band].tolist())) for band in range(buckets.shape[1])}

    def _reject_earlier(self, batch, live, earlier, exact, urls, signatures, ids):
        """index_keep: oldest: documents that match an earlier run's survivor are removed first."""
        rows = np.flatnonzero(live)
        found = match_earlier(earlier, rows.tolist(), exact, urls, self._bucket_map(signatures, rows), "oldest")
        if not found:
            return batch, live
        mask = np.zeros(batch.num_rows, dtype=bool)
        reasons: list = [None] * batch.num_rows
        snapshots: list = [None] * batch.num_rows
        earlier_ids: list = [None] * batch.num_rows
        for row, (rule, earlier_id, snapshot) in found.items():
            mask[row], reasons[row], snapshots[row], earlier_ids[row] = True, f"{self.name}.earlier_{rule}", snapshot, earlier_id
            self.counters[f"earlier_{rule}_duplicates"] += 1
        return reject(batch, mask, reasons, snapshots, earlier_ids), live & ~mask

    def _stage_survivors(self, batch, survivors: np.ndarray, earlier, exact, urls, signatures, ids) -> None:
        """Write this run's survivors (and, index_keep: newest, what they supersede) to staging."""
        session = self.index_session
        rows = survivors.tolist()
        dates = batch.column("warc_date").to_pylist()

        def entries(keys: list | None, schema: pa.Schema) -> pa.Table:
            chosen = [r for r in rows if keys is not None and keys[r] is not None]
            return _entry_table(schema, [keys[r] for r in chosen], [ids[r] for r in chosen], session.snapshot, [dates[r] for r in chosen])

        bucket_map = self._bucket_map(signatures, survivors) or {}
        bucket_tables = {
            band: _entry_table(BUCKET_SCHEMA, list(by_row.values()), [ids[r] for r in by_row], session.snapshot, [dates[r] for r in by_row])
            for band, by_row in bucket_map.items()
        }
        superseded: list[tuple[str, int, str, str]] = []
        if self.params.index_keep == "newest":
            found = match_earlier(earlier, rows, exact, urls, bucket_map, "newest")
            superseded = [(earlier_id, snapshot, ids[row], rule) for row, (rule, earlier_id, snapshot) in sorted(found.items())]
            for _, _, _, rule in superseded:
                self.counters[f"superseded_{rule}"] += 1
        self.last_superseded = superseded
        table = None
        if self.params.index_keep == "newest":
            table = pa.Table.from_pylist([dict(zip(SUPERSEDED_SCHEMA.names, s)) for s in superseded], schema=SUPERSEDED_SCHEMA)
        session.write_part(entries(exact, EXACT_SCHEMA), entries(urls, URL_SCHEMA), bucket_tables, table, self.name)
        self.counters["index_snapshot"] = session.snapshot
        self.counters["index_documents_added"] = len(rows)

    def _apply_groups(self, batch: pa.RecordBatch, keys: list, rank: np.ndarray, live: np.ndarray, rule: str, ids: list[str]):
        rejected, kept_row, sizes = groups_to_rejections(keys, rank, live)
        self.counters[f"{rule}_groups"] += len({k for k, s in zip(keys, sizes) if s})
        dup_of = [ids[k] if k is not None else None for k in kept_row]
        batch = reject(batch, rejected, f"{self.name}.{rule}", sizes, dup_of)
        return batch, live & ~rejected

    def _minhash_local(
        self, batch: pa.RecordBatch, words: pa.Array, rank: np.ndarray, live: np.ndarray, ids: list[str], known: tuple | None = None
    ) -> pa.RecordBatch:
        """Near-duplicate clusters by union-find over the same bucket stars Spark builds."""
        mh = self.params.minhash
        bands, rows = mh.band_layout()
        rows_live = np.flatnonzero(live & has_shingles(words))
        if len(rows_live) < 2:
            return self._score_survivors(batch, [None] * batch.num_rows, np.zeros(batch.num_rows, dtype=bool))
        if known is not None:  # (rows, signatures) of every document with shingles
            signatures = known[1][np.searchsorted(known[0], rows_live)]
        else:
            signatures = MinHasher.from_params(mh).signatures(words.take(pa.array(rows_live)))
        buckets = band_buckets(signatures, bands, rows)
        self.counters["minhash_docs"] += len(rows_live)
        # Local rows 0..k-1 are in id order: the same links the Spark plans build.
        signatures_of = signatures.__getitem__ if mh.verify else None
        links, verified = minhash_links(buckets, np.arange(len(rows_live)), signatures_of, mh.num_perm, mh.threshold)
        self.counters.update(verified)
        root = components(len(rows_live), links)
        component = [root.get(i, i) for i in range(len(rows_live))]
        keys = [None] * batch.num_rows
        for local, row in enumerate(rows_live.tolist()):
            keys[row] = component[local]
        rejected, kept_row, sizes = groups_to_rejections(keys, rank, live)
        self.counters["minhash_clusters"] += len({k for k, s in zip(keys, sizes) if s})
        dup_of = [ids[k] if k is not None else None for k in kept_row]
        self.last_clusters = [
            (ids[row], ids[rows_live[keys[row]]], sizes[row], not rejected[row]) for row in range(batch.num_rows) if sizes[row]
        ]
        batch = self._score_survivors(batch, sizes, rejected)
        return reject(batch, rejected, f"{self.name}.minhash", sizes, dup_of)

    def _score_survivors(self, batch: pa.RecordBatch, sizes: list, rejected: np.ndarray) -> pa.RecordBatch:
        """With ``rehydrate``: each cluster survivor's cluster size as ``<stage>.cluster_size``."""
        if self.params.rehydrate is None:
            return batch
        survivor_sizes = [sizes[row] if sizes[row] and not rejected[row] else None for row in range(batch.num_rows)]
        return set_cluster_sizes(batch, cluster_size_key(self.name), survivor_sizes)
