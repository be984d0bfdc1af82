"""The extract stage's page limits on real pages: how many each rule rejects, and what the rules cost.

    .venv/bin/python bench/extract_limits.py [--data DIR] [--pathological]

Reads every HTML response of the shared web corpus (``shared/data/web/web-*.warc.gz``, 3,132
pages) as the WARC reader decodes it and reports, per rule of ``curate.extract.page_limit``
(size in characters, start tags, container depth on the tag stream): the largest values, the
99th and 99.9th percentiles, how many pages the default limit rejects, and the CPU seconds the
two scans take over the corpus. ``--pathological`` also times each extractor (one process, CPU
seconds) on generated pages just under and over the limits: deep ``<div>`` nesting, a flat list
of 100,000 links, a paragraph of 20,000 ``<span>`` words.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curate.extract import EXTRACTORS, ExtractParams, container_depth, element_count  # noqa: E402
from curate.warc import read_warc  # noqa: E402

SENTENCE = "A sentence of ordinary article text that goes on for a while. "


def emit(**figures) -> None:
    print(json.dumps(figures), flush=True)


def corpus_pages(data: Path):
    for path in sorted(glob.glob(str(data / "web" / "web-*.warc.gz"))):
        for batch in read_warc(path, "web"):
            yield from zip(batch.column("url").to_pylist(), batch.column("html").to_pylist())


def measure_corpus(data: Path) -> None:
    defaults = ExtractParams()
    values: dict[str, list[tuple[float, str]]] = {"chars": [], "elements": [], "depth": []}
    cpu = {"elements": 0.0, "depth": 0.0}
    for url, html in corpus_pages(data):
        html = html or ""
        values["chars"].append((len(html), url))
        start = time.process_time()
        values["elements"].append((element_count(html), url))
        cpu["elements"] += time.process_time() - start
        start = time.process_time()
        values["depth"].append((container_depth(html), url))
        cpu["depth"] += time.process_time() - start
    limits = {"chars": defaults.max_html_chars, "elements": defaults.max_elements, "depth": defaults.max_depth}
    for name, pairs in values.items():
        numbers = np.array([v for v, _ in pairs], dtype=np.float64)
        emit(
            rule=name,
            pages=len(pairs),
            limit=limits[name],
            rejected=int((numbers > limits[name]).sum()),
            max=int(numbers.max()),
            p999=round(float(np.percentile(numbers, 99.9)), 1),
            p99=round(float(np.percentile(numbers, 99)), 1),
            median=float(np.median(numbers)),
            top=[[int(v), u] for v, u in sorted(pairs, reverse=True)[:3]],
            scan_cpu_seconds=round(cpu.get(name, 0.0), 2),
        )
    emit(load=os.getloadavg())


def pathological_pages() -> dict[str, str]:
    paragraph = "<p>" + SENTENCE * 5 + "</p>"

    def deep(levels: int) -> str:
        return "<html><body>" + "<div>x " * levels + paragraph + "</div>" * levels + "</body></html>"

    return {
        "div depth 1,000": deep(1000),
        "div depth 4,000": deep(4000),
        "100,000 links": "<html><body><article>"
        + paragraph
        + "<ul>"
        + "<li><a href='/x'>item</a></li>" * 100_000
        + "</ul></article></body></html>",
        "20,000 spans in a paragraph": "<html><body><article>"
        + paragraph
        + "<p>"
        + "<span>w</span> " * 20_000
        + "</p></article></body></html>",
    }


def time_pathological() -> None:
    for label, html in pathological_pages().items():
        for name, extract in EXTRACTORS.items():
            start = time.process_time()
            extract(html)
            emit(
                page=label,
                extractor=name,
                elements=element_count(html),
                depth=container_depth(html),
                cpu_seconds=round(time.process_time() - start, 3),
            )
    emit(load=os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: as bench/dedup_incremental.py finds it)")
    parser.add_argument("--pathological", action="store_true", help="also time the extractors on generated pathological pages")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from dedup_incremental import default_data

    measure_corpus(args.data or default_data())
    if args.pathological:
        time_pathological()


if __name__ == "__main__":
    main()
