"""``curate inspect RUN_DIR``: the funnel of a run as a table, and removed documents by reason;
with ``--language``, one language's counts and removed documents instead of the funnel.

Reads ``RUN_DIR/manifest.json`` (key ``funnel``: one entry per stage, in order, with
``docs_in``, ``docs_out``, ``chars_in``, ``chars_out``, ``rejected`` and ``rejected_chars``
by reason) and ``RUN_DIR/rejected/*.parquet`` (DOCUMENT_SCHEMA). :func:`funnel_entries`
builds the funnel from stage counters, so the pipeline and tests write the same thing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import textwrap
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.language_settings import language_script
from curate.report import language_counts
from curate.shards import NO_LANGUAGE


def funnel_entries(stages: Iterable[Any]) -> list[dict]:
    """One funnel entry per stage from its merged counters (as ``run_map_stages`` fills them)."""
    entries = []
    for stage in stages:
        c = dict(stage.counters)
        rejected = {k.split(":", 1)[1]: int(v) for k, v in c.items() if k.startswith("rejected:")}
        rejected_chars = {k.split(":", 1)[1]: int(v) for k, v in c.items() if k.startswith("rejected_chars:")}
        funnel_keys = {"docs_in", "docs_out", "chars_in", "chars_out", "seconds"}
        own = {k: v for k, v in c.items() if k not in funnel_keys and not k.startswith(("rejected:", "rejected_chars:"))}
        entries.append(
            {
                "stage": stage.name,
                "kind": stage.kind,
                "docs_in": int(c.get("docs_in", 0)),
                "docs_out": int(c.get("docs_out", 0)),
                "chars_in": int(c.get("chars_in", 0)),
                "chars_out": int(c.get("chars_out", 0)),
                "rejected": dict(sorted(rejected.items())),
                "rejected_chars": dict(sorted(rejected_chars.items())),
                "counters": own,
                "seconds": float(c.get("seconds", 0.0)),
            }
        )
    return entries


def load_manifest(run_dir: str) -> dict:
    path = os.path.join(run_dir, "manifest.json")
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"{path}: not found; is {run_dir!r} the output folder of 'curate run'?") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg})") from None
    return manifest if isinstance(manifest, dict) else {}


def load_funnel(run_dir: str) -> list[dict]:
    path = os.path.join(run_dir, "manifest.json")
    funnel = load_manifest(run_dir).get("funnel")
    if not isinstance(funnel, list):
        raise ValueError(f"{path}: no 'funnel' list")
    for i, entry in enumerate(funnel):
        for key in ("stage", "docs_in", "docs_out", "chars_in", "chars_out", "rejected"):
            if not isinstance(entry, dict) or key not in entry:
                raise ValueError(f"{path}: funnel[{i}]: missing {key!r}")
    return funnel


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def format_funnel(funnel: list[dict]) -> str:
    """The funnel as a text table: a row per stage, indented rows per rejection reason."""
    header = f"{'stage / reason':<40} {'docs in':>9} {'docs out':>9} {'removed':>8} {'%docs':>6} {'chars in':>13} {'chars out':>13} {'%chars':>6}"
    lines = [header, "-" * len(header)]
    for entry in funnel:
        docs_in, docs_out = entry["docs_in"], entry["docs_out"]
        chars_in, chars_out = entry["chars_in"], entry["chars_out"]
        removed = docs_in - docs_out
        lines.append(
            f"{entry['stage']:<40} {docs_in:>9,} {docs_out:>9,} {removed:>8,} {_percent(removed, docs_in):>6} {chars_in:>13,} {chars_out:>13,} {_percent(chars_in - chars_out, chars_in):>6}"
        )
        rejected_chars = entry.get("rejected_chars", {})
        for reason, count in sorted(entry["rejected"].items(), key=lambda kv: -kv[1]):
            chars = rejected_chars.get(reason, 0)
            lines.append(
                f"  {reason:<38} {'':>9} {'':>9} {count:>8,} {_percent(count, docs_in):>6} {'':>13} {chars:>13,} {_percent(chars, chars_in):>6}"
            )
    if funnel:
        first, last = funnel[0], funnel[-1]
        lines.append("-" * len(header))
        lines.append(
            f"{'kept':<40} {first['docs_in']:>9,} {last['docs_out']:>9,} {first['docs_in'] - last['docs_out']:>8,} {_percent(first['docs_in'] - last['docs_out'], first['docs_in']):>6} {first['chars_in']:>13,} {last['chars_out']:>13,} {_percent(first['chars_in'] - last['chars_out'], first['chars_in']):>6}"
        )
    return "\n".join(lines)


def rejected_table(run_dir: str) -> pa.Table | None:
    files = sorted(glob.glob(os.path.join(run_dir, "rejected", "**", "*.parquet"), recursive=True))
    if not files:
        return None
    columns = ["id", "url", "text", "language", "scores", "rejected_by", "rejected_value", "duplicate_of"]
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


def sample_rejected(table: pa.Table, reason: str, n: int) -> pa.Table:
    """The first ``n`` removed documents whose reason is ``reason`` or starts with ``reason.``
    (so ``--reason c4`` shows every C4 rule)."""
    by = table.column("rejected_by")
    mask = pc.or_(pc.equal(by, reason), pc.starts_with(by, reason + "."))
    return table.filter(pc.fill_null(mask, False)).slice(0, n)


def of_language(table: pa.Table, language: str) -> pa.Table:
    """The rows of ``language`` (``und``: those without one)."""
    return table.filter(pc.equal(table.column("language").fill_null(NO_LANGUAGE), language))


def languages_in_run(run_dir: str) -> dict[str, tuple[int, int]]:
    """{language: (documents kept, documents removed)}, most documents first."""
    counts = language_counts(run_dir)
    kept, removed = counts["kept"], counts["rejected"]
    ranked = sorted(set(kept) | set(removed), key=lambda lang: (-(kept[lang] + removed[lang]), lang))
    return {lang: (kept[lang], removed[lang]) for lang in ranked}


def unknown_language(language: str, present: dict[str, tuple[int, int]]) -> str:
    """The error for a language the run does not have, naming those it has."""
    listed = ", ".join(f"{lang} ({k:,} kept, {r:,} removed)" for lang, (k, r) in present.items()) or "none"
    pair = language_script(language)
    hint = f" (did you mean {pair}?)" if pair in present and pair != language else ""
    return f"no documents of language {language!r} in this run{hint}; languages in this run: {listed}"


def format_language(language: str, manifest: dict, present: dict[str, tuple[int, int]], removed: pa.Table | None) -> str:
    """One language's part of the run: what was written, and what was removed by reason."""
    kept, n_removed = present[language]
    written = manifest.get("languages", {}).get(language, {})
    total = sum(k for k, _ in present.values())
    lines = [f"language {language}: {kept:,} documents kept ({_percent(kept, total).strip()} of the run's {total:,})"]
    if written:
        lines.append(f"  written: {written['documents']:,} documents, {written['characters']:,} characters, {written['tokens']:,} tokens")
    lines.append(f"  removed: {n_removed:,} documents (those that had a language when removed)")
    if removed is not None and removed.num_rows:
        reasons = pc.value_counts(removed.column("rejected_by")).to_pylist()
        for row in sorted(reasons, key=lambda r: (-r["counts"], r["values"] or "")):
            lines.append(f"    {row['values']:<38} {row['counts']:>8,}")
    return "\n".join(lines)


