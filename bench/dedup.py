"""Dedup benchmarks: signature speed vs datasketch, near-duplicate quality, Spark scale vs datatrove.

    .venv/bin/python bench/dedup.py speed            # MinHasher vs datasketch MinHash.bulk
    .venv/bin/python bench/dedup.py quality          # recall/precision per edit rate, old vs new defaults
    .venv/bin/python bench/dedup.py scale --docs 10000 100000 1000000 [--peer] [--plans auto one-task distributed] [--verify]
    .venv/bin/python bench/dedup.py incremental [--data DIR]   # three snapshots through an index (bench/dedup_incremental.py)

``--peer`` also runs datatrove's MinHash pipeline (signatures, buckets, clusters, filter) on
the same documents, in ``.venv-bench`` (datatrove is not a dependency of curate).
Figures are printed as one JSON line per measurement; bench/README.md has the method.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import subprocess
import sys
import threading
import time
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

import common
from common import BENCH_PYTHON, emit, shared_data

OUT = common.OUT / "dedup"


# --- memory sampling -------------------------------------------------------------------------


class PeakMemory:
    """Peak RSS of this process and of all its descendants (JVM, Python workers), sampled."""

    def __init__(self, pid: int | None = None, interval: float = 0.2):
        import psutil

        self.root = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.peak_self = 0
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                own = self.root.memory_info().rss
                total = own
                for child in self.root.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.peak_self = max(self.peak_self, own)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def mb(n: int) -> float:
    return round(n / 2**20, 1)


# --- speed -----------------------------------------------------------------------------------


def python_shingles(texts: list[str], ngram: int) -> list[list[bytes]]:
    """What a datasketch user writes: normalise, split, join n-grams, encode, per document."""
    import re
    import unicodedata

    punctuation = re.compile(r"[^\w\s]+")
    out = []
    for text in texts:
        words = punctuation.sub(" ", unicodedata.normalize("NFKC", text or "").lower()).split()
        if len(words) < ngram:
            grams = {" ".join(words)} if words else set()
        else:
            grams = {" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)}
        out.append([g.encode("utf-8") for g in grams])
    return out


def best_of(repeats: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_speed(repeats: int) -> None:
    import pyarrow as pa

    from curate.dedup import MinHasher
    from near_dups import near_duplicate_set

    texts = [r["text"] for r in near_duplicate_set()]
    array = pa.array(texts, type=pa.large_string())
    # The first call compiles curate/speedups/minhash_kernels.py (or loads numba's cache): reported
    # apart, once per machine, not per batch.
    start = time.perf_counter()
    MinHasher().signatures(array[:2])
    emit(bench="minhash_first_call", seconds=round(time.perf_counter() - start, 3))
    default, (_, bulk_s, text_s) = speed_against_datasketch(texts, array, "sha1", repeats)
    emit(**default)
    words, (ours_s, _, _) = speed_against_datasketch(texts, array, "words", repeats)
    emit(**words)
    # The fast path against datasketch as most people run it (default SHA-1 hash); the ratios
    # from the unrounded seconds, as in each run's own line.
    emit(
        bench="minhash_speed_words_vs_datasketch_default",
        curate_words_from_text_s=round(ours_s, 4),
        datasketch_default_bulk_given_shingles_s=round(bulk_s, 4),
        datasketch_default_text_to_signature_s=round(text_s, 4),
        speedup_vs_bulk=round(bulk_s / ours_s, 2),
        speedup_vs_text_to_signature=round(text_s / ours_s, 2),
    )


def speed_against_datasketch(texts: list[str], array: pa.Array, shingle_hash: str, repeats: int) -> tuple[dict, tuple[float, float, float]]:
    """Best-of-``repeats`` seconds of curate's signatures and datasketch's ``MinHash.bulk``, both ways
    round: the line to print, and the unrounded seconds of curate from text, datasketch's bulk and
    datasketch from text."""
    import numpy as np
    from datasketch import MinHash

    from curate.dedup import MinHasher, document_words, word_shingle_hash32

    hasher = MinHasher(num_perm=128, seed=1, ngram=5, shingle_hash=shingle_hash)
    words = document_words(array)
    shingles = hasher.shingle_lists(texts)
    kwargs = {"hashfunc": word_shingle_hash32} if shingle_hash == "words" else {}
    ours_s, ours = best_of(repeats, lambda: hasher.signatures(array))
    # Like for like with "shingles given": normalised words given, shingles built here.
    words_s, _ = best_of(repeats, lambda: hasher.signatures(words))
    bulk_s, theirs = best_of(repeats, lambda: MinHash.bulk(shingles, num_perm=128, seed=1, **kwargs))
    text_s, _ = best_of(repeats, lambda: MinHash.bulk(python_shingles(texts, 5), num_perm=128, seed=1, **kwargs))
    figures = dict(
        bench="minhash_speed",
        shingle_hash=shingle_hash,
        docs=len(texts),
        shingles=sum(map(len, shingles)),
        curate_from_text_s=round(ours_s, 4),
        curate_from_words_s=round(words_s, 4),
        datasketch_bulk_given_shingles_s=round(bulk_s, 4),
        datasketch_python_shingling_plus_bulk_s=round(text_s, 4),
        speedup_vs_bulk=round(bulk_s / ours_s, 2),
        speedup_words_vs_bulk=round(bulk_s / words_s, 2),
        speedup_vs_text_to_signature=round(text_s / ours_s, 2),
        identical=bool(np.array_equal(ours, np.array([m.hashvalues for m in theirs]))),
    )
    return figures, (ours_s, bulk_s, text_s)


# --- quality ---------------------------------------------------------------------------------


def pairs_of(groups: dict) -> set[tuple[str, str]]:
    members: dict = {}
    for doc_id, group in groups.items():
        members.setdefault(group, []).append(doc_id)
    return {tuple(sorted(p)) for ids in members.values() for p in combinations(ids, 2)}


def precision_recall(predicted: set, truth: set) -> tuple[float, float]:
    hit = len(predicted & truth)
    return (hit / len(predicted) if predicted else 1.0), (hit / len(truth) if truth else 1.0)


# The shipped default before issue #22: datasketch's layout for threshold 0.8 (9 x 13 of 128).
OLD_DEFAULT = {"num_perm": 128, "threshold": 0.8}
QUALITY_CONFIGS = {
    "old default (0.8, 128 perm -> 9x13)": OLD_DEFAULT,
    "new default": {},
    "FineWeb 14x8 of 112": {"num_perm": 112, "bands": 14, "rows": 8},
    "16x8 of 128 + verify 0.8": {"num_perm": 128, "bands": 16, "rows": 8, "verify": True},
    "20x5 of 100": {"num_perm": 100, "bands": 20, "rows": 5},
}


def copy_jaccards(rows: list[dict]) -> list[float]:
    """Exact 5-gram Jaccard of every edited copy with its original page."""
    from curate.dedup import MinHasher

    shingles = [set(s) for s in MinHasher().shingle_lists([r["text"] for r in rows])]
    original = {r["cluster"]: i for i, r in enumerate(rows) if r["id"].endswith("-0")}
    out = []
    for i, r in enumerate(rows):
        a, b = shingles[i], shingles[original[r["cluster"]]]
        if i != original[r["cluster"]] and (a or b):
            out.append(len(a & b) / len(a | b))
    return out


def removal_figures(rows: list[dict], marked: "pa.Table") -> dict:
    """Share of the copies that should go which went, and of those that went wrongly."""
    cluster_of = {r["id"]: r["cluster"] for r in rows}
    should_go = len(rows) - len(set(cluster_of.values()))
    removed = [(r["id"], r["duplicate_of"]) for r in marked.select(["id", "duplicate_of"]).to_pylist() if r["duplicate_of"]]
    wrong = sum(1 for doc, survivor in removed if cluster_of[doc] != cluster_of[survivor])
    kept_clusters = {cluster_of[r["id"]] for r in marked.select(["id", "duplicate_of"]).to_pylist() if not r["duplicate_of"]}
    return {
        "removed_of_should_go": round((len(removed) - wrong) / should_go, 4) if should_go else 1.0,
        "wrongly_removed": wrong,
        "removal_precision": round((len(removed) - wrong) / len(removed), 4) if removed else 1.0,
        "clusters_lost": len(set(cluster_of.values()) - kept_clusters),
    }


def bench_quality(rates: list[float], max_pages: int) -> None:
    """Recall and precision of near-duplicate removal per edit rate, old vs new defaults.

    Sets: the WCXB pages' human-reviewed main text (``shared/data/web``), each with 1-3
    copies in which ``rate`` of the words are edited and one line added and one removed.
    """
    import numpy as np
    import pyarrow as pa

    from curate.dedup import DedupParams, DedupStage, MinHashParams
    from curate.schema import documents_from_pylist
    from near_dups import edit_rate_set, wcxb_texts

    pages = wcxb_texts(150)[:max_pages]
    for rate in rates:
        rows = edit_rate_set(pages, rate)
        known = pairs_of({r["id"]: r["cluster"] for r in rows})
        jaccards = np.array(copy_jaccards(rows))
        table = pa.Table.from_batches([documents_from_pylist([{"id": r["id"], "source": "bench", "text": r["text"]} for r in rows])])
        for label, config in QUALITY_CONFIGS.items():
            stage = DedupStage(DedupParams(exact=False, url=False, minhash=MinHashParams(**config)))
            start = time.perf_counter()
            marked = stage.run_local(table)
            seconds = time.perf_counter() - start
            cluster = {r["id"]: r["duplicate_of"] or r["id"] for r in marked.select(["id", "duplicate_of"]).to_pylist()}
            p_known, r_known = precision_recall(pairs_of(cluster), known)
            emit(
                bench="near_dup_quality",
                word_edit_rate=rate,
                config=label,
                bands_rows=list(stage.params.minhash.band_layout()),
                num_perm=stage.params.minhash.num_perm,
                verify=stage.params.minhash.verify,
                docs=len(rows),
                clusters=len(pages),
                copy_jaccard_median=round(float(np.median(jaccards)), 3),
                copy_jaccard_p10=round(float(np.percentile(jaccards, 10)), 3),
                pair_recall=round(r_known, 4),
                pair_precision=round(p_known, 4),
                **removal_figures(rows, marked),
                seconds=round(seconds, 2),
            )


# --- scale -----------------------------------------------------------------------------------


def write_inputs(n_docs: int, folder: Path, files: int = 2) -> None:
    """The same documents as Parquet (DOCUMENT_SCHEMA, for curate) and JSONL (for datatrove)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.schema import DOCUMENT_SCHEMA
    from near_dups import scale_set

    done = folder / "done"
    if done.exists():
        return
    (folder / "parquet").mkdir(parents=True, exist_ok=True)
    (folder / "jsonl").mkdir(parents=True, exist_ok=True)
    per_file = (n_docs + files - 1) // files
    rows = scale_set(n_docs)
    for f in range(files):
        chunk = [next(rows, None) for _ in range(per_file)]
        chunk = [c for c in chunk if c is not None]
        ids, texts, urls, dates = (list(x) for x in zip(*chunk))
        n = len(ids)
        table = pa.table(
            {
                "id": ids,
                "source": ["bench"] * n,
                "url": urls,
                "warc_date": dates,
                "warc_file": pa.nulls(n, pa.string()),
                "text": texts,
                "language": pa.nulls(n, pa.string()),
                "language_score": pa.nulls(n, pa.float64()),
                "scores": pa.array([[]] * n, type=DOCUMENT_SCHEMA.field("scores").type),
                "flags": pa.array([[]] * n, type=DOCUMENT_SCHEMA.field("flags").type),
                "rejected_by": pa.nulls(n, pa.string()),
                "rejected_value": pa.nulls(n, pa.float64()),
                "duplicate_of": pa.nulls(n, pa.string()),
            },
            schema=DOCUMENT_SCHEMA,
        )
        pq.write_table(table, folder / "parquet" / f"part-{f}.parquet")
        with (folder / "jsonl" / f"part-{f}.jsonl").open("w", encoding="utf-8") as fh:
            for i, t in zip(ids, texts):
                fh.write(json.dumps({"id": i, "text": t}) + "\n")
    done.write_text("ok")


