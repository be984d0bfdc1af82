"""Does `curate ablate` tell the FineWeb-like filtered mix from the unfiltered one, fast?

Runs `pipelines/ablations/web_filters.yaml` (the shared web corpus, ../shared/data/web) twice:

1. the A/B ablation with the shipped defaults, curation of both mixes included (fresh runs
   folder unless --reuse-runs): its wall time is the figure for the 10-minute target;
2. the A/A control: the filtered mix against itself under another data order (the curated
   runs of step 1 are reused, so it trains only).

After the A/B it scores point 5 (bench/cloze.py: four-way continuation and word-order
choices built from the held-out eval documents) with every A/B run's final model.

It prints, per eval set, each mix's mean ± std, Δ, its standard error, Δ/SE and Δ in seed
stds, the verdicts, the wall times and per-run training speed, then the issue's checks:

* filtered and unfiltered separated by >= 3 seed stds on the held-out web reference (wcxb),
  filtered better;
* no eval set favours the other mix by 2 σ or more;
* A/A gap under 2 σ on every set;
* curation + training of both mixes in at most 600 s.

    .venv/bin/python bench/ablation.py                       # defaults
    .venv/bin/python bench/ablation.py --tokens 500000 --seeds 3 --reuse-runs
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.ablate import load_ablation_file, run_ablation  # noqa: E402
from trainer.compare import CONTRADICTS  # noqa: E402

SPEC = ROOT / "pipelines" / "ablations" / "web_filters.yaml"


def show(label: str, summary: dict, seconds: float) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    table = pd.read_parquet(summary["comparisons"])
    print(f"\n== {label}: {seconds:.0f} s wall ==")
    for row in table.itertuples():
        print(
            f"  {row.eval_set:6s} {row.a} {row.mean_a:.4f} ± {row.std_a:.4f}  {row.b} {row.mean_b:.4f} ± {row.std_b:.4f}  "
            f"Δ {row.delta:+.4f}  SE {row.se:.4f}  Δ/SE {row.z:+.1f}  Δ/seed-std {row.gap_in_seed_std:.1f}"
        )
    for line in summary["verdicts"]:
        print(f"  {line}")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, help="override the training tokens per run")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--model")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "ablation"))
    parser.add_argument(
        "--reuse-runs", action="store_true", help="keep curated runs from an earlier bench run (the wall time then excludes curation)"
    )
    parser.add_argument("--no-control", action="store_true", help="only the A/B ablation")
    parser.add_argument("--only-control", action="store_true", help="only the A/A control, on the runs of an earlier A/B bench run")
    parser.add_argument("--no-cloze", action="store_true", help="skip point 5 (choice tasks scored by the A/B runs' final models)")
    args = parser.parse_args()
    os.chdir(ROOT)  # the recipes name the shared corpus relative to the repository
    recipes, settings, options = load_ablation_file(str(SPEC))
    for name in ("tokens", "seeds", "model"):
        if getattr(args, name) is not None:
            setattr(options, name, getattr(args, name))
    runs = os.path.join(args.out, "runs")
    if not (args.reuse_runs or args.only_control) and os.path.exists(runs):
        shutil.rmtree(runs)
    load = os.getloadavg()
    print(
        f"bench/ablation.py: model {options.model}, {options.tokens:,} tokens x {options.seeds} seeds, load average {load[0]:.2f} at start"
    )

    ab_table, ab_seconds = None, math.nan
    if not args.only_control:
        started = time.time()
        ab = run_ablation(recipes, os.path.join(args.out, "ab"), dataclasses.replace(options, control=False), runs_dir=runs)
        ab_seconds = time.time() - started
        ab_table = show("filtered vs unfiltered", ab, ab_seconds)
        if not args.no_cloze:
            sys.path.insert(0, str(ROOT / "bench"))
            import cloze

            started = time.time()
            cloze.show(cloze.probe(os.path.join(args.out, "ab")))
            print(f"  ({time.time() - started:.0f} s, not part of the A/B wall time)")

    aa_table = None
    if not args.no_control:
        started = time.time()
        # the filtered run of step 1, named as a finished run: nothing is curated again
        filtered = os.path.join(runs, "web_filtered")
        aa = run_ablation([filtered], os.path.join(args.out, "aa"), dataclasses.replace(options, control=True))
        aa_table = show("A/A control (filtered, two data orders)", aa, time.time() - started)

    import json

    checks = {}
    if ab_table is not None:
        timings = json.loads(Path(args.out, "ab", "ablation.json").read_text())["timings"]
        print(
            f"\ncuration {timings['curation_s']:.0f} s, training {timings['training_s']:.0f} s, "
            f"median {timings['median_tokens_per_s_per_run']:,.0f} tokens/s per training run, load average {os.getloadavg()[0]:.2f} at end"
        )
        web = ab_table[ab_table["eval_set"] == "wcxb"].iloc[0]
        checks = {
            "filtered better on wcxb by >= 3 seed stds": web["delta"] > 0 and web["gap_in_seed_std"] >= 3,
            "no set favours unfiltered by >= 2 σ": not any(ab_table["z"] <= -CONTRADICTS),
            "curation + training <= 600 s": ab_seconds <= 600,
        }
    if aa_table is not None:
        checks["A/A control under 2 σ on every set"] = all(abs(z) < CONTRADICTS or math.isnan(z) for z in aa_table["z"])
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'NO'}] {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
