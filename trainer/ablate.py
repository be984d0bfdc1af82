"""``curate ablate A.yaml B.yaml ... --model tiny --tokens N --seeds 3``: compare data recipes.

Each recipe's shards are built with ``curate run`` (or reused when the run folder already
holds a finished run of the same recipe; a run folder can also be named directly). The same
model is trained with the same token budget and the same seeds on each, every run evaluated
on the same held-out sets, tokenized with the runs' (shared) tokenizer:

* ``wikitext``: the WikiText-2 test split, one document per article;
* ``web``: main text of a held-out sample WARC (trafilatura), pages no recipe trains on.

The report folder holds ``results.parquet`` (recipe, seed, step, tokens, train loss and one
``eval_<set>`` column per held-out set), ``report.md`` (final losses, mean ± std over seeds)
and ``eval_<set>.png`` (eval loss against tokens, one line per recipe). Seeds change the
model initialisation; every recipe sees its own data in the same order under every seed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

EVALDATA = Path(__file__).resolve().parent / "evaldata"
DEFAULT_EVAL_SETS = {"wikitext": str(EVALDATA / "wikitext-2-test.txt.gz"), "web": str(EVALDATA / "web-heldout.warc.gz")}


class AblationError(ValueError):
    pass


@dataclass
class AblationOptions:
    model: str = "tiny"
    tokens: int = 200_000  # training tokens per run
    seeds: int = 3
    seq_len: int = 128
    micro_batch: int = 8
    lr: float = 3e-3
    eval_points: int = 8  # evaluations per run (evenly spaced in steps, the last at the end)
    eval_sequences: int = 64
    eval_sets: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_EVAL_SETS))
    threads: int | None = None
    progress: bool = False


@dataclass
class Arm:
    """One side of the comparison: a name and a finished run folder."""

    name: str
    run_dir: str
    manifest: dict


# --- inputs: recipes to build, or finished runs ----------------------------------------------


def prepare_arms(inputs: list, runs_dir: str | None = None, tokenizer: str | None = None, master: str | None = None, spark=None) -> list[Arm]:
    """Recipe files (or Recipe objects) are run (reusing a finished run of the same recipe);
    folders with a ``manifest.json`` are used as they are."""
    from curate.recipe import Recipe, load_recipe

    arms: list[Arm] = []
    for item in inputs:
        if isinstance(item, str) and os.path.isdir(item):
            manifest_path = os.path.join(item, "manifest.json")
            if not os.path.exists(manifest_path):
                raise AblationError(f"{item}: a folder given to ablate must be a finished run (no manifest.json)")
            with open(manifest_path) as fh:
                manifest = json.load(fh)
            arms.append(Arm(manifest.get("name") or os.path.basename(os.path.normpath(item)), os.path.abspath(item), manifest))
            continue
        overrides = {}
        if tokenizer:
            overrides["tokenizer"] = {"path": tokenizer}
        recipe = item if isinstance(item, Recipe) else load_recipe(item, overrides=overrides or None)
        output = os.path.join(runs_dir, recipe.name) if runs_dir else recipe.output
        from curate.pipeline import run_recipe

        manifest = run_recipe(recipe, output=output, master=master, resume=True, spark=spark)
        arms.append(Arm(recipe.name, manifest["output"], manifest))
    names = [a.name for a in arms]
    for name in names:
        if names.count(name) > 1:
            raise AblationError(f"two inputs are both named {name!r}; give the recipes different names")
    tokenizers = {a.name: a.manifest.get("tokens", {}).get("tokenizer") for a in arms}
    digests = {name: _file_digest(path) if path and os.path.exists(path) else path for name, path in tokenizers.items()}
    if len(set(digests.values())) > 1:
        listing = ", ".join(f"{n}: {p}" for n, p in tokenizers.items())
        raise AblationError(f"the runs use different tokenizers, so their losses are not comparable ({listing})")
    for arm in arms:
        if not arm.manifest.get("tokens", {}).get("total"):
            raise AblationError(f"{arm.run_dir}: the run '{arm.name}' has no tokens to train on")
    return arms


def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- held-out sets ----------------------------------------------------------------------------


def wikitext_articles(path: str) -> list[str]:
    """WikiText articles: a new one starts at each top-level `` = Title = `` line."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    articles: list[list[str]] = []
    for line in lines:
        if re.fullmatch(r" = [^=].* = ", line):
            articles.append([])
        if articles and line.strip():
            articles[-1].append(line.strip())
    return ["\n".join(a) for a in articles if a]


