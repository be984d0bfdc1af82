"""Issue #18 point 5: does a likelihood-scored choice task add signal to the ablation's losses?

Two four-way tasks, built from the held-out documents of an ablation's eval sets (the
``<set>.protected.jsonl.gz`` files that every training mix was decontaminated against, so no
model has seen them):

* ``continuation``: two or three sentences of a document, then its next sentence against the
  sentences that follow in three other documents (a cloze in the style of HellaSwag / LAMBADA,
  on real text we have);
* ``word-order``: a sentence against three shuffles of its own words (grammar, not topic).

Each candidate is scored by the final checkpoint of every run in ``REPORT/train/<mix>/seed<k>``
as its mean log-likelihood per token given the context (``mean``), or as the log-likelihood
gain the context brings over an empty context (``pmi``). Chance is 25 %.

    .venv/bin/python bench/cloze.py REPORT_DIR      # e.g. bench/out/ablation/ab

bench/ablation.py runs it on its A/B report and prints the same table.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import xxhash

import common  # noqa: E402, F401  (puts the repository first on sys.path)

from trainer.compare import compare  # noqa: E402
from trainer.model import GPT, GPTConfig  # noqa: E402

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
CHOICES = 4


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(" ".join(text.split())) if len(s.split()) >= 5]


def passages(texts: list[str], tokenizer, context_tokens: int = 48, answer_tokens: int = 20, per_document: int = 6):
    """(document index, context ids, next-sentence ids) from every document, in document order."""
    out = []
    for d, text in enumerate(texts):
        found = sentences(text)
        taken = 0
        for i in range(1, len(found)):
            if taken >= per_document:
                break
            context = tokenizer.encode(" ".join(found[max(0, i - 3) : i])).ids[-context_tokens:]
            answer = tokenizer.encode(" " + found[i]).ids[:answer_tokens]
            if len(context) >= 16 and len(answer) >= 6:
                out.append((d, context, answer))
                taken += 1
    return out


def continuation_items(pool: list, limit: int) -> list[tuple[list[int], list[list[int]]]]:
    """The true next sentence first, then three from other documents (picked by hash)."""
    items = []
    for k, (doc, context, answer) in enumerate(pool[:limit]):
        start = xxhash.xxh64_intdigest(str(k).encode())
        others = [pool[(start + j * 7919) % len(pool)] for j in range(1, 64)]
        wrong = [o[2] for o in others if o[0] != doc][: CHOICES - 1]
        if len(wrong) == CHOICES - 1:
            items.append((context, [answer] + wrong))
    return items


def word_order_items(pool: list, tokenizer, limit: int) -> list[tuple[list[int], list[list[int]]]]:
    items = []
    for k, (_, context, answer) in enumerate(pool[:limit]):
        words = tokenizer.decode(answer).split()
        if len(set(words)) < 4:
            continue
        rng = np.random.default_rng(k)
        shuffles = []
        while len(shuffles) < CHOICES - 1:
            order = list(words)
            rng.shuffle(order)
            if order != words:
                shuffles.append(tokenizer.encode(" " + " ".join(order)).ids)
        items.append((context, [answer] + shuffles))
    return items


@torch.no_grad()
def log_likelihoods(model: GPT, pairs: list[tuple[list[int], list[int]]], batch_size: int = 256) -> np.ndarray:
    """Sum of log p(candidate tokens | context) for each (context, candidate) pair, in padded batches."""
    out = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        length = max(len(c) + len(a) for c, a in chunk)
        batch = torch.zeros((len(chunk), length), dtype=torch.long)
        mask = torch.zeros((len(chunk), length - 1))
        for i, (context, answer) in enumerate(chunk):
            batch[i, : len(context) + len(answer)] = torch.tensor(context + answer)
            mask[i, len(context) - 1 : len(context) + len(answer) - 1] = 1
        logits, _ = model(batch[:, :-1])
        logp = torch.log_softmax(logits.float(), -1).gather(2, batch[:, 1:, None])[..., 0]
        out.append((logp * mask).sum(1).numpy())
    return np.concatenate(out)


def accuracy(model: GPT, items: list, empty: list[int]) -> dict[str, float]:
    """Share of items whose first candidate scores best, by ``mean`` and by ``pmi``."""
    given = log_likelihoods(model, [(context, c) for context, candidates in items for c in candidates]).reshape(-1, CHOICES)
    alone = log_likelihoods(model, [(empty, c) for _, candidates in items for c in candidates]).reshape(-1, CHOICES)
    lengths = np.array([[len(c) for c in candidates] for _, candidates in items])
    return {
        "mean": float(np.mean(np.argmax(given / lengths, axis=1) == 0)),
        "pmi": float(np.mean(np.argmax(given - alone, axis=1) == 0)),
    }


def load_model(checkpoint: str) -> GPT:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def tasks_for(report: str, tokenizer, limit: int) -> dict[str, list]:
    tasks = {}
    for path in sorted(glob.glob(os.path.join(report, "eval", "*.protected.jsonl.gz"))):
        name = os.path.basename(path).rsplit("-", 1)[0]
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            texts = [json.loads(line)["text"] for line in fh]
        pool = passages(texts, tokenizer)
        if len(pool) >= 50:
            tasks[f"{name}/continuation"] = continuation_items(pool, limit)
            tasks[f"{name}/word-order"] = word_order_items(pool, tokenizer, limit)
    return tasks


def probe(report: str, limit: int = 200) -> list[dict]:
    """Accuracy of every run's final model on every task; one row per (mix, task, scoring)."""
    from tokenizers import Tokenizer

    arms = json.loads(Path(report, "ablation.json").read_text())["arms"]
    manifest = json.loads(Path(next(iter(arms.values()))["run_dir"], "manifest.json").read_text())
    tokenizer = Tokenizer.from_file(manifest["tokens"]["tokenizer"])
    empty = [tokenizer.token_to_id("<|endoftext|>")]
    tasks = tasks_for(report, tokenizer, limit)
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    rows = []
    for mix in sorted(os.listdir(os.path.join(report, "train"))):
        for seed_dir in sorted(glob.glob(os.path.join(report, "train", mix, "seed*"))):
            model = load_model(os.path.join(seed_dir, "checkpoints", "latest.pt"))
            for task, items in tasks.items():
                for scoring, value in accuracy(model, items, empty).items():
                    rows.append({"mix": mix, "seed": os.path.basename(seed_dir), "task": task, "scoring": scoring, "accuracy": value})
    return rows


