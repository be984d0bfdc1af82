"""HTML -> text blocks with cheap per-block features, for the block classifier (``curate.extract_blocks``).

A *block* is a run of text between block-level tag boundaries (``<p>``, ``<div>``, ``<li>``,
``<td>``, headings, ...). Inline markup (``<a>``, ``<span>``, ``<b>``, ...) stays inside the
block; link text is counted so link density can be measured. A *frame* is a block-level
element; every block belongs to the innermost frame open around it.

The page is parsed by lxml (libxml2, C), which copes with broken markup. The tree is then cut
into blocks by an XSLT stylesheet (libxslt, C), which writes one string: frame openings (tag and
the attributes the features read), text (link text marked) and frame closings, separated by
Unicode noncharacters. Python only reads that string, once per frame and text run, never per
inline element, and the features are computed with numpy over the whole page at once.

Features are of two kinds:

* dense numbers per block (length, link density, punctuation, position, the text mass and
  link density of the enclosing containers, the neighbours' length ...), see
  :data:`DENSE_FEATURES`;
* hashed tokens (block tag, ancestor tags, class/id/role/itemprop tokens of the ancestors),
  hashed with CRC-32 into a fixed number of buckets, so the same bytes always give the same
  feature ids, whatever the process or platform; and, in a table of their own, the block's
  first and last word (:func:`edge_word_ids`, hashed with numpy over the whole page).
"""

from __future__ import annotations

import functools
import re
import zlib

import numpy as np
from lxml import etree

from curate import speedups
from curate.block_types import (
    BLOCK_TAGS,
    HASH_BUCKETS,
    HIDDEN_STYLE,
    INLINE_TAGS,
    MAX_TOKENS_PER_ATTRIBUTE,
    MAX_TOKENS_PER_BLOCK,  # noqa: F401 (callers read it from here: models/train_extractor.py)
    SKIPPED_TAGS,
    BlockTokens,
    FrameHeader,
    PageBlocks,
)
from curate.speedups import block_walk

TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
WORD = re.compile(r"\w")
SENTENCE_PUNCTUATION = re.compile(r"[.!?;:,。、，！？；：]")
SENTENCE_END = frozenset(".!?。！？\"'”»)")
SPACES = re.compile(r"\s+")
WORD_BITS = 12
WORD_BUCKETS = 1 << WORD_BITS  # hashed first / last words of a block (a separate embedding table)
EDGE_WORD_CHARS = 12  # characters of a word that its hash reads

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

# Markers in the segmenter's output: noncharacters, never meant to be in text (a page that holds
# one anyway is segmented by a slower stylesheet that deletes them from its text first).
OPEN, FIELD, HEADER_END, CLOSE, LINK, LINK_END = "\ufdd0", "\ufdd1", "\ufdd2", "\ufdd3", "\ufdd4", "\ufdd5"
MARKERS = OPEN + FIELD + HEADER_END + CLOSE + LINK + LINK_END
MARKERS_IN_HTML = re.compile(r"[\ufdd0-\ufdd5]|&#(?:x0*fdd[0-5]|0*6497[6-9]|0*6498[01])", re.IGNORECASE)
BOUNDARY = re.compile(f"([{OPEN}{CLOSE}])")
LINK_TEXT = re.compile(f"{LINK}([^{LINK_END}]*){LINK_END}")


def empty_page() -> PageBlocks:
    none = np.zeros(0, dtype=np.int64)
    return PageBlocks([], none, none, none, none, np.zeros(0, dtype=bool), [], [], none, none, none)


@functools.lru_cache(maxsize=1 << 14)
def value_tokens(value: str) -> tuple[str, ...]:
    """An attribute value (its first 200 characters) split into lower-case word tokens (camelCase split too)."""
    value = CAMEL.sub(" ", value[:200]).lower()
    parts = [t for t in TOKEN_SPLIT.split(value) if 1 < len(t) < 25 and not t.isdigit()]
    return tuple(parts[:MAX_TOKENS_PER_ATTRIBUTE])


