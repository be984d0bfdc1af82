"""``curate ablate A.yaml B.yaml`` (or ``curate ablate ABLATION.yaml``): which data mix is better?

The protocol (docs/training.md, "Ablations"):

1. Every held-out reference set is read, sampled and tokenized once (``trainer.evalsets``),
   and a ``decontaminate`` stage protecting all of them (by URL and by 13-gram overlap) is put
   right after ``extract`` in every recipe: no mix trains on a page it is scored on, and the
   report says how many documents that removed.
2. Recipes that start with the same sources and stages run that prefix once (one extraction
   of the corpus for all mixes); each mix then runs its own remaining stages on the prefix's
   documents. Finished runs are reused; a run folder can also be named directly.
3. Every mix trains the same model for the same number of tokens, with the same schedule and
   the same seeds; seed ``k`` fixes the initialisation and the data order for every mix alike
   (paired seeds). ``control: true`` adds an A/A control: the first mix again under a
   different data order, which must show no difference.
4. ``trainer.compare`` turns the final losses into Δ, its standard error and a verdict, refused
   when a mix repeats data or a model ends no better than a unigram guess.

Outputs in the report folder: ``results.parquet`` (one row per run and evaluation),
``comparisons.parquet`` (one row per eval set and pair of mixes: means, stds, Δ, SE, z,
sentence), ``report.md``, ``eval_<set>.png``, ``ablation.json`` (options, arms, verdicts,
warnings, timings) and ``train/<mix>/seed<k>/metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from trainer.evalsets import DEFAULT_EVAL_SETS, EvalSetError, EvalSetSpec, PreparedEvalSet, prepare_eval_set
from trainer.controls import Dose, build_dose
from trainer.report import CONTROL_SUFFIX


class AblationError(ValueError):
    pass


@dataclass
class AblationOptions:
    """Every default of ``curate ablate``, written once: the CLI flags and the YAML keys are these fields."""

    model: str = "tiny"  # trainer.model.SIZES name
    # A separate output matrix: with input and output embeddings tied, `tiny` sat on a loss
    # plateau for a seed- and mix-dependent share of the run (bench/README.md, issue #18), so the
    # comparison measured when each run escaped it rather than its data. Same compute either way.
    tie_embeddings: bool = False
    # training tokens per run, the same for every mix: from 1.5M on every `tiny` seed has
    # converged far enough that seeds agree to ~0.01 nats (bench/README.md, issue #18)
    tokens: int = 1_500_000
    seeds: int = 3
    seq_len: int = 128
    micro_batch: int = 8  # 1,024 tokens a step: at this model size more, smaller steps learn more per token
    lr: float = 3e-3
    warmup: float = 0.05  # share of the steps spent warming up; cosine to lr/10 after
    eval_points: int = 4  # evaluations per run, evenly spaced, the last at the end
    # sequences of seq_len scored per eval set (the first of its hash-shuffled stream): 128 were a
    # handful of documents (3 of WikiText's 62 articles), and which handful moved Δ more than the
    # mixes did; 1,024 cut the SE of Δ 1.3-3.2x on wcxb and wiki at 1.5M tokens, for ~10% more CPU
    # (bench/ablation_resolution.py, issue #31)
    eval_sequences: int = 1024
    eval_sets: list[EvalSetSpec] = field(default_factory=lambda: [dataclasses.replace(s) for s in DEFAULT_EVAL_SETS])
    shuffle: bool = True  # seed k also draws the data order (else every seed reads the data in stream order)
    control: bool = False  # add an A/A control run of the first mix (different data order)
    # --calibrate: the first mix against copies of itself with a known degradation at these
    # doses (shares of its documents; trainer/controls.py), to state what this budget can see
    calibrate: bool = False
    degradations: list[str] = field(default_factory=lambda: ["shuffled", "boilerplate"])
    doses: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5])
    # --per-rule N: the first mix plus the documents each of its N most-removing rules alone removed (trainer/rule_mixes.py)
    per_rule: int = 0
    decontaminate: bool = True  # protect the eval sets in every recipe
    share_prefix: bool = True  # run the stages recipes share once
    jobs: int | None = None  # training processes at once (default: one per core, at most one per run)
    threads: int | None = None  # torch threads per process (default: cores / jobs)
    progress: bool = False

    def validate(self) -> None:
        for name in ("tokens", "seeds", "seq_len", "micro_batch", "eval_points", "eval_sequences"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not self.eval_sets:
            raise ValueError("eval_sets: expected at least one held-out set")
        names = [s.name for s in self.eval_sets]
        if len(set(names)) != len(names):
            raise ValueError(f"eval_sets: names must be unique, got {names}")
        for kind in self.degradations if self.calibrate else []:
            for share in self.doses:
                Dose(kind, share)  # raises on an unknown degradation or a share outside (0, 1]
        if self.per_rule < 0:
            raise ValueError(f"per_rule: expected a number of rules (0: off), got {self.per_rule}")


@dataclass
class Arm:
    """One side of the comparison: a name and a finished run folder."""

    name: str
    run_dir: str
    manifest: dict
    shuffle_offset: int = 0  # != 0 only for the A/A control
    excluded: dict[str, int] = field(default_factory=dict)  # documents removed to protect the eval sets, by reason
    checked: bool = True  # whether the run was checked against the eval sets
    role: str = "mix"  # "mix" (compared in the verdict), "control" (A/A), "calibration" or "rule" (built from the first mix)

    @property
    def tokens(self) -> int:
        return int(self.manifest.get("tokens", {}).get("total") or 0)


# --- the recipes: decontamination, a shared prefix, the runs ---------------------------------


def protect(recipe, protected: list[PreparedEvalSet]):
    """The recipe with a decontaminate stage for the eval sets right after ``extract``."""
    from curate.decontaminate import DecontaminateParams, ProtectedSet
    from curate.recipe import StageSpec

    sets = [ProtectedSet(p.spec.name, [p.protected], kind="jsonl") for p in protected if p.protected]
    if not sets:
        return recipe
    taken = {s.name for s in recipe.stages}
    name = "heldout" if "heldout" not in taken else "ablate_heldout"
    stage = StageSpec(kind="decontaminate", name=name, params=DecontaminateParams(sets=sets))
    at = 1 if recipe.stages and recipe.stages[0].kind == "extract" else 0
    return dataclasses.replace(recipe, stages=recipe.stages[:at] + [stage] + recipe.stages[at:])


def shared_prefix(recipes: list) -> int:
    """How many leading stages every recipe has in common (0 when their inputs differ).

    Only single-source recipes (or ones without a mixture) qualify: a mix reads the prefix's
    documents back as one ``run`` source, which keeps each document's source name.
    """
    if len(recipes) < 2:
        return 0
    first = recipes[0]
    for r in recipes:
        if r.to_dict()["sources"] != first.to_dict()["sources"] or r.seed != first.seed:
            return 0
        if r.mixture is not None and len(r.sources) > 1:
            return 0
    stage_lists = [r.to_dict()["stages"] for r in recipes]
    k = 0
    while all(len(s) > k for s in stage_lists) and all(s[k] == stage_lists[0][k] for s in stage_lists):
        k += 1
    return k


def split_at_prefix(recipes: list, k: int, runs_dir: str):
    """(the prefix recipe, each recipe rewritten to read the prefix's documents)."""
    from curate.recipe import SourceSpec

    first = recipes[0]
    key = first.fingerprint()[:10]
    name = f"shared-{'+'.join(s.kind for s in first.stages[:k])}-{key}"
    prefix = dataclasses.replace(first, name=name, output=os.path.join(runs_dir, name), stages=first.stages[:k], mixture=None)
    source_name = first.sources[0].name if len(first.sources) == 1 else "shared"
    source = SourceSpec(name=source_name, kind="run", paths=[prefix.output], apply_stages=True)
    rest = [dataclasses.replace(r, sources=[source], stages=r.stages[k:]) for r in recipes]
    return prefix, rest


def load_recipes(items: list, tokenizer: str | None) -> list:
    from curate.recipe import Recipe, load_recipe

    recipes = []
    for item in items:
        recipe = item if isinstance(item, Recipe) else load_recipe(item)
        if tokenizer:
            # only the path changes: the recipe's other tokenizer keys (eos_token, ...) stay
            recipe = dataclasses.replace(recipe, tokenizer=dataclasses.replace(recipe.tokenizer, path=os.path.abspath(tokenizer)))
        recipes.append(recipe)
    return recipes


def prepare_arms(
    inputs: list,
    runs_dir: str | None = None,
    tokenizer: str | None = None,
    master: str | None = None,
    spark=None,
    protected: list[PreparedEvalSet] | None = None,
    share: bool = True,
) -> list[Arm]:
    """Recipe files (or Recipe objects) are run (reusing finished runs of the same recipe);
    folders with a ``manifest.json`` are used as they are."""
    folders = [i for i in inputs if isinstance(i, str) and os.path.isdir(i)]
    recipes = load_recipes([i for i in inputs if not (isinstance(i, str) and os.path.isdir(i))], tokenizer)
    if protected:
        recipes = [protect(r, protected) for r in recipes]
    prefix_manifest = None
    k = shared_prefix(recipes) if share else 0
    if k:
        runs_root = runs_dir or os.path.dirname(os.path.abspath(recipes[0].output))
        prefix, recipes = split_at_prefix(recipes, k, runs_root)
        print(f"ablate: the recipes share {k} stage(s); running them once -> {prefix.output}", file=sys.stderr)
        prefix_manifest = _run(prefix, prefix.output, master, spark)
    arms = []
    for recipe in recipes:
        output = os.path.join(runs_dir, recipe.name) if runs_dir else recipe.output
        manifest = _run(recipe, output, master, spark)
        arm = Arm(recipe.name, manifest["output"], manifest)
        arm.excluded = _decontaminated(prefix_manifest or manifest)
        arm.checked = bool(protected) and any(p.protected for p in protected)
        arms.append(arm)
    for folder in folders:
        arms.append(_finished_run(folder, protected))
    _check_arms(arms)
    return arms


def _run(recipe, output: str, master: str | None, spark) -> dict:
    from curate.pipeline import run_recipe

    return run_recipe(recipe, output=output, master=master, resume=True, spark=spark)


def _decontaminated(manifest: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in manifest.get("funnel", []):
        if entry.get("kind") == "decontaminate":
            out.update(entry.get("rejected", {}))
    return out


def _finished_run(folder: str, protected: list[PreparedEvalSet] | None) -> Arm:
    manifest_path = os.path.join(folder, "manifest.json")
    if not os.path.exists(manifest_path):
        raise AblationError(f"{folder}: a folder given to ablate must be a finished run (no manifest.json)")
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    arm = Arm(manifest.get("name") or os.path.basename(os.path.normpath(folder)), os.path.abspath(folder), manifest)
    documents = os.path.join(folder, "documents")
    arm.checked = bool(protected) and os.path.isdir(documents)
    if arm.checked:
        arm.excluded = contamination(folder, [p for p in protected if p.protected])
    return arm


def contamination(run_dir: str, protected: list[PreparedEvalSet]) -> dict[str, int]:
    """Documents of a finished run that overlap an eval set (by URL or 13-gram), by reason."""
    from curate.decontaminate import DecontaminateParams, DecontaminateStage, ProtectedSet
    from curate.recipe import SourceSpec
    from curate.sources import read_source, source_files
    from curate.stage import run_map_stages

    if not protected:
        return {}
    stage = DecontaminateStage(
        DecontaminateParams(sets=[ProtectedSet(p.spec.name, [p.protected], kind="jsonl") for p in protected]), name="heldout"
    )
    source = SourceSpec(name="run", kind="run", paths=[run_dir])
    for path in source_files(source):
        for batch in read_source(source, path):
            run_map_stages([stage], batch)
    return {k.split(":", 1)[1]: int(v) for k, v in stage.counters.items() if k.startswith("rejected:")}


def _check_arms(arms: list[Arm]) -> None:
    import hashlib

    names = [a.name for a in arms]
    for name in names:
        if names.count(name) > 1:
            raise AblationError(f"two inputs are both named {name!r}; give the recipes different names")
    tokenizers = {a.name: a.manifest.get("tokens", {}).get("tokenizer") for a in arms}
    digests = {n: hashlib.sha256(Path(p).read_bytes()).hexdigest() if p and os.path.exists(p) else p for n, p in tokenizers.items()}
    if len(set(digests.values())) > 1:
        listing = ", ".join(f"{n}: {p}" for n, p in tokenizers.items())
        raise AblationError(f"the runs use different tokenizers, so their losses are not comparable ({listing})")
    for arm in arms:
        if not arm.tokens:
            raise AblationError(f"{arm.run_dir}: the run '{arm.name}' has no tokens to train on")


# --- known-answer mixes built from the first mix (trainer/controls.py) ----------------------------


def derived_arms(arms: list[Arm], options: AblationOptions, folder: str) -> list[Arm]:
    """The calibration doses and per-rule mixes of the first mix, built into ``folder`` from its
    run (no second curation)."""
    first = arms[0]
    out = []
    if options.calibrate:
        for share in options.doses:
            for kind in options.degradations:
                dose = Dose(kind, share)
                out.append(
                    _derived(
                        first, f"{first.name}~{dose.label}", folder, "calibration", lambda d, dose=dose: build_dose(first.run_dir, d, dose)
                    )
                )
    if options.per_rule:
        from trainer.rule_mixes import build_rule_mix, judge_removals, rules_removed

        other = next((a for a in arms[1:] if a.role == "mix"), None)
        shared = shared_stages(first.manifest, other.manifest) if other else set()
        rules = list(rules_removed(first.run_dir, shared))[: options.per_rule]
        judged = judge_removals(first.run_dir) if rules else None  # every rule of every removed document, once
        for rule in rules:
            build = lambda d, rule=rule: build_rule_mix(first.run_dir, d, rule, judged)  # noqa: E731
            out.append(_derived(first, f"{first.name}+{rule}", folder, "rule", build))
    return out


def _derived(first: Arm, name: str, folder: str, role: str, build) -> Arm:
    # always built again (seconds): a folder left by an earlier ablation may hold another first mix or version
    path = os.path.join(folder, name)
    manifest = build(path)
    print(f"ablate: {role} mix {name}: {manifest['tokens']['total']:,} tokens -> {path}", file=sys.stderr)
    return Arm(name, path, manifest, excluded=first.excluded, checked=first.checked, role=role)


def shared_stages(a: dict, b: dict) -> set[str]:
    """Names of the first run's stages that the other run's recipe has too, with the same settings."""
    theirs = [json.dumps(s, sort_keys=True) for s in b.get("recipe", {}).get("stages", [])]
    return {s.get("name") or s["stage"] for s in a.get("recipe", {}).get("stages", []) if json.dumps(s, sort_keys=True) in theirs}


# --- training ----------------------------------------------------------------------------------


def train_config(arm: Arm, seed: int, options: AblationOptions, eval_sets: dict[str, str], out_dir: str, threads: int | None):
    from trainer.train import parse_config

    tokens_per_step = options.micro_batch * options.seq_len
    steps = max(1, -(-options.tokens // tokens_per_step))
    return parse_config(
        {
            "out_dir": out_dir,
            "seed": seed,
            "model": {"size": options.model, "tie_embeddings": options.tie_embeddings},
            "data": {"train": arm.run_dir, "seq_len": options.seq_len, "shuffle_seed": _shuffle_seed(arm, seed, options)},
            "eval": {"sets": eval_sets, "every": max(1, steps // options.eval_points), "max_sequences": options.eval_sequences},
            "optim": {
                "micro_batch": options.micro_batch,
                "max_steps": steps,
                "lr": options.lr,
                "min_lr": options.lr / 10,
                "warmup_steps": max(1, round(steps * options.warmup)),
            },
            "system": {"device": "auto", "threads": threads},
            "checkpoint": {"every": 0},
            "log": {"progress": options.progress, "every": 10},
        },
        file=f"ablation {arm.name} seed {seed}",
    )


def _shuffle_seed(arm: Arm, seed: int, options: AblationOptions) -> int | None:
    """The data order of one run: drawn from the seed, or the stream's own order; the A/A
    control always reads its mix in another order than the run it is compared with."""
    if not options.shuffle and not arm.shuffle_offset:
        return None
    return 1000 * arm.shuffle_offset + seed


def _train_one(config) -> dict:
    from trainer.train import train

    started = time.time()
    summary = train(config)
    summary["seconds"] = time.time() - started
    return summary


def train_all(configs: list, jobs: int) -> list[dict]:
    """Train every run, ``jobs`` processes at a time (one process per run: for small models two
    single-threaded processes do more per second than one with two threads)."""
    if jobs <= 1:
        return [_train_one(c) for c in configs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_train_one, configs))


def plan_parallelism(options: AblationOptions, runs: int) -> tuple[int, int]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    import torch

    if torch.cuda.is_available():
        return 1, options.threads or cores
    jobs = options.jobs or max(1, min(cores, runs))
    return jobs, options.threads or max(1, cores // jobs)


# --- the run ----------------------------------------------------------------------------------


def run_ablation(
    inputs: list,
    out_dir: str,
    options: AblationOptions,
    runs_dir: str | None = None,
    tokenizer: str | None = None,
    master: str | None = None,
    spark=None,
) -> dict:
    """Build/reuse the runs, train every (mix, seed), compare, write the report. Returns a summary."""
    from trainer.report import collect_results, write_report

    options.validate()
    started = time.time()
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    recipes_tokenizer = tokenizer or _first_tokenizer(inputs)
    eos = "<|endoftext|>"
    prepared = [prepare_eval_set(s, recipes_tokenizer, eos, os.path.join(out_dir, "eval")) for s in options.eval_sets]
    arms = prepare_arms(inputs, runs_dir, tokenizer, master, spark, prepared if options.decontaminate else None, options.share_prefix)
    curated = time.time()
    if options.control:
        first = arms[0]
        arms.append(dataclasses.replace(first, name=first.name + CONTROL_SUFFIX, shuffle_offset=1, role="control"))
    arms += derived_arms(arms, options, os.path.join(out_dir, "mixes"))
    built = time.time()
    eval_shards = {p.spec.name: p.shards for p in prepared}
    runs = [(arm, seed) for arm in arms for seed in range(options.seeds)]
    jobs, threads = plan_parallelism(options, len(runs))
    configs = [
        train_config(arm, seed, options, eval_shards, os.path.join(out_dir, "train", arm.name, f"seed{seed}"), threads)
        for arm, seed in runs
    ]
    print(
        f"ablate: training {len(runs)} runs ({len(arms)} mixes x {options.seeds} seeds), {jobs} at a time, {threads} thread(s) each",
        file=sys.stderr,
    )
    summaries = train_all(configs, jobs)
    timings = {"curation_s": curated - started, "controls_s": built - curated, "training_s": time.time() - built}
    results = collect_results(out_dir, arms, options.seeds)
    report = write_report(out_dir, results, arms, prepared, options, summaries, timings, started)
    return {**report, "seconds": time.time() - started, "arms": [a.name for a in arms]}


def _first_tokenizer(inputs: list) -> str:
    from curate.recipe import Recipe, load_recipe

    for item in inputs:
        if isinstance(item, str) and os.path.isdir(item):
            with open(os.path.join(item, "manifest.json")) as fh:
                path = json.load(fh).get("tokens", {}).get("tokenizer")
            if path:
                return path
        else:
            recipe = item if isinstance(item, Recipe) else load_recipe(item, check_files=False)
            return recipe.tokenizer.path
    raise AblationError("no input names a tokenizer")


# --- command line --------------------------------------------------------------------------------


def load_ablation_file(path: str) -> tuple[list, dict, AblationOptions]:
    """An ablation YAML: ``recipes:`` (relative to the file), run settings and any option."""
    import yaml

    from curate.config import ConfigError, from_dict

    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict) or "recipes" not in raw:
        raise ConfigError(os.path.basename(path), "", "an ablation file needs a 'recipes:' list")
    base = os.path.dirname(os.path.abspath(path))
    recipes = [os.path.normpath(os.path.join(base, r)) for r in raw.pop("recipes")]
    settings = {k: raw.pop(k) for k in ("out", "runs_dir", "tokenizer", "master") if k in raw}
    for key in ("out", "runs_dir", "tokenizer"):
        if key in settings:
            settings[key] = os.path.normpath(os.path.join(base, settings[key]))
    for spec in raw.get("eval_sets", []) or []:
        if isinstance(spec, dict) and "path" in spec:
            spec["path"] = os.path.normpath(os.path.join(base, spec["path"]))
    return recipes, settings, from_dict(AblationOptions, raw, "", os.path.basename(path))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate ablate", description="Train the same small model on several data mixes and compare them.")
    parser.add_argument("inputs", nargs="+", help="recipe YAML files or finished run folders, or one ablation YAML (with 'recipes:')")
    for f in dataclasses.fields(AblationOptions):
        if f.name in ("eval_sets", "progress", "degradations", "doses"):
            continue
        default = f.default
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=f"(default: {default})")
        else:
            kind = type(default) if default is not None else int
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=f"(default: {default})")
    parser.add_argument(
        "--eval", action="append", default=[], metavar="NAME=PATH", help="add a held-out set (WARC, text, JSONL, run or token shards)"
    )
    parser.add_argument("--no-default-evals", action="store_true", help="only the --eval sets")
    parser.add_argument(
        "--degradations",
        type=_words,
        default=argparse.SUPPRESS,
        help="calibration: comma-separated, of shuffled, boilerplate, off_language",
    )
    parser.add_argument(
        "--doses", type=_shares, default=argparse.SUPPRESS, help="calibration: comma-separated shares of documents (default 0.1,0.25,0.5)"
    )
    parser.add_argument("--out", help="report folder (default: reports/ablate)")
    parser.add_argument("--runs-dir", help="build the runs here (default: each recipe's output)")
    parser.add_argument("--tokenizer", help="use this tokenizer file in every recipe (its other tokenizer keys stay)")
    parser.add_argument("--master", help="Spark master for building runs")
    return parser


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def _shares(text: str) -> list[float]:
    return [float(w) for w in _words(text)]


def main(argv: list[str]) -> int:
    from curate.recipe import RecipeError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if len(args.inputs) == 1 and args.inputs[0].endswith((".yaml", ".yml")) and _is_ablation_file(args.inputs[0]):
            inputs, settings, options = load_ablation_file(args.inputs[0])
        else:
            inputs, settings, options = args.inputs, {}, AblationOptions()
    except RecipeError as e:
        print(f"curate ablate: {e}", file=sys.stderr)
        return 2
    for f in dataclasses.fields(AblationOptions):
        if hasattr(args, f.name):
            setattr(options, f.name, getattr(args, f.name))
    if args.no_default_evals:
        options.eval_sets = []
    for item in args.eval:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--eval expects NAME=PATH, got {item!r}")
        options.eval_sets.append(EvalSetSpec(name, path))
    options.progress = sys.stderr.isatty()
    out = args.out or settings.get("out") or "reports/ablate"
    try:
        options.validate()
        summary = run_ablation(
            inputs,
            out,
            options,
            runs_dir=args.runs_dir or settings.get("runs_dir"),
            tokenizer=args.tokenizer or settings.get("tokenizer"),
            master=args.master or settings.get("master"),
        )
    except (AblationError, RecipeError, EvalSetError, ValueError) as e:
        print(f"curate ablate: {e}", file=sys.stderr)
        return 2
    print(f"curate ablate: {len(summary['arms'])} mixes x {options.seeds} seeds in {summary['seconds']:.0f}s")
    for line in summary["verdicts"]:
        print(f"  {line}")
    print(f"  report  {summary['report']}")
    print(f"  results {summary['results']}")
    return 0


def _is_ablation_file(path: str) -> bool:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "recipes" in data