def show(rows: list[dict]) -> None:
    """Per task and scoring: each mix's mean ± std over seeds; for two mixes the gap with
    ``trainer.compare``'s statistics (paired over seeds, pooled seed std)."""
    mixes = sorted({r["mix"] for r in rows})
    keys = sorted({(r["task"], r["scoring"]) for r in rows})
    print(f"\n== point 5: four-way choice tasks on the held-out eval documents (chance 25 %), {len(mixes)} mixes ==")
    for task, scoring in keys:
        accuracy = {m: {r["seed"]: r["accuracy"] for r in rows if (r["mix"], r["task"], r["scoring"]) == (m, task, scoring)} for m in mixes}
        cells = []
        for mix in mixes:
            values = list(accuracy[mix].values())
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{mix} {100 * statistics.mean(values):.1f} ± {100 * sd:.1f} %")
        line = f"  {task:24s} {scoring:4s}  " + "  ".join(cells)
        if len(mixes) == 2:
            a, b = mixes
            # compare() reads lower as better (losses): B and A swap, so delta = accuracy(A) - accuracy(B)
            c = compare(task, b, accuracy[b], a, accuracy[a])
            line += (
                f"  gap {100 * c.delta:+.1f} pts = {c.delta / c.seed_std:+.1f} seed stds (paired t {c.z:+.1f}, {c.df:.0f} df, p {c.p:.2g})"
            )
        print(line)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    show(probe(sys.argv[1]))
