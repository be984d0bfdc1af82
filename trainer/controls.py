"""Mixes with a known answer, built from one finished curation run (no second curation).

``curate ablate --calibrate`` and ``--per-rule`` (trainer/ablate.py) train these against the
first mix with the same protocol, so a report can say how large a difference its budget can
see and which rule of a recipe made two mixes differ.

Calibration doses (``build_dose``): a share of the mix's documents, exactly ``share x
documents`` of them (halves rounded up) chosen by a seeded hash of their ids, is degraded;
every other document is left as it is, in place:

* ``shuffled``: the document's words in a random order. Words are shuffled as groups of
  tokens (a token that starts with whitespace opens a group), so the document keeps its exact
  tokens and length: only their order is destroyed.
* ``boilerplate``: the document's tokens replaced by as many tokens of the run's own rejected
  documents that a quality filter removed (Gopher, C4, FineWeb, URL filter), end of document
  kept: the text curation exists to remove.
* ``off_language``: the same with the documents language ID removed.

Every degraded mix therefore has exactly the tokens and documents of the mix it degrades
(``tokens.total`` equal, checked when written), and seed k reads the same windows of both.
Rejected documents of a decontamination stage (held-out eval pages) and duplicates are never
used.

Per-rule mixes (the mix plus what one rule alone removed) are built in trainer/rule_mixes.py
from the same run, with the helpers below.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DEGRADATIONS = ("shuffled", "boilerplate", "off_language")
# stage kinds whose removals are "what curation exists to remove", and language ID's
FILTER_KINDS = frozenset({"gopher_repetition", "gopher_quality", "c4", "fineweb", "url_filter"})
LANGUAGE_KINDS = frozenset({"langid"})
# never trained on: held-out eval pages, and documents without text
NEVER_KINDS = frozenset({"decontaminate", "extract"})
REJECTED_COLUMNS = ("id", "source", "text", "rejected_by")


@dataclass(frozen=True)
class Dose:
    """One degraded copy of a mix: which degradation, and the share of documents it touches."""

    kind: str
    share: float

    def __post_init__(self) -> None:
        if self.kind not in DEGRADATIONS:
            raise ValueError(f"calibration: unknown degradation {self.kind!r}; expected one of {', '.join(DEGRADATIONS)}")
        if not 0 < self.share <= 1:
            raise ValueError(f"calibration: a dose is a share of documents in (0, 1], got {self.share}")

    @property
    def label(self) -> str:
        return f"{self.kind}@{self.share:g}"


def read_token_rows(run_dir: str) -> pa.Table:
    """Every token row of a run (id, source, n_tokens, tokens, repeat), in shard order."""
    from trainer.data import resolve_shards

    return pa.concat_tables([pq.read_table(f) for f in resolve_shards(run_dir)])


def choose(ids: list[str], share: float, seed: int) -> np.ndarray:
    """A mask picking exactly ``share x len(ids)`` ids (halves rounded up), the first in a seeded
    hash order: a larger dose holds every document of a smaller one."""
    from curate.mixture import sampling_keys

    mask = np.zeros(len(ids), dtype=bool)
    count = int(share * len(ids) + 0.5)
    if count:
        mask[np.argsort(sampling_keys(ids, seed), kind="stable")[:count]] = True
    return mask


def word_starts(tokenizer_path: str) -> np.ndarray:
    """Per token id: does it open a word (its text starts with whitespace)?"""
    from curate.tokens import load_tokenizer

    tokenizer = load_tokenizer(os.path.abspath(tokenizer_path))
    size = tokenizer.get_vocab_size()
    return np.array([tokenizer.decode([i])[:1].isspace() for i in range(size)], dtype=bool)


def shuffle_words(tokens: np.ndarray, starts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The document's word groups in a random order; its last token (end of document) stays last."""
    body, last = tokens[:-1], tokens[-1:]
    if len(body) < 2:
        return tokens.copy()
    cuts = np.flatnonzero(starts[body])
    cuts = np.unique(np.concatenate([[0], cuts]))
    groups = np.split(body, cuts[1:])
    order = rng.permutation(len(groups))
    return np.concatenate([groups[i] for i in order] + [last])


def replace_tokens(tokens: np.ndarray, filler: np.ndarray, position: int, eos: int) -> tuple[np.ndarray, int]:
    """``len(tokens) - 1`` tokens of ``filler`` from ``position`` (wrapping) plus the end of document."""
    need = len(tokens) - 1
    idx = (position + np.arange(need)) % len(filler)
    return np.concatenate([filler[idx], [eos]]).astype(tokens.dtype), position + need


# --- what a run removed, and why ---------------------------------------------------------------


def lineage(run_dir: str) -> list[tuple[str, dict]]:
    """(run folder, manifest) of the run and of every finished run it read as a source, nearest first."""
    out, todo = [], [os.path.abspath(run_dir)]
    while todo:
        folder = todo.pop(0)
        manifest_path = os.path.join(folder, "manifest.json")
        if not os.path.exists(manifest_path) or any(f == folder for f, _ in out):
            continue
        with open(manifest_path) as fh:
            manifest = json.load(fh)
        out.append((folder, manifest))
        for source in manifest.get("recipe", {}).get("sources", []):
            if source.get("kind") == "run":
                todo += [os.path.abspath(p) for p in source.get("paths", [])]
    return out


def stage_kinds(manifest: dict) -> dict[str, str]:
    """Stage name -> stage kind, from a run's recipe."""
    return {s.get("name") or s["stage"]: s["stage"] for s in manifest.get("recipe", {}).get("stages", [])}


