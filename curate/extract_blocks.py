"""The ``blocks`` extractor: a small trained classifier keeps or drops each text block of a page.

Pipeline per page (all in one process, no network):

1. ``curate.blocks`` parses the page with lxml (libxml2, C) and cuts it into text blocks with
   cheap features (length, link density, punctuation, position, ancestor tags and class/id
   tokens, the text mass of the enclosing containers, the neighbours).
2. Stage 1, a one-hidden-layer network (dense features plus a bag of hashed tokens: ancestor
   tags and class/id tokens, the block's first and last word), gives each block a probability
   of being main text.
3. Stage 2, a tiny network over stage-1 probabilities in context (neighbouring blocks, a window
   of five on each side, the length-weighted mean over six levels of enclosing containers,
   whether the block shares a container with the page's most convincing block, the page's best
   block), decides.
4. The page's own threshold (:func:`kept_blocks`): the probabilities say how much word-F1 the page's
   best cut can expect; blocks at or above ``threshold_share`` (in the model) times that figure are
   kept, joined by newlines, in page order (a block repeating an earlier kept block word for word
   is left out). A confident page drops its doubtful blocks, a page where the model is unsure keeps more.

Pages nested deeper than libxml2's 2048 levels (it would drop the rest of the page) go to
resiliparse's main-content extractor instead.

The model (``models/extractor/model.npz``) and how it was trained are described in
``models/extractor/MODEL_CARD.md``; ``models/train_extractor.py`` rebuilds it from the shared
web corpus. Inference is numpy only.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import zipfile

import numpy as np

from curate.blocks import (
    DENSE_FEATURES,
    HASH_BUCKETS,
    MAX_TOKENS_PER_BLOCK,
    WORD_BUCKETS,
    BlockTokens,
    PageBlocks,
    PageTooDeep,
    ancestors,
    block_features,
    page_blocks,
)

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
    "window5_mean_probability",
    "ancestor4_mean_probability",
    "ancestor5_mean_probability",
    "ancestor6_mean_probability",
    "in_top_block_frame1",
    "in_top_block_frame2",
    "in_top_block_frame3",
    "in_top_block_frame4",
    "in_top_block_frame5",
)
ANCESTOR_LEVELS = 6  # enclosing frames of a block that stage 2 reads
REPEAT_MIN_WORDS = 3  # a kept block this long whose text was already kept is left out (see main_text)

_MODELS: dict[str | None, dict] = {}  # path (None: the default) -> model, loaded once per process
_MODEL_LOCK = threading.Lock()


def model_path() -> str:
    """The model file: ``$CURATE_EXTRACTOR_MODEL``; else the repository's ``models/extractor/model.npz``;
    else ``models/extractor/model.npz`` under the working directory, where a ``spark-submit`` driver
    that imports curate from ``curate.zip`` finds the repository it was started in."""
    if os.environ.get("CURATE_EXTRACTOR_MODEL"):
        return os.environ["CURATE_EXTRACTOR_MODEL"]
    in_cwd = os.path.abspath(os.path.join("models", "extractor", "model.npz"))
    return MODEL_PATH if os.path.exists(MODEL_PATH) or not os.path.exists(in_cwd) else in_cwd


def load_model(path: str | None = None) -> dict:
    """Arrays of a model file, checked against this code's feature layout."""
    path = path or model_path()
    if not os.path.exists(path):
        raise FileNotFoundError(f"block extractor model not found: {path} (set CURATE_EXTRACTOR_MODEL)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            model = {name: archive[name] for name in archive.files}
        meta = json.loads(str(model.pop("meta")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:  # truncated, not an .npz, no meta
        raise ValueError(
            f"{path}: not a readable block extractor model ({type(e).__name__}: {e}); rebuild it with models/train_extractor.py"
        ) from e
    if tuple(meta["dense_features"]) != DENSE_FEATURES or meta["hash_buckets"] != HASH_BUCKETS or meta.get("word_buckets") != WORD_BUCKETS:
        raise ValueError(f"{path}: model was trained for another feature layout; retrain with models/train_extractor.py")
    if tuple(meta["context_features"]) != CONTEXT_FEATURES:
        raise ValueError(f"{path}: model was trained for other context features; retrain with models/train_extractor.py")
    if "threshold_share" not in meta:
        raise ValueError(f"{path}: model has a fixed threshold, this code a page threshold; retrain with models/train_extractor.py")
    model["threshold_share"] = float(meta["threshold_share"])
    model["embedding"] = model["embedding"].astype(np.float32)  # stored as float16; summed as float32
    model["word_embedding"] = model["word_embedding"].astype(np.float32)  # WORD_BUCKETS + 1 rows, the last ("no word") zero
    return model


def shared_model(path: str | None = None) -> dict:
    """The model at ``path`` (default :func:`model_path`), loaded once per process and shared by its threads."""
    with _MODEL_LOCK:  # the default is kept under None: no file-system lookup per page
        if path not in _MODELS:
            _MODELS[path] = load_model(path or model_path())
        return _MODELS[path]


def relu(values: np.ndarray) -> np.ndarray:
    return np.maximum(values, 0.0, out=values)


PRODUCT_ROWS = 256  # rows of a page multiplied at a time (see :func:`row_products`)


def row_products(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``values @ weights``, PRODUCT_ROWS rows at a time.

    OpenBLAS (numpy's BLAS) runs a matrix product of more than 2**18 multiply-adds on all its
    threads; starting them and their spin-wait cost far more CPU than these small products (a
    600 x 28 page times 28 x 32 weights: 7.8 ms of CPU time on two threads, 26 us in slices of 256
    rows, each on one thread).
    """
    if len(values) <= PRODUCT_ROWS:
        return values @ weights
    return np.concatenate([values[start : start + PRODUCT_ROWS] @ weights for start in range(0, len(values), PRODUCT_ROWS)])


def embedding_sums(embedding: np.ndarray, tokens: BlockTokens) -> np.ndarray:
    """Per block, the sum of its tokens' embedding rows (an embedding bag).

    Computed per row (blocks of one frame share a row) as its head ids' rows plus the sum over its
    inherited set, and each set's sum as its parent set's plus the rows of the ids it adds (a tree
    of differences, summed by pointer jumping), so each inherited id is read once per frame that adds
    it. Rows cut at MAX_TOKENS_PER_BLOCK ids are summed from their ids.
    """
    count = len(tokens.heads)
    if not count:
        return np.zeros((len(tokens.row), embedding.shape[1]), dtype=np.float32)
    sums = bag_sums(embedding, tokens.heads) + inherited_sums(embedding, tokens)[tokens.row_set]
    lengths = np.fromiter(map(len, tokens.heads), dtype=np.int64, count=count)
    lengths += np.fromiter(map(len, tokens.inherited), dtype=np.int64, count=count)
    cut = np.flatnonzero(lengths > MAX_TOKENS_PER_BLOCK)
    if len(cut):
        sums[cut] = bag_sums(embedding, [tokens.row_ids(row) for row in cut.tolist()])
    return sums[tokens.row]


def bag_sums(embedding: np.ndarray, bags: list[tuple[int, ...]]) -> np.ndarray:
    """Per bag of ids, the sum of their embedding rows (0 for an empty bag)."""
    lengths = np.fromiter(map(len, bags), dtype=np.int64, count=len(bags))
    sums = np.zeros((len(bags), embedding.shape[1]), dtype=np.float32)
    total = int(lengths.sum())
    if total:
        flat = np.fromiter(itertools.chain.from_iterable(bags), dtype=np.int64, count=total)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        nonempty = lengths > 0
        sums[nonempty] = np.add.reduceat(embedding[flat], starts[nonempty], axis=0)
    return sums


def inherited_sums(embedding: np.ndarray, tokens: BlockTokens) -> np.ndarray:
    """[sets + 1 x dimension]: per distinct inherited set, the sum of its ids' embedding rows; the last row (no set) is 0."""
    count = len(tokens.set_parent)
    totals = np.zeros((count + 1, embedding.shape[1]), dtype=np.float32)
    totals[:count] = bag_sums(embedding, tokens.set_added)
    up = np.append(np.where(tokens.set_parent >= 0, tokens.set_parent, count), count)
    while up[:count].min(initial=count) < count:  # add the ancestors' sums, doubling the reach each round
        totals += totals[up]
        up = up[up]
    return totals


def word_sums(word_embedding: np.ndarray, tokens: BlockTokens) -> np.ndarray:
    """Per block, the embedding rows of its first and last word added (the table's last row, for no word, is zero)."""
    return word_embedding[tokens.words].sum(axis=1)


def stage1_logits(model: dict, dense: np.ndarray, tokens: BlockTokens) -> np.ndarray:
    scaled = (dense - model["dense_mean"]) / model["dense_scale"]
    hidden = (
        row_products(scaled, model["w1_dense"]) + embedding_sums(model["embedding"], tokens) + word_sums(model["word_embedding"], tokens)
    )
    hidden += model["b1"]
    return relu(hidden) @ model["w2"] + model["b2"]


def ancestor_ids(page: PageBlocks) -> np.ndarray:
    """[blocks x ANCESTOR_LEVELS]: index of the 1st, 2nd, ... enclosing frame of each block (innermost first), -1 if none."""
    columns = list(ancestors(page))
    with_parent = np.concatenate((page.parent, [-1]))  # index -1 reads the appended "none"
    while len(columns) < ANCESTOR_LEVELS:
        columns.append(with_parent[columns[-1]])
    return np.stack(columns, axis=1).reshape(len(page.texts), ANCESTOR_LEVELS)


def context_features(ancestors: np.ndarray, frame_count: int, logits: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """Stage-2 inputs: each block's stage-1 probability next to its neighbours' and containers'."""
    count = len(logits)
    probability = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
    chars = np.expm1(dense[:, 0].astype(np.float64))
    padded = np.concatenate(([0.0, 0.0], probability, [0.0, 0.0]))
    columns = [logits, probability, padded[1:-3], padded[0:-4], padded[3:-1], padded[4:]]
    columns += [frame_mean_probability(ancestors[:, level], frame_count, chars, probability) for level in range(3)]
    columns.append(np.full(count, probability.max()))
    columns.append(np.full(count, float((chars * probability).sum() / max(chars.sum(), 1.0))))
    columns.append(np.argsort(np.argsort(-probability, kind="stable"), kind="stable") / max(count - 1, 1))
    columns.append(dense[:, 0])
    columns.append(dense[:, DENSE_FEATURES.index("link_density")])
    columns.append(window_mean_probability(chars, probability, 5))
    columns += [frame_mean_probability(ancestors[:, level], frame_count, chars, probability) for level in range(3, 6)]
    columns += in_top_block_frames(ancestors, chars, probability)
    return np.stack(columns, axis=1).astype(np.float32)


def frame_mean_probability(frames: np.ndarray, frame_count: int, chars: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Per block, the length-weighted mean probability of the blocks in the same given frame (-1, no frame, is one group)."""
    buckets = frame_count + 1
    ids = frames % buckets  # -1 (no frame) -> a bucket of its own
    mass = np.bincount(ids, weights=chars, minlength=buckets)
    kept = np.bincount(ids, weights=chars * probability, minlength=buckets)
    return kept[ids] / np.maximum(mass[ids], 1.0)


def window_mean_probability(chars: np.ndarray, probability: np.ndarray, reach: int) -> np.ndarray:
    """Per block, the length-weighted mean probability of the blocks at most ``reach`` places before or after it."""
    kept = np.concatenate(([0.0], np.cumsum(chars * probability)))
    mass = np.concatenate(([0.0], np.cumsum(chars)))
    index = np.arange(len(chars))
    low, high = np.maximum(index - reach, 0), np.minimum(index + reach + 1, len(chars))
    return (kept[high] - kept[low]) / np.maximum(mass[high] - mass[low], 1.0)


def in_top_block_frames(ancestors: np.ndarray, chars: np.ndarray, probability: np.ndarray) -> list[np.ndarray]:
    """Whether each block lies inside the 1st ... 5th enclosing frame of the page's most convincing block (the
    highest probability times log length): main text tends to sit in one container."""
    top = int(np.argmax(probability * np.log1p(chars)))
    columns = []
    for level in range(5):
        frame = ancestors[top, level]
        columns.append((ancestors == frame).any(axis=1) & (frame >= 0))
    return columns


def stage2_logits(model: dict, context: np.ndarray) -> np.ndarray:
    hidden = row_products(context, model["s2_w1"]) + model["s2_b1"]
    return relu(hidden) @ model["s2_w2"] + model["s2_b2"]


def block_probabilities(page: PageBlocks, model: dict) -> np.ndarray:
    """Stage-2 probability of each block of a page being main text."""
    return scored_blocks(page, model)[0]


def scored_blocks(page: PageBlocks, model: dict) -> tuple[np.ndarray, np.ndarray]:
    """(stage-2 probability, word count) of each block of a page."""
    if not page.texts:
        return np.zeros(0, dtype=np.float32), np.zeros(0)
    dense, tokens = block_features(page)
    logits = stage1_logits(model, dense, tokens)
    final = stage2_logits(model, context_features(ancestor_ids(page), len(page.parent), logits, dense))
    return 1.0 / (1.0 + np.exp(-np.clip(final, -30, 30))), block_word_counts(dense)


def block_word_counts(dense: np.ndarray) -> np.ndarray:
    """Each block's word count, read back from its ``log_words`` feature (exact: float32 holds log1p of any count)."""
    return np.rint(np.expm1(dense[:, DENSE_FEATURES.index("log_words")].astype(np.float64)))


def extract_main_text(html: str, model: dict | None = None) -> str | None:
    """Main text of a decoded page (kept blocks joined by newlines), or None if no block is kept."""
    model = model if model is not None else shared_model()
    try:
        page = page_blocks(html)
    except PageTooDeep:
        return deep_page_text(html)
    probability, words = scored_blocks(page, model)
    return main_text(page.texts, kept_blocks(probability, words, model["threshold_share"]), words)


def best_expected_f1(probability: np.ndarray, words: np.ndarray) -> float:
    """The page's best expected word-F1 over cuts "keep the k most probable blocks", reading each block's
    probability as the share of its words that are main text: 2 * kept main words / (kept words + main words)."""
    if not len(probability):
        return 0.0
    order = np.argsort(-probability, kind="stable")
    expected = probability * words
    kept_main = np.cumsum(expected[order])
    return float((2 * kept_main / np.maximum(np.cumsum(words[order]) + expected.sum(), 1e-9)).max())


def kept_blocks(probability: np.ndarray, words: np.ndarray, share: float) -> np.ndarray:
    """Indices of the kept blocks, in page order: those at or above ``share`` times the page's best expected F1.

    With calibrated probabilities the expected-F1-best cut keeps a block when its probability is at least
    half that F1; the model's ``share`` (chosen on out-of-fold training pages) corrects for its calibration.
    """
    return np.flatnonzero(probability >= share * best_expected_f1(probability, words))


def main_text(texts: list[str], kept: np.ndarray, words: np.ndarray) -> str | None:
    """The kept blocks joined by newlines, soft hyphens dropped; None when nothing is left.

    A kept block of REPEAT_MIN_WORDS words or more whose exact text an earlier kept block already
    gave is left out: pages repeat content for their mobile and desktop layouts, and a reader's
    copy holds it once (out of fold on the WCXB training pages: 0.8415 -> 0.8473). Shorter repeats
    ("Yes", "4.5 stars", a table's cells) are kept, since the text really says them again.
    """
    seen: set[str] = set()
    parts = []
    for index in kept.tolist():  # indices first: comparing numpy scalars one by one in Python cost ~0.3 ms a page
        text = texts[index]
        if words[index] >= REPEAT_MIN_WORDS:
            if text in seen:
                continue
            seen.add(text)
        parts.append(text)
    return "\n".join(parts).replace("\u00ad", "").strip() or None


def deep_page_text(html: str) -> str | None:
    """Pages nested deeper than libxml2 holds go to resiliparse's main-content extractor (lexbor has no such limit)."""
    from resiliparse.extract.html2text import extract_plain_text

    text = extract_plain_text(html, main_content=True, alt_texts=False, noscript=False, form_fields=False)
    return text.replace("\u00ad", "").strip() or None
