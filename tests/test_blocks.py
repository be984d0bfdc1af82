"""curate.blocks: cutting pages into text blocks and their features."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.blocks import (
    DENSE_FEATURES,
    EDGE_WORD_CHARS,
    HASH_BUCKETS,
    WORD_BITS,
    WORD_BUCKETS,
    PageTooDeep,
    block_features,
    frame_header,
    hashed,
    page_blocks,
    value_tokens,
)
from curate.warc import decode_html, read_warc

from blocks_reference import reference_blocks
from extract_pages import DATA, EXPECTATIONS, page

PAGE = (
    "<html><head><title>T</title><style>p{}</style></head><body>"
    '<div class="mainContent" id="post-body"><h1>Title</h1>'
    '<p>Hello <a href="x">link</a> world.<br>line two<!-- note --> end</p>tail text<script>var x;</script> after'
    '<ul><li><a href="/">Home</a></li><li>About</li></ul></div></body></html>'
)


def chains(page):
    return [[page.headers[i].tag for i in page.chain(block)] for block in range(len(page.texts))]


def test_blocks_text_links_and_frames():
    page = page_blocks(PAGE)
    assert page.texts == ["Title", "Hello link world. line two end", "tail text after", "Home", "About"]
    assert page.link_chars.tolist() == [0, 4, 0, 4, 0]
    assert chains(page) == [
        ["body", "div", "h1"],
        ["body", "div", "p"],
        ["body", "div"],
        ["body", "div", "ul", "li"],
        ["body", "div", "ul", "li"],
    ]
    div = 1
    assert page.headers[div].own_ids == tuple(hashed("c0:" + t) for t in ("main", "content", "post", "body"))
    assert (page.chars[div], page.frame_link_chars[div], page.blocks[div]) == (sum(map(len, page.texts)), 8, 5)
    assert [page.chars[i] for i in page.chain(1)] == [page.chars[div], page.chars[div], 30]


def test_attribute_tokens_split_words_and_camel_case():
    assert value_tokens("articleBody entry_content x") == ("article", "body", "entry", "content")
    assert value_tokens("c-123") == ()  # one-letter and digit-only tokens say nothing
    header = frame_header("div\ufdd1articleBody\ufdd1c-123\ufdd1main\ufdd1text\ufdd1color: red")
    tokens = ("article", "body", "main", "text")
    assert header.own_ids == tuple(hashed("c0:" + t) for t in tokens) and not header.hidden
    assert header.child_ids == (hashed("pt:div"), *(hashed("c1:" + t) for t in tokens))
    assert frame_header("li\ufdd1\ufdd1\ufdd1\ufdd1\ufdd1DISPLAY : None").hidden
    assert frame_header("li\ufdd1\ufdd1\ufdd1\ufdd1\ufdd1\ufdd1").hidden  # hidden / aria-hidden="true"


def test_features_shape_and_values():
    page = page_blocks(PAGE)
    dense, tokens = block_features(page)
    assert dense.shape == (5, len(DENSE_FEATURES)) and dense.dtype == np.float32
    link_density = dense[:, DENSE_FEATURES.index("link_density")]
    assert link_density.tolist() == np.array([0.0, 4 / 30, 0.0, 1.0, 0.0], dtype=np.float32).tolist()
    assert dense[0, DENSE_FEATURES.index("position")] == 0.0 and dense[4, DENSE_FEATURES.index("position")] == 1.0
    per_block = tokens.per_block()
    assert all(0 <= t < HASH_BUCKETS for ids in per_block for t in ids)
    assert hashed("t:p") in per_block[1] and hashed("c:content") in per_block[1]
    assert per_block[3] == per_block[4]  # two <li> of one list: same context, same tokens


HASHES = [5851, 2920, 6624]  # zlib.crc32 of the token, low 13 bits


def test_hashes_are_fixed():
    # CRC-32, so feature ids never depend on PYTHONHASHSEED or the platform
    assert [hashed(t) for t in ("t:p", "c:comment", "a:nav")] == HASHES


def test_empty_and_textless_pages_have_no_blocks():
    assert page_blocks("").texts == []
    assert page_blocks("   ").texts == []
    assert page_blocks("<html><body><script>x()</script><img src=a></body></html>").texts == []


def test_noscript_is_read_only_when_the_page_has_no_other_text():
    inside = "<noscript><p>Crawler copy of the thread</p></noscript>"
    assert page_blocks(f"<html><body><p>Visible text</p>{inside}</body></html>").texts == ["Visible text"]
    assert page_blocks(f"<html><body><div id=app></div>{inside}</body></html>").texts == ["Crawler copy of the thread"]


def test_a_button_holding_an_unclosed_div_does_not_swallow_the_page():
    # libxml2 nests the rest of this page inside the <button> (the shape of a real Dotdash Meredith
    # menu button); a skipped <button> used to take the article with it
    html = (
        '<html><body><header><a href="#main">Skip to content</a><button class="menu-button">'
        '<span>Menu</span><div class="inner"><div></button></header>'
        "<main><article><p>The article text itself.</p></article></main></body></html>"
    )
    page = page_blocks(html)
    assert page.texts == ["Skip to content", "Menu", "The article text itself."]
    assert "button" in chains(page)[2]


def test_deep_nesting_and_unclosed_tags():
    deep = "<div>" * 2000 + "deep text" + "</div>" * 10 + "<p>unclosed <b>bold <i>italic"
    assert page_blocks(deep).texts == ["deep text", "unclosed bold italic"]
    with pytest.raises(PageTooDeep, match="depth"):
        page_blocks("<div>" * 3000 + "lost text")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<div>",
                "</div>",
                "<p>",
                "</p>",
                "<a href=x>",
                "</a>",
                "<li>",
                "<br>",
                "<script>",
                "</script>",
                "<!--",
                "-->",
                "<td>",
                "<",
                ">",
                "&amp;",
                "&#0;",
                "text ",
                "Ünïcödé ",
                "中文 ",
                "\x00",
                "\ud800",
            ]
        ),
        max_size=60,
    )
)
def test_any_tag_soup_gives_blocks_of_text(parts):
    html = "".join(parts)
    page = page_blocks(html)
    dense, tokens = block_features(page)
    assert dense.shape == (len(page.texts), len(DENSE_FEATURES)) and np.isfinite(dense).all()
    assert all(text and text == text.strip() for text in page.texts)
    assert_same_blocks_as_the_reference_walk(html)


def assert_same_blocks_as_the_reference_walk(html: str) -> None:
    """Texts, link characters, and per block the chain of frames (tag, tokens, hidden) and their totals."""
    page = page_blocks(html)
    reference = reference_blocks(html)
    assert page.texts == [text for text, _, _ in reference]
    assert page.link_chars.tolist() == [links for _, links, _ in reference]
    for block, (_, _, chain) in enumerate(reference):
        frames = page.chain(block)
        assert [(page.headers[f].tag, page.headers[f].own_ids) for f in frames] == [
            (tag, tuple(hashed("c0:" + t) for t in tokens)) for tag, tokens, _ in chain
        ]
        hidden = [any(h for _, _, h in chain[: level + 1]) for level in range(len(chain))]
        assert page.hidden[frames].tolist() == hidden
        below = [sum(len(page.texts[b]) for b in range(len(page.texts)) if f in page.chain(b)) for f in frames[-2:]]
        assert page.chars[frames[-2:]].tolist() == below


def edge_word_reference(text: str) -> list[int]:
    """The first and last word's hash as :func:`curate.blocks.edge_word_ids` computes it, one block at a time."""
    found = re.findall(r"\w+", text)
    if not found:
        return [WORD_BUCKETS, WORD_BUCKETS]
    ids = []
    for word, salt in ((found[0], 0x5BD1E995), (found[-1], 0x27D4EB2F)):
        value = 0
        for offset in range(EDGE_WORD_CHARS):  # a short word's hash still takes EDGE_WORD_CHARS steps
            char = word[offset] if offset < len(word) else None
            point = -1 if char is None else 48 if char.isdigit() else ord(char.lower()) if char.isascii() else ord(char)
            value = (value * 1000003 + point + 1) & 0xFFFFFFFF
        ids.append((((value ^ salt) * 0x9E3779B1) & 0xFFFFFFFF) >> (32 - WORD_BITS))
    return ids


