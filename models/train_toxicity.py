"""Train models/toxicity.bin: a fastText tweet classifier, label ``toxic`` vs ``clean``.

Data (models/data/classifiers/, copied from ../shared/data with license lines): the
OffensEval-2019 tweets (tweeteval-offensive). A tweet is ``toxic`` when it is labelled
offensive. Trained on the official train split with fixed hyper-parameters, chosen on the
validation split (issue #22): word 1-3-grams plus character 2-5-grams inside words, which
lifted test macro-F1 from 0.66 to 0.73. HatEval-2019 is no longer trained on (adding its
train split lowered validation macro-F1 from 0.70 to 0.66: "hateful" is a narrower,
differently targeted label) but its official test split is still reported. Reproducible: one thread,
fixed seed. ``models/check_toxicity_web.py`` measures the model on real web pages.

    .venv/bin/python models/train_toxicity.py
"""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from curate.classify import TrainingConfig, evaluate, train_fasttext, write_model_card  # noqa: E402

DATA = HERE / "data" / "classifiers"
OUTPUT = HERE / "toxicity.bin"
CARD = HERE / "MODEL_CARD_toxicity.md"
CONFIG = TrainingConfig(
    epoch=10, lr=0.3, word_ngrams=3, dim=32, min_count=2, bucket=100_000, minn=2, maxn=5, quantize=True, cutoff=30_000, seed=0
)


def read_split(task: str, split: str) -> list[tuple[str, str]]:
    folder = DATA / f"tweeteval-{task}"
    with gzip.open(folder / f"{split}_text.txt.gz", "rt", encoding="utf-8") as fh:
        texts = fh.read().splitlines()
    with gzip.open(folder / f"{split}_labels.txt.gz", "rt", encoding="utf-8") as fh:
        labels = [line.strip() for line in fh.read().splitlines()]
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {split} has {len(texts)} texts but {len(labels)} labels")
    return [(text, "toxic" if label == "1" else "clean") for text, label in zip(texts, labels)]


def macro_f1(metrics: dict[str, dict[str, float]]) -> float:
    return (metrics["clean"]["f1"] + metrics["toxic"]["f1"]) / 2


def main() -> int:
    train = read_split("offensive", "train")
    valid = read_split("offensive", "val")
    tests = {
        "OffensEval-2019 official test split": read_split("offensive", "test"),
        "HatEval-2019 official test split (another task: hateful, not offensive; not trained on)": read_split("hate", "test"),
    }
    model = train_fasttext(train, str(OUTPUT), CONFIG)
    title = f"Held-out metrics: OffensEval-2019 validation split ({len(valid)} tweets)"
    evaluations = {title: evaluate(model, valid, CONFIG.normalization)}
    for title, examples in tests.items():
        evaluations[f"{title} ({len(examples)} tweets)"] = evaluate(model, examples, CONFIG.normalization)
    counts: dict[str, int] = {}
    for _, label in train:
        counts[label] = counts.get(label, 0) + 1
    write_model_card(
        str(CARD),
        name="toxicity",
        model_path=os.path.relpath(OUTPUT, HERE.parent),
        data=(
            "OffensEval-2019 tweets from cardiffnlp/tweeteval (copies in `models/data/classifiers/`, "
            "research-use terms of the original dataset). Label `toxic` = offensive (label 1), `clean` "
            "otherwise. Trained on the official train split; hyper-parameters chosen on the validation "
            "split; evaluated on the validation split, the official OffensEval test split and, for "
            "reference, the official HatEval-2019 test split (hate speech against immigrants and women: "
            "another label, not trained on). Macro-F1 (mean of the two labels' F1) is given under each "
            "table."
        ),
        config=CONFIG,
        n_train=len(train),
        label_counts=counts,
        evaluations=evaluations,
        notes=NOTES,
    )
    for title, metrics in evaluations.items():
        print(title, {k: round(v.get("f1", v.get("value", 0)), 3) for k, v in metrics.items()}, f"macro-F1 {macro_f1(metrics):.3f}")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1e6:.2f} MB) and {CARD}")
    return 0


