"""The multilingual recipe's speed against the English one's, end to end, in one run.

    .venv/bin/python bench/multilingual_speed.py --input bench/out/cc-1x [--cores 2] [--repeat 2]

Both recipes run on the same input with ``bench/pipeline.py``'s runner (a fresh interpreter,
``spark.master local[N]``, the JVM start inside the measured time, per-machine caches built
first): ``pipelines/recipes/fineweb.yaml`` (English: lid.176 keeps ``en``, English thresholds,
the English word splitter) and ``pipelines/recipes/fineweb2.yaml`` (every language, FineWeb-2's
per-language thresholds and word tokenizers, MinHash on each language's words). The box is
shared, so the two run back to back, in ABBA order when repeated (English, multilingual |
multilingual, English | ...), and the load average is printed before and after.

Printed: input records/s per core of each (median wall over the repeats), the ratio
multilingual / English (issue #34's target: >= 0.70), the documents each kept, and the seconds
of each stage of the last run of each recipe (from its manifest), so where the difference goes
is on the same page.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import load_average  # noqa: E402
from pipeline import ROOT, count_responses, run_ours, warm_caches  # noqa: E402

RECIPES = {
    "english": os.path.join(ROOT, "pipelines", "recipes", "fineweb.yaml"),
    "multilingual": os.path.join(ROOT, "pipelines", "recipes", "fineweb2.yaml"),
}


def stage_seconds(manifest_path: str) -> dict[str, float]:
    """Task seconds per stage (summed over tasks) and the job's timings, from the run's manifest."""
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    out = {entry["stage"]: float(entry.get("seconds", 0.0)) for entry in manifest["funnel"]}
    out.update({f"job: {name}": float(seconds) for name, seconds in manifest.get("timings", {}).items()})
    return out


TOKENIZER_COSTS = """
import glob, json, sys, time
from collections import defaultdict
import pyarrow.compute as pc
import pyarrow.parquet as pq
from curate import words
from curate.filters.text import split_words as english_regex
# the documents the multilingual run split into words: all that passed extraction and langid
tables = [pq.read_table(p, columns=["text", "language", "rejected_by"]) for f in ("documents", "rejected")
          for p in sorted(glob.glob(f"{sys.argv[1]}/{f}/*.parquet"))]
texts, languages = [], []
for t in tables:
    reason = pc.fill_null(t.column("rejected_by"), "")
    t = t.filter(pc.invert(pc.or_(pc.starts_with(reason, "extract."), pc.starts_with(reason, "langid."))))
    texts += t.column("text").to_pylist()
    languages += t.column("language").to_pylist()
groups = defaultdict(list)
for text, language in zip(texts, languages):
    groups[words.tokenizer_choice(language)].append(text)
started = time.process_time()
import spacy  # noqa: F401  (shared by every spaCy language: counted once, apart)
rows = [{"tokenizer": "import spacy", "load_cpu_s": time.process_time() - started}]
for choice, group in sorted(groups.items(), key=lambda kv: -sum(map(len, kv[1]))):
    started = time.process_time()
    split = words.splitter(choice)
    load = time.process_time() - started
    started = time.process_time()
    n = sum(len(split(t)) for t in group)
    seconds = time.process_time() - started
    started = time.process_time()
    for t in group:
        english_regex(t)
    regex = time.process_time() - started
    chars = sum(map(len, group))
    rows.append({"tokenizer": choice.name, "documents": len(group), "characters": chars, "words": n,
                 "load_cpu_s": load, "split_cpu_s": seconds, "chars_per_cpu_s": chars / max(seconds, 1e-9),
                 "english_regex_cpu_s": regex})
