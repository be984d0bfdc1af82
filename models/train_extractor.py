"""Train the block extractor's model (``models/extractor/model.npz``) from the shared web corpus.

    nice -n 15 .venv/bin/python models/train_extractor.py [--data ../shared/data] [--distill]

Labels per block (a block is a text run between block-level tags, ``curate.blocks``):

* WCXB dev pages outside the held-out 30% (``curate.extract_eval.is_held_out``): a block is
  main text when at least half of the page's word trigrams that touch it (its own and the two
  straddling each of its edges) occur in the human-written main text;
* with ``--distill``, every other page of the corpus (not WCXB, and not the product benchmark's
  shop pages, :data:`NOT_DISTILLED`): the same rule against the text curate's trafilatura default
  extracts, at half the weight (trafilatura's decisions, distilled). Slow: trafilatura runs on
  ~1,650 pages.

Held-out WCXB pages are never read for training or for choosing the threshold. Loss weights
grow with the square root of a block's word count, because the target metric counts words.

Stage 1 (dense features + hashed tokens + hashed first/last words -> 32 ReLU units -> logit)
is trained twice on halves of the training pages to give out-of-fold logits, on which stage 2
(context features -> 32 ReLU units -> logit) is trained; then stage 1 is retrained on all
training pages. The training figures are out of fold for both stages (a stage 2 trained on one
half's out-of-fold inputs, applied to the other half), and the page-threshold share
(:func:`curate.extract_blocks.kept_blocks`) is the one with the best out-of-fold mean word-F1 on the
WCXB training pages. Learning rates fall linearly to zero.
Everything is seeded; torch runs on one thread. Writes the model and prints the figures for the
model card (held-out figures last: run it once per change, not to choose between changes).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from curate.blocks import DENSE_FEATURES, HASH_BUCKETS, MAX_TOKENS_PER_BLOCK, WORD_BUCKETS, block_features, page_blocks  # noqa: E402
from curate.extract_blocks import (  # noqa: E402
    CONTEXT_FEATURES,
    ancestor_ids,
    block_word_counts,
    context_features,
    kept_blocks,
    load_model,
    main_text,
    stage1_logits,
    stage2_logits,
)
from curate.extract_eval import (  # noqa: E402
    default_data_dir,
    is_held_out,
    load_wcxb_truth,
    load_web_pages,
    load_web_sources,
    word_f1,
    words,
)

HIDDEN = 32
CONTEXT_HIDDEN = 32
DISTILLED_WEIGHT = 0.5
# Sets whose pages are not distilled: trafilatura is an article extractor, and on the product
# benchmark's shop pages its text keeps reviews, specifications and related items that WCXB's human
# references for product pages leave out. Out of fold, leaving them out took WCXB training F1 from
# 0.8410 to 0.8438 (seed 0) and 0.8399 to 0.8444 (seed 1), product pages +0.03.
NOT_DISTILLED = frozenset({"product"})
LABEL_SHARE = 0.5  # share of a block's trigrams found in the reference that makes it main text
# L2 penalty of stage 1 (Adam's weight_decay). The hashed token tables are large next to the data
# (8,192 + 4,096 rows of 32) and overfit: out of fold on the WCXB training pages, 1e-6 gave 0.8499,
# 1e-5 0.8537, 1e-4 0.8573, 3e-4 0.8578, 1e-3 0.8585 (seed 1: 0.8593), 3e-3 0.8576, 1e-2 0.8547.
STAGE1_WEIGHT_DECAY = 1e-3
# Share of a block's hashed tokens dropped at random in each stage-1 training step (with the decay
# above: 0.8585 / 0.8593 -> 0.8617 / 0.8610 out of fold, seeds 0 / 1; 0.4 gave 0.8610).
TOKEN_DROPOUT = 0.2


def reference_trigrams(text: str) -> set:
    tokens = words(text)
    return set(zip(tokens, tokens[1:], tokens[2:]))


def block_labels(texts: list[str], reference: str) -> np.ndarray:
    """1 for a block whose word trigrams mostly occur in the reference, else 0.

    The trigrams are read over the page's words in order, so a block is judged by its own trigrams
    and the two that straddle each of its edges: a one-word menu item ("Home") whose word happens to
    occur in the main text is not main text unless its neighbours' words follow it there too.
    """
    trigrams = reference_trigrams(reference)
    tokens = [words(t) for t in texts]
    flat = [w for block in tokens for w in block]
    found = np.array([g in trigrams for g in zip(flat, flat[1:], flat[2:])], dtype=np.float64)
    labels = np.zeros(len(texts), dtype=np.float32)
    position = 0
    for row, block in enumerate(tokens):
        touching = found[max(position - 2, 0) : min(position + len(block), len(found))]
        if block and len(touching):
            labels[row] = touching.mean() >= LABEL_SHARE
        position += len(block)
    return labels


def page_record(html: str) -> dict | None:
    page = page_blocks(html)
    if not page.texts:
        return None
    dense, tokens = block_features(page)
    return {
        "texts": page.texts,
        "dense": dense,
        "tokens": tokens,
        "ancestors": ancestor_ids(page),
        "frames": len(page.parent),
    }


def distilled_texts(pages: list[tuple[str, str]], truth: dict, cache: str | None) -> dict[str, str | None]:
    """curate's trafilatura default on every non-WCXB page (url -> text), kept in ``cache`` if given."""
    if cache and os.path.exists(cache):
        with open(cache, "rb") as handle:
            return pickle.load(handle)
    from curate.extract import html_to_text

    texts = {url: html_to_text(html, url) for url, html in pages if url not in truth}
    if cache:
        with open(cache, "wb") as handle:
            pickle.dump(texts, handle)
    return texts


