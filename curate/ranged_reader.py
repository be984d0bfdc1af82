"""Read one object where it lives (s3://, gs://, https://, file://) by byte ranges, surviving throttling and faults.

Why not ``fs.open``: fsspec's HTTP filesystem has no retries, and every store's file object
either downloads a whole file or restarts a broken stream from a buffer boundary without
checking what came back. A throttled Common Crawl endpoint answers ``503 SlowDown`` (S3) or
``403`` (the CDN in front of data.commoncrawl.org) with an XML or HTML body; a reader that does
not check the status hands that body to the WARC parser.

:func:`open_ranged` returns a seekable, read-only binary file (:class:`RangedReader`) that
fetches ``block_size`` byte ranges, one at a time, plus at most one block ahead on a
background thread so the network overlaps parsing: never more than two blocks in memory.
Every response is checked before its bytes are used: an error status is an exception, never
data; a server that ignores ``Range`` (200 with the whole body) or announces a different range
is refused before its body is read; a body shorter than the range is an ``incomplete`` read.
A broken body keeps the bytes that arrived and the retry asks for the rest of the range only.

Retries: exponential backoff with full jitter (``uniform(0, min(max, base * 2**n))``) on
throttling (429, 503, S3 ``SlowDown``), CDN 403 throttles (a bounded number of times, then
``forbidden``), 5xx, refused or reset connections, incomplete bodies and timeouts; within
``max_attempts`` per request and ``retry_budget_s`` seconds of backoff sleep per file. 404 fails
at once (``not_found``), as do other 4xx and a file that changed while it was read (``changed``).

Object versions: HTTP reads send ``If-Match: <ETag>`` (a strong ETag only; a changed object
answers 412), S3 reads send ``VersionId`` when the bucket is versioned (the old version keeps
being read) and ``IfMatch: <ETag>`` otherwise, local files compare size and mtime before every
block. Other protocols (gcsfs, ...) go through ``fs.cat_file`` and are not pinned: fsspec's
``cat_file`` does not return the response's headers, so a change of content of the same size
there is not detected.

Counters: ``storage.requests`` (every request sent, HEADs included), ``storage.bytes`` (body bytes
received, partial ones included), ``storage.retries:<reason>`` (``throttled``, ``forbidden``,
``server_error``, ``connection``, ``incomplete``, ``timeout``), ``storage.resumes`` (retries
that continue a file after its first byte instead of starting it over)
and ``storage.backoff_seconds`` (total backoff sleep, rounded per file). A request given up on
raises a :class:`curate.storage.StorageReadError` (a :class:`RangedReadError`, which also gives
the byte offset); the caller counts the file as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import io
import logging
import os
import random
import re
import tempfile
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import urlsplit

import fsspec
from fsspec.asyn import sync
from fsspec.exceptions import FSTimeoutError

from curate.stage import Counters
from curate.storage import REDACTED, StorageReadError, display_url

try:  # slots shared by the processes of one machine; without fcntl (Windows) the cap is off
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MiB = 1 << 20
# Body bytes are appended to the block in pieces this big, so a broken body keeps what arrived.
CHUNK = 256 * 1024
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class ReadPolicy:
    """How hard a reader tries, and how much it holds."""

    block_size: int = 8 * MiB
    max_attempts: int = 12  # per request
    retry_budget_s: float = 600.0  # backoff sleep one file (or one fetch_small) may spend
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    request_timeout_s: float = 60.0  # per request; a timed-out body keeps its bytes and resumes
    max_concurrent_requests: int | None = None  # per machine, across processes
    prefetch: bool = True  # one block fetched ahead on a background thread
    # A CDN answers 403 when it throttles, an object store when the credentials are wrong:
    # retried this many times in all, then the read fails with reason ``forbidden``.
    forbidden_attempts: int = 4
    # Processes whose policies share this name share the cap's slots.
    concurrency_name: str = "curate-storage"


class RangedReadError(StorageReadError):
    """curate.storage's StorageReadError (what callers catch), with the byte offset where reading failed.

    Its message names the URL as :func:`curate.storage.display_url` shows it (no password, no
    signature), the reason, the offset and the attempts.
    """

    def __init__(self, url: str, reason: str, attempts: int, offset: int, detail: str = ""):
        shown = display_url(url)
        query = urlsplit(url).query
        # error texts of aiohttp quote the URL they asked for, query (signatures) included
        detail = detail.replace(url, shown).replace(query, REDACTED) if query else detail.replace(url, shown)
        message = f"{shown}: {reason} at byte {offset} after {attempts} attempt(s){': ' + detail if detail else ''}"
        super().__init__(url, reason, message, attempts)
        self.offset, self.detail = offset, detail

    def __reduce__(self):  # Spark ships executor exceptions to the driver by pickling them
        return (type(self), (self.url, self.reason, self.attempts, self.offset, self.detail))


class ResponseProblem(Exception):
    """A response that must not be used as data, with the reason it is retried or not."""

    def __init__(self, reason: str, retryable: bool, detail: str):
        super().__init__(detail)
        self.reason, self.retryable = reason, retryable


# --- classifying failures -------------------------------------------------------------------

THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "ServiceUnavailable"}


def reason_for_status(status: int | None, code: str | None = None) -> tuple[str, bool]:
    """(reason, retryable) for an HTTP status and/or an S3 error code."""
    status = status or 0
    if code in THROTTLE_CODES or status in (429, 503):
        return "throttled", True
    if status == 403 or code == "AccessDenied":
        return "forbidden", True  # bounded by ReadPolicy.forbidden_attempts
    if status in (404, 410) or code in ("NoSuchKey", "NoSuchBucket", "NotFound"):
        return "not_found", False
    if status == 412 or code == "PreconditionFailed":
        return "changed", False
    if status == 416 or code == "InvalidRange":
        return "bad_range", False
    if status >= 500 or code in ("InternalError", "RequestTimeout"):
        return "server_error", True
    return "client_error", False


def _optional_types(module: str, names: tuple[str, ...]) -> tuple[type, ...]:
    try:
        imported = __import__(module, fromlist=list(names))
    except ImportError:
        return ()
    return tuple(getattr(imported, name) for name in names if hasattr(imported, name))


# Order matters: botocore's ReadTimeoutError is also an HTTPClientError, aiohttp's
# ServerTimeoutError also a connection error; a timeout is named a timeout.
TIMEOUT_TYPES = (TimeoutError, asyncio.TimeoutError, FSTimeoutError) + _optional_types("botocore.exceptions", ("ConnectTimeoutError",))
INCOMPLETE_TYPES = (
    (http.client.IncompleteRead,)
    + _optional_types("aiohttp", ("ClientPayloadError",))
    + _optional_types("botocore.exceptions", ("IncompleteReadError", "ResponseStreamingError", "ResponseParserError"))
)
CONNECTION_TYPES = (
    (ConnectionError,)
    + _optional_types("aiohttp", ("ClientConnectionError",))
    + _optional_types("botocore.exceptions", ("ConnectionError", "HTTPClientError"))
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        yield current
        current = current.__cause__ or current.__context__
        seen += 1


def _status_in(exc: BaseException) -> tuple[int | None, str | None] | None:
    """The HTTP status / S3 error code an exception (or its cause) carries, if any."""
    for e in _chain(exc):
        response = getattr(e, "response", None)  # botocore ClientError (s3fs sets it as __cause__)
        if isinstance(response, dict) and "Error" in response:
            return response.get("ResponseMetadata", {}).get("HTTPStatusCode"), response["Error"].get("Code")
        status = getattr(e, "status", None)  # aiohttp ClientResponseError
        if isinstance(status, int) and type(e).__module__.startswith("aiohttp"):
            return status, None
    return None


def classify(exc: BaseException) -> tuple[str, bool]:
    """(reason, retryable) for an exception raised while asking a store for bytes."""
    if isinstance(exc, ResponseProblem):
        return exc.reason, exc.retryable
    status = _status_in(exc)
    if status is not None:
        return reason_for_status(*status)
    for e in _chain(exc):
        if isinstance(e, TIMEOUT_TYPES):
            return "timeout", True
        if isinstance(e, INCOMPLETE_TYPES):
            return "incomplete", True
        if isinstance(e, CONNECTION_TYPES):
            return "connection", True
    if isinstance(exc, FileNotFoundError):
        return "not_found", False
    if isinstance(exc, PermissionError):  # a local file: waiting does not grant permission
        return "forbidden", False
    return "other", False


# --- counters shared by the foreground and the prefetch thread ---------------------------------

_COUNTERS_LOCK = threading.Lock()


def _count(counters: Counters, key: str, n: float = 1) -> None:
    if n:
        with _COUNTERS_LOCK:
            counters[key] += n


# --- a cap on concurrent requests per machine -------------------------------------------------


@contextlib.contextmanager
def request_slot(cap: int | None, name: str = "curate-storage") -> Iterator[None]:
    """Hold one of ``cap`` slots shared by every process of this machine (a flock on a slot file).

    flock locks belong to one open file description, so threads of one process that open a
    slot each compete like processes do; a crashed process releases its slot with its files.
    """
    if cap is None or fcntl is None:
        yield
        return
    folder = os.path.join(tempfile.gettempdir(), f"{name}-request-slots")
    os.makedirs(folder, exist_ok=True)
    order = random.sample(range(cap), cap)  # spread waiters over the slots
    while True:
        for slot in order:
            fd = os.open(os.path.join(folder, f"slot-{slot}"), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield
                return
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        time.sleep(random.uniform(0.005, 0.02))


# --- transports: how one kind of store answers "how big" and "these bytes" ------------------------


class FsspecTransport:
    """Any fsspec filesystem, through ``info`` and ``cat_file``: whole ranges, no resume within one."""

    def __init__(self, fs: fsspec.AbstractFileSystem, timeout_s: float):
        self.fs = fs
        # fsspec's sync() takes a timeout for async filesystems; local ones do not accept one
        self.call_kwargs = {"timeout": timeout_s} if getattr(fs, "async_impl", False) else {}
        self.local = bool(getattr(fs, "local_file", False))

    def describe(self, url: str) -> tuple[int, Any]:
        info = self.fs.info(url, **self.call_kwargs)
        if info.get("size") is None:
            raise ResponseProblem("no_size", False, "the store gives no size for this object")
        # a local file is pinned by size and mtime, cheap to compare before every block
        return int(info["size"]), (info["size"], info.get("mtime")) if self.local else None

    def fetch(self, url: str, start: int, end: int, size: int, version: Any, sink: bytearray) -> None:
        if version is not None:
            info = self.fs.info(url)
            if (info["size"], info.get("mtime")) != version:
                raise ResponseProblem("changed", False, "the file changed while it was read")
        data = self.fs.cat_file(url, start=start, end=end, **self.call_kwargs)
        if len(data) > end - start:
            raise ResponseProblem("range_ignored", False, f"asked for {end - start} bytes, got {len(data)}")
        sink += data


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def check_content_range(header: str | None, start: int, end: int, size: int) -> None:
    """Refuse a partial response whose Content-Range is not the range asked for (before its body is read)."""
    match = _CONTENT_RANGE.fullmatch((header or "").strip())
    if match is None:
        raise ResponseProblem("range_ignored", False, f"asked for bytes {start}-{end - 1}, Content-Range was {header!r}")
    first, last, total = int(match[1]), int(match[2]), match[3]
    if total != "*" and int(total) != size:
        raise ResponseProblem("changed", False, f"object size is now {total}, was {size}")
    if (first, last) != (start, end - 1):
        raise ResponseProblem("range_ignored", False, f"asked for bytes {start}-{end - 1}, got {first}-{last}")


class HttpTransport:
    """fsspec's HTTPFileSystem, through its aiohttp session, so the status and headers are seen before the body."""

    def __init__(self, fs: fsspec.AbstractFileSystem, timeout_s: float):
        self.fs, self.timeout_s = fs, timeout_s
        self.request_kwargs = dict(fs.kwargs)  # storage_options' request settings (auth, headers, ...)
        self.request_kwargs.pop("allow_redirects", None)  # HEAD follows redirects like GET does
        # identity: a range of a compressed representation is not a range of the file
        self.headers = {**self.request_kwargs.pop("headers", {}), "Accept-Encoding": "identity"}

    def _run(self, coroutine_function: Callable[[], Any]) -> Any:
        # the timeout is applied inside the loop (wait_for), so when sync() returns the request
        # is over and nothing appends to the block any more
        async def bounded():
            return await asyncio.wait_for(coroutine_function(), self.timeout_s)

        return sync(self.fs.loop, bounded)

    def describe(self, url: str) -> tuple[int, Any]:
        async def head():
            session = await self.fs.set_session()
            async with session.head(self.fs.encode_url(url), headers=self.headers, allow_redirects=True, **self.request_kwargs) as r:
                if r.status >= 400:
                    raise ResponseProblem(*reason_for_status(r.status), f"HEAD answered {r.status}")
                return r.headers.get("Content-Length"), r.headers.get("ETag")

        length, etag = self._run(head)
        if length is None:
            raise ResponseProblem("no_size", False, "HEAD gave no Content-Length")
        # a weak ETag never matches If-Match; such objects are read unpinned
        return int(length), etag if etag and not etag.startswith("W/") else None

    def fetch(self, url: str, start: int, end: int, size: int, version: Any, sink: bytearray) -> None:
        headers = {**self.headers, "Range": f"bytes={start}-{end - 1}"}
        if version:
            headers["If-Match"] = version

        async def get():
            session = await self.fs.set_session()
            async with session.get(self.fs.encode_url(url), headers=headers, **self.request_kwargs) as r:
                if r.status >= 400:
                    body = await r.content.read(300)  # for the message only, never as data
                    raise ResponseProblem(*reason_for_status(r.status), f"GET answered {r.status}: {body[:200]!r}")
                if r.status == 200 and (start, end) == (0, size) and r.content_length == size:
                    pass  # the range was the whole object: a 200 with all of it is the same answer
                elif r.status != 206:
                    raise ResponseProblem("range_ignored", False, f"asked for a range, the server answered {r.status}")
                else:
                    check_content_range(r.headers.get("Content-Range"), start, end, size)
                async for chunk in r.content.iter_chunked(CHUNK):
                    sink.extend(chunk)

        self._run(get)