def rejected_rows(run_dir: str, kinds: frozenset[str], own: bool = False) -> pa.Table:
    """Rejected documents (id, source, text, rejected_by) removed by a stage of one of ``kinds``:
    by the run's own stages (``own``) or also by those of the runs it read."""
    tables = []
    for folder, manifest in lineage(run_dir)[: 1 if own else None]:
        wanted = [name for name, kind in stage_kinds(manifest).items() if kind in kinds and kind not in NEVER_KINDS]
        files = sorted(glob.glob(os.path.join(folder, "rejected", "*.parquet")))
        if not wanted or not files:
            continue
        table = pa.concat_tables([pq.read_table(f, columns=list(REJECTED_COLUMNS)) for f in files])
        names = pc.list_element(pc.split_pattern(table.column("rejected_by"), ".", max_splits=1), 0)
        tables.append(table.filter(pc.is_in(names, pa.array(wanted))))
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in REJECTED_COLUMNS})
    return pa.concat_tables(tables)


def filler_tokens(run_dir: str, kind: str, tokenizer_path: str, eos_token: str, need: int, seed: int) -> tuple[np.ndarray, int]:
    """At least ``need`` tokens (or all there are) of the run's rejected documents of one kind,
    in a seeded hash order, each with its end of document; and how many documents they are."""
    from curate.mixture import sampling_keys
    from curate.tokens import DocumentTokenizer

    kinds = FILTER_KINDS if kind == "boilerplate" else LANGUAGE_KINDS
    rows = rejected_rows(run_dir, kinds)
    if not rows.num_rows:
        raise ValueError(f"{run_dir}: the run (and the runs it reads) rejected no documents for the {kind!r} dose")
    rows = rows.take(np.argsort(sampling_keys(rows.column("id").to_pylist(), seed), kind="stable"))
    tokenizer = DocumentTokenizer(tokenizer_path, eos_token)
    texts, parts, have, used = rows.column("text").to_pylist(), [], 0, 0
    while used < len(texts) and have < need:
        chunk = tokenizer.encode([t or "" for t in texts[used : used + 256]])
        parts += [np.asarray(ids, dtype=np.int32) for ids in chunk]
        have += sum(len(ids) for ids in chunk)
        used += len(chunk)
    return np.concatenate(parts), used


# --- the mixes ------------------------------------------------------------------------------------


def run_tokenizer(manifest: dict) -> tuple[str, str]:
    tokens = manifest.get("tokens", {})
    if not tokens.get("tokenizer"):
        raise ValueError(f"{manifest.get('output')}: the run's manifest names no tokenizer")
    return tokens["tokenizer"], tokens.get("eos_token") or "<|endoftext|>"


def write_mix(table: pa.Table, folder: str, tokenizer: str, eos_token: str, extra: dict) -> dict:
    from trainer.data import write_token_shards

    manifest = write_token_shards(table, folder, num_shards=4, tokenizer=tokenizer, eos_token=eos_token)
    manifest.update(extra)
    with open(os.path.join(folder, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest


def _with_tokens(table: pa.Table, tokens: list[np.ndarray]) -> pa.Table:
    column = pa.array([t.astype(np.int32) for t in tokens], pa.list_(pa.int32()))
    lengths = pa.array([len(t) for t in tokens], pa.int32())
    table = table.set_column(table.schema.get_field_index("tokens"), "tokens", column)
    return table.set_column(table.schema.get_field_index("n_tokens"), "n_tokens", lengths)


def build_dose(run_dir: str, folder: str, dose: Dose, seed: int = 31) -> dict:
    """Write ``run_dir``'s token rows with ``dose`` applied into ``folder`` (token shards + manifest)."""
    with open(os.path.join(run_dir, "manifest.json")) as fh:
        source_manifest = json.load(fh)
    tokenizer, eos_token = run_tokenizer(source_manifest)
    table = read_token_rows(run_dir)
    chosen = choose(table.column("id").to_pylist(), dose.share, seed)
    tokens = [np.asarray(t, dtype=np.int32) for t in table.column("tokens").to_numpy(zero_copy_only=False)]
    rng = np.random.default_rng(seed)
    fillers_used = 0
    if dose.kind == "shuffled":
        starts = word_starts(tokenizer)
        tokens = [shuffle_words(t, starts, rng) if c else t for t, c in zip(tokens, chosen)]
    else:
        from curate.tokens import DocumentTokenizer

        eos = DocumentTokenizer(tokenizer, eos_token).eos_id
        need = sum(len(t) - 1 for t, c in zip(tokens, chosen) if c)
        filler, fillers_used = filler_tokens(run_dir, dose.kind, tokenizer, eos_token, need, seed)
        position = 0
        for i in np.flatnonzero(chosen):
            tokens[i], position = replace_tokens(tokens[i], filler, position, eos)
    total = int(pc.sum(table.column("n_tokens")).as_py())
    if sum(len(t) for t in tokens) != total:  # a dose changes what a mix says, never how much
        raise AssertionError(f"{folder}: the {dose.label} copy has {sum(len(t) for t in tokens)} tokens, the mix {total}")
    control = {
        "of": os.path.abspath(run_dir),
        "kind": dose.kind,
        "share": dose.share,
        "seed": seed,
        "documents": table.num_rows,
        "documents_changed": int(chosen.sum()),
        "tokens_changed": int(sum(len(t) for t, c in zip(tokens, chosen) if c)),
        "filler_documents": fillers_used,
    }
    return write_mix(_with_tokens(table, tokens), folder, tokenizer, eos_token, {"name": os.path.basename(folder), "control": control})
