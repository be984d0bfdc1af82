"""curate.speedups.compiled_xpaths: compiled selections return exactly the nodes of trafilatura's XPaths."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml.etree import XPath

import lxml.html
import trafilatura.utils
import trafilatura.xpaths
from curate.speedups import compiled_xpaths
from curate.extract import html_to_text
from curate.warc import read_warc
from trafilatura.utils import load_html

DATA = Path(__file__).parent / "data"
EXPECTATIONS = json.loads((DATA / "html" / "expectations.json").read_text())


def trafilatura_xpaths() -> list[tuple[str, XPath]]:
    """Every XPath in trafilatura.xpaths' lists, as shipped (guard uninstalled)."""
    compiled_xpaths.uninstall()
    found = []
    for name, value in vars(trafilatura.xpaths).items():
        if isinstance(value, list):
            found += [(f"{name}[{i}]", x) for i, x in enumerate(value) if isinstance(x, XPath)]
    return found


ORIGINALS = trafilatura_xpaths()
COMPILED = []
for _name, _xpath in ORIGINALS:
    try:
        COMPILED.append((_name, _xpath, compiled_xpaths.compile_selection(_xpath)))
    except compiled_xpaths.Unsupported:
        pass


def real_pages() -> list[str]:
    pages = [gzip.open(DATA / "html" / "pages" / entry["file"]).read().decode("utf-8", "replace") for entry in EXPECTATIONS.values()]
    for path in sorted((DATA / "warc").glob("*.warc.gz")):
        for batch in read_warc(str(path), "web"):
            pages += [html for html in batch.column("html").to_pylist() if html]
    return pages


PAGES = real_pages()


def paths(tree, nodes) -> list[str]:
    root = tree.getroottree()
    return [root.getpath(node) for node in nodes]


def test_the_boilerplate_selections_compile():
    compiled = {name for name, _, _ in COMPILED}
    # the selections that cost the most on real pages (bench/README.md, Extraction speed)
    for name in [
        "OVERALL_DISCARD_XPATH[0]",
        "OVERALL_DISCARD_XPATH[1]",
        "REMOVE_COMMENTS_XPATH[0]",
        "REMOVE_COMMENTS_AND_LISTS_XPATH[0]",
        "RAW_TREE_PRUNE_XPATH[0]",
        "PRECISION_DISCARD_XPATH[1]",
    ]:
        assert name in compiled, f"{name} no longer compiles with this trafilatura version"
    # the positional and union forms of the main-content selections
    for name in [f"BODY_XPATH[{i}]" for i in range(5)] + ["COMMENTS_DISCARD_XPATH[1]"]:
        assert name in compiled, f"{name} no longer compiles with this trafilatura version"


def test_same_nodes_as_libxml2_on_real_pages():
    assert len(PAGES) >= 60
    compared = 0
    for html in PAGES:
        tree = load_html(html)
        if tree is None:
            continue
        for name, original, compiled in COMPILED:
            expected = original(tree)
            got = compiled(tree)
            assert paths(tree, got) == paths(tree, expected), name
            compared += len(expected)
    assert compared > 1000  # the pages do exercise the selections


def test_extracted_text_is_unchanged_on_real_pages():
    compiled_xpaths.uninstall()
    settings_list = [{}, {"favor": "precision"}, {"fallbacks": False}]
    before = [[html_to_text(html, **options) for html in PAGES] for options in settings_list]
    assert compiled_xpaths.install() >= 15 and compiled_xpaths.installed()
    after = [[html_to_text(html, **options) for html in PAGES] for options in settings_list]
    assert after == before
    assert sum(text is not None for text in after[0]) > 40


def test_install_is_idempotent_and_uninstall_restores():
    count = compiled_xpaths.install()
    assert compiled_xpaths.install() == count
    assert isinstance(trafilatura.xpaths.OVERALL_DISCARD_XPATH[0], compiled_xpaths.CompiledSelection)
    compiled_xpaths.uninstall()
    assert not compiled_xpaths.installed()
    assert [x for _, x in trafilatura_xpaths()] == [x for _, x in ORIGINALS]
    assert type(trafilatura.utils.HTML_PARSER.makeelement("form")) is lxml.html.FormElement
    compiled_xpaths.install()
    assert type(trafilatura.utils.HTML_PARSER.makeelement("form")) is lxml.html.FormElement
    assert type(load_html("<html><body><form><input name=q></form></body></html>").find(".//input")) is lxml.html.InputElement


def check(xpath: str, html: str) -> list[str]:
    original = XPath(xpath, namespaces={"re": compiled_xpaths.REGEXP_NS})
    compiled = compiled_xpaths.compile_selection(original)
    tree = load_html(html)
    expected, got = paths(tree, original(tree)), paths(tree, compiled(tree))
    assert got == expected
    return got


