"""The shard writers: rows sorted by (shard, id) -> one Parquet file per shard, byte-stable.

Each writer runs inside a Spark task (``mapInArrow``) and yields one ``SHARD_INFO_SCHEMA`` row
per file it wrote; the driver turns those rows into manifest entries (:func:`shard_entries`).
Row groups hold exactly ``row_group_size`` rows whatever batches Spark delivered, and each file
is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.recipe import ShardSpec
from curate.rehydrate import Rehydration
from curate.schema import DOCUMENT_SCHEMA, TOKENS_SCHEMA, conform
from curate.shards import TMP_MARK, shard_name, write_parquet_atomic
from curate.store import Store
from curate.stage import tally_rejections
from curate.tokens import DocumentTokenizer

SHARD_INFO_SCHEMA = pa.schema(
    [
        ("folder", pa.string()),
        ("shard", pa.int64()),
        ("path", pa.string()),
        ("rows", pa.int64()),
        ("bytes", pa.int64()),
        ("tokens", pa.int64()),
        ("per_source", pa.string()),  # JSON {source: [rows, tokens]}
        ("reasons", pa.string()),  # JSON {"rejected:<reason>": rows, "rejected_chars:<reason>": characters}, rejected/ only
        ("published", pa.bool_()),  # already uploaded to the object-store output by the task that wrote it
    ]
)


class ShardFiles:
    """One output folder's shard files, fed rows in (shard, id) order within a task.

    Rows of a shard are buffered until a full row group (``row_group_size`` rows) can be
    written, so row groups do not depend on how the rows arrived; each file is written under
    a temporary name and renamed when complete.
    """

    def __init__(
        self,
        folder: str,
        prefix: str,
        schema: pa.Schema,
        compression: str,
        row_group_size: int,
        token_column: str | None,
        count_reasons: bool = False,
        publish_to: Store | None = None,
    ):
        self.folder, self.prefix, self.schema = folder, prefix, schema
        # an object-store output: each finished shard is uploaded by the task that wrote it, so the
        # output's bytes do not all pass through the driver
        self.publish_to = publish_to
        # rejected/: rows and characters per reason give the global stages' funnel entries
        self.count_reasons = count_reasons
        self.compression, self.row_group_size, self.token_column = compression, row_group_size, token_column
        self.infos: list[dict] = []
        self.shard: int | None = None
        self.writer: pq.ParquetWriter | None = None
        self.tmp = ""
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, shard: int, piece: pa.RecordBatch) -> None:
        if self.writer is None or self.shard != shard:
            self.close()
            self._open(shard)
        self.pending.append(piece)
        self.pending_rows += piece.num_rows
        self.rows += piece.num_rows
        sources = piece.column("source").to_pylist()
        if self.token_column:
            counts = piece.column(self.token_column).to_pylist()
            self.tokens += sum(counts)
            for source, count in zip(sources, counts):
                self.per_source[source] += 1
                self.tok_source[source] += count
        else:
            self.per_source.update(sources)
        if self.count_reasons:
            tally_rejections(piece, self.rejections)
        if self.pending_rows >= self.row_group_size:
            self._flush()

    def add_sorted(self, shards: np.ndarray, body: pa.RecordBatch) -> None:
        """Rows of ``body`` with their shard numbers ``shards`` (non-decreasing)."""
        n = body.num_rows
        start = 0
        while start < n:
            end = int(np.searchsorted(shards, shards[start], side="right"))
            self.add(int(shards[start]), body.slice(start, end - start))
            start = end

    def _open(self, shard: int) -> None:
        import uuid

        os.makedirs(self.folder, exist_ok=True)
        self.tmp = os.path.join(self.folder, f".{shard_name(self.prefix, shard)}{TMP_MARK}{uuid.uuid4().hex[:12]}")
        meta = {b"curate.shard": str(shard).encode()}
        self.shard = shard
        self.writer = pq.ParquetWriter(
            self.tmp,
            self.schema.with_metadata(meta),
            compression=None if self.compression == "none" else self.compression,
            write_statistics=True,
        )
        self.rows = self.tokens = 0
        self.per_source: Counter = Counter()
        self.tok_source: Counter = Counter()
        self.rejections: Counter = Counter()

    def _flush(self, final: bool = False) -> None:
        if not self.pending:
            return
        table = pa.Table.from_batches(self.pending, schema=self.schema).combine_chunks()
        cut = table.num_rows if final else (table.num_rows // self.row_group_size) * self.row_group_size
        if cut:
            self.writer.write_table(table.slice(0, cut), row_group_size=self.row_group_size)
        rest = table.slice(cut)
        self.pending = rest.to_batches() if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def close(self) -> None:
        if self.writer is None:
            return
        self._flush(final=True)
        self.writer.close()
        path = os.path.join(self.folder, shard_name(self.prefix, self.shard))
        os.replace(self.tmp, path)
        if self.publish_to is not None:
            self.publish_to.put_file(path, os.path.basename(self.folder), shard_name(self.prefix, self.shard))
        per_source = {k: [self.per_source[k], self.tok_source[k]] for k in sorted(self.per_source)}
        self.infos.append(
            {
                "folder": os.path.basename(self.folder),
                "shard": self.shard,
                "path": path,
                "rows": self.rows,
                "bytes": os.path.getsize(path),
                "tokens": self.tokens,
                "per_source": json.dumps(per_source),
                "reasons": json.dumps(dict(sorted(self.rejections.items()))),
                "published": self.publish_to is not None,
            }
        )
        self.writer = None


def shard_writer(
    folder: str,
    prefix: str,
    schema: pa.Schema,
    compression: str,
    row_group_size: int,
    token_column: str | None,
    count_reasons: bool = False,
    publish_to: Store | None = None,
):
    """Stream rows sorted by (_shard, id) into one Parquet file per shard (each uploaded to ``publish_to`` when set)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        files = ShardFiles(folder, prefix, schema, compression, row_group_size, token_column, count_reasons, publish_to)
        for batch in batches:
            if batch.num_rows:
                files.add_sorted(batch.column("_shard").to_numpy(), conform(batch, schema))
        files.close()
        if files.infos:
            yield pa.RecordBatch.from_pylist(files.infos, schema=SHARD_INFO_SCHEMA)

    return run


