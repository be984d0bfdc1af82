"""Compare two run folders file by file: are the outputs of two code versions the same?

    .venv/bin/python bench/compare_runs.py RUN_A RUN_B [--code TREE_A TREE_B] [--quiet]

For every file under either folder (relative path), prints ``identical`` or ``DIFFERENT`` and,
for a difference, the first differing row and field:

* Parquet: schema, then rows in file order (``row N, field F: A != B``); ``bytes`` says whether
  the files are also byte-equal. A Parquet folder whose file names differ between the runs (names
  that carry a task or attempt id) is compared as one table, rows sorted, and reported as
  ``FOLDER/*.parquet``.
* JSON (``manifest.json``, ``dedup/stats.json``): keys ending in ``seconds`` and those named in
  ``--ignore-key`` (default ``IGNORED_KEYS``) are dropped at any depth, each run's own folder is
  replaced by ``<run>`` and, with ``--code``, each run's code tree by ``<code>``; then every
  differing path (``.funnel[3].docs_out: 12 != 13``, ``.recipe.x: only in B``) is printed.
* anything else: byte equality. Hadoop's ``.NAME.crc`` checksum sidecars are left out.

Exit status 0 when every file is identical, 1 otherwise. Used for the #20 clean-up's check that
the 5,000-record bench run's outputs are the same before and after (bench/README.md).

Same input, same output under any load (issue #32), as one command:

    .venv/bin/python bench/make_warc.py --records 5000 --files 2 --out bench/out/cc-1x
    .venv/bin/python bench/compare_runs.py --oversubscribe bench/out/cc-1x [--cores 2] [--factor 4] [--out DIR]

runs ``bench/pipeline.py``'s recipe (the FineWeb-like one) over the WARCs twice, each in a fresh
process: once with ``local[cores]`` on the machine as it is, once with ``local[cores x factor]``
(more Spark tasks than cores) while ``cores x factor`` busy processes (a CPU hog) compete for the
same cores; then compares the two run folders as above (every shard byte for byte). Printed: each
run's wall seconds and the load average around it (other users of the machine count too).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq

# Fields that say when a run happened or how long it took (`timings`: wall seconds per segment),
# not what it produced; any key ending in "seconds" too. `recipe_hash` hashes the recipe, whose
# output folder (when the recipe names it) and tokenizer path differ between two runs' folders
# and code trees; the recipe itself is compared, those paths replaced.
IGNORED_KEYS = ("created", "started", "finished", "timings", "recipe_hash")
Difference = str | None


def relative_files(root: str) -> set[str]:
    found = set()
    for folder, subs, names in os.walk(root):
        subs[:] = [s for s in subs if s != "__pycache__"]
        for name in names:
            if name.startswith(".") and name.endswith(".crc"):
                continue  # Hadoop's checksum sidecars: named after task files, checked by content below
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def first_row_difference(a: pa.Table, b: pa.Table) -> Difference:
    """Where two tables first differ: schema, row count, or the first (row, field) that does."""
    if a.schema != b.schema:
        return f"schema: {a.schema} != {b.schema}"
    if a.equals(b):
        return None
    chunk = 1024  # rows as Python values a chunk at a time: token lists are large
    for start in range(0, min(a.num_rows, b.num_rows), chunk):
        rows_a, rows_b = a.slice(start, chunk).to_pylist(), b.slice(start, chunk).to_pylist()
        for index, (row_a, row_b) in enumerate(zip(rows_a, rows_b), start):
            if row_a != row_b:
                field = next(f for f in a.column_names if row_a[f] != row_b[f])
                return f"row {index}, field {field}: {describe(row_a[field], row_b[field])}"
    if a.num_rows != b.num_rows:
        return f"rows: {a.num_rows} != {b.num_rows}"
    return None


def short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def describe(a: object, b: object) -> str:
    """Two differing values; for strings and lists, from the first position where they differ."""
    if isinstance(a, (str, list)) and type(a) is type(b):
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        unit = "character" if isinstance(a, str) else "item"
        return f"from {unit} {at} (lengths {len(a)}, {len(b)}): {short(a[at:])} != {short(b[at:])}"
    return f"{short(a)} != {short(b)}"


def is_timing(key: str, ignore: set[str]) -> bool:
    return key in ignore or key.endswith("seconds")


def without_timing(value: object, ignore: set[str], paths: dict[str, str]) -> object:
    """A JSON value with timing keys dropped at any depth and the given paths replaced."""
    if isinstance(value, dict):
        return {k: without_timing(v, ignore, paths) for k, v in value.items() if not is_timing(k, ignore)}
    if isinstance(value, list):
        return [without_timing(v, ignore, paths) for v in value]
    if isinstance(value, str):
        for path, name in paths.items():
            value = value.replace(path, name)
    return value


def json_differences(a: object, b: object, where: str = "") -> list[str]:
    """Every path at which two JSON values differ (a key only one has, a value, a length)."""
    if type(a) is not type(b):
        return [f"{where or '.'}: {short(a)} != {short(b)}"]
    if isinstance(a, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                found.append(f"{where}.{key}: only in {'B' if key not in a else 'A'}")
            else:
                found += json_differences(a[key], b[key], f"{where}.{key}")
        return found
    if isinstance(a, list):
        found = [d for index, (x, y) in enumerate(zip(a, b)) for d in json_differences(x, y, f"{where}[{index}]")]
        return found + ([f"{where}: length {len(a)} != {len(b)}"] if len(a) != len(b) else [])
    return [] if a == b else [f"{where or '.'}: {short(a)} != {short(b)}"]


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def compare_file(run_a: str, run_b: str, rel: str, ignore: set[str], paths: dict[str, str]) -> tuple[bool, str]:
    """(identical, what was compared or the first difference) for one file both runs have."""
    path_a, path_b = os.path.join(run_a, rel), os.path.join(run_b, rel)
    same_bytes = read_bytes(path_a) == read_bytes(path_b)
    if rel.endswith(".parquet"):
        found = first_row_difference(pq.read_table(path_a), pq.read_table(path_b))
        rows = pq.ParquetFile(path_a).metadata.num_rows
        return found is None, found or f"{rows} rows equal, bytes {'equal' if same_bytes else 'differ'}"
    if rel.endswith(".json"):
        docs = [without_timing(json.loads(read_bytes(p)), ignore, paths) for p in (path_a, path_b)]
        found = json_differences(*docs)
        if found:  # all of them: a manifest can differ in an echoed option and agree on the funnel
            return False, "; ".join(found)
        return True, f"equal but for timings, bytes {'equal' if same_bytes else 'differ'}"
    return same_bytes, "bytes equal" if same_bytes else "bytes differ"


def sorted_table(run: str, rels: list[str]) -> pa.Table:
    table = pa.concat_tables(pq.read_table(os.path.join(run, rel)) for rel in sorted(rels))
    keys = [(name, "ascending") for name, kind in zip(table.column_names, table.schema.types) if not pa.types.is_nested(kind)]
    return table.sort_by(keys)


def compare_folder(run_a: str, run_b: str, rels_a: list[str], rels_b: list[str]) -> tuple[bool, str]:
    """A Parquet folder whose file names differ: the union of its rows, sorted, compared."""
    a, b = sorted_table(run_a, rels_a), sorted_table(run_b, rels_b)
    found = first_row_difference(a, b)
    return found is None, found or f"{a.num_rows} rows equal as one sorted table ({len(rels_a)} / {len(rels_b)} files)"


def parquet_folders(files: set[str]) -> dict[str, list[str]]:
    folders = defaultdict(list)
    for rel in files:
        if rel.endswith(".parquet"):
            folders[os.path.dirname(rel)].append(rel)
    return folders


def compare_runs(run_a: str, run_b: str, ignore: set[str], paths: dict[str, str]) -> list[tuple[str, bool, str]]:
    """One (file or folder, identical, detail) per file of either run; ``paths`` maps each run's
    own paths (its folder, its code tree) to a common name for JSON comparison."""
    files_a, files_b = relative_files(run_a), relative_files(run_b)
    results = []
    folders_a, folders_b = parquet_folders(files_a), parquet_folders(files_b)
    by_content = {f for f in set(folders_a) | set(folders_b) if set(folders_a.get(f, [])) != set(folders_b.get(f, []))}
    for folder in sorted(by_content):
        same, detail = compare_folder(run_a, run_b, folders_a.get(folder, []), folders_b.get(folder, []))
        results.append((os.path.join(folder, "*.parquet"), same, detail))
    for rel in sorted(files_a | files_b):
        if rel.endswith(".parquet") and os.path.dirname(rel) in by_content:
            continue
        if rel not in files_a or rel not in files_b:
            results.append((rel, False, f"only in {'B' if rel not in files_a else 'A'}"))
            continue
        results.append((rel, *compare_file(run_a, run_b, rel, ignore, paths)))
    return results


HOG = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def timed_run(input_dir: str, cores: int, out: str) -> dict:
    """One run of bench/pipeline.py's recipe in a fresh process, with the load average before and after."""
    from common import load_average
    from pipeline import run_ours

    before = load_average()
    result = run_ours(input_dir, cores, out)
    if "error" in result:
        raise SystemExit(f"run into {out} failed:\n{result['error']}")
    return {
        "out": out,
        "master": f"local[{cores}]",
        "wall_s": round(result["wall_s"], 1),
        "load_before": before,
        "load_after": load_average(),
    }


