"""Near-duplicate benchmark sets built from real text, with known ground truth.

* :func:`page_texts`: main text of the 290 real web pages in
  ``shared/data/html/trafilatura-eval`` (extracted with trafilatura, cached in ``bench/out``).
* :func:`near_duplicate_set`: every page with enough words is a cluster seed; each seed gets
  a few *light edits* (word substitutions, deletions, insertions, an added footer line), so
  the seed and its variants form a known cluster.
* :func:`scale_set`: N short documents for the scale benchmark: each is a few sentences of
  WikiText-2 drawn at random, and a fraction of them are lightly edited copies of earlier ones.

Run ``python bench/near_dups.py --test-data`` to (re)write ``tests/data/dedup/pages.jsonl``,
the small sample of page texts that the tests use.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys

from common import ROOT, eval_page_texts, shared_data

FOOTERS = [
    "Share this article on social media.",
    "Copyright 2024. All rights reserved.",
    "Subscribe to our newsletter for more updates.",
    "Comments are closed.",
    "Posted in Uncategorized | Leave a comment",
]


def page_texts(min_words: int = 0) -> list[dict]:
    """[{url, text}] for every page whose extracted text has at least ``min_words`` words.

    ``url`` is the page's file name (``name.html``): the sets and ``tests/data/dedup/pages.jsonl``
    were built with it, and every page's is distinct."""
    rows = [{"url": row["file"].removesuffix(".gz"), "text": row["text"]} for row in eval_page_texts()]
    return [r for r in rows if len(r["text"].split()) >= min_words]


def light_edit(text: str, rng: random.Random, vocabulary: list[str], rate: float, footer: bool) -> str:
    """Substitute, delete and insert about ``rate`` of the words each; maybe add a footer line."""
    words = text.split(" ")
    out: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < rate:  # substitution
            out.append(rng.choice(vocabulary))
        elif roll < 2 * rate:  # deletion
            continue
        elif roll < 3 * rate:  # insertion before the word
            out.extend([rng.choice(vocabulary), word])
        else:
            out.append(word)
    edited = " ".join(out)
    if footer:
        edited += "\n" + rng.choice(FOOTERS)
    return edited


def near_duplicate_set(
    min_words: int = 150, variants: tuple[int, int] = (1, 4), rate: float = 0.002, seed: int = 0, pages: list[dict] | None = None
) -> list[dict]:
    """Rows {id, url, text, cluster}: seeds and their light edits; ``cluster`` is the seed index.

    ``rate`` is the probability of each edit kind per word (0.002: about 0.6% of the words
    touched, plus a footer line on half of the copies): a light edit. The 933 documents this
    builds have 1349 known same-cluster pairs; brute force finds 1339 pairs at 5-gram Jaccard
    >= 0.8.
    """
    rng = random.Random(seed)
    pages = pages if pages is not None else page_texts(min_words)
    pages = [p for p in pages if len(p["text"].split()) >= min_words]
    vocabulary = sorted({w for p in pages for w in re.findall(r"[A-Za-z]{3,12}", p["text"])})
    rows: list[dict] = []
    for cluster, page in enumerate(pages):
        rows.append({"id": f"c{cluster:04d}-0", "url": page["url"], "text": page["text"], "cluster": cluster})
        for v in range(1, rng.randint(*variants) + 1):
            text = light_edit(page["text"], rng, vocabulary, rate, footer=rng.random() < 0.5)
            rows.append({"id": f"c{cluster:04d}-{v}", "url": f"{page['url']}?copy={v}", "text": text, "cluster": cluster})
    return rows


def wikitext_sentences() -> list[str]:
    sentences: list[str] = []
    for name in ("valid.txt", "test.txt"):
        with (shared_data() / "text" / "wikitext-2" / name).open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line or line.startswith("="):
                    continue
                for sentence in re.split(r"(?<=[.!?]) ", line):
                    if len(sentence.split()) >= 8:
                        sentences.append(sentence)
    return sentences


