"""The one data contract: Arrow schemas every stage reads and writes.

Two schemas exist because a WARC record is not yet a document:

* ``RECORD_SCHEMA``: what a source reader yields for web archives (decoded HTML).
  Only the ``extract`` stage consumes it.
* ``DOCUMENT_SCHEMA``: everything after extraction. Parquet/JSONL sources are read
  straight into it.

A document that a stage removes is *not* dropped: the stage sets ``rejected_by`` to
``"<stage>.<rule>"`` (plus ``rejected_value``, the number that decided it, and, for
duplicates, ``duplicate_of``) and the runner routes it to ``rejected/``. A document is
kept while ``rejected_by`` is null.

``scores`` holds per-stage numbers under dotted keys (``"langid.en"``,
``"classify.quality"``, ``"pii.EMAIL_ADDRESS"``); ``flags`` holds short markers of
edits a stage made to a kept document (``"c4.lines_removed"``, ``"pii.scrubbed"``).
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCORES_TYPE = pa.map_(pa.string(), pa.float64())
FLAGS_TYPE = pa.list_(pa.string())

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("warc_date", pa.string()),  # ISO-8601 as in WARC-Date; sorts correctly as text
        pa.field("warc_file", pa.string()),
        pa.field("text", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float64()),
        pa.field("scores", SCORES_TYPE),
        pa.field("flags", FLAGS_TYPE),
        pa.field("rejected_by", pa.string()),
        pa.field("rejected_value", pa.float64()),
        pa.field("duplicate_of", pa.string()),
    ]
)

RECORD_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("warc_date", pa.string()),
        pa.field("warc_file", pa.string()),
        pa.field("html", pa.string()),
        pa.field("charset", pa.string()),  # how the body was decoded: "http:utf-8", "meta:...", "detected:..."
    ]
)

# Token shards: one row per document, end-of-document token already appended.
TOKENS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field("tokens", pa.list_(pa.int32()), nullable=False),
        pa.field("repeat", pa.int32(), nullable=False),  # >0 only for up-sampled copies (mixture, dedup.rehydrate)
    ]
)

DOCUMENT_COLUMNS = tuple(DOCUMENT_SCHEMA.names)


def document_id(*parts: str) -> str:
    """A stable 16-hex-digit id from identifying parts (WARC-Record-ID, or source + offset)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8)
    return digest.hexdigest()


def empty_documents() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=DOCUMENT_SCHEMA)


def documents_from_pylist(rows: Sequence[Mapping]) -> pa.RecordBatch:
    """Build a document batch from dicts; missing optional fields become null."""
    filled = []
    for row in rows:
        full = {name: row.get(name) for name in DOCUMENT_COLUMNS}
        if full["scores"] is None:
            full["scores"] = []
        if full["flags"] is None:
            full["flags"] = []
        if isinstance(full["scores"], Mapping):
            full["scores"] = list(full["scores"].items())
        filled.append(full)
    return pa.RecordBatch.from_pylist(filled, schema=DOCUMENT_SCHEMA)


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema = DOCUMENT_SCHEMA) -> pa.RecordBatch:
    """Reorder/cast columns to ``schema`` (adding null columns that are missing).

    Used at the edges (readers, Spark) where column order or string width may differ.
    """
    if isinstance(batch, pa.Table):
        batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else pa.RecordBatch.from_pylist([], schema=batch.schema)
    columns = []
    for field in schema:
        if field.name in batch.schema.names:
            col = batch.column(field.name)
            if col.type != field.type:
                col = col.cast(field.type)
        else:
            col = pa.nulls(batch.num_rows, type=field.type)
        columns.append(col)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


# --- helpers stages use to edit a batch -------------------------------------------------


def replace_column(batch: pa.RecordBatch, name: str, values: pa.Array | Sequence) -> pa.RecordBatch:
    index = batch.schema.get_field_index(name)
    field = batch.schema.field(index)
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values, type=field.type)
    elif values.type != field.type:
        values = values.cast(field.type)
    return batch.set_column(index, field, values)


def reject(
    batch: pa.RecordBatch,
    mask: np.ndarray | pa.Array | Sequence[bool],
    reasons: str | Sequence[str | None],
    values: np.ndarray | Sequence[float | None] | None = None,
    duplicate_of: Sequence[str | None] | None = None,
) -> pa.RecordBatch:
    """Mark rows as rejected where ``mask`` is true and they are not already rejected.

    ``reasons`` is one ``"stage.rule"`` string for all rows or one per row; ``values`` the
    number that decided each rejection (the score, the ratio that crossed its threshold).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return batch
    current = batch.column("rejected_by").to_pylist()
    cur_values = batch.column("rejected_value").to_pylist()
    cur_dups = batch.column("duplicate_of").to_pylist()
    for i in np.flatnonzero(mask):
        if current[i] is not None:
            continue
        current[i] = reasons if isinstance(reasons, str) else reasons[i]
        if values is not None:
            v = values[i]
            cur_values[i] = None if v is None else float(v)
        if duplicate_of is not None:
            cur_dups[i] = duplicate_of[i]
    batch = replace_column(batch, "rejected_by", current)
    batch = replace_column(batch, "rejected_value", cur_values)
    return replace_column(batch, "duplicate_of", cur_dups)


def add_scores(batch: pa.RecordBatch, scores: Mapping[str, Sequence[float | None] | np.ndarray]) -> pa.RecordBatch:
    """Add (or overwrite) per-document scores under the given keys. ``None`` values are skipped."""
    if not scores:
        return batch
    existing = batch.column("scores").to_pylist()
    keys = list(scores)
    columns = [scores[k].tolist() if isinstance(scores[k], np.ndarray) else list(scores[k]) for k in keys]
    merged = []
    for i, row in enumerate(existing):
        d = dict(row or [])
        for k, col in zip(keys, columns):
            v = col[i]
            if v is not None:
                d[k] = float(v)
        merged.append(list(d.items()))
    return replace_column(batch, "scores", pa.array(merged, type=SCORES_TYPE))


def add_flag(batch: pa.RecordBatch, mask: np.ndarray | Sequence[bool], flag: str) -> pa.RecordBatch:
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return batch
    flags = batch.column("flags").to_pylist()
    for i in np.flatnonzero(mask):
        row = flags[i] or []
        if flag not in row:
            row = row + [flag]
        flags[i] = row
    return replace_column(batch, "flags", pa.array(flags, type=FLAGS_TYPE))


def scores_of(batch: pa.RecordBatch | pa.Table, key: str) -> list[float | None]:
    """One score key for every row (None where absent)."""
    return [dict(row or []).get(key) for row in batch.column("scores").to_pylist()]


def kept_mask(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    return pc.is_null(batch.column("rejected_by"))


def concat_batches(batches: Iterable[pa.RecordBatch], schema: pa.Schema = DOCUMENT_SCHEMA) -> pa.RecordBatch:
    batches = [b for b in batches if b.num_rows]
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=schema)
    return pa.Table.from_batches(batches, schema=schema).combine_chunks().to_batches()[0]
