"""fastText's top-1 prediction for a batch of texts, with each distinct word's rows found once.

Why: fastText's ``predict`` re-derives every token's character n-grams, hashes them and looks
them up in the pruned bucket table, token by token; on web text that is ~1-2 ms per document
for ``lid.176.ftz``, a fifth of what extraction costs. Words repeat (a 1,000-document batch
has ~8% distinct tokens), so here each distinct word's input rows are found once per process
(``Dictionary::getSubwords`` re-done in numba over the model file's vocabulary and pruned
bucket table), and a kernel replays fastText's arithmetic over them: the same rows added in
the same order in float32, the same scaling, the same hierarchical-softmax walk
(``HierarchicalSoftmaxLoss::dfs``: float32 dot products, the exact sigmoid, ``log(x + 1e-5)``,
ties to the later leaf). The result is bit for bit fastText's:
``tests/test_speedups_fasttext_lid.py`` compares labels and float32 probabilities with
``model.predict`` on real multilingual pages, and the rows of every word with ``get_subwords``.

Only what was checked is taken: a fastText 0.9 file (version 12) of a supervised model with
hierarchical softmax, no word n-grams and a dense output matrix (``lid.176.ftz`` and
``lid.176.bin``); any other model goes to fastText's own ``predict`` after one warning.
Switch: ``CURATE_SPEEDUP_FASTTEXT_LID`` (checked against fasttext-numpy2-wheel 0.9.2).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import speedups

# numba compiles on first use and caches next to this file, as for the MinHash kernels.
compiled = numba.njit(cache=True, nogil=True)

LABEL_PREFIX = "__label__"


MAGIC, VERSION = 793712314, 12


@dataclass
class ModelFile:
    """What prediction needs from a fastText file beyond the Python API: the vocabulary, the
    pruned bucket table (``Dictionary::pruneidx_``) and the dense output matrix."""

    words: dict[str, int]  # word -> id, words only (labels are not words)
    nwords: int
    bucket: int
    minn: int
    maxn: int
    prune_size: int  # -1: no pruning; 0: every bucket pruned away
    prune_keys: np.ndarray  # bucket hashes kept, sorted
    prune_rows: np.ndarray  # their rows, counted from nwords
    output: np.ndarray


def read_model_file(path: str, labels: int, dim: int) -> ModelFile | str:
    """The parts of a fastText 0.9 model file (``FastText::saveModel``) prediction needs, or why not."""
    with open(path, "rb") as fh:
        data = fh.read()
    if struct.unpack_from("<ii", data, 0) != (MAGIC, VERSION):
        return f"{path} is not a fastText model file of version {VERSION}"
    args = struct.unpack_from("<12i", data, 8)  # dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate
    size, nwords, _, _, prune_size = struct.unpack_from("<iiiqq", data, 64)
    offset, words = 92, {}
    for index in range(size):
        end = data.index(b"\x00", offset)
        if data[end + 9] == 0:  # entry_type::word
            words[data[offset:end].decode("utf-8", "surrogateescape")] = index
        offset = end + 10
    pairs = np.frombuffer(data, "<i4", 2 * max(prune_size, 0), offset).reshape(-1, 2)
    order = np.argsort(pairs[:, 0], kind="stable")
    tail = data[len(data) - labels * dim * 4 - 16 :]
    if args[0] != dim or struct.unpack_from("<qq", tail) != (labels, dim):
        return f"{path} does not end with a dense {labels}x{dim} output matrix"
    output = np.frombuffer(tail, "<f4", labels * dim, 16).reshape(labels, dim).astype(np.float32)
    keys, rows = pairs[order, 0].astype(np.int64), pairs[order, 1].astype(np.int64)
    return ModelFile(words, nwords, args[8], args[9], args[10], prune_size, keys, rows, output)


def input_rows(model, file: ModelFile) -> np.ndarray | str:
    """Every input row as float32 (decoded once when quantized: codebook entries, exact), or why not."""
    if not model.is_quantized():
        return np.asarray(model.get_input_matrix(), np.float32)
    if file.prune_size < 0:
        return "a quantized model without a pruned bucket table"
    rows = [np.asarray(model.get_input_vector(i), np.float32) for i in range(file.nwords + file.prune_size)]
    return np.stack(rows)


def huffman_children(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Left and right child of every node of fastText's label tree (``buildTree``; -1 for leaves)."""
    labels = len(counts)
    nodes = 2 * labels - 1
    count = [float(c) for c in counts] + [1e15] * (labels - 1)
    left, right = np.full(nodes, -1, np.int32), np.full(nodes, -1, np.int32)
    leaf, node = labels - 1, labels
    for parent in range(labels, nodes):
        pair = []
        for _ in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                pair.append(leaf)
                leaf -= 1
            else:
                pair.append(node)
                node += 1
        left[parent], right[parent] = pair
        count[parent] = count[pair[0]] + count[pair[1]]
    return left, right


