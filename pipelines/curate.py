"""spark-submit entry point: ``spark-submit pipelines/curate.py RECIPE.yaml [--output DIR] [--resume]``.

The master, executors and memory come from spark-submit; everything else from the recipe.
"""

import os
import sys

# Run as a script, this file's folder is sys.path[0] and this file (curate.py) would shadow the
# curate package; drop that folder so `import curate` finds the package (or the --py-files zip).
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

from curate.pipeline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
