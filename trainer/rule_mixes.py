"""Why two mixes differ: per rule of a recipe, the documents that rule alone removed.

``curate ablate --per-rule N`` (trainer/ablate.py) trains, for each of the first mix's N
most-removing rules, the mix plus the documents *only that rule* removed: what switching that
one rule off would bring back. Built from the one finished run (its ``rejected/`` shards keep
each removed document's text), with no second extraction or curation.

curate records the *first* rule that removed a document (stage order, rule order within a
stage). To know every rule that removes it, ``judge_removals`` runs each removed document
through the run's per-document stages again, from the stage that removed it on, built from the
settings the run's manifest records, asking each stage for *every* rule it fails
(``every_failure``: the Gopher, C4 and FineWeb rule sets yield them from the same code that
gives their verdict, each rule judged as if the ones before it were off). Stages before the
recorded one need no asking: the document passed them. A stage that edits text (C4 drops
lines) hands the later stages the text it would have kept, as it did for the documents it
kept. A stage without ``every_failure`` (language ID, URL filter, ...) contributes the one rule
it records.

Deduplication is a rule too, and a global one. A document that only rule R removes is also a
duplicate when the run's own dedup stage (same settings, run locally) over everything that
would pass with R off (the mix's documents, the documents dedup removed, and R's candidates)
removes it, or keeps it in place of a document the mix already has: either way switching R
off would not add its text. Dedup's own removals passed every per-document stage, so the
documents removed only by a dedup rule are the ones it removed first.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import json
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainer.controls import NEVER_KINDS, read_token_rows, rejected_rows, run_tokenizer, stage_kinds, write_mix

CLEARED = (("rejected_by", pa.string()), ("rejected_value", pa.float64()), ("duplicate_of", pa.string()))


def rules_removed(run_dir: str, exclude_stages: set[str] = frozenset()) -> dict[str, int]:
    """Rule (``stage.rule``) -> documents the run itself recorded as removed first by it, for
    every stage but decontamination, extraction and ``exclude_stages`` (stages both mixes share)."""
    with open(os.path.join(run_dir, "manifest.json")) as fh:
        kinds = stage_kinds(json.load(fh))
    wanted = frozenset(k for n, k in kinds.items() if n not in exclude_stages)
    rows = rejected_rows(run_dir, wanted, own=True)
    counts = pc.value_counts(rows.column("rejected_by")).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: (-c["counts"], c["values"]))}


def recipe_stages(manifest: dict) -> list:
    """The run's stages, built from the settings its manifest records, in recipe order; not
    extraction or decontamination (they come first, and what they remove is never added)."""
    from curate.config import from_dict
    from curate.recipe import stage_class
    from curate.stage import StageContext

    context = StageContext(recipe_dir=os.getcwd(), seed=manifest["recipe"].get("seed", 0))
    stages = []
    for raw in manifest["recipe"]["stages"]:
        if raw["stage"] in NEVER_KINDS:
            continue
        cls = stage_class(raw["stage"])
        params = from_dict(cls.Params, int_keys({k: v for k, v in raw.items() if k not in ("stage", "name")}), "", "manifest.json")
        stages.append(cls(params, context, name=raw.get("name") or raw["stage"]))
    return stages


def int_keys(value):
    """JSON made the integer keys of a stage's settings (Gopher's n-gram sizes) strings: undo that."""
    if isinstance(value, dict):
        digits = bool(value) and all(isinstance(k, str) and k.isdigit() for k in value)
        return {(int(k) if digits else k): int_keys(v) for k, v in value.items()}
    return [int_keys(v) for v in value] if isinstance(value, list) else value


def cleared(table: pa.Table) -> pa.Table:
    """The documents with no rejection marked (as a stage expects them)."""
    from curate.schema import DOCUMENT_SCHEMA

    for column, kind in CLEARED:
        table = table.set_column(table.schema.get_field_index(column), DOCUMENT_SCHEMA.field(column), pa.nulls(table.num_rows, kind))
    return table


def read_documents(folder: str) -> pa.Table:
    from curate.schema import DOCUMENT_SCHEMA

    files = sorted(glob.glob(os.path.join(folder, "*.parquet")))
    if not files:
        return DOCUMENT_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(f).select(DOCUMENT_SCHEMA.names).cast(DOCUMENT_SCHEMA) for f in files])


def stage_rules(stage, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[list[str]]]:
    """(the batch as the stage leaves kept documents, every rule each document fails)."""
    if hasattr(stage, "every_failure"):
        return stage.every_failure(batch)
    stage.ensure_setup()
    out = stage(batch)
    reasons = out.column("rejected_by").to_pylist()
    return cleared(pa.Table.from_batches([out])).combine_chunks().to_batches()[0], [[r] if r else [] for r in reasons]


def judge_removals(run_dir: str, manifest: dict | None = None) -> pa.Table:
    """The run's own removed documents (not extraction failures or held-out pages): ``id``,
    ``first`` (the rule recorded), ``rules`` (every rule of the run that removes it, in stage
    order, the recorded one first) and the document as the run's per-document stages leave it
    (``text``, ...)."""
    if manifest is None:
        with open(os.path.join(run_dir, "manifest.json")) as fh:
            manifest = json.load(fh)
    stages = recipe_stages(manifest)
    index = {s.name: i for i, s in enumerate(stages)}
    removed = read_documents(os.path.join(run_dir, "rejected"))
    stage_of = [index.get(r.split(".", 1)[0]) for r in removed.column("rejected_by").to_pylist()]
    parts = []
    for at in sorted({i for i in stage_of if i is not None}):
        stage = stages[at]
        mine = removed.filter(pa.array([i == at for i in stage_of]))
        first = mine.column("rejected_by").to_pylist()
        if stage.is_global:  # dedup: its removals passed every per-document stage
            parts.append(_judged(mine, first, [[r] for r in first]))
            continue
        batch = cleared(mine).combine_chunks().to_batches()[0]
        rules: list[list[str]] = [[] for _ in range(batch.num_rows)]
        for later in (s for s in stages[at:] if not s.is_global):
            batch, found = stage_rules(later, batch)
            rules = [have + new for have, new in zip(rules, found)]
        changed = [(i, f, r) for i, f, r in zip(mine.column("id").to_pylist(), first, rules) if not r or r[0] != f]
        if changed:
            raise ValueError(
                f"{run_dir}: {len(changed)} documents are not judged as the run recorded (e.g. {changed[0]}): the run was "
                "made by other rules or settings than these; curate it again"
            )
        parts.append(_judged(pa.Table.from_batches([batch]), first, rules))
    if not parts:
        return _judged(removed.slice(0, 0), [], [])
    return pa.concat_tables(parts)


def _judged(table: pa.Table, first: list[str], rules: list[list[str]]) -> pa.Table:
    table = cleared(table)
    return table.append_column("first", pa.array(first, pa.string())).append_column("rules", pa.array(rules, pa.list_(pa.string())))


def duplicates_of_mix(run_dir: str, manifest: dict, candidates: pa.Table) -> set[str]:
    """Ids of ``candidates`` that the run's dedup stage, run over the mix's documents, the ones
    it removed and the candidates, removes, or keeps in place of a document already there."""
    from curate.schema import DOCUMENT_SCHEMA

    dedup = next((s for s in recipe_stages(manifest) if s.is_global), None)
    if dedup is None or not candidates.num_rows:
        return set()
    # one ablation's question, not a run: the cross-run index is neither read nor written
    dedup.params = dataclasses.replace(dedup.params, index=None, rehydrate=None)
    removed = read_documents(os.path.join(run_dir, "rejected"))
    duplicates = removed.filter(pc.starts_with(removed.column("rejected_by"), dedup.name + "."))
    world = pa.concat_tables(
        [cleared(t).select(DOCUMENT_SCHEMA.names) for t in (read_documents(os.path.join(run_dir, "documents")), duplicates, candidates)]
    )
    judged = dedup.run_local(world)
    ids = set(candidates.column("id").to_pylist())
    out = set()
    for row in judged.filter(pc.is_valid(judged.column("rejected_by"))).select(["id", "duplicate_of"]).to_pylist():
        if row["id"] in ids:
            out.add(row["id"])
        elif row["duplicate_of"] in ids:  # the candidate survived in place of a document the mix has
            out.add(row["duplicate_of"])
    return out


@dataclasses.dataclass
class RuleRemovals:
    """What one rule removed: first (as recorded), at all, and alone (the documents to add)."""

    rule: str
    removed_first: int
    removed_by: int  # of the run's removed documents, those this rule removes (first or not)
    only: pa.Table  # the documents this rule alone removes, as the run's stages leave them
    also: dict[str, int]  # of the documents it removes, how many each other rule removes too
    duplicates: int  # removed by this rule and no other filter, but duplicates of the mix


def removals_of(rule: str, judged: pa.Table, run_dir: str, manifest: dict) -> RuleRemovals:
    rules = judged.column("rules").to_pylist()
    first = judged.column("first").to_pylist()
    failing = [i for i, r in enumerate(rules) if rule in r]
    also = collections.Counter(other for i in failing for other in rules[i] if other != rule)
    alone = judged.take(pa.array([i for i in failing if rules[i] == [rule]], pa.int64()))
    is_dedup = any(s.is_global and rule.startswith(s.name + ".") for s in recipe_stages(manifest))
    duplicates = set() if is_dedup else duplicates_of_mix(run_dir, manifest, alone.drop_columns(["first", "rules"]))
    only = alone.filter(pa.array([i not in duplicates for i in alone.column("id").to_pylist()], pa.bool_()))
    return RuleRemovals(rule, sum(f == rule for f in first), len(failing), only, dict(also.most_common()), len(duplicates))


def build_rule_mix(run_dir: str, folder: str, rule: str, judged: pa.Table | None = None) -> dict:
    """``run_dir``'s token rows plus the documents ``rule`` alone removed (``removals_of``),
    tokenized alike; ``judged``: ``judge_removals(run_dir)``, when it is already known."""
    from curate.schema import TOKENS_SCHEMA
    from curate.tokens import DocumentTokenizer

    with open(os.path.join(run_dir, "manifest.json")) as fh:
        manifest = json.load(fh)
    tokenizer, eos_token = run_tokenizer(manifest)
    kept = read_token_rows(run_dir).select(TOKENS_SCHEMA.names).cast(TOKENS_SCHEMA)
    found = removals_of(rule, judged if judged is not None else judge_removals(run_dir, manifest), run_dir, manifest)
    encoded = DocumentTokenizer(tokenizer, eos_token).encode([t or "" for t in found.only.column("text").to_pylist()])
    added = pa.table(
        {
            "id": found.only.column("id"),
            "source": found.only.column("source"),
            "n_tokens": pa.array([len(e) for e in encoded], pa.int32()),
            "tokens": pa.array(encoded, pa.list_(pa.int32())),
            "repeat": pa.array([0] * len(encoded), pa.int32()),
        },
        schema=TOKENS_SCHEMA,
    )
    extra = {
        "of": os.path.abspath(run_dir),
        "rule": rule,
        "removed_first": found.removed_first,
        "removed_by": found.removed_by,
        "removed_only": added.num_rows,
        "tokens_only": int(pc.sum(added.column("n_tokens")).as_py() or 0),
        "also_removed_by": found.also,
        "duplicates_of_mix": found.duplicates,
    }
    return write_mix(pa.concat_tables([kept, added]), folder, tokenizer, eos_token, {"name": os.path.basename(folder), "rule_mix": extra})