def oversubscribed(input_dir: str, cores: int, factor: int, out: str) -> int:
    """Idle-as-it-is run, then an oversubscribed run beside a CPU hog; compare; exit status as main()'s."""
    import subprocess

    idle = timed_run(input_dir, cores, os.path.join(out, "idle"))
    print(json.dumps({"run": "as the machine is", **idle}), flush=True)
    hogs = [subprocess.Popen([sys.executable, "-c", HOG.format(seconds=7200)]) for _ in range(cores * factor)]
    try:
        busy = timed_run(input_dir, cores * factor, os.path.join(out, "oversubscribed"))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    print(json.dumps({"run": f"oversubscribed: {cores * factor} task slots and {len(hogs)} busy processes", **busy}), flush=True)
    return report(compare_loaded(idle["out"], busy["out"]), quiet=True)


def compare_loaded(idle: str, busy: str) -> list[tuple[str, bool, str]]:
    """``compare_runs`` of two runs of one recipe that differ only in their master: the manifests echo it
    (``local[N]``, Spark's default parallelism), and report.html shows it beside the runs' timings and
    dates; everything the runs produced must agree."""
    paths = {os.path.abspath(idle): "<run>", os.path.abspath(busy): "<run>"}
    results = compare_runs(idle, busy, set(IGNORED_KEYS) | {"master", "default_parallelism"}, paths)
    return [
        (n, True, "not compared: the runs' timings, dates and masters") if n == "report.html" else (n, same, d) for n, same, d in results
    ]


