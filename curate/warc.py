"""Read WARC files into ``RECORD_SCHEMA`` batches of decoded HTML, surviving broken archives.

What is kept: ``response`` records whose HTTP status is 200 and whose Content-Type is
HTML (``text/html``, ``application/xhtml+xml``). The HTTP payload is de-chunked and
decompressed (gzip, deflate, br) by warcio, then decoded to text in the order a browser
uses (see :func:`decode_html`); ``charset`` records which rule decided.

Robustness. Web archives in the wild are truncated, mis-chunked or plain wrong. This
reader never raises on file content:

* A file that is not a WARC (no ``WARC/`` version line at its start) is reported by name:
  counter ``warc.not_warc_files``, a line in ``problems`` and a logging warning.
  ARC files (the pre-2009 Internet Archive format, never used by Common Crawl) are
  deliberately *not* read: warcio's ARC parser accepts almost any text as an ARC record,
  so reading them would turn garbage into documents. They are reported as not WARC.
* A record warcio cannot parse (garbage, a wrong Content-Length, a truncated or corrupt
  gzip member) is counted as ``warc.errors:<reason>`` with a ``problems`` line naming the
  file and offset; the reader then *resynchronises*: it scans forward for the next
  record start (the next gzip member that inflates to ``WARC/`` in a per-record gzipped
  file, the next line starting ``WARC/1.`` in an uncompressed one) and continues there,
  so records before and after a broken one are kept.
* A ``.warc.gz`` compressed as one single gzip stream instead of one member per record
  (valid, but unseekable) is read through a streaming decompressor; offsets in problem
  lines are then offsets in the decompressed stream, which the line says.

* A ``.warc.gz`` whose gzip members are cut in the wrong places (a record split over two
  members) but whose concatenated stream is a valid WARC is read decompressed the same way.
* A record whose block ends before its Content-Length (a truncated file), or whose header
  has no Content-Length (warcio would then swallow the rest of the file), is an error and
  is not emitted. When warcio stops quietly (it treats some damage as end of file) but a
  record starts further on, that is counted as ``warc.errors:stopped_early`` and reading
  resumes there.

Counters: ``warc.files``, ``warc.records`` (all whole WARC records), ``warc.responses``,
``warc.kept``, ``warc.skipped:<reason>`` (``not_html``, ``status_<code>``, ``no_http``,
``revisit``, ``empty``), ``warc.errors:<reason>`` (``invalid_record``,
``incomplete_record``, ``no_content_length``, ``corrupt_gzip``, ``stopped_early``,
``garbage_at_start``), ``warc.warnings:bad_content_length``, ``warc.resyncs``,
``warc.not_warc_files``, ``warc.single_gzip_stream_files``, ``warc.misaligned_gzip_files``,
``warc.charset:<rule>`` (``bom``, ``http``, ``meta``, ``detected``, ``fallback``).

Offsets are byte offsets in the file as stored, so ``warcio extract FILE OFFSET`` shows
the record.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import logging
import re
import zlib
from typing import BinaryIO, Callable, Generator, Iterator

import pyarrow as pa

from curate.schema import RECORD_SCHEMA, document_id
from curate.storage import StorageReadError, file_name
from curate.stage import Counters

log = logging.getLogger(__name__)

HTML_CONTENT_TYPES = ("text/html", "application/xhtml+xml")
GZIP_MAGIC = b"\x1f\x8b\x08"
# How far to look for a <meta charset> declaration (browsers look at 1024 bytes; pages with
# long inline scripts in <head> put it later, so we look further).
META_SNIFF_BYTES = 4096
# Charset detection is the slow path; it looks at this much of the body.
DETECT_BYTES = 65536
SCAN_CHUNK = 1 << 20
# How far into a file whose start is damaged we look for a first record before calling it
# "not a WARC".
SNIFF_LIMIT = 1 << 20

_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]{1,40})""", re.IGNORECASE)
_WARC_VERSION_LINE = re.compile(rb"WARC/\d+\.\d+\r?\n")

# WHATWG Encoding Standard: these labels mean windows-1252 in a browser, and pages written
# for browsers rely on it (curly quotes in 0x80-0x9f declared as latin-1).
_WHATWG_ALIASES = {
    "iso-8859-1": "windows-1252",
    "iso8859-1": "windows-1252",
    "latin1": "windows-1252",
    "latin-1": "windows-1252",
    "l1": "windows-1252",
    "us-ascii": "windows-1252",
    "ascii": "windows-1252",
    "x-sjis": "shift_jis",
    "gb2312": "gbk",
    "x-gbk": "gbk",
    "iso-8859-9": "windows-1254",
    "tis-620": "windows-874",
    "ks_c_5601-1987": "euc-kr",
    "utf8": "utf-8",
}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig", "utf-8"), (codecs.BOM_UTF16_LE, "utf-16", "utf-16le"), (codecs.BOM_UTF16_BE, "utf-16", "utf-16be"))


