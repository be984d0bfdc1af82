"""Source readers: one input file -> a stream of Arrow batches.

``warc`` files yield ``RECORD_SCHEMA`` (the ``extract`` stage turns them into documents);
``parquet``, ``jsonl`` and ``run`` (an earlier run's ``documents/``) yield
``DOCUMENT_SCHEMA`` directly. Readers never load a whole file: Parquet is read by row
group, JSONL line by line. A bad JSONL line is counted and reported by file and line
number; the lines around it are kept.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.recipe import SourceSpec
from curate.schema import DOCUMENT_SCHEMA, document_id, documents_from_pylist
from curate.stage import Counters

log = logging.getLogger(__name__)

MAX_PROBLEMS = 100


def note_problem(problems: list[str] | None, message: str) -> None:
    log.warning(message)
    if problems is not None and len(problems) < MAX_PROBLEMS:
        problems.append(message)


@dataclass(frozen=True)
class SourceReader:
    """How one source ``kind`` is read; the job and the recipe loader ask this, never the kind's name.

    ``read(source, path, counters, problems, batch_size)`` streams one file's batches.
    ``yields_records``: batches are ``RECORD_SCHEMA`` (raw pages for the ``extract`` stage), not documents.
    ``curated``: documents of an earlier run, which skip every stage and only join the mixture.
    ``folder_glob``: joined to each ``paths`` entry to find the files (a ``run`` source names folders).
    """

    read: Callable[..., Iterator[pa.RecordBatch]]
    yields_records: bool = False
    curated: bool = False
    folder_glob: str | None = None


def _read_warc(source: SourceSpec, path: str, counters: Counters, problems, batch_size: int) -> Iterator[pa.RecordBatch]:
    from curate.warc import read_warc

    yield from read_warc(path, source.name, counters=counters, batch_size=batch_size, problems=problems)


def skips_stages(source: SourceSpec) -> bool:
    """Whether a source's documents pass the recipe's stages untouched: an earlier run's
    documents do, unless the recipe sets ``apply_stages`` (curate ablate's shared prefix)."""
    return source_reader(source.kind).curated and not source.apply_stages


def source_reader(kind: str) -> SourceReader:
    try:
        return READERS[kind]
    except KeyError:  # the recipe loader has already rejected other kinds
        raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(READERS)}") from None


def source_files(source: SourceSpec) -> list[str]:
    """The files a source reads, sorted, absolute. A ``run`` source reads its ``documents/``."""
    folder_glob = source_reader(source.kind).folder_glob
    files: list[str] = []
    for pattern in source.paths:
        if folder_glob:
            pattern = os.path.join(pattern, folder_glob)
        files.extend(glob.glob(pattern, recursive=True))
    return sorted(dict.fromkeys(os.path.abspath(f) for f in files if os.path.isfile(f)))


def read_source(
    source: SourceSpec,
    path: str,
    counters: Counters | None = None,
    problems: list[str] | None = None,
    batch_size: int = 256,
) -> Iterator[pa.RecordBatch]:
    counters = counters if counters is not None else Counters()
    yield from source_reader(source.kind).read(source, path, counters, problems, batch_size)


def _row_to_document(source: SourceSpec, path: str, position: int, row: dict) -> dict:
    text = row.get(source.text_field)
    if text is not None and not isinstance(text, str):
        raise TypeError(f"field {source.text_field!r} is {type(text).__name__}, expected a string")
    raw_id = row.get(source.id_field)
    doc_id = str(raw_id) if raw_id is not None else document_id(source.name, os.path.basename(path), str(position))
    url = row.get(source.url_field)
    return {
        "id": doc_id,
        "source": source.name,
        "url": None if url is None else str(url),
        "warc_date": row.get("warc_date") if isinstance(row.get("warc_date"), str) else None,
        "warc_file": row.get("warc_file") if isinstance(row.get("warc_file"), str) else None,
        "text": text,
    }


def _read_parquet(source: SourceSpec, path: str, counters: Counters, problems, batch_size: int) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # not Parquet, truncated footer, ...
        counters["source.unreadable_files"] += 1
        note_problem(problems, f"{path}: not a readable Parquet file ({e})")
        return
    names = parquet.schema_arrow.names
    if source.text_field not in names:
        counters["source.unreadable_files"] += 1
        note_problem(problems, f"{path}: no column {source.text_field!r} (columns: {', '.join(names)})")
        return
    if source_reader(source.kind).curated:
        # An earlier curate run: documents are already in our schema; keep them whole.
        for batch in parquet.iter_batches(batch_size=batch_size):
            counters["source.records"] += batch.num_rows
            from curate.schema import conform

            yield conform(batch)
        return
    wanted = [c for c in dict.fromkeys([source.id_field, source.text_field, source.url_field, "warc_date", "warc_file"]) if c in names]
    position = 0
    for batch in parquet.iter_batches(batch_size=batch_size, columns=wanted):
        rows = []
        for row in batch.to_pylist():
            try:
                rows.append(_row_to_document(source, path, position, row))
            except TypeError as e:
                counters["source.bad_records"] += 1
                note_problem(problems, f"{path}: row {position}: {e}")
            position += 1
        counters["source.records"] += len(rows)
        if rows:
            yield documents_from_pylist(rows)


def _read_jsonl(source: SourceSpec, path: str, counters: Counters, problems, batch_size: int) -> Iterator[pa.RecordBatch]:
    opener = open
    if path.endswith(".gz"):
        import gzip

        opener = gzip.open  # type: ignore[assignment]
    elif path.endswith(".zst"):
        import io

        import zstandard  # optional; only for .zst inputs

        def opener(p, mode="rt", encoding="utf-8"):  # type: ignore[no-redef]
            return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(p, "rb")), encoding=encoding)

    rows: list[dict] = []
    with opener(path, "rt", encoding="utf-8") as fh:
        line_no = 0
        while True:
            try:
                line = fh.readline()
            except (UnicodeDecodeError, EOFError, OSError) as e:
                counters["source.bad_records"] += 1
                note_problem(problems, f"{path}: after line {line_no}: unreadable ({e}); rest of file skipped")
                break
            if not line:
                break
            line_no += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("a JSON object per line expected")
                rows.append(_row_to_document(source, path, line_no, obj))
            except (ValueError, TypeError) as e:
                counters["source.bad_records"] += 1
                note_problem(problems, f"{path}: line {line_no}: {e}")
                continue
            if len(rows) >= batch_size:
                counters["source.records"] += len(rows)
                yield documents_from_pylist(rows)
                rows = []
    if rows:
        counters["source.records"] += len(rows)
        yield documents_from_pylist(rows)


def is_document_batch(batch: pa.RecordBatch) -> bool:
    return "text" in batch.schema.names and batch.schema.names == DOCUMENT_SCHEMA.names


# source kind -> its reader. A new kind: a reader here, and its name in SourceSpec.kind (curate/recipe.py).
READERS: dict[str, SourceReader] = {
    "warc": SourceReader(_read_warc, yields_records=True),
    "parquet": SourceReader(_read_parquet),
    "jsonl": SourceReader(_read_jsonl),
    "run": SourceReader(_read_parquet, curated=True, folder_glob=os.path.join("documents", "*.parquet")),
}
