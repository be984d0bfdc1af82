"""Compiled block segmenter: ``curate.blocks.page_blocks`` without the XSLT pass and the string it writes (a speed-up).

``block_walk_c`` (Cython, built by ``pip install``) applies the templates of
``curate.blocks.stylesheet`` in C to the same libxml2 tree lxml parsed and hands back the
blocks and frames directly; ``curate.blocks`` (XSLT + ``read_segments``) stays the reference
path that ``tests/test_speedups_block_walk.py`` compares it with, field by field. The same module
also builds ``curate.blocks.block_tokens`` (the hashed-token bag of the frames) in C loops; the
Python function stays its reference.

The compiled module reads lxml's C structures, so it only runs with the lxml version it was
built against; with another one (or when it was not built) the reference path runs, after one
:class:`~curate.speedups.SpeedupFallback` warning. Switch: ``CURATE_SPEEDUP_BLOCK_WALK=off``.
"""

from __future__ import annotations

import functools

import lxml
import numpy as np

from curate import speedups
from curate.block_types import (
    BLOCK_TAGS,
    HASH_BUCKETS,
    HIDDEN_STYLE,
    INLINE_TAGS,
    MAX_TOKENS_PER_ATTRIBUTE,
    SKIPPED_TAGS,
    BlockTokens,
    FrameHeader,
    PageBlocks,
)

ITEM = "block_walk"


@functools.lru_cache(maxsize=1)
def compiled():
    """The compiled module, or None (after one warning) when it is missing or was built against another lxml."""
    try:
        from curate.speedups import block_walk_c
    except ImportError as error:  # not built, or lxml's C API could not be imported
        speedups.fall_back(ITEM, f"the compiled module could not be imported ({error}); reinstall curate (pip install -e .)")
        return None
    if block_walk_c.BUILT_AGAINST_LXML != lxml.__version__:
        speedups.fall_back(
            ITEM, f"built against lxml {block_walk_c.BUILT_AGAINST_LXML}, lxml {lxml.__version__} is installed; reinstall curate"
        )
        return None
    if MAX_TOKENS_PER_ATTRIBUTE != block_walk_c.MAX_TOKENS_PER_ATTRIBUTE:
        speedups.fall_back(
            ITEM, f"built for {block_walk_c.MAX_TOKENS_PER_ATTRIBUTE} tokens per attribute, curate.blocks keeps {MAX_TOKENS_PER_ATTRIBUTE}"
        )
        return None
    block_walk_c.set_hash_buckets(HASH_BUCKETS)
    return block_walk_c


def categories(skipped_tags: frozenset[str]) -> dict[bytes, int]:
    """Tag name (as libxml2 stores it) -> the stylesheet's template for it; other names take match="*"."""
    kinds = compiled().CATEGORIES
    table = {tag.encode(): kinds["skip"] for tag in skipped_tags}
    table.update({tag.encode(): kinds["block"] for tag in BLOCK_TAGS})
    table.update({tag.encode(): kinds["inline"] for tag in INLINE_TAGS})
    table.update({b"br": kinds["br"], b"a": kinds["link"]})
    return table


@functools.lru_cache(maxsize=1)
def rules() -> tuple:
    """The walk's rules without ``<noscript>``, then with it (the second pass of a page with no other text)."""
    return tuple(
        compiled().Rules(categories(skipped), FrameHeader, HIDDEN_STYLE.search) for skipped in (SKIPPED_TAGS, SKIPPED_TAGS - {"noscript"})
    )


def page_blocks(root, html: str) -> PageBlocks | None:
    """``curate.blocks.page_blocks`` of a page lxml parsed from ``html``, or None when the reference path has to
    run (the module is off or not usable, or the tree holds something the walk does not mirror)."""
    module = compiled()
    if module is None:
        return None
    clean = module.has_markers(html)  # curate.blocks.MARKERS_IN_HTML, in one C scan
    first, with_noscript = rules()
    try:
        page = PageBlocks(*module.walk_blocks(root, first, clean))
        return page if page.texts else PageBlocks(*module.walk_blocks(root, with_noscript, clean))
    except module.GiveUp:
        return None


def block_tokens(page: PageBlocks, words: np.ndarray) -> BlockTokens | None:
    """``curate.blocks.block_tokens(page, words)`` from compiled loops over the frames and blocks, or None when the
    module is not usable (the reference runs). Works on any PageBlocks, whichever path segmented the page."""
    module = compiled()
    if module is None:
        return None
    frame, parent = np.ascontiguousarray(page.frame, dtype=np.int64), np.ascontiguousarray(page.parent, dtype=np.int64)
    return BlockTokens(*module.block_tokens(frame, parent, page.headers, page.inherited, words))
