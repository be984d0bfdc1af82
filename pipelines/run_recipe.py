"""spark-submit entry point: ``spark-submit pipelines/run_recipe.py RECIPE.yaml [--output DIR] [--resume]``.

The master, executors and memory come from spark-submit; everything else from the recipe.
"""

import sys

from curate.pipeline import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
