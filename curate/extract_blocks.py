"""The ``blocks`` extractor: a small trained classifier keeps or drops each text block of a page.

Pipeline per page (all in one process, no network):

1. ``curate.blocks`` parses the page with lxml (libxml2, C) and cuts it into text blocks with
   cheap features (length, link density, punctuation, position, ancestor tags and class/id
   tokens, the text mass of the enclosing containers, the neighbours).
2. Stage 1, a one-hidden-layer network (dense features plus a bag of hashed tokens), gives
   each block a probability of being main text.
3. Stage 2, a tiny network over stage-1 probabilities in context (neighbouring blocks, the
   length-weighted mean over the enclosing containers, the page's best block), decides; blocks
   above the model's threshold are kept, joined by newlines, in page order.

Pages nested deeper than libxml2's 2048 levels (it would drop the rest of the page) go to
resiliparse's main-content extractor instead.

The model (``models/extractor/model.npz``) and how it was trained are described in
``models/extractor/MODEL_CARD.md``; ``models/train_extractor.py`` rebuilds it from the shared
web corpus. Inference is numpy only.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np

from curate.blocks import DENSE_FEATURES, HASH_BUCKETS, BlockTokens, PageBlocks, PageTooDeep, ancestors, block_features, page_blocks

MODEL_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "extractor", "model.npz")
CONTEXT_FEATURES = (
    "logit",
    "probability",
    "previous_probability",
    "previous2_probability",
    "next_probability",
    "next2_probability",
    "parent_mean_probability",
    "grandparent_mean_probability",
    "ancestor3_mean_probability",
    "page_max_probability",
    "page_mean_probability",
    "rank_in_page",
    "log_chars",
    "link_density",
)

_MODEL: dict | None = None
_MODEL_LOCK = threading.Lock()


def model_path() -> str:
    """The model file: ``$CURATE_EXTRACTOR_MODEL``, else the repository's ``models/extractor``."""
    return os.environ.get("CURATE_EXTRACTOR_MODEL") or MODEL_PATH


def load_model(path: str | None = None) -> dict:
    """Arrays of a model file, checked against this code's feature layout."""
    path = path or model_path()
    if not os.path.exists(path):
        raise FileNotFoundError(f"block extractor model not found: {path} (set CURATE_EXTRACTOR_MODEL)")
    with np.load(path, allow_pickle=False) as archive:
        model = {name: archive[name] for name in archive.files}
    meta = json.loads(str(model.pop("meta")))
    if tuple(meta["dense_features"]) != DENSE_FEATURES or meta["hash_buckets"] != HASH_BUCKETS:
        raise ValueError(f"{path}: model was trained for another feature layout; retrain with models/train_extractor.py")
    if tuple(meta["context_features"]) != CONTEXT_FEATURES:
        raise ValueError(f"{path}: model was trained for other context features; retrain with models/train_extractor.py")
    model["threshold"] = float(meta["threshold"])
    model["embedding"] = model["embedding"].astype(np.float32)  # stored as float16; summed as float32
    return model


def shared_model() -> dict:
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            _MODEL = load_model()
        return _MODEL


def relu(values: np.ndarray) -> np.ndarray:
    return np.maximum(values, 0.0, out=values)


def embedding_sums(embedding: np.ndarray, tokens: BlockTokens) -> np.ndarray:
    """Per block, the sum of its tokens' embedding rows (an embedding bag), summed once per distinct token row."""
    lengths = np.fromiter(map(len, tokens.ids), dtype=np.int64, count=len(tokens.ids))
    sums = np.zeros((len(tokens.ids), embedding.shape[1]), dtype=np.float32)
    if lengths.sum():
        flat = np.fromiter((i for ids in tokens.ids for i in ids), dtype=np.int64, count=int(lengths.sum()))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        nonempty = lengths > 0
        sums[nonempty] = np.add.reduceat(embedding[flat], starts[nonempty], axis=0)
    return sums[tokens.row]


def stage1_logits(model: dict, dense: np.ndarray, tokens: BlockTokens) -> np.ndarray:
    scaled = (dense - model["dense_mean"]) / model["dense_scale"]
    hidden = scaled @ model["w1_dense"] + embedding_sums(model["embedding"], tokens) + model["b1"]
    return relu(hidden) @ model["w2"] + model["b2"]


def ancestor_ids(page: PageBlocks) -> np.ndarray:
    """[blocks x 3]: index of the 1st, 2nd and 3rd enclosing frame of each block (innermost first), -1 if none."""
    return np.stack(ancestors(page), axis=1).reshape(len(page.texts), 3)


def context_features(ancestors: np.ndarray, frame_count: int, logits: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """Stage-2 inputs: each block's stage-1 probability next to its neighbours' and containers'."""
    count = len(logits)
    probability = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
    chars = np.expm1(dense[:, 0].astype(np.float64))
    padded = np.concatenate(([0.0, 0.0], probability, [0.0, 0.0]))
    columns = [logits, probability, padded[1:-3], padded[0:-4], padded[3:-1], padded[4:]]
    buckets = frame_count + 1
    for level in range(3):
        ids = ancestors[:, level] % buckets  # -1 (no frame) -> a bucket of its own
        mass = np.bincount(ids, weights=chars, minlength=buckets)
        kept = np.bincount(ids, weights=chars * probability, minlength=buckets)
        columns.append(kept[ids] / np.maximum(mass[ids], 1.0))
    columns.append(np.full(count, probability.max()))
    columns.append(np.full(count, float((chars * probability).sum() / max(chars.sum(), 1.0))))
    columns.append(np.argsort(np.argsort(-probability, kind="stable"), kind="stable") / max(count - 1, 1))
    columns.append(dense[:, 0])
    columns.append(dense[:, DENSE_FEATURES.index("link_density")])
    return np.stack(columns, axis=1).astype(np.float32)


def stage2_logits(model: dict, context: np.ndarray) -> np.ndarray:
    hidden = context @ model["s2_w1"] + model["s2_b1"]
    return relu(hidden) @ model["s2_w2"] + model["s2_b2"]


def block_probabilities(page: PageBlocks, model: dict) -> np.ndarray:
    """Stage-2 probability of each block of a page being main text."""
    if not page.texts:
        return np.zeros(0, dtype=np.float32)
    dense, tokens = block_features(page)
    logits = stage1_logits(model, dense, tokens)
    final = stage2_logits(model, context_features(ancestor_ids(page), len(page.parent), logits, dense))
    return 1.0 / (1.0 + np.exp(-np.clip(final, -30, 30)))


def extract_main_text(html: str, model: dict | None = None) -> str | None:
    """Main text of a decoded page (kept blocks joined by newlines), or None if no block is kept."""
    model = model if model is not None else shared_model()
    try:
        page = page_blocks(html)
    except PageTooDeep:
        return deep_page_text(html)
    probability = block_probabilities(page, model)
    kept = [text for text, p in zip(page.texts, probability) if p >= model["threshold"]]
    text = "\n".join(kept).replace("\u00ad", "").strip()
    return text or None


def deep_page_text(html: str) -> str | None:
    """Pages nested deeper than libxml2 holds go to resiliparse's main-content extractor (lexbor has no such limit)."""
    from resiliparse.extract.html2text import extract_plain_text

    text = extract_plain_text(html, main_content=True, alt_texts=False, noscript=False, form_fields=False)
    return text.replace("\u00ad", "").strip() or None
