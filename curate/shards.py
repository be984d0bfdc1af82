"""Writing output shards: deterministic names, atomic appearance, self-describing metadata.

A shard is written to ``.<name>.tmp-<unique>`` in its final folder and renamed when
complete, so a reader (or a crashed job) never sees half a shard. Which shard a row lands in
depends only on its id (``shard_index``), and rows are sorted by id inside a shard, so two
runs of the same recipe produce byte-identical files however Spark partitioned the work.
"""

from __future__ import annotations

import glob
import json
import os
import uuid
from typing import Iterable
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

TMP_MARK = ".tmp-"


def shard_index(ids: Iterable[str], num_shards: int) -> np.ndarray:
    """Stable shard number per id (xxh64, independent of Python's hash seed)."""
    return np.fromiter((xxhash.xxh64_intdigest(i.encode("utf-8")) % num_shards for i in ids), dtype=np.int64)


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:05d}.parquet"


# A partitioned output's folders are Hive-style (``documents/language=deu_Latn/``), so DuckDB,
# Polars, pyarrow and pandas read the value back as a column.
# Documents without a language (no langid stage, or nothing it could label) are ISO 639-3's
# "undetermined", in the manifest, the report, ``curate inspect`` and a partition's folder name
# (not Hive's null folder: pandas cannot read a null partition next to others).
NO_LANGUAGE = "und"
# Characters a partition value keeps in its folder name; any other is percent-encoded, as Hive does.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def partition_folder(column: str, value: str) -> str:
    """The folder of one partition value: ``language=deu_Latn``."""
    escaped = "".join(c if c in _PLAIN else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in value)
    return f"{column}={escaped}"


def partition_value(path: str, column: str) -> str | None:
    """The value of ``column`` in a path's Hive-style folders (``.../language=deu_Latn/...``), or None."""
    for part in reversed(path.split("/")[:-1]):
        if part.startswith(column + "="):
            return unquote(part[len(column) + 1 :])
    return None


def write_parquet_atomic(
    table: pa.Table,
    path: str,
    compression: str = "zstd",
    row_group_size: int = 1024,
    metadata: dict[str, str] | None = None,
) -> dict:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}{TMP_MARK}{uuid.uuid4().hex[:12]}")
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    try:
        pq.write_table(
            table,
            tmp,
            compression=None if compression == "none" else compression,
            row_group_size=row_group_size,
            write_statistics=True,
        )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return {"path": path, "rows": table.num_rows, "bytes": os.path.getsize(path)}


def sort_by_id(table: pa.Table) -> pa.Table:
    keys = [("id", "ascending")]
    if "repeat" in table.schema.names:
        keys.append(("repeat", "ascending"))
    return table.take(pc.sort_indices(table, sort_keys=keys))


def write_sharded(
    table: pa.Table,
    folder: str,
    prefix: str,
    shards: Iterable[int],
    num_shards: int,
    compression: str = "zstd",
    row_group_size: int = 1024,
    token_column: str | None = None,
) -> list[dict]:
    """Write the rows of ``table`` that belong to each of ``shards`` (all rows of that shard
    must be in ``table``). Returns one info dict per shard written (empty shards included,
    so the set of files does not depend on the data)."""
    index = shard_index(table.column("id").to_pylist(), num_shards) if table.num_rows else np.zeros(0, dtype=np.int64)
    infos = []
    for shard in sorted(set(shards)):
        part = sort_by_id(table.filter(pa.array(index == shard))) if table.num_rows else table
        meta = {"curate.shard": str(shard), "curate.num_shards": str(num_shards), "curate.rows": str(part.num_rows)}
        tokens = None
        if token_column and part.num_rows:
            tokens = int(pc.sum(part.column(token_column)).as_py() or 0)
        elif token_column:
            tokens = 0
        if tokens is not None:
            meta["curate.tokens"] = str(tokens)
        info = write_parquet_atomic(part, os.path.join(folder, shard_name(prefix, shard)), compression, row_group_size, metadata=meta)
        info["shard"] = shard
        if tokens is not None:
            info["tokens"] = tokens
        infos.append(info)
    return infos


def remove_temporaries(folder: str) -> int:
    """Delete leftovers of attempts that died mid-write."""
    removed = 0
    for path in glob.glob(os.path.join(folder, "**", f".*{TMP_MARK}*"), recursive=True):
        os.remove(path)
        removed += 1
    return removed


def write_json_atomic(data: dict, path: str) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}{TMP_MARK}{uuid.uuid4().hex[:12]}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")
    os.replace(tmp, path)


def list_shards(folder: str, prefix: str = "") -> list[str]:
    """The finished shards of a folder, those in its partition folders (``language=*/``) included."""
    found = glob.glob(os.path.join(folder, f"{prefix}*.parquet")) + glob.glob(os.path.join(folder, "*=*", f"{prefix}*.parquet"))
    return sorted(p for p in found if TMP_MARK not in os.path.basename(p))
