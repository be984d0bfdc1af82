"""The ablation report: results.parquet, comparisons.parquet, report.md, plots, ablation.json.

Every number in ``report.md`` comes from the two Parquet files (the notebook
``notebooks/compare_mixes.ipynb`` reads the same files and calls the same
``trainer.compare`` functions), so the report, the plots and the notebook cannot disagree.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, field
from typing import Any

from trainer.compare import ALPHA, Comparison, Verdict, compare, verdict

# An A/A control arm is named after the mix it repeats plus this suffix (trainer.ablate adds it).
CONTROL_SUFFIX = "~control"


def tokens_needed(options) -> int:
    """Training tokens a run really uses: whole steps of micro_batch x seq_len (AblationOptions)."""
    per_step = options.micro_batch * options.seq_len
    return math.ceil(options.tokens / per_step) * per_step


def collect_results(out_dir: str, arms: list, seeds: int):
    """One row per (mix, seed, evaluation): step, tokens, train loss, eval_<set> losses."""
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
                        row = {
                            "recipe": arm.name,
                            "seed": seed,
                            "step": record["step"],
                            "tokens": record["tokens"],
                            "train_loss": last_loss,
                        }
                        row.update({f"eval_{k}": v for k, v in record["eval"].items()})
                        rows.append(row)
    return pd.DataFrame(rows)


def final_losses(results, column: str) -> dict[str, dict[int, float]]:
    """mix -> {seed: loss at that run's last evaluation}."""
    last = results[results["step"] == results.groupby(["recipe", "seed"])["step"].transform("max")]
    out: dict[str, dict[int, float]] = {}
    for row in last[["recipe", "seed", column]].itertuples(index=False):
        out.setdefault(row[0], {})[int(row[1])] = float(row[2])
    return out


def comparisons_for(results, first: str, others: list[str]) -> list[Comparison]:
    """The first mix against each other mix, on every eval set."""
    columns = [c for c in results.columns if c.startswith("eval_")]
    out = []
    for column in columns:
        losses = final_losses(results, column)
        for other in others:
            # every set of one pair is one family: its intervals hold jointly (trainer.compare)
            out.append(compare(column[5:], first, losses[first], other, losses[other], sets=len(columns)))
    return out


def mix_warnings(arms: list, options, baselines: dict[str, dict[str, float]], results, tokens_trained: int) -> dict[str, list[str]]:
    """Per mix: repeated data, a model no better than the unigram guess, unchecked overlap."""
    warnings: dict[str, list[str]] = {}
    for arm in arms:
        notes = []
        epochs = tokens_trained / arm.tokens if arm.tokens else math.inf
        if epochs > 1:
            notes.append(f"{arm.name} repeats its data: {epochs:.2f} epochs over its {arm.tokens:,} tokens")
        for column in [c for c in results.columns if c.startswith("eval_")]:
            losses = final_losses(results, column).get(arm.name, {})
            baseline = baselines.get(arm.name, {}).get(column[5:])
            if losses and baseline is not None and statistics.fmean(losses.values()) >= baseline:
                notes.append(
                    f"{arm.name} ends no better than a unigram guess on {column[5:]} ({statistics.fmean(losses.values()):.3f} >= {baseline:.3f})"
                )
        if not arm.checked:
            notes.append(f"{arm.name} was not checked for overlap with the eval sets")
        warnings[arm.name] = notes
    return warnings


def unigram_baselines(arms: list, prepared: list, options) -> dict[str, dict[str, float]]:
    from trainer.evalsets import token_counts, unigram_loss
    from trainer.train import vocab_size_for

    out: dict[str, dict[str, float]] = {}
    for arm in arms:
        vocab = _vocab_size(arm, vocab_size_for)
        counts = token_counts(arm.run_dir, vocab)
        out[arm.name] = {p.spec.name: unigram_loss(counts, p.shards, options.seq_len, options.eval_sequences) for p in prepared}
    return out


def _vocab_size(arm, vocab_size_for) -> int:
    from trainer.train import parse_config

    config = parse_config({"out_dir": "/tmp", "data": {"train": arm.run_dir}, "optim": {"max_steps": 1}})
    return vocab_size_for(config)


def _role(arm) -> str:
    return getattr(arm, "role", "control" if arm.name.endswith(CONTROL_SUFFIX) else "mix")


def compare_roles(results, arms: list) -> dict[str, list[Comparison]]:
    """The first mix against every other arm, grouped by the other arm's role (mix, control, calibration, rule)."""
    first = next(a.name for a in arms if _role(a) == "mix")
    out: dict[str, list[Comparison]] = {}
    for role in ("mix", "control", "calibration", "rule"):
        others = [a.name for a in arms if _role(a) == role and a.name != first]
        out[role] = comparisons_for(results, first, others) if others else []
    return out


def _baselines(arms: list, prepared: list, options) -> dict[str, dict[str, float]]:
    """Unigram guesses of the mixes; every arm built from the first mix is held to the first mix's."""
    mixes = [a for a in arms if _role(a) == "mix"]
    baselines = unigram_baselines(mixes, prepared, options)
    for arm in arms:
        baselines.setdefault(arm.name, baselines[mixes[0].name])
    return baselines


@dataclass
class ReportParts:
    """What report.md is written from: the arms, the eval sets, the results and what was found in them."""

    arms: list
    prepared: list
    options: Any  # trainer.ablate.AblationOptions
    results: Any  # results.parquet as a DataFrame
    baselines: dict[str, dict[str, float]]
    warnings: dict[str, list[str]]
    comparisons: list[Comparison]  # the first mix against every other mix
    verdicts: list[Verdict]
    control_comparisons: list[Comparison]
    control_verdict: Verdict | None
    timings: dict
    plots: list[str]
    sections: list[str] = field(default_factory=list)  # learning curves, calibration, per rule


def judge(results, arms: list, warnings: dict[str, list[str]]) -> tuple[dict[str, list[Comparison]], list[Verdict], Verdict | None]:
    """(comparisons by the other arm's role, the verdict of every pair of mixes, the A/A control's verdict)."""
    mixes = [a.name for a in arms if _role(a) == "mix"]
    by_role = compare_roles(results, arms)
    verdicts = [verdict([c for c in by_role["mix"] if c.b == o], warnings[mixes[0]] + warnings[o]) for o in mixes[1:]]
    control_verdict = verdict(by_role["control"], []) if by_role["control"] else None
    return by_role, verdicts, control_verdict


def write_comparisons(out_dir: str, by_role: dict[str, list[Comparison]]) -> None:
    import pandas as pd

    kinds = {"mix": "mixes", "control": "control", "calibration": "calibration", "rule": "rule"}
    rows = [dict(c.as_row(), kind=kinds[role]) for role, found in by_role.items() for c in found]
    pd.DataFrame(rows).to_parquet(os.path.join(out_dir, "comparisons.parquet"), index=False)


def write_report(out_dir: str, results, arms: list, prepared: list, options, summaries: list[dict], timings: dict, started: float) -> dict:
    """results.parquet, comparisons.parquet, the plots, report.md and ablation.json; returns their paths and the verdicts."""
    from trainer.resolution import calibration_lines, curve_lines, rule_lines

    results.to_parquet(os.path.join(out_dir, "results.parquet"), index=False)
    baselines = _baselines(arms, prepared, options)
    warnings = mix_warnings(arms, options, baselines, results, tokens_needed(options))
    by_role, verdicts, control_verdict = judge(results, arms, warnings)
    write_comparisons(out_dir, by_role)
    mixes = [a.name for a in arms if _role(a) == "mix"]
    curve, curves = curve_lines(results, mixes[0], mixes[1:])
    calibration, resolution = calibration_lines(by_role["calibration"], by_role["mix"], arms)
    per_rule, rule_table = rule_lines(by_role["rule"], arms)
    parts = ReportParts(
        arms=arms,
        prepared=prepared,
        options=options,
        results=results,
        baselines=baselines,
        warnings=warnings,
        comparisons=by_role["mix"],
        verdicts=verdicts,
        control_comparisons=by_role["control"],
        control_verdict=control_verdict,
        timings=run_timings(timings, summaries, arms, options.seeds, started),
        plots=draw_plots(out_dir, results, [a for a in arms if _role(a) in ("mix", "control")], options),
        sections=curve + calibration + per_rule,
    )
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_markdown(parts))
    record = {"curves": curves, "calibration": resolution, "per_rule": rule_table, "warnings": warnings, "unigram_baselines": baselines}
    write_record(out_dir, options, arms, verdicts, control_verdict, {**record, "timings": parts.timings})
    return {
        "report": path,
        "results": os.path.join(out_dir, "results.parquet"),
        "comparisons": os.path.join(out_dir, "comparisons.parquet"),
        "verdicts": [v.text for v in verdicts] + ([f"A/A control: {control_verdict.text}"] if control_verdict else []),
        "verdict_status": [v.status for v in verdicts],
        "control_status": control_verdict.status if control_verdict else None,
    }


