"""Everything in curate that exists only for speed, behind switches.

Each item makes curate faster without changing a byte of its output; the plain path (the
library as shipped, or curate's own straightforward code) is the reference the tests compare
each item against. ``README.md`` in this folder lists the items, their measured gains and the
upstream versions they were checked against.

Switches (environment variables; "off", "0", "false" or "no" turn a switch off):

* ``CURATE_SPEEDUPS=off`` turns every item off;
* each item has its own variable (:data:`ITEMS`), e.g. ``CURATE_SPEEDUP_COMPILED_XPATHS=off``.

An item that patches a library checks that what it patches exists and has the expected shape;
when it does not (another version of the library), it leaves the library alone and warns once
(:func:`fall_back`).
"""

from __future__ import annotations

import logging
import os
import warnings

log = logging.getLogger(__name__)

ALL_SWITCH = "CURATE_SPEEDUPS"

# item -> its own switch
ITEMS: dict[str, str] = {
    "compiled_xpaths": "CURATE_SPEEDUP_COMPILED_XPATHS",
    "minhash_kernels": "CURATE_SPEEDUP_MINHASH_KERNELS",
    "class_archive": "CURATE_JVM_CLASS_ARCHIVE",
    "quick_jit": "CURATE_JVM_QUICK_JIT",
    "pii": "CURATE_SPEEDUP_PII",
    "block_walk": "CURATE_SPEEDUP_BLOCK_WALK",
    "fasttext_lid": "CURATE_SPEEDUP_FASTTEXT_LID",
    "gopher_ngrams": "CURATE_SPEEDUP_GOPHER_NGRAMS",
    "spacy_words": "CURATE_SPEEDUP_SPACY_WORDS",
}


class SpeedupFallback(UserWarning):
    """A speed-up could not apply to the installed library; the plain library runs instead."""


def switched_off(variable: str) -> bool:
    """Whether the on/off environment switch ``variable`` says off ("off", "0", "false", "no")."""
    return os.environ.get(variable, "on").strip().lower() in ("off", "0", "false", "no")


def enabled(item: str) -> bool:
    """Whether speed-up ``item`` (a key of :data:`ITEMS`) is on: neither its switch nor the global one is off."""
    if item not in ITEMS:
        raise KeyError(f"unknown speed-up {item!r}; known: {', '.join(ITEMS)}")
    return not switched_off(ALL_SWITCH) and not switched_off(ITEMS[item])


_warned: set[str] = set()


def fall_back(item: str, why: str) -> None:
    """Warn (once per process and item) that ``item`` is not applied, and why."""
    if item in _warned:
        return
    _warned.add(item)
    message = f"curate speed-up {item!r} not applied, the plain library runs instead: {why}"
    log.warning(message)
    warnings.warn(message, SpeedupFallback, stacklevel=3)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.3.1"`` -> ``(2, 3, 1)``; stops at the first part that is not a number (``"2.4rc1"`` -> ``(2,)``)."""
    out = []
    for part in version.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)
