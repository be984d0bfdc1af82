"""What the bench scripts share: where things are, how a figure is printed and timed, and the
cached text of the shared corpora.

Scripts run as ``.venv/bin/python bench/NAME.py``, so bench/ is on ``sys.path`` and ``from common
import ...`` finds this module. Importing it also puts the repository first on ``sys.path``, so
that ``curate`` and ``trainer`` are the packages even where bench/ holds a script of the same
name (bench/trainer.py) or the interpreter has no editable install of them.

Datasets the scripts build, one place each:

* WARCs like a Common Crawl segment: ``bench/make_warc.py``;
* near-duplicate sets with known clusters: ``bench/near_dups.py``;
* the labelled PII sets under ``tests/data/pii``: ``bench/pii_set.py``;
* main text of the shared corpora, cached in ``bench/out``: :func:`web_texts` (the web corpus,
  fast extractor) and :func:`eval_page_texts` (the 290 trafilatura-eval pages, trafilatura).
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] != str(ROOT):
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"  # git-ignored: inputs the scripts build, caches, raw output
PRODUCT_PYTHON = ROOT / ".venv" / "bin" / "python"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"  # curate + the peers (make bench-env)

T = TypeVar("T")


def shared_data() -> Path:
    """The shared data folder: ``$CURATE_SHARED_DATA``, else ``<repo>/../shared/data``, else
    ``/work/shared/data`` (the one rule, ``curate.extract_eval.default_data_dir``)."""
    from curate.extract_eval import default_data_dir

    return Path(default_data_dir(str(ROOT)))


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages, to print beside every figure."""
    return [round(x, 2) for x in os.getloadavg()]


def emit(**figures) -> None:
    """One measurement as one JSON line (what bench/README.md's figures are read from)."""
    print(json.dumps(figures), flush=True)


def cpu_timed(function: Callable[[], T]) -> tuple[float, T]:
    """(CPU seconds of this process, result) of one call: a loaded machine stretches wall time, not CPU time."""
    started = time.process_time()
    result = function()
    return time.process_time() - started, result


def cached_jsonl(path: Path, build: Callable[[], list[dict]]) -> list[dict]:
    """The rows in ``path`` (JSON lines); built by ``build()`` and written there first when missing."""
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]
    rows = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return rows


def web_texts(data: Path | None = None) -> list[dict]:
    """[{url, text, warc_date}] of every HTML response of the shared web corpus
    (``web/web-*.warc.gz``, 3,132 pages), main text by the fast extractor; cached."""

    def build() -> list[dict]:
        from curate.extract import html_to_text_fast
        from curate.warc import read_warc

        rows = []
        for path in sorted((data or shared_data()).joinpath("web").glob("web-*.warc.gz")):
            for batch in read_warc(str(path), "web"):
                for record in batch.to_pylist():
                    text = html_to_text_fast(record["html"] or "", record["url"]) or ""
                    rows.append({"url": record["url"], "text": text, "warc_date": record["warc_date"]})
        return rows

    return cached_jsonl(OUT / "web_texts.jsonl", build)


def eval_pages(data: Path | None = None) -> list[tuple[str, str, str]]:
    """(file name, URL, HTML) of the 290 trafilatura-eval pages, in file-name order. The HTML is
    the page's bytes read as UTF-8 with replacement characters (the pages' texts cached here, and
    the PII and near-duplicate sets built from them, were made this way); ``bench/extract.py``
    decodes by the WARC reader's charset rules instead, as the extract stage sees a page."""
    folder = (data or shared_data()) / "html" / "trafilatura-eval"
    expectations = json.loads((folder / "expectations.json").read_text(encoding="utf-8"))
    url_of = {entry["file"]: key.split("::", 1)[-1] for key, entry in expectations.items()}
    pages = []
    for path in sorted(glob.glob(str(folder / "pages" / "*.html.gz"))):
        name = os.path.basename(path)
        with gzip.open(path) as fh:
            pages.append((name, url_of.get(name, ""), fh.read().decode("utf-8", "replace")))
    return pages


def eval_page_texts(data: Path | None = None) -> list[dict]:
    """[{file, url, text}] for the 290 trafilatura-eval pages, main text by ``trafilatura.extract``
    with its defaults ("" where it finds none); cached."""

    def build() -> list[dict]:
        import trafilatura

        return [{"file": name, "url": url, "text": trafilatura.extract(html) or ""} for name, url, html in eval_pages(data)]

    return cached_jsonl(OUT / "eval_page_texts.jsonl", build)