def note_problem(problems: list[str] | None, line: str) -> None:
    log.warning(line)
    if problems is not None:
        problems.append(line)


# --- charset ------------------------------------------------------------------------------


def _normalize_charset(label: str | bytes | None) -> str | None:
    """A declared charset label -> a label Python can decode with, or None if unknown."""
    if label is None:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    label = label.strip().strip("\"'").lower()
    if not label:
        return None
    label = _WHATWG_ALIASES.get(label, label)
    # A page that *declares* UTF-16 in an ASCII-compatible <meta> cannot be UTF-16.
    if label.startswith("utf-16") or label.startswith("utf-32"):
        return None
    try:
        codecs.lookup(label)
    except LookupError:
        return None
    return label


def _http_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return value
    return None


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode an HTML body; returns ``(text, how)`` where ``how`` is ``"<rule>:<charset>"``.

    Order: byte-order mark, the HTTP ``Content-Type`` charset, the page's ``<meta charset>``
    / ``http-equiv`` declaration, statistical detection (charset-normalizer), and finally
    UTF-8 with replacement characters. A declared charset is used only if the body decodes
    cleanly with it; a wrong declaration (common: "iso-8859-1" on UTF-8 pages) falls through
    to the next rule.
    """
    for bom, codec, name in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace"), f"bom:{name}"
    candidates = [("http", _normalize_charset(_http_charset(content_type)))]
    match = _META_CHARSET.search(body[:META_SNIFF_BYTES])
    candidates.append(("meta", _normalize_charset(match.group(1)) if match else None))
    for rule, charset in candidates:
        if charset is None:
            continue
        try:
            return body.decode(charset), f"{rule}:{charset}"
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return body.decode("utf-8"), "detected:utf-8"
    except UnicodeDecodeError:
        pass
    import charset_normalizer

    best = charset_normalizer.from_bytes(body[:DETECT_BYTES]).best()
    if best is not None:
        charset = _normalize_charset(best.encoding) or best.encoding
        try:
            return body.decode(charset, errors="replace"), f"detected:{charset}"
        except LookupError:
            pass
    return body.decode("utf-8", errors="replace"), "fallback:utf-8"


# --- finding record starts ------------------------------------------------------------------


def _is_gzip_warc_member(raw: bytes) -> bool:
    try:
        head = zlib.decompressobj(31).decompress(raw, 64)
    except zlib.error:
        return False
    return head.lstrip(b"\r\n").startswith(b"WARC/")


def _find_record_start(fh: BinaryIO, start: int, gzip_members: bool, limit: int | None = None) -> int | None:
    """Offset of the first plausible record start at or after ``start`` (None at EOF).

    ``limit``: give up after scanning this many bytes.
    """
    pattern = GZIP_MAGIC if gzip_members else b"WARC/"
    keep = 4096  # bytes carried between chunks so a match across a boundary is seen whole
    position = start
    fh.seek(position)
    buffer = b""
    buffer_start = position
    while True:
        chunk = fh.read(SCAN_CHUNK)
        at_eof = not chunk
        buffer += chunk
        search_from = 0
        while True:
            hit = buffer.find(pattern, search_from)
            if hit < 0:
                break
            if not at_eof and len(buffer) - hit < keep:
                break  # not enough bytes after the hit to verify it; read more first
            candidate = buffer[hit : hit + keep]
            if gzip_members:
                ok = _is_gzip_warc_member(candidate)
            else:
                ok = (hit == 0 and buffer_start == start) or buffer[hit - 1 : hit] == b"\n"
                ok = ok and _WARC_VERSION_LINE.match(candidate) is not None
            if ok:
                return buffer_start + hit
            search_from = hit + 1
        if at_eof or (limit is not None and buffer_start + len(buffer) - start > limit):
            return None
        # Keep the tail (a partial pattern or an unverified hit) for the next round.
        cut = max(0, min(len(buffer) - keep, search_from if search_from else len(buffer) - keep))
        buffer_start += cut
        buffer = buffer[cut:]


# --- the reader -----------------------------------------------------------------------------


Opener = Callable[[str], BinaryIO]


def open_local(path: str) -> BinaryIO:
    return open(path, "rb")


class _Layer:
    """The byte stream records are parsed from: the file itself or its decompressed content.

    ``opener`` opens the stored bytes (a local file, or a ranged object-store reader: it must
    seek); ``shown`` is the file's name in problem lines (a URL without its secrets).
    """

    def __init__(self, path: str, kind: str, opener: Opener = open_local, shown: str | None = None):
        self.path, self.kind = path, kind  # kind: "gzip_members", "plain", "gzip_stream"
        self.opener, self.shown = opener, shown or path

    def with_kind(self, kind: str) -> "_Layer":
        return _Layer(self.path, kind, self.opener, self.shown)

    def open(self) -> BinaryIO:
        if self.kind == "gzip_stream":
            return _Gunzipped(self.opener(self.path))  # type: ignore[return-value]
        return self.opener(self.path)

    @property
    def offset_note(self) -> str:
        return " (offset in the decompressed stream)" if self.kind == "gzip_stream" else ""


class _Gunzipped(gzip.GzipFile):
    """A gzip stream over an opened file that closes that file too (GzipFile leaves a given file open)."""

    def __init__(self, raw: BinaryIO):
        super().__init__(fileobj=raw, mode="rb")
        self.source_file = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.source_file.close()


def _sniff_format(path: str, opener: Opener = open_local) -> tuple[str | None, str, int]:
    """(layer kind or None if not a WARC, description, offset of the first record)."""
    with opener(path) as fh:
        head = fh.read(4096)
        if not head:
            return None, "empty file", 0
        inner = b""
        if head.startswith(b"\x1f\x8b"):
            try:
                inner = zlib.decompressobj(31).decompress(head, 64)
            except zlib.error:
                pass
        for layer_kind, content in (("gzip_members", inner), ("plain", head)):
            content = content.lstrip(b"\r\n")
            if content.startswith(b"WARC/"):
                return layer_kind, "", 0
            if content.startswith(b"filedesc://"):
                return None, "ARC file (the pre-WARC format; not read, see curate.warc)", 0
        # Damage at the very start (a broken first member, stray bytes): a WARC is still one
        # if a record starts soon after.
        found = []
        for gzip_members in (True, False):
            offset = _find_record_start(fh, 0, gzip_members, limit=SNIFF_LIMIT)
            if offset is not None:
                found.append((offset, "gzip_members" if gzip_members else "plain"))
    if found:
        offset, layer_kind = min(found)
        return layer_kind, f"{offset} unreadable bytes before the first record", offset
    return None, f"no WARC record in its first {SNIFF_LIMIT} bytes", 0


class _MissingLength(Exception):
    """A record header without Content-Length (garbage in the header block)."""


class _IncompleteRecord(Exception):
    """A record whose block ends before its Content-Length: truncated or split across gzip members."""


def _decompresses_as_one_stream(layer: "_Layer") -> bool:
    try:
        with layer.with_kind("gzip_stream").open() as gz:
            while gz.read(SCAN_CHUNK):
                pass
    except StorageReadError:
        raise
    except (OSError, EOFError, zlib.error):
        return False
    return True


def _error_reason(exc: BaseException) -> str:
    if isinstance(exc, _IncompleteRecord):
        return "incomplete_record"
    if isinstance(exc, _MissingLength):
        return "no_content_length"
    text = str(exc).lower()
    if "non-chunked gzip" in text:
        return "non_chunked_gzip"
    if isinstance(exc, (zlib.error, EOFError)) or "compressed file ended" in text:
        return "corrupt_gzip"
    if "invalid warc record" in text or "unknown archive format" in text:
        return "invalid_record"
    if "content-length" in text or "length" in text:
        return "bad_length"
    return type(exc).__name__.lower()


def _target_uri(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):  # WARC/1.1 drafts wrote <uri>
        value = value[1:-1]
    return value or None


def read_warc(
    path: str,
    source: str,
    counters: Counters | None = None,
    batch_size: int = 256,
    problems: list[str] | None = None,
    opener: Opener = open_local,
    shown: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the HTML responses of one WARC file as ``RECORD_SCHEMA`` batches.

    ``opener`` opens ``path`` for reading (seekable); ``shown`` names it in problem lines.
    Never raises on file content (see the module docstring); an unreadable path (missing,
    permission denied, an object store that keeps failing) still raises ``OSError``.
    """
    counters = counters if counters is not None else Counters()
    shown = shown or path
    warc_file = file_name(path)
    counters["warc.files"] += 1
    kind, description, first_record = _sniff_format(path, opener)
    if kind is None:
        counters["warc.not_warc_files"] += 1
        note_problem(problems, f"{shown}: not a WARC file: {description}")
        return
    if first_record:
        counters["warc.errors:garbage_at_start"] += 1
        note_problem(problems, f"{shown}: offset 0: {description}")
    rows: list[dict] = []
    layer = _Layer(path, kind, opener, shown)
    for row in _iterate_responses(layer, source, warc_file, counters, problems, start=first_record):
        rows.append(row)
        if len(rows) >= batch_size:
            yield pa.RecordBatch.from_pylist(rows, schema=RECORD_SCHEMA)
            rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=RECORD_SCHEMA)


