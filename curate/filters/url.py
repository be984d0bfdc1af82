"""URL blocklist: remove documents whose URL's host is a listed domain (or a subdomain of one),
``url_filter.domain``, or whose lower-cased URL contains a listed substring,
``url_filter.substring``. ``rejected_value`` is 1.0 (a match, not a measure).

Lists are text files, one entry a line, ``#`` starts a comment. The shipped default list
(``curate/data/url_blocklist_*.txt``) is tiny; name real lists with ``domain_files`` and
``substring_files``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from curate.schema import reject
from curate.stage import Stage, StageError


@dataclass
class UrlFilterParams:
    domain_files: list[str] = field(default_factory=list)
    substring_files: list[str] = field(default_factory=list)
    use_default_lists: bool = True


def read_list(path) -> list[str]:
    """Entries of a blocklist file (lower-cased; blank lines and ``#`` comments skipped).

    ``path`` may be an importlib.resources Traversable: inside a ``--py-files`` zip the
    shipped lists are no file on disk."""
    text = path.read_text(encoding="utf-8") if hasattr(path, "read_text") else open(path, encoding="utf-8").read()
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            entries.append(entry)
    return entries


def url_host(url: str) -> str:
    """Lower-cased host of ``url`` without port and a leading ``www.``; "" if there is none."""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname or ""
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


class UrlFilterStage(Stage):
    kind = "url_filter"
    Params = UrlFilterParams

    def _files(self) -> tuple[list[str], list[str]]:
        domains = list(self.params.domain_files)
        substrings = list(self.params.substring_files)
        if self.params.use_default_lists:
            data = resources.files("curate").joinpath("data")
            domains.insert(0, data.joinpath("url_blocklist_domains.txt"))
            substrings.insert(0, data.joinpath("url_blocklist_substrings.txt"))
        return domains, substrings

    def _load(self) -> tuple[frozenset[str], list[str]]:
        domain_files, substring_files = self._files()
        domains: set[str] = set()
        substrings: list[str] = []
        for path in domain_files + substring_files:
            try:
                entries = read_list(path)
            except FileNotFoundError:
                raise StageError(f"{self.name}: blocklist file not found: {path}") from None
            except (OSError, UnicodeDecodeError) as e:
                raise StageError(f"{self.name}: cannot read blocklist file {path}: {e}") from None
            if path in domain_files:
                domains.update(url_host(e) or e for e in entries)
            else:
                substrings.extend(entries)
        return frozenset(domains), sorted(set(substrings))

    def check(self) -> None:
        self._load()

    def setup(self) -> None:
        self._domains, self._substrings = self._load()

    def blocked(self, url: str | None) -> str | None:
        """The rule that blocks ``url`` ("domain" or "substring"), or None."""
        if not url:
            return None
        host = url_host(url)
        if host:
            parts = host.split(".")
            for i in range(len(parts) - 1):
                if ".".join(parts[i:]) in self._domains:
                    return "domain"
        lowered = url.lower()
        for entry in self._substrings:
            if entry in lowered:
                return "substring"
        return None

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        urls = batch.column("url").to_pylist()
        rules = [self.blocked(u) for u in urls]
        mask = np.array([r is not None for r in rules], dtype=bool)
        reasons = [f"{self.name}.{r}" if r else None for r in rules]
        self.counters["urls_missing"] += sum(1 for u in urls if not u)
        return reject(batch, mask, reasons, [1.0] * len(urls))
