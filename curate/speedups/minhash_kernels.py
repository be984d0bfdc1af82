"""Compiled inner loops of MinHash: SHA-1 of every shingle and the permutation minima.

Why compiled: a signature identical to datasketch's ``MinHash(num_perm, seed)`` needs the
SHA-1 of every shingle, and one ``hashlib`` call per shingle from Python costs more than
the rest of the signature together. Here the shingle bytes are assembled straight from the
batch's word buffer (no shingle strings are built), hashed with a plain SHA-1, and folded
into the per-document minima in the same pass over memory.

The functions are compiled by numba on first use and cached next to this file (or in
numba's user cache directory when that is read-only), so a Spark worker pays the compile
once per machine, not once per task. ``tests/test_dedup.py`` checks every result against
``hashlib`` and against datasketch.

Switched off (``CURATE_SPEEDUP_MINHASH_KERNELS=off`` or ``CURATE_SPEEDUPS=off``) the same
functions run as plain Python: the same signatures, some hundred times slower.
"""

from __future__ import annotations

import functools

import numpy as np

from curate import speedups


def _plain(function):
    # The arithmetic wraps on purpose (as it does compiled); NumPy scalars would warn on each wrap.
    @functools.wraps(function)
    def run(*args):
        with np.errstate(over="ignore"):
            return function(*args)

    return run


def _compiled(**options):
    """numba's ``njit`` (cached, GIL released) when this speed-up is on, else the plain function."""
    if not speedups.enabled("minhash_kernels"):
        return _plain
    import numba

    return numba.njit(cache=True, nogil=True, **options)


_M32 = np.uint64(0xFFFFFFFF)


@_compiled(inline="always")
def _rol(x, n):
    return ((x << np.uint64(n)) | (x >> np.uint64(32 - n))) & _M32


@_compiled()
def _sha1_first_word(msg, length, w):
    """First 4 digest bytes, little endian, of SHA-1(msg[:length]) (datasketch's sha1_hash32).

    ``msg`` must have room for the padding (length + 72 bytes); ``w`` is an 80-word scratch.
    """
    total = _sha1_pad(msg, length)
    h0 = np.uint64(0x67452301)
    h1 = np.uint64(0xEFCDAB89)
    h2 = np.uint64(0x98BADCFE)
    h3 = np.uint64(0x10325476)
    h4 = np.uint64(0xC3D2E1F0)
    for base in range(0, total, 64):
        h0, h1, h2, h3, h4 = _sha1_block(msg, base, w, h0, h1, h2, h3, h4)
    # The digest is big endian; datasketch reads its first 4 bytes as a little-endian uint32.
    return np.uint32(
        ((h0 & np.uint64(0xFF)) << np.uint64(24))
        | ((h0 & np.uint64(0xFF00)) << np.uint64(8))
        | ((h0 >> np.uint64(8)) & np.uint64(0xFF00))
        | (h0 >> np.uint64(24))
    )