def _quietly(step: Callable[[], object], warnings_out: list[str]) -> object:
    # warcio writes "record not followed by newline" notices to stderr; capture them so they
    # become counters and problem lines instead of noise in Spark executor logs.
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        try:
            return step()
        finally:
            if captured.getvalue().strip():
                warnings_out.append(captured.getvalue())


_WARCIO_OFFSET = re.compile(r"Offset:\s*(\d+)")


def _record_start_after(layer: _Layer, offset: int, counters: Counters | None = None) -> int | None:
    scan = layer.open()
    try:
        return _find_record_start(scan, offset + 1, gzip_members=layer.kind == "gzip_members")
    except StorageReadError:
        raise
    except Exception as exc:  # a truncated gzip stream can fail while scanning too
        if counters is not None:
            counters[f"warc.errors:{_error_reason(exc)}"] += 1
        return None
    finally:
        scan.close()


def _iterate_responses(
    layer: _Layer,
    source: str,
    warc_file: str,
    counters: Counters,
    problems: list[str] | None,
    skip_records: int = 0,
    start: int | None = 0,
) -> Iterator[dict]:
    """Rows of the kept responses; the first ``skip_records`` records are passed over unseen."""
    seen = [0]  # records seen so far, counted across resyncs
    while start is not None:
        failed_at = yield from _responses_from(layer, start, source, warc_file, counters, problems, skip_records, seen)
        if failed_at is None:
            return
        start = _record_start_after(layer, failed_at, counters)
        if start is not None:
            counters["warc.resyncs"] += 1


