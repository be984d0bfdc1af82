"""Source readers: one input file -> a stream of Arrow batches.

``warc`` files yield ``RECORD_SCHEMA`` (the ``extract`` stage turns them into documents);
``parquet``, ``jsonl`` and ``run`` (an earlier run's ``documents/``) yield
``DOCUMENT_SCHEMA`` directly. Readers never load a whole file: Parquet is read by row
group, JSONL line by line, and a file in an object store through a ranged reader that
fetches one block at a time (curate/ranged_reader.py). A bad JSONL line is counted and
reported by file and line number; the lines around it are kept.

Where a source's files are: ``paths`` (local paths, globs, or URLs of any fsspec protocol,
with globs where the store can list) and/or a ``listing`` (a paths file such as Common
Crawl's ``warc.paths.gz``, local or a URL, one path per line, each prefixed with
``base_url``), of which ``sample`` takes a reproducible subset and ``limit`` the first N.
The driver lists; each task opens only its own files.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from curate.schema import DOCUMENT_SCHEMA, conform, document_id, documents_from_pylist
from curate.shards import partition_value
from curate.stage import Counters
from curate.storage import StorageOptions, StorageReadError, display_url, expand_pattern, file_name, filesystem, is_remote, local_path

log = logging.getLogger(__name__)

MAX_PROBLEMS = 100


@dataclass
class SampleSpec:
    """``n`` paths of a listing, chosen by a seeded hash of each path: the same ``n`` and
    ``seed`` take the same files whatever machine or Python runs it."""

    n: int
    seed: int = 0


@dataclass
class SourceSpec:
    """One input. ``kind`` names a reader in ``READERS`` (warc, parquet, jsonl, run);
    ``kind: run`` reads an already-curated run folder (its ``documents/``): its documents skip
    the recipe's stages and only join the mixture, unless ``apply_stages``."""

    name: str
    kind: str
    paths: list[str] = field(default_factory=list)
    weight: float = 1.0
    text_field: str = "text"
    id_field: str = "id"
    url_field: str = "url"
    apply_stages: bool = False
    listing: str | None = None
    base_url: str = ""
    limit: int | None = None
    sample: SampleSpec | None = None


@dataclass(frozen=True)
class InputAccess:
    """How files are opened: fsspec options per protocol, the ranged reader's retry policy
    (keyword arguments of ``curate.ranged_reader.ReadPolicy``), and what a file that still
    fails does: ``skip`` (reported, the run goes on) or ``fail`` (the run stops)."""

    storage_options: StorageOptions = field(default_factory=dict, repr=False)
    policy_options: dict[str, Any] = field(default_factory=dict)
    on_error: str = "skip"


class InputFailedError(RuntimeError):
    """A file could not be read and the recipe says ``on_error: fail``."""


def note_problem(problems: list[str] | None, message: str) -> None:
    log.warning(message)
    if problems is not None and len(problems) < MAX_PROBLEMS:
        problems.append(message)


def open_input(path: str, access: InputAccess | None, counters: Counters) -> BinaryIO:
    """A seekable binary stream of a local file, or of a stored object through the ranged reader."""
    if not is_remote(path):
        try:
            return open(local_path(path), "rb")
        except OSError as e:  # deleted after listing, a folder, no permission: the same policy as a store's failure
            reason = "not_found" if isinstance(e, FileNotFoundError) else "unreadable"
            raise StorageReadError(path, reason, f"{path}: {e.strerror or e}", detail=e.strerror or str(e)) from None
    from curate.ranged_reader import ReadPolicy, open_ranged

    access = access or InputAccess()
    return open_ranged(path, filesystem(path, access.storage_options, ranged_reads=True), ReadPolicy(**access.policy_options), counters)


@dataclass(frozen=True)
class SourceReader:
    """How one source ``kind`` is read; the job and the recipe loader ask this, never the kind's name.

    ``read(source, path, counters, problems, batch_size, opener)`` streams one file's batches;
    ``opener(path)`` gives its bytes.
    ``yields_records``: batches are ``RECORD_SCHEMA`` (raw pages for the ``extract`` stage), not documents.
    ``curated``: documents of an earlier run, which skip every stage and only join the mixture.
    ``folder_glob``: joined to each ``paths`` entry to find the files (a ``run`` source names folders).
    """

    read: Callable[..., Iterator[pa.RecordBatch]]
    yields_records: bool = False
    curated: bool = False
    folder_glob: str | None = None


