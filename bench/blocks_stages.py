"""Where the ``blocks`` extractor's time goes, stage by stage, against trafilatura on the same pages.

Per evaluation set (as in ``bench/extract.py``: the 290 trafilatura-eval pages, the held-out WCXB
pages), CPU seconds of this process (``time.process_time``, so a loaded machine does not blur
the shares) for: libxml2 parsing, the XSLT segmenter, reading its string into blocks and frames
(Python), dense features (numpy), stage 1 and stage 2 of the model; then ``trafilatura.extract``
over the same pages, and the ratio of the two totals. ``compiled walk`` is the speed-up
``curate.speedups.block_walk`` (C walk over the same tree, the same blocks) in place of the two
segmenter stages, timed on the same pages; the last columns are the totals with it.

    nice -n 15 .venv/bin/python bench/blocks_stages.py [--data DATA_DIR] [--sets snippets,wcxb]
"""

from __future__ import annotations

import argparse
import os
import time


from common import shared_data
from extract import load_pages, load_wcxb_held_out, plain_trafilatura

from curate.blocks import MARKERS_IN_HTML, SKIPPED_TAGS, block_features, parse_html, read_segments, segmenter
from curate.speedups import block_walk
from curate.extract_blocks import ancestor_ids, context_features, shared_model, stage1_logits, stage2_logits

STAGES = ("parse", "segment (XSLT)", "read blocks", "features", "stage 1", "stage 2")
REFERENCE_ONLY = ("segment (XSLT)", "read blocks")


def compiled_walk_seconds(htmls: list[str]) -> float:
    """CPU seconds of the compiled walk (``curate.speedups.block_walk``) over the parsed pages, parsing not counted."""
    if block_walk.compiled() is None:
        return float("nan")
    seconds = 0.0
    for html in htmls:
        root = parse_html(html)
        if root is not None:
            start = time.process_time()
            block_walk.page_blocks(root, html)
            seconds += time.process_time() - start
    return seconds


def stage_seconds(htmls: list[str], model: dict) -> dict[str, float]:
    """CPU seconds per stage over the pages."""
    seconds = dict.fromkeys(STAGES, 0.0)
    clock = time.process_time
    for html in htmls:
        marks = [clock()]
        root = parse_html(html)
        marks.append(clock())
        if root is not None:
            stream = str(segmenter(SKIPPED_TAGS, MARKERS_IN_HTML.search(html) is not None)(root))  # as page_blocks
            marks.append(clock())
            page = read_segments(stream)
            marks.append(clock())
            if page.texts:
                dense, tokens = block_features(page)
                marks.append(clock())
                logits = stage1_logits(model, dense, tokens)
                marks.append(clock())
                stage2_logits(model, context_features(ancestor_ids(page), len(page.parent), logits, dense))
                marks.append(clock())
        for name, start, end in zip(STAGES, marks, marks[1:]):
            seconds[name] += end - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(shared_data()))
    parser.add_argument("--sets", default="snippets,wcxb")
    args = parser.parse_args()
    model = shared_model()
    sets = {
        "snippets": lambda: [html for _, html, *_ in load_pages(os.path.join(args.data, "html", "trafilatura-eval"))],
        "wcxb": lambda: [html for _, html, *_ in load_wcxb_held_out(args.data)],
    }
    print(
        "| set | pages | "
        + " | ".join(STAGES)
        + " | blocks total | trafilatura | trafilatura / blocks | compiled walk | total with it | trafilatura / that |"
    )
    print("| --- | ---: | " + " | ".join("---:" for _ in STAGES) + " | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.sets.split(","):
        htmls = sets[name]()
        stage_seconds(htmls[:1], model)  # warm up imports and the stylesheet outside the timing
        seconds = stage_seconds(htmls, model)
        compiled_walk_seconds(htmls[:1])
        walk = compiled_walk_seconds(htmls)
        start = time.process_time()
        for html in htmls:
            plain_trafilatura(html, None)
        baseline = time.process_time() - start
        total = sum(seconds.values())
        compiled_total = total - sum(seconds[stage] for stage in REFERENCE_ONLY) + walk
        cells = " | ".join(f"{v:.2f} s ({v / total:.0%})" for v in seconds.values())
        print(
            f"| {name} | {len(htmls)} | {cells} | {total:.2f} s | {baseline:.2f} s | {baseline / total:.2f}x"
            f" | {walk:.2f} s | {compiled_total:.2f} s | {baseline / compiled_total:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