NOTES = """
## Use in a recipe

```yaml
- stage: classify
  models:
    - {name: toxicity, path: models/toxicity.bin, label: toxic, threshold: 0.9, keep: below}
```

The score is the probability of `toxic`. Keep `keep: below` with a high threshold: the model
scores documents, not tweets, and web pages rarely look like tweets. Run it after `langid`
keeps English pages only: on other languages its scores mean nothing (see below).

## What changed (issue #22)

The model before this one (trained on OffensEval and HatEval train splits together, word
1-2-grams only) scored OffensEval test macro-F1 0.661 (toxic recall 0.433). Measured on the
validation split, in order: training on OffensEval alone (HatEval's "hateful" is a narrower
label, against immigrants and women; validation macro-F1 0.659 with it, 0.696 without), adding
character 2-5-grams inside words (subwords catch spelling variants, obfuscated and inflected
insults), then word 1-3-grams (validation macro-F1 at 0.5 in those selection runs, which
shuffled the training tweets: 0.696, 0.705, 0.709). Class weighting (toxic tweets repeated
twice), 50 dimensions, 20 epochs and character 3-6-grams changed validation macro-F1 by 0.01 or
less and were not taken. Subword vectors pretrained here (fastText skipgram, 32 dimensions, on
the tweets' train text, the web-text pages and WikiText-2: 33,000 lines) were tried once as
`pretrainedVectors`: that run predicted one class (validation macro-F1 0.40) and was not
investigated further in the time this work had. The figures above are the shipped model's,
after quantisation. The decision threshold of these tables is fastText's top label (probability
0.5).

## Check on real web pages (2026-12-02)

`models/check_toxicity_web.py` scores the main text (resiliparse) of every page of the shared
web corpus (`shared/data/web`, 3,132 real pages; 2,947 with at least 50 words, 2,331 of them
English by lid.176). At the shipped threshold 0.9 it flags 5 pages (0.2%), 1 of them labelled
English (0.04% of English pages); at 0.5, 11.3% of all pages and 1.5% of English pages; the
median English page scores 0.18. The model before this one flagged 66 pages (2.2%) at 0.9, 4
of them English, with a median English score of 0.008: the new model is less extreme on long
pages (more pages in the middle, fewer near 1).

The 25 highest-scoring pages, read: the 5 flagged (>= 0.9) are a German local commentary
(Stuttgart), a Spanish report on a police officer arrested for abusing his children, an
Argentine radio interview with a mayor, a German celebrity weight-loss article, and an
isiZulu news item that lid.176 labels English. None is abusive; the four non-English ones would
not reach the classifier after a `langid` stage. Ranks 6-25 are again news and lifestyle pages
in German, Spanish, Portuguese and Chinese (war in Gaza, Trump, football, fashion), plus a
Spanish Formula 1 report quoting a driver's profanity ("que se vaya a la mierda", 0.83),
an isiXhosa news page (lid says English) and a silver belt-buckle shop page (0.82).

The 25 English pages closest below 0.9 (0.53-0.88), read: two isiXhosa/isiZulu news pages
(lid errors); shop pages (belt buckle, ceramic mug, silk scarves and bags, iFixit parts, bike
locks "built to deter thieves"); how-to and garden pages (a terrarium, three organic pest
control pages about killing hornworms and pests, low-light indoor plants, cleaning costs,
hotel travel hacks); Wikipedia's list of programming languages and an article on Fargo
trucks; an Engadget page whose text is comment-widget boilerplate ("now that we've thrown 'em
off the trail"); and topical pages about harm rather than harmful text: an EastEnders
sex-offender storyline, two newborns dying in a Pakistani hospital, the Pittsburgh synagogue
shooting (Washington Post opinion), "Hating millennials" (Boing Boing) and zombies in pop
culture. None is abusive. So on this corpus the threshold 0.9 removes nothing English that it
should keep; the corpus has almost no abusive pages, so this check says nothing about recall on
web text, only that the false-positive rate at 0.9 is near zero.

## What it can and cannot do

* It learnt from about 12,000 English tweets. It picks up insults, slurs and profanity
  aimed at people; it does not understand context, irony, quotes or reclaimed words, and it
  flags ordinary profanity as readily as abuse.
* On HatEval (another label, not trained on) it is close to chance: see above.
* Tweets are short; on long web pages only the first 20,000 characters are scored and the
  probability tends to the page's dominant register: reporting on crime, pests or war
  scores 0.5-0.7. Treat it as a coarse screen, not a moderation tool. English only.
"""


if __name__ == "__main__":
    sys.exit(main())