def _read_warc(source: SourceSpec, path: str, counters: Counters, problems, batch_size: int, opener) -> Iterator[pa.RecordBatch]:
    from curate.warc import read_warc

    yield from read_warc(path, source.name, counters, batch_size, problems, opener=opener, shown=display_url(path))


def skips_stages(source: SourceSpec) -> bool:
    """Whether a source's documents pass the recipe's stages untouched: an earlier run's
    documents do, unless the recipe sets ``apply_stages`` (curate ablate's shared prefix)."""
    return source_reader(source.kind).curated and not source.apply_stages


def source_reader(kind: str) -> SourceReader:
    try:
        return READERS[kind]
    except KeyError:  # the recipe loader has already rejected other kinds
        raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(READERS)}") from None


def source_files(source: SourceSpec, storage_options: StorageOptions | None = None) -> list[str]:
    """The files a source reads, sorted: local paths absolute, URLs whole. A ``run`` source reads its ``documents/``."""
    folder_glob = source_reader(source.kind).folder_glob
    files: list[str] = []
    for pattern in source.paths:
        if folder_glob:
            pattern = pattern.rstrip("/") + "/" + folder_glob if is_remote(pattern) else os.path.join(pattern, folder_glob)
        files.extend(expand_pattern(pattern, storage_options))
    if source.listing:
        files.extend(listing_paths(source, storage_options))
    return sorted(dict.fromkeys(files))


def listing_paths(source: SourceSpec, storage_options: StorageOptions | None = None) -> list[str]:
    """The paths a source's ``listing`` names: ``base_url`` + each line, sampled, then limited."""
    raw = _read_whole(source.listing, storage_options)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    lines = [line.strip() for line in raw.decode("utf-8").splitlines()]
    paths = [source.base_url + line for line in lines if line and not line.startswith("#")]
    if source.sample is not None and source.sample.n < len(paths):
        seed = source.sample.seed % 2**64
        ranked = sorted(range(len(paths)), key=lambda i: (xxhash.xxh64_intdigest(paths[i].encode(), seed=seed), i))
        chosen = set(ranked[: source.sample.n])
        paths = [p for i, p in enumerate(paths) if i in chosen]
    if source.limit is not None:
        paths = paths[: source.limit]
    return [p if is_remote(p) else local_path(p) for p in paths]


def _read_whole(path: str, storage_options: StorageOptions | None) -> bytes:
    if not is_remote(path):
        with open(local_path(path), "rb") as fh:
            return fh.read()
    from curate.ranged_reader import ReadPolicy, fetch_small

    return fetch_small(path, filesystem(path, storage_options, ranged_reads=True), ReadPolicy(), Counters())


def read_source(
    source: SourceSpec,
    path: str,
    counters: Counters | None = None,
    problems: list[str] | None = None,
    batch_size: int = 256,
    access: InputAccess | None = None,
) -> Iterator[pa.RecordBatch]:
    """One file's batches. A file the store keeps failing is counted (``storage.failed_files:<reason>``)
    and reported; the run goes on unless ``access.on_error`` is ``fail``."""
    counters = counters if counters is not None else Counters()
    access = access or InputAccess()

    def opener(p: str) -> BinaryIO:
        return open_input(p, access, counters)

    try:
        yield from source_reader(source.kind).read(source, path, counters, problems, batch_size, opener)
    except StorageReadError as e:
        counters[f"storage.failed_files:{e.reason}"] += 1
        detail = e.detail
        message = f"{display_url(path)}: unreadable after {e.attempts} attempt(s) ({e.reason}{': ' + detail if detail else ''})"
        if access.on_error == "fail":
            raise InputFailedError(message + " (reading.on_error: fail)") from None
        note_problem(problems, message + "; skipped (reading.on_error: skip)")