def format_documents(docs: pa.Table, width: int = 100, chars: int = 400) -> str:
    out = []
    for row in docs.to_pylist():
        value = row["rejected_value"]
        shown = "" if value is None else f" = {value:.4g}"
        out.append(f"--- {row['id']}  {row['url'] or ''}\n    removed by {row['rejected_by']}{shown}")
        if row.get("duplicate_of"):
            out.append(f"    duplicate of {row['duplicate_of']}")
        scores = dict(row["scores"] or [])
        if scores:
            out.append("    scores: " + ", ".join(f"{k}={v:.3g}" for k, v in sorted(scores.items())))
        text = (row["text"] or "").replace("\n", " ⏎ ")
        snippet = text[:chars] + (" …" if len(text) > chars else "")
        out.append(textwrap.fill(snippet, width=width, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="curate inspect", description="Show the funnel of a run and sample removed documents by reason.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--reason", help="a rejection reason ('c4.curly_bracket') or a stage name ('c4')")
    parser.add_argument("--n", type=int, default=5, help="documents to show (default 5)")
    parser.add_argument("--chars", type=int, default=400, help="characters of text to show per document")
    parser.add_argument(
        "--language", help="only this language's documents, named as the run names them (deu_Latn; de without codes: iso639_3; und: none)"
    )
    args = parser.parse_args(argv)
    try:
        funnel = load_funnel(args.run_dir)
    except ValueError as e:
        print(f"curate inspect: {e}", file=sys.stderr)
        return 2
    table = rejected_table(args.run_dir)
    if args.language is not None:
        present = languages_in_run(args.run_dir)
        if args.language not in present:
            print(f"curate inspect: {unknown_language(args.language, present)}", file=sys.stderr)
            return 1
        table = of_language(table, args.language) if table is not None else None
        print(format_language(args.language, load_manifest(args.run_dir), present, table))
    else:
        print(format_funnel(funnel))
    if args.reason is None:
        if table is not None and table.num_rows:
            reasons = pc.value_counts(table.column("rejected_by")).to_pylist()
            top = sorted(reasons, key=lambda r: -r["counts"])[:3]
            print("\nsee removed documents with --reason, e.g. " + ", ".join(f"--reason {r['values']}" for r in top if r["values"]))
        return 0
    known = {r for entry in funnel for r in entry["rejected"]} | {e["stage"] for e in funnel}
    if table is None:
        print(f"\ncurate inspect: no rejected/*.parquet in {args.run_dir}", file=sys.stderr)
        return 1
    docs = sample_rejected(table, args.reason, max(args.n, 0))
    of = f" of language {args.language}" if args.language is not None else ""
    if docs.num_rows == 0:
        hint = ", ".join(sorted(known)) or "none"
        print(f"\ncurate inspect: no removed documents{of} for {args.reason!r}; reasons in this run: {hint}", file=sys.stderr)
        return 1
    print(f"\n{docs.num_rows} removed documents{of} for {args.reason}:\n")
    print(format_documents(docs, chars=args.chars))
    return 0