def test_edge_words_hash_each_blocks_first_and_last_word():
    html = "<p>Copyright 2024 ACME Inc.</p><div>copyright</div><li>… ·</li><p>Share this: Twitter</p><p>Ünïcödé ÉTÉ 中文</p>"
    page = page_blocks(html)
    words = block_features(page)[1].words
    assert words.tolist() == [edge_word_reference(text) for text in page.texts]
    copyright_first, copyright_last = edge_word_reference("copyright copyright")
    assert words[0, 0] == copyright_first and words[1].tolist() == [copyright_first, copyright_last]
    assert words[2].tolist() == [WORD_BUCKETS, WORD_BUCKETS]  # no word at all
    assert edge_word_reference("Share 1999") == edge_word_reference("share 2024")  # ASCII case and digits folded


def test_edge_words_on_real_pages_match_the_per_block_reference():
    for html in warc_pages(10):
        page = page_blocks(html)
        assert block_features(page)[1].words.tolist() == [edge_word_reference(text) for text in page.texts]


def warc_pages(limit: int) -> list[str]:
    pages = []
    for path in sorted((DATA / "warc").glob("*.warc.gz")):
        for batch in read_warc(str(path), "web"):
            pages += [html for html in batch.column("html").to_pylist() if html][: limit - len(pages)]
    return pages


@pytest.mark.parametrize("source", ["development pages", "sample WARCs"])
def test_same_blocks_as_the_per_element_walk_on_real_pages(source):
    pages = [decode_html(page(e))[0] for e in EXPECTATIONS.values()] if source == "development pages" else warc_pages(40)
    assert len(pages) >= 24
    for html in pages:
        assert_same_blocks_as_the_reference_walk(html)


def test_the_segmenters_marker_characters_in_a_page_are_deleted_not_read_as_structure():
    html = "<html><body><p class='a\ufdd0b'>x\ufdd1y <a href=/>li\ufdd4nk</a> &#xfdd3;w</p><div>second</div></body></html>"
    page = page_blocks(html)
    assert page.texts == ["xy link w", "second"]
    assert page.link_chars.tolist() == [4, 0]
    assert [page.headers[f].tag for f in page.chain(0)] == ["body", "p"]
    assert page.headers[page.chain(0)[-1]].own_ids == (hashed("c0:ab"),)