def run_timings(timings: dict, summaries: list[dict], arms: list, seeds: int, started: float) -> dict:
    """The ablation's timings plus the total, the median speed and every run's seconds by arm."""
    import time

    # whole runs (evaluations included): a summary's own tokens_per_s is its last logging window only
    speed = [s["tokens"] / s["seconds"] for s in summaries if s.get("seconds")]
    timings = {**timings, "total_s": time.time() - started, "median_tokens_per_s_per_run": statistics.median(speed) if speed else None}
    # summaries come in (arm, seed) order: each arm's run times, for what each part of an ablation costs
    timings["run_seconds"] = {a.name: [s.get("seconds") for s in summaries[i * seeds : (i + 1) * seeds]] for i, a in enumerate(arms)}
    return timings


def write_record(out_dir: str, options, arms: list, verdicts: list, control_verdict, extra: dict) -> None:
    """ablation.json: options, arms with their role, verdicts, and ``extra`` (curves, calibration, ...)."""
    record = {
        "options": json.loads(json.dumps(options.__dict__, default=lambda o: o.__dict__)),
        "arms": {
            a.name: {"run_dir": a.run_dir, "tokens": a.tokens, "excluded": a.excluded, "checked": a.checked, "role": _role(a)} for a in arms
        },
        "verdicts": [v.__dict__ for v in verdicts],
        "control": control_verdict.__dict__ if control_verdict else None,
        **extra,
    }
    with open(os.path.join(out_dir, "ablation.json"), "w") as fh:
        json.dump(record, fh, indent=2)