def _responses_from(
    layer: _Layer,
    start: int,
    source: str,
    warc_file: str,
    counters: Counters,
    problems: list[str] | None,
    skip_records: int,
    seen: list[int],
) -> Generator[dict, None, int | None]:
    """Rows of the kept responses from the record at ``start`` on; returns where an unreadable
    record stopped the reading, or None at the end of the file."""
    from warcio.archiveiterator import ArchiveIterator

    fh = layer.open()
    try:
        fh.seek(start)
        iterator = ArchiveIterator(fh)
        record_start = start
        while True:
            notices: list[str] = []
            try:
                record = _quietly(lambda: next(iterator, None), notices)
                if record is None:
                    return _stopped_early(layer, iterator.offset, counters, problems)
                # After next() the previous record is consumed and iterator.offset is where
                # this one began.
                record_start = iterator.offset
                seen[0] += 1
                if seen[0] <= skip_records:
                    continue
                row = _quietly(lambda: _record_to_row(record, record_start, source, warc_file, counters), notices)
            except StorageReadError:
                raise  # the store failed, not the file: nothing after this point is known
            except Exception as exc:  # anything warcio or zlib raises on bad bytes
                reason = _error_reason(exc)
                resume = _decompressed_resume(layer, reason, seen[0], iterator.offset, counters, problems)
                if resume is not None:
                    stream = layer.with_kind("gzip_stream")
                    yield from _iterate_responses(stream, source, warc_file, counters, problems, skip_records=resume)
                    return None
                return _unreadable_record(layer, exc, reason, record_start, iterator.offset, counters, problems)
            finally:
                _count_notices(notices, layer, counters, problems)
            if row is not None:
                yield row
    finally:
        fh.close()


def _unreadable_record(
    layer: _Layer, exc: Exception, reason: str, record_start: int, offset: int, counters: Counters, problems: list[str] | None
) -> int:
    """Count and name a record that could not be read; returns where it failed."""
    # offset (warcio's): the end of the last record it finished, i.e. where the broken one
    # starts (or the start of the one it failed to finish).
    failed_at = record_start if reason in ("incomplete_record", "no_content_length") else max(record_start, offset)
    counters[f"warc.errors:{reason}"] += 1
    note_problem(problems, f"{layer.shown}: offset {failed_at}{layer.offset_note}: unreadable record ({reason}: {_first_line(exc)})")
    return failed_at


def _stopped_early(layer: _Layer, stopped: int, counters: Counters, problems: list[str] | None) -> int | None:
    """Where reading failed when warcio ended quietly, or None at the real end of the file.

    warcio also ends quietly on a member it cannot inflate; if a record starts after where it
    stopped, that was damage, not the end.
    """
    if _record_start_after(layer, stopped) is None:
        return None
    counters["warc.errors:stopped_early"] += 1
    note_problem(
        problems, f"{layer.shown}: offset {stopped}{layer.offset_note}: unreadable record (reading stopped before the end of the file)"
    )
    return stopped