def test_xpath_semantics_the_compiler_must_follow():
    # string value of @id|@class is the attribute that comes first in the document
    page = '<html><body><div class="x" id="hidden">a</div><div id="hidden" class="x">b</div></body></html>'
    # (whichever order the XPath names them in)
    assert check(".//*[re:test(@class|@id, 'hidden')]", page) == ["/html/body/div[2]"]
    assert check(".//*[re:test(@id|@class, 'hidden')]", page) == ["/html/body/div[2]"]
    assert check(".//*[re:test(@id, 'hidden')]", page) == ["/html/body/div[1]", "/html/body/div[2]"]
    # a node-set equals a string when any node does; an absent attribute is ""
    assert check(".//*[@id|@class='x']", page) == ["/html/body/div[1]", "/html/body/div[2]"]
    assert check(".//div[not(@style) and starts-with(@style, '')]", page) == ["/html/body/div[1]", "/html/body/div[2]"]
    # a regex that matches "" matches an absent attribute too
    assert check(".//div[re:test(@style, '^$')]", page) == ["/html/body/div[1]", "/html/body/div[2]"]
    assert check(".//div[re:test(@style|@title, 'z*')]", page) == ["/html/body/div[1]", "/html/body/div[2]"]
    # translate: first occurrence decides, letters without a partner are removed
    assert check(".//*[contains(translate(@id, 'hh', 'HX'), 'Hidden')]", page) == ["/html/body/div[1]", "/html/body/div[2]"]
    assert check(".//div[translate(@class, 'x', '') = '']", page) == ["/html/body/div[1]", "/html/body/div[2]"]
    # existence of descendants, tag tests in any predicate, the 'i' flag
    nested = "<html><body><section id=A><h1>t</h1></section><section id=a><p>x</p></section></body></html>"
    assert check(".//*[self::section][not(.//h1)]", nested) == ["/html/body/section[2]"]
    assert check(".//*[re:test(@id, '^a$', 'i')]", nested) == ["/html/body/section[1]", "/html/body/section[2]"]
    assert check(".//section[re:test(@id, '^a$')]", nested) == ["/html/body/section[2]"]


def test_positions_and_unions_the_compiler_must_follow():
    page = (
        "<html><body>"
        "<div id=a><p class=x>1</p><p>2</p><p class=x>3</p><section><p class=x>4</p><p class=x>5</p></section></div>"
        "<main><p class=x>6</p></main><article>7</article><main>8</main>"
        "</body></html>"
    )
    # [1] after a step is per parent: the first matching child of each parent
    assert check(".//p[@class='x'][1]", page) == ["/html/body/div/p[1]", "/html/body/div/section/p[1]", "/html/body/main[1]/p"]
    assert check(".//*[self::p or self::section][@class='x'][1]", page) == [
        "/html/body/div/p[1]",
        "/html/body/div/section/p[1]",
        "/html/body/main[1]/p",
    ]
    # (path)[1] is the first in document order
    assert check("(.//p[@class='x'])[1]", page) == ["/html/body/div/p[1]"]
    assert check("(.//main)[1]", page) == ["/html/body/main[1]"]
    assert check("(.//p[@class='x'][1])[1]", page) == ["/html/body/div/p[1]"]
    assert check("(.//h1)[1]", page) == []
    # a union is in document order whichever operand comes first, each node once
    assert check("(.//main)[1]|(.//div)[1]", page) == ["/html/body/div", "/html/body/main[1]"]
    assert check(".//article|.//main|.//main", page) == ["/html/body/main[1]", "/html/body/article", "/html/body/main[2]"]
    assert check("(.//h1)[1]|(.//article)[1]", page) == ["/html/body/article"]


def test_remembered_regex_results_stay_right_when_the_memory_fills(monkeypatch):
    monkeypatch.setattr(compiled_xpaths, "_MEMO_LIMIT", 3)
    original = XPath(".//div[re:test(@class, 'ad|promo')]", namespaces={"re": compiled_xpaths.REGEXP_NS})
    compiled = compiled_xpaths.compile_selection(original)
    long_class = "promo " + "x" * compiled_xpaths._MEMO_LONGEST
    classes = ["ad", "nav", "promo-box", "menu", "lede", "ad", long_class, "nav", "menu"]
    page = "<html><body>" + "".join(f'<div class="{c}">{i}</div>' for i, c in enumerate(classes)) + "<div>plain</div></body></html>"
    tree = load_html(page)
    for _ in range(3):  # the second and third passes answer from memory, cleared twice on the way
        assert [el.text for el in compiled(tree)] == [el.text for el in original(tree)] == ["0", "2", "5", "6"]
    (memory,) = [value for name, value in compiled._parts[0].__globals__.items() if name.startswith("_c") and isinstance(value, dict)]
    assert 0 < len(memory) <= 3 and long_class not in memory


