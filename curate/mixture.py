"""Data mixtures: how many tokens each source contributes, and which documents supply them.

A recipe's ``mixture`` section names weights per source and, optionally, a total token
budget. Planning needs only the tokens available per source:

* ``total_tokens`` unset: the largest budget every source can meet *without* repetition,
  ``min(available / weight)``: the mix is down-sampled to the weights.
* a source whose target exceeds what it has is up-sampled by whole epochs (every document
  repeated, each copy numbered by ``repeat``: 0 for the first pass, 1, 2, ... after) plus a
  partial epoch; with ``upsample: false`` that is an error naming the source.

The partial epoch (and every down-sampled source) takes documents in the order of a seeded
hash of their id until the remaining target is met, so the selection depends on the seed
and the data only: never on partitioning, worker count or input order. The same rule runs
here over an Arrow table (tests, small local runs) and distributed in
``curate/spark/mixture.py``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pyarrow as pa
import xxhash

from curate.recipe import MixtureSpec
from curate.schema import TOKENS_SCHEMA

# A mix is reported as meeting its weights when every achieved share is within this
# fraction of the requested share (the 1%).
SHARE_TOLERANCE = 0.01


class MixtureError(ValueError):
    """The mixture cannot be built as asked (a source is too small, a weight names nothing)."""


@dataclass(frozen=True)
class SourcePlan:
    source: str
    weight: float  # normalized: the requested share of the mixed tokens
    available_tokens: int
    available_documents: int
    target_tokens: int
    full_epochs: int  # passes over every document (repeat 0 .. full_epochs-1)
    partial_tokens: int  # tokens still to draw from a seeded sample after the full passes

    @property
    def epochs(self) -> float:
        return self.target_tokens / self.available_tokens if self.available_tokens else 0.0


@dataclass(frozen=True)
class MixturePlan:
    total_tokens: int
    sources: dict[str, SourcePlan]
    dropped: tuple[str, ...]  # sources present in the data but not named in the weights

    def to_dict(self) -> dict:
        return {
            "total_tokens": self.total_tokens,
            "sources": {k: dataclasses.asdict(v) for k, v in self.sources.items()},
            "dropped": list(self.dropped),
        }


def plan_mixture(available: Mapping[str, tuple[int, int]], spec: MixtureSpec) -> MixturePlan:
    """Per-source targets from ``{source: (tokens, documents)}`` of the kept documents.

    Empty ``spec.weights`` keeps the natural proportions (every source with weight equal to
    its share of the tokens), which with a ``total_tokens`` budget scales the whole corpus.
    """
    shares = _shares(available, spec)
    if spec.total_tokens is None:
        # The biggest mix that needs no repetition: the scarcest source (relative to its
        # weight) sets the budget.
        budget = min(math.floor(available[s][0] / share) for s, share in shares.items())
    else:
        budget = int(spec.total_tokens)
        if budget <= 0:
            raise MixtureError(f"mixture.total_tokens: expected a positive integer, got {budget}")
    plans = {source: _source_plan(source, share, budget, available[source], spec.upsample) for source, share in shares.items()}
    dropped = tuple(sorted(s for s in available if s not in shares))
    return MixturePlan(total_tokens=budget, sources=plans, dropped=dropped)


def _shares(available: Mapping[str, tuple[int, int]], spec: MixtureSpec) -> dict[str, float]:
    """Each mixed source's share of the tokens (weights normalised); every one must have tokens."""
    if spec.weights:
        weights = dict(spec.weights)
    else:
        total = sum(t for t, _ in available.values())
        weights = {s: t / total for s, (t, _) in available.items() if t > 0} if total else {}
    if not weights:
        raise MixtureError("mixture: no source has any tokens to mix")
    for source, weight in weights.items():
        if not weight > 0:
            raise MixtureError(f"mixture.weights.{source}: expected a positive weight, got {weight!r}")
    weight_sum = sum(weights.values())
    shares = {s: w / weight_sum for s, w in weights.items()}
    empty = [s for s in shares if available.get(s, (0, 0))[0] <= 0]
    if empty:
        known = ", ".join(f"{s} ({t} tokens)" for s, (t, _) in sorted(available.items())) or "none"
        raise MixtureError(f"mixture: source {empty[0]!r} has no kept documents to sample from (sources with tokens: {known})")
    return shares


def _source_plan(source: str, share: float, budget: int, available: tuple[int, int], upsample: bool) -> SourcePlan:
    """One source's target: its share of the budget, as whole passes over it plus a part."""
    tokens, documents = available
    target = int(round(budget * share))
    if target > tokens and not upsample:
        need = target / tokens
        largest = math.floor(tokens / share)
        raise MixtureError(
            f"mixture: source {source!r} is too small: the mix asks for {target:,} tokens from it "
            f"({share:.1%} of {budget:,}) but it has only {tokens:,} after curation ({need:.2f}x). "
            f"Set mixture.upsample: true to repeat it, lower its weight, or lower "
            f"mixture.total_tokens to at most {largest:,}."
        )
    full, partial = divmod(target, tokens)
    return SourcePlan(
        source=source,
        weight=share,
        available_tokens=int(tokens),
        available_documents=int(documents),
        target_tokens=target,
        full_epochs=int(full),
        partial_tokens=int(partial),
    )


