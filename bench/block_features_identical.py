"""One-off check: the ``blocks`` extractor's features and inference give the same outputs after a rewrite.

Per page of both sets of ``bench/extract.py`` (the 290 trafilatura-eval pages, the 418 held-out
WCXB pages): the dense features, the token ids per block, the edge word ids, the stage-1 logits,
the stage-2 inputs, the stage-2 probabilities and the extracted text. ``--save`` writes them with
the code checked out (run it at the commit before the rewrite), ``--check`` compares the code
checked out now against that file: token ids and texts must be equal, floats equal to float32
rounding (4 ulp of the largest value; a near tie can move ``rank_in_page`` by one place, which
counts as a difference of the stage-2 inputs); it prints how many pages differ in each and the
largest float difference.

    git stash / git checkout main; nice -n 15 .venv/bin/python bench/block_features_identical.py --save /tmp/blocks_reference.pkl
    git checkout feat; nice -n 15 .venv/bin/python bench/block_features_identical.py --check /tmp/blocks_reference.pkl
"""

from __future__ import annotations

import argparse
import os
import pickle

import numpy as np


from common import shared_data
from extract import load_pages, load_wcxb_held_out

from curate.blocks import PageTooDeep, block_features, page_blocks
from curate.extract_blocks import (
    ancestor_ids,
    block_probabilities,
    context_features,
    extract_main_text,
    shared_model,
    stage1_logits,
)

FLOATS = ("dense", "logits", "context", "probability")
EXACT = ("token_ids", "words", "text")


def page_outputs(html: str, model: dict) -> dict | None:
    """Every intermediate output of the extractor on a page (only the text for a page too deep or without blocks)."""
    text = extract_main_text(html, model)
    try:
        page = page_blocks(html)
    except PageTooDeep:
        return {"text": text}
    if not page.texts:
        return {"text": text}
    dense, tokens = block_features(page)
    logits = stage1_logits(model, dense, tokens)
    context = context_features(ancestor_ids(page), len(page.parent), logits, dense)
    return {
        "dense": dense,
        "token_ids": tokens.per_block(),
        "words": tokens.words.tolist(),
        "logits": logits,
        "context": context,
        "probability": block_probabilities(page, model),
        "text": text,
    }


def compare(reference: list[dict], current: list[dict]) -> dict[str, tuple[int, float]]:
    """Per output: (pages that differ, largest absolute difference of a float output)."""
    found = {name: [0, 0.0] for name in FLOATS + EXACT}
    for old, new in zip(reference, current):
        for name in FLOATS + EXACT:
            a, b = old.get(name), new.get(name)
            if name in EXACT or a is None or b is None:
                found[name][0] += a != b
                continue
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape or a.dtype != b.dtype:
                found[name][0] += 1
                continue
            gap = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
            scale = float(np.abs(a).max()) if a.size else 0.0
            found[name][0] += gap > 4 * np.finfo(np.float32).eps * max(scale, 1.0)
            found[name][1] = max(found[name][1], gap)
    return {name: (count, gap) for name, (count, gap) in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(shared_data()))
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", help="write the outputs of the code checked out to this file")
    action.add_argument("--check", help="compare the code checked out against this file")
    args = parser.parse_args()
    model = shared_model()
    sets = {
        "snippets": [html for _, html, *_ in load_pages(os.path.join(args.data, "html", "trafilatura-eval"))],
        "wcxb": [html for _, html, *_ in load_wcxb_held_out(args.data)],
    }
    outputs = {name: [page_outputs(html, model) for html in htmls] for name, htmls in sets.items()}
    if args.save:
        with open(args.save, "wb") as file:
            pickle.dump(outputs, file)
        print(f"saved {sum(map(len, outputs.values()))} pages to {args.save}")
        return
    with open(args.check, "rb") as file:
        reference = pickle.load(file)
    for name, pages in outputs.items():
        found = compare(reference[name], pages)
        cells = ", ".join(
            f"{key} differ on {count}" + (f" (max |diff| {gap:.2g})" if key in FLOATS else "") for key, (count, gap) in found.items()
        )
        print(f"{name}: {len(pages)} pages: {cells}")


if __name__ == "__main__":
    main()
