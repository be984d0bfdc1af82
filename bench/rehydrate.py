"""Upsampling by cluster size on real pages: what ``dedup.rehydrate`` adds to a run.

    .venv/bin/python bench/rehydrate.py [--recipe pipelines/recipes/web_filtered.yaml] [--table fineweb2]

Runs the recipe (default: the shared web corpus, 3,132 real pages in ../shared/data/web) with
``rehydrate`` set on its dedup stage, into bench/out/rehydrate/, and prints one JSON line: the
manifest's ``rehydrate`` entry, the survivors per cluster size, wall seconds and the load.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
from pathlib import Path

import yaml

from common import OUT as BENCH_OUT
from common import ROOT, load_average

OUT = BENCH_OUT / "rehydrate"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "pipelines" / "recipes" / "web_filtered.yaml"))
    parser.add_argument("--table", default="fineweb2", help='fineweb2 or a JSON mapping, e.g. \'{"1": 1, "2": 2}\'')
    args = parser.parse_args()
    import pyarrow.parquet as pq

    from curate.pipeline import run_recipe
    from curate.recipe import parse_recipe

    table = args.table if args.table in ("fineweb2",) else {int(k): v for k, v in json.loads(args.table).items()}
    data = yaml.safe_load(Path(args.recipe).read_text())
    dedup = [s for s in data["stages"] if s["stage"] == "dedup"]
    if not dedup:
        raise SystemExit(f"{args.recipe}: no dedup stage")
    dedup[0]["rehydrate"] = table
    data["output"] = str(OUT / data["name"])
    os.chdir(Path(args.recipe).resolve().parent.parent.parent)  # recipe paths are relative to the repository
    started = time.time()
    manifest = run_recipe(parse_recipe(data, file=args.recipe), overwrite=True)
    seconds = time.time() - started
    key = f"{dedup[0].get('name', 'dedup')}.cluster_size"
    scores = pq.read_table(os.path.join(manifest["output"], "documents"), columns=["scores"]).column("scores").to_pylist()
    sizes = collections.Counter(int(dict(s or []).get(key, 1)) for s in scores)
    print(
        json.dumps(
            {
                "recipe": os.path.basename(args.recipe),
                "documents_out": manifest["summary"]["documents_out"],
                "survivors_by_cluster_size": dict(sorted(sizes.items())),
                "rehydrate": manifest["rehydrate"],
                "wall_s": round(seconds, 1),
                "timings": manifest.get("timings"),
                "load": load_average(),
            }
        )
    )


if __name__ == "__main__":
    main()