def sampling_keys(ids: list[str] | pa.Array, seed: int) -> np.ndarray:
    """The seeded order in which a source's documents are drawn (int64, compare as signed).

    xxh64 of ``seed`` and id: stable across processes and Python versions, unlike ``hash``.
    """
    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        ids = ids.to_pylist()
    prefix = f"{seed}\x1f"
    unsigned = np.fromiter((xxhash.xxh64_intdigest((prefix + i).encode("utf-8")) for i in ids), dtype=np.uint64, count=len(ids))
    return unsigned.view(np.int64)


def take_partial(previous_tokens: np.ndarray, n_tokens: np.ndarray, want: int) -> np.ndarray:
    """Which documents (in draw order, with the running token count before each) fill ``want``.

    A document is taken when more than half of it fits: the total lands within half a
    document of the target instead of always overshooting by up to a whole one.
    """
    return 2 * previous_tokens + n_tokens <= 2 * want


def mix_table(tokens: pa.Table, spec: MixtureSpec, seed: int) -> tuple[pa.Table, dict]:
    """The mixture over an in-memory table in ``TOKENS_SCHEMA`` (all ``repeat == 0``)."""
    tokens = tokens.select(TOKENS_SCHEMA.names).cast(TOKENS_SCHEMA)
    sources = tokens.column("source").to_numpy(zero_copy_only=False)
    n_tokens = tokens.column("n_tokens").to_numpy().astype(np.int64)
    available = {}
    for source in np.unique(sources):
        mask = sources == source
        available[str(source)] = (int(n_tokens[mask].sum()), int(mask.sum()))
    plan = plan_mixture(available, spec)

    keys = sampling_keys(tokens.column("id"), seed)
    ids = np.asarray(tokens.column("id").to_pylist(), dtype=object)
    pieces: list[pa.Table] = []
    for source, sp in plan.sources.items():
        rows = np.flatnonzero(sources == source)
        for epoch in range(sp.full_epochs):
            pieces.append(_with_repeat(tokens.take(pa.array(rows)), epoch))
        if sp.partial_tokens:
            order = rows[np.lexsort((ids[rows], keys[rows]))]
            counts = n_tokens[order]
            before = np.concatenate([[0], np.cumsum(counts)[:-1]])
            chosen = order[take_partial(before, counts, sp.partial_tokens)]
            pieces.append(_with_repeat(tokens.take(pa.array(chosen)), sp.full_epochs))
    mixed = pa.concat_tables(pieces) if pieces else tokens.slice(0, 0)
    achieved = _achieved_from_table(mixed)
    return mixed, mixture_report(plan, achieved, seed, spec)


def _with_repeat(table: pa.Table, repeat: int) -> pa.Table:
    index = table.schema.get_field_index("repeat")
    return table.set_column(index, TOKENS_SCHEMA.field("repeat"), pa.array(np.full(table.num_rows, repeat, dtype=np.int32)))


def _achieved_from_table(table: pa.Table) -> dict[str, tuple[int, int, int]]:
    if not table.num_rows:
        return {}
    grouped = table.group_by("source").aggregate([("n_tokens", "sum"), ("n_tokens", "count"), ("repeat", "max")])
    return {row["source"]: (int(row["n_tokens_sum"]), int(row["n_tokens_count"]), int(row["repeat_max"])) for row in grouped.to_pylist()}


def mixture_report(plan: MixturePlan, achieved: Mapping[str, tuple[int, int, int]], seed: int, spec: MixtureSpec) -> dict:
    """What goes under ``"mixture"`` in the manifest: asked for, available, achieved per source.

    ``achieved`` maps source -> (tokens, rows, highest repeat) of the mixed output.
    """
    total = sum(t for t, _, _ in achieved.values())
    sources = {}
    worst = 0.0
    for name, sp in plan.sources.items():
        tokens, rows, max_repeat = achieved.get(name, (0, 0, 0))
        share = tokens / total if total else 0.0
        error = abs(share - sp.weight) / sp.weight
        worst = max(worst, error)
        sources[name] = {
            "weight": round(sp.weight, 6),
            "available_tokens": sp.available_tokens,
            "available_documents": sp.available_documents,
            "target_tokens": sp.target_tokens,
            "tokens": tokens,
            "documents": rows,
            "share": round(share, 6),
            "share_error": round(error, 6),
            "epochs": round(tokens / sp.available_tokens, 4) if sp.available_tokens else 0.0,
            "full_epochs": sp.full_epochs,
            "repeats": max_repeat if rows else 0,  # highest ``repeat`` value written (0: no up-sampling)
            "upsampled": sp.target_tokens > sp.available_tokens,
        }
    return {
        "seed": seed,
        "requested_total_tokens": spec.total_tokens,
        "planned_total_tokens": plan.total_tokens,
        "total_tokens": total,
        "upsample": spec.upsample,
        "within_tolerance": worst <= SHARE_TOLERANCE,
        "tolerance": SHARE_TOLERANCE,
        "worst_share_error": round(worst, 6),
        "sources": sources,
        "dropped_sources": list(plan.dropped),
    }
