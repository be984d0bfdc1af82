"""Scoring extractors against human-written main text (WCXB), shared by the bench and the trainer.

* :func:`word_f1`: word-level F1 of an extracted text against the reference, on multisets of
  lower-cased ``\\w+`` tokens (so order and whitespace do not matter, repeated words do);
  the rules of WCXB's own ``evaluate.py``, empty cases included: an empty extraction scores 0,
  and a page whose reference is empty (WCXB judged it to have no main text) scores 1 for an
  empty extraction and 0 for any text.
* :func:`is_held_out`: the fixed train / held-out split of the WCXB dev pages, by a hash of
  the page URL (30% held out). The block extractor's model never sees held-out pages.
* :func:`load_web_pages` / :func:`load_web_sources` / :func:`load_wcxb_truth`: the shared web
  corpus (``<data>/web/*.warc.gz``, decoded by ``curate.warc``), the set each page came from,
  and the WCXB ground truth.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
from collections import Counter

WORD = re.compile(r"\w+")
HELD_OUT_PERCENT = 30


def words(text: str | None) -> list[str]:
    return WORD.findall(text.lower()) if text else []


def word_f1(extracted: str | None, reference: str) -> float:
    """Word-level F1 (multiset overlap of lower-cased word tokens), as WCXB's ``evaluate.py`` scores it."""
    got, want = Counter(words(extracted)), Counter(words(reference))
    if not want:
        return 0.0 if got else 1.0  # a page with no main text: extracting nothing is right
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(got.values())
    recall = overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def is_held_out(url: str) -> bool:
    """True for the WCXB pages kept out of training (a stable 30% by SHA-1 of the URL)."""
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 100 < HELD_OUT_PERCENT


def default_data_dir(repo: str) -> str:
    """The shared data folder: ``$CURATE_SHARED_DATA``, else ``<repo>/../shared/data`` when
    present, else ``/work/shared/data``. The one rule for models/ and bench/ (``bench.common``)."""
    if os.environ.get("CURATE_SHARED_DATA"):
        return os.environ["CURATE_SHARED_DATA"]
    candidate = os.path.normpath(os.path.join(repo, "..", "shared", "data"))
    return candidate if os.path.isdir(candidate) else "/work/shared/data"


def load_web_pages(data_dir: str) -> list[tuple[str, str]]:
    """(url, decoded html) of every page in ``<data_dir>/web/web-*.warc.gz``, in file order."""
    from curate.warc import read_warc

    paths = sorted(glob.glob(os.path.join(data_dir, "web", "web-*.warc.gz")))
    if not paths:
        raise FileNotFoundError(f"no web-*.warc.gz under {os.path.join(data_dir, 'web')}")
    pages = []
    for path in paths:
        for batch in read_warc(path, "web"):
            for url, html in zip(batch.column("url").to_pylist(), batch.column("html").to_pylist()):
                pages.append((url, html or ""))
    return pages


def load_web_sources(data_dir: str) -> dict[str, str]:
    """url -> the public set a page of ``<data_dir>/web`` came from (``manifest.jsonl``: wcxb, fundus, product, ...)."""
    with open(os.path.join(data_dir, "web", "manifest.jsonl"), encoding="utf-8") as lines:
        return {entry["url"]: entry["source"] for entry in map(json.loads, lines)}


def load_wcxb_truth(data_dir: str) -> dict[str, dict]:
    """url -> {"page_type", "main_content"} of the WCXB dev pages."""
    path = os.path.join(data_dir, "web", "wcxb-dev-ground-truth.jsonl.gz")
    truth = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            truth[entry["url"]] = {"page_type": entry["page_type"], "main_content": entry["main_content"] or ""}
    return truth
