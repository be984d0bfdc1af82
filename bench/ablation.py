"""`curate ablate` on pipelines/ablations/web_filters.yaml as a calibrated instrument (issue #31).

One ablation on the shared web corpus (../shared/data/web) trains, with the same model, budget
and paired seeds:

* the A/B pair (FineWeb-like filtered against unfiltered), curation included unless
  --reuse-runs finds the curated runs of an earlier bench run;
* the A/A control (filtered again, another data order);
* with --calibrate, the filtered mix against copies of itself with a known share of documents
  degraded (trainer/controls.py), so the report states the smallest dose detected per set;
* with --per-rule N, the filtered mix plus what each of its N most-removing rules alone removed
  (trainer/rule_mixes.py).

Then, with --aa-repeats R, R independent A/A ablations (seeds 3r.., data orders 2r and 2r+1)
at --aa-tokens: the share of them whose verdict names a winner is the empirical false-winner
rate (the verdict promises at most 5%), printed with its 95% Clopper-Pearson interval.

It prints per eval set and comparison Δ, its simultaneous interval, t (df), p; the verdicts;
the resolution and per-rule tables; the wall time of every part (each part's share of the
training is its runs' summed seconds over the parallel jobs) and the load average.

    .venv/bin/python bench/ablation.py --reuse-runs --tokens 400000 --calibrate --doses 0.1,0.3 --per-rule 3
    .venv/bin/python bench/ablation.py --reuse-runs --skip-ablation --aa-repeats 8 --aa-tokens 100000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

from common import ROOT  # noqa: E402  (puts the repository first on sys.path)

from trainer.ablate import Arm, load_ablation_file, plan_parallelism, prepare_arms, run_ablation, train_all, train_config  # noqa: E402
from trainer.compare import ALPHA, compare, verdict  # noqa: E402
from trainer.evalsets import prepare_eval_set  # noqa: E402
from trainer.report import collect_results, final_losses  # noqa: E402

SPEC = ROOT / "pipelines" / "ablations" / "web_filters.yaml"


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def show_comparisons(table) -> None:
    for row in table.itertuples():
        print(
            f"  {row.kind:11s} {row.eval_set:5s} {row.b:48s} Δ {row.delta:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}]  "
            f"t {row.z:+6.1f} ({row.df:.0f} df)  p {row.p:.2g}  {'✓ ' + row.better if row.better else ''}"
        )


def part_seconds(timings: dict, arms: dict, jobs: int) -> dict[str, float]:
    """Training seconds of each part (mix pair, control, calibration, rule): its runs' summed seconds / parallel jobs."""
    out: dict[str, float] = {}
    for name, seconds in timings["run_seconds"].items():
        role = arms[name]["role"]
        out[role] = out.get(role, 0.0) + sum(s or 0 for s in seconds) / jobs
    return out


def ablation(args, recipes: list, options, runs: str) -> None:
    started = time.time()
    print(
        f"\n== A/B{' + A/A' if options.control else ''}{' + calibration' if options.calibrate else ''}"
        f"{f' + per-rule ({options.per_rule})' if options.per_rule else ''}: {load()} at start =="
    )
    summary = run_ablation(recipes, os.path.join(args.out, "ab"), options, runs_dir=runs)
    wall = time.time() - started
    import pandas as pd

    show_comparisons(pd.read_parquet(summary["comparisons"]))
    for line in summary["verdicts"]:
        print(f"  {line}")
    record = json.loads(Path(args.out, "ab", "ablation.json").read_text())
    jobs, _ = plan_parallelism(options, len(record["arms"]) * options.seeds)
    parts = part_seconds(record["timings"], record["arms"], jobs)
    t = record["timings"]
    print(
        f"\n  wall {wall:.0f} s: curation {t['curation_s']:.0f} s, known-answer mixes built in {t['controls_s']:.0f} s, "
        f"training {t['training_s']:.0f} s ({jobs} runs at a time; {t['median_tokens_per_s_per_run']:,.0f} tokens/s per run)"
    )
    print("  training by part: " + ", ".join(f"{role} {s:.0f} s" for role, s in parts.items()) + f"; {load()} at end")
    report = Path(args.out, "ab", "report.md").read_text()
    for title in ("## Along the run", "## Resolution", "## Per rule"):
        if title in report:
            section = report[report.index(title) :]
            print("\n" + section[: section.find("\n## ", 4) if "\n## " in section[4:] else section.find("\nRuns:")].strip())