_warned_of_hidden_retries = False


def warn_of_hidden_retries(botocore_retries: dict[str, Any]) -> None:
    """Say once per process when botocore retries S3 requests itself, under our retries."""
    global _warned_of_hidden_retries
    if botocore_retries.get("total_max_attempts") == 1 or _warned_of_hidden_retries:
        return
    _warned_of_hidden_retries = True
    log.warning(
        "botocore retries every S3 request itself (%s) under curate's retries, multiplying them; "
        "build the filesystem with curate.storage.quiet_storage_options (curate.storage.filesystem(..., ranged_reads=True))",
        botocore_retries,
    )


class S3Transport:
    """s3fs, through its botocore client, so one request is one request (s3fs's own retries are skipped)."""

    def __init__(self, fs: fsspec.AbstractFileSystem, timeout_s: float):
        self.fs, self.timeout_s = fs, timeout_s
        self.extra = dict(getattr(fs, "req_kw", {}))  # requester-pays and the like

    def _run(self, coroutine_function: Callable[..., Any], *args: Any) -> Any:
        async def bounded():
            await self.fs.set_session()
            return await asyncio.wait_for(coroutine_function(*args), self.timeout_s)

        return sync(self.fs.loop, bounded)

    def describe(self, url: str) -> tuple[int, Any]:
        bucket, key, version_id = self.fs.split_path(url)

        async def head():
            client = await self.fs.get_s3(bucket)
            warn_of_hidden_retries(client.meta.config.retries or {})
            pin = {"VersionId": version_id} if version_id else {}
            return await client.head_object(Bucket=bucket, Key=key, **pin, **self.extra)

        response = self._run(head)
        version_id = version_id or response.get("VersionId")
        pin = {"VersionId": version_id} if version_id and version_id != "null" else {"IfMatch": response.get("ETag")}
        return int(response["ContentLength"]), {k: v for k, v in pin.items() if v}

    def fetch(self, url: str, start: int, end: int, size: int, version: Any, sink: bytearray) -> None:
        bucket, key, _ = self.fs.split_path(url)

        async def get():
            client = await self.fs.get_s3(bucket)
            response = await client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **(version or {}), **self.extra)
            body = response["Body"]
            try:
                check_content_range(response.get("ContentRange"), start, end, size)
                while chunk := await body.read(CHUNK):
                    sink.extend(chunk)
            finally:
                body.close()

        self._run(get)