def run_curate(folder: Path, bands: int, rows: int, num_perm: int, driver_memory: str, plan: str = "auto", verify: bool = False) -> dict:
    """Runs the Spark dedup in a fresh child process, so that its memory is its own."""
    cmd = [
        sys.executable,
        __file__,
        "curate-child",
        "--input",
        str(folder),
        "--bands",
        str(bands),
        "--rows",
        str(rows),
        "--num-perm",
        str(num_perm),
        "--driver-memory",
        driver_memory,
        "--plan",
        plan,
    ] + (["--verify"] if verify else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with PeakMemory(proc.pid) as memory:
        stdout, _ = proc.communicate()
    if proc.returncode != 0:
        return {"error": f"curate child exited {proc.returncode}"}
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update({"driver_python_peak_mb": mb(memory.peak_self), "total_peak_mb": mb(memory.peak_total)})
    return result


def curate_child(folder: Path, bands: int, rows: int, num_perm: int, driver_memory: str, plan: str, verify: bool) -> None:
    from pyspark.sql import functions as F

    from curate.dedup import DedupParams, DedupStage, MinHashParams
    from curate.schema import DOCUMENT_SCHEMA
    from curate.spark.dedup import dedup_documents
    from curate.spark.job import spark_schema
    from curate.spark.session import spark_session

    start = time.perf_counter()
    spark = spark_session(
        "bench-dedup", master="local[2]", progress=False, driver_memory=driver_memory, conf={"spark.sql.shuffle.partitions": "8"}
    )
    startup = time.perf_counter() - start
    run_dir = folder / "curate-run"
    stage = DedupStage(DedupParams(exact=False, url=False, minhash=MinHashParams(num_perm=num_perm, bands=bands, rows=rows, verify=verify)))
    start = time.perf_counter()
    docs = spark.read.schema(spark_schema(DOCUMENT_SCHEMA)).parquet(str(folder / "parquet"))
    # "auto" is what a recipe run does: count the live documents, and let the count pick the
    # plan. 0 forces the one-task plan whatever the size; None forces the distributed one.
    live_docs = {"auto": docs.count, "one-task": lambda: 0, "distributed": lambda: None}[plan]()
    out = dedup_documents(docs, stage, str(run_dir), live_docs)
    out.write.mode("overwrite").parquet(str(run_dir / "marked"))
    seconds = time.perf_counter() - start
    removed = spark.read.parquet(str(run_dir / "marked")).where(F.col("rejected_by").isNotNull()).count()
    spark.stop()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "spark_startup_s": round(startup, 1),
                "removed": removed,
                "clusters": stage.counters.get("minhash_clusters"),
                "cc_rounds": stage.counters.get("minhash_cc_rounds"),
                "decided_in_one_task": bool(stage.counters.get("decided_in_one_task")),
            }
        )
    )


