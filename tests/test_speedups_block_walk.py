"""curate/speedups/block_walk.py: the compiled segmenter gives the reference's PageBlocks, and the compiled token bag
the reference's BlockTokens, field by field, on any page."""

from __future__ import annotations

import re
import warnings

import lxml
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import blocks, speedups
from curate.blocks import (
    MARKERS_IN_HTML,
    PageTooDeep,
    block_features,
    block_tokens,
    hashed,
    page_blocks,
    parse_html,
    text_counts,
    value_tokens,
)
from curate.speedups import block_walk
from curate.warc import decode_html, read_warc

from extract_pages import DATA, EXPECTATIONS, page

TOKEN_FIELDS = ("heads", "inherited", "row_set", "set_parent", "set_added", "row", "words")
FIELDS = ("texts", "link_chars", "frame", "parent", "depth", "hidden", "headers", "inherited", "chars", "frame_link_chars", "blocks")
WARCS = sorted((DATA / "warc").glob("*.warc.gz")) + sorted(
    p for p in (DATA / "warc" / "malformed").iterdir() if not p.name.startswith("LICENSE")
)


@pytest.fixture(autouse=True)
def _switches_on(monkeypatch):
    monkeypatch.setattr(speedups, "_warned", set())
    for variable in [speedups.ALL_SWITCH, *speedups.ITEMS.values()]:
        monkeypatch.delenv(variable, raising=False)


def reference(html: str) -> blocks.PageBlocks:
    """The plain path: XSLT segmenter and read_segments."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CURATE_SPEEDUP_BLOCK_WALK", "off")
        return page_blocks(html)


def compiled(html: str) -> blocks.PageBlocks | None:
    """The compiled walk alone (None where it hands the page to the reference)."""
    root = parse_html(html)
    return blocks.empty_page() if root is None else block_walk.page_blocks(root, html)


def assert_equal_fields(expected, got, fields, element_types: bool = False) -> None:
    """Arrays: same dtype, shape and values; anything else equal (and, with element_types, of the same types inside)."""
    for field in fields:
        want, have = getattr(expected, field), getattr(got, field)
        if isinstance(want, np.ndarray):
            assert (have.dtype, have.shape) == (want.dtype, want.shape), field
            assert np.array_equal(have, want), field
            continue
        assert have == want, field
        if element_types:
            assert type(have) is type(want), field
            assert [type(item) for item in have] == [type(item) for item in want], field
            assert [list(map(type, item)) for item in have] == [list(map(type, item)) for item in want], field


def assert_same_page(html: str) -> None:
    expected, got = reference(html), compiled(html)
    assert got is not None, "the compiled walk gave up on this page"
    assert_equal_fields(expected, got, FIELDS)
    dispatched = page_blocks(html)  # curate.blocks with the speed-up on
    assert all(_same(dispatched, got, field) for field in FIELDS)
    for blocks_of_page in (expected, got):  # the walk shares equal inherited sets between siblings, the reference does not
        assert_same_tokens(blocks_of_page)


def words_of(page: blocks.PageBlocks) -> np.ndarray:
    return text_counts(page.texts)["edge_words"] if page.texts else np.zeros((0, 2), dtype=np.int64)


def reference_tokens(page: blocks.PageBlocks, words: np.ndarray) -> blocks.BlockTokens:
    """The plain path: curate.blocks.block_tokens with the switch off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CURATE_SPEEDUP_BLOCK_WALK", "off")
        return block_tokens(page, words)


def assert_same_tokens(page: blocks.PageBlocks) -> None:
    """Compiled and reference BlockTokens of a page: equal fields, dtypes, shapes, element types and order."""
    words = words_of(page)
    expected, got = reference_tokens(page, words), block_walk.block_tokens(page, words)
    assert_equal_fields(expected, got, TOKEN_FIELDS, element_types=True)
    assert got.words is words
    dispatched = block_tokens(page, words)  # curate.blocks with the speed-up on
    assert all(_same(dispatched, got, field) for field in TOKEN_FIELDS)


