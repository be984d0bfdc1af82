"""Where bytes live: local paths and object-store URLs (``s3://``, ``gs://``, ``https://``, ...).

Every input path and every output folder of a run goes through this module, so the rest of
curate asks one question (:func:`is_remote`) and never imports fsspec itself.

* A plain path or a ``file://`` URL is local: read with ``open``, written under a temporary
  name and renamed (POSIX rename is atomic within a folder).
* Any other URL is opened with fsspec, with the recipe's ``storage_options`` for its protocol
  (``{s3: {endpoint_url: ..., anon: false}}``) on top of what the protocol reads from the
  standard environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``,
  ``GOOGLE_APPLICATION_CREDENTIALS``, ...).

Secrets: options are handed to fsspec and nowhere else. :func:`redacted_options` and
:func:`display_url` are what the manifest, the report, problem lines and logs may show.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

StorageOptions = dict[str, dict[str, Any]]

# Option keys that say where, never who: shown as they are; any other key's value is hidden.
PUBLIC_OPTION_KEYS = frozenset(
    {"endpoint_url", "anon", "region_name", "requester_pays", "use_ssl", "project", "default_block_size", "version_aware", "timeout"}
)
REDACTED = "<redacted>"
# Query parameters of pre-signed URLs (S3 SigV4 and SigV2, GCS, Azure SAS) that grant access.
_SECRET_QUERY = re.compile(
    r"^(x-amz-(signature|credential|security-token)|x-goog-(signature|credential)|signature|sig|token|key|awsaccesskeyid)$", re.I
)

_filesystems: dict[str, Any] = {}


class StorageReadError(OSError):
    """A stored file that could not be read, after the retries its policy allows.

    ``reason``: ``not_found``, ``forbidden``, ``throttled``, ``changed``, ... (a counter name).
    The WARC reader never takes it for damaged content: it ends the file's reading.
    """

    def __init__(self, url: str, reason: str, message: str, attempts: int = 1, detail: str = ""):
        super().__init__(message)
        self.url, self.reason, self.attempts = url, reason, attempts
        self.detail = detail  # what the store or the disk said, without secrets

    def __reduce__(self):  # Spark ships executor exceptions to the driver by pickling them
        return (type(self), (self.url, self.reason, str(self), self.attempts, self.detail))


def protocol_of(path: str) -> str:
    """``s3`` for ``s3://bucket/key``; ``file`` for a plain path or a ``file://`` URL."""
    head, sep, _ = path.partition("://")
    return head.lower() if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", head) else "file"


def is_remote(path: str) -> bool:
    return protocol_of(path) != "file"


def local_path(path: str) -> str:
    """A local path or ``file://`` URL as an absolute local path."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    return os.path.abspath(path)


def options_for(path: str, storage_options: StorageOptions | None) -> dict[str, Any]:
    """The fsspec options of ``path``'s protocol (``https`` falls back to ``http``'s and back)."""
    options = storage_options or {}
    protocol = protocol_of(path)
    for key in (protocol, {"https": "http", "http": "https", "s3a": "s3", "gcs": "gs", "gs": "gcs"}.get(protocol)):
        if key and key in options:
            return dict(options[key])
    return {}


def filesystem(path: str, storage_options: StorageOptions | None = None, ranged_reads: bool = False):
    """The fsspec filesystem for ``path`` (one per protocol and options, per process).

    ``ranged_reads``: for curate/ranged_reader.py, which retries by itself: the client's own
    hidden retries are turned off (:func:`quiet_storage_options`); listings and writes keep them.
    """
    import fsspec

    protocol = protocol_of(path)
    options = options_for(path, storage_options)
    if ranged_reads:
        options = quiet_storage_options(protocol, options)
    key = protocol + ":" + json.dumps(options, sort_keys=True, default=str)
    fs = _filesystems.get(key)
    if fs is None:
        # skip_instance_cache: our own cache is keyed by the options; fsspec's would also
        # share a filesystem between two option sets that compare equal after coercion.
        fs = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
        _filesystems[key] = fs
    return fs


def quiet_storage_options(protocol: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``storage_options`` with the store client's own hidden retries turned off, for reads through this module.

    botocore (legacy mode, s3fs's default) sends a throttled or failed request up to 5 times
    by itself: under our 12 attempts that is 60 requests, with backoff we neither see nor count.
    s3fs adds its own 5 attempts per call (and ``cat_file`` nests two such wrappers); the reads
    of this module call the botocore client directly and skip them, listings keep them. Only
    botocore's are turned off here. Explicit settings of the caller win.
    """
    options = dict(storage_options or {})
    if protocol in ("s3", "s3a"):
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
        options["config_kwargs"] = config
    return options


def full_url(fs, path: str) -> str:
    """A path as fsspec lists it (``bucket/key``) -> the URL with its protocol."""
    return fs.unstrip_protocol(path) if "://" not in path else path


def expand_pattern(pattern: str, storage_options: StorageOptions | None = None) -> list[str]:
    """The files a path or glob names, sorted: local paths absolute, URLs whole."""
    if not is_remote(pattern):
        matches = glob.glob(local_path(pattern), recursive=True)
        return sorted(os.path.abspath(m) for m in matches if os.path.isfile(m))
    fs = filesystem(pattern, storage_options)
    if glob.has_magic(pattern.split("://", 1)[1]):
        if protocol_of(pattern) in ("http", "https"):
            raise ValueError(f"{display_url(pattern)}: an HTTP server cannot be listed; name the files or give a listing")
        found = fs.glob(pattern, detail=True)
        return sorted(full_url(fs, name) for name, info in found.items() if info.get("type") != "directory")
    return [pattern]  # one named object: its absence is reported when it is read


def display_url(path: str) -> str:
    """A URL as the manifest, the report and log lines may show it: no user:password, no signatures."""
    if not is_remote(path):
        return path
    parts = urlsplit(path)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode([(k, REDACTED if _SECRET_QUERY.match(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redacted_options(storage_options: StorageOptions | None) -> StorageOptions:
    """Storage options with every value that could be a secret replaced (for the manifest)."""
    out: StorageOptions = {}
    for protocol, options in sorted((storage_options or {}).items()):
        out[protocol] = {}
        for key, value in sorted(options.items()):
            if key in PUBLIC_OPTION_KEYS:
                out[protocol][key] = display_url(value) if isinstance(value, str) else value
            else:
                out[protocol][key] = REDACTED
    return out


def url_digest(url: str) -> str:
    """A short stable name for a URL (local work folders of object-store outputs)."""
    return hashlib.sha256(display_url(url).encode()).hexdigest()[:16]


def local_cache(kind: str, url: str) -> str:
    """The local folder kept for an object-store location: ``$CURATE_WORK_DIR/KIND/<digest>``
    (default root ``~/.cache/curate``). On a cluster, point ``CURATE_WORK_DIR`` at a shared folder."""
    root = os.environ.get("CURATE_WORK_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "curate")
    return os.path.join(root, kind, url_digest(url))


def file_name(path: str) -> str:
    """The last part of a path or URL, without a URL's query (``warc_file`` of a document)."""
    return urlsplit(path).path.rsplit("/", 1)[-1] if is_remote(path) else os.path.basename(path)
