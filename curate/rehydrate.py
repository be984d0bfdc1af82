"""Up-sampling by near-duplicate cluster size ("rehydration", after FineWeb-2).

Dedup keeps one document per MinHash cluster. With ``rehydrate`` set on a dedup stage, the
survivor of a cluster of N documents is recorded with the score ``<stage>.cluster_size`` = N,
and the token writer writes it ``copies(N)`` times, numbered by the ``repeat`` column
(0 .. copies-1). A document in no cluster counts as N = 1.

``copies`` is a step table ``{smallest cluster size: copies}``: a cluster of N documents gets
the copies of the largest key <= N. ``fineweb2`` names the table FineWeb-2 published
(huggingface/fineweb-2 README, "Deduplication"): 1 -> 1, 2 -> 2, 3-4 -> 3, 5-99 -> 5,
100-999 -> 8, 1000 and more -> 1 (very large clusters taken to be boilerplate).

Only MinHash clusters count: copies removed earlier by the exact or URL rules, or by an
earlier run's index, are not part of N. The same functions serve the Spark writer
(``curate/spark/job.py``) and in-memory tables (:func:`rehydrate_table`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.schema import SCORES_TYPE, TOKENS_SCHEMA, replace_column

FINEWEB2_COPIES: dict[int, int] = {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}
NAMED_TABLES: dict[str, dict[int, int]] = {"fineweb2": FINEWEB2_COPIES}
# A bound on copies: a typo (a cluster size where a count was meant) should not multiply a
# corpus by thousands.
MAX_COPIES = 100


def copies_table(setting: str | Mapping[int, int]) -> dict[int, int]:
    """The step table a ``rehydrate`` setting names; ValueError naming the bad key."""
    if isinstance(setting, str):
        if setting not in NAMED_TABLES:
            raise ValueError(f"rehydrate: unknown table {setting!r}; expected one of: {', '.join(NAMED_TABLES)} or a mapping")
        return dict(NAMED_TABLES[setting])
    table = dict(setting)
    if 1 not in table:
        raise ValueError("rehydrate: expected a key 1 (the copies of a document with no near-duplicate)")
    for size, copies in table.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"rehydrate.{size}: expected a cluster size (an integer >= 1) as key")
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES:
            raise ValueError(f"rehydrate.{size}: expected a number of copies from 1 to {MAX_COPIES}, got {copies!r}")
    return dict(sorted(table.items()))


def copies_for(sizes: np.ndarray, table: Mapping[int, int]) -> np.ndarray:
    """Copies of each document given its cluster size (int64; sizes below 1 count as 1)."""
    bounds = np.array(sorted(table), dtype=np.int64)
    values = np.array([table[b] for b in sorted(table)], dtype=np.int64)
    sizes = np.maximum(np.asarray(sizes, dtype=np.int64), 1)
    return values[np.searchsorted(bounds, sizes, side="right") - 1]


def cluster_size_key(stage_name: str) -> str:
    return f"{stage_name}.cluster_size"


def set_cluster_sizes(documents: pa.RecordBatch, key: str, sizes: list) -> pa.RecordBatch:
    """``documents`` with score ``key`` = sizes[i] where it is not None, and removed elsewhere
    (a size an earlier run recorded must not survive a new dedup)."""
    scores = documents.column("scores").to_pylist()
    merged = []
    for row, size in zip(scores, sizes):
        kept = [(k, v) for k, v in (row or []) if k != key]
        merged.append(kept + [(key, float(size))] if size is not None else kept)
    return replace_column(documents, "scores", pa.array(merged, type=SCORES_TYPE))


@dataclass(frozen=True)
class Rehydration:
    """Which score holds the cluster size and how many copies each size gets."""

    score_key: str
    table: dict[int, int]

    def sizes(self, documents: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Each document's cluster size from its scores (1 when it has none)."""
        sizes = pc.map_lookup(documents.column("scores"), pa.scalar(self.score_key), "first")
        return pc.fill_null(sizes, 1.0).to_numpy(zero_copy_only=False).astype(np.int64)

    def expand(self, documents: pa.RecordBatch, tokens: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray]:
        """Token rows of ``documents`` (row i of one is row i of the other) with each row
        repeated ``copies`` times in place; also the source row of every output row."""
        copies = copies_for(self.sizes(documents), self.table)
        return repeat_rows(tokens, copies)

    def to_dict(self) -> dict:
        return {"score": self.score_key, "copies": {str(k): v for k, v in self.table.items()}}


def repeat_rows(tokens: pa.RecordBatch, copies: np.ndarray) -> tuple[pa.RecordBatch, np.ndarray]:
    """``tokens`` (TOKENS_SCHEMA, ``repeat == 0``) with row i written copies[i] times in a row,
    ``repeat`` 0 .. copies[i]-1; and the source row of every output row."""
    copies = np.asarray(copies, dtype=np.int64)
    if tokens.num_rows == 0 or bool((copies == 1).all()):
        return tokens, np.arange(tokens.num_rows)
    source_rows = np.repeat(np.arange(tokens.num_rows), copies)
    starts = np.repeat(np.cumsum(copies) - copies, copies)
    repeat = (np.arange(len(source_rows)) - starts).astype(np.int32)
    out = tokens.take(pa.array(source_rows))
    index = out.schema.get_field_index("repeat")
    out = out.set_column(index, TOKENS_SCHEMA.field("repeat"), pa.array(repeat, type=pa.int32()))
    return out, source_rows


def rehydration_of(stages: list) -> Rehydration | None:
    """The rehydration a recipe's stages ask for (at most one dedup stage may), or None."""
    for stage in stages:
        setting = getattr(stage.params, "rehydrate", None)
        if stage.kind == "dedup" and setting is not None:
            return Rehydration(cluster_size_key(stage.name), copies_table(setting))
    return None


def rehydrate_table(documents: pa.Table, tokens: pa.Table, rehydration: Rehydration) -> pa.Table:
    """In-memory rehydration: ``tokens`` of the kept ``documents``, matched by id."""
    sizes = dict(zip(documents.column("id").to_pylist(), rehydration.sizes(documents).tolist()))
    copies = copies_for(np.array([sizes.get(i, 1) for i in tokens.column("id").to_pylist()], dtype=np.int64), rehydration.table)
    batch = tokens.select(TOKENS_SCHEMA.names).cast(TOKENS_SCHEMA).combine_chunks().to_batches()
    if not batch:
        return tokens
    out, _ = repeat_rows(batch[0], copies)
    return pa.Table.from_batches([out], schema=TOKENS_SCHEMA)


def rehydration_report(rehydration: Rehydration, added_rows: int, added_tokens: int, repeated_documents: int, total_tokens: int) -> dict:
    """What goes under ``"rehydrate"`` in the manifest."""
    return {
        **rehydration.to_dict(),
        "documents_repeated": repeated_documents,  # kept documents written more than once
        "rows_added": added_rows,  # token rows with repeat > 0
        "tokens_added": added_tokens,
        "tokens_total": total_tokens,
    }
