"""Training-loop overhead: tokens/s of ``trainer.train`` against a bare PyTorch loop.

Both run the same model (same size, seed, AdamW settings, micro-batch, sequence length) in
this process, one after the other, ``--repeats`` times, the order swapped every repeat (a
drift in the machine's load must not always fall on the same side). The bare loop is
forward, backward, clip, ``optimizer.step()``, ``zero_grad`` on batches already in memory: no
data loading, no schedule, no logging; its clock covers exactly those calls and the
``loss.item()`` any loop that logs a loss needs. Ours is the real
``train()`` on token shards written from WikiText-2 (real text, a BPE trained on it), logging
loss every step (the default ``log.every: 1``); evaluation and checkpoints are off, as they
are not part of a step. Its figure comes from metrics.jsonl, whose clock runs from one
logged step to the next: reading the batch, the schedule and writing the metrics line are
all inside it (the progress bar is off: this bench's output is not a terminal). The figure
is the median of per-step tokens/s after ``--warmup`` steps; a size's line gives the best repeat of each (max of medians) and the
median over repeats of the overhead of each (bare, ours) pair, and the difference of the best
repeats in microseconds per step. ``--sizes floor`` is a 1-layer, 8-wide model on a 256-token
BPE, whose step is almost all fixed per-step cost: there the microseconds are our loop's own
fixed cost per step, the figure that decides the overhead of any small model.

    .venv/bin/python bench/trainer.py --sizes tiny mini --steps 40 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from common import ROOT  # first: it puts the repository before bench/, whose trainer.py is this script

from trainer.data import Layout, SequenceDataset, TokenStream, shards_from_texts
from trainer.train import build_model, parse_config, train


# A 1-layer, 8-wide model on a 256-token BPE: its step is almost all fixed per-step cost
# (op dispatch, the optimizer's per-tensor loop), so the difference in microseconds per step
# is our loop's own fixed cost, with far less noise than a few percent of a larger step.
FLOOR = {"size": "custom", "n_layer": 1, "n_head": 1, "n_embd": 8}


def make_shards(folder: str, vocab_size: int = 4096) -> tuple[str, str]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from trainer.evalsets import wikitext_articles

    folder = os.path.join(folder, f"bpe{vocab_size}")
    texts = wikitext_articles(str(ROOT / "trainer" / "evaldata" / "wikitext-2-test.txt.gz"))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "tokenizer.json")
    tokenizer.save(path)
    shards_from_texts(texts, path, os.path.join(folder, "run"), source="wikitext", num_shards=4)
    return os.path.join(folder, "run"), path


def config(size: str, run: str, tokenizer: str, out: str, steps: int, micro: int, seq_len: int):
    return parse_config(
        {
            "out_dir": out,
            "seed": 0,
            "model": FLOOR if size == "floor" else {"size": size},
            "data": {"train": run, "seq_len": seq_len, "tokenizer": tokenizer},
            "optim": {"micro_batch": micro, "max_steps": steps, "warmup_steps": 5},
            "checkpoint": {"every": 0, "resume": False},
            "log": {"progress": False},
        }
    )


def bare_loop(cfg, steps: int, warmup: int) -> float:
    """Median tokens/s of a plain loop over pre-loaded batches."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.optimizer_groups(cfg.optim.weight_decay), lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2))
    dataset = SequenceDataset(TokenStream(cfg.data.train), Layout(cfg.data.seq_len, cfg.optim.micro_batch))
    batches = [dataset.micro_batch(i)[:2] for i in range(steps)]
    tokens = cfg.optim.micro_batch * cfg.data.seq_len
    rates = []
    for x, y in batches:
        t0 = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        rates.append(tokens / (time.perf_counter() - t0))
    return statistics.median(rates[warmup:])


def our_loop(cfg, warmup: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    summary = train(cfg)
    wall = time.perf_counter() - t0
    lines = [json.loads(l) for l in open(os.path.join(cfg.out_dir, "metrics.jsonl"))]
    rates = [l["tokens_per_s"] for l in lines if "tokens_per_s" in l]
    return statistics.median(rates[warmup:]), summary["tokens"] / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini"], help="trainer.model sizes, or floor (see above)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, help="torch CPU threads for both loops (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu (no GPU on this machine), load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = {vocab: make_shards(tmp, vocab) for vocab in sorted({256 if size == "floor" else 4096 for size in args.sizes})}
        for vocab, (run, _) in data.items():
            print(
                f"shards: {TokenStream(run).total_tokens:,} WikiText-2 test tokens (BPE {vocab}), micro-batch {args.micro_batch} x {args.seq_len}"
            )
        print(
            f"{'model':<6} {'params':>10} {'bare tok/s':>11} {'ours tok/s':>11} {'overhead':>9} {'paired':>7} {'us/step':>8} {'ours incl. start-up':>20}  per repeat"
        )
        for size in args.sizes:
            bare, ours, whole = [], [], []
            for r in range(args.repeats):
                run, tokenizer = data[256 if size == "floor" else 4096]
                cfg = config(size, run, tokenizer, os.path.join(tmp, f"{size}-{r}"), args.steps, args.micro_batch, args.seq_len)
                cfg.system.threads = args.threads
                for which in ("bare", "ours") if r % 2 == 0 else ("ours", "bare"):
                    if which == "bare":
                        bare.append(bare_loop(cfg, args.steps, args.warmup))
                    else:
                        step_rate, wall_rate = our_loop(cfg, args.warmup)
                        ours.append(step_rate)
                        whole.append(wall_rate)
            params = build_model(cfg).num_parameters(non_embedding=False)
            b, o = max(bare), max(ours)
            pairs = [100 * (1 - oi / bi) for oi, bi in zip(ours, bare)]
            tokens = args.micro_batch * args.seq_len
            extra_us = 1e6 * tokens * (1 / o - 1 / b)  # our loop's extra time per step, best repeats
            print(
                f"{size:<6} {params:>10,} {b:>11,.0f} {o:>11,.0f} {100 * (1 - o / b):>8.1f}% {statistics.median(pairs):>6.1f}% {extra_us:>8.0f} {max(whole):>20,.0f}"
                f"  {' '.join(f'{p:.1f}%' for p in pairs)}"
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