def warc_texts(path: str) -> list[str]:
    """Main text of the HTML pages of a WARC file, extracted as the ``extract`` stage does."""
    from curate.extract import ExtractParams, ExtractStage
    from curate.recipe import SourceSpec
    from curate.sources import read_source
    from curate.stage import run_map_stages

    stage = ExtractStage(ExtractParams(), name="extract")
    stage.ensure_setup()
    texts: list[str] = []
    for batch in read_source(SourceSpec(name="heldout", kind="warc", paths=[path]), path):
        kept, _ = run_map_stages([stage], batch)
        texts.extend(t for t in kept.column("text").to_pylist() if t)
    return texts


def held_out_texts(path: str) -> list[str]:
    if ".warc" in os.path.basename(path):
        return warc_texts(path)
    if path.endswith((".txt", ".txt.gz")):
        return wikitext_articles(path)
    raise AblationError(f"{path}: a held-out set must be a WARC file, a text file, or a folder of token shards")


def build_eval_sets(sets: dict[str, str], tokenizer: str, eos_token: str, folder: str) -> dict[str, str]:
    """Tokenize each held-out set once per tokenizer (cached under ``folder``); token shard
    folders are used as they are."""
    from trainer.data import shards_from_texts

    out = {}
    key = _file_digest(tokenizer)[:12]
    for name, path in sets.items():
        if os.path.isdir(path):
            out[name] = path
            continue
        target = os.path.join(folder, f"{name}-{key}")
        if not os.path.exists(os.path.join(target, "manifest.json")):
            texts = held_out_texts(path)
            if not texts:
                raise AblationError(f"{path}: the held-out set '{name}' has no text")
            shards_from_texts(texts, tokenizer, target, source=name, eos_token=eos_token)
        out[name] = target
    return out


# --- training and the report ------------------------------------------------------------------