def why_unsupported(model) -> str | None:
    args = model.f.getArgs()
    if args.model.name != "supervised" or args.loss.name != "hs":
        return f"model {args.model.name} with loss {args.loss.name} (only supervised + hs is mirrored)"
    if args.wordNgrams > 1:
        return f"wordNgrams={args.wordNgrams} (word n-grams are not mirrored)"
    if args.label != LABEL_PREFIX:
        return f"label prefix {args.label!r}"
    return None


class BatchPredictor:
    """Top label and probability, as ``model.predict(lines, k=1)``, for many texts at once."""

    def __init__(self, model, file: ModelFile, rows: np.ndarray):
        self.labels, counts = model.get_labels(include_freq=True)
        self.left, self.right = huffman_children(list(counts))
        self.file, self.rows = file, rows
        self.eos = file.words.get("</s>", -1)
        self.known: dict[str, int] = {}  # word -> its index in word_starts
        # word i adds input rows word_ids[word_starts[i]:word_starts[i + 1]], in fastText's order
        self.word_starts = np.zeros(1, np.int64)
        self.word_ids = np.zeros(0, np.int64)

    @classmethod
    def for_model(cls, model, path: str) -> BatchPredictor | None:
        """A predictor for ``model`` (loaded from ``path``), or None (with a warning) when it is not mirrored."""
        why = why_unsupported(model)
        if why is None:
            file = read_model_file(path, len(model.labels), model.get_dimension())
            why = file if isinstance(file, str) else None
        if why is None:
            rows = input_rows(model, file)
            why = rows if isinstance(rows, str) else None
        if why is not None:
            speedups.fall_back("fasttext_lid", why)
            return None
        return cls(model, file, rows)

    def word_indices(self, distinct: pa.Array) -> np.ndarray:
        """Index of each distinct word of a batch in the cache; new words get their input rows first."""
        words = distinct.to_pylist()
        indices = np.array([self.known.get(w, -1) for w in words], np.int64)
        new = np.flatnonzero(indices < 0)
        if len(new):
            vocabulary = self.file.words
            word_ids = np.array([vocabulary.get(words[i], -1) for i in new], np.int64)
            # A token that starts with the label prefix is read as a label, not a word; "" is an
            # empty line's only token: neither adds a row. The end-of-line word has no n-grams.
            kinds = np.array([0 if not words[i] or words[i].startswith(LABEL_PREFIX) else 1 + (words[i] != "</s>") for i in new], np.int8)
            offsets = np.frombuffer(distinct.buffers()[1], np.int64, len(distinct) + 1, distinct.offset * 8)
            data = np.frombuffer(distinct.buffers()[2], np.uint8)
            f = self.file
            counts, ids = subword_ids(
                data, offsets, new, word_ids, kinds, f.minn, f.maxn, f.bucket, f.nwords, f.prune_size, f.prune_keys, f.prune_rows,
            )  # fmt: skip
            first = len(self.word_starts) - 1
            self.word_starts = np.concatenate([self.word_starts, self.word_starts[-1] + np.cumsum(counts)])
            self.word_ids = np.concatenate([self.word_ids, ids])
            for k, i in enumerate(new):
                self.known[words[i]] = indices[i] = first + k
        return indices

    def predict(self, lines: list[str]) -> tuple[list[str | None], np.ndarray]:
        """Label (None when fastText predicts nothing) and float32 probability per line.

        Each line must be a text's ``str.split()`` joined by single spaces (as
        :func:`curate.langid.predict_languages` makes them): that split covers every blank
        fastText splits on except NUL, which is handled here.
        """
        tokens = pc.split_pattern(pa.array([single_spaced(line) for line in lines], pa.large_string()), " ")
        encoded = tokens.flatten().dictionary_encode()
        token_words = self.word_indices(encoded.dictionary)[encoded.indices.to_numpy()]
        best, probs = predict_top_label(
            tokens.offsets.to_numpy(), token_words, self.word_starts, self.word_ids,
            self.rows, self.eos, self.file.output, self.left, self.right,
        )  # fmt: skip
        return [self.labels[b] if b >= 0 else None for b in best], probs


def single_spaced(line: str) -> str:
    # fastText splits on ASCII blanks and NUL; the caller's str.split() covered all but NUL.
    return " ".join(line.replace("\x00", " ").split()) if "\x00" in line else line


@compiled
def std_log(x):
    # fastText's std_log: the argument is a float32, the sum and log are double, the result float32.
    return np.float32(math.log(np.float64(x) + 1e-5))


@compiled
def fnv_step(h, byte):
    # fastText's hash: FNV-1a over the bytes read as *signed* chars (released models depend on it)
    extended = np.uint32(byte) | np.uint32(0xFFFFFF00) if byte >= 128 else np.uint32(byte)
    return np.uint32((np.uint64(h ^ extended) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF))