def report(results: list[tuple[str, bool, str]], quiet: bool) -> int:
    for name, same, detail in results:
        if not (same and quiet):
            print(f"{'identical' if same else 'DIFFERENT':<10} {name}: {detail}")
    different = sum(not same for _, same, _ in results)
    print(f"{len(results) - different} identical, {different} different")
    return 1 if different else 0


def main() -> int:
    if "--oversubscribe" in sys.argv:
        parser = argparse.ArgumentParser(description="same input, same output under any load")
        parser.add_argument("--oversubscribe", metavar="WARC_DIR", required=True, help="folder of *.warc.gz (bench/make_warc.py)")
        parser.add_argument("--cores", type=int, default=2)
        parser.add_argument("--factor", type=int, default=4, help="task slots and busy processes per core in the second run")
        parser.add_argument("--out", default="bench/out/oversubscribe")
        args = parser.parse_args()
        return oversubscribed(args.oversubscribe, args.cores, args.factor, args.out)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument(
        "--ignore-key", action="append", help=f"JSON key to leave out at any depth, besides *seconds (default: {', '.join(IGNORED_KEYS)})"
    )
    parser.add_argument("--code", nargs=2, metavar=("TREE_A", "TREE_B"), help="code trees the runs came from (recipe and model paths)")
    parser.add_argument("--quiet", action="store_true", help="print only the differences and the totals")
    args = parser.parse_args()
    ignore = set(args.ignore_key or IGNORED_KEYS)
    paths = {os.path.abspath(args.run_a): "<run>", os.path.abspath(args.run_b): "<run>"}
    if args.code:
        paths.update({os.path.abspath(args.code[0]): "<code>", os.path.abspath(args.code[1]): "<code>"})
    return report(compare_runs(args.run_a, args.run_b, ignore, paths), args.quiet)


if __name__ == "__main__":
    sys.exit(main())
