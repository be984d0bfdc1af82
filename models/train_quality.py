"""Train models/quality.bin: a small DCLM-style fastText quality classifier.

DCLM scores web text by how much it resembles a curated reference set. Here the reference
(label ``hq``) is WikiText-2 (Wikipedia Good and Featured articles) and the negatives
(label ``web``) are the main text trafilatura extracts from the real web pages in
../shared/data (copies in models/data/classifiers/, with license lines). Both sides are
English only (language by lid.176), so the model cannot get away with learning language
identification instead of register.

Examples are passages of about 40-200 words: WikiText paragraphs, and web lines grouped
until they reach 40 words. Held-out data are whole articles/pages (20% of each), so no
passage of a held-out document is seen in training. Reproducible: one thread, fixed seed.

    .venv/bin/python models/train_quality.py
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from curate.classify import TrainingConfig, evaluate, train_fasttext, write_model_card  # noqa: E402
from curate.wikitext import QUALITY_POSITIVES, detokenize_line  # noqa: E402

DATA = HERE / "data" / "classifiers"
OUTPUT = HERE / "quality.bin"
CARD = HERE / "MODEL_CARD_quality.md"
CONFIG = TrainingConfig(
    epoch=10, lr=0.3, word_ngrams=2, dim=32, min_count=1, bucket=100_000, quantize=True, cutoff=30_000, held_out=0.2, seed=0
)
MIN_WORDS = 40
MAX_WORDS = 200


def wikitext_articles() -> list[list[str]]:
    """Articles as lists of paragraphs (headings dropped)."""
    articles: list[list[str]] = []
    for split in ("valid", "test"):
        with gzip.open(DATA / "wikitext-2" / f"{split}.txt.gz", "rt", encoding="utf-8") as fh:
            for line in fh:
                stripped = line.strip()
                if re.fullmatch(r"= [^=].* =", stripped):
                    articles.append([])
                elif stripped and not stripped.startswith("=") and articles:
                    # undone so positives look like ordinary text, not like a format; with the
                    # rules quality.bin was trained on (pinned, tests/test_wikitext.py)
                    articles[-1].append(detokenize_line(stripped, QUALITY_POSITIVES))
    return [a for a in articles if a]


def web_pages() -> list[list[str]]:
    """English pages as lists of lines."""
    pages = []
    with gzip.open(DATA / "web-text" / "pages.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["language"] == "en":
                pages.append([l.strip() for l in row["text"].splitlines() if l.strip()])
    return pages


def passages(units: list[str]) -> list[str]:
    """Group consecutive lines/paragraphs into passages of MIN_WORDS..MAX_WORDS words."""
    out, current, count = [], [], 0
    for unit in units:
        words = unit.split()
        current.append(" ".join(words[:MAX_WORDS]))
        count += min(len(words), MAX_WORDS)
        if count >= MIN_WORDS:
            out.append(" ".join(current))
            current, count = [], 0
    return out


def split_documents(documents: list[list[str]], label: str, rng: random.Random) -> tuple[list, list]:
    order = list(range(len(documents)))
    rng.shuffle(order)
    n_held = int(round(len(order) * CONFIG.held_out))
    held_ids = set(order[:n_held])
    train, held = [], []
    for i, doc in enumerate(documents):
        target = held if i in held_ids else train
        target.extend((p, label) for p in passages(doc))
    return train, held


def main() -> int:
    rng = random.Random(CONFIG.seed)
    wiki_train, wiki_held = split_documents(wikitext_articles(), "hq", rng)
    web_train, web_held = split_documents(web_pages(), "web", rng)
    # Balance the classes: there is far more reference text than English web text.
    rng.shuffle(wiki_train)
    rng.shuffle(wiki_held)
    wiki_train = wiki_train[: len(web_train)]
    wiki_held = wiki_held[: max(len(web_held), 1)]
    train = wiki_train + web_train
    rng.shuffle(train)
    held = wiki_held + web_held
    model = train_fasttext(train, str(OUTPUT), CONFIG)
    metrics = evaluate(model, held, CONFIG.normalization)
    write_model_card(
        str(CARD),
        name="quality",
        model_path=os.path.relpath(OUTPUT, HERE.parent),
        data=(
            "Positives (`hq`): passages of WikiText-2 validation and test articles (Wikipedia Good and "
            "Featured articles, CC BY-SA 3.0), de-tokenized. Negatives (`web`): passages of the main text "
            "trafilatura extracts from the English pages among the 290 trafilatura evaluation pages and the "
            "Dolma sample WARCs (Apache-2.0 test data; text by the pages' publishers). Passages are 40-200 "
            "words. Classes are balanced by sampling the positives. Held out: 20% of articles and 20% of "
            "pages, whole documents."
        ),
        config=CONFIG,
        n_train=len(train),
        label_counts={"hq": len(wiki_train) + len(wiki_held), "web": len(web_train) + len(web_held)},
        evaluations={f"Held-out metrics ({len(held)} passages from held-out documents)": metrics},
        notes=NOTES,
    )
    print({k: round(v.get("f1", v.get("value", 0)), 3) for k, v in metrics.items()})
    print(f"trained on {len(train)} passages; wrote {OUTPUT} ({OUTPUT.stat().st_size / 1e6:.2f} MB) and {CARD}")
    return 0


NOTES = """
## Use in a recipe

```yaml
- stage: classify
  models:
    - {name: quality, path: models/quality.bin, label: hq, threshold: 0.5, keep: above}
```

The score is the probability of `hq`. DCLM keeps the top 10% of documents by this kind of
score; with a fixed threshold, pick it from the score distribution of your own run
(`curate inspect` shows the removed documents with their scores).

## What it can and cannot do

* It is trained on about a hundred English web pages and as many Wikipedia passages. It
  tells encyclopedic, well-edited prose from typical web page text (navigation left-overs,
  short promotional lines, shop and forum text). That is all it knows.
* It is *not* a general quality model: it prefers Wikipedia's register and topics, so good
  writing in other registers (fiction, dialogue, instructions, code) scores low, and it has
  never seen spam farms or machine-generated text. The held-out figures above come from
  the same two sources, so they overstate how well it separates quality on a real crawl.
* English only: other languages get scores that mean nothing.
* For production use point the stage at a published classifier, e.g. DCLM's
  `openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin` (label `hq`, `normalization: newlines`).
"""


if __name__ == "__main__":
    sys.exit(main())