def _decompressed_resume(
    layer: _Layer, reason: str, records_seen: int, offset: int, counters: Counters, problems: list[str] | None
) -> int | None:
    """How many records to skip when the file must be re-read as one decompressed stream, else None."""
    if layer.kind != "gzip_members":
        return None
    if reason in ("incomplete_record", "invalid_record") and _decompresses_as_one_stream(layer):
        # Members cut in the wrong places (a record split over two members): the concatenated
        # stream is a valid WARC, so read that instead, from the record that was split.
        counters["warc.misaligned_gzip_files"] += 1
        note_problem(problems, f"{layer.shown}: gzip members do not align with records (offset {offset}); reading it decompressed")
        return records_seen - 1 if reason == "incomplete_record" else records_seen
    if reason == "non_chunked_gzip":
        # A valid WARC in one gzip stream: re-read it from the start through a streaming
        # decompressor. The record being parsed when warcio noticed was not emitted: skip only
        # the ones before it.
        counters["warc.single_gzip_stream_files"] += 1
        note_problem(problems, f"{layer.shown}: compressed as one gzip stream, not one member per record; reading it decompressed")
        return records_seen
    return None


def _count_notices(notices: list[str], layer: _Layer, counters: Counters, problems: list[str] | None) -> None:
    for notice in notices:
        found = _WARCIO_OFFSET.search(notice)
        # (warcio's other notices, e.g. spaces in a target URI, go through logging.)
        if "not followed by newline" in notice and found:
            counters["warc.warnings:bad_content_length"] += 1
            note_problem(
                problems,
                f"{layer.shown}: offset {found.group(1)}{layer.offset_note}: record not followed by a blank line (wrong Content-Length?)",
            )


def _first_line(exc: BaseException) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in " ".join(str(exc).split()))
    return (text[:160] + "...") if len(text) > 160 else (text or type(exc).__name__)


def _drain(stream) -> bytes:
    return stream.read()


def _record_to_row(record, offset: int, source: str, warc_file: str, counters: Counters) -> dict | None:
    """The row for one kept response, or None; counts what it saw only once the record is whole."""
    seen: list[str] = ["warc.records"]
    row = None
    if record.rec_headers.get_header("Content-Length") is None:
        # Without a length warcio reads to the end of the file, swallowing every later record.
        raise _MissingLength("record has no Content-Length")
    if record.rec_type != "response":
        if record.rec_type == "revisit":
            seen.append("warc.skipped:revisit")
        _drain(record.raw_stream)
    else:
        seen.append("warc.responses")
        row, reason = _response_row(record, offset, source, warc_file)
        seen.append(reason)
    # LimitReader.limit: bytes of the block still owed after reading to the end.
    if getattr(record.raw_stream, "limit", 0) > 0:
        raise _IncompleteRecord(f"block ends {record.raw_stream.limit} bytes before its Content-Length")
    for key in seen:
        counters[key] += 1
    if row is not None:
        counters["warc.kept"] += 1
    return row


def _response_row(record, offset: int, source: str, warc_file: str) -> tuple[dict | None, str]:
    """(row or None, the counter that says what happened)."""
    http = record.http_headers
    if http is None:
        _drain(record.raw_stream)
        return None, "warc.skipped:no_http"
    status = http.get_statuscode()
    if status != "200":
        _drain(record.raw_stream)
        return None, f"warc.skipped:status_{status or 'none'}"
    content_type = http.get_header("Content-Type")
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime not in HTML_CONTENT_TYPES:
        _drain(record.raw_stream)
        return None, "warc.skipped:not_html"
    try:
        body = record.content_stream().read()
    except StorageReadError:
        raise
    except Exception:
        # A payload that claims gzip/br but is not: keep the bytes as they are.
        body = _drain(record.raw_stream)
    if not body.strip():
        return None, "warc.skipped:empty"
    html, how = decode_html(body, content_type)
    record_id = record.rec_headers.get_header("WARC-Record-ID")
    row = {
        "id": document_id(record_id) if record_id else document_id(source, warc_file, str(offset)),
        "source": source,
        "url": _target_uri(record.rec_headers.get_header("WARC-Target-URI")),
        "warc_date": record.rec_headers.get_header("WARC-Date"),
        "warc_file": warc_file,
        "html": html,
        "charset": how,
    }
    return row, f"warc.charset:{how.split(':')[0]}"