def transport_for(fs: fsspec.AbstractFileSystem, timeout_s: float) -> FsspecTransport | HttpTransport | S3Transport:
    """The most careful way this library lets us talk to ``fs``."""
    kind = type(fs).__module__ + "." + type(fs).__name__
    if kind.startswith("s3fs.") and type(fs).__name__ == "S3FileSystem":
        return S3Transport(fs, timeout_s)
    if kind == "fsspec.implementations.http.HTTPFileSystem":
        return HttpTransport(fs, timeout_s)
    return FsspecTransport(fs, timeout_s)


# --- retries ---------------------------------------------------------------------------------


class Requests:
    """The requests for one object, with its retry budget: shared by a reader and its prefetch thread."""

    def __init__(self, url: str, fs: fsspec.AbstractFileSystem, policy: ReadPolicy, counters: Counters):
        self.url, self.policy, self.counters = url, policy, counters
        self.transport = transport_for(fs, policy.request_timeout_s)
        self.size, self.version = 0, None
        self.backoff_spent = 0.0
        self.lock = threading.Lock()
        self.rng = random.Random()  # jitter differs between processes on purpose

    def describe(self) -> int:
        self.size, self.version = self.retrying(0, lambda: self.transport.describe(self.url))
        return self.size

    def fetch_block(self, start: int, end: int, cancelled: threading.Event | None = None) -> bytearray:
        """Bytes ``[start, end)``, exactly; a broken body is continued where it broke."""
        sink = bytearray()

        def attempt() -> None:
            self.transport.fetch(self.url, start + len(sink), end, self.size, self.version, sink)
            if len(sink) < end - start:
                raise ResponseProblem("incomplete", True, f"body ended after {len(sink)} of {end - start} bytes")
            if len(sink) > end - start:
                raise ResponseProblem("range_ignored", False, f"body longer than the {end - start} bytes asked for")

        self.retrying(start, attempt, sink, cancelled)
        return sink

    def retrying(self, offset: int, attempt: Callable[[], T], sink: bytearray | None = None, cancelled: threading.Event | None = None) -> T:
        attempts = forbidden = 0
        while True:
            attempts += 1
            received = len(sink) if sink is not None else 0
            try:
                with request_slot(self.policy.max_concurrent_requests, self.policy.concurrency_name):
                    _count(self.counters, "storage.requests")
                    return attempt()
            except Exception as exc:
                reason, retryable = classify(exc)
                error = exc
            finally:
                if sink is not None:
                    _count(self.counters, "storage.bytes", len(sink) - received)
            at = offset + (len(sink) if sink is not None else 0)
            forbidden += reason == "forbidden"
            gave_up = not retryable or attempts >= self.policy.max_attempts or forbidden >= self.policy.forbidden_attempts
            delay = None if gave_up or (cancelled is not None and cancelled.is_set()) else self.next_delay(attempts)
            if delay is None:
                raise RangedReadError(self.url, reason, attempts, at, str(error)[:300]) from error
            _count(self.counters, f"storage.retries:{reason}")
            _count(self.counters, "storage.resumes", int(at > 0))
            (cancelled or threading.Event()).wait(delay)

    def next_delay(self, attempts: int) -> float | None:
        """Full-jitter backoff within what is left of the file's budget; None when it is spent."""
        cap = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2 ** (attempts - 1))
        with self.lock:
            left = self.policy.retry_budget_s - self.backoff_spent
            if left <= 0:
                return None
            delay = min(self.rng.uniform(0, cap), left)
            before = round(self.backoff_spent)
            self.backoff_spent += delay
            _count(self.counters, "storage.backoff_seconds", round(self.backoff_spent) - before)
        return delay


