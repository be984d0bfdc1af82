"""What makes `curate ablate` see a 10% shuffled dose on every eval set (issue #31, item 2)?

Two measurements, both on the shared web corpus (pipelines/ablations/web_filters.yaml):

``rescore``: the final checkpoints of a finished ablation (``REPORT/train/<mix>/seed<k>``) scored
again on *every* sequence of each eval set, one loss per sequence, cached in ``OUT/losses.npz``.
From those, per eval set and number of scored sequences (the first n, as the trainer scores
them), the paired t of each comparison: how much of the seed-to-seed spread of Δ is which
handful of eval sequences a run happens to be scored on. It also shows why a per-sequence test
(sequences as the sample, one seed) is no valid verdict: it calls the A/A control a winner.

``rules``: per rule of a finished run, the documents it removed first, at all and alone
(trainer/rule_mixes.py), with the time that takes.

``dose``: the shuffled copy of a finished ablation's first mix trained with that ablation's
options and seeds, so that its runs pair with the ones there (``rescore --extra`` then scores it).

``train``: fresh ablations of the filtered mix against its 10%-shuffled copy (and an A/A
control) at a chosen budget, seed count and eval size, timed, with CPU seconds, so the idle
2-core time can be estimated from a loaded machine.

    nice .venv/bin/python bench/ablation_resolution.py rescore bench/out/ablation31/ab --out bench/out/resolution/400k
    nice .venv/bin/python bench/ablation_resolution.py train --tokens 400000 --seeds 6 --eval-sequences 1024 --out bench/out/resolution/t400k
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from common import ROOT  # noqa: E402  (puts the repository first on sys.path)

from trainer.compare import compare, verdict  # noqa: E402

SPEC = ROOT / "pipelines" / "ablations" / "web_filters.yaml"


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def sequence_losses(checkpoint: str, shards: str, seq_len: int, most: int, batch: int = 64) -> np.ndarray:
    """Mean loss of each of the first ``most`` sequences of a held-out stream (as trainer.data.eval_batches cuts them) under one checkpoint."""
    import torch
    import torch.nn.functional as F

    from trainer.data import TokenStream, eval_batches
    from trainer.train import build_model, parse_config

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = parse_config(state["config"])
    model = build_model(config)
    model.load_state_dict(state["model"])
    model.eval()
    stream = TokenStream(shards)
    out = []
    with torch.no_grad():
        for x, y in eval_batches(stream, seq_len, batch, most):
            logits, _ = model(x)
            loss = F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")
            out.append(loss.mean(dim=1).numpy())
    return np.concatenate(out)


def eval_sets(report: str) -> dict[str, str]:
    """{set name: its prepared folder} of a finished ablation (``REPORT/eval/<name>-<digest>``)."""
    return {Path(p).name.rsplit("-", 1)[0]: str(p) for p in Path(report, "eval").iterdir() if p.is_dir()}


def rescore(report: str, out: str, arms: list[str] | None, most: int, extra: dict[str, str]) -> dict[str, np.ndarray]:
    """{"<mix>|<seed>|<set>": per-sequence losses} for every run of a finished ablation and of
    ``extra`` arms, cached per arm in ``out/<arm>.npz``."""
    record = json.loads(Path(report, "ablation.json").read_text())
    options = record["options"]
    sets = eval_sets(report)
    folders = {arm: os.path.join(report, "train", arm) for arm in arms or list(record["arms"])}
    os.makedirs(out, exist_ok=True)
    losses = {}
    for arm, folder in {**folders, **extra}.items():
        cache = os.path.join(out, f"{arm}.npz")
        if not os.path.exists(cache):
            started, cpu, mine = time.time(), cpu_seconds(), {}
            for seed in range(options["seeds"]):
                checkpoint = os.path.join(folder, f"seed{seed}", "checkpoints", "latest.pt")
                for name, shards in sets.items():
                    mine[f"{arm}|{seed}|{name}"] = sequence_losses(checkpoint, shards, options["seq_len"], most)
            np.savez(cache, **mine)
            print(
                f"rescored {arm}: {len(mine)} (run, set) pairs in {time.time() - started:.0f} s wall, {cpu_seconds() - cpu:.0f} CPU s; {load()}"
            )
        losses.update(np.load(cache))
    return losses


def by_size(losses: dict[str, np.ndarray], a: str, b: str, sizes: list[int]) -> list[str]:
    """Per eval-set size: Δ, SE, t and the verdict of b against a when the first n sequences are scored."""
    sets = sorted({k.split("|")[2] for k in losses})
    seeds = sorted({int(k.split("|")[1]) for k in losses if k.startswith(a + "|")})
    lines = []
    for n in sizes:
        found = []
        for name in sets:
            la = {s: float(losses[f"{a}|{s}|{name}"][:n].mean()) for s in seeds}
            lb = {s: float(losses[f"{b}|{s}|{name}"][:n].mean()) for s in seeds}
            found.append(compare(name, a, la, b, lb, sets=len(sets)))
        v = verdict(found, [])
        cells = "  ".join(
            f"{c.eval_set} ({min(n, len(losses[f'{a}|0|{c.eval_set}']))} seq) Δ {c.delta:+.4f} SE {c.se:.4f} t {c.z:+.1f}{' ✓' if c.better else ''}"
            for c in found
        )
        lines.append(f"  n ≤ {n:>5}: {cells}  -> {v.status}")
    return lines


def detectable(losses: dict[str, np.ndarray], a: str, b: str, n: int, seeds: tuple[int, ...] = (3, 5, 8, 12, 20, 40)) -> list[str]:
    """Per eval set, the smallest true Δ the verdict would detect 4 times in 5 with k paired seeds,
    if the spread of the per-seed differences were the one measured here (first n sequences)."""
    from scipy import stats

    from trainer.compare import ALPHA

    sets = sorted({k.split("|")[2] for k in losses})
    runs = sorted({int(k.split("|")[1]) for k in losses if k.startswith(a + "|")})
    lines = []
    for name in sets:
        d = [float(losses[f"{b}|{s}|{name}"][:n].mean() - losses[f"{a}|{s}|{name}"][:n].mean()) for s in runs]
        sd = float(np.std(d, ddof=1))
        cells = [
            f"{k}: {(stats.t.ppf(1 - ALPHA / (2 * len(sets)), k - 1) + stats.t.ppf(0.8, k - 1)) * sd / math.sqrt(k):.4f}" for k in seeds
        ]
        lines.append(f"  {name}: Δ {np.mean(d):+.4f}, sd of the per-seed Δ {sd:.4f}; detectable with k seeds: " + ", ".join(cells))
    return lines


def per_sequence_test(losses: dict[str, np.ndarray], a: str, b: str, seed: int = 0) -> list[str]:
    """The tempting shortcut: one seed, sequences as the sample (paired t over sequences)."""
    from scipy import stats

    lines = []
    for name in sorted({k.split("|")[2] for k in losses}):
        d = losses[f"{b}|{seed}|{name}"] - losses[f"{a}|{seed}|{name}"]
        t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
        p = 2 * stats.t.sf(abs(t), len(d) - 1)
        lines.append(f"  {name}: Δ {d.mean():+.4f} over {len(d)} sequences, t {t:+.1f}, p {p:.2g}")
    return lines


def train(args) -> None:
    """A fresh ablation of the filtered mix against its shuffled copy, with an A/A control."""
    from trainer.ablate import load_ablation_file, run_ablation

    os.chdir(ROOT)
    recipes, _, options = load_ablation_file(str(SPEC))
    options = dataclasses.replace(
        options,
        tokens=args.tokens,
        seeds=args.seeds,
        eval_sequences=args.eval_sequences,
        eval_points=args.eval_points,
        control=True,
        calibrate=True,
        degradations=["shuffled"],
        doses=[args.dose],
        per_rule=0,
        lr=args.lr or options.lr,
    )
    runs = [os.path.join(args.runs, r) for r in ("web_filtered", "web_unfiltered")]
    print(
        f"train: {options.tokens:,} tokens x {options.seeds} seeds, eval {options.eval_sequences} sequences x {options.eval_points} points, "
        f"lr {options.lr}; {load()} at start"
    )
    started, cpu = time.time(), cpu_seconds()
    summary = run_ablation(runs[:1], args.out, options)
    wall, used = time.time() - started, cpu_seconds() - cpu
    import pandas as pd

    table = pd.read_parquet(summary["comparisons"])
    for row in table.itertuples():
        print(
            f"  {row.kind:11s} {row.eval_set:5s} {row.b:34s} Δ {row.delta:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}] "
            f"SE {row.se:.4f} t {row.z:+.1f} ({row.df:.0f} df){' ✓' if row.better else ''}"
        )
    for line in summary["verdicts"]:
        print(f"  {line}")
    print(f"  wall {wall:.0f} s, {used:.0f} CPU s (training processes included); {load()} at end")


def dose(args) -> None:
    """Train the 10%-shuffled copy of a finished ablation's first mix with that ablation's options
    and seeds, so that it pairs with the runs already there (only the new arm is trained)."""
    from trainer.ablate import Arm, AblationOptions, derived_arms, plan_parallelism, train_all, train_config
    from trainer.evalsets import EvalSetSpec

    record = json.loads(Path(args.report, "ablation.json").read_text())
    raw = dict(record["options"])
    raw["eval_sets"] = [EvalSetSpec(**s) for s in raw["eval_sets"]]
    options = dataclasses.replace(AblationOptions(**raw), calibrate=True, degradations=["shuffled"], doses=[args.dose], per_rule=0)
    first_name, first = next((n, a) for n, a in record["arms"].items() if a["role"] == "mix")
    with open(os.path.join(first["run_dir"], "manifest.json")) as fh:
        arm = Arm(first_name, first["run_dir"], json.load(fh))
    if args.control:  # the A/A control instead: the first mix under another data order
        copy = dataclasses.replace(arm, name=arm.name + "~control", shuffle_offset=1, role="control")
    else:
        [copy] = derived_arms([arm], options, os.path.join(args.out, "mixes"))
    sets = eval_sets(args.report)
    jobs, threads = plan_parallelism(dataclasses.replace(options, jobs=args.jobs), options.seeds)
    configs = [
        train_config(copy, seed, options, sets, os.path.join(args.out, "train", copy.name, f"seed{seed}"), threads)
        for seed in range(options.seeds)
    ]
    print(f"dose: {copy.name}, {options.seeds} seeds x {options.tokens:,} tokens, {jobs} at a time; {load()} at start", flush=True)
    started, cpu = time.time(), cpu_seconds()
    summaries = train_all(configs, jobs)
    print(
        f"  wall {time.time() - started:.0f} s, {cpu_seconds() - cpu:.0f} CPU s, per run {[round(s['seconds']) for s in summaries]} s; "
        f"{load()} at end"
    )


def rules(args) -> None:
    """Per rule of a finished run: documents removed first, at all, only by it (dedup counted), timed."""
    from trainer.rule_mixes import judge_removals, removals_of, rules_removed

    with open(os.path.join(args.run, "manifest.json")) as fh:
        manifest = json.load(fh)
    started, cpu = time.time(), cpu_seconds()
    judged = judge_removals(args.run, manifest)
    print(
        f"every rule of {judged.num_rows} removed documents: {time.time() - started:.0f} s wall, {cpu_seconds() - cpu:.0f} CPU s; {load()}"
    )
    for rule in list(rules_removed(args.run))[: args.top]:
        started = time.time()
        found = removals_of(rule, judged, args.run, manifest)
        also = ", ".join(f"{r} {n}" for r, n in list(found.also.items())[:3])
        print(
            f"  {rule:36s} first {found.removed_first:4d}  at all {found.removed_by:4d}  only {found.only.num_rows:4d} "
            f"(+{found.duplicates} duplicates of the mix)  {time.time() - started:.0f} s  also: {also}"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rescore", help="score a finished ablation's final checkpoints on every eval sequence")
    r.add_argument("report", help="a finished ablation's report folder (with train/*/seed*/checkpoints)")
    r.add_argument("--out", required=True)
    r.add_argument("--arms", help="comma-separated mixes (default: every arm)")
    r.add_argument(
        "--extra", action="append", default=[], metavar="NAME=TRAIN_DIR", help="another arm's runs (its seed<k> folders), e.g. from `dose`"
    )
    r.add_argument("--sizes", default="32,128,512,1024")
    r.add_argument("--most", type=int, default=1024, help="sequences scored per set (the trainer scores eval_sequences, default 128)")
    t = sub.add_parser("train", help="a fresh filtered vs 10%%-shuffled ablation with an A/A control")
    t.add_argument("--tokens", type=int, default=400_000)
    t.add_argument("--seeds", type=int, default=6)
    t.add_argument("--eval-sequences", type=int, default=1024)
    t.add_argument("--eval-points", type=int, default=1)
    t.add_argument("--dose", type=float, default=0.1)
    t.add_argument("--lr", type=float)
    t.add_argument("--runs", default=str(ROOT / "bench" / "out" / "ablation31-1p5m" / "runs"), help="the curated runs to reuse")
    t.add_argument("--out", required=True)
    d = sub.add_parser("dose", help="train only the shuffled copy of a finished ablation's first mix, paired with its runs")
    d.add_argument("report")
    d.add_argument("--dose", type=float, default=0.1)
    d.add_argument("--jobs", type=int)
    d.add_argument("--control", action="store_true", help="train the A/A control (another data order) instead of a dose")
    d.add_argument("--out", required=True)
    u = sub.add_parser("rules", help="per rule of a finished run: removed first, at all, only by it")
    u.add_argument("run", nargs="?", default=str(ROOT / "bench" / "out" / "ablation31-1p5m" / "runs" / "web_filtered"))
    u.add_argument("--top", type=int, default=8)
    return parser


def rescore_command(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    extra = dict(item.split("=", 1) for item in args.extra)
    losses = rescore(args.report, args.out, args.arms.split(",") if args.arms else None, args.most, extra)
    mixes = sorted({k.split("|")[0] for k in losses})
    first = next(m for m in mixes if not any(ch in m for ch in "~+") and m != "web_unfiltered")
    sizes = [int(s) for s in args.sizes.split(",")]
    for other in [m for m in mixes if m != first]:
        print(f"\n{first} vs {other}: the paired t over seeds when the first n sequences of each set are scored")
        print("\n".join(by_size(losses, first, other, sizes)))
        print(f"  the smallest Δ detected 4 times in 5 (first {sizes[-1]} sequences):")
        print("\n".join(detectable(losses, first, other, sizes[-1])))
        print("  one seed, sequences as the sample (not a valid verdict: see the A/A control):")
        print("\n".join(per_sequence_test(losses, first, other)))


def main() -> int:
    args = build_parser().parse_args()
    {"rules": rules, "dose": dose, "train": train, "rescore": rescore_command}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
