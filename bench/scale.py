"""Scale: peak memory and time per record at 1x, 4x and 16x the input.

    .venv/bin/python bench/scale.py --kind warc  [--base 5000] [--factors 1,4,16] [--cores 2]
    .venv/bin/python bench/scale.py --kind jsonl [--base 20000]

``--kind warc`` runs ``pipelines/recipes/fineweb.yaml`` on WARCs built by ``bench/make_warc.py``
(5,000 records per file, so a bigger input is more files of the same size, like a Common Crawl
snapshot). ``--kind jsonl`` runs the job skeleton only (JSONL reader, shard writers, tokenizer:
no stage models) on real WikiText-2 paragraphs, 10,000 documents per file.

Each run is a fresh ``curate run`` process; its process tree is sampled every 0.2 s with psutil:
peak memory (PSS: shared pages split between the processes sharing them) of the driver (Python and
its JVM) and of the Python workers (the largest single worker, and the largest sum over the
daemon and all workers at one instant).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import threading
import time

import psutil

from common import PRODUCT_PYTHON, ROOT

sys.path.insert(0, str(ROOT / "tests"))  # tests/cluster_util.py: WikiText paragraphs, the smoke recipe


class TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.done = threading.Event()
        self.peak = {"driver_python_mb": 0.0, "driver_jvm_mb": 0.0, "worker_max_mb": 0.0, "workers_sum_mb": 0.0, "workers_max_count": 0}

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.done.is_set():
            try:
                tree = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            workers = []
            for proc in tree:
                try:
                    cmd = " ".join(proc.cmdline())
                    # PSS: a forked worker shares pages with its daemon; summing RSS would count them twice
                    rss = proc.memory_full_info().pss / 2**20
                except psutil.Error:
                    continue
                if proc.pid == self.pid:
                    self.peak["driver_python_mb"] = max(self.peak["driver_python_mb"], rss)
                elif "java" in proc.name() or "java" in cmd.split(" ")[0]:
                    self.peak["driver_jvm_mb"] = max(self.peak["driver_jvm_mb"], rss)
                elif "pyspark.daemon" in cmd or "pyspark.worker" in cmd:
                    workers.append(rss)
            if workers:
                self.peak["worker_max_mb"] = max(self.peak["worker_max_mb"], max(workers))
                self.peak["workers_sum_mb"] = max(self.peak["workers_sum_mb"], sum(workers))
                self.peak["workers_max_count"] = max(self.peak["workers_max_count"], len(workers))
            time.sleep(self.interval)


def make_jsonl(folder: str, documents: int, per_file: int = 10_000) -> str:
    from cluster_util import wikitext_paragraphs

    paragraphs = wikitext_paragraphs(200)
    os.makedirs(folder, exist_ok=True)
    files = -(-documents // per_file)
    for f in range(files):
        path = os.path.join(folder, f"part-{f:04d}.jsonl")
        if os.path.exists(path):
            continue
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            for i in range(f * per_file, min((f + 1) * per_file, documents)):
                # three paragraphs per document, in an order unique to the document
                n = len(paragraphs)
                text = "\n\n".join(paragraphs[(i * k + k) % n] for k in (1, 7, 13))
                fh.write(json.dumps({"id": f"doc-{i}", "text": text, "url": f"https://wiki.example/{i}"}) + "\n")
        os.replace(path + ".tmp", path)
    return os.path.join(folder, "*.jsonl")


def make_warc(folder: str, records: int, files: int) -> list[str]:
    """The first ``files`` WARCs of one input of ``records`` records (5,000 per file): the
    smaller factors read a prefix of the largest one, so they are built once."""
    if not os.path.exists(os.path.join(folder, "truth.json")):
        from make_warc import build

        build(records, folder, files=max(1, records // 5000))
    return sorted(glob.glob(os.path.join(folder, "*.warc.gz")))[:files]


def write_recipe(kind: str, inputs: str, path: str, tokenizer: str) -> str:
    if kind == "warc":
        import yaml

        with open(os.path.join(ROOT, "pipelines", "recipes", "fineweb.yaml")) as fh:
            data = yaml.safe_load(fh)
        data["sources"] = [{"name": "cc", "kind": "warc", "paths": inputs}]
        data["tokenizer"] = {"path": tokenizer, "eos_token": "<|endoftext|>"}
        data["spark"] = {"progress": False, "driver_memory": "2g"}
        with open(path, "w") as fh:
            yaml.safe_dump(data, fh)
    else:
        from pathlib import Path

        from cluster_util import write_smoke_recipe

        write_smoke_recipe(Path(path), inputs, tokenizer, "unused", shards=8)
    return path


def run_once(recipe: str, output: str, cores: int) -> dict:
    cmd = [str(PRODUCT_PYTHON), "-m", "curate.pipeline", recipe, "--output", output, "--master", f"local[{cores}]", "--overwrite"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"curate run failed:\n{stderr[-3000:]}")
    with open(os.path.join(output, "manifest.json")) as fh:
        manifest = json.load(fh)
    return {
        "wall_s": wall,
        "job_s": manifest["summary"]["seconds"],
        "documents_in": manifest["summary"]["documents_in"],
        "timings": manifest["timings"],
        **sampler.peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="peak memory and time per record at growing input")
    parser.add_argument("--kind", choices=["warc", "jsonl"], default="warc")
    parser.add_argument("--base", type=int, default=None, help="records at 1x (warc: 5000, jsonl: 20000)")
    parser.add_argument("--factors", default="1,4,16")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", default="bench/out/scale")
    args = parser.parse_args()
    base = args.base or (5000 if args.kind == "warc" else 20_000)
    from pipeline import tokenizer_file  # bench/pipeline.py: the shipped tokenizer or a stand-in

    tokenizer = tokenizer_file()
    out = os.path.abspath(args.out)
    rows = []
    factors = [int(f) for f in args.factors.split(",")]
    for factor in factors:
        n = base * factor
        if args.kind == "warc":
            inputs = make_warc(os.path.join(out, f"warc-{max(factors)}x"), base * max(factors), max(1, n // 5000))
        else:
            inputs = make_jsonl(os.path.join(out, f"{args.kind}-{factor}x"), n)
        recipe = write_recipe(args.kind, inputs, os.path.join(out, f"{args.kind}-{factor}x.yaml"), tokenizer)
        result = run_once(recipe, os.path.join(out, f"run-{args.kind}-{factor}x"), args.cores)
        result.update(factor=factor, records=n, ms_per_record=1000 * result["wall_s"] / n)
        rows.append(result)
        print(json.dumps(result), flush=True)
    print(f"\n{args.kind}, local[{args.cores}]")
    print(
        f"{'input':>6}{'records':>9}{'wall s':>9}{'ms/rec':>8}{'ms/rec (job)':>14}{'driver py MB':>14}{'driver JVM MB':>15}{'worker max MB':>15}{'workers sum MB':>16}"
    )
    for r in rows:
        print(
            f"{str(r['factor']) + 'x':>6}{r['records']:>9,}{r['wall_s']:>9.1f}{r['ms_per_record']:>8.2f}{1000 * r['job_s'] / r['records']:>14.2f}"
            f"{r['driver_python_mb']:>14.0f}{r['driver_jvm_mb']:>15.0f}{r['worker_max_mb']:>15.0f}{r['workers_sum_mb']:>16.0f}"
        )


if __name__ == "__main__":
    main()
