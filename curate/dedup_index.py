"""The cross-run dedup index (``dedup: {index: PATH}``): survivors of earlier runs, as Parquet.

A run that names an index dedups its documents against every document earlier runs kept
there, then appends its own survivors. Layout (plain Parquet, DuckDB reads it as is)::

    PATH/index.json                          # settings every run must share (see below)
    PATH/LOCK                                # present while a run holds the index
    PATH/parts/s000001/part.json             # one folder per committed run ("snapshot")
    PATH/parts/s000001/exact/*.parquet       # key (binary), id, snapshot, warc_date
    PATH/parts/s000001/url/*.parquet         # key (string), id, snapshot, warc_date
    PATH/parts/s000001/minhash/band=0/*.parquet   # bucket (int64), id, snapshot, warc_date
    PATH/parts/s000001/superseded/*.parquet  # index_keep: newest: earlier id, superseded by

(``*.parquet``: one file from the one-process path, one per Spark task from Spark; files
whose names start with ``_`` or ``.`` are not data.) With DuckDB::

    SELECT band, count(*) FROM read_parquet('PATH/parts/*/minhash/*/*.parquet', hive_partitioning = true) GROUP BY band
    PATH/staging/<token>/                    # a running run's part, not yet committed

Safety:

* one run at a time: ``LOCK`` is created only if absent (``O_EXCL``; ``If-None-Match: *`` on
  S3) and names its holder (host, pid, start time, run). A second run is refused with an
  error naming the holder. A lock whose holder is on this host and no longer running is
  stale: the next run breaks it. A local lock from another host is never broken
  automatically; in an object store, a lock its holder stopped renewing (ten minutes) is.
* a run writes its part under ``staging/`` and commits it at the very end of a successful
  run with one ``rename`` into ``parts/`` (in an object store: its files, then its
  ``part.json``, which marks it committed). A run killed before that leaves the index as it
  was; the next holder of the lock deletes the leftover.
* the index may live in an object store (``index: s3://bucket/dedup-index``): see
  :class:`IndexSession`.
* readers only read committed parts, and every choice among earlier documents is by
  (snapshot, id), so no decision depends on the order in which files are read.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from curate.store import LockedError, Store, StoreLock
from curate.storage import StorageOptions, local_cache

INDEX_FORMAT = 1
LOCK_NAME = "LOCK"

ENTRY_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("snapshot", pa.int32(), nullable=False),
    pa.field("warc_date", pa.string()),
]
EXACT_SCHEMA = pa.schema([pa.field("key", pa.binary(), nullable=False), *ENTRY_FIELDS])
URL_SCHEMA = pa.schema([pa.field("key", pa.string(), nullable=False), *ENTRY_FIELDS])
BUCKET_SCHEMA = pa.schema([pa.field("bucket", pa.int64(), nullable=False), *ENTRY_FIELDS])
SUPERSEDED_SCHEMA = pa.schema([("id", pa.string()), ("snapshot", pa.int32()), ("superseded_by", pa.string()), ("rule", pa.string())])


class DedupIndexError(RuntimeError):
    """The index cannot be used by this run (settings differ, damaged, or in use)."""


class IndexLockedError(DedupIndexError):
    """Another run holds the index."""


def index_settings(params) -> dict:
    """What must be equal between the runs sharing an index: the cross-run policy and the
    MinHash layout (band buckets of different layouts never match)."""
    mh = params.minhash
    minhash = None
    if mh is not None:
        bands, rows = mh.band_layout()
        minhash = {
            "ngram": mh.ngram,
            "num_perm": mh.num_perm,
            "seed": mh.seed,
            "scheme": mh.scheme,
            "shingle_hash": mh.shingle_hash,
            "bands": bands,
            "rows": rows,
        }
        if mh.words != "whitespace":  # named only when set: indexes made before the key match as they are
            minhash["words"] = mh.words
    return {"format": INDEX_FORMAT, "index_keep": params.index_keep, "minhash": minhash}


def _differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"dedup.{prefix}{key}: the index has {a!r}, this run asks for {b!r}")
    return out


# --- the lock ---------------------------------------------------------------------------------


def index_lock(home: Store) -> StoreLock:
    """``PATH/LOCK``: created only if absent, naming its holder (curate/store.py)."""
    return StoreLock(home, LOCK_NAME, f"dedup index {home.shown()}")


# --- reading ---------------------------------------------------------------------------------


@dataclass
class EarlierDocuments:
    """The committed entries of an index, one table per rule (empty tables when none)."""

    exact: pa.Table
    url: pa.Table
    buckets: dict[int, pa.Table]  # band -> BUCKET_SCHEMA rows
    snapshots: list[int] = field(default_factory=list)


def committed_parts(path: str) -> list[str]:
    """Folders of the committed parts, in snapshot order."""
    parts = os.path.join(path, "parts")
    if not os.path.isdir(parts):
        return []
    return [os.path.join(parts, name) for name in sorted(os.listdir(parts)) if name.startswith("s") and not name.startswith(".")]


def part_files(folder: str) -> list[str]:
    """The data files of one rule's folder of one part, sorted."""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".parquet") and not f.startswith(("_", ".")))


