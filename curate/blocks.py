"""HTML -> text blocks with cheap per-block features, for the block classifier (``curate.extract_blocks``).

A *block* is a run of text between block-level tag boundaries (``<p>``, ``<div>``, ``<li>``,
``<td>``, headings, ...). Inline markup (``<a>``, ``<span>``, ``<b>``, ...) stays inside the
block; link text is counted so link density can be measured. Everything is read in one pass
over an lxml (libxml2) tree: libxml2 parses in C and copes with broken markup, and a single
Python walk keeps the cost per page to a few milliseconds.

Features are of two kinds:

* dense numbers per block (length, link density, punctuation, position, the text mass and
  link density of the enclosing containers, the neighbours' length ...), see
  :data:`DENSE_FEATURES`;
* hashed tokens (block tag, ancestor tags, class/id/role/itemprop tokens of the ancestors),
  hashed with CRC-32 into a fixed number of buckets, so the same bytes always give the same
  feature ids, whatever the process or platform.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from dataclasses import dataclass

import numpy as np
from lxml import etree

SKIPPED_TAGS = frozenset(
    "script style noscript template svg math iframe head title meta link button select option "
    "textarea input canvas video audio object embed map applet frameset frame datalist".split()
)
BLOCK_TAGS = frozenset(
    "html body p div section article main aside header footer nav li ul ol dl dt dd h1 h2 h3 h4 h5 h6 "
    "table thead tbody tfoot tr td th caption blockquote pre figure figcaption form fieldset legend "
    "address details summary center menu dialog hgroup hr".split()
)
INLINE_TAGS = frozenset(
    "a img span b i em strong code sub sup small label font u s abbr cite q mark time var kbd bdi bdo "
    "wbr del ins dfn data ruby rt rp tt big strike nobr".split()
)
TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
WORD = re.compile(r"\w+")
SENTENCE_PUNCTUATION = re.compile(r"[.!?;:,。、，！？；：]")
SPACES = re.compile(r"\s+")
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
HASH_BUCKETS = 1 << 13
MAX_TOKENS_PER_ATTRIBUTE = 8
MAX_TOKENS_PER_BLOCK = 64

DENSE_FEATURES = (
    "log_chars",
    "log_words",
    "link_density",
    "punctuation_per_word",
    "digit_ratio",
    "upper_ratio",
    "mean_word_length",
    "ends_like_sentence",
    "position",
    "chars_before",
    "depth",
    "hidden",
    "parent_log_chars",
    "parent_link_density",
    "parent_share",
    "grandparent_log_chars",
    "grandparent_link_density",
    "grandparent_share",
    "ancestor3_share",
    "ancestor3_link_density",
    "parent_log_blocks",
    "previous_log_chars",
    "previous_link_density",
    "next_log_chars",
    "next_link_density",
    "page_log_chars",
    "page_link_density",
    "page_log_blocks",
)


@dataclass
class Frame:
    """A block-level element: its tag, its hashed tokens and, after the walk, the text below it."""

    tag: str
    parent: int  # index of the enclosing frame, -1 for the outermost
    own_ids: tuple[int, ...]  # "c0:" tokens, for blocks directly inside this element
    child_ids: tuple[int, ...]  # "t:" tag, "c1:" tokens, for blocks of its child elements
    inherited: frozenset[int]  # "a:" tags and "c:" tokens of this element and its ancestors
    hidden: bool  # this element or an ancestor is hidden
    chars: int = 0
    link_chars: int = 0
    blocks: int = 0
    block_ids: tuple[int, ...] | None = None


@dataclass
class Block:
    text: str
    link_chars: int
    frames: tuple[int, ...]  # indices into PageBlocks.frames, outermost first


@dataclass
class PageBlocks:
    blocks: list[Block]
    frames: list[Frame]


def attribute_tokens(element) -> tuple[str, ...]:
    """class, id, role and itemprop values split into lower-case word tokens (camelCase split too)."""
    tokens: tuple[str, ...] = ()
    for name in ("class", "id", "role", "itemprop"):
        value = element.get(name)
        if value:
            tokens += value_tokens(value[:200])
    return tokens


@functools.lru_cache(maxsize=1 << 14)
def value_tokens(value: str) -> tuple[str, ...]:
    value = CAMEL.sub(" ", value).lower()
    parts = [t for t in TOKEN_SPLIT.split(value) if 1 < len(t) < 25 and not t.isdigit()]
    return tuple(parts[:MAX_TOKENS_PER_ATTRIBUTE])


def is_hidden(element) -> bool:
    if element.get("hidden") is not None or element.get("aria-hidden") == "true":
        return True
    style = element.get("style")
    return bool(style and HIDDEN_STYLE.search(style))


@functools.lru_cache(maxsize=1 << 14)
def frame_token_ids(tag: str, tokens: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...], frozenset[int]]:
    """(own "c0:" ids, "pt:"/"c1:" ids for its children, "a:"/"c:" ids it adds to its descendants)."""
    return (
        tuple(hashed("c0:" + t) for t in tokens),
        (hashed("pt:" + tag),) + tuple(hashed("c1:" + t) for t in tokens),
        frozenset([hashed("a:" + tag), *(hashed("c:" + t) for t in tokens)]),
    )


class PageTooDeep(Exception):
    """The page nests elements deeper than libxml2 can hold (its tree would lose text)."""


def parse_html(html: str):
    """lxml root element of a page, or None. Bytes go in as UTF-8 so declared encodings never clash.

    Raises :class:`PageTooDeep` when libxml2 hits its nesting limit.
    """
    parser = etree.HTMLParser(remove_comments=True, remove_pis=True, huge_tree=True, recover=True, encoding="utf-8")
    data = html.encode("utf-8", "replace")
    if not data.strip():
        return None
    try:
        root = etree.fromstring(data, parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    last = parser.error_log.last_error
    if last is not None and last.type_name == "ERR_RESOURCE_LIMIT":
        # libxml2 stops at 2048 levels of nesting and silently drops the rest of the page
        raise PageTooDeep(last.message)
    return root


class BlockWalker:
    """One pass over the tree collecting blocks (text runs) and frames (open block elements)."""

    def __init__(self, skipped_tags: frozenset[str] = SKIPPED_TAGS) -> None:
        self.skipped_tags = skipped_tags
        self.frames: list[Frame] = []
        self.stack: list[int] = []
        self.blocks: list[Block] = []
        self.pieces: list[str] = []
        self.piece_link_chars = 0

    def flush(self) -> None:
        if not self.pieces:
            return
        text = SPACES.sub(" ", "".join(self.pieces)).strip()
        self.pieces = []
        link_chars, self.piece_link_chars = self.piece_link_chars, 0
        if text:
            link_chars = min(link_chars, len(text))
            self.blocks.append(Block(text, link_chars, tuple(self.stack)))
            if self.stack:
                frame = self.frames[self.stack[-1]]
                frame.chars += len(text)
                frame.link_chars += link_chars
                frame.blocks += 1

    def add_text(self, text: str | None, in_link: bool) -> None:
        if text:
            self.pieces.append(text)
            if in_link:
                self.piece_link_chars += len(text.strip())

    def open_frame(self, tag: str, element) -> None:
        has_attributes = len(element.attrib) > 0
        tokens = attribute_tokens(element) if has_attributes else ()
        own_ids, child_ids, added = frame_token_ids(tag, tokens)
        parent_index = self.stack[-1] if self.stack else -1
        parent = self.frames[parent_index] if self.stack else None
        if parent is None:
            inherited, hidden = added, False
        else:
            inherited = parent.inherited if added <= parent.inherited else parent.inherited | added
            hidden = parent.hidden
        hidden = hidden or (has_attributes and is_hidden(element))
        self.frames.append(Frame(tag, parent_index, own_ids, child_ids, inherited, hidden))
        self.stack.append(len(self.frames) - 1)

    def close_frame(self) -> None:
        """Pass the closed element's text totals up to its parent."""
        frame = self.frames[self.stack.pop()]
        if self.stack:
            parent = self.frames[self.stack[-1]]
            parent.chars += frame.chars
            parent.link_chars += frame.link_chars
            parent.blocks += frame.blocks

    def walk(self, root) -> None:
        """Event walk (no recursion, so any nesting depth is fine)."""
        link_depth = 0
        events = etree.iterwalk(root, events=("start", "end"))
        for event, element in events:
            tag = element.tag
            # skipped subtrees (and comments, processing instructions) still get their "end" event
            if not isinstance(tag, str):
                if event == "end":
                    self.add_text(element.tail, link_depth > 0)
                continue
            tag = tag.lower()
            if tag in self.skipped_tags or tag == "br":
                if event == "start":
                    events.skip_subtree()
                    if tag == "br":
                        self.pieces.append("\n")
                elif element is not root:
                    self.add_text(element.tail, link_depth > 0)
                continue
            if event == "start":
                if tag in BLOCK_TAGS:
                    self.flush()
                    self.open_frame(tag, element)
                elif tag == "a":
                    link_depth += 1
                self.add_text(element.text, link_depth > 0)
                continue
            if tag in BLOCK_TAGS:
                self.flush()
                self.close_frame()
            elif tag == "a":
                link_depth -= 1
            elif tag not in INLINE_TAGS:
                # other elements (custom elements, <picture> ...) end their text with a space
                self.pieces.append(" ")
            if element is not root:
                self.add_text(element.tail, link_depth > 0)


