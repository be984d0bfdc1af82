"""What the Gopher n-gram rules (``curate.filters.gopher``) and their compiled speed-up
(``curate.speedups.gopher_ngrams``) share: which rules are on and how an n-gram is hashed.

It sits below both, so that the speed-up never imports the module it speeds up.
"""

from __future__ import annotations

import numpy as np


def active_sizes(limits: dict[int, float | None]) -> list[int]:
    """The n-gram sizes whose rule is on (a null threshold turns a rule off), smallest first."""
    return sorted(n for n, limit in limits.items() if limit is not None)


# Odd 64-bit multiplier for the n-gram rolling hash; collisions need ~2^32 n-grams in one doc.
NGRAM_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
