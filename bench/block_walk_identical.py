"""One-off check: the compiled block walk (``curate.speedups.block_walk``) against the XSLT reference on the evaluation sets.

Per page of both sets of ``bench/extract.py`` (the 290 trafilatura-eval pages, the 418 held-out
WCXB pages): every field of ``PageBlocks`` and the extracted text of the ``blocks`` extractor,
with the speed-up on and off; prints how many pages differ (0 expected) and on how many the walk
handed the page to the reference path.

    nice -n 15 .venv/bin/python bench/block_walk_identical.py [--data DATA_DIR]
"""

from __future__ import annotations

import argparse
import os

import numpy as np


from common import shared_data
from extract import load_pages, load_wcxb_held_out

from curate.blocks import PageBlocks, PageTooDeep, page_blocks, parse_html
from curate.extract_blocks import extract_main_text
from curate.speedups import block_walk

SWITCH = "CURATE_SPEEDUP_BLOCK_WALK"


def reference(function, html: str):
    os.environ[SWITCH] = "off"
    try:
        return function(html)
    except PageTooDeep:
        return "too deep"
    finally:
        del os.environ[SWITCH]


def differing_field(a: PageBlocks | str, b: PageBlocks | str) -> str | None:
    if isinstance(a, str) or isinstance(b, str):
        return None if a == b else "PageTooDeep"
    for field in PageBlocks.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        same = x.dtype == y.dtype and np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
        if not same:
            return field
    return None


def compiled(html: str):
    try:
        return page_blocks(html)
    except PageTooDeep:
        return "too deep"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(shared_data()))
    args = parser.parse_args()
    assert block_walk.compiled() is not None, "the compiled module is not built"
    sets = {
        "snippets": [html for _, html, *_ in load_pages(os.path.join(args.data, "html", "trafilatura-eval"))],
        "wcxb": [html for _, html, *_ in load_wcxb_held_out(args.data)],
    }
    for name, htmls in sets.items():
        blocks_differ = texts_differ = handed_back = 0
        for html in htmls:
            try:
                root = parse_html(html)
            except PageTooDeep:
                root = None
            handed_back += root is not None and block_walk.page_blocks(root, html) is None
            field = differing_field(reference(page_blocks, html), compiled(html))
            blocks_differ += field is not None
            texts_differ += reference(extract_main_text, html) != extract_main_text(html)
        print(
            f"{name}: {len(htmls)} pages, PageBlocks differ on {blocks_differ}, texts differ on {texts_differ}, handed to the reference: {handed_back}"
        )


if __name__ == "__main__":
    main()