@compiled
def pushed_hash(h, nwords, prune_size, prune_keys, prune_rows):
    """``Dictionary::pushHash``: the input row of bucket ``h``, or -1 when pruned away."""
    if prune_size == 0:
        return -1
    if prune_size < 0:
        return nwords + h
    at = np.searchsorted(prune_keys, h)
    if at < len(prune_keys) and prune_keys[at] == h:
        return nwords + prune_rows[at]
    return -1


@compiled
def subword_ids(data, offsets, new, word_ids, kinds, minn, maxn, bucket, nwords, prune_size, prune_keys, prune_rows):
    """Input rows of each new word, as ``Dictionary::getSubwords``: the word's id if it has one,
    then its character n-grams of "<word>" (UTF-8 characters, ``computeSubwords``)."""
    bound = 0
    for i in new:
        bound += 1 + (offsets[i + 1] - offsets[i] + 2) * maxn
    ids = np.empty(bound, np.int64)
    counts = np.zeros(len(new), np.int64)
    out = 0
    for k in range(len(new)):
        i = new[k]
        if kinds[k] == 0:
            continue
        start = out
        if word_ids[k] >= 0:
            ids[out] = word_ids[k]
            out += 1
        if kinds[k] == 2:
            word = np.empty(offsets[i + 1] - offsets[i] + 2, np.uint8)
            word[0], word[-1] = 60, 62  # "<" and ">"
            word[1:-1] = data[offsets[i] : offsets[i + 1]]
            out = add_ngrams(word, minn, maxn, bucket, nwords, prune_size, prune_keys, prune_rows, ids, out)
        counts[k] = out - start
    return counts, ids[:out]


@compiled
def add_ngrams(word, minn, maxn, bucket, nwords, prune_size, prune_keys, prune_rows, ids, out):
    size = len(word)
    for i in range(size):
        if word[i] & 0xC0 == 0x80:  # not the first byte of a character
            continue
        h = np.uint32(2166136261)
        j, n = i, 1
        while j < size and n <= maxn:
            h = fnv_step(h, word[j])
            j += 1
            while j < size and word[j] & 0xC0 == 0x80:
                h = fnv_step(h, word[j])
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == size)):
                row = pushed_hash(np.int64(h % np.uint32(bucket)), nwords, prune_size, prune_keys, prune_rows)
                if row >= 0:
                    ids[out] = row
                    out += 1
            n += 1
    return out


@compiled
def hidden_vector(start, end, token_words, word_starts, word_ids, rows, eos):
    """fastText's computeHidden: every input row of the line added in order, then scaled (float32)."""
    hidden = np.zeros(rows.shape[1], np.float32)
    count = 0
    for t in range(start, end):
        word = token_words[t]
        for k in range(word_starts[word], word_starts[word + 1]):
            row = word_ids[k]
            for j in range(hidden.shape[0]):
                hidden[j] += rows[row, j]
            count += 1
    if eos >= 0:
        for j in range(hidden.shape[0]):
            hidden[j] += rows[eos, j]
        count += 1
    if count:
        scale = np.float32(1.0 / count)
        for j in range(hidden.shape[0]):
            hidden[j] *= scale
    return hidden, count


@compiled
def best_leaf(hidden, output, left, right):
    """``HierarchicalSoftmaxLoss::dfs`` with k=1 and threshold 0: the best leaf and its log score."""
    labels = output.shape[0]
    floor = std_log(np.float32(0.0))
    stack_nodes = np.empty(2 * labels, np.int64)
    stack_scores = np.empty(2 * labels, np.float32)
    stack_nodes[0], stack_scores[0], top = 2 * labels - 2, np.float32(0.0), 1
    best, best_score = -1, np.float32(0.0)
    while top:
        top -= 1
        node, score = stack_nodes[top], stack_scores[top]
        if score < floor or (best >= 0 and score < best_score):
            continue
        if left[node] == -1:
            best, best_score = node, score  # a tie goes to the later leaf, as fastText's heap does
            continue
        dot = np.float32(0.0)
        for j in range(hidden.shape[0]):
            dot += output[node - labels, j] * hidden[j]
        f = np.float32(1.0 / (np.float32(1.0) + math.exp(-dot)))
        stack_nodes[top], stack_scores[top] = right[node], score + std_log(f)
        stack_nodes[top + 1], stack_scores[top + 1] = left[node], score + std_log(np.float32(1.0 - np.float64(f)))
        top += 2
    return best, best_score


@compiled
def predict_top_label(offsets, token_words, word_starts, word_ids, rows, eos, output, left, right):
    lines = len(offsets) - 1
    best = np.full(lines, -1, np.int64)
    probs = np.zeros(lines, np.float32)
    for i in range(lines):
        hidden, count = hidden_vector(offsets[i], offsets[i + 1], token_words, word_starts, word_ids, rows, eos)
        if count:
            best[i], score = best_leaf(hidden, output, left, right)
            probs[i] = np.float32(math.exp(score))
    return best, probs