class TokenHashes(dict):
    """token -> hashed(prefix + token), filled on first use; cleared when it grows past ``limit`` entries."""

    def __init__(self, prefix: str, limit: int = 1 << 18) -> None:
        super().__init__()
        self.prefix, self.limit = prefix, limit

    def __missing__(self, token: str) -> int:
        if len(self) >= self.limit:
            self.clear()
        value = self[token] = hashed(self.prefix + token)
        return value


OWN_IDS, CHILD_IDS, INHERITED_IDS = TokenHashes("c0:"), TokenHashes("c1:"), TokenHashes("c:")


@functools.lru_cache(maxsize=1 << 15)
def frame_header(header: str) -> FrameHeader:
    """A frame's header as the segmenter writes it: ``tag[FIELD class FIELD id FIELD role FIELD itemprop
    FIELD style [FIELD]]``, the last FIELD when the element has ``hidden`` or ``aria-hidden="true"``.

    Tokens come from class, id, role and itemprop, in that order.
    """
    tag, *fields = header.split(FIELD)
    tokens: list[str] = []
    for value in fields[:4]:
        if value:
            tokens.extend(value_tokens(value))
    hidden = len(fields) > 5 or (len(fields) > 4 and HIDDEN_STYLE.search(fields[4]) is not None)
    return FrameHeader(
        tag,
        tuple(map(OWN_IDS.__getitem__, tokens)),
        (hashed("pt:" + tag), *map(CHILD_IDS.__getitem__, tokens)),
        frozenset([hashed("a:" + tag), *map(INHERITED_IDS.__getitem__, tokens)]),
        hidden,
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


def stylesheet(skipped_tags: frozenset[str], clean: bool) -> str:
    """The segmenter: frames, text and link text of ``<body>`` (else the root) as one marked-up string.

    ``clean`` deletes the marker characters from text and attributes first (slower; for the rare
    page that holds one).
    """

    def value(select: str) -> str:
        return f"translate({select}, '{MARKERS}', '')" if clean else select

    attributes = f", '{FIELD}', ".join(value(f"@{name}") for name in ("class", "id", "role", "itemprop", "style"))
    header = (
        f'<xsl:text>{OPEN}</xsl:text><xsl:value-of select="{value("name()")}"/>'
        f'<xsl:if test="@*"><xsl:value-of select="concat(\'{FIELD}\', {attributes})"/>'
        f"<xsl:if test=\"@hidden or @aria-hidden='true'\"><xsl:text>{FIELD}</xsl:text></xsl:if></xsl:if>"
        f"<xsl:text>{HEADER_END}</xsl:text>"
    )
    text = f'<xsl:value-of select="{value(".")}"/>'
    # Inside a link every template runs in mode "link", where each text node is wrapped in LINK ... LINK_END.
    templates = [
        templates_for_mode("", skipped_tags, header, text),
        templates_for_mode("link", skipped_tags, header, f"<xsl:text>{LINK}</xsl:text>{text}<xsl:text>{LINK_END}</xsl:text>"),
    ]
    return f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text" encoding="UTF-8"/>
<xsl:template match="/"><xsl:choose><xsl:when test="*/body"><xsl:apply-templates select="(*/body)[1]"/></xsl:when>
<xsl:otherwise><xsl:apply-templates select="*"/></xsl:otherwise></xsl:choose></xsl:template>
{"".join(templates)}
</xsl:stylesheet>"""


def templates_for_mode(mode: str, skipped_tags: frozenset[str], header: str, text: str) -> str:
    inner = '<xsl:apply-templates mode="link"/>' if mode else "<xsl:apply-templates/>"
    mode = f' mode="{mode}"' if mode else ""
    inline = "|".join(sorted(INLINE_TAGS - {"a"}))
    return f"""
<xsl:template match="{"|".join(sorted(skipped_tags))}"{mode}/>
<xsl:template match="br"{mode}><xsl:text>&#10;</xsl:text></xsl:template>
<xsl:template match="{"|".join(sorted(BLOCK_TAGS))}"{mode}>{header}{inner}<xsl:text>{CLOSE}</xsl:text></xsl:template>
<xsl:template match="{inline}"{mode}>{inner}</xsl:template>
<xsl:template match="a"{mode}><xsl:apply-templates mode="link"/></xsl:template>
<xsl:template match="*"{mode}>{inner}<xsl:text> </xsl:text></xsl:template>
<xsl:template match="text()"{mode}>{text}</xsl:template>"""


@functools.lru_cache(maxsize=8)
def segmenter(skipped_tags: frozenset[str], clean: bool) -> etree.XSLT:
    # libxslt recurses once per element; libxml2 already stops pages at 2,048 levels
    etree.XSLT.set_global_max_depth(5000)
    return etree.XSLT(etree.XML(stylesheet(skipped_tags, clean)))


def page_blocks(html: str) -> PageBlocks:
    """Blocks of a page in document order (no features yet).

    ``<noscript>`` is skipped, unless the page has no text anywhere else: some sites (Discourse
    forums, for one) serve their whole content to non-JavaScript readers inside it.
    """
    root = parse_html(html)
    if root is None:
        return empty_page()
    if speedups.enabled("block_walk"):
        page = block_walk.page_blocks(root, html)  # the same blocks without the XSLT pass; None: run it
        if page is not None:
            return page
    clean = MARKERS_IN_HTML.search(html) is not None
    page = read_segments(str(segmenter(SKIPPED_TAGS, clean)(root)))
    if not page.texts:
        page = read_segments(str(segmenter(SKIPPED_TAGS - {"noscript"}, clean)(root)))
    return page


def read_segments(stream: str) -> PageBlocks:
    """Blocks and frames from the segmenter's string: one cheap step per frame opening, closing and text run."""
    parts = BOUNDARY.split(stream)
    parent: list[int] = []
    heads: list[str] = []
    runs = [parts[0]]  # text runs, each in the frame open at that point
    owners = [-1]
    current = -1
    for index in range(1, len(parts), 2):
        text = parts[index + 1]
        if parts[index] == CLOSE:
            current = parent[current]
        else:
            head, _, text = text.partition(HEADER_END)
            parent.append(current)
            heads.append(head)
            current = len(parent) - 1
        runs.append(text)
        owners.append(current)
    kept = [i for i, text in enumerate(runs) if text and not text.isspace()]
    texts, link_chars, keep = block_texts([runs[i] for i in kept])
    block_frame = [owners[kept[i]] for i in keep]
    return PageBlocks(
        texts,
        np.asarray(link_chars, dtype=np.int64),
        np.asarray(block_frame, dtype=np.int64),
        *frames_above(block_frame, texts, link_chars, parent, heads),
    )


def block_texts(runs: list[str]) -> tuple[list[str], list[int], list[int]]:
    """(texts with whitespace collapsed, link characters, index of the run) of the runs that hold text.

    Link characters are the stripped lengths of the text nodes inside links, counted before collapsing.
    """
    joined = MARKERS[0].join(runs)  # one pass of the regular expressions over the whole page
    link_chars = [0] * len(runs)
    if LINK in joined:
        link_chars = [sum(len(piece.strip()) for piece in LINK_TEXT.findall(run)) if LINK in run else 0 for run in runs]
        joined = joined.replace(LINK, "").replace(LINK_END, "")
    collapsed = [text.strip() for text in SPACES.sub(" ", joined).split(MARKERS[0])]
    keep = [i for i, text in enumerate(collapsed) if text]
    texts = [collapsed[i] for i in keep]
    return texts, [min(link_chars[i], len(t)) for i, t in zip(keep, texts)], keep


def frames_above(block_frame: list[int], texts: list[str], link_chars: list[int], parent: list[int], heads: list[str]) -> tuple:
    """Per frame: parent, depth, hidden, header, inherited ids and totals, filled in for the frames that hold text."""
    count = len(parent)
    needed = [False] * count
    for frame in set(block_frame):
        while frame >= 0 and not needed[frame]:
            needed[frame] = True
            frame = parent[frame]
    depth, hidden = [0] * count, [False] * count
    headers: list[FrameHeader | None] = [None] * count
    inherited: list[frozenset[int] | None] = [None] * count
    chars, links, blocks = [0] * count, [0] * count, [0] * count
    order = [frame for frame in range(count) if needed[frame]]
    for frame in order:  # parents before children
        header = headers[frame] = frame_header(heads[frame])
        above = parent[frame]
        if above >= 0:
            upper = inherited[above]
            inherited[frame] = upper if header.added <= upper else upper | header.added
            hidden[frame] = hidden[above] or header.hidden
            depth[frame] = depth[above] + 1
        else:
            inherited[frame], hidden[frame] = header.added, header.hidden
    for frame, text, link in zip(block_frame, texts, link_chars):
        if frame >= 0:
            chars[frame] += len(text)
            links[frame] += link
            blocks[frame] += 1
    for frame in reversed(order):  # children before parents
        above = parent[frame]
        if above >= 0:
            chars[above] += chars[frame]
            links[above] += links[frame]
            blocks[above] += blocks[frame]
    as_array = np.asarray
    return (
        as_array(parent, dtype=np.int64),
        as_array(depth, dtype=np.int64),
        as_array(hidden, dtype=bool),
        headers,
        inherited,
        as_array(chars, dtype=np.int64),
        as_array(links, dtype=np.int64),
        as_array(blocks, dtype=np.int64),
    )


@functools.lru_cache(maxsize=1 << 16)
def hashed(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & (HASH_BUCKETS - 1)


def block_tokens(page: PageBlocks, words: np.ndarray) -> BlockTokens:
    """Per block: its element's tag and tokens, its parent's, all ancestors' (at most 64), built once per frame."""
    if speedups.enabled("block_walk"):
        tokens = block_walk.block_tokens(page, words)  # the same BlockTokens from compiled loops; None: run these
        if tokens is not None:
            return tokens
    sets, set_parent, set_added = inherited_sets(page)
    frames, rows = np.unique(page.frame, return_inverse=True)
    heads, inherited, row_set = [], [], []
    for frame in frames.tolist():
        if frame < 0:
            heads.append(())
            inherited.append(frozenset())
            row_set.append(-1)
            continue
        header = page.headers[frame]
        above = int(page.parent[frame])
        parent_ids = page.headers[above].child_ids if above >= 0 else ()
        heads.append((hashed("t:" + header.tag), *header.own_ids, *parent_ids))
        inherited.append(page.inherited[frame])
        row_set.append(sets[id(page.inherited[frame])])
    row_sets = np.asarray(row_set, dtype=np.int64)
    return BlockTokens(heads, inherited, row_sets, set_parent, set_added, rows.reshape(-1).astype(np.int64), words)


def inherited_sets(page: PageBlocks) -> tuple[dict[int, int], np.ndarray, list[tuple[int, ...]]]:
    """The distinct inherited id sets of the page's frames as a tree: (index of each set by ``id()``, parent set,
    ids added to the parent set). Parents come before children, as frames do."""
    sets: dict[int, int] = {}
    set_parent: list[int] = []
    set_added: list[tuple[int, ...]] = []
    parent, inherited = page.parent.tolist(), page.inherited
    for frame, ids in enumerate(inherited):
        if ids is None or id(ids) in sets:
            continue
        above = parent[frame]
        upper = inherited[above] if above >= 0 else None
        sets[id(ids)] = len(set_parent)
        if upper is None:
            set_parent.append(-1)
            set_added.append(tuple(ids))
        else:
            set_parent.append(sets[id(upper)])
            set_added.append(tuple(ids - upper))
    return sets, np.asarray(set_parent, dtype=np.int64), set_added


# Character classes, per code point, filled in as code points are first seen: exactly what the
# per-block regular expressions and str methods would say, but counted with numpy over a whole page.
IS_WORD, IS_DIGIT, IS_UPPER, IS_PUNCTUATION, IS_SPACE, IS_SENTENCE_END, KNOWN = 1, 2, 4, 8, 16, 32, 128
CHAR_CLASSES = np.zeros(0x110000, dtype=np.uint8)


def char_class(char: str) -> int:
    return (
        KNOWN
        | IS_WORD * (WORD.match(char) is not None)
        | IS_DIGIT * char.isdigit()
        | IS_UPPER * char.isupper()
        | IS_PUNCTUATION * (SENTENCE_PUNCTUATION.match(char) is not None)
        | IS_SPACE * (char == " ")
        | IS_SENTENCE_END * (char in SENTENCE_END)
    )


def char_classes(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(class bits and code points of every character of the texts joined by newlines, start offset and length of each text)."""
    joined = "\n".join(texts)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    classes = CHAR_CLASSES[points]
    unknown = (classes & KNOWN) == 0
    if unknown.any():
        for point in np.unique(points[unknown]).tolist():
            CHAR_CLASSES[point] = char_class(chr(point))
        classes = CHAR_CLASSES[points]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    return classes, points, starts, lengths


def text_counts(texts: list[str]) -> dict[str, np.ndarray]:
    """Per block: words (runs of ``\\w``), digits, capitals, sentence punctuation, spaces, its last character's
    class, and ("edge_words", [blocks x 2]) the hashes of its first and last word (:func:`edge_word_ids`)."""
    classes, points, starts, lengths = char_classes(texts)
    word = (classes & IS_WORD) != 0
    word_starts = word & ~np.concatenate(([False], word[:-1]))
    counts = {
        name: np.add.reduceat(mask, starts, dtype=np.int64)
        for name, mask in (
            ("words", word_starts),
            ("digits", (classes & IS_DIGIT) != 0),
            ("upper", (classes & IS_UPPER) != 0),
            ("punctuation", (classes & IS_PUNCTUATION) != 0),
            ("spaces", (classes & IS_SPACE) != 0),
        )
    }
    counts["chars"] = lengths
    counts["sentence_end"] = (classes[starts + lengths - 1] & IS_SENTENCE_END) != 0
    counts["edge_words"] = edge_word_ids(word_starts, classes, points, starts, lengths)
    return counts


# Horner's rule for EDGE_WORD_CHARS characters as one dot product: the weight of each place, mod 2**32
EDGE_WORD_POWERS = np.array([pow(1000003, EDGE_WORD_CHARS - 1 - k, 1 << 32) for k in range(EDGE_WORD_CHARS)], dtype=np.uint32)
EDGE_WORD_SALTS = np.array([0x5BD1E995, 0x27D4EB2F], dtype=np.uint32)  # first and last word hash apart


def edge_word_ids(word_starts: np.ndarray, classes: np.ndarray, points: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[blocks x 2]: hashed first and last word of each block, WORD_BUCKETS for a block without a word.

    Boilerplate announces itself in its first or last word (copyright, share, cookies, subscribe,
    related, comments, a date). A word's hash reads its first EDGE_WORD_CHARS code points, ASCII
    lower-cased, every digit as 0 (so years and counts share a bucket): a multiplicative hash mod
    2**32 over code points, computed for all blocks at once, so the same text gives the same ids
    anywhere. ``word_starts`` marks the characters that begin a word.
    """
    word_starts = np.flatnonzero(word_starts)
    first = np.searchsorted(word_starts, starts)  # texts are joined by newlines: no word spans two blocks
    last = np.searchsorted(word_starts, starts + lengths) - 1
    has_word = first <= last
    if not has_word.any():
        return np.full((len(starts), 2), WORD_BUCKETS, dtype=np.int64)
    picks = np.where(has_word[:, None], np.stack((first, last), axis=1), 0).reshape(-1)
    at = word_starts[picks][:, None] + np.arange(EDGE_WORD_CHARS)  # [2 x blocks, EDGE_WORD_CHARS] positions read
    valid = at < len(points)
    at = np.minimum(at, len(points) - 1)
    kinds = classes[at]
    inside = np.logical_and.accumulate(valid & ((kinds & IS_WORD) != 0), axis=1)  # the word goes on
    chars = points[at]
    chars = np.where((kinds & IS_DIGIT) != 0, np.uint32(48), chars | (((chars - np.uint32(65)) < 26) * np.uint32(32)))
    value = ((chars + np.uint32(1)) * inside).astype(np.uint32) @ EDGE_WORD_POWERS
    value = (value.reshape(-1, 2) ^ EDGE_WORD_SALTS) * np.uint32(0x9E3779B1)
    return np.where(has_word[:, None], (value >> np.uint32(32 - WORD_BITS)).astype(np.int64), WORD_BUCKETS)


def block_features(page: PageBlocks) -> tuple[np.ndarray, BlockTokens]:
    """(dense features [blocks x len(DENSE_FEATURES)] float32, hashed token ids of the blocks)."""
    count = len(page.texts)
    if not count:
        none = np.zeros(0, dtype=np.int64)
        return np.zeros((0, len(DENSE_FEATURES)), dtype=np.float32), BlockTokens([], [], none, none, [], none, none.reshape(0, 2))
    c = text_counts(page.texts)
    chars = c["chars"].astype(np.float64)
    links = page.link_chars.astype(np.float64)
    n_words = np.maximum(c["words"], 1)
    total_chars = float(chars.sum()) or 1.0
    first, second, third = ancestors(page)
    has_frame = first >= 0
    # a block with fewer than three frames above it reads its nearest frame for the missing ones
    second = np.where(second >= 0, second, first)
    third = np.where(third >= 0, third, second)
    columns = [
        np.log1p(chars),
        np.log1p(c["words"]),
        links / chars,
        c["punctuation"] / n_words,
        c["digits"] / chars,
        c["upper"] / chars,
        np.minimum((chars - c["spaces"]) / n_words, 20.0) / 10.0,
        c["sentence_end"].astype(np.float64),
        np.arange(count) / max(count - 1, 1),
        (np.cumsum(chars) - chars) / total_chars,
        np.minimum(np.where(has_frame, page.depth[first] + 1, 0), 40) / 20.0,
        np.where(has_frame, page.hidden[first], False).astype(np.float64),
        *frame_features(page, first, total_chars),
        *frame_features(page, second, total_chars),
        *ancestor3_features(page, third, total_chars),
        np.where(has_frame, np.log1p(page.blocks[first]), 0.0),
        *neighbour_features(chars, links, 1),
        *neighbour_features(chars, links, -1),
        np.full(count, np.log1p(total_chars)),
        np.full(count, links.sum() / total_chars),
        np.full(count, np.log1p(count)),
    ]
    dense = np.stack(columns, axis=1).astype(np.float32)
    return dense, block_tokens(page, c["edge_words"])


def ancestors(page: PageBlocks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block: its innermost frame, that frame's parent and grandparent (-1 where there is none)."""
    first = page.frame
    with_parent = np.concatenate((page.parent, [-1]))  # index -1 reads the appended "none"
    second = with_parent[first]
    return first, second, with_parent[second]


def frame_features(page: PageBlocks, frame: np.ndarray, total_chars: float) -> list[np.ndarray]:
    """log characters, link density and share of the page's characters of each block's given frame (0 without one)."""
    present = frame >= 0
    safe = np.where(present, frame, 0)
    chars = page.chars[safe].astype(np.float64) if len(page.chars) else np.zeros(len(frame))
    links = page.frame_link_chars[safe].astype(np.float64) if len(page.chars) else np.zeros(len(frame))
    return [
        np.where(present, np.log1p(chars), 0.0),
        np.where(present, links / np.maximum(chars, 1.0), 0.0),
        np.where(present, chars / total_chars, 0.0),
    ]


def ancestor3_features(page: PageBlocks, frame: np.ndarray, total_chars: float) -> list[np.ndarray]:
    """Share of the page and link density of each block's third frame."""
    _, density, share = frame_features(page, frame, total_chars)
    return [share, density]


def neighbour_features(chars: np.ndarray, links: np.ndarray, shift: int) -> list[np.ndarray]:
    """log length and link density of the previous (shift 1) or next (shift -1) block, 0 at the page's ends."""
    length = np.zeros_like(chars)
    density = np.zeros_like(chars)
    if shift == 1:
        length[1:], density[1:] = np.log1p(chars[:-1]), links[:-1] / chars[:-1]
    else:
        length[:-1], density[:-1] = np.log1p(chars[1:]), links[1:] / chars[1:]
    return [length, density]
