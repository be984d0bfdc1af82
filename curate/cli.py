"""The ``curate`` command. Each sub-command lives in the module that owns the concern."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "run": ("curate.pipeline:main", "run a recipe: WARC/Parquet/JSONL -> documents, rejected, token shards"),
    "inspect": ("curate.run_inspect:main", "show the funnel of a run and sample removed documents by reason"),
    "train-classifier": ("curate.classify:train_main", "train a fastText classifier from Parquet/JSONL"),
    "ablate": ("trainer.ablate:main", "train the same small model on several recipes and compare"),
    "warm-cache": ("curate.speedups.warm_cache:main", "build the per-machine caches (JVM class archive, MinHash kernels)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: curate COMMAND [ARGS]\n\ncommands:")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:<18}{help_text}")
        return 0
    if argv[0] in ("-V", "--version"):
        from curate import __version__

        print(f"curate {__version__}")
        return 0
    command = argv.pop(0)
    if command not in COMMANDS:
        print(f"curate: unknown command {command!r}; try 'curate --help'", file=sys.stderr)
        return 2
    module_name, _, func = COMMANDS[command][0].partition(":")
    result = getattr(importlib.import_module(module_name), func)(argv)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
