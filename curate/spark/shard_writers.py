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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.recipe import ShardSpec
from curate.rehydrate import Rehydration
from curate.schema import DOCUMENT_SCHEMA, TOKENS_SCHEMA, conform
from curate.shards import NO_LANGUAGE, TMP_MARK, partition_folder, partition_value, shard_name, write_parquet_atomic
from curate.store import Store
from curate.stage import tally_rejections
from curate.tokens import DocumentTokenizer

SHARD_INFO_SCHEMA = pa.schema(
    [
        ("folder", pa.string()),
        ("partition", pa.string()),  # "" or the Hive-style partition folder ("language=deu_Latn")
        ("shard", pa.int64()),
        ("path", pa.string()),
        ("rows", pa.int64()),
        ("bytes", pa.int64()),
        ("tokens", pa.int64()),
        ("per_source", pa.string()),  # JSON {source: [rows, tokens]}
        ("per_language", pa.string()),  # JSON {language: [rows, characters]} (documents/) or [rows, tokens] (tokens/)
        ("reasons", pa.string()),  # JSON {"rejected:<reason>": rows, "rejected_chars:<reason>": characters}, rejected/ only
        ("published", pa.bool_()),  # already uploaded to the object-store output by the task that wrote it
    ]
)


def file_schema(schema: pa.Schema, partition_by: str | None) -> pa.Schema:
    """The schema of a folder's files: a partition column lives in the folder names, not in the files
    (as Hive and Spark write it; pyarrow and pandas refuse a column that is in both)."""
    if partition_by and partition_by in schema.names:
        return schema.remove(schema.get_field_index(partition_by))
    return schema


