"""What the block segmenter (``curate.blocks``) and its compiled speed-up
(``curate.speedups.block_walk``) agree on: the tags each template handles, the hashing sizes,
and the types both paths hand back.

It sits below both so that the speed-up never imports the module it speeds up; ``curate.blocks``
re-exports every name, and callers keep importing them from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

SKIPPED_TAGS = frozenset(
    "script style noscript template svg math iframe head title meta link select option "
    "textarea input canvas video audio object embed map applet frameset frame datalist".split()
)
# <button> is a frame, not skipped: libxml2 nests everything after a button holding an unclosed
# <div> inside that button (Dotdash Meredith's menu button does this), so skipping it dropped
# whole articles. Its own text ("Menu", "Search") is a block the model learns to drop.
BLOCK_TAGS = frozenset(
    "html body p div section article main aside header footer nav li ul ol dl dt dd h1 h2 h3 h4 h5 h6 "
    "table thead tbody tfoot tr td th caption blockquote pre figure figcaption form fieldset legend "
    "address details summary center menu dialog hgroup hr button".split()
)
INLINE_TAGS = frozenset(
    "a img span b i em strong code sub sup small label font u s abbr cite q mark time var kbd bdi bdo "
    "wbr del ins dfn data ruby rt rp tt big strike nobr".split()
)
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
HASH_BUCKETS = 1 << 13
MAX_TOKENS_PER_ATTRIBUTE = 8
MAX_TOKENS_PER_BLOCK = 64


class FrameHeader(NamedTuple):
    """What the features need of a block-level element, read from its tag and attributes."""

    tag: str
    own_ids: tuple[int, ...]  # "c0:" tokens, for blocks directly inside this element
    child_ids: tuple[int, ...]  # "pt:" tag, "c1:" tokens, for blocks of its child elements
    added: frozenset[int]  # "a:" tag and "c:" tokens it adds to its descendants
    hidden: bool  # hidden by its own attributes


@dataclass
class PageBlocks:
    """Blocks of a page (parallel per-block arrays) and the frames around them.

    Frames are numbered in document order of their opening, so a parent's index is below its children's.
    Only frames with text below them (the ancestors of some block) get headers, depths and totals;
    the others are ``None`` / 0.
    """

    texts: list[str]
    link_chars: np.ndarray  # int64 per block: characters of link text (stripped text nodes in links)
    frame: np.ndarray  # int64 per block: its innermost frame, -1 if none
    parent: np.ndarray  # int64 per frame: enclosing frame, -1 for the outermost
    depth: np.ndarray  # int64 per frame: frames above it
    hidden: np.ndarray  # bool per frame: it or an ancestor is hidden
    headers: list[FrameHeader | None]  # per frame
    inherited: list[frozenset[int] | None]  # per frame: "a:"/"c:" ids of it and its ancestors
    chars: np.ndarray  # int64 per frame: characters of the blocks below it
    frame_link_chars: np.ndarray  # int64 per frame: link characters of the blocks below it
    blocks: np.ndarray  # int64 per frame: blocks below it

    def chain(self, block: int) -> list[int]:
        """Frames around a block, outermost first."""
        chain, frame = [], int(self.frame[block])
        while frame >= 0:
            chain.append(frame)
            frame = int(self.parent[frame])
        return chain[::-1]


@dataclass
class BlockTokens:
    """Hashed token ids of the blocks: blocks directly inside the same frame share one row.

    A row's ids (:attr:`ids`) are its ``heads`` entry (the frame's tag and own tokens, its parent's
    child ids), then the sorted "a:"/"c:" ids the frame inherits, cut at MAX_TOKENS_PER_BLOCK.
    Those inherited sets are also kept as a tree of differences (``set_parent``, ``set_added``): a
    frame inherits its parent's set plus the ids it adds, so an embedding bag can sum each id once
    per frame that adds it instead of once per row (:func:`curate.extract_blocks.embedding_sums`).
    """

    heads: list[tuple[int, ...]]  # per row
    inherited: list[frozenset[int]]  # per row: "a:"/"c:" ids of its frame and the frame's ancestors
    row_set: np.ndarray  # int64 per row: its inherited set, an index into set_parent / set_added
    set_parent: np.ndarray  # int64 per distinct set: the set it extends (a lower index), -1 for none
    set_added: list[tuple[int, ...]]  # per distinct set: the ids it adds to its parent set
    row: np.ndarray  # int64 per block: its row of ids
    words: np.ndarray  # int64 [blocks x 2]: hashed first and last word (WORD_BUCKETS where it has none)

    @property
    def ids(self) -> list[tuple[int, ...]]:
        return [self.row_ids(row) for row in range(len(self.heads))]

    def row_ids(self, row: int) -> tuple[int, ...]:
        """One row of :attr:`ids`."""
        return (*self.heads[row], *sorted(self.inherited[row]))[:MAX_TOKENS_PER_BLOCK]

    def per_block(self) -> list[tuple[int, ...]]:
        ids = self.ids
        return [ids[r] for r in self.row.tolist()]