# --- the file object --------------------------------------------------------------------------


class RangedReader(io.RawIOBase):
    """A read-only, seekable binary file over one object, read by aligned blocks of ``policy.block_size``."""

    def __init__(self, requests: Requests, policy: ReadPolicy):
        super().__init__()
        self.name = requests.url
        self.size = requests.size
        self.requests, self.policy = requests, policy
        self.block_size = policy.block_size
        self._pos = 0
        self._block_start, self._block = -1, bytearray()
        # the block being fetched ahead: (start, result, "stop" flag)
        self._ahead: tuple[int, Future, threading.Event] | None = None
        self.peak_buffered_bytes = 0  # the most block bytes held (and in flight) at once

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("seek on a closed file")
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            block = self._block_at(self._pos)
            offset = self._pos - self._block_start
            take = min(len(view) - done, len(block) - offset)
            view[done : done + take] = memoryview(block)[offset : offset + take]
            done += take
            self._pos += take
        return done

    def read(self, size: int | None = -1) -> bytes:
        # whole reads from the block (one copy), not through readinto into a fresh buffer (two)
        wanted = max(self.size - self._pos, 0) if size is None or size < 0 else min(size, max(self.size - self._pos, 0))
        parts = []
        while wanted > 0:
            block = self._block_at(self._pos)
            offset = self._pos - self._block_start
            take = min(wanted, len(block) - offset)
            parts.append(bytes(memoryview(block)[offset : offset + take]))
            self._pos += take
            wanted -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def _block_at(self, pos: int) -> bytearray:
        if self.closed:
            raise ValueError("read of a closed file")
        start = pos - pos % self.block_size
        if start == self._block_start:
            return self._block
        self._block_start, self._block = -1, bytearray()  # let go first: two blocks at most
        if self._ahead is not None and self._ahead[0] == start:
            block = self._ahead[1].result()  # its StorageReadError surfaces here, where the bytes are needed
            self._ahead = None
        else:
            self._drop_ahead(wait=True)
            block = self.requests.fetch_block(start, min(start + self.block_size, self.size))
        self._block_start, self._block = start, block
        self._fetch_ahead(start + self.block_size)
        ahead = min(self.block_size, self.size - self._ahead[0]) if self._ahead else 0
        self.peak_buffered_bytes = max(self.peak_buffered_bytes, len(block) + ahead)
        return block

    def _fetch_ahead(self, start: int) -> None:
        if not self.policy.prefetch or start >= self.size:
            return
        result: Future = Future()
        stop = threading.Event()
        end = min(start + self.block_size, self.size)

        def run() -> None:
            if result.set_running_or_notify_cancel():
                try:
                    result.set_result(self.requests.fetch_block(start, end, stop))
                except BaseException as exc:  # handed to the reader, raised when it needs the block
                    result.set_exception(exc)

        # a daemon thread: a read stuck in a request never holds up the interpreter's exit
        threading.Thread(target=run, name=f"prefetch {self.name}@{start}", daemon=True).start()
        self._ahead = (start, result, stop)

    def _drop_ahead(self, wait: bool) -> None:
        if self._ahead is None:
            return
        _, result, stop = self._ahead
        self._ahead = None
        stop.set()  # no more retries or backoff sleeps for a block nobody will read
        if wait:  # the request in flight ends first, so a seek never holds three blocks
            with contextlib.suppress(Exception):
                result.result()

    def close(self) -> None:
        if not self.closed:
            self._drop_ahead(wait=False)
            self._block_start, self._block = -1, bytearray()
        super().close()


def open_ranged(
    url: str, fs: fsspec.AbstractFileSystem, policy: ReadPolicy | None = None, counters: Counters | None = None
) -> RangedReader:
    """Open ``url`` on ``fs`` for reading by ranges; one request (HEAD) now, for its size and version.

    Raises :class:`RangedReadError` (a ``curate.storage.StorageReadError``) when even that fails (``not_found``, ``forbidden``, ...).
    """
    policy = policy or ReadPolicy()
    requests = Requests(url, fs, policy, counters if counters is not None else Counters())
    requests.describe()
    return RangedReader(requests, policy)


def fetch_small(url: str, fs: fsspec.AbstractFileSystem, policy: ReadPolicy | None = None, counters: Counters | None = None) -> bytes:
    """A whole small object (a listing, a manifest), checked and retried like the blocks of a reader."""
    policy = policy or ReadPolicy()
    requests = Requests(url, fs, policy, counters if counters is not None else Counters())
    size = requests.describe()
    return bytes(requests.fetch_block(0, size)) if size else b""