@_compiled(inline="always")
def _sha1_pad(msg, length):
    """SHA-1's padding written after ``msg[:length]``: 0x80, zeros, the length in bits; the padded length."""
    total = ((length + 8) // 64 + 1) * 64
    msg[length] = 0x80
    msg[length + 1 : total - 8] = 0
    bits = length * 8
    for k in range(8):
        msg[total - 1 - k] = (bits >> (8 * k)) & 0xFF
    return total


@_compiled(inline="always")
def _sha1_block(msg, base, w, h0, h1, h2, h3, h4):
    """The state after the 64-byte block at ``msg[base:]``."""
    for t in range(16):
        p = base + 4 * t
        w[t] = (
            (np.uint64(msg[p]) << np.uint64(24))
            | (np.uint64(msg[p + 1]) << np.uint64(16))
            | (np.uint64(msg[p + 2]) << np.uint64(8))
            | np.uint64(msg[p + 3])
        )
    for t in range(16, 80):
        w[t] = _rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1)
    a, b, c, d, e = h0, h1, h2, h3, h4
    # Four separate loops rather than one with a branch per round: the compiler unrolls them.
    for t in range(0, 20):
        temp = (_rol(a, 5) + (d ^ (b & (c ^ d))) + e + np.uint64(0x5A827999) + w[t]) & _M32
        e, d, c, b, a = d, c, _rol(b, 30), a, temp
    for t in range(20, 40):
        temp = (_rol(a, 5) + (b ^ c ^ d) + e + np.uint64(0x6ED9EBA1) + w[t]) & _M32
        e, d, c, b, a = d, c, _rol(b, 30), a, temp
    for t in range(40, 60):
        temp = (_rol(a, 5) + ((b & c) | (d & (b | c))) + e + np.uint64(0x8F1BBCDC) + w[t]) & _M32
        e, d, c, b, a = d, c, _rol(b, 30), a, temp
    for t in range(60, 80):
        temp = (_rol(a, 5) + (b ^ c ^ d) + e + np.uint64(0xCA62C1D6) + w[t]) & _M32
        e, d, c, b, a = d, c, _rol(b, 30), a, temp
    return (h0 + a) & _M32, (h1 + b) & _M32, (h2 + c) & _M32, (h3 + d) & _M32, (h4 + e) & _M32


# Messages hashed side by side: one SHA-1 round is then one vector instruction per step over
# LANES independent messages (32 measured fastest here, with AVX-512; 16 is 1.4x slower).
LANES = 32
# Longest message that fits one 64-byte block with SHA-1's padding; 99% of 5-word shingles do.
_ONE_BLOCK = 55


@_compiled()
def _sha1_lanes(blocks, w, out, where, count):
    """First digest word (as sha1_hash32) of ``count`` padded one-block messages in ``blocks``."""
    for t in range(16):
        p = 4 * t
        for lane in range(LANES):
            w[t, lane] = (
                (np.uint32(blocks[lane, p]) << 24)
                | (np.uint32(blocks[lane, p + 1]) << 16)
                | (np.uint32(blocks[lane, p + 2]) << 8)
                | np.uint32(blocks[lane, p + 3])
            )
    for t in range(16, 80):
        for lane in range(LANES):
            x = w[t - 3, lane] ^ w[t - 8, lane] ^ w[t - 14, lane] ^ w[t - 16, lane]
            w[t, lane] = (x << 1) | (x >> 31)
    a = np.full(LANES, 0x67452301, np.uint32)
    b = np.full(LANES, 0xEFCDAB89, np.uint32)
    c = np.full(LANES, 0x98BADCFE, np.uint32)
    d = np.full(LANES, 0x10325476, np.uint32)
    e = np.full(LANES, 0xC3D2E1F0, np.uint32)
    for t in range(80):
        if t < 20:
            k = np.uint32(0x5A827999)
            for lane in range(LANES):
                al, bl, cl, dl = a[lane], b[lane], c[lane], d[lane]
                temp = ((al << 5) | (al >> 27)) + (dl ^ (bl & (cl ^ dl))) + e[lane] + k + w[t, lane]
                e[lane], d[lane], c[lane], b[lane], a[lane] = dl, cl, (bl << 30) | (bl >> 2), al, temp
        elif t < 40:
            k = np.uint32(0x6ED9EBA1)
            for lane in range(LANES):
                al, bl, cl, dl = a[lane], b[lane], c[lane], d[lane]
                temp = ((al << 5) | (al >> 27)) + (bl ^ cl ^ dl) + e[lane] + k + w[t, lane]
                e[lane], d[lane], c[lane], b[lane], a[lane] = dl, cl, (bl << 30) | (bl >> 2), al, temp
        elif t < 60:
            k = np.uint32(0x8F1BBCDC)
            for lane in range(LANES):
                al, bl, cl, dl = a[lane], b[lane], c[lane], d[lane]
                temp = ((al << 5) | (al >> 27)) + ((bl & cl) | (dl & (bl | cl))) + e[lane] + k + w[t, lane]
                e[lane], d[lane], c[lane], b[lane], a[lane] = dl, cl, (bl << 30) | (bl >> 2), al, temp
        else:
            k = np.uint32(0xCA62C1D6)
            for lane in range(LANES):
                al, bl, cl, dl = a[lane], b[lane], c[lane], d[lane]
                temp = ((al << 5) | (al >> 27)) + (bl ^ cl ^ dl) + e[lane] + k + w[t, lane]
                e[lane], d[lane], c[lane], b[lane], a[lane] = dl, cl, (bl << 30) | (bl >> 2), al, temp
    for lane in range(count):
        h0 = np.uint32(a[lane] + np.uint32(0x67452301))
        out[where[lane]] = ((h0 & 0xFF) << 24) | ((h0 & 0xFF00) << 8) | ((h0 >> 8) & 0xFF00) | (h0 >> 24)