class ShardFiles:
    """One output folder's shard files, fed rows in (shard, partition, id) order within a task.

    Rows of a shard are buffered until a full row group (``row_group_size`` rows) can be
    written, so row groups do not depend on how the rows arrived; each file is written under
    a temporary name and renamed when complete. With ``partition_by`` (``language``) each value
    of that column has its own folder (``FOLDER/language=deu_Latn/part-00000.parquet``).
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
        partition_by: str | None = None,
        count_languages: bool = False,
    ):
        self.folder, self.prefix = folder, prefix
        self.partition_by = partition_by
        self.schema = file_schema(schema, partition_by)
        # an object-store output: each finished shard is uploaded by the task that wrote it, so the
        # output's bytes do not all pass through the driver
        self.publish_to = publish_to
        # rejected/: rows and characters per reason give the global stages' funnel entries
        self.count_reasons = count_reasons
        # documents/ and tokens/: rows and characters (or tokens) per language, for the manifest
        self.count_languages = count_languages
        self.compression, self.row_group_size, self.token_column = compression, row_group_size, token_column
        self.infos: list[dict] = []
        self.key: tuple[str, int] | None = None  # (partition, shard) of the open file
        self.closed: set[tuple[str, int]] = set()
        self.writer: pq.ParquetWriter | None = None
        self.tmp = ""
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, shard: int, piece: pa.RecordBatch, partition: str = "", languages: pa.Array | None = None) -> None:
        """Rows of one shard (and partition folder), ``languages`` their documents' languages."""
        if self.writer is None or self.key != (partition, shard):
            self.close()
            self._open(partition, shard)
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
        if self.count_languages and languages is not None:
            self._tally_languages(piece, languages)
        if self.pending_rows >= self.row_group_size:
            self._flush()

    def _tally_languages(self, piece: pa.RecordBatch, languages: pa.Array) -> None:
        if self.token_column:
            amounts = piece.column(self.token_column).cast(pa.int64())
        else:
            amounts = pc.utf8_length(piece.column("text").fill_null("")).cast(pa.int64())
        table = pa.table({"language": languages, "amount": amounts})
        for row in table.group_by("language").aggregate([("amount", "count"), ("amount", "sum")]).to_pylist():
            self.lang_rows[row["language"]] += row["amount_count"]
            self.lang_amount[row["language"]] += row["amount_sum"]

    def add_sorted(self, shards: np.ndarray, body: pa.RecordBatch, languages: pa.Array | None = None) -> None:
        """Rows of ``body`` with their shard numbers ``shards`` (non-decreasing, and within a shard
        grouped by partition) and languages (default: ``body``'s ``language`` column)."""
        n = body.num_rows
        if languages is None and "language" in body.schema.names:
            languages = body.column("language")
        runs = np.diff(shards) != 0
        values: list[str | None] = []
        if languages is not None:
            languages = languages.fill_null(NO_LANGUAGE)
        if self.partition_by:
            encoded = pc.dictionary_encode(languages)
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            values = encoded.dictionary.to_pylist()
            runs |= np.diff(codes) != 0
        body = conform(body, self.schema)
        starts = [0, *(np.flatnonzero(runs) + 1).tolist(), n]
        for start, end in zip(starts[:-1], starts[1:]):
            if start == end:
                continue
            partition = ""
            if self.partition_by:
                partition = partition_folder(self.partition_by, values[codes[start]])
            part_languages = languages.slice(start, end - start) if languages is not None else None
            self.add(int(shards[start]), body.slice(start, end - start), partition, part_languages)

    def _open(self, partition: str, shard: int) -> None:
        import uuid

        if (partition, shard) in self.closed:  # its file would be replaced by a part of its rows
            raise RuntimeError(f"{self.folder}: rows of shard {shard} {partition} arrived after its file was written; rows must be sorted")
        folder = os.path.join(self.folder, partition) if partition else self.folder
        os.makedirs(folder, exist_ok=True)
        self.tmp = os.path.join(folder, f".{shard_name(self.prefix, shard)}{TMP_MARK}{uuid.uuid4().hex[:12]}")
        meta = {b"curate.shard": str(shard).encode()}
        self.key = (partition, shard)
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
        self.lang_rows: Counter = Counter()
        self.lang_amount: Counter = Counter()

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
        partition, shard = self.key
        name = shard_name(self.prefix, shard)
        path = os.path.join(self.folder, partition, name) if partition else os.path.join(self.folder, name)
        os.replace(self.tmp, path)
        if self.publish_to is not None:
            self.publish_to.put_file(path, os.path.basename(self.folder), *([partition] if partition else []), name)
        per_source = {k: [self.per_source[k], self.tok_source[k]] for k in sorted(self.per_source)}
        per_language = {k: [self.lang_rows[k], self.lang_amount[k]] for k in sorted(self.lang_rows)}
        self.infos.append(
            {
                "folder": os.path.basename(self.folder),
                "partition": partition,
                "shard": shard,
                "path": path,
                "rows": self.rows,
                "bytes": os.path.getsize(path),
                "tokens": self.tokens,
                "per_source": json.dumps(per_source),
                "per_language": json.dumps(per_language),
                "reasons": json.dumps(dict(sorted(self.rejections.items()))),
                "published": self.publish_to is not None,
            }
        )
        self.closed.add(self.key)
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
    count_languages: bool = False,
):
    """Stream rows sorted by (_shard, id) into one Parquet file per shard (each uploaded to ``publish_to`` when set)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        files = ShardFiles(
            folder, prefix, schema, compression, row_group_size, token_column, count_reasons, publish_to, count_languages=count_languages
        )
        for batch in batches:
            if batch.num_rows:
                files.add_sorted(batch.column("_shard").to_numpy(), conform(batch, schema))
        files.close()
        if files.infos:
            yield pa.RecordBatch.from_pylist(files.infos, schema=SHARD_INFO_SCHEMA)

    return run


def output_files(
    output: str, compression: str, row_group_size: int, publish_to: Store | None, partition_by: str | None = None
) -> tuple[ShardFiles, ShardFiles, ShardFiles]:
    """The shard files of documents/ and tokens/ (counting languages, split by ``partition_by``) and rejected/ (counting reasons)."""

    def files(folder: str, prefix: str, schema: pa.Schema, token_column: str | None, **options) -> ShardFiles:
        return ShardFiles(
            os.path.join(output, folder), prefix, schema, compression, row_group_size, token_column, publish_to=publish_to, **options
        )

    return (
        files("documents", "part", DOCUMENT_SCHEMA, None, partition_by=partition_by, count_languages=True),
        files("rejected", "part", DOCUMENT_SCHEMA, None, count_reasons=True),
        files("tokens", "shard", TOKENS_SCHEMA, "n_tokens", partition_by=partition_by, count_languages=True),
    )


def final_shard_writer(
    output: str,
    compression: str,
    row_group_size: int,
    tokenizer: DocumentTokenizer,
    rehydration: Rehydration | None = None,
    publish_to: Store | None = None,
    partition_by: str | None = None,
):
    """Documents sorted by (_shard, id) -> documents/, rejected/ and tokens/ shards in one pass.

    The three outputs share the shard key (``pmod(xxhash64(id), n)``) and the order, so one
    shuffle feeds all of them; kept documents are tokenized here, in the writing task (and,
    with ``rehydration``, their token rows repeated by cluster size: curate/rehydrate.py).
    With ``partition_by``, kept rows arrive grouped by language within a shard (rejected rows
    have no partition and stay in id order).
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        documents, rejected, tokens = output_files(output, compression, row_group_size, publish_to, partition_by)
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
                languages = body.column("language")
                if rehydration is not None:
                    token_rows, source_rows = rehydration.expand(body, token_rows)
                    tokens.add_sorted(shards[source_rows], token_rows, languages.take(pa.array(source_rows)))
                else:
                    tokens.add_sorted(shards, token_rows, languages)
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
    output: str,
    shards: ShardSpec,
    folder: str,
    prefix: str,
    schema: pa.Schema,
    token_column: str | None,
    infos: dict[tuple[str, int], dict],
    partition_by: str | None = None,
) -> list[dict]:
    """Manifest entries of one folder's shards, keyed (partition, shard); shards that got no rows
    are written empty, in every partition folder that got rows."""
    n = shards.num_shards
    partitions = sorted({partition for partition, _ in infos}) if partition_by else [""]
    schema = file_schema(schema, partition_by)
    # Shards that received no rows still exist, so the set of files is the same every run.
    for partition in partitions:
        for shard in range(n):
            if (partition, shard) not in infos:
                path = os.path.join(output, folder, partition, shard_name(prefix, shard))
                empty = pa.Table.from_batches([], schema=schema.with_metadata({b"curate.shard": str(shard).encode()}))
                info = write_parquet_atomic(empty, path, shards.compression)
                infos[partition, shard] = {
                    "path": path,
                    "rows": 0,
                    "bytes": info["bytes"],
                    "tokens": 0,
                    "per_source": "{}",
                    "per_language": "{}",
                }
    out = []
    for partition in partitions:
        for shard in range(n):
            info = infos[partition, shard]
            entry = {
                "path": os.path.relpath(info["path"], output),
                "rows": int(info["rows"]),
                "bytes": int(info["bytes"]),
                "per_source": json.loads(info["per_source"]),
                "per_language": json.loads(info["per_language"]),
            }
            if partition:
                entry[partition_by] = partition_value(info["path"], partition_by)
            if token_column:
                entry["tokens"] = int(info["tokens"])
            out.append(entry)
    return out
