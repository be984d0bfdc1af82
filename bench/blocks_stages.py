"""Where the ``blocks`` extractor's time goes, stage by stage, against trafilatura on the same pages.

Per evaluation set (as in ``bench/extract.py``: the 290 trafilatura-eval pages, the held-out WCXB
pages), CPU seconds of this process (``time.process_time``, so a loaded machine does not blur
the shares) for: libxml2 parsing, the XSLT segmenter, reading its string into blocks and frames
(Python), dense features (numpy), stage 1 and stage 2 of the model; then ``trafilatura.extract``
over the same pages, and the ratio of the two totals.

    nice -n 15 .venv/bin/python bench/blocks_stages.py [--data DATA_DIR] [--sets snippets,wcxb]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract import REPO, load_pages, load_wcxb_held_out, plain_trafilatura  # noqa: E402

from curate.blocks import SKIPPED_TAGS, block_features, parse_html, read_segments, segmenter  # noqa: E402
from curate.extract_blocks import ancestor_ids, context_features, shared_model, stage1_logits, stage2_logits  # noqa: E402
from curate.extract_eval import default_data_dir  # noqa: E402

STAGES = ("parse", "segment (XSLT)", "read blocks", "features", "stage 1", "stage 2")


def stage_seconds(htmls: list[str], model: dict) -> dict[str, float]:
    """CPU seconds per stage over the pages."""
    seconds = dict.fromkeys(STAGES, 0.0)
    clock = time.process_time
    for html in htmls:
        marks = [clock()]
        root = parse_html(html)
        marks.append(clock())
        if root is not None:
            stream = str(segmenter(SKIPPED_TAGS, False)(root))
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
    parser.add_argument("--data", default=default_data_dir(REPO))
    parser.add_argument("--sets", default="snippets,wcxb")
    args = parser.parse_args()
    model = shared_model()
    sets = {
        "snippets": lambda: [html for _, html, *_ in load_pages(os.path.join(args.data, "html", "trafilatura-eval"))],
        "wcxb": lambda: [html for _, html, *_ in load_wcxb_held_out(args.data)],
    }
    print("| set | pages | " + " | ".join(STAGES) + " | blocks total | trafilatura | trafilatura / blocks |")
    print("| --- | ---: | " + " | ".join("---:" for _ in STAGES) + " | ---: | ---: | ---: |")
    for name in args.sets.split(","):
        htmls = sets[name]()
        stage_seconds(htmls[:1], model)  # warm up imports and the stylesheet outside the timing
        seconds = stage_seconds(htmls, model)
        start = time.process_time()
        for html in htmls:
            plain_trafilatura(html, None)
        baseline = time.process_time() - start
        total = sum(seconds.values())
        cells = " | ".join(f"{v:.2f} s ({v / total:.0%})" for v in seconds.values())
        print(f"| {name} | {len(htmls)} | {cells} | {total:.2f} s | {baseline:.2f} s | {baseline / total:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
