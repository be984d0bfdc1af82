"""``bench/dedup.py incremental``: dedup across three snapshots through an index, with ground truth.

Three successive "snapshots" are built from the real pages of the shared web corpus
(``shared/data/web/web-*.warc.gz``, main text by the fast extractor, cached in ``bench/out``).
The pool is first deduplicated on its own, so its pages are distinct; then:

* snapshot 1: fresh pages;
* snapshot 2: fresh pages, plus exact copies (ASCII case and spacing changed), near copies (light
  edits: about 0.5% of words substituted, deleted and inserted each, a footer line) and URL
  re-captures (a page of snapshot 1's URL with other text) of snapshot-1 pages;
* snapshot 3: fresh pages, plus exact and near copies of pages of snapshots 1 and 2.

Every planted copy must be removed as ``dedup.earlier_<rule>`` with ``duplicate_of`` = its
source; every other removal by the index is a false positive. Reported per snapshot: removal
recall and precision (and whether ``duplicate_of`` names the source); the time of snapshot 3
against the index against deduping all three snapshots at once (both ``run_local``, one
process); the index's size per million indexed documents.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from common import OUT, emit, load_average, web_texts

INDEX = OUT / "dedup-incremental" / "index"


def table(rows: list[dict]):
    import pyarrow as pa

    from curate.schema import documents_from_pylist

    return pa.Table.from_batches([documents_from_pylist([{"source": "web", **r} for r in rows])])


def distinct_pool(texts: list[dict], params) -> list[dict]:
    """Pages with at least 50 words that survive dedup among themselves (distinct URLs too)."""
    from curate.dedup import DedupStage

    rows = [{"id": f"pool-{i:05d}", "text": t["text"], "url": t["url"]} for i, t in enumerate(texts) if len(t["text"].split()) >= 50]
    marked = DedupStage(params).run_local(table(rows))
    keep = {r["id"] for r in marked.select(["id", "rejected_by"]).to_pylist() if r["rejected_by"] is None}
    return [r for r in rows if r["id"] in keep]


def _ascii_upper(text: str) -> str:
    # Only ASCII letters: str.upper is not undone by lower case for every script (Greek final
    # sigma, German sharp s), and an exact copy must stay exact after normalisation.
    return "".join(c.upper() if c.isascii() else c for c in text)


def build_snapshots(pool: list[dict], seed: int = 0) -> tuple[list[list[dict]], dict[str, tuple[str, str]]]:
    """Three snapshots and the ground truth: planted copy id -> (rule, source id)."""
    from near_dups import light_edit

    rng = random.Random(seed)
    pool = list(pool)
    rng.shuffle(pool)
    vocabulary = sorted({w for p in pool[:200] for w in p["text"].split()})
    n = len(pool)
    fresh = [pool[: int(0.4 * n)], pool[int(0.4 * n) : int(0.65 * n)], pool[int(0.65 * n) : int(0.9 * n)]]
    spare = pool[int(0.9 * n) :]  # other texts for URL re-captures
    snapshots: list[list[dict]] = []
    truth: dict[str, tuple[str, str]] = {}
    dates = ["2025-01-15", "2025-02-15", "2025-03-15"]
    for k in range(3):
        rows = [{"id": f"s{k + 1}-{r['id']}", "text": r["text"], "url": r["url"], "warc_date": dates[k]} for r in fresh[k]]
        sources = [row for snap in snapshots for row in snap if row["id"] not in truth]  # earlier survivors
        picked = rng.sample(sources, min(len(sources), int(0.25 * len(rows)))) if sources else []
        for j, source in enumerate(picked):
            kind = ("exact", "near", "url")[j % 3] if k == 1 else ("exact", "near")[j % 2]
            copy_id = f"s{k + 1}-{kind}-{j:04d}"
            if kind == "exact":
                text, url = _ascii_upper("  ".join(source["text"].split(" "))), f"https://copies.example/{copy_id}"
            elif kind == "near":
                text, url = light_edit(source["text"], rng, vocabulary, 0.005, footer=True), f"https://copies.example/{copy_id}"
            else:
                text, url = spare.pop()["text"], source["url"].replace("https://", "http://", 1)
            rows.append({"id": copy_id, "text": text, "url": url, "warc_date": dates[k]})
            truth[copy_id] = ({"near": "minhash"}.get(kind, kind), source["id"])
        snapshots.append(rows)
    return snapshots, truth


def score(marked, truth: dict[str, tuple[str, str]], planted: set[str]) -> dict:
    rows = marked.select(["id", "rejected_by", "duplicate_of"]).to_pylist()
    removed = {r["id"]: r for r in rows if (r["rejected_by"] or "").startswith("dedup.earlier_")}
    hits = planted & set(removed)
    right_source = sum(removed[i]["duplicate_of"] == truth[i][1] for i in hits)
    by_rule: dict[str, list[int]] = {}
    for i in planted:
        by_rule.setdefault(truth[i][0], [0, 0])[1] += 1
        by_rule[truth[i][0]][0] += i in removed
    return {
        "planted": len(planted),
        "removed_by_index": len(removed),
        "recall": round(len(hits) / len(planted), 4) if planted else None,
        "precision": round(len(hits) / len(removed), 4) if removed else None,
        "duplicate_of_is_source": round(right_source / len(hits), 4) if hits else None,
        "recall_by_rule": {rule: round(found / total, 4) for rule, (found, total) in sorted(by_rule.items())},
        "within_run_removed": sum(1 for r in rows if r["rejected_by"] and not r["rejected_by"].startswith("dedup.earlier_")),
    }


def bench_incremental(data: Path, bands: int, rows: int, num_perm: int) -> None:
    """The incremental bench (``bench/dedup.py incremental`` runs it): one JSON line per step."""
    from curate.dedup import DedupParams, DedupStage, MinHashParams

    minhash = MinHashParams(num_perm=num_perm, bands=bands, rows=rows)
    started = time.perf_counter()
    pool = distinct_pool(web_texts(data), DedupParams(minhash=minhash))
    snapshots, truth = build_snapshots(pool)
    emit(
        step="inputs",
        pool=len(pool),
        snapshot_docs=[len(s) for s in snapshots],
        planted=len(truth),
        seconds=round(time.perf_counter() - started, 1),
        load=load_average(),
    )
    seconds = snapshots_through_index(snapshots, truth, minhash)
    t0 = time.perf_counter()
    DedupStage(DedupParams(minhash=minhash)).run_local(table([r for s in snapshots for r in s]))
    all_at_once = time.perf_counter() - t0
    indexed, size = index_size(INDEX)
    emit(
        step="totals",
        snapshot3_seconds=round(seconds[2], 2),
        all_three_at_once_seconds=round(all_at_once, 2),
        snapshot3_share_of_all_at_once=round(seconds[2] / all_at_once, 3),
        indexed_documents=indexed,
        index_bytes=size,
        index_mb_per_million_documents=round(size / indexed * 1e6 / 2**20, 1),
        bands=bands,
        rows=rows,
        num_perm=num_perm,
        load=load_average(),
    )


def snapshots_through_index(snapshots: list[list[dict]], truth: dict[str, tuple[str, str]], minhash) -> list[float]:
    """Each snapshot deduplicated against a fresh index holding the ones before it; seconds per snapshot."""
    from curate.dedup import DedupParams, DedupStage

    shutil.rmtree(INDEX, ignore_errors=True)
    seconds = []
    for k, rows_k in enumerate(snapshots):
        stage = DedupStage(DedupParams(minhash=minhash, index=str(INDEX)))
        t0 = time.perf_counter()
        marked = stage.run_local(table(rows_k))
        seconds.append(time.perf_counter() - t0)
        planted = {r["id"] for r in rows_k if r["id"] in truth}
        emit(
            step=f"snapshot {k + 1}", docs=len(rows_k), seconds=round(seconds[-1], 2), **score(marked, truth, planted), load=load_average()
        )
    return seconds


def index_size(index: Path) -> tuple[int, int]:
    """(documents indexed, bytes on disk) of a dedup index."""
    import pyarrow.parquet as pq

    from curate.dedup_index import committed_parts

    indexed = sum(pq.read_metadata(f).num_rows for p in committed_parts(str(index)) for f in (Path(p) / "exact").glob("*.parquet"))
    return indexed, sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
