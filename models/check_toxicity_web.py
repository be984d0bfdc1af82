"""Check the toxicity model on real web pages: how much of the shared web corpus it flags.

Reads every HTML response of ``shared/data/web/web-*.warc.gz`` (3,132 pages), extracts the
main text with resiliparse (curate's fast extractor; cached in ``bench/out/web_texts.jsonl``),
keeps pages of at least 50 words, labels their language with lid.176, and scores them as the
``classify`` stage does. Prints, per model, the share of pages (all, and English only) at or
above the threshold, then the 20 highest-scoring pages (any language) and the 20 English
pages closest to the threshold from below, with the start of their text, to be read by a person.

    .venv/bin/python models/check_toxicity_web.py [--model models/toxicity.bin ...] [--threshold 0.9]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curate.classify import label_probabilities, load_model, normalize_text  # noqa: E402
from curate.langid import predict_languages  # noqa: E402

CACHE = ROOT / "bench" / "out" / "web_texts.jsonl"


def shared_web() -> Path:
    for candidate in (ROOT.parent / "shared" / "data" / "web", Path("/work/shared/data/web")):
        if candidate.is_dir():
            return candidate
    raise SystemExit("shared/data/web not found: give --data")


def web_texts(folder: Path) -> list[dict]:
    """[{id, url, text}] for every HTML response, extracted once and cached."""
    if CACHE.exists():
        return [json.loads(line) for line in CACHE.open(encoding="utf-8")]
    from curate.extract import html_to_text_fast
    from curate.warc import read_warc

    rows = []
    for path in sorted(glob.glob(str(folder / "web-*.warc.gz"))):
        for batch in read_warc(path, "web"):
            for row in batch.to_pylist():
                rows.append({"id": row["id"], "url": row["url"], "text": html_to_text_fast(row["html"] or "", row["url"]) or ""})
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, CACHE)
    return rows


def snippet(text: str, chars: int = 160) -> str:
    return " ".join(text.split())[:chars]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=[str(ROOT / "models" / "toxicity.bin")])
    parser.add_argument("--threshold", type=float, default=0.9, help="the threshold the shipped recipes use")
    parser.add_argument("--data", type=Path, default=None, help="folder with web-*.warc.gz (default: shared/data/web)")
    parser.add_argument("--examples", type=int, default=20)
    args = parser.parse_args(argv)
    rows = [r for r in web_texts(args.data or shared_web()) if len(r["text"].split()) >= 50]
    languages, _ = predict_languages([r["text"] for r in rows])
    english = np.array([lang == "en" for lang in languages])
    print(f"{len(rows)} pages with >= 50 words, {int(english.sum())} English")
    for path in args.model:
        scores = label_probabilities(load_model(path), [normalize_text(r["text"]) for r in rows], "toxic")
        flagged = scores >= args.threshold
        print(
            f"\n== {os.path.relpath(path, ROOT)}: flagged at >= {args.threshold}: {flagged.mean():.1%} of all pages "
            f"({int(flagged.sum())}), {flagged[english].mean():.1%} of English pages ({int(flagged[english].sum())}); "
            f">= 0.5: {(scores >= 0.5).mean():.1%} of all, {(scores[english] >= 0.5).mean():.1%} of English; "
            f"median score (English) {np.median(scores[english]):.3f}"
        )
        order = list(np.argsort(-scores))
        print(f"-- the {args.examples} highest-scoring pages (all languages; those >= {args.threshold} are flagged)")
        for i in order[: args.examples]:
            print(f"{scores[i]:.3f} [{languages[i]}] {rows[i]['url'][:90]}\n      {snippet(rows[i]['text'])}")
        below = [i for i in order if english[i] and scores[i] < args.threshold][: args.examples]
        print(f"-- the {args.examples} English pages closest below {args.threshold}")
        for i in below:
            print(f"{scores[i]:.3f} {rows[i]['url'][:90]}\n      {snippet(rows[i]['text'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