def scale_set(n_docs: int, duplicate_fraction: float = 0.1, sentences_per_doc: int = 4, seed: int = 0):
    """Yield (id, text, url, warc_date) rows: ``n_docs`` short documents from WikiText-2."""
    rng = random.Random(seed)
    sentences = wikitext_sentences()
    vocabulary = sorted({w for s in sentences[:5000] for w in s.split() if w.isalpha()})
    recent: list[str] = []
    for i in range(n_docs):
        if recent and rng.random() < duplicate_fraction:
            text = light_edit(rng.choice(recent), rng, vocabulary, 0.01, footer=rng.random() < 0.5)
        else:
            text = " ".join(rng.choice(sentences) for _ in range(sentences_per_doc))
            if len(recent) < 10000:
                recent.append(text)
            else:
                recent[rng.randrange(len(recent))] = text
        day = 1 + i % 28
        yield f"d{i:08d}", text, f"https://example.org/{i % 997}/{i}", f"2024-02-{day:02d}T00:00:00Z"


def write_test_data(n_pages: int = 24) -> None:
    """The pages the tests use: the first English-looking pages of 150-900 words."""
    target = ROOT / "tests" / "data" / "dedup" / "pages.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    chosen = []
    for page in page_texts(150):
        words = page["text"].split()
        ascii_share = sum(w.isascii() for w in words) / len(words)
        if len(words) <= 900 and ascii_share > 0.97:
            chosen.append(page)
        if len(chosen) == n_pages:
            break
    with target.open("w", encoding="utf-8") as fh:
        for page in chosen:
            fh.write(json.dumps(page, ensure_ascii=False) + "\n")
    print(f"wrote {len(chosen)} pages to {target}")


def wcxb_texts(min_words: int = 150) -> list[dict]:
    """[{url, text}]: the human-reviewed main text of the WCXB pages in ``shared/data/web``.

    Real pages that curate's models and tests were not built from; no extraction needed.
    """
    rows = []
    with gzip.open(shared_data() / "web" / "wcxb-dev-ground-truth.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            text = (row.get("main_content") or "").strip()
            if len(text.split()) >= min_words:
                rows.append({"url": row["url"], "text": text})
    return rows


def edit_words_and_lines(text: str, rng: random.Random, vocabulary: list[str], word_share: float) -> str:
    """Edit about ``word_share`` of the words (substitutions, deletions, insertions in equal
    parts), then add one boilerplate line and, on pages of four or more lines, remove one line.

    That is what syndicated and templated copies look like: a few words changed, a footer
    or byline added, a paragraph dropped.
    """
    per_kind = word_share / 3.0
    lines = []
    for line in text.split("\n"):
        out: list[str] = []
        for word in line.split(" "):
            roll = rng.random()
            if roll < per_kind:
                out.append(rng.choice(vocabulary))
            elif roll < 2 * per_kind:
                continue
            elif roll < 3 * per_kind:
                out.extend([rng.choice(vocabulary), word])
            else:
                out.append(word)
        lines.append(" ".join(out))
    if len(lines) >= 4:
        del lines[rng.randrange(len(lines))]
    lines.insert(rng.randrange(len(lines) + 1), rng.choice(FOOTERS))
    return "\n".join(lines)


def edit_rate_set(pages: list[dict], word_share: float, variants: tuple[int, int] = (1, 3), seed: int = 0) -> list[dict]:
    """Rows {id, url, text, cluster}: each page and 1-3 copies edited by :func:`edit_words_and_lines`."""
    rng = random.Random(seed)
    vocabulary = sorted({w for p in pages for w in re.findall(r"[A-Za-z]{3,12}", p["text"])})
    rows: list[dict] = []
    for cluster, page in enumerate(pages):
        rows.append({"id": f"c{cluster:04d}-0", "url": page["url"], "text": page["text"], "cluster": cluster})
        for v in range(1, rng.randint(*variants) + 1):
            text = edit_words_and_lines(page["text"], rng, vocabulary, word_share)
            rows.append({"id": f"c{cluster:04d}-{v}", "url": f"{page['url']}?copy={v}", "text": text, "cluster": cluster})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-data", action="store_true", help="write tests/data/dedup/pages.jsonl")
    args = parser.parse_args()
    if args.test_data:
        write_test_data()
    else:
        rows = near_duplicate_set()
        print(f"{len(rows)} documents in {len({r['cluster'] for r in rows})} clusters", file=sys.stderr)