def page_blocks(html: str) -> PageBlocks:
    """Blocks of a page in document order (no features yet).

    ``<noscript>`` is skipped, unless the page has no text anywhere else: some sites (Discourse
    forums, for one) serve their whole content to non-JavaScript readers inside it.
    """
    root = parse_html(html)
    if root is None:
        return PageBlocks([], [])
    body = root.find("body")
    start = body if body is not None else root
    page = walk_blocks(start, SKIPPED_TAGS)
    if not page.blocks:
        page = walk_blocks(start, SKIPPED_TAGS - {"noscript"})
    return page


def walk_blocks(start, skipped_tags: frozenset[str]) -> PageBlocks:
    walker = BlockWalker(skipped_tags)
    walker.walk(start)
    walker.flush()
    while walker.stack:  # frames left open when the walk started below <html>
        walker.close_frame()
    return PageBlocks(walker.blocks, walker.frames)


@functools.lru_cache(maxsize=1 << 16)
def hashed(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & (HASH_BUCKETS - 1)


def block_token_ids(block: Block, frames: list[Frame]) -> tuple[int, ...]:
    """Hashed tokens of a block: its element's tag and tokens, its parent's, all ancestors' (at most 64).

    Every block directly inside the same element has the same tokens, so they are built once per element.
    """
    if not block.frames:
        return ()
    frame = frames[block.frames[-1]]
    if frame.block_ids is None:
        ids = [hashed("t:" + frame.tag), *frame.own_ids]
        if frame.parent >= 0:
            ids.extend(frames[frame.parent].child_ids)
        ids.extend(sorted(frame.inherited))
        frame.block_ids = tuple(ids[:MAX_TOKENS_PER_BLOCK])
    return frame.block_ids


def block_features(page: PageBlocks) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """(dense features [blocks x len(DENSE_FEATURES)] float32, hashed token ids per block)."""
    blocks, frames = page.blocks, page.frames
    total_chars = sum(len(b.text) for b in blocks) or 1
    total_links = sum(b.link_chars for b in blocks)
    count = len(blocks)
    page_features = [math.log1p(total_chars), total_links / total_chars, math.log1p(count)]
    rows = []
    token_ids = []
    chars_before = 0
    for position, block in enumerate(blocks):
        text = block.text
        chars = len(text)
        words = WORD.findall(text)
        n_words = len(words) or 1
        chain = block.frames
        parent = frames[chain[-1]] if chain else None
        grandparent = frames[chain[-2]] if len(chain) > 1 else parent
        ancestor3 = frames[chain[-3]] if len(chain) > 2 else grandparent
        row = [
            math.log1p(chars),
            math.log1p(len(words)),
            block.link_chars / chars,
            len(SENTENCE_PUNCTUATION.findall(text)) / n_words,
            sum(map(str.isdigit, text)) / chars,
            sum(map(str.isupper, text)) / chars,
            min((chars - text.count(" ")) / n_words, 20.0) / 10.0,
            float(text[-1] in ".!?。！？\"'”»)"),
            position / max(count - 1, 1),
            chars_before / total_chars,
            min(len(chain), 40) / 20.0,
            float(parent.hidden) if parent else 0.0,
        ]
        row += frame_features(parent, total_chars)
        row += frame_features(grandparent, total_chars)
        row += [
            (ancestor3.chars / total_chars) if ancestor3 else 0.0,
            (ancestor3.link_chars / max(ancestor3.chars, 1)) if ancestor3 else 0.0,
            math.log1p(parent.blocks) if parent else 0.0,
        ]
        row += neighbour_features(blocks[position - 1] if position else None)
        row += neighbour_features(blocks[position + 1] if position + 1 < count else None)
        row += page_features
        rows.append(row)
        token_ids.append(block_token_ids(block, frames))
        chars_before += chars
    dense = np.asarray(rows, dtype=np.float32).reshape(count, len(DENSE_FEATURES))
    return dense, token_ids


def frame_features(frame: Frame | None, total_chars: int) -> list[float]:
    if frame is None:
        return [0.0, 0.0, 0.0]
    return [math.log1p(frame.chars), frame.link_chars / max(frame.chars, 1), frame.chars / total_chars]


def neighbour_features(block: Block | None) -> list[float]:
    if block is None:
        return [0.0, 0.0]
    return [math.log1p(len(block.text)), block.link_chars / len(block.text)]
