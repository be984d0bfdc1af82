"""The block segmentation as a plain per-element Python walk over the lxml tree: the oracle for ``curate.blocks``.

``curate.blocks`` reads the same blocks from one XSLT pass (libxslt, C) instead; this walk is the
rule written out element by element (it was the shipped code before that speed-up), kept here so
tests can check on real pages that both cut every page into the same blocks.
"""

from __future__ import annotations

from lxml import etree

from curate.blocks import BLOCK_TAGS, HIDDEN_STYLE, INLINE_TAGS, SKIPPED_TAGS, SPACES, parse_html, value_tokens


def element_header(element) -> tuple[str, tuple[str, ...], bool]:
    """(tag, class/id/role/itemprop tokens, hidden by its own attributes)."""
    tokens: tuple[str, ...] = ()
    for name in ("class", "id", "role", "itemprop"):
        if element.get(name):
            tokens += value_tokens(element.get(name))
    style = element.get("style")
    hidden = element.get("hidden") is not None or element.get("aria-hidden") == "true" or bool(style and HIDDEN_STYLE.search(style))
    return element.tag.lower(), tokens, hidden


class ReferenceWalk:
    """Blocks as (text, link characters, chain of (tag, tokens, hidden) from the outermost frame)."""

    def __init__(self, skipped_tags: frozenset[str]) -> None:
        self.skipped_tags = skipped_tags
        self.stack: list[tuple[str, tuple[str, ...], bool]] = []
        self.blocks: list[tuple[str, int, tuple]] = []
        self.pieces: list[str] = []
        self.link_chars = 0

    def flush(self) -> None:
        text = SPACES.sub(" ", "".join(self.pieces)).strip()
        if text:
            self.blocks.append((text, min(self.link_chars, len(text)), tuple(self.stack)))
        self.pieces, self.link_chars = [], 0

    def add(self, text: str | None, in_link: bool) -> None:
        if text:
            self.pieces.append(text)
            self.link_chars += len(text.strip()) if in_link else 0

    def walk(self, root) -> list[tuple[str, int, tuple]]:
        links = 0
        events = etree.iterwalk(root, events=("start", "end"))
        for event, element in events:
            tag = element.tag.lower() if isinstance(element.tag, str) else None
            if tag is None or tag in self.skipped_tags or tag == "br":
                if event == "start" and tag is not None:
                    events.skip_subtree()
                    self.pieces.append("\n" if tag == "br" else "")
                elif event == "end" and element is not root:
                    self.add(element.tail, links > 0)
                continue
            if event == "start":
                if tag in BLOCK_TAGS:
                    self.flush()
                    self.stack.append(element_header(element))
                links += tag == "a"
                self.add(element.text, links > 0)
                continue
            if tag in BLOCK_TAGS:
                self.flush()
                self.stack.pop()
            links -= tag == "a"
            if tag not in BLOCK_TAGS and tag not in INLINE_TAGS:
                self.pieces.append(" ")
            if element is not root:
                self.add(element.tail, links > 0)
        self.flush()
        return self.blocks


def reference_blocks(html: str) -> list[tuple[str, int, tuple]]:
    root = parse_html(html)
    if root is None:
        return []
    body = root.find("body")
    start = body if body is not None else root
    blocks = ReferenceWalk(SKIPPED_TAGS).walk(start)
    return blocks or ReferenceWalk(SKIPPED_TAGS - {"noscript"}).walk(start)