def _row_to_document(source: SourceSpec, path: str, position: int, row: dict) -> dict:
    text = row.get(source.text_field)
    if text is not None and not isinstance(text, str):
        raise TypeError(f"field {source.text_field!r} is {type(text).__name__}, expected a string")
    raw_id = row.get(source.id_field)
    doc_id = str(raw_id) if raw_id is not None else document_id(source.name, file_name(path), str(position))
    url = row.get(source.url_field)
    return {
        "id": doc_id,
        "source": source.name,
        "url": None if url is None else str(url),
        "warc_date": row.get("warc_date") if isinstance(row.get("warc_date"), str) else None,
        "warc_file": row.get("warc_file") if isinstance(row.get("warc_file"), str) else None,
        "text": text,
    }


def _read_parquet(source: SourceSpec, path: str, counters: Counters, problems, batch_size: int, opener) -> Iterator[pa.RecordBatch]:
    with opener(path) as fh:
        yield from _parquet_batches(source, path, fh, counters, problems, batch_size)


def _parquet_batches(
    source: SourceSpec, path: str, fh: BinaryIO, counters: Counters, problems, batch_size: int
) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(fh)
    except StorageReadError:
        raise
    except Exception as e:  # not Parquet, truncated footer, ...
        counters["source.unreadable_files"] += 1
        note_problem(problems, f"{display_url(path)}: not a readable Parquet file ({e})")
        return
    names = parquet.schema_arrow.names
    if source.text_field not in names:
        counters["source.unreadable_files"] += 1
        note_problem(problems, f"{display_url(path)}: no column {source.text_field!r} (columns: {', '.join(names)})")
        return
    if source_reader(source.kind).curated:
        # An earlier curate run: documents are already in our schema; keep them whole. A run
        # split by language holds each document's language in its folder's name.
        language = None if "language" in names else partition_value(path, "language")
        for batch in parquet.iter_batches(batch_size=batch_size):
            counters["source.records"] += batch.num_rows
            if language is not None:
                batch = batch.append_column("language", pa.array([language] * batch.num_rows, pa.string()))
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
                note_problem(problems, f"{display_url(path)}: row {position}: {e}")
            position += 1
        counters["source.records"] += len(rows)
        if rows:
            yield documents_from_pylist(rows)


def _text_stream(path: str, raw: BinaryIO) -> io.TextIOWrapper:
    """A JSONL file's lines, decompressed by its name (``.gz``, ``.zst``)."""
    if path.endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif path.endswith(".zst"):
        import zstandard  # optional; only for .zst inputs

        raw = zstandard.ZstdDecompressor().stream_reader(raw)
    return io.TextIOWrapper(raw, encoding="utf-8")


def _read_jsonl(source: SourceSpec, path: str, counters: Counters, problems, batch_size: int, opener) -> Iterator[pa.RecordBatch]:
    with opener(path) as raw:
        yield from _jsonl_batches(source, path, _text_stream(path, raw), counters, problems, batch_size)


def _jsonl_batches(
    source: SourceSpec, path: str, fh: io.TextIOWrapper, counters: Counters, problems, batch_size: int
) -> Iterator[pa.RecordBatch]:
    rows: list[dict] = []
    with fh:
        line_no = 0
        while True:
            try:
                line = fh.readline()
            except StorageReadError:
                raise
            except (UnicodeDecodeError, EOFError, OSError) as e:
                counters["source.bad_records"] += 1
                note_problem(problems, f"{display_url(path)}: after line {line_no}: unreadable ({e}); rest of file skipped")
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
                note_problem(problems, f"{display_url(path)}: line {line_no}: {e}")
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


# source kind -> its reader. A new kind: a reader here, and its name in SourceSpec.kind (above).
READERS: dict[str, SourceReader] = {
    "warc": SourceReader(_read_warc, yields_records=True),
    "parquet": SourceReader(_read_parquet),
    "jsonl": SourceReader(_read_jsonl),
    # documents/*.parquet, or documents/language=*/*.parquet of a run split by language
    "run": SourceReader(_read_parquet, curated=True, folder_glob=os.path.join("documents", "**", "*.parquet")),
}