print(json.dumps(rows))
"""


def tokenizer_costs(run_dir: str) -> list[dict]:
    """First load and splitting, in CPU seconds of one fresh process, of each tokenizer on the
    documents the multilingual run split (CPU time: less sensitive than wall time to a shared box)."""
    import subprocess

    proc = subprocess.run([sys.executable, "-c", TOKENIZER_COSTS, run_dir], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"tokenizer costs failed:\n{proc.stderr[-2000:]}")
        return []
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_tokenizer_costs(rows: list[dict]) -> None:
    print(
        f"\n{'tokenizer':<16}{'docs':>6}{'chars':>11}{'load cpu s':>12}{'split cpu s':>13}{'kchars/cpu s':>14}{'x slower than regex':>21}"
    )
    for r in rows:
        if "documents" not in r:
            print(f"{r['tokenizer']:<16}{'':>6}{'':>11}{r['load_cpu_s']:>12.2f}")
            continue
        slower = r["split_cpu_s"] / max(r["english_regex_cpu_s"], 1e-9)
        print(
            f"{r['tokenizer']:<16}{r['documents']:>6}{r['characters']:>11,}{r['load_cpu_s']:>12.2f}{r['split_cpu_s']:>13.2f}"
            f"{r['chars_per_cpu_s'] / 1e3:>14.0f}{slower:>21.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="multilingual (fineweb2.yaml) vs English (fineweb.yaml) recipe, end to end")
    parser.add_argument("--input", default="bench/out/cc-1x")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default="bench/out/multilingual_speed")
    parser.add_argument(
        "--extractor", choices=["trafilatura", "blocks", "fast"], help="both recipes' extract stage (default: theirs, trafilatura)"
    )
    parser.add_argument(
        "--tokenizers-only", action="store_true", help="only the tokenizer costs, on the documents of an earlier run under --out"
    )
    args = parser.parse_args()
    if args.tokenizers_only:
        return print_tokenizer_costs(tokenizer_costs(os.path.abspath(os.path.join(args.out, "multilingual"))))
    input_dir = os.path.abspath(args.input)
    records = count_responses(input_dir)
    print(
        f"input: {records:,} response records in {input_dir}; local[{args.cores}]; load average before: {load_average()}; extractor: {args.extractor or 'trafilatura (the recipes)'}"
    )
    warm = warm_caches()
    if "error" in warm:
        print(f"warm-up failed:\n{warm['error']}")
    walls: dict[str, list[float]] = {name: [] for name in RECIPES}
    last: dict[str, dict] = {}
    for repeat in range(max(1, args.repeat)):
        order = list(RECIPES) if repeat % 2 == 0 else list(reversed(RECIPES))
        for name in order:
            out = os.path.abspath(os.path.join(args.out, name))
            result = run_ours(input_dir, args.cores, out, args.extractor, recipe=RECIPES[name])
            if "error" in result:
                print(f"{name}: FAILED after {result['wall_s']:.1f}s\n{result['error']}")
                return
            walls[name].append(result["wall_s"])
            last[name] = result
            print(f"  run {repeat + 1}: {name:<13} {result['wall_s']:7.1f} s  (load average now {load_average()})", flush=True)
    rates = {name: records / statistics.median(values) / args.cores for name, values in walls.items()}
    print(f"\n{'recipe':<14}{'wall s (median)':>16}{'records/s/core':>16}{'kept':>8}")
    for name, values in walls.items():
        kept = last[name]["summary"]["documents_out"]
        print(f"{name:<14}{statistics.median(values):>16.1f}{rates[name]:>16.1f}{kept!s:>8}")
    print(f"ratio multilingual / English: {rates['multilingual'] / rates['english']:.2f} (target >= 0.70)")
    print(f"load average after: {load_average()}")
    seconds = {name: stage_seconds(result["manifest"]) for name, result in last.items()}
    stages = list(dict.fromkeys([s for name in RECIPES for s in seconds[name]]))
    print(f"\n{'stage seconds (last run)':<26}{'english':>10}{'multilingual':>14}")
    for stage in stages:
        row = [seconds[name].get(stage) for name in RECIPES]
        print(f"{stage:<26}" + "".join(f"{v:>{w}.1f}" if v is not None else f"{'-':>{w}}" for v, w in zip(row, (10, 14))))
    print_tokenizer_costs(tokenizer_costs(os.path.abspath(os.path.join(args.out, "multilingual"))))


if __name__ == "__main__":
    main()
