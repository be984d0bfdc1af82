"""Reading the crawl where it lives: one crawl-size WARC served by a local S3 endpoint (moto).

    .venv/bin/python bench/make_warc.py --records 35000 --files 1 --out bench/out/cc-crawlfile
    .venv/bin/python bench/object_store.py --input bench/out/cc-crawlfile [--peer-limit 5000] [--cores 1]

Runs, each in a fresh process, one after the other:

1. curate, the FineWeb-like recipe (bench/pipeline.py's) with the default ``blocks`` extractor
   (``--extractor``), reading the file from local disk;
2. curate, the same recipe reading the same file from ``s3://crawl/...`` on a local S3
   endpoint on 127.0.0.1 sharing the cores with the run (``--endpoint``: ``ranges``, the default,
   reads only the asked range from disk; ``moto`` reads the whole object per request);
3. datatrove (``.venv-bench``, ``make bench-env``), its FineWeb pipeline reading the same file
   from the same endpoint through its own fsspec data folder, the first ``--peer-limit``
   records (its cost per record is flat; the whole file would take it most of an hour).

Printed: records/s per core of each run, curate (S3) / datatrove (S3) per core, what reading
from the endpoint costs curate over local disk, and whether the two curate runs wrote the same
shards byte for byte. One input file is one Spark task, so ``--cores 1`` (``local[1]``) measures
per core without an idle second core in the sum.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys

from common import ROOT, load_average
from pipeline import count_responses, run_ours, run_peer, warm_caches

sys.path.insert(0, str(ROOT / "tests"))  # tests/servers.py: the local S3 endpoints
from servers import fault_server, moto_server, s3_client, s3_storage_options  # noqa: E402


def digests(run_dir: str) -> dict[str, str]:
    out = {}
    for folder in ("documents", "rejected", "tokens"):
        for name in sorted(os.listdir(os.path.join(run_dir, folder))):
            with open(os.path.join(run_dir, folder, name), "rb") as fh:
                out[f"{folder}/{name}"] = hashlib.sha256(fh.read()).hexdigest()
    return out


@contextlib.contextmanager
def endpoint(kind: str, folder: str, out: str):
    """(URL of the WARC, or of its folder, on a local S3 endpoint; its fsspec options).

    ``ranges``: tests/fault_server.py without faults answering S3's path-style HEAD and ranged GET
    from the file on disk (one WARC named whole: it cannot list). ``moto``: moto's S3 server, which
    can list, but (moto 5.2) reads the whole object for every ranged GET, so its own CPU grows with
    the number of requests and shares the cores with the run."""
    name = next(n for n in sorted(os.listdir(folder)) if n.endswith(".warc.gz"))
    if kind == "moto":
        with moto_server() as server:
            yield upload(server, folder), {"s3": s3_storage_options(server)}
        return
    served = os.path.join(out, "served", "crawl", "segments", "bench", "warc")
    os.makedirs(served, exist_ok=True)
    if not os.path.exists(os.path.join(served, name)):
        os.link(os.path.join(folder, name), os.path.join(served, name))
    with fault_server(os.path.join(out, "served")) as server:
        options = {"s3": {"endpoint_url": server.url, "anon": True}}
        yield f"s3://crawl/segments/bench/warc/{name}", options


def upload(server, folder: str) -> str:
    client = s3_client(server, "crawl")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".warc.gz"):
            client.upload_file(os.path.join(folder, name), "crawl", f"segments/bench/warc/{name}")
    return "s3://crawl/segments/bench/warc"


def cost_per_record(manifest_path: str, records: int) -> None:
    """Core-milliseconds per input record by stage (a local[1] run: wall = one core), for docs/cluster.md's projection."""
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    stages = {entry["stage"]: entry["seconds"] for entry in manifest["funnel"]}
    segment0 = [name for name in stages if name in ("extract", "langid", "gopher_repetition", "gopher_quality", "c4", "fineweb")]
    reading = manifest["inputs"]["task_seconds"] - sum(stages[name] for name in segment0)
    rows = [("WARC reading + decoding", reading)] + [(name, seconds) for name, seconds in stages.items() if seconds]
    timings = manifest["timings"]
    rows += [(f"job: {name}", seconds) for name, seconds in timings.items() if name != "segment0"]
    rows.append(("job: segment 0 beyond task time", timings.get("segment0", 0.0) - manifest["inputs"]["task_seconds"]))
    print("core-ms per input record (curate, local disk):")
    for name, seconds in rows:
        print(f"  {name:<34} {1000 * seconds / records:7.2f}")
    print(f"  {'whole job':<34} {1000 * manifest['summary']['seconds'] / records:7.2f}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in load_average())


def print_rates(results: dict[str, tuple[dict | None, int]], records: int, cores: int, out: str) -> dict[str, float]:
    """Records/s per core of each run that ran, the ratios between them; returns wall seconds by run."""
    rows = []
    for name, (result, n) in results.items():
        if result is None:
            continue
        if "error" in result:
            print(f"{name}: FAILED\n{result['error']}")
            continue
        run_cores = 1 if name.startswith("datatrove") else cores
        n = records if n < 0 else min(n, records)
        rows.append((name, result["wall_s"], n / result["wall_s"] / run_cores))
        print(f"{name:<24} {n:>7,} records {result['wall_s']:8.1f} s {n / result['wall_s'] / run_cores:8.1f} records/s/core")
    rates = dict((name, rate) for name, _, rate in rows)
    walls = dict((name, wall) for name, wall, _ in rows)
    if "curate, S3 endpoint" in rates and "datatrove, S3 endpoint" in rates:
        print(
            f"ratio curate / datatrove, both from the S3 endpoint: {rates['curate, S3 endpoint'] / rates['datatrove, S3 endpoint']:.2f}x per core"
        )
    if "curate, local disk" in walls and "curate, S3 endpoint" in walls:
        print(
            f"reading from the S3 endpoint costs curate {walls['curate, S3 endpoint'] / walls['curate, local disk'] - 1:+.1%} over local disk"
        )
        same = digests(os.path.join(out, "ours-local")) == digests(os.path.join(out, "ours-s3"))
        print(f"shards from local disk and from S3 byte-identical: {same}")
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default="bench/out/cc-crawlfile")
    parser.add_argument("--out", default="bench/out/object_store")
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--peer-limit", type=int, default=5000, help="records datatrove reads (-1: all)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-ours", action="store_true", help="only the peer (e.g. with --peer-limit -1, the whole file)")
    parser.add_argument("--endpoint", default="ranges", choices=["ranges", "moto"], help="the local S3 endpoint (see endpoint())")
    parser.add_argument(
        "--extractor",
        default="blocks",
        choices=["blocks", "trafilatura", "fast"],
        help="our extract stage (default: the product's default, blocks)",
    )
    args = parser.parse_args()
    folder, out = os.path.abspath(args.input), os.path.abspath(args.out)
    records = count_responses(folder)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"input: {records:,} response records in {folder} (commit {commit}, extractor {args.extractor}, load {load()})")
    warm = warm_caches()
    print(f"per-machine caches built first: {json.dumps({k: v for k, v in warm.items() if k != 'error'})}")
    with endpoint(args.endpoint, folder, out) as (url, options):
        local = None if args.no_ours else run_ours(folder, args.cores, os.path.join(out, "ours-local"), args.extractor)
        remote = None if args.no_ours else run_ours(url, args.cores, os.path.join(out, "ours-s3"), args.extractor, storage_options=options)
        peer = None if args.no_peer else run_peer(url, os.path.join(out, "datatrove-s3"), options, args.peer_limit)
    results = {
        "curate, local disk": (local, records),
        "curate, S3 endpoint": (remote, records),
        "datatrove, S3 endpoint": (peer, args.peer_limit),
    }
    walls = print_rates(results, records, args.cores, out)
    if "curate, local disk" in walls:
        cost_per_record(os.path.join(out, "ours-local", "manifest.json"), records)
    print(f"load at the end: {load()}")


if __name__ == "__main__":
    main()
