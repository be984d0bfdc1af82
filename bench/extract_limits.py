"""The extract stage's page limits on real pages: how many each rule rejects, and what the rules cost.

    .venv/bin/python bench/extract_limits.py [--data DIR] [--pathological]

Reads every HTML response of the shared web corpus (``shared/data/web/web-*.warc.gz``, 3,132
pages) as the WARC reader decodes it and reports, per rule of ``curate.extract.page_limit``
(size in characters, start tags, container depth on the tag stream): the largest values, the
99th and 99.9th percentiles, how many pages the default limit rejects, and the CPU seconds the
two scans take over the corpus. ``--pathological`` also times each extractor (one process, CPU
seconds) on generated pages just under and over the limits: deep ``<div>`` nesting, a flat list
of 100,000 links, a paragraph of 20,000 ``<span>`` words.

    .venv/bin/python bench/extract_limits.py --stops web-001.warc.gz [--extractor trafilatura] [--share 0.5] [--seed 7]

looks for state an abandoned page leaves behind: one process extracts the file's pages once, then
again, stopping about ``--share`` of them part-way (the opt-in CPU timer of the extract stage, at a
random share of the page's own time) before extracting them once more; every page must come out
as in the first pass.
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import numpy as np

from common import emit, load_average, shared_data

from curate.extract import EXTRACTORS, ExtractParams, container_depth, element_count
from curate.warc import read_warc

SENTENCE = "A sentence of ordinary article text that goes on for a while. "


def corpus_pages(data: Path):
    for path in sorted(glob.glob(str(data / "web" / "web-*.warc.gz"))):
        yield from corpus_pages_of(Path(path))


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
    emit(load=load_average())


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
    emit(load=load_average())


def hunt_stops(path: Path, extractor: str, share: float, seed: int) -> None:
    import random

    from curate.extract import ExtractTimeout, time_limit

    extract = EXTRACTORS[extractor]
    pages = [(url, html or "") for url, html in corpus_pages_of(path)]
    extract(pages[0][1])  # first-use caches and models, outside the comparison
    clean, seconds = [], []
    for url, html in pages:
        start = time.process_time()
        clean.append(extract(html, url))
        seconds.append(time.process_time() - start)
    rng, stops, different = random.Random(seed), 0, []
    for index, (url, html) in enumerate(pages):
        if rng.random() < share and seconds[index] > 0.004:
            try:
                with time_limit(seconds[index] * rng.uniform(0.05, 0.95)):
                    extract(html, url)
            except ExtractTimeout:
                stops += 1
        if extract(html, url) != clean[index]:
            different.append(url)
    emit(
        file=path.name,
        extractor=extractor,
        pages=len(pages),
        stopped=stops,
        different=len(different),
        urls=different[:10],
        load=load_average(),
    )


def corpus_pages_of(path: Path):
    for batch in read_warc(str(path), "web"):
        yield from zip(batch.column("url").to_pylist(), batch.column("html").to_pylist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: bench/common.py's shared_data())")
    parser.add_argument("--pathological", action="store_true", help="also time the extractors on generated pathological pages")
    parser.add_argument("--stops", metavar="WARC", help="look for state left by stopped pages in this file of the web corpus instead")
    parser.add_argument("--extractor", default="trafilatura", choices=sorted(EXTRACTORS))
    parser.add_argument("--share", type=float, default=0.5, help="--stops: share of the pages stopped part-way")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = args.data or shared_data()
    if args.stops:
        hunt_stops(data / "web" / args.stops, args.extractor, args.share, args.seed)
        return
    measure_corpus(data)
    if args.pathological:
        time_pathological()


if __name__ == "__main__":
    main()
