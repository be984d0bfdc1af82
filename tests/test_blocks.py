"""curate.blocks: cutting pages into text blocks and their features."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.blocks import PageTooDeep, DENSE_FEATURES, HASH_BUCKETS, attribute_tokens, block_features, hashed, page_blocks, parse_html

PAGE = (
    "<html><head><title>T</title><style>p{}</style></head><body>"
    '<div class="mainContent" id="post-body"><h1>Title</h1>'
    '<p>Hello <a href="x">link</a> world.<br>line two<!-- note --> end</p>tail text<script>var x;</script> after'
    '<ul><li><a href="/">Home</a></li><li>About</li></ul></div></body></html>'
)


def chains(page):
    return [[page.frames[i].tag for i in block.frames] for block in page.blocks]


def test_blocks_text_links_and_frames():
    page = page_blocks(PAGE)
    assert [b.text for b in page.blocks] == ["Title", "Hello link world. line two end", "tail text after", "Home", "About"]
    assert [b.link_chars for b in page.blocks] == [0, 4, 0, 4, 0]
    assert chains(page) == [
        ["body", "div", "h1"],
        ["body", "div", "p"],
        ["body", "div"],
        ["body", "div", "ul", "li"],
        ["body", "div", "ul", "li"],
    ]
    div = page.frames[1]
    assert div.own_ids == tuple(hashed("c0:" + t) for t in ("main", "content", "post", "body"))
    assert (div.chars, div.link_chars, div.blocks) == (sum(len(b.text) for b in page.blocks), 8, 5)
    assert [page.frames[i].chars for i in page.blocks[1].frames] == [div.chars, div.chars, 30]


def test_attribute_tokens_split_words_and_camel_case():
    root = parse_html('<div class="articleBody entry_content x" id="c-123" role="main" itemprop="text"></div>')
    div = root.find(".//div")
    assert attribute_tokens(div) == ("article", "body", "entry", "content", "main", "text")


def test_features_shape_and_values():
    page = page_blocks(PAGE)
    dense, tokens = block_features(page)
    assert dense.shape == (5, len(DENSE_FEATURES)) and dense.dtype == np.float32
    link_density = dense[:, DENSE_FEATURES.index("link_density")]
    assert link_density.tolist() == np.array([0.0, 4 / 30, 0.0, 1.0, 0.0], dtype=np.float32).tolist()
    assert dense[0, DENSE_FEATURES.index("position")] == 0.0 and dense[4, DENSE_FEATURES.index("position")] == 1.0
    assert all(0 <= t < HASH_BUCKETS for ids in tokens for t in ids)
    assert hashed("t:p") in tokens[1] and hashed("c:content") in tokens[1]


HASHES = [5851, 2920, 6624]  # zlib.crc32 of the token, low 13 bits


def test_hashes_are_fixed():
    # CRC-32, so feature ids never depend on PYTHONHASHSEED or the platform
    assert [hashed(t) for t in ("t:p", "c:comment", "a:nav")] == HASHES


def test_empty_and_textless_pages_have_no_blocks():
    assert page_blocks("").blocks == []
    assert page_blocks("   ").blocks == []
    assert page_blocks("<html><body><script>x()</script><img src=a></body></html>").blocks == []


def test_noscript_is_read_only_when_the_page_has_no_other_text():
    inside = "<noscript><p>Crawler copy of the thread</p></noscript>"
    assert [b.text for b in page_blocks(f"<html><body><p>Visible text</p>{inside}</body></html>").blocks] == ["Visible text"]
    assert [b.text for b in page_blocks(f"<html><body><div id=app></div>{inside}</body></html>").blocks] == ["Crawler copy of the thread"]


def test_deep_nesting_and_unclosed_tags():
    deep = "<div>" * 2000 + "deep text" + "</div>" * 10 + "<p>unclosed <b>bold <i>italic"
    assert [b.text for b in page_blocks(deep).blocks] == ["deep text", "unclosed bold italic"]
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
    page = page_blocks("".join(parts))
    dense, tokens = block_features(page)
    assert dense.shape == (len(page.blocks), len(DENSE_FEATURES)) and np.isfinite(dense).all()
    assert all(b.text and b.text == b.text.strip() for b in page.blocks)
