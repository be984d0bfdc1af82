"""Gopher repetition rules: the plain n-gram code against ``curate.speedups.gopher_ngrams``, same texts, one process.

    .venv/bin/python bench/gopher_speed.py [--input bench/out/cc-1x] [--records 2500] [--rounds 3]

Texts: the main text (``blocks`` extractor) of the first ``--records`` pages of ``--input``
that lid.176 calls English (the documents that reach the stage in the FineWeb recipe). Times by
CPU, in alternation: the whole stage verdict plain and compiled, then the n-gram rules alone
(word ids prepared beforehand). Prints the best of the rounds and whether every verdict and
fraction agreed.
"""

from __future__ import annotations

import os

from curate.filters.gopher import GopherRepetitionParams, GopherRepetitionStage, word_ids_and_offsets
from curate.filters.text import split_words
from curate.langid import predict_languages

from common import cpu_timed
from langid_speed import bench_arguments, page_texts


def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0])
    texts = page_texts(args.input, args.records)
    codes, _ = predict_languages(texts)
    texts = [t for t, code in zip(texts, codes) if code == "en"]
    params = GopherRepetitionParams()
    os.environ["CURATE_SPEEDUP_GOPHER_NGRAMS"] = "off"
    plain = GopherRepetitionStage(params)
    plain.compiled_rules()
    del os.environ["CURATE_SPEEDUP_GOPHER_NGRAMS"]
    sped_up = GopherRepetitionStage(params)
    rules = sped_up.compiled_rules()
    prepared = [(word_ids_and_offsets(words), len(t)) for t in texts if (words := tuple(split_words(t)))]
    rules.verdict(*prepared[0][0], prepared[0][1])  # numba's kernels loaded once, outside the timing

    runs = {
        "stage, plain": lambda: [plain.text_verdict(t) for t in texts],
        "stage, compiled": lambda: [sped_up.text_verdict(t) for t in texts],
        "n-gram rules, plain": lambda: [plain.ngram_verdict(ids, offsets, n) for (ids, offsets), n in prepared],
        "n-gram rules, compiled": lambda: [rules.verdict(ids, offsets, n) for (ids, offsets), n in prepared],
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, list] = {}
    for _ in range(args.rounds):
        for name, run in runs.items():
            spent, results[name] = cpu_timed(run)
            seconds[name].append(spent)
    words = sum(len(ids) for (ids, _), _ in prepared)
    print(f"{len(texts):,} English texts, {words / 1e6:.2f} M words, {args.rounds} rounds, CPU seconds (best)")
    for name, runs_s in seconds.items():
        print(f"  {name:<24} {min(runs_s):6.2f} s   runs {', '.join(f'{r:.2f}' for r in runs_s)}")
    same = results["stage, plain"] == results["stage, compiled"] and results["n-gram rules, plain"] == results["n-gram rules, compiled"]
    print(f"verdicts and fractions identical: {same}")


if __name__ == "__main__":
    main()