def _read(folder: str, schema: pa.Schema) -> pa.Table:
    tables = []
    for file in part_files(folder):
        try:
            tables.append(pq.read_table(file, schema=schema))
        except (OSError, pa.ArrowInvalid) as e:
            raise DedupIndexError(f"damaged dedup index file {file}: {e}") from None
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_earlier(path: str, bands: int) -> EarlierDocuments:
    parts = committed_parts(path)
    exact = pa.concat_tables([_read(os.path.join(p, "exact"), EXACT_SCHEMA) for p in parts] or [EXACT_SCHEMA.empty_table()])
    url = pa.concat_tables([_read(os.path.join(p, "url"), URL_SCHEMA) for p in parts] or [URL_SCHEMA.empty_table()])
    buckets = {}
    for band in range(bands):
        tables = [_read(os.path.join(p, "minhash", f"band={band}"), BUCKET_SCHEMA) for p in parts]
        buckets[band] = pa.concat_tables(tables or [BUCKET_SCHEMA.empty_table()])
    snapshots = [int(os.path.basename(p)[1:]) for p in parts]
    return EarlierDocuments(exact, url, buckets, snapshots)


# --- one run's session -----------------------------------------------------------------------


class IndexSession:
    """A run's hold on an index: lock, read, stage the run's survivors, commit or abandon.

    An index in an object store (``s3://...``) is mirrored in a local folder (``path``: under
    ``$CURATE_WORK_DIR`` or ``~/.cache/curate/index``; on a cluster it must be a shared folder):
    committed parts are downloaded once (they never change), the run's part is staged locally,
    and :meth:`commit` uploads its files, then its ``part.json`` last, which is what makes a
    part committed there; a part without it is a dead commit's and is deleted by the next holder.
    """

    def __init__(self, path: str, settings: dict, holder: str, storage_options: StorageOptions | None = None):
        self.home = Store(path, storage_options)  # where the index lives
        self.path = local_cache("index", path) if self.home.remote else path  # where its files are read
        self.settings = settings
        self.holder = holder
        self.lock = index_lock(self.home)
        self.lock_info: dict | None = None
        self.staging: str | None = None
        self.snapshot: int | None = None

    def open(self) -> "IndexSession":
        os.makedirs(self.path, exist_ok=True)
        try:
            self.lock_info = self.lock.acquire(self.holder)
        except LockedError as e:
            raise IndexLockedError(str(e)) from None
        try:
            self._check_settings()
            # Holding the lock, any staging folder is a dead run's: drop it.
            shutil.rmtree(os.path.join(self.path, "staging"), ignore_errors=True)
            if self.home.remote:
                mirror_committed_parts(self.home, self.path)
            taken = [int(os.path.basename(p)[1:]) for p in committed_parts(self.path)]
            self.snapshot = max(taken, default=0) + 1
            self.staging = os.path.join(self.path, "staging", secrets.token_hex(8))
            os.makedirs(self.staging)
        except BaseException:
            self.close()
            raise
        return self

    def _check_settings(self) -> None:
        try:
            stored = self.home.read_json("index.json")
        except ValueError as e:
            raise DedupIndexError(f"damaged dedup index settings {self.home.shown('index.json')}: {e}") from None
        if stored is None:
            self.home.write_bytes(json.dumps(self.settings, indent=1, sort_keys=True).encode(), "index.json")
            return
        problems = _differences(stored, self.settings)
        if problems:
            raise DedupIndexError(f"dedup index {self.home.shown()} was built with other settings: " + "; ".join(problems))

    def write_part(self, exact: pa.Table, url: pa.Table, buckets: dict[int, pa.Table], superseded: pa.Table | None, run: str) -> None:
        """Stage the run's survivors (not visible to anyone until :meth:`commit`)."""
        self._write(exact.cast(EXACT_SCHEMA), "exact")
        self._write(url.cast(URL_SCHEMA), "url")
        for band, table in buckets.items():
            self._write(table.cast(BUCKET_SCHEMA), os.path.join("minhash", f"band={band}"))
        if superseded is not None:  # index_keep: newest
            self._write(superseded.cast(SUPERSEDED_SCHEMA), "superseded")
        self.write_part_info(run, 0 if superseded is None else superseded.num_rows)

    def _write(self, table: pa.Table, folder: str) -> None:
        target = os.path.join(self.staging, folder)
        os.makedirs(target, exist_ok=True)
        pq.write_table(table, os.path.join(target, "part-0.parquet"))

    def folder(self, rule: str) -> str:
        """Where a rule's staged files go (``minhash/band=B`` for a band)."""
        return os.path.join(self.staging, rule)

    def write_part_info(self, run: str, superseded: int) -> None:
        info = {"snapshot": self.snapshot, "run": run, "superseded": superseded, "holder": self.lock_info}
        with open(os.path.join(self.staging, "part.json"), "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=1, sort_keys=True)

    def commit(self) -> int:
        """Publish the staged part (one rename; on an object store, its files then ``part.json``), then release the lock."""
        if self.staging is None or not os.path.exists(os.path.join(self.staging, "part.json")):
            raise DedupIndexError(f"dedup index {self.home.shown()}: nothing staged to commit")
        name = f"s{self.snapshot:06d}"
        if self.home.remote:
            upload_part(self.staging, self.home, name)
        os.makedirs(os.path.join(self.path, "parts"), exist_ok=True)
        os.rename(self.staging, os.path.join(self.path, "parts", name))
        self.staging = None
        snapshot = self.snapshot
        self.close()
        return snapshot

    def close(self) -> None:
        """Drop anything staged and release the lock (a failed or finished run)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self.lock_info is not None:
            self.lock.release()
            self.lock_info = None


# --- an index in an object store ---------------------------------------------------------------


def upload_part(staging: str, home: Store, name: str) -> None:
    """Upload a staged part's data files, then its ``part.json``: only then is it committed."""
    files = [rel for rel in Store(staging).files_under() if not os.path.basename(rel).startswith((".", "_"))]
    home.put_files(staging, sorted(files, key=lambda r: r == "part.json"), "parts", name)


def mirror_committed_parts(home: Store, mirror: str) -> None:
    """Make ``mirror/parts`` hold exactly the committed parts of ``home`` (called holding the lock)."""
    committed = {}
    for name in home.listdir("parts"):
        info = home.read_bytes("parts", name, "part.json")
        if info is None:
            home.delete("parts", name)  # a commit that died before its part.json: never visible
        else:
            committed[name] = info
    local_parts = os.path.join(mirror, "parts")
    os.makedirs(local_parts, exist_ok=True)
    for name in os.listdir(local_parts):
        kept = os.path.join(local_parts, name, "part.json")
        if name not in committed or not os.path.exists(kept) or open(kept, "rb").read() != committed[name]:
            shutil.rmtree(os.path.join(local_parts, name), ignore_errors=True)
    for name in sorted(set(committed) - set(os.listdir(local_parts))):
        part = home.child("parts", name)
        incoming = os.path.join(mirror, "incoming", name)
        shutil.rmtree(incoming, ignore_errors=True)
        for rel in part.files_under():
            target = os.path.join(incoming, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            part.fs.get_file(part.path(*rel.split("/")), target)
        os.rename(incoming, os.path.join(local_parts, name))


# --- matching --------------------------------------------------------------------------------

EARLIER_RULES = ("exact", "url", "minhash")


def _best_earlier(keys: list, snapshots: list, ids: list, index_keep: str) -> dict:
    """key -> (ordering value, id) of the earlier document a match points to.

    ``oldest``: the earliest snapshot; ``newest``: the latest; then the smallest id.
    """
    sign = 1 if index_keep == "oldest" else -1
    best: dict = {}
    for key, snapshot, doc_id in zip(keys, snapshots, ids):
        candidate = (sign * snapshot, doc_id)
        if key not in best or candidate < best[key]:
            best[key] = candidate
    return best


def _lookup(table: pa.Table, key_column: str, index_keep: str) -> dict:
    return _best_earlier(
        table.column(key_column).to_pylist(), table.column("snapshot").to_pylist(), table.column("id").to_pylist(), index_keep
    )


def match_earlier(
    earlier: EarlierDocuments, rows: list[int], exact: list, url: list, buckets: dict[int, dict[int, int]] | None, index_keep: str
) -> dict[int, tuple[str, str, int]]:
    """row -> (rule, earlier id, earlier snapshot) for the given rows that match an earlier document.

    Rules are tried in order exact, url, minhash (a shared band bucket); ``exact``/``url``
    hold one key (or None) per row, ``buckets`` one bucket key per row for each band
    (rows without shingles absent). A row matched by one rule is not tried by the next.
    """
    sign = 1 if index_keep == "oldest" else -1
    found: dict[int, tuple[str, str, int]] = {}
    for rule, keys, table in (("exact", exact, earlier.exact), ("url", url, earlier.url)):
        if keys is None or table.num_rows == 0:
            continue
        best = _lookup(table, "key", index_keep)
        for row in rows:
            hit = best.get(keys[row]) if row not in found and keys[row] is not None else None
            if hit is not None:
                found[row] = (rule, hit[1], sign * hit[0])
    if buckets:
        matched: dict[int, tuple] = {}
        for band, table in earlier.buckets.items():
            if table.num_rows == 0:
                continue
            best = _lookup(table, "bucket", index_keep)
            for row, bucket in buckets[band].items():
                hit = best.get(bucket) if row not in found else None
                if hit is not None and (row not in matched or hit < matched[row]):
                    matched[row] = hit
        for row, hit in matched.items():
            found[row] = ("minhash", hit[1], sign * hit[0])
    return found