def _same(a, b, field: str) -> bool:
    x, y = getattr(a, field), getattr(b, field)
    return np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y


def warc_pages(path) -> list[str]:
    return [html for batch in read_warc(str(path), "web") for html in batch.column("html").to_pylist() if html]


def test_the_module_is_built_against_the_installed_lxml():
    module = block_walk.compiled()
    assert module is not None and module.BUILT_AGAINST_LXML == lxml.__version__


def test_same_page_blocks_on_the_development_pages():
    pages = [decode_html(page(e))[0] for e in EXPECTATIONS.values()]
    assert len(pages) == 24
    for html in pages:
        assert_same_page(html)


@pytest.mark.parametrize("path", WARCS, ids=lambda p: p.name)
def test_same_page_blocks_on_every_sample_and_malformed_warc(path):
    for html in warc_pages(path):
        assert_same_page(html)


SMALL_PAGES = [
    "",
    "   ",
    "plain text, no tags",
    "<html><body><script>x()</script><img src=a></body></html>",
    "<html><body><div id=app></div><noscript><p>Crawler copy</p></noscript></body></html>",
    "<html><body><p>Visible</p><noscript><p>hidden copy</p></noscript></body></html>",
    "<p>a<br>b<br/>c</p><a href=x> <b>bold link</b> \n</a>tail<wbr>x<custom>inside</custom>after",
    "<html><head><title>T</title></head><frameset><frame src=a></frameset></html>",
    "<div hidden><p aria-hidden='true'>x</p><p aria-hidden=TRUE>y</p><p style='Display : None'>z</p></div>",
    "<div class='articleBody İstanbul K\u212aelvin x' id='c-123 12 ab' role=main itemprop=text>t</div>",
    "<div class='" + "wordy " * 60 + "'>long attribute</div><div class='" + "a" * 190 + "Ab cd'>cut</div>",
    "<p class='a\ufdd0b'>x\ufdd1y <a href=/>li\ufdd4nk</a> &#xfdd3;w &#64979; &#X0FDD5;</p><div>second</div>",
    "<svg:p>ns-looking</svg:p><o:p>office</o:p><P>upper</P><DIV CLASS=Up>caps</DIV>",
    "<table><tr><td>a<td>b</table><ul><li>one<li>two</ul><dl><dt>t<dd>d</dl>",
    "<p>\xa0nbsp\u2003em\u3000ideographic\x0bvt\x1cfs\u200bzwsp\u0085nel</p>",
    "<![CDATA[cdata]]><?pi x?><!-- c --><p>&amp;&lt;&#0;&#x10FFFF;&#xD800;&nbsp;&unknown;</p>",
    "<body><p>one</p></body><body><p>two</p></body>",
    "<div>" * 2000 + "deep text" + "</div>" * 10 + "<p>unclosed <b>bold <i>italic",
]


@pytest.mark.parametrize("html", SMALL_PAGES, ids=range(len(SMALL_PAGES)))
def test_same_page_blocks_on_odd_pages(html):
    assert_same_page(html)


def test_pages_too_deep_still_raise():
    with pytest.raises(PageTooDeep, match="depth"):
        page_blocks("<div>" * 3000 + "lost text")


PIECES = [
    "<div>", "</div>", "<p>", "</p>", "<a href=x>", "</a>", "<li>", "<br>", "<script>", "</script>", "<noscript>",
    "</noscript>", "<!--", "-->", "<td>", "<tr>", "<table>", "<", ">", "&amp;", "&#0;", "&#xfdd2;", "text ", "Ünïcödé ",
    "中文 ", "\x00", "\ud800", "\ufdd0", "\ufdd4", "\xa0", "\u2003", "\n", "<span>", "</span>", "<custom-el>", "</custom-el>",
    "<div class='navBar main_menu'>", "<div id=post-12 role=article>", "<p itemprop=articleBody>", "<div hidden>",
    "<li aria-hidden=true>", "<ul style='display:none'>", "<section class='İx K\u212aey a\ufdd1b'>", "<body>", "</body>",
    "<html>", "<head>", "<title>", "<b>", "<svg:g>", "<?x y?>", "<![CDATA[", "]]>", "<select><option>o</option></select>",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=80))
