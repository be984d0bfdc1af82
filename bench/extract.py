"""Extraction accuracy and speed on the 290 trafilatura-eval pages, ours against the plain tools.

Each page comes with snippets its main text must contain (``with``) and boilerplate it must
not contain (``without``). A snippet counts as right when (after collapsing runs of
whitespace to one space in both) it is / is not a substring of the extracted text. The
same scorer runs over four extractors in one process:

* ``curate default``: :func:`curate.extract.html_to_text` (trafilatura, our settings)
* ``curate, favor: precision``: the same with trafilatura's ``favor_precision``
* ``..., trafilatura's own XPaths``: the same with ``curate.speedups.compiled_xpaths`` uninstalled (the
  compiled boilerplate selections must give the same text, so only pages/s may differ)
* ``..., fallbacks: false``: the same without trafilatura's fallback extractors (``fast=True``)
* ``curate fast``: :func:`curate.extract.html_to_text_fast` (resiliparse, main content)
* ``trafilatura.extract``: trafilatura's defaults (as shipped: its own XPaths)
* ``resiliparse extract_plain_text``: resiliparse's defaults

Every extractor gets the same already-decoded page (decoded once, by the WARC reader's
charset rules), so pages/s is the extraction alone, one core.

    .venv/bin/python bench/extract.py [--data /work/shared/data/html/trafilatura-eval] [--repeat 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curate.speedups import compiled_xpaths  # noqa: E402
from curate.extract import html_to_text, html_to_text_fast  # noqa: E402
from curate.warc import decode_html  # noqa: E402

DEFAULT_DATA = "/work/shared/data/html/trafilatura-eval"


def plain_trafilatura(html: str, url: str | None) -> str | None:
    import trafilatura

    return trafilatura.extract(html)


def plain_resiliparse(html: str, url: str | None) -> str | None:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html)


def curate_precision(html: str, url: str | None) -> str | None:
    return html_to_text(html, url, favor="precision")


def curate_no_fallbacks(html: str, url: str | None) -> str | None:
    return html_to_text(html, url, fallbacks=False)


def curate_precision_no_fallbacks(html: str, url: str | None) -> str | None:
    return html_to_text(html, url, favor="precision", fallbacks=False)


def curate_precision_original_xpaths(html: str, url: str | None) -> str | None:
    return html_to_text(html, url, favor="precision")


curate_precision_original_xpaths.original_xpaths = True  # type: ignore[attr-defined]
plain_trafilatura.original_xpaths = True  # type: ignore[attr-defined]

EXTRACTORS = {
    "curate default (trafilatura, tuned)": html_to_text,
    "curate, fallbacks: false": curate_no_fallbacks,
    "curate, favor: precision": curate_precision,
    "curate, favor: precision, trafilatura's own XPaths": curate_precision_original_xpaths,
    "curate, favor: precision, fallbacks: false": curate_precision_no_fallbacks,
    "curate fast (resiliparse main content)": html_to_text_fast,
    "trafilatura.extract (defaults)": plain_trafilatura,
    "resiliparse extract_plain_text (defaults)": plain_resiliparse,
}


def normalize(text: str) -> str:
    return " ".join(text.split())


def load_pages(folder: str) -> list[tuple[str, str, list[str], list[str]]]:
    expectations = json.loads(Path(folder, "expectations.json").read_text())
    pages = []
    for key, entry in expectations.items():
        raw = gzip.open(os.path.join(folder, "pages", entry["file"])).read()
        html, _ = decode_html(raw)
        url = key if key.startswith("http") else None
        pages.append((url, html, entry["with"], entry["without"]))
    return pages


def score(extract, pages, repeat: int = 1) -> dict:
    with_right = with_total = without_right = without_total = pages_all_right = 0
    seconds = 0.0
    for url, html, must, must_not in pages:
        start = time.perf_counter()
        for _ in range(repeat):
            try:
                text = extract(html, url) or ""
            except Exception:
                text = ""
        seconds += (time.perf_counter() - start) / repeat
        text = normalize(text)
        good_with = sum(normalize(s) in text for s in must)
        good_without = sum(normalize(s) not in text for s in must_not)
        with_right += good_with
        with_total += len(must)
        without_right += good_without
        without_total += len(must_not)
        pages_all_right += good_with == len(must) and good_without == len(must_not)
    return {
        "all": (with_right + without_right) / (with_total + without_total),
        "with": with_right / with_total,
        "without": without_right / without_total,
        "pages_all_right": pages_all_right,
        "pages_per_s": len(pages) / seconds,
        "snippets": with_total + without_total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=1, help="time each page this many times (accuracy is unchanged)")
    args = parser.parse_args()
    pages = load_pages(args.data)
    # Warm up imports and lazily built config outside the timed loop.
    for extract in EXTRACTORS.values():
        extract(pages[0][1], pages[0][0])
    results = {}
    for name, extract in EXTRACTORS.items():
        original = getattr(extract, "original_xpaths", False)
        if original:
            compiled_xpaths.uninstall()
        try:
            results[name] = score(extract, pages, args.repeat)
        finally:
            if original:
                compiled_xpaths.install()
    snippets = next(iter(results.values()))["snippets"]
    print(f"{len(pages)} pages, {snippets} snippets ({args.data})")
    print("| extractor | snippets right | `with` found | `without` absent | pages fully right | pages/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['all']:.1%} | {r['with']:.1%} | {r['without']:.1%} | {r['pages_all_right']} | {r['pages_per_s']:.1f} |")


if __name__ == "__main__":
    main()
