"""``curate run RECIPE``: validate the recipe, then run it on Spark.

The recipe is parsed and every stage checked (files exist, models load) before a Spark
session is started, so a typo costs a second, not a cluster start-up. The same entry point
serves ``spark-submit pipelines/run_recipe.py RECIPE`` (the master then comes from
spark-submit) and ``curate run RECIPE [--master URL]`` (local Spark started for you).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from curate.recipe import Recipe, RecipeError, load_recipe
from curate.storage import is_remote


def run_recipe(
    recipe_path: "str | Recipe",
    *,
    output: str | None = None,
    master: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    keep_work: bool = False,
    spark=None,
) -> dict:
    """Run a recipe file; returns the manifest (``manifest["output"]`` is the run folder)."""
    recipe = recipe_path if isinstance(recipe_path, Recipe) else load_recipe(recipe_path)
    from curate.spark.job import CurationJob

    master = master or (None if os.environ.get("PYSPARK_GATEWAY_PORT") else recipe.spark.master)
    job = CurationJob(recipe, output=output, master=master, overwrite=overwrite, resume=resume, spark=spark, keep_work=keep_work)
    return job.run()


def summary_lines(manifest: dict) -> list[str]:
    s = manifest["summary"]
    lines = [
        f"curate: run {manifest['name']!r} finished in {s['seconds']:.1f}s",
        f"  documents in      {s['documents_in']:>10,}",
        f"  documents out     {s['documents_out']:>10,}",
        f"  rejected          {s['documents_rejected']:>10,}",
        f"  tokens            {s['tokens']:>10,}",
        f"  token shards      {s['token_shards']:>10,}",
    ]
    languages = manifest.get("languages", {})
    if len(languages) > 1:  # a multilingual run: the largest few (all of them are in the manifest)
        top = ", ".join(f"{lang} {v['documents']:,}" for lang, v in list(languages.items())[:5])
        lines.append(f"  languages         {len(languages):>10,}  ({top}{', ...' if len(languages) > 5 else ''})")
    problems = manifest.get("inputs", {}).get("problems", [])
    if problems:
        lines.append(f"  input problems    {len(problems):>10,}  (first: {problems[0]})")
    output = manifest["output"]
    lines.append(f"  output            {output}")
    for name in ("documents/", "rejected/", "tokens/", "manifest.json"):
        lines.append(f"    {name:<14}{output.rstrip('/')}/{name}" if is_remote(output) else f"    {name:<14}{os.path.join(output, name)}")
    if is_remote(output) or os.path.exists(os.path.join(output, "report.html")):
        lines.append(
            f"    report.html   {output.rstrip('/')}/report.html"
            if is_remote(output)
            else f"    report.html   {os.path.join(output, 'report.html')}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="curate run", description="Run a curation recipe on Spark.")
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("--master", help="Spark master URL (default: the recipe's spark.master, local[*])")
    parser.add_argument("--output", help="output folder or object-store URL, e.g. s3://bucket/runs/x (default: the recipe's output)")
    parser.add_argument(
        "--work-dir", help="folder for intermediate files (default: OUTPUT/_work; for an object-store output, ~/.cache/curate/work/...)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="delete an existing run in the output folder first")
    group.add_argument("--resume", action="store_true", help="reuse completed work of the same recipe in the output folder")
    parser.add_argument("--keep-work", action="store_true", help="keep intermediate stage outputs (OUTPUT/_work or --work-dir)")
    parser.add_argument("--check", action="store_true", help="only validate the recipe (no Spark)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        recipe = load_recipe(args.recipe)
    except RecipeError as e:
        print(f"curate: invalid recipe: {e}", file=sys.stderr)
        return 2
    if args.work_dir:
        recipe.work_dir = os.path.abspath(args.work_dir)
    if args.check:
        print(f"curate: {args.recipe}: OK ({len(recipe.sources)} sources, {len(recipe.stages)} stages)")
        return 0
    from curate.dedup_index import DedupIndexError
    from curate.run_output import RunExistsError
    from curate.sources import InputFailedError

    try:
        manifest = run_recipe(
            recipe, output=args.output, master=args.master, overwrite=args.overwrite, resume=args.resume, keep_work=args.keep_work
        )
    except RunExistsError as e:
        print(f"curate: {e}", file=sys.stderr)
        return 3
    except DedupIndexError as e:  # the index is held by another run, or built with other settings
        print(f"curate: {e}", file=sys.stderr)
        return 4
    except InputFailedError as e:  # a file still unreadable after its retries, with reading.on_error: fail
        print(f"curate: {e}", file=sys.stderr)
        return 5
    print("\n".join(summary_lines(manifest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