def draw_plots(out_dir: str, results, arms: list, options) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    for column in [c for c in results.columns if c.startswith("eval_")]:
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
    return plots


def _cell(mean: float, std: float) -> str:
    return f"{mean:.4f} ± {std:.4f}" if math.isfinite(std) else f"{mean:.4f} (one seed)"


def render_markdown(parts: ReportParts) -> str:
    """The report; ``parts.sections`` (learning curves, calibration, per rule) go before the list of runs."""
    lines = ["# Ablation report", ""]
    for v in parts.verdicts:
        lines += [f"**Verdict: {v.text}.**", ""]
    every_warning = [w for notes in parts.warnings.values() for w in notes]
    if every_warning:
        lines += ["> **WARNING**", ">"] + [f"> - {w}" for w in every_warning] + [""]
    lines += [_setup_sentence(parts.options, parts.timings), ""]
    lines += _mixes_table(parts) + _eval_sets_table(parts.prepared) + _final_loss_table(parts)
    lines += _comparison_table("Differences", parts.comparisons)
    if parts.control_comparisons:
        lines += _comparison_table("A/A control (the first mix under another data order)", parts.control_comparisons)
        lines += ["", f"A/A control: {parts.control_verdict.text}."]
    lines += list(parts.sections)
    lines += ["", "Runs:", ""] + [f"- `{a.name}`: `{a.run_dir}`" for a in parts.arms]
    lines += [""] + [f"![{p}]({p})" for p in parts.plots] + [""]
    return "\n".join(lines)