def run_datatrove(folder: Path, bands: int, rows: int, workers: int) -> dict:
    work = folder / "datatrove-run"
    cmd = [
        str(BENCH_PYTHON),
        __file__,
        "datatrove-child",
        "--input",
        str(folder / "jsonl"),
        "--work",
        str(work),
        "--bands",
        str(bands),
        "--rows",
        str(rows),
        "--workers",
        str(workers),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with PeakMemory(proc.pid) as memory:
        stdout, _ = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": f"datatrove exited {proc.returncode}"}
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update({"seconds": round(seconds, 1), "parent_peak_mb": mb(memory.peak_self), "total_peak_mb": mb(memory.peak_total)})
    return result


def datatrove_child(input_dir: str, work: str, bands: int, rows: int, workers: int) -> None:
    """Runs inside .venv-bench: datatrove's four MinHash steps, as in its own example."""
    import gzip
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    timings = []
    for step in datatrove_steps(input_dir, work, bands, rows, workers):
        start = time.perf_counter()
        step.run()
        timings.append(round(time.perf_counter() - start, 1))
    removed = 0
    for path in glob.glob(f"{work}/removed/*"):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as fh:
            removed += sum(1 for _ in fh)
    print(json.dumps({"step_seconds": timings, "removed": removed}))


def datatrove_steps(input_dir: str, work: str, bands: int, rows: int, workers: int) -> list:
    """datatrove's four MinHash steps (signatures, buckets, cluster, filter) as executors."""
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    tasks = len(glob.glob(os.path.join(input_dir, "*.jsonl")))
    config = MinhashConfig(
        n_grams=5, num_buckets=bands, hashes_per_bucket=rows, seed=1, hash_config=HashConfig(precision=64, hash_fc="sha1")
    )
    logs = os.path.join(work, "logs")
    common = {"workers": workers, "skip_completed": False}
    return [
        LocalPipelineExecutor(
            [JsonlReader(input_dir), MinhashDedupSignature(output_folder=f"{work}/signatures", config=config)],
            tasks=tasks,
            logging_dir=f"{logs}/1",
            **common,
        ),
        LocalPipelineExecutor(
            [MinhashDedupBuckets(input_folder=f"{work}/signatures", output_folder=f"{work}/buckets", config=config)],
            tasks=bands,
            logging_dir=f"{logs}/2",
            **common,
        ),
        LocalPipelineExecutor(
            [MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=config)],
            tasks=1,
            logging_dir=f"{logs}/3",
            **common,
        ),
        LocalPipelineExecutor(
            [
                JsonlReader(input_dir),
                MinhashDedupFilter(input_folder=f"{work}/remove_ids", exclusion_writer=JsonlWriter(f"{work}/removed")),
                JsonlWriter(f"{work}/output"),
            ],
            tasks=tasks,
            logging_dir=f"{logs}/4",
            **common,
        ),
    ]