@_compiled()
def _sha1_spans(buffer, first, length):
    """sha1_hash32 of ``buffer[first[i] : first[i] + length[i]]`` for every i."""
    n = len(first)
    out = np.empty(n, np.uint32)
    blocks = np.zeros((LANES, 64), np.uint8)
    w = np.empty((80, LANES), np.uint32)
    where = np.empty(LANES, np.int64)
    long_msg = np.zeros(256, np.uint8)
    w1 = np.empty(80, np.uint64)
    filled = 0
    for i in range(n):
        size = length[i]
        lo = first[i]
        if size <= _ONE_BLOCK:
            row = blocks[filled]
            row[:size] = buffer[lo : lo + size]
            row[size] = 0x80
            row[size + 1 : 62] = 0
            row[62] = ((size * 8) >> 8) & 0xFF
            row[63] = (size * 8) & 0xFF
            where[filled] = i
            filled += 1
            if filled == LANES:
                _sha1_lanes(blocks, w, out, where, filled)
                filled = 0
        else:
            if size + 72 > len(long_msg):
                long_msg = np.zeros(2 * (size + 72), np.uint8)
            long_msg[:size] = buffer[lo : lo + size]
            out[i] = _sha1_first_word(long_msg, size, w1)
    if filled:
        _sha1_lanes(blocks, w, out, where, filled)
    return out


@_compiled()
def shingle_sha1_hash32(data, word_offsets, start, end, ngram):
    """sha1_hash32 of each shingle, the shingle being words ``start[i] .. min(start[i] + ngram,
    end[i]) - 1`` of the word array (``data`` its UTF-8 bytes, ``word_offsets`` its offsets)
    joined by one space."""
    n_words = len(word_offsets) - 1
    base = word_offsets[0]
    # Every word followed by one space: each shingle is then one contiguous slice.
    spaced = np.empty(word_offsets[n_words] - base + n_words, np.uint8)
    for j in range(n_words):
        lo = word_offsets[j]
        hi = word_offsets[j + 1]
        p = lo - base + j
        spaced[p : p + hi - lo] = data[lo:hi]
        spaced[p + hi - lo] = 32
    n = len(start)
    first = np.empty(n, np.int64)
    length = np.empty(n, np.int64)
    for i in range(n):
        s = start[i]
        stop = min(s + ngram, end[i])
        first[i] = word_offsets[s] - base + s
        length[i] = word_offsets[stop] - base + stop - 1 - first[i]
    return _sha1_spans(spaced, first, length)


@_compiled()
def sha1_hash32_values(data, offsets):
    """sha1_hash32 of each value of a binary array (``data`` its bytes, ``offsets`` its offsets)."""
    return _sha1_spans(data, offsets[:-1], offsets[1:] - offsets[:-1])


@_compiled()
def affine32_minima(doc_index, mixed, a, b, signatures):
    """signatures[doc_index[i], p] = min(.., uint32(mixed[i] * a[p] + b[p])) for every shingle i.

    uint32 wrap-around is the affine32 permutation; the inner loop over permutations is
    contiguous, so it compiles to vector min instructions.
    """
    num_perm = len(a)
    for i in range(len(mixed)):
        row = signatures[doc_index[i]]
        h = mixed[i]
        for p in range(num_perm):
            v = np.uint32(h * a[p] + b[p])
            if v < row[p]:
                row[p] = v