def collect(data_dir: str, distill: bool, cache: str | None) -> tuple[list[dict], list[dict]]:
    """(training page records, held-out WCXB page records)."""
    truth = load_wcxb_truth(data_dir)
    train, held_out = [], []
    sources = load_web_sources(data_dir)
    pages = [(url, html) for url, html in load_web_pages(data_dir) if url in truth or sources.get(url) not in NOT_DISTILLED]
    distilled = distilled_texts(pages, truth, cache) if distill else {}
    for url, html in pages:
        if url in truth:
            reference, weight, kind = truth[url]["main_content"], 1.0, truth[url]["page_type"]
        elif distill:
            reference, weight, kind = distilled.get(url) or "", DISTILLED_WEIGHT, "distilled"
        else:
            continue
        record = page_record(html)
        if record is None:
            continue
        record.update(url=url, reference=reference, weight=weight, page_type=kind)
        record["labels"] = block_labels(record["texts"], reference)
        (held_out if url in truth and is_held_out(url) else train).append(record)
    return train, held_out


def block_weights(record: dict) -> np.ndarray:
    counts = np.array([len(words(t)) for t in record["texts"]], dtype=np.float32)
    return record["weight"] * np.sqrt(np.maximum(counts, 1.0))


def decaying(optimizer, steps: int):
    """Learning rate falling linearly to zero over the run (better out-of-fold F1, less seed-to-seed noise than a constant rate)."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / steps))


def dropped_tokens(bags, generator):
    """The token bags with each id replaced by padding at rate TOKEN_DROPOUT, so no single class name carries a block."""
    import torch

    return bags.masked_fill(torch.rand(bags.shape, generator=generator) < TOKEN_DROPOUT, HASH_BUCKETS)


def padded_blocks(records: list[dict]) -> np.ndarray:
    """Every block's hashed tokens as one row, padded with the empty bucket ``HASH_BUCKETS``."""
    tokens = [ids for r in records for ids in r["tokens"].per_block()]
    padded = np.full((len(tokens), MAX_TOKENS_PER_BLOCK), HASH_BUCKETS, dtype=np.int64)
    for row, ids in enumerate(tokens):
        padded[row, : len(ids)] = ids
    return padded


def hashed_bag(buckets: int):
    """A summing bag over ``buckets`` hashed ids plus a padding row that stays zero (drawn from
    torch's generator in the same order as before the split, so a seed trains the same model)."""
    import torch

    bag = torch.nn.EmbeddingBag(buckets + 1, HIDDEN, mode="sum", padding_idx=buckets)
    with torch.no_grad():
        torch.nn.init.normal_(bag.weight, std=0.01)
        bag.weight[buckets].zero_()
    return bag


