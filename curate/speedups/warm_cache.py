"""``curate warm-cache``: build, on request, the per-machine caches that make later runs start sooner.

A run never builds them itself (a fresh machine's first run would pay more than it saves):

* the JVM class archive (:mod:`curate.speedups.class_archive`, ~45 s once, ~3 s off each
  later Spark start);
* numba's compiled MinHash kernels (:mod:`curate.speedups.minhash_kernels`, ~8 s once; a run
  compiles them on first use otherwise), the language-ID kernels
  (:mod:`curate.speedups.fasttext_lid`, ~4 s once) and the Gopher n-gram kernels
  (:mod:`curate.speedups.gopher_ngrams`, ~2 s once).
"""

from __future__ import annotations

import argparse
import sys
import time

import pyarrow as pa

from curate import speedups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="curate warm-cache", description=__doc__.splitlines()[0].strip("`"))
    parser.parse_args(argv)
    from curate.speedups import class_archive

    if speedups.enabled("class_archive"):
        started = time.time()
        path = class_archive.ensure()
        print(f"JVM class archive: {path or 'not built (see the log)'} ({time.time() - started:.1f} s)")
    else:
        print("JVM class archive: switched off")
    if speedups.enabled("minhash_kernels"):
        started = time.time()
        from curate.dedup import MinHasher, MinHashParams

        MinHasher.from_params(MinHashParams()).signatures(pa.array(["warm the minhash kernels"]))
        print(f"MinHash kernels: compiled or loaded from numba's cache ({time.time() - started:.1f} s)")
    if speedups.enabled("fasttext_lid"):
        started = time.time()
        from curate.langid import predict_languages

        predict_languages(["warm the language identification kernels"])
        print(f"language-ID kernels: compiled or loaded from numba's cache ({time.time() - started:.1f} s)")
    if speedups.enabled("gopher_ngrams"):
        started = time.time()
        from curate.filters.gopher import GopherRepetitionParams, GopherRepetitionStage

        GopherRepetitionStage(GopherRepetitionParams()).text_verdict("warm the gopher n-gram kernels " * 3)
        print(f"Gopher n-gram kernels: compiled or loaded from numba's cache ({time.time() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
