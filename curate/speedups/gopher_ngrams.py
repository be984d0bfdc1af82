"""The n-gram rules of the Gopher repetition filter, compiled.

Why: ``GopherRepetitionStage.ngram_verdict`` runs ``np.unique`` (a sort) once per n-gram size,
nine by default, and walks the repeated n-grams in a Python loop: ~0.6 ms per 1,100-word
document, most of the stage after splitting words. Here one numba kernel takes the same rolling
hashes, puts each size's n-grams in an open-addressing table (equal hashes share a slot, as
equal keys share a group in ``np.unique``) and does the reference's two counts: the most
frequent n-gram (the earliest on a tie) and the greedy left-to-right scan over repeats. The
verdict and its fraction are the plain path's, bit for bit
(``tests/test_speedups_gopher_ngrams.py``: real pages, WikiText, repetitive texts, rules in any
order or off, generated word sequences). On the 1,664 documents that reach the stage in the
5,000-record bench run: n-gram rules 0.99-1.26 s plain, 0.12-0.16 s compiled (CPU, one process).

Switch: ``CURATE_SPEEDUP_GOPHER_NGRAMS`` (numba 0.68; compiled on first use and cached next to
this file, like the MinHash kernels).
"""

from __future__ import annotations

import numba
import numpy as np

from curate.filters.ngrams import NGRAM_HASH_MULTIPLIER, active_sizes

compiled = numba.njit(cache=True, nogil=True)


class CompiledNgramRules:
    """``verdict(ids, cumulative, text_length)`` as ``GopherRepetitionStage.ngram_verdict`` for fixed thresholds."""

    def __init__(self, top: dict[int, float | None], dup: dict[int, float | None]):
        top_sizes, dup_sizes = active_sizes(top), active_sizes(dup)
        self.names = [f"top_{n}_gram" for n in top_sizes] + [f"dup_{n}_gram" for n in dup_sizes]
        self.sizes = np.array(top_sizes + dup_sizes, np.int64)
        self.limits = np.array([top[n] for n in top_sizes] + [dup[n] for n in dup_sizes], np.float64)
        self.top_rules = len(top_sizes)

    def verdict(self, ids: np.ndarray, cumulative: np.ndarray, text_length: int) -> tuple[str, float] | None:
        rule, fraction = first_failed_rule(ids, cumulative, self.sizes, self.limits, self.top_rules, text_length)
        return None if rule < 0 else (self.names[rule], fraction)


MIX = np.uint64(0xBF58476D1CE4E5B9)  # spreads keys over the table's slots (a splitmix64 constant)


@compiled
def table_slots(keys):
    """Slot of each key in an open-addressing table (linear probing, load <= 1/2): equal keys, equal slots."""
    bits = 1
    while (1 << bits) < 2 * len(keys):
        bits += 1
    size = 1 << bits
    stored = np.empty(size, np.uint64)
    used = np.zeros(size, np.bool_)
    slots = np.empty(len(keys), np.int64)
    for i in range(len(keys)):
        slot = np.int64((keys[i] * MIX) >> np.uint64(64 - bits))
        while used[slot] and stored[slot] != keys[i]:
            slot = (slot + 1) & (size - 1)
        used[slot] = True
        stored[slot] = keys[i]
        slots[i] = slot
    return slots, size


@compiled
def ngram_hashes(ids, n):
    hashes = ids.copy()
    for made in range(2, n + 1):
        for i in range(len(ids) - made + 1):
            hashes[i] = hashes[i] * NGRAM_HASH_MULTIPLIER + ids[i + made - 1]
    return hashes[: len(ids) - n + 1]


@compiled
def top_ngram_chars(slots, size, cumulative, n):
    """Count of the most frequent n-gram (the earliest on a tie) times its characters (words and the n-1 spaces)."""
    counts = np.zeros(size, np.int64)
    top, start = 0, 0
    for i in range(len(slots)):
        counts[slots[i]] += 1
    for i in range(len(slots)):  # left to right: the first position of the first most frequent n-gram
        if counts[slots[i]] > top:
            top, start = counts[slots[i]], i
    return top * (cumulative[start + n] - cumulative[start] + (n - 1))


@compiled
def repeated_ngram_chars(slots, size, cumulative, n):
    """Characters in n-grams that repeat an earlier one, jumping over each repeat (MassiveText); -1 if none repeats."""
    seen = np.zeros(size, np.bool_)
    repeated, any_repeat = 0, False
    i = 0
    while i < len(slots):
        if seen[slots[i]]:
            repeated += cumulative[i + n] - cumulative[i]
            any_repeat = True
            i += n
        else:
            seen[slots[i]] = True
            i += 1
    return repeated if any_repeat else -1


@compiled
def first_failed_rule(ids, cumulative, sizes, limits, top_rules, text_length):
    """(index of the first rule whose fraction is over its limit, or -1; that fraction)."""
    for r in range(len(sizes)):
        n = sizes[r]
        if len(ids) < n:
            continue
        slots, size = table_slots(ngram_hashes(ids, n))
        if r < top_rules:
            fraction = top_ngram_chars(slots, size, cumulative, n) / text_length
        else:
            repeated = repeated_ngram_chars(slots, size, cumulative, n)
            if repeated < 0:
                continue
            fraction = repeated / text_length
        if fraction > limits[r]:
            return r, fraction
    return -1, 0.0