def output_files(output: str, compression: str, row_group_size: int, publish_to: Store | None) -> tuple[ShardFiles, ShardFiles, ShardFiles]:
    """The shard files of documents/, rejected/ (counting reasons) and tokens/."""
    return (
        ShardFiles(os.path.join(output, "documents"), "part", DOCUMENT_SCHEMA, compression, row_group_size, None, publish_to=publish_to),
        ShardFiles(os.path.join(output, "rejected"), "part", DOCUMENT_SCHEMA, compression, row_group_size, None, True, publish_to),
        ShardFiles(os.path.join(output, "tokens"), "shard", TOKENS_SCHEMA, compression, row_group_size, "n_tokens", publish_to=publish_to),
    )


def final_shard_writer(
    output: str,
    compression: str,
    row_group_size: int,
    tokenizer: DocumentTokenizer,
    rehydration: Rehydration | None = None,
    publish_to: Store | None = None,
):
    """Documents sorted by (_shard, id) -> documents/, rejected/ and tokens/ shards in one pass.

    The three outputs share the shard key (``pmod(xxhash64(id), n)``) and the order, so one
    shuffle feeds all of them; kept documents are tokenized here, in the writing task (and,
    with ``rehydration``, their token rows repeated by cluster size: curate/rehydrate.py).
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc

        documents, rejected, tokens = output_files(output, compression, row_group_size, publish_to)
        for batch in batches:
            if not batch.num_rows:
                continue
            is_kept = pc.is_null(batch.column("rejected_by"))
            kept = batch.filter(is_kept)
            if kept.num_rows:
                shards = kept.column("_shard").to_numpy()
                body = conform(kept, DOCUMENT_SCHEMA)
                documents.add_sorted(shards, body)
                token_rows = tokenizer.tokenize_documents(body)
                if rehydration is not None:
                    token_rows, source_rows = rehydration.expand(body, token_rows)
                    tokens.add_sorted(shards[source_rows], token_rows)
                else:
                    tokens.add_sorted(shards, token_rows)
            dropped = batch.filter(pc.invert(is_kept))
            if dropped.num_rows:
                rejected.add_sorted(dropped.column("_shard").to_numpy(), conform(dropped, DOCUMENT_SCHEMA))
        infos = []
        for files in (documents, rejected, tokens):
            files.close()
            infos.extend(files.infos)
        if infos:
            yield pa.RecordBatch.from_pylist(infos, schema=SHARD_INFO_SCHEMA)

    return run


def shard_entries(
    output: str, shards: ShardSpec, folder: str, prefix: str, schema: pa.Schema, token_column: str | None, infos: dict[int, dict]
) -> list[dict]:
    """Manifest entries of one folder's shards; shards that got no rows are written empty."""
    n = shards.num_shards
    target = os.path.join(output, folder)
    # Shards that received no rows still exist, so the set of files is the same every run.
    for shard in range(n):
        if shard not in infos:
            path = os.path.join(target, shard_name(prefix, shard))
            empty = pa.Table.from_batches([], schema=schema.with_metadata({b"curate.shard": str(shard).encode()}))
            info = write_parquet_atomic(empty, path, shards.compression)
            infos[shard] = {"shard": shard, "path": path, "rows": 0, "bytes": info["bytes"], "tokens": 0, "per_source": "{}"}
    out = []
    for shard in range(n):
        info = infos[shard]
        entry = {
            "path": os.path.relpath(info["path"], output),
            "rows": int(info["rows"]),
            "bytes": int(info["bytes"]),
            "per_source": json.loads(info["per_source"]),
        }
        if token_column:
            entry["tokens"] = int(info["tokens"])
        out.append(entry)
    return out
