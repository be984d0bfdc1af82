"""Extraction accuracy and speed, ours against the plain tools, on two evaluation sets in one run.

Sets:

* ``snippets``: the 290 trafilatura-eval pages (snippet accuracy, below);
* ``wcxb``: the WCXB dev pages held out from the block extractor's training
  (``curate.extract_eval.is_held_out``, 30% by URL hash), scored by word-level F1 against the
  human-written main text (``curate.extract_eval.word_f1``), overall and per page type.

On the snippets set each page comes with snippets its main text must contain (``with``) and boilerplate it must
not contain (``without``). A snippet counts as right when (after collapsing runs of
whitespace to one space in both) it is / is not a substring of the extracted text. The
same scorer runs over four extractors in one process:

* ``curate default``: :func:`curate.extract.html_to_text` (trafilatura, our settings)
* ``curate, favor: precision``: the same with trafilatura's ``favor_precision``
* ``..., trafilatura's own XPaths``: the same with ``curate.speedups.compiled_xpaths`` uninstalled (the
  compiled boilerplate selections must give the same text, so only pages/s may differ)
* ``..., fallbacks: false``: the same without trafilatura's fallback extractors (``fast=True``)
* ``curate fast``: :func:`curate.extract.html_to_text_fast` (resiliparse, main content)
* ``curate blocks``: :func:`curate.extract.html_to_text_blocks` (the trained block classifier)
* ``curate blocks, XSLT segmenter``: the same with ``curate.speedups.block_walk`` off (same text, only
  pages/s may differ)
* ``trafilatura.extract``: trafilatura's defaults (as shipped: its own XPaths)
* ``resiliparse extract_plain_text``: resiliparse's defaults

Every extractor gets the same already-decoded page (decoded once, by the WARC reader's
charset rules), so pages/s is the extraction alone, one core. Each extractor is timed twice over:
by the wall clock and by this process's CPU time (``time.process_time``). On a shared, loaded
machine a niced run gets the CPU in bursts, so the wall-clock speeds swing between runs; the
CPU-time ones still compare the extractors' own work fairly.

By default the run compares trafilatura's defaults, curate's default, ``blocks`` and ``fast``;
``--all`` adds the trafilatura variants above; ``--only blocks`` runs only the extractors whose name
holds one of the given comma-separated words (and the baseline). ``speed`` is pages/s relative to
``trafilatura.extract`` in the same run.

    .venv/bin/python bench/extract.py [--data DATA_DIR] [--sets snippets,wcxb] [--all] [--only WORDS] [--repeat 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

from common import shared_data

from curate.speedups import compiled_xpaths
from curate.extract import html_to_text, html_to_text_blocks, html_to_text_fast
from curate.extract_eval import is_held_out, load_wcxb_truth, load_web_pages, word_f1
from curate.warc import decode_html


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


def curate_blocks_xslt(html: str, url: str | None) -> str | None:
    return html_to_text_blocks(html, url)


curate_precision_original_xpaths.original_xpaths = True  # type: ignore[attr-defined]
plain_trafilatura.original_xpaths = True  # type: ignore[attr-defined]
curate_blocks_xslt.block_walk_off = True  # type: ignore[attr-defined]

BASELINE = "trafilatura.extract (defaults)"
MAIN_EXTRACTORS = {
    BASELINE: plain_trafilatura,
    "curate default (trafilatura, tuned)": html_to_text,
    "curate blocks (block classifier)": html_to_text_blocks,
    "curate blocks, XSLT segmenter (block_walk off)": curate_blocks_xslt,
    "curate fast (resiliparse main content)": html_to_text_fast,
}
MORE_EXTRACTORS = {
    "curate, fallbacks: false": curate_no_fallbacks,
    "curate, favor: precision": curate_precision,
    "curate, favor: precision, trafilatura's own XPaths": curate_precision_original_xpaths,
    "curate, favor: precision, fallbacks: false": curate_precision_no_fallbacks,
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


def timed_texts(extract, pages, repeat: int) -> tuple[list[str], float, float]:
    """Extracted text per page ("" when the extractor fails or finds nothing), wall and CPU seconds taken."""
    texts = []
    seconds = cpu_seconds = 0.0
    for url, html, *_ in pages:
        text = ""
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(repeat):
            try:
                text = extract(html, url) or ""
            except Exception:
                text = ""
        seconds += (time.perf_counter() - start) / repeat
        cpu_seconds += (time.process_time() - cpu_start) / repeat
        texts.append(text)
    return texts, seconds, cpu_seconds


def score_snippets(extract, pages, repeat: int = 1) -> dict:
    with_right = with_total = without_right = without_total = pages_all_right = 0
    texts, seconds, cpu_seconds = timed_texts(extract, pages, repeat)
    for text, (url, html, must, must_not) in zip(texts, pages):
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
        "cpu_pages_per_s": len(pages) / cpu_seconds,
        "snippets": with_total + without_total,
    }


def load_wcxb_held_out(data_dir: str) -> list[tuple[str, str, str, str]]:
    """(url, html, page type, human main text) of the held-out WCXB dev pages, in corpus order."""
    truth = load_wcxb_truth(data_dir)
    return [
        (url, html, truth[url]["page_type"], truth[url]["main_content"])
        for url, html in load_web_pages(data_dir)
        if url in truth and is_held_out(url)
    ]


def score_wcxb(extract, pages, repeat: int = 1) -> dict:
    texts, seconds, cpu_seconds = timed_texts(extract, pages, repeat)
    scores = [word_f1(text, reference) for text, (_, _, _, reference) in zip(texts, pages)]
    by_type: dict[str, list[float]] = {}
    for value, (_, _, kind, _) in zip(scores, pages):
        by_type.setdefault(kind, []).append(value)
    return {
        "f1": sum(scores) / len(scores),
        "by_type": {kind: sum(v) / len(v) for kind, v in sorted(by_type.items())},
        "pages_per_s": len(pages) / seconds,
        "cpu_pages_per_s": len(pages) / cpu_seconds,
    }


def run_set(extractors: dict, pages, scorer, repeat: int) -> dict:
    # Warm up imports, models and lazily built config outside the timed loop.
    for extract in extractors.values():
        extract(pages[0][1], pages[0][0])
    results = {}
    for name, extract in extractors.items():
        original = getattr(extract, "original_xpaths", False)
        walk_off = getattr(extract, "block_walk_off", False)
        if original:
            compiled_xpaths.uninstall()
        if walk_off:
            os.environ["CURATE_SPEEDUP_BLOCK_WALK"] = "off"
        try:
            results[name] = scorer(extract, pages, repeat)
        finally:
            if original:
                compiled_xpaths.install()
            if walk_off:
                del os.environ["CURATE_SPEEDUP_BLOCK_WALK"]
    return results


SPEED_HEADER = "pages/s | speed | pages/s (CPU time) | speed (CPU time) |"
SPEED_RULE = "---: | ---: | ---: | ---: |"


def speed_cells(result: dict, baseline: dict) -> str:
    """Wall-clock and CPU-time pages/s, each also relative to the baseline extractor's."""
    wall, cpu = result["pages_per_s"], result["cpu_pages_per_s"]
    return f"{wall:.1f} | {wall / baseline['pages_per_s']:.1f}x | {cpu:.1f} | {cpu / baseline['cpu_pages_per_s']:.1f}x |"