def train_stage1(records: list[dict], seed: int, epochs: int = 6) -> dict:
    import torch

    torch.manual_seed(seed)
    dense = np.concatenate([r["dense"] for r in records])
    mean = dense.mean(axis=0)
    scale = dense.std(axis=0) + 1e-3
    x = torch.from_numpy((dense - mean) / scale)
    bags = torch.from_numpy(padded_blocks(records))
    word_bags = torch.from_numpy(np.concatenate([r["tokens"].words for r in records]).astype(np.int64))
    y = torch.from_numpy(np.concatenate([r["labels"] for r in records]))
    w = torch.from_numpy(np.concatenate([block_weights(r) for r in records]))
    dense_layer = torch.nn.Linear(dense.shape[1], HIDDEN)
    embedding = hashed_bag(HASH_BUCKETS)
    word_embedding = hashed_bag(WORD_BUCKETS)
    out = torch.nn.Linear(HIDDEN, 1)
    params = [*dense_layer.parameters(), *embedding.parameters(), *word_embedding.parameters(), *out.parameters()]
    optimizer = torch.optim.Adam(params, lr=3e-3, weight_decay=STAGE1_WEIGHT_DECAY)
    schedule = decaying(optimizer, epochs * -(-len(y) // 2048))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), 2048):
            idx = order[start : start + 2048]
            hidden = torch.relu(dense_layer(x[idx]) + embedding(dropped_tokens(bags[idx], generator)) + word_embedding(word_bags[idx]))
            logit = out(hidden).squeeze(1)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, y[idx], reduction="none") * w[idx]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return {
        "dense_mean": mean.astype(np.float32),
        "dense_scale": scale.astype(np.float32),
        "w1_dense": dense_layer.weight.detach().numpy().T.copy(),
        "b1": dense_layer.bias.detach().numpy().copy(),
        "embedding": embedding.weight.detach().numpy()[:HASH_BUCKETS].copy(),
        "word_embedding": word_embedding.weight.detach().numpy().copy(),  # its last row, "no word", stays zero
        "w2": out.weight.detach().numpy()[0].copy(),
        "b2": out.bias.detach().numpy().astype(np.float32).reshape(()),
    }


def train_stage2(context: np.ndarray, labels: np.ndarray, weights: np.ndarray, seed: int, epochs: int = 8) -> dict:
    import torch

    torch.manual_seed(seed)
    x, y, w = (torch.from_numpy(a.astype(np.float32)) for a in (context, labels, weights))
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], CONTEXT_HIDDEN), torch.nn.ReLU(), torch.nn.Linear(CONTEXT_HIDDEN, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    schedule = decaying(optimizer, epochs * -(-len(y) // 1024))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), 1024):
            idx = order[start : start + 1024]
            logit = net(x[idx]).squeeze(1)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, y[idx], reduction="none") * w[idx]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return {
        "s2_w1": net[0].weight.detach().numpy().T.copy(),
        "s2_b1": net[0].bias.detach().numpy().copy(),
        "s2_w2": net[2].weight.detach().numpy()[0].copy(),
        "s2_b2": net[2].bias.detach().numpy().astype(np.float32).reshape(()),
    }


def page_context(model: dict, record: dict) -> np.ndarray:
    logits = stage1_logits(model, record["dense"], record["tokens"])
    return context_features(record["ancestors"], record["frames"], logits, record["dense"])


def out_of_fold_context(records: list[dict], seed: int) -> list[np.ndarray]:
    """Stage-2 inputs for every training page from a stage-1 model that never saw that page."""
    folds = [records[0::2], records[1::2]]
    models = [train_stage1(folds[1], seed), train_stage1(folds[0], seed)]
    contexts: list[np.ndarray] = [None] * len(records)  # type: ignore[list-item]
    for fold, model in enumerate(models):
        for offset, record in enumerate(folds[fold]):
            contexts[fold + 2 * offset] = page_context(model, record)
    return contexts


def out_of_fold_probabilities(records: list[dict], contexts: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Stage-2 probabilities of every training page from a stage 2 trained on the other half (for the figures and the threshold).

    The halves are those of :func:`out_of_fold_context`, so each page's stage-1 inputs also come from a model that never saw it.
    """
    halves = [list(range(len(records)))[fold::2] for fold in range(2)]
    probs: list[np.ndarray] = [None] * len(records)  # type: ignore[list-item]
    for fold, rows in enumerate(halves):
        other = halves[1 - fold]
        model = train_stage2(
            np.concatenate([contexts[i] for i in other]),
            np.concatenate([records[i]["labels"] for i in other]),
            np.concatenate([block_weights(records[i]) for i in other]),
            seed,
        )
        for i in rows:
            probs[i] = probabilities(model, contexts[i])
    return probs


def page_text(record: dict, probability: np.ndarray, share: float) -> str | None:
    """The text the extractor would give (the same kept-block rule, :func:`curate.extract_blocks.kept_blocks`)."""
    words = block_word_counts(record["dense"])
    return main_text(record["texts"], kept_blocks(probability, words, share), words)


def probabilities(model: dict, context: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(stage2_logits(model, context), -30, 30)))


def mean_f1(records: list[dict], probs: list[np.ndarray], share: float) -> float:
    scores = [word_f1(page_text(r, p, share), r["reference"]) for r, p in zip(records, probs)]
    return float(np.mean(scores)) if scores else float("nan")


def per_type(records: list[dict], probs: list[np.ndarray], share: float) -> dict[str, tuple[int, float]]:
    kinds = sorted({r["page_type"] for r in records})
    return {
        k: (
            sum(r["page_type"] == k for r in records),
            mean_f1([r for r in records if r["page_type"] == k], [p for r, p in zip(records, probs) if r["page_type"] == k], share),
        )
        for k in kinds
    }


def load_records(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    if args.features_cache and os.path.exists(args.features_cache):
        with open(args.features_cache, "rb") as handle:
            return pickle.load(handle)
    train, held_out = collect(args.data, args.distill, args.distilled_cache)
    if args.features_cache:
        with open(args.features_cache, "wb") as handle:
            pickle.dump((train, held_out), handle)
    return train, held_out


def save_model(model: dict, share: float, path: str) -> None:
    meta = {
        "dense_features": list(DENSE_FEATURES),
        "context_features": list(CONTEXT_FEATURES),
        "hash_buckets": HASH_BUCKETS,
        "word_buckets": WORD_BUCKETS,
        "threshold_share": share,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = {k: (v.astype(np.float16) if k in ("embedding", "word_embedding") else v) for k, v in model.items()}
    temporary = path + ".partial.npz"
    np.savez_compressed(temporary, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(temporary, path)


def print_figures(train: list[dict], oof_probs: list[np.ndarray], held_out: list[dict], path: str, share: float) -> None:
    """Training pages out of fold (WCXB per page type, and agreement with trafilatura on the distilled pages); held-out pages."""
    wcxb = [(r, p) for r, p in zip(train, oof_probs) if r["page_type"] != "distilled"]
    distilled = [(r, p) for r, p in zip(train, oof_probs) if r["page_type"] == "distilled"]
    records, probs = [r for r, _ in wcxb], [p for _, p in wcxb]
    print(f"threshold share {share}; training WCXB pages (out of fold, both stages): mean word-F1 {mean_f1(records, probs, share):.4f}")
    for kind, (count, f1) in per_type(records, probs, share).items():
        print(f"  train {kind}: {count} pages, {f1:.4f}")
    agreement = mean_f1([r for r, _ in distilled], [p for _, p in distilled], share)
    print(f"distilled pages: {len(distilled)}, mean word-F1 against trafilatura's text (out of fold) {agreement:.4f}")
    final = load_model(path)
    held_probs = [probabilities(final, page_context(final, r)) for r in held_out]
    print(f"held-out WCXB pages: {len(held_out)}, mean word-F1 {mean_f1(held_out, held_probs, share):.4f}")
    for kind, (count, f1) in per_type(held_out, held_probs, share).items():
        print(f"  held-out {kind}: {count} pages, {f1:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_data_dir(REPO))
    parser.add_argument("--distill", action="store_true", help="also label non-WCXB pages with curate's trafilatura default")
    parser.add_argument("--distilled-cache", help="pickle file keeping the trafilatura texts between runs")
    parser.add_argument("--features-cache", help="pickle file keeping page features between runs (delete it when features change)")
    parser.add_argument("--out", default=os.path.join(REPO, "models", "extractor", "model.npz"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    start = time.time()
    train, held_out = load_records(args)
    print(
        f"pages: {len(train)} training ({sum(r['page_type'] != 'distilled' for r in train)} WCXB), {len(held_out)} held out; "
        f"blocks: {sum(len(r['texts']) for r in train)} training; {time.time() - start:.0f} s",
        flush=True,
    )
    contexts = out_of_fold_context(train, args.seed)
    oof_probs = out_of_fold_probabilities(train, contexts, args.seed)
    wcxb = [(r, p) for r, p in zip(train, oof_probs) if r["page_type"] != "distilled"]
    records, probs = [r for r, _ in wcxb], [p for _, p in wcxb]
    share = round(float(max(np.arange(0.3, 0.81, 0.05), key=lambda t: mean_f1(records, probs, float(t)))), 2)
    labels = np.concatenate([r["labels"] for r in train])
    weights = np.concatenate([block_weights(r) for r in train])
    model = train_stage2(np.concatenate(contexts), labels, weights, args.seed)
    model.update(train_stage1(train, args.seed))
    save_model(model, share, args.out)
    print_figures(train, oof_probs, held_out, args.out, share)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
