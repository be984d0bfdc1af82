"""Make the small fastText models the fastText speed-up tests read (run once; outputs committed).

    .venv/bin/python tests/data/fasttext/make_models.py

Paragraphs of the bundled test pages (tests/data/html, tests/data/warc) and WikiText lines,
labelled with lid.176's language, train three small supervised models:

* ``lid-hs.bin``: hierarchical softmax, dense (what the speed-up mirrors);
* ``lid-hs.ftz``: the same quantized with a pruned bucket table (as ``lid.176.ftz`` is);
* ``lid-ns.bin``: negative sampling (what it does not mirror: fastText's own predict runs).

fasttext-numpy2-wheel 0.9.2's training stops with "Encountered NaN" at random (about half the
time on any data), so each model is retried until one trains.
"""

from __future__ import annotations

import sys
from pathlib import Path

import fasttext

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/

from test_speedups_fasttext_lid import bundled_texts  # noqa: E402

from curate.langid import predict_languages  # noqa: E402


def trained(path: Path, **options):
    for _ in range(100):
        try:
            return fasttext.train_supervised(str(path), thread=1, seed=1, verbose=0, **options)
        except RuntimeError as error:
            if "NaN" not in str(error):
                raise
    raise RuntimeError("fastText training hit NaN 100 times")


def main() -> None:
    paragraphs = [" ".join(p.split()) for t in bundled_texts() for p in t.split("\n") if len(p.split()) >= 5]
    codes, _ = predict_languages(paragraphs)
    train = HERE / "train.txt"
    train.write_text("".join(f"__label__{c} {p}\n" for c, p in zip(codes, paragraphs)), encoding="utf-8")
    try:
        model = trained(train, loss="hs", dim=16, minn=2, maxn=4, bucket=5_000, minCount=3, epoch=3)
        model.save_model(str(HERE / "lid-hs.bin"))
        model.quantize(input=str(train), qnorm=False, cutoff=2_000, retrain=False, thread=1, verbose=0)
        model.save_model(str(HERE / "lid-hs.ftz"))
        trained(train, loss="ns", dim=4, minn=2, maxn=4, bucket=1_000, minCount=3, epoch=1).save_model(str(HERE / "lid-ns.bin"))
    finally:
        train.unlink()


if __name__ == "__main__":
    main()