def print_snippets(results: dict, pages: list, folder: str) -> None:
    snippets = next(iter(results.values()))["snippets"]
    print(f"\n{len(pages)} pages, {snippets} snippets ({folder})")
    print("| extractor | snippets right | `with` found | `without` absent | pages fully right | " + SPEED_HEADER)
    print("| --- | ---: | ---: | ---: | ---: | " + SPEED_RULE)
    for name, r in results.items():
        print(
            f"| {name} | {r['all']:.1%} | {r['with']:.1%} | {r['without']:.1%} | {r['pages_all_right']} | "
            + speed_cells(r, results[BASELINE])
        )


def print_wcxb(results: dict, pages: list, data_dir: str) -> None:
    kinds = list(next(iter(results.values()))["by_type"])
    counts = {k: sum(p[2] == k for p in pages) for k in kinds}
    print(f"\nWCXB dev, held-out pages: {len(pages)} (word-level F1, mean over pages; {data_dir}/web)")
    print("| extractor | F1 | " + " | ".join(f"{k} ({counts[k]})" for k in kinds) + " | " + SPEED_HEADER)
    print("| --- | ---: | " + " | ".join("---:" for _ in kinds) + " | " + SPEED_RULE)
    for name, r in results.items():
        cells = " | ".join(f"{r['by_type'][k]:.3f}" for k in kinds)
        print(f"| {name} | {r['f1']:.3f} | {cells} | " + speed_cells(r, results[BASELINE]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(shared_data()), help="the shared data folder (holds html/ and web/)")
    parser.add_argument("--sets", default="snippets,wcxb")
    parser.add_argument("--all", action="store_true", help="also the trafilatura variants and plain resiliparse")
    parser.add_argument("--repeat", type=int, default=1, help="time each page this many times (accuracy is unchanged)")
    parser.add_argument("--only", default="", help="comma-separated words: run only extractors whose name holds one (and the baseline)")
    args = parser.parse_args()
    extractors = dict(MAIN_EXTRACTORS, **(MORE_EXTRACTORS if args.all else {}))
    if args.only:
        words = args.only.split(",")
        extractors = {name: f for name, f in extractors.items() if name == BASELINE or any(w in name for w in words)}
    sets = args.sets.split(",")
    if "snippets" in sets:
        folder = os.path.join(args.data, "html", "trafilatura-eval")
        pages = load_pages(folder)
        print_snippets(run_set(extractors, pages, score_snippets, args.repeat), pages, folder)
    if "wcxb" in sets:
        pages = load_wcxb_held_out(args.data)
        print_wcxb(run_set(extractors, pages, score_wcxb, args.repeat), pages, args.data)


if __name__ == "__main__":
    main()
