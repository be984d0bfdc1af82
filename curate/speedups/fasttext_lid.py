"""fastText's top-1 prediction for a batch of texts, with each distinct word's ids looked up once.

Why: fastText's ``predict`` re-derives every token's character n-grams, hashes them and looks
them up in the pruned bucket table, token by token; on web text that is ~2 ms per document
for ``lid.176.ftz``, a quarter of what extraction costs. Words repeat (a 1,000-document batch
has ~8% distinct tokens), so here fastText itself gives each distinct word's input-row ids once
(``get_subwords``) and rows (``get_input_vector``), and a numba kernel replays fastText's
arithmetic over them: the same rows added in the same order in float32, the same scaling, the
same hierarchical-softmax walk (``HierarchicalSoftmaxLoss::dfs``: float32 dot products, the
exact sigmoid, ``log(x + 1e-5)``, ties to the later leaf). The result is bit for bit fastText's:
``tests/test_speedups_fasttext_lid.py`` compares labels and float32 probabilities with
``model.predict`` on real multilingual pages.

Only what was checked is taken: a supervised model with hierarchical softmax, no word n-grams
and a dense output matrix (``lid.176.ftz`` and ``lid.176.bin``); any other model, or a file whose
last bytes are not that matrix, goes to fastText's own ``predict`` after one warning.
Switch: ``CURATE_SPEEDUP_FASTTEXT_LID`` (checked against fasttext-numpy2-wheel 0.9.2).
"""

from __future__ import annotations

import math
import struct

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import speedups

# numba compiles on first use and caches next to this file, as for the MinHash kernels.
compiled = numba.njit(cache=True, nogil=True)

LABEL_PREFIX = "__label__"


def dense_output_matrix(path: str, rows: int, dim: int) -> np.ndarray | None:
    """The output matrix a fastText file ends with (int64 rows, int64 dim, float32 data), or None."""
    size = rows * dim * 4
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() < size + 16:
            return None
        fh.seek(-(size + 16), 2)
        tail = fh.read()
    if struct.unpack("<qq", tail[:16]) != (rows, dim):
        return None
    return np.frombuffer(tail[16:], dtype="<f4").reshape(rows, dim).astype(np.float32)


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

    def __init__(self, model, output: np.ndarray):
        self.model = model
        self.labels, counts = model.get_labels(include_freq=True)
        self.left, self.right = huffman_children(list(counts))
        self.output = output
        self.dim = output.shape[1]
        self.words: dict[str, int] = {}  # word -> its index in word_starts
        self.word_starts = [0]  # word i uses local rows word_local[word_starts[i]:word_starts[i + 1]]
        self.word_local: list[int] = []
        self.local_of_id: dict[int, int] = {}  # fastText input row -> row of self.rows
        self.rows = np.zeros((0, self.dim), np.float32)
        self.pending_rows: list[np.ndarray] = []
        eos = model.get_word_id("</s>")
        self.eos = self.local_row(eos) if eos >= 0 else -1

    @classmethod
    def for_model(cls, model, path: str) -> BatchPredictor | None:
        """A predictor for ``model`` (loaded from ``path``), or None (with a warning) when it is not mirrored."""
        why = why_unsupported(model)
        output = None
        if why is None:
            args = model.f.getArgs()
            output = dense_output_matrix(path, len(model.labels), args.dim)
            why = None if output is not None else f"{path} does not end with a dense output matrix"
        if why is not None:
            speedups.fall_back("fasttext_lid", why)
            return None
        return cls(model, output)

    def local_row(self, input_id: int) -> int:
        local = self.local_of_id.get(input_id)
        if local is None:
            local = len(self.local_of_id)
            self.local_of_id[input_id] = local
            self.pending_rows.append(np.asarray(self.model.get_input_vector(input_id), np.float32))
        return local

    def word_index(self, word: str) -> int:
        index = self.words.get(word)
        if index is None:
            # A token that starts with the label prefix is read as a label, not a word; "" is an
            # empty line's only token: neither has rows.
            ids = [] if not word or word.startswith(LABEL_PREFIX) else self.model.get_subwords(word)[1]
            self.word_local.extend(self.local_row(int(i)) for i in ids)
            index = len(self.word_starts) - 1
            self.word_starts.append(len(self.word_local))
            self.words[word] = index
        return index

    def predict(self, lines: list[str]) -> tuple[list[str | None], np.ndarray]:
        """Label (None when fastText predicts nothing) and float32 probability per line.

        Each line must be a text's ``str.split()`` joined by single spaces (as
        :func:`curate.langid.predict_languages` makes them): that split covers every blank
        fastText splits on except NUL, which is handled here.
        """
        tokens = pc.split_pattern(pa.array([single_spaced(line) for line in lines], pa.large_string()), " ")
        flat = tokens.flatten()
        encoded = flat.dictionary_encode()
        words = encoded.dictionary.to_pylist()
        known = self.words
        distinct = np.array([known.get(w, -1) for w in words], np.int64)
        for i in np.flatnonzero(distinct < 0):
            distinct[i] = self.word_index(words[i])
        token_words = distinct[encoded.indices.to_numpy()] if len(flat) else np.zeros(0, np.int64)
        if self.pending_rows:
            self.rows = np.concatenate([self.rows, np.stack(self.pending_rows)])
            self.pending_rows = []
        best, probs = predict_top_label(
            tokens.offsets.to_numpy(), token_words, np.asarray(self.word_starts, np.int64),
            np.asarray(self.word_local, np.int64), self.rows, self.eos, self.output, self.left, self.right,
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
def hidden_vector(start, end, token_words, word_starts, word_local, rows, eos):
    """fastText's computeHidden: every input row of the line added in order, then scaled (float32)."""
    hidden = np.zeros(rows.shape[1], np.float32)
    count = 0
    for t in range(start, end):
        word = token_words[t]
        for k in range(word_starts[word], word_starts[word + 1]):
            row = word_local[k]
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
def predict_top_label(offsets, token_words, word_starts, word_local, rows, eos, output, left, right):
    lines = len(offsets) - 1
    best = np.full(lines, -1, np.int64)
    probs = np.zeros(lines, np.float32)
    for i in range(lines):
        hidden, count = hidden_vector(offsets[i], offsets[i + 1], token_words, word_starts, word_local, rows, eos)
        if count:
            best[i], score = best_leaf(hidden, output, left, right)
            probs[i] = np.float32(math.exp(score))
    return best, probs
