"""Language ID: fastText's own ``predict`` against ``curate.speedups.fasttext_lid``, same texts, one process.

    .venv/bin/python bench/langid_speed.py [--input bench/out/cc-1x] [--records 2500] [--rounds 3]

Texts: the main text (``blocks`` extractor) of the first ``--records`` pages of the WARC files
in ``--input``, as the langid stage sees them. Each round times, by CPU time, in alternation:
fastText's ``predict`` (k=1, batches of 1,024 as the stage runs them), the speed-up with a
fresh predictor, made inside the timing (every word new: what a Spark task's first file costs) and the speed-up again
(words cached: later batches and files of the same worker). Prints the best of the rounds and
whether every label and float32 probability agreed.
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np
from common import cpu_timed

from curate.extract import html_to_text_blocks
from curate.langid import default_model_path, load_model
from curate.speedups.fasttext_lid import BatchPredictor
from curate.stage import Counters
from curate.warc import read_warc

BATCH = 1024


def page_texts(folder: str, records: int) -> list[str]:
    texts: list[str] = []
    for path in sorted(glob.glob(os.path.join(folder, "*.warc.gz"))):
        for batch in read_warc(path, "bench", Counters()):
            for html in batch.column("html").to_pylist():
                text = html_to_text_blocks(html or "")
                if text and text.strip():
                    texts.append(text)
            if len(texts) >= records:
                return texts[:records]
    return texts


def bench_arguments(description: str) -> argparse.Namespace:
    """The options these per-stage speed benches share: input folder, records, timing rounds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--input", default="bench/out/cc-1x")
    parser.add_argument("--records", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0])
    texts = page_texts(args.input, args.records)
    lines = [" ".join(t.split()) for t in texts]
    path = default_model_path()
    model = load_model(path)
    batches = [lines[i : i + BATCH] for i in range(0, len(lines), BATCH)]
    BatchPredictor.for_model(model, path).predict(lines[:8])  # numba's kernels loaded once, outside the timing

    def plain() -> list:
        out = []
        for batch in batches:
            labels, probs = model.predict(batch, k=1)
            out += [(label[0], np.float32(p[0]).tobytes()) for label, p in zip(labels, probs)]
        return out

    def sped_up(predictor: BatchPredictor) -> list:
        out = []
        for batch in batches:
            labels, probs = predictor.predict(batch)
            out += [(label, p.tobytes()) for label, p in zip(labels, probs)]
        return out

    predictors: list[BatchPredictor] = []

    def fresh() -> list:
        # making the predictor (reading the file, decoding its rows) is part of a first pass
        predictors.append(BatchPredictor.for_model(model, path))
        return sped_up(predictors[-1])

    def cached() -> list:
        return sped_up(predictors[-1])

    best: dict[str, list[float]] = {"fastText predict": [], "speed-up, new words": [], "speed-up, words cached": []}
    same = True
    for _ in range(args.rounds):
        for name, run in zip(best, (plain, fresh, cached)):
            seconds, got = cpu_timed(run)
            best[name].append(seconds)
            if name == "fastText predict":
                want = got
            same = same and got == want
    chars = sum(map(len, texts))
    print(f"{len(texts):,} texts, {chars / 1e6:.1f} M characters, {args.rounds} rounds, CPU seconds (best)")
    base = min(best["fastText predict"])
    for name, runs in best.items():
        print(f"  {name:<24} {min(runs):6.2f} s  {base / min(runs):5.1f}x   runs {', '.join(f'{r:.2f}' for r in runs)}")
    print(f"labels and float32 probabilities identical: {same}")


if __name__ == "__main__":
    main()