def test_elements_without_attributes_are_skipped_only_when_they_cannot_match():
    page = "<html><body><div>a</div><div class=x>b</div><p>c</p></body></html>"
    # not(@class) is true without attributes: the bare elements must still be tested
    assert check(".//div[not(@class)]", page) == ["/html/body/div[1]"]
    assert "if not items" not in compiled_xpaths.CompiledSelection(None, ".//div[not(@class)]").source
    assert check(".//*[self::p or @class='x']", page) == ["/html/body/div[2]", "/html/body/p"]
    assert "if not items" not in compiled_xpaths.CompiledSelection(None, ".//*[self::p or @class='x']").source
    assert check(".//*[@class='x']", page) == ["/html/body/div[2]"]
    assert "if not items" in compiled_xpaths.CompiledSelection(None, ".//*[@class='x']").source


def test_invalid_characters_are_removed_exactly_as_trafilatura_does():
    compiled_xpaths.install()
    patched = trafilatura.utils.INVALID_XML_CHARS
    assert isinstance(patched, compiled_xpaths._InvalidCharsFirstChecked)
    original = patched.pattern
    for code in range(0x10000):  # every BMP character, alone and in a page
        if 0xD800 <= code < 0xE000:
            continue
        text = f"<p>a{chr(code)}b</p>"
        assert patched.sub("", text) == original.sub("", text), hex(code)
    page = PAGES[0]
    assert patched.sub("", page) is page  # nothing to remove: the page itself, not a copy
    dirty = page[:100] + "\x0b\x00" + page[100:] + "\uffff"
    assert patched.sub("", dirty) == original.sub("", dirty) == page
    compiled_xpaths.uninstall()
    assert trafilatura.utils.INVALID_XML_CHARS is original
    compiled_xpaths.install()


def test_outside_the_subset_is_refused():
    for xpath in [
        ".//div[2]",
        "(.//div)[2]",
        ".//div[1][@id]",
        "(.//div)[1]/p",
        ".//a|",
        "//div",
        ".//div[position() > 1]",
        ".//div[@x:y]",
        ".//div[count(p) = 2]",
        ".//div[re:test(@id, '(')]",
    ]:
        with pytest.raises(compiled_xpaths.Unsupported):
            compiled_xpaths.CompiledSelection(None, xpath)


def test_anything_but_an_element_goes_to_the_original():
    original = trafilatura.xpaths.OVERALL_DISCARD_XPATH
    compiled_xpaths.uninstall()
    expression = original[0]
    compiled = compiled_xpaths.compile_selection(expression)
    tree = load_html("<html><body><div class='sidebar'>x</div></body></html>")
    assert compiled(tree.getroottree()) == expression(tree.getroottree())
    compiled_xpaths.install()


# generated trees: tags and attribute values built from the selections' own vocabulary
_WORDS = sorted({word for _, x, _ in COMPILED for word in re.findall(r"[A-Za-z][A-Za-z_-]{1,}", x.path)})
_TAGS = ["div", "p", "span", "section", "list", "item", "ol", "ul", "aside", "details", "h1", "main", "article", "a", "header"]
_ATTRIBUTES = ["id", "class", "style", "role", "aria-hidden", "data-component", "data-lp-replacement-content", "itemprop"]
_values = st.lists(
    st.one_of(st.sampled_from(_WORDS), st.sampled_from(["", " ", "-", "_", "display:none", "true", "N", "T", "ad", "x"])),
    max_size=4,
).map(lambda parts: "".join(parts) if len(parts) % 2 else " ".join(parts))
_attributes = st.lists(st.tuples(st.sampled_from(_ATTRIBUTES), _values), max_size=4, unique_by=lambda kv: kv[0])


def _element(children):
    return st.builds(
        lambda tag, attributes, kids: f"<{tag}" + "".join(f' {k}="{v}"' for k, v in attributes) + ">t" + "".join(kids) + f"</{tag}>",
        st.sampled_from(_TAGS),
        _attributes,
        st.lists(children, max_size=3),
    )


_trees = st.recursive(_element(st.just("")), _element, max_leaves=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_trees, min_size=1, max_size=3))
def test_same_nodes_as_libxml2_on_generated_trees(bodies):
    tree = load_html("<html><body>" + "".join(bodies) + "</body></html>")
    for name, original, compiled in COMPILED:
        assert paths(tree, compiled(tree)) == paths(tree, original(tree)), name