def _setup_sentence(options, timings: dict) -> str:
    return (
        f"Model `{options.model}`, {tokens_needed(options):,} training tokens per run (sequence length {options.seq_len}, "
        f"{options.micro_batch} sequences per step, lr {options.lr} with {options.warmup:.0%} warm-up and cosine decay), "
        f"{options.seeds} paired seeds (seed k: the same initialisation and data order for every mix). Curation "
        f"{timings['curation_s']:.0f} s, building the known-answer mixes {timings.get('controls_s', 0):.0f} s, training "
        f"{timings['training_s']:.0f} s, {timings['total_s']:.0f} s in all; median {timings['median_tokens_per_s_per_run'] or 0:,.0f} "
        "tokens/s per training run (evaluations included; runs in parallel each count their own)."
    )


def _mean_cell(losses: list[float]) -> str:
    return _cell(statistics.fmean(losses), statistics.stdev(losses) if len(losses) > 1 else math.nan) if losses else "-"


def _mixes_table(parts: ReportParts) -> list[str]:
    trained = tokens_needed(parts.options)
    lines = [
        "## Mixes",
        "",
        "| mix | tokens available | epochs trained | removed to protect the eval sets | train loss |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    train_final = final_losses(parts.results, "train_loss")
    for arm in parts.arms:
        removed = ", ".join(f"{k}: {v:,}" for k, v in sorted(arm.excluded.items())) or ("none" if arm.checked else "not checked")
        loss = _mean_cell(list(train_final.get(arm.name, {}).values()))
        lines.append(f"| {arm.name} | {arm.tokens:,} | {trained / arm.tokens:.2f} | {removed} | {loss} |")
    return lines


def _eval_sets_table(prepared: list) -> list[str]:
    lines = ["", "## Held-out reference sets", "", "| set | documents | what it measures |", "| --- | ---: | --- |"]
    return lines + [f"| {p.spec.name} | {p.documents:,} | {p.spec.about or p.spec.path} |" for p in prepared]


def _final_loss_table(parts: ReportParts) -> list[str]:
    sets = [p.spec.name for p in parts.prepared]
    lines = ["", "## Final eval loss (nats/token, lower is better; mean ± std over seeds)", ""]
    lines += ["| mix | " + " | ".join(sets) + " |", "| --- | " + " | ".join("---:" for _ in sets) + " |"]
    finals = {name: final_losses(parts.results, f"eval_{name}") for name in sets}
    for arm in parts.arms:
        lines.append(f"| {arm.name} | " + " | ".join(_mean_cell(list(finals[n].get(arm.name, {}).values())) for n in sets) + " |")
    first = parts.arms[0].name
    guesses = " | ".join(f"{parts.baselines.get(first, {}).get(n, math.nan):.4f}" for n in sets)
    return lines + [f"| unigram guess of {first} | {guesses} |"]


def _comparison_table(title: str, comparisons: list[Comparison]) -> list[str]:
    if not comparisons:
        return []
    m = comparisons[0].sets
    lines = [
        "",
        f"## {title}",
        "",
        "Δ = loss(B) − loss(A): positive when A is better. SE = standard error of Δ over the paired seeds; t = Δ/SE with "
        f"(seeds − 1) df; p for the set alone and × {m} for the {m} sets tested; the interval is {1 - ALPHA / m:.1%} per set, "
        f"so that the {m} intervals hold together with 95% confidence. A set names a mix only when its interval excludes 0.",
        "",
    ]
    lines += [
        "| set | A | B | Δ | interval | SE | t (df) | p | p × sets | |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.eval_set} | {c.a} | {c.b} | {c.delta:+.4f} | {c.interval()} | {c.se:.4f} | {c.z:+.1f} ({c.df:.0f}) | {c.p:.2g} | "
            f"{c.p_family:.2g} | {c.sentence()} |"
        )
    return lines