def test_same_page_blocks_on_any_tag_soup(parts):
    assert_same_page("".join(parts))


MARKER_TEXTS = ["&#xFDD0", "&#XfDd5;", "&#x000fdd3", "&#xfdd6", "&#xfd", "&#64976", "&#0064981", "&#64982", "&#6497", "&#", "&", "a\ufdd0", "\ufdd6", "&#64975", "é&#x0FDD2"]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "&#",
                "&",
                "#",
                "x",
                "X",
                "0",
                "f",
                "F",
                "d",
                "D",
                "3",
                "5",
                "6",
                "4",
                "9",
                "7",
                "8",
                "1",
                "\ufdd0",
                "\ufdd5",
                "\ufdd6",
                "é",
                "\U0001f600",
            ]
        ),
        max_size=20,
    )
)
def test_marker_check_agrees_with_the_reference_pattern(pieces):
    for text in ["".join(pieces), *MARKER_TEXTS]:
        assert block_walk.compiled().has_markers(text) == (MARKERS_IN_HTML.search(text) is not None), text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=260) | st.text(alphabet=st.sampled_from(list("aAzZbB09_- \u0130\u212a\xe9\ufdd0")), max_size=260))
def test_attribute_tokens_and_hashes_in_c_are_value_tokens(value):
    value = value.replace("\x00", "")  # libxml2's strings end at NUL
    module = block_walk.compiled()
    clean = value.replace("\ufdd0", "")  # the stylesheet deletes the markers before frame_header splits the value
    assert module.tokens(value) == tuple(hashed("c0:" + t) for t in value_tokens(clean))
    assert module.hashed("c0:" + value) == hashed("c0:" + value)


def test_only_two_non_ascii_characters_lower_case_to_ascii_token_characters():
    # the C tokeniser maps U+0130 to "i" + a separator and U+212A to "k", and every other non-ASCII character to a separator
    token_chars = set("abcdefghijklmnopqrstuvwxyz0123456789")
    found = {point for point in range(0x80, 0x110000) if not 0xD800 <= point < 0xE000 and token_chars.intersection(chr(point).lower())}
    assert found == {0x130, 0x212A}


def test_a_marker_on_the_plain_path_hands_the_page_to_the_reference():
    root = parse_html("<p>a\ufdd3b</p>")
    module = block_walk.compiled()
    first, _ = block_walk.rules()
    with pytest.raises(module.GiveUp, match="marker"):
        module.walk_blocks(root, first, False)
    assert module.walk_blocks(root, first, True)[0] == ["ab"]


def test_the_switches_turn_it_off(monkeypatch):
    calls = []
    monkeypatch.setattr(block_walk, "page_blocks", lambda root, html: calls.append(html))
    page_blocks("<p>one</p>")
    monkeypatch.setenv("CURATE_SPEEDUP_BLOCK_WALK", "off")
    page_blocks("<p>two</p>")
    monkeypatch.setenv("CURATE_SPEEDUP_BLOCK_WALK", "on")
    monkeypatch.setenv("CURATE_SPEEDUPS", "off")
    assert page_blocks("<p>three</p>").texts == ["three"]
    assert calls == ["<p>one</p>"]


def test_same_block_tokens_with_blocks_outside_any_frame_and_on_an_empty_page():
    page = blocks.read_segments("loose text\ufdd0div\ufdd1nav main\ufdd1\ufdd1\ufdd1\ufdd1\ufdd2in\ufdd0p\ufdd2para\ufdd3\ufdd3tail")
    assert page.frame.tolist() == [-1, 0, 1, -1]
    assert_same_tokens(page)
    assert block_walk.block_tokens(page, words_of(page)).row.tolist() == [0, 1, 2, 0]
    assert_same_tokens(blocks.empty_page())