def bench_scale(
    sizes: list[int],
    peer: bool,
    peer_max: int,
    bands: int,
    rows: int,
    num_perm: int,
    driver_memory: str,
    plans: list[str],
    verify: bool = False,
) -> None:
    for n in sizes:
        folder = OUT / f"scale-{n}"
        start = time.perf_counter()
        write_inputs(n, folder)
        emit(bench="dedup_scale_input", docs=n, build_s=round(time.perf_counter() - start, 1))
        for plan in plans:
            ours = run_curate(folder, bands, rows, num_perm, driver_memory, plan, verify)
            emit(
                bench="dedup_scale",
                tool=f"curate (Spark local[2], plan {plan})",
                docs=n,
                verify=verify,
                driver_memory=driver_memory,
                **ours,
            )
        if peer and n <= peer_max:
            theirs = run_datatrove(folder, bands, rows, workers=2)
            emit(bench="dedup_scale", tool="datatrove (2 workers)", docs=n, **theirs)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    speed = sub.add_parser("speed")
    speed.add_argument("--repeats", type=int, default=3)
    quality = sub.add_parser("quality")
    quality.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.03, 0.05], help="share of words edited in each copy")
    quality.add_argument("--max-pages", type=int, default=1000, help="original pages (each gets 1-3 copies)")
    scale = sub.add_parser("scale")
    scale.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000])
    scale.add_argument("--peer", action="store_true", help="also run datatrove (needs .venv-bench)")
    scale.add_argument("--peer-max", type=int, default=100_000)
    scale.add_argument("--bands", type=int, default=14)
    scale.add_argument("--rows", type=int, default=8)
    scale.add_argument("--num-perm", type=int, default=112)
    scale.add_argument("--driver-memory", default="4g")
    scale.add_argument(
        "--plans",
        nargs="+",
        choices=["auto", "one-task", "distributed"],
        default=["auto"],
        help="dedup plan(s) to run: auto = what a recipe run picks (one task up to SINGLE_TASK_MAX_DOCS live documents)",
    )
    scale.add_argument(
        "--verify", action="store_true", help="curate checks each LSH link against the signatures (carries them: more memory)"
    )
    ours = sub.add_parser("curate-child")
    ours.add_argument("--input", type=Path)
    ours.add_argument("--bands", type=int)
    ours.add_argument("--rows", type=int)
    ours.add_argument("--num-perm", type=int)
    ours.add_argument("--driver-memory")
    ours.add_argument("--plan", choices=["auto", "one-task", "distributed"], default="auto")
    ours.add_argument("--verify", action="store_true")
    incremental = sub.add_parser("incremental", help="three snapshots deduplicated through an index (bench/dedup_incremental.py)")
    incremental.add_argument("--data", type=Path, default=None, help="shared data folder (default: bench/common.py's shared_data())")
    incremental.add_argument("--bands", type=int, default=14)
    incremental.add_argument("--rows", type=int, default=8)
    incremental.add_argument("--num-perm", type=int, default=112)
    child = sub.add_parser("datatrove-child")
    child.add_argument("--input")
    child.add_argument("--work")
    child.add_argument("--bands", type=int)
    child.add_argument("--rows", type=int)
    child.add_argument("--workers", type=int)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.command == "speed":
        bench_speed(args.repeats)
    elif args.command == "quality":
        bench_quality(args.rates, args.max_pages)
    elif args.command == "scale":
        bench_scale(args.docs, args.peer, args.peer_max, args.bands, args.rows, args.num_perm, args.driver_memory, args.plans, args.verify)
    elif args.command == "incremental":
        from dedup_incremental import bench_incremental

        bench_incremental(args.data or shared_data(), args.bands, args.rows, args.num_perm)
    elif args.command == "curate-child":
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        curate_child(args.input, args.bands, args.rows, args.num_perm, args.driver_memory, args.plan, args.verify)
    else:
        datatrove_child(args.input, args.work, args.bands, args.rows, args.workers)


if __name__ == "__main__":
    main()