def aa_repeats(args, options, filtered: str) -> None:
    """R independent A/A ablations of the filtered mix: how often does the verdict name a winner?"""
    from scipy import stats

    out = os.path.abspath(os.path.join(args.out, "aa"))
    # only the final losses are compared: one evaluation per run
    options = dataclasses.replace(options, tokens=args.aa_tokens, control=False, calibrate=False, per_rule=0, eval_points=1)
    prepared = [prepare_eval_set(s, options_tokenizer(filtered), "<|endoftext|>", os.path.join(out, "eval")) for s in options.eval_sets]
    [arm] = prepare_arms([filtered], protected=prepared)
    arms = [
        dataclasses.replace(arm, name=f"aa{r}-{side}", shuffle_offset=2 * r + side + 1) for r in range(args.aa_repeats) for side in (0, 1)
    ]
    runs = [(a, r * options.seeds + k) for r in range(args.aa_repeats) for a in arms[2 * r : 2 * r + 2] for k in range(options.seeds)]
    jobs, threads = plan_parallelism(options, len(runs))
    shards = {p.spec.name: p.shards for p in prepared}
    configs = [train_config(a, seed, options, shards, os.path.join(out, "train", a.name, f"seed{seed}"), threads) for a, seed in runs]
    print(
        f"\n== {args.aa_repeats} independent A/A ablations ({len(runs)} runs of {options.tokens:,} tokens, {jobs} at a time): {load()} at start =="
    )
    started = time.time()
    train_all(configs, jobs)
    wall = time.time() - started
    winners = 0
    for r in range(args.aa_repeats):
        pair = [a for a in arms if a.name.startswith(f"aa{r}-")]
        results = collect_seeds(out, pair, [r * options.seeds + k for k in range(options.seeds)])
        columns = [c for c in results.columns if c.startswith("eval_")]
        found = []
        for column in columns:
            losses = final_losses(results, column)
            found.append(
                compare(
                    column[5:],
                    pair[0].name,
                    _renumber(losses[pair[0].name]),
                    pair[1].name,
                    _renumber(losses[pair[1].name]),
                    sets=len(columns),
                )
            )
        v = verdict(found, [])
        winners += v.status == "winner"
        print(f"  A/A {r}: {v.status:13s} " + "  ".join(f"{c.eval_set} {c.delta:+.4f} (t {c.z:+.1f}, p {c.p:.2g})" for c in found))
    low, high = stats.binomtest(winners, args.aa_repeats).proportion_ci(0.95)
    print(
        f"  false winners: {winners} of {args.aa_repeats} ({winners / args.aa_repeats:.0%}; 95% interval {low:.0%} to {high:.0%}; "
        f"the verdict promises at most {ALPHA:.0%}); wall {wall:.0f} s, {load()} at end"
    )


def _renumber(losses: dict[int, float]) -> dict[int, float]:
    """Seed numbers of one repetition as 0..n-1, so that both sides pair by their seed."""
    return {k: losses[s] for k, s in enumerate(sorted(losses))}


def collect_seeds(out: str, arms: list[Arm], seeds: list[int]):
    """collect_results for runs whose seeds are not 0..n-1 (symlinks give them the names it reads)."""
    import tempfile

    view = tempfile.mkdtemp(prefix="aa-view-")
    for a in arms:
        for k, seed in enumerate(seeds):
            os.makedirs(os.path.join(view, "train", a.name), exist_ok=True)
            os.symlink(os.path.join(out, "train", a.name, f"seed{seed}"), os.path.join(view, "train", a.name, f"seed{k}"))
    results = collect_results(view, arms, len(seeds))
    shutil.rmtree(view)
    return results


def options_tokenizer(run: str) -> str:
    return json.loads(Path(run, "manifest.json").read_text())["tokens"]["tokenizer"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, help="training tokens per run (default: the ablation file's)")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--model")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "ablation"))
    parser.add_argument(
        "--reuse-runs", action="store_true", help="keep the curated runs of an earlier bench run (wall time then excludes curation)"
    )
    parser.add_argument("--no-control", action="store_true", help="no A/A control in the ablation")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--doses", help="comma-separated shares of documents (default: AblationOptions')")
    parser.add_argument("--degradations", help="comma-separated, of shuffled, boilerplate, off_language")
    parser.add_argument("--per-rule", type=int, default=0)
    parser.add_argument(
        "--cloze", action="store_true", help="score bench/cloze.py's choice tasks with every run's final model (issue #18 point 5)"
    )
    parser.add_argument("--skip-ablation", action="store_true", help="only the A/A repetitions (needs the curated runs)")
    parser.add_argument("--aa-repeats", type=int, default=0, help="independent A/A ablations to count false winners in")
    parser.add_argument("--aa-tokens", type=int, default=100_000)
    args = parser.parse_args()
    os.chdir(ROOT)  # the recipes name the shared corpus relative to the repository
    recipes, _, options = load_ablation_file(str(SPEC))
    for name in ("tokens", "seeds", "model"):
        if getattr(args, name) is not None:
            setattr(options, name, getattr(args, name))
    options = dataclasses.replace(options, control=not args.no_control, calibrate=args.calibrate, per_rule=args.per_rule)
    if args.doses:
        options.doses = [float(x) for x in args.doses.split(",")]
    if args.degradations:
        options.degradations = args.degradations.split(",")
    runs = os.path.join(args.out, "runs")
    if not args.reuse_runs and not args.skip_ablation and os.path.exists(runs):
        shutil.rmtree(runs)
    print(f"bench/ablation.py: model {options.model}, {options.tokens:,} tokens x {options.seeds} seeds, {os.cpu_count()} cores, {load()}")
    curated = [os.path.join(runs, name) for name in ("web_filtered", "web_unfiltered")]
    if args.reuse_runs and all(os.path.exists(os.path.join(r, "manifest.json")) for r in curated):
        recipes = curated  # the finished runs as they are (checked against the eval sets again, not curated again)
    if not args.skip_ablation:
        ablation(args, recipes, options, runs)
        if args.cloze:
            sys.path.insert(0, str(ROOT / "bench"))
            import cloze

            cloze.show(cloze.probe(os.path.join(args.out, "ab")))
    if args.aa_repeats:
        aa_repeats(args, options, os.path.join(runs, "web_filtered"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
