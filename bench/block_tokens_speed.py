"""The compiled token bag (``curate.speedups.block_walk.block_tokens``) against ``curate.blocks.block_tokens``.

Both in one process and interleaved, so that the VM's drift between runs cancels: CPU time of
``block_tokens`` alone over each set's pages (reference, then compiled), and of a whole
``html_to_text_blocks`` pass with the compiled bag off (the reference runs) and on; the minimum
of ``--rounds`` rounds of each.

    nice -n 15 .venv/bin/python bench/block_tokens_speed.py [--data DATA_DIR] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os

import extract as bench_extract  # bench/extract.py: the page sets
from common import cpu_timed, shared_data

from curate import blocks
from curate.extract import html_to_text_blocks
from curate.speedups import block_walk


def cpu_seconds(run) -> float:
    return cpu_timed(run)[0]


def measure(htmls: list[str], rounds: int) -> dict[str, float]:
    """Minimum CPU seconds per variant over the rounds (bag: block_tokens alone; pass: the whole extractor)."""
    pages = [page for page in map(blocks.page_blocks, htmls) if page.texts]
    inputs = [(page, blocks.text_counts(page.texts)["edge_words"]) for page in pages]
    compiled_bag = block_walk.block_tokens
    for html in htmls[:30]:
        html_to_text_blocks(html)
    best = dict.fromkeys(("bag reference", "bag compiled", "pass reference", "pass compiled"), float("inf"))

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best[name], seconds)

    for _ in range(rounds):
        os.environ["CURATE_SPEEDUP_BLOCK_WALK"] = "off"
        keep("bag reference", cpu_seconds(lambda: [blocks.block_tokens(p, w) for p, w in inputs]))
        del os.environ["CURATE_SPEEDUP_BLOCK_WALK"]
        keep("bag compiled", cpu_seconds(lambda: [compiled_bag(p, w) for p, w in inputs]))
        block_walk.block_tokens = lambda page, words: None  # the compiled bag off: curate.blocks runs its own loops
        try:
            keep("pass reference", cpu_seconds(lambda: [html_to_text_blocks(h) for h in htmls]))
        finally:
            block_walk.block_tokens = compiled_bag
        keep("pass compiled", cpu_seconds(lambda: [html_to_text_blocks(h) for h in htmls]))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(shared_data()))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sets = {
        "snippets": bench_extract.load_pages(os.path.join(args.data, "html", "trafilatura-eval")),
        "wcxb": bench_extract.load_wcxb_held_out(args.data),
    }
    for name, pages in sets.items():
        best = measure([page[1] for page in pages], args.rounds)
        figures = ", ".join(f"{key} {value:.3f} s" for key, value in best.items())
        print(
            f"{name} ({len(pages)} pages): {figures}; bag {best['bag reference'] / best['bag compiled']:.2f}x, "
            f"pass {best['pass reference'] / best['pass compiled']:.3f}x"
        )


if __name__ == "__main__":
    main()