def test_the_switches_turn_the_compiled_token_bag_off(monkeypatch):
    calls = []
    page = page_blocks("<p>one</p>")
    monkeypatch.setattr(block_walk, "block_tokens", lambda page, words: calls.append(len(page.texts)))
    block_features(page)
    monkeypatch.setenv("CURATE_SPEEDUP_BLOCK_WALK", "off")
    block_features(page)
    monkeypatch.setenv("CURATE_SPEEDUP_BLOCK_WALK", "on")
    monkeypatch.setenv("CURATE_SPEEDUPS", "off")
    assert block_features(page)[1].heads == [(hashed("t:p"), hashed("pt:body"))]
    assert calls == [1]


def test_another_lxml_falls_back_to_the_reference_with_one_warning(monkeypatch):
    monkeypatch.setattr(block_walk.compiled(), "BUILT_AGAINST_LXML", "0.0.1")
    block_walk.compiled.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert page_blocks("<p>one</p>").texts == ["one"]
            assert page_blocks("<p>two</p>").texts == ["two"]
            assert block_walk.block_tokens(page_blocks("<p>two</p>"), np.zeros((1, 2), dtype=np.int64)) is None
            assert block_features(page_blocks("<p>three</p>"))[1].heads == [(hashed("t:p"), hashed("pt:body"))]
        assert [str(w.message) for w in caught if issubclass(w.category, speedups.SpeedupFallback)] == [
            "curate speed-up 'block_walk' not applied, the plain library runs instead: "
            f"built against lxml 0.0.1, lxml {lxml.__version__} is installed; reinstall curate"
        ]
    finally:
        monkeypatch.undo()
        block_walk.compiled.cache_clear()
    assert block_walk.compiled() is not None


def test_a_missing_module_falls_back_to_the_reference(monkeypatch):
    import sys

    monkeypatch.delattr(speedups, "block_walk_c", raising=False)
    monkeypatch.setitem(sys.modules, "curate.speedups.block_walk_c", None)  # import raises ImportError
    block_walk.compiled.cache_clear()
    try:
        with pytest.warns(speedups.SpeedupFallback, match=re.escape("could not be imported")):
            assert page_blocks("<p>one</p>").texts == ["one"]
        assert block_features(page_blocks("<p>two</p>"))[1].heads == [(hashed("t:p"), hashed("pt:body"))]
    finally:
        monkeypatch.undo()
        block_walk.compiled.cache_clear()


def test_the_walk_leaves_garbage_collection_as_it_found_it():
    import gc

    html = "<p>one</p><p>two</p>"
    try:
        gc.disable()
        assert compiled(html).texts == ["one", "two"] and not gc.isenabled()
        gc.enable()
        assert compiled(html).texts == ["one", "two"] and gc.isenabled()
        page = compiled(html)
        gc.disable()
        assert len(block_walk.block_tokens(page, words_of(page)).heads) == 2 and not gc.isenabled()
        gc.enable()
        assert len(block_walk.block_tokens(page, words_of(page)).heads) == 2 and gc.isenabled()
        with pytest.raises(block_walk.compiled().GiveUp):
            block_walk.compiled().walk_blocks(parse_html("<p>a\ufdd3b</p>"), block_walk.rules()[0], False)
        assert gc.isenabled()
    finally:
        gc.enable()


def test_threads_walking_at_once_get_the_same_blocks():
    # Spark workers warm later stages up in a background thread; the header cache is shared
    from concurrent.futures import ThreadPoolExecutor

    pages = [decode_html(page(e))[0] for e in EXPECTATIONS.values()]
    alone = [compiled(html).texts for html in pages]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda html: compiled(html).texts, pages * 3))
    assert together == alone * 3