def train_config(arm: Arm, seed: int, options: AblationOptions, eval_sets: dict[str, str], out_dir: str):
    from trainer.train import parse_config

    tokens_per_step = options.micro_batch * options.seq_len
    steps = max(1, -(-options.tokens // tokens_per_step))
    return parse_config(
        {
            "out_dir": out_dir,
            "seed": seed,
            "model": {"size": options.model},
            "data": {"train": arm.run_dir, "seq_len": options.seq_len},
            "eval": {"sets": eval_sets, "every": max(1, steps // options.eval_points), "max_sequences": options.eval_sequences},
            "optim": {
                "micro_batch": options.micro_batch,
                "max_steps": steps,
                "lr": options.lr,
                "min_lr": options.lr / 10,
                "warmup_steps": max(1, steps // 10),
            },
            "system": {"device": "auto", "threads": options.threads},
            "checkpoint": {"every": 0},
            "log": {"progress": options.progress},
        },
        file=f"ablation {arm.name} seed {seed}",
    )


def collect_results(out_dir: str, arms: list[Arm], seeds: int) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    rows = []
    for arm in arms:
        for seed in range(seeds):
            metrics = os.path.join(out_dir, "train", arm.name, f"seed{seed}", "metrics.jsonl")
            last_loss = None
            with open(metrics) as fh:
                for line in fh:
                    record = json.loads(line)
                    if "loss" in record:
                        last_loss = record["loss"]
                    if "eval" in record:
                        row = {"recipe": arm.name, "seed": seed, "step": record["step"], "tokens": record["tokens"], "train_loss": last_loss}
                        row.update({f"eval_{k}": v for k, v in record["eval"].items()})
                        rows.append(row)
    return pd.DataFrame(rows)


def final_table(results) -> "pd.DataFrame":  # noqa: F821
    """Per recipe: the loss at the last evaluation, mean and std over seeds."""
    last = results[results["step"] == results.groupby(["recipe", "seed"])["step"].transform("max")]
    columns = [c for c in results.columns if c.startswith("eval_") or c == "train_loss"]
    return last.groupby("recipe", sort=False)[columns].agg(["mean", "std", "count"])


def write_report(out_dir: str, results, arms: list[Arm], options: AblationOptions, seconds: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results.to_parquet(os.path.join(out_dir, "results.parquet"), index=False)
    table = final_table(results)
    eval_columns = [c for c in results.columns if c.startswith("eval_")]
    plots = []
    for column in eval_columns:
        fig, ax = plt.subplots(figsize=(6, 4))
        for arm in arms:
            curve = results[results["recipe"] == arm.name].groupby("tokens")[column].agg(["mean", "std"]).reset_index()
            ax.plot(curve["tokens"], curve["mean"], marker="o", label=arm.name)
            ax.fill_between(curve["tokens"], curve["mean"] - curve["std"].fillna(0), curve["mean"] + curve["std"].fillna(0), alpha=0.2)
        ax.set_xlabel("training tokens")
        ax.set_ylabel(f"eval loss ({column[5:]})")
        ax.set_title(f"{column[5:]}: mean ± std over {options.seeds} seeds")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        name = f"{column}.png"
        fig.savefig(os.path.join(out_dir, name), dpi=120)
        plt.close(fig)
        plots.append(name)

    lines = [
        "# Ablation report",
        "",
        f"Model `{options.model}`, {options.tokens:,} training tokens per run, sequence length {options.seq_len}, "
        f"{options.seeds} seeds, {seconds:.0f} s in all. Lower is better; the losses are mean ± std over seeds at the "
        "last evaluation.",
        "",
        "| recipe | run tokens | " + " | ".join(c[5:] for c in eval_columns) + " | train loss |",
        "| --- | ---: | " + " | ".join("---:" for _ in eval_columns) + " | ---: |",
    ]
    for arm in arms:
        cells = []
        for column in eval_columns + ["train_loss"]:
            mean, std = table.loc[arm.name, (column, "mean")], table.loc[arm.name, (column, "std")]
            cells.append(f"{mean:.4f} ± {0.0 if std != std else std:.4f}")
        lines.append(f"| {arm.name} | {arm.manifest['tokens']['total']:,} | " + " | ".join(cells) + " |")
    lines += ["", "Runs:", ""]
    lines += [f"- `{arm.name}`: `{arm.run_dir}`" for arm in arms]
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    with open(os.path.join(out_dir, "ablation.json"), "w") as fh:
        json.dump({"options": options.__dict__, "arms": {a.name: a.run_dir for a in arms}, "seconds": round(seconds, 1)}, fh, indent=2)
    return path


def run_ablation(inputs: list, out_dir: str, options: AblationOptions, runs_dir: str | None = None, tokenizer: str | None = None, master: str | None = None, spark=None) -> dict:
    """Build/reuse the runs, train every (recipe, seed), write the report. Returns a summary."""
    started = time.time()
    os.makedirs(out_dir, exist_ok=True)
    arms = prepare_arms(inputs, runs_dir, tokenizer, master, spark)
    tokens = arms[0].manifest["tokens"]
    eval_sets = build_eval_sets(options.eval_sets, tokens["tokenizer"], tokens.get("eos_token", "<|endoftext|>"), os.path.join(out_dir, "eval"))
    from trainer.train import train

    for arm in arms:
        for seed in range(options.seeds):
            run_out = os.path.join(out_dir, "train", arm.name, f"seed{seed}")
            print(f"ablate: training on {arm.name!r}, seed {seed} -> {run_out}", file=sys.stderr)
            train(train_config(arm, seed, options, eval_sets, run_out))
    results = collect_results(out_dir, arms, options.seeds)
    report = write_report(out_dir, results, arms, options, time.time() - started)
    return {"report": report, "results": os.path.join(out_dir, "results.parquet"), "seconds": time.time() - started, "arms": [a.name for a in arms]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="curate ablate", description="Train the same small model on several recipes and compare eval losses.")
    parser.add_argument("inputs", nargs="+", help="recipe YAML files, or folders of finished runs")
    parser.add_argument("--model", default="tiny", help="model size (trainer/model.py SIZES)")
    parser.add_argument("--tokens", type=int, default=200_000, help="training tokens per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-points", type=int, default=8, help="evaluations per run")
    parser.add_argument("--eval-sequences", type=int, default=64, help="sequences per held-out set")
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=PATH", help="add a held-out set (WARC, text file or token shards)")
    parser.add_argument("--no-default-evals", action="store_true", help="only the --eval sets")
    parser.add_argument("--out", default="reports/ablate", help="report folder")
    parser.add_argument("--runs-dir", help="build the runs here (default: each recipe's output)")
    parser.add_argument("--tokenizer", help="override every recipe's tokenizer.path")
    parser.add_argument("--master", help="Spark master for building runs")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args(argv)
    sets = {} if args.no_default_evals else dict(DEFAULT_EVAL_SETS)
    for item in args.eval:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--eval expects NAME=PATH, got {item!r}")
        sets[name] = path
    if not sets:
        parser.error("no held-out sets: drop --no-default-evals or add --eval NAME=PATH")
    options = AblationOptions(
        model=args.model, tokens=args.tokens, seeds=args.seeds, seq_len=args.seq_len, micro_batch=args.micro_batch, lr=args.lr,
        eval_points=args.eval_points, eval_sequences=args.eval_sequences, eval_sets=sets, threads=args.threads, progress=sys.stderr.isatty(),
    )
    from curate.recipe import RecipeError

    try:
        summary = run_ablation(args.inputs, args.out, options, runs_dir=args.runs_dir, tokenizer=args.tokenizer, master=args.master)
    except (AblationError, RecipeError) as e:
        print(f"curate ablate: {e}", file=sys.stderr)
        return 2
    print(f"curate ablate: {len(summary['arms'])} recipes x {options.seeds} seeds in {summary['seconds']:.0f}s")
    print(f"  report  {summary['report']}")
    print(f"  results {summary['results']}")
    return 0
