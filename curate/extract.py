"""HTML -> main text: the ``extract`` stage, turning ``RECORD_SCHEMA`` rows into documents.

Three extractors:

* ``blocks`` (default, :func:`html_to_text_blocks`): a small trained classifier keeps or drops
  each text block (``curate.extract_blocks``, model and card in ``models/extractor/``). On held-out
  WCXB pages word-F1 0.882 against trafilatura's 0.830 (every page type above it), 91.9% of the
  trafilatura-eval snippets against 91.5%, 6-9x trafilatura's pages/s (``bench/README.md``,
  issue #19).
* ``trafilatura`` (:func:`html_to_text`): trafilatura's main-content extraction
  with its fallbacks (readability, jusText) on, tables kept, and **comments left out**.
  Reader comments are user-generated text below the article; the evaluation set's
  ``without`` snippets count them as boilerplate, and leaving them out is what moves us
  above plain ``trafilatura.extract`` (see ``bench/README.md`` for the figures).
  Like trafilatura we drop invisible soft hyphens (U+00AD), which would otherwise split
  words for the tokenizer.
* ``fast`` (:func:`html_to_text_fast`): resiliparse's ``extract_plain_text`` with its
  main-content heuristics, about 10-20x faster, noticeably less precise (keeps more menus
  and footers).

Speed: the first trafilatura call in a process swaps trafilatura's regex-heavy boilerplate
XPaths for compiled Python selections that return the same nodes
(``curate.speedups.compiled_xpaths``, switched off with ``CURATE_SPEEDUP_COMPILED_XPATHS=off``);
the extracted text is unchanged and pages take about 0.6x the time.

Guarding a Spark task against pathological pages, by rules that read only the page's bytes
(so a page gets the same verdict on an idle laptop and on a starved cluster, and two runs of
one recipe give byte-identical shards under any load). Each rule has its own reason, with the
measured value in ``rejected_value``; the defaults reject none of the 3,132 real pages of the
shared web corpus (``bench/extract_limits.py``, figures in ``docs/recipes.md``):

* ``extract.too_large``: more than ``max_html_chars`` characters (the page is not parsed);
* ``extract.too_many_elements``: more than ``max_elements`` start tags (``<`` + a letter).
  trafilatura's work grows with the square of the inline elements in one paragraph (20,000
  ``<span>``: 16 s of CPU), the ``blocks`` extractor's linearly;
* ``extract.too_deep``: containers (``div``, ``section``, ``table``, ``ul``, ``span`` ...)
  nested deeper than ``max_depth`` (2,000, under libxml2's 2,048 levels), counted on the tag
  stream (an end tag closes the innermost open one). resiliparse, which takes the pages libxml2
  cannot nest, is quadratic in depth.

A wall-clock or CPU-time limit cannot be part of these rules: the same page would pass on one
machine and fail on a busier one. ``timeout_s`` stays as an opt-in last resort for archives that
might hang a task (default 0: off). A page it stops is rejected as ``extract.timeout`` and
counted in ``extract.nonreproducible_pages``, which the run's manifest carries in the extract
stage's funnel entry: a run with a nonzero count may differ from another run of the same recipe.
The limit is the process's CPU time (``ITIMER_PROF``, a ``SIGPROF`` signal, main thread only).

Rejections: ``extract.too_large``, ``extract.too_many_elements``, ``extract.too_deep``,
``extract.timeout``, ``extract.failed`` (the extractor raised), ``extract.no_text`` (nothing
extracted), ``extract.too_short`` (fewer than ``min_chars`` characters; ``rejected_value`` =
the length). ``text`` stays null for rejected rows except ``too_short``, which keeps the short
text for inspection.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
import pyarrow as pa

from curate.schema import DOCUMENT_SCHEMA, RECORD_SCHEMA, reject
from curate.stage import Stage, StageError

log = logging.getLogger(__name__)

_TRAFILATURA_CONFIG = None


def _trafilatura_config():
    global _TRAFILATURA_CONFIG
    if _TRAFILATURA_CONFIG is None:
        from trafilatura.settings import use_config

        from curate.speedups import compiled_xpaths

        # trafilatura's boilerplate XPaths compiled to Python: same nodes, ~1.6x faster pages
        # (a speed-up with its own switch; off, trafilatura runs as shipped)
        compiled_xpaths.install()

        config = use_config()
        # trafilatura's own timeout uses signal.alarm too; ours wraps the whole call instead.
        config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
        _TRAFILATURA_CONFIG = config
    return _TRAFILATURA_CONFIG


def _as_text(html: str | bytes) -> str:
    if isinstance(html, bytes):
        from curate.warc import decode_html

        return decode_html(html)[0]
    return html


def _tidy(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.replace("\u00ad", "").strip()
    return text or None


def html_to_text(
    html: str | bytes,
    url: str | None = None,
    *,
    favor: Literal["balanced", "precision", "recall"] = "balanced",
    include_comments: bool = False,
    fallbacks: bool = True,
) -> str | None:
    """Main text of a page with trafilatura (our default settings), or None if there is none.

    Paragraphs are separated by newlines. ``bytes`` are decoded like the WARC reader does.
    ``favor`` maps to trafilatura's ``favor_precision`` / ``favor_recall`` (FineWeb used
    precision); on the evaluation set both score below "balanced" overall. ``fallbacks=False``
    skips trafilatura's second opinion (readability and jusText run on every page and
    compared with its own result): 1.3-1.9x faster, 0.6-0.9 points fewer snippets right on
    the evaluation set (``bench/README.md``).
    """
    import trafilatura

    html = _as_text(html)
    if not html.strip():
        return None
    text = trafilatura.extract(
        html,
        url=url,
        include_comments=include_comments,
        include_tables=True,
        favor_precision=favor == "precision",
        favor_recall=favor == "recall",
        deduplicate=False,
        fast=not fallbacks,
        config=_trafilatura_config(),
    )
    return _tidy(text)


def html_to_text_blocks(html: str | bytes, url: str | None = None, model_path: str | None = None) -> str | None:
    """Main text with the trained block classifier (``curate.extract_blocks``; ``model_path``: another model file)."""
    from curate.extract_blocks import extract_main_text, shared_model

    html = _as_text(html)
    if not html.strip():
        return None
    return extract_main_text(html, shared_model(model_path))


def html_to_text_fast(html: str | bytes, url: str | None = None) -> str | None:
    """Main text with resiliparse (fast mode): main-content heuristics, no alt texts or forms."""
    from resiliparse.extract.html2text import extract_plain_text

    html = _as_text(html)
    if not html.strip():
        return None
    text = extract_plain_text(html, main_content=True, alt_texts=False, noscript=False, form_fields=False)
    return _tidy(text)


EXTRACTORS = {"trafilatura": html_to_text, "fast": html_to_text_fast, "blocks": html_to_text_blocks}


START_TAG = re.compile(r"<[A-Za-z]")
# Containers whose end tag HTML requires: on the tag stream their nesting is the tree's (elements
# with optional end tags, <p> <li> <td> ..., would pile up); measured against lxml's trees of the
# shared web corpus, the deepest real page reads 471 here, 56 in the tree.
CONTAINER_TAG = re.compile(
    r"<(/?)(?:div|section|article|nav|header|footer|main|aside|table|ul|ol|span|blockquote|form|figure|details)\b", re.IGNORECASE
)


def element_count(html: str) -> int:
    """Start tags of a page: ``<`` followed by a letter, wherever it stands (inside comments and scripts too);
    end tags, ``<!--`` and a lone ``<`` are not counted."""
    return len(START_TAG.findall(html))


def container_depth(html: str) -> int:
    """Deepest nesting of containers on the page's tag stream; an end tag closes the innermost open one."""
    depth = deepest = 0
    for match in CONTAINER_TAG.finditer(html):
        if match.group(1):
            depth -= depth > 0
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def page_limit(html: str, max_html_chars: int, max_elements: int, max_depth: int) -> tuple[str, float] | None:
    """(rule, measured value) of the first limit a page breaks, or None: sizes in the page's bytes only."""
    if len(html) > max_html_chars:
        return "too_large", float(len(html))
    elements = element_count(html)
    if elements > max_elements:
        return "too_many_elements", float(elements)
    if elements <= max_depth:  # each level opens an element: no need to scan for depth
        return None
    depth = container_depth(html)
    if depth > max_depth:
        return "too_deep", float(depth)
    return None


class ExtractTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ExtractTimeout` in the block after ``seconds`` of the process's CPU time (main thread only; 0: no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    fired: list[bool] = []

    def expire(signum, frame):
        fired.append(True)
        raise ExtractTimeout()

    # CPU time, not wall time: a page's verdict must not depend on the machine's load.
    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    if fired:
        # The signal landed where its exception was swallowed (a library's `except Exception`,
        # a garbage-collector callback): the page still ran out of time.
        raise ExtractTimeout()


@dataclass
class ExtractParams:
    extractor: Literal["trafilatura", "fast", "blocks"] = "blocks"
    min_chars: int = 200  # shorter extracted texts are rejected as "extract.too_short"
    max_html_chars: int = 8_000_000  # longer pages are not parsed: "extract.too_large"
    max_elements: int = 30_000  # more start tags: "extract.too_many_elements"
    max_depth: int = 2_000  # containers nested deeper: "extract.too_deep" (libxml2 holds 2,048 levels)
    timeout_s: float = 0.0  # opt-in last resort, CPU s per page; > 0 makes the output depend on load
    favor: Literal["balanced", "precision", "recall"] = "balanced"  # trafilatura only
    include_comments: bool = False  # trafilatura only: keep reader comments below articles
    fallbacks: bool = True  # trafilatura only: also run readability/jusText and keep the better text
    model_path: str = ""  # blocks only: the model file; "" = the shipped models/extractor/model.npz

    def validate(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"extractor must be one of {sorted(EXTRACTORS)}, got {self.extractor!r}")
        if self.extractor != "trafilatura" and (self.favor != "balanced" or self.include_comments or not self.fallbacks):
            raise ValueError("favor, include_comments and fallbacks apply to extractor 'trafilatura' only")
        if self.model_path and self.extractor != "blocks":
            raise ValueError("model_path applies to extractor 'blocks' only")
        if self.extractor == "blocks" and not self.model_path:
            from curate.extract_blocks import model_path

            # resolved where the recipe is read (the driver): executors of a cluster get this path,
            # and the run's manifest records which model file extracted its text
            self.model_path = model_path()
        if self.min_chars < 0:
            raise ValueError(f"min_chars must be >= 0, got {self.min_chars}")
        for name in ("max_html_chars", "max_elements", "max_depth"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.timeout_s < 0:
            raise ValueError(f"timeout_s must be >= 0, got {self.timeout_s}")


class ExtractStage(Stage):
    """RECORD_SCHEMA rows (decoded HTML) -> DOCUMENT_SCHEMA rows (main text).

    Counters: ``extract.pages``, ``extract.html_chars``, ``extract.failed``, ``extract.empty``,
    one per page limit (``extract.too_large``, ``extract.too_many_elements``, ``extract.too_deep``),
    and with the opt-in ``timeout_s``: ``extract.timeouts`` and ``extract.nonreproducible_pages``.
    """

    kind = "extract"
    Params = ExtractParams
    input_schema = RECORD_SCHEMA

    def check(self) -> None:
        probe = "<html><body><article><p>" + "Extraction check sentence. " * 20 + "</p></article></body></html>"
        try:
            text = self._extract(probe, None)
        except Exception as e:  # a broken install (lxml, resiliparse wheels) shows up here
            raise StageError(f"extract: extractor {self.params.extractor!r} failed on a probe page: {e}") from e
        if not text or "Extraction check sentence." not in text:
            raise StageError(f"extract: extractor {self.params.extractor!r} returned no text for a probe page")

    def setup(self) -> None:
        if self.params.extractor == "trafilatura":
            _trafilatura_config()
        elif self.params.extractor == "blocks":
            from curate.extract_blocks import shared_model

            shared_model(self.params.model_path or None)  # a missing or stale model file fails here, before any page

    def _extract(self, html: str, url: str | None) -> str | None:
        params = self.params
        extract = EXTRACTORS[params.extractor]
        if params.extractor == "trafilatura":
            return extract(html, url, favor=params.favor, include_comments=params.include_comments, fallbacks=params.fallbacks)
        if params.extractor == "blocks":
            return extract(html, url, model_path=params.model_path or None)
        return extract(html, url)

    def _extract_one(self, html: str | None, url: str | None) -> tuple[str | None, str | None, float | None]:
        """(text, rejection rule or None, rejected value)."""
        counters = self.counters
        if html is None or not html.strip():
            counters["extract.empty"] += 1
            return None, "no_text", None
        params = self.params
        broken = page_limit(html, params.max_html_chars, params.max_elements, params.max_depth)
        if broken is not None:
            counters[f"extract.{broken[0]}"] += 1
            return None, broken[0], broken[1]
        try:
            with time_limit(params.timeout_s):
                text = self._extract(html, url)
        except ExtractTimeout:
            counters["extract.timeouts"] += 1
            counters["extract.nonreproducible_pages"] += 1  # in the manifest's funnel: this run depends on load
            log.warning(
                "extract: gave up on %s after %.1f CPU s; this run's output now depends on the machine's load", url, params.timeout_s
            )
            return None, "timeout", params.timeout_s
        except RecursionError:
            counters["extract.failed"] += 1
            return None, "failed", None
        except Exception as e:  # one bad page must not fail the Spark task
            counters["extract.failed"] += 1
            log.warning("extract: %s failed on %s: %s", self.params.extractor, url, e)
            return None, "failed", None
        if text is None:
            return None, "no_text", None
        if len(text) < self.params.min_chars:
            return text, "too_short", float(len(text))
        return text, None, None

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        htmls = batch.column("html").to_pylist()
        urls = batch.column("url").to_pylist()
        texts: list[str | None] = []
        reasons: list[str | None] = []
        values: list[float | None] = []
        for html, url in zip(htmls, urls):
            self.counters["extract.pages"] += 1
            self.counters["extract.html_chars"] += len(html or "")
            text, rule, value = self._extract_one(html, url)
            texts.append(text)
            reasons.append(None if rule is None else f"{self.name}.{rule}")
            values.append(value)
        n = batch.num_rows
        columns = {
            "id": batch.column("id"),
            "source": batch.column("source"),
            "url": batch.column("url"),
            "warc_date": batch.column("warc_date"),
            "warc_file": batch.column("warc_file"),
            "text": pa.array(texts, type=pa.string()),
        }
        arrays = []
        for field in DOCUMENT_SCHEMA:
            if field.name in columns:
                arrays.append(columns[field.name])
            elif field.name == "scores":
                arrays.append(pa.array([[] for _ in range(n)], type=field.type))
            elif field.name == "flags":
                arrays.append(pa.array([[] for _ in range(n)], type=field.type))
            else:
                arrays.append(pa.nulls(n, type=field.type))
        documents = pa.RecordBatch.from_arrays(arrays, schema=DOCUMENT_SCHEMA)
        mask = np.array([r is not None for r in reasons], dtype=bool)
        return reject(documents, mask, reasons, values)
