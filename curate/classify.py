"""fastText classifiers: the ``classify`` stage and ``curate train-classifier``.

The stage runs any number of fastText models. For each it writes the probability of one
label under ``scores["classify.<name>"]`` and removes the document when the score is on the
wrong side of the threshold (``keep: above`` removes scores below it, ``keep: below`` removes
scores above it) with ``rejected_by = "<stage name>.<model name>"`` and the score as
``rejected_value``.

Text reaches fastText through :func:`normalize_text`, the same function training uses, so a
model never sees text prepared differently from what it learnt on. Models trained elsewhere
(DCLM's ``openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin``, Dolma's quality and
toxicity classifiers) expect only newlines turned into spaces: use ``normalization:
newlines`` for them. Labels are given without fastText's ``__label__`` prefix (either form is
accepted).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import numpy as np
import pyarrow as pa

from curate.schema import add_scores, reject
from curate.stage import Stage, StageError

LABEL_PREFIX = "__label__"
_WHITESPACE = re.compile(r"\s+")
# Punctuation gets spaces around it so "word," and "word" are the same fastText token.
_PUNCTUATION = re.compile(r"([^\w\s'’-])")
# Long documents are judged on their beginning: fastText's cost is linear in tokens and
# the first few thousand words say as much about quality/toxicity as the whole page.
MAX_CHARS = 20_000

Normalization = Literal["curate", "newlines"]


def normalize_text(text: str | None, mode: Normalization = "curate") -> str:
    """The one text preparation used for training and for prediction.

    ``curate`` (models trained by curate): lower-case, punctuation split off, whitespace
    collapsed, first ``MAX_CHARS`` characters. ``newlines``: only newlines and runs of
    whitespace become one space (what DCLM and Dolma did when training their models).
    fastText itself needs one line per example, which both modes guarantee.
    """
    text = (text or "")[:MAX_CHARS]
    if mode == "curate":
        text = _PUNCTUATION.sub(r" \1 ", text.lower())
    elif mode != "newlines":
        raise ValueError(f"unknown normalization {mode!r}; expected 'curate' or 'newlines'")
    return _WHITESPACE.sub(" ", text).strip()


def plain_label(label: str) -> str:
    return label[len(LABEL_PREFIX) :] if label.startswith(LABEL_PREFIX) else label


FASTTEXT_MAGIC = 793712314
FASTTEXT_VERSION = 12
_ARGS_BYTES = 12 * 4 + 8  # twelve int32 settings and one double (sampling threshold)


def check_model_file(path: str) -> None:
    """Walk a fastText .bin/.ftz file's layout and raise ValueError where it is cut short or
    not a fastText model at all.

    fastText itself trusts the sizes written in the file: a truncated or foreign file can
    make it allocate gigabytes or crash the process, so the driver checks first.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        n_entries, prune_size = _model_header(fh, size)
        buffered = fh.read()  # the rest: dictionary entries, then the matrices
    offset = 0
    for _ in range(n_entries):
        end = buffered.find(b"\0", offset)
        if end < 0:
            raise ValueError("dictionary cut short")
        offset = end + 1 + 8 + 1  # word, count (int64), entry type (int8)
    offset += max(prune_size, 0) * 8
    for _ in range(2):  # input matrix, then output matrix
        offset = _matrix_end(buffered, offset)
        if offset > len(buffered):
            raise ValueError(f"matrix needs {offset - len(buffered)} more bytes than the file has")


def _model_header(fh, size: int) -> tuple[int, int]:
    """Check a model file's signature, version and dictionary size; (dictionary entries, pruned-index size)."""
    import struct

    def read(n: int) -> bytes:
        data = fh.read(n)
        if len(data) != n:
            raise ValueError(f"file ends at byte {fh.tell()} of a field that needs {n} bytes")
        return data

    magic, version = struct.unpack("<ii", read(8))
    if magic != FASTTEXT_MAGIC:
        raise ValueError("no fastText signature at the start of the file")
    if version > FASTTEXT_VERSION:
        raise ValueError(f"fastText format version {version} is newer than this reader ({FASTTEXT_VERSION})")
    read(_ARGS_BYTES)
    n_entries, _, _, _, prune_size = struct.unpack("<iiiqq", read(28))
    if n_entries < 0 or n_entries > size:
        raise ValueError(f"dictionary size {n_entries} does not fit the file")
    return n_entries, prune_size


def _matrix_end(buffered: bytes, offset: int) -> int:
    """Where the matrix (dense or quantized) that starts at ``offset`` ends, by its header."""
    import struct

    if offset + 1 > len(buffered):
        raise ValueError("file ends before a matrix")
    quantized = buffered[offset] != 0
    offset += 1
    if quantized:
        if offset + 21 > len(buffered):
            raise ValueError("file ends inside a quantized matrix header")
        qnorm = buffered[offset] != 0
        rows, _, code_size = struct.unpack_from("<qqi", buffered, offset + 1)
        offset += 21 + code_size
        dim = struct.unpack_from("<i", buffered, offset)[0] if offset + 4 <= len(buffered) else 0
        offset += 16 + 4 * 256 * dim  # product quantizer: 4 int32 and dim*256 centroids
        if qnorm:
            offset += rows + 16 + 4 * 256  # norm codes and a one-dimensional quantizer
        return offset
    if offset + 16 > len(buffered):
        raise ValueError("file ends inside a matrix header")
    rows, cols = struct.unpack_from("<qq", buffered, offset)
    if rows < 0 or cols < 0:
        raise ValueError("negative matrix size")
    return offset + 16 + 4 * rows * cols


def load_model(path: str):
    """Load a fastText model; StageError naming the file when it is missing or not a model."""
    if not os.path.isfile(path):
        raise StageError(f"fastText model file not found: {path}")
    try:
        check_model_file(path)
    except (ValueError, OSError) as e:
        raise StageError(f"not a fastText model file: {path} ({e})") from None
    import fasttext

    try:
        return fasttext.load_model(path)
    except (ValueError, RuntimeError, MemoryError) as e:
        raise StageError(f"not a fastText model file: {path} ({e})") from None


def label_probabilities(model, texts: Sequence[str], label: str) -> np.ndarray:
    """Probability of ``label`` for each (already normalised) text; one batched predict."""
    if not texts:
        return np.zeros(0)
    wanted = LABEL_PREFIX + plain_label(label)
    labels, probs = model.predict(list(texts), k=-1, threshold=0.0)
    out = np.zeros(len(texts))
    for i, (row_labels, row_probs) in enumerate(zip(labels, probs)):
        for name, p in zip(row_labels, row_probs):
            if name == wanted:
                out[i] = min(float(p), 1.0)  # fastText's softmax can round to 1.00001
                break
    return out


@dataclass
class ClassifierSpec:
    name: str
    path: str
    label: str
    threshold: float = 0.5
    keep: Literal["above", "below"] = "above"
    normalization: Normalization = "curate"

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", self.name):
            raise ValueError(f"model name {self.name!r} may use letters, digits, '_' and '-' only")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold of model {self.name!r} must be within 0..1, got {self.threshold}")


@dataclass
class ClassifyParams:
    models: list[ClassifierSpec] = field(default_factory=list)
    batch_size: int = 512

    def validate(self) -> None:
        if not self.models:
            raise ValueError("classify needs at least one entry under 'models'")
        names = [m.name for m in self.models]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"model name {name!r} is used twice")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


class ClassifyStage(Stage):
    kind = "classify"
    Params = ClassifyParams

    def _load_all(self) -> dict:
        models = {}
        for spec in self.params.models:
            model = load_model(spec.path)
            labels = [plain_label(l) for l in model.get_labels()]
            if plain_label(spec.label) not in labels:
                raise StageError(f"{spec.path}: model {spec.name!r} has no label {spec.label!r}; its labels are: {', '.join(labels)}")
            models[spec.name] = model
        return models

    def check(self) -> None:
        self._load_all()

    def setup(self) -> None:
        self._models = self._load_all()

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        n = len(texts)
        scores: dict[str, np.ndarray] = {}
        mask = np.zeros(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        values: list[float | None] = [None] * n
        prepared: dict[str, list[str]] = {}
        size = self.params.batch_size
        for spec in self.params.models:
            if spec.normalization not in prepared:
                prepared[spec.normalization] = [normalize_text(t, spec.normalization) for t in texts]
            lines = prepared[spec.normalization]
            model = self._models[spec.name]
            score = (
                np.concatenate([label_probabilities(model, lines[i : i + size], spec.label) for i in range(0, n, size)])
                if n
                else np.zeros(0)
            )
            scores[f"{self.name}.{spec.name}"] = score
            failing = score < spec.threshold if spec.keep == "above" else score > spec.threshold
            for i in np.flatnonzero(failing & ~mask):
                mask[i] = True
                reasons[i] = f"{self.name}.{spec.name}"
                values[i] = float(score[i])
            self.counters[f"scored:{spec.name}"] += n
        batch = add_scores(batch, scores)
        return reject(batch, mask, reasons, values)


# --- training ---------------------------------------------------------------------------------


@dataclass
class TrainingConfig:
    epoch: int = 10
    lr: float = 0.2
    word_ngrams: int = 2
    dim: int = 32
    min_count: int = 2
    bucket: int = 200_000
    # Character n-grams of minn..maxn characters inside each word (0 = none, fastText's
    # supervised default): spelling variants and obfuscated slurs share subwords.
    minn: int = 0
    maxn: int = 0
    loss: str = "softmax"
    quantize: bool = True  # keeps models small enough to commit (a few MB at most)
    cutoff: int = 50_000
    held_out: float = 0.1
    seed: int = 0
    normalization: Normalization = "curate"


def read_examples(path: str, text_field: str, label_field: str) -> list[tuple[str, str]]:
    """(text, label) pairs from Parquet or JSONL; ValueError naming file, record and field."""
    rows: Iterable[dict]
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for name in (text_field, label_field):
            if name not in table.column_names:
                raise ValueError(f"{path}: no field {name!r}; fields are: {', '.join(table.column_names)}")
        rows = table.select([text_field, label_field]).to_pylist()
    elif path.endswith((".jsonl", ".json", ".jsonl.gz")):
        import gzip

        opener = gzip.open if path.endswith(".gz") else open
        parsed = []
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    parsed.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: record {number}: not valid JSON ({e.msg})") from None
        rows = parsed
    else:
        raise ValueError(f"{path}: expected a .parquet or .jsonl file")
    examples = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: record {number}: expected an object")
        text, label = row.get(text_field), row.get(label_field)
        if not isinstance(label, str) or isinstance(label, bool):
            raise ValueError(
                f"{path}: record {number}: field {label_field!r}: expected a string label, got {label!r} ({type(label).__name__})"
            )
        if not label.strip() or any(ch.isspace() for ch in label):
            raise ValueError(f"{path}: record {number}: field {label_field!r}: a label must be one word without spaces, got {label!r}")
        if text is not None and not isinstance(text, str):
            raise ValueError(f"{path}: record {number}: field {text_field!r}: expected a string, got {type(text).__name__}")
        examples.append((text or "", plain_label(label)))
    if not examples:
        raise ValueError(f"{path}: no records")
    return examples


def split_held_out(examples: list[tuple[str, str]], fraction: float, seed: int) -> tuple[list, list]:
    """Stratified split: ``fraction`` of each label goes to the held-out set."""
    rng = random.Random(seed)
    train, held = [], []
    by_label: dict[str, list] = {}
    for ex in examples:
        by_label.setdefault(ex[1], []).append(ex)
    for label in sorted(by_label):
        items = by_label[label][:]
        rng.shuffle(items)
        k = int(round(len(items) * fraction))
        held.extend(items[:k])
        train.extend(items[k:])
    rng.shuffle(train)
    return train, held


def evaluate(model, examples: list[tuple[str, str]], normalization: Normalization) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label of the top-1 prediction."""
    if not examples:
        return {}
    lines = [normalize_text(t, normalization) for t, _ in examples]
    predicted = [plain_label(l[0]) if l else "" for l in model.predict(lines, k=1)[0]]
    labels = sorted({l for _, l in examples} | set(predicted) - {""})
    metrics = {}
    for label in labels:
        tp = sum(1 for (_, gold), p in zip(examples, predicted) if gold == label and p == label)
        fp = sum(1 for (_, gold), p in zip(examples, predicted) if gold != label and p == label)
        fn = sum(1 for (_, gold), p in zip(examples, predicted) if gold == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        metrics[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    metrics["accuracy"] = {"value": sum(1 for (_, g), p in zip(examples, predicted) if g == p) / len(examples)}
    return metrics


def _train_in_child(train_file: str, output: str, options: dict, quantize: bool, cutoff: int) -> str:
    """Runs in a fresh process: returns "" or the error message."""
    import fasttext

    try:
        model = fasttext.train_supervised(input=train_file, **options)
        if quantize:
            model.quantize(input=train_file, qnorm=True, retrain=False, cutoff=cutoff, thread=1, verbose=0)
        model.save_model(output)
    except RuntimeError as e:
        return str(e)
    return ""


def train_fasttext(examples: list[tuple[str, str]], output: str, config: TrainingConfig):
    """Train (and quantize) a supervised fastText model on ``examples``; returns the model.

    Training runs in a fresh process: in a process that has already loaded a fastText model,
    fastText 0.9.2 training can diverge to NaN (seen in the test suite), and a fresh process
    also gives the memory back.
    """
    import multiprocessing

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as fh:
            for text, label in examples:
                fh.write(f"{LABEL_PREFIX}{label} {normalize_text(text, config.normalization)}\n")
        # One thread: fastText's Hogwild updates make multi-threaded training non-reproducible.
        options = dict(
            epoch=config.epoch,
            lr=config.lr,
            wordNgrams=config.word_ngrams,
            dim=config.dim,
            minCount=config.min_count,
            bucket=config.bucket,
            minn=config.minn,
            maxn=config.maxn,
            loss=config.loss,
            thread=1,
            seed=config.seed,
            verbose=0,
        )
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            error = pool.apply(_train_in_child, (train_file, output, options, config.quantize, config.cutoff))
    if "NaN" in error:
        raise ValueError(f"fastText diverged (NaN) at learning rate {config.lr}; try a lower --lr")
    if error:
        raise ValueError(f"fastText training failed: {error}")
    return load_model(output)


def format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    lines = ["| label | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, m in metrics.items():
        if label == "accuracy":
            continue
        lines.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']:.0f} |")
    if "accuracy" in metrics:
        lines.append(f"\nAccuracy: {metrics['accuracy']['value']:.3f}")
    f1s = [m["f1"] for label, m in metrics.items() if label != "accuracy"]
    if len(f1s) > 1:
        lines.append(f"Macro-F1: {sum(f1s) / len(f1s):.3f}")
    return "\n".join(lines)


def write_model_card(
    path: str,
    *,
    name: str,
    model_path: str,
    data: str,
    config: TrainingConfig,
    n_train: int,
    label_counts: dict[str, int],
    evaluations: dict[str, dict],
    notes: str = "",
) -> None:
    size = os.path.getsize(model_path)
    parts = [
        f"# Model card: {name}",
        "",
        f"File: `{model_path}` ({size / 1e6:.2f} MB), fastText supervised classifier.",
        "",
        "## Data",
        "",
        data,
        "",
        f"Training examples: {n_train}. Examples per label (all data): "
        + ", ".join(f"`{k}` {v}" for k, v in sorted(label_counts.items()))
        + ".",
        "",
        "## Hyper-parameters",
        "",
        "| parameter | value |",
        "| --- | --- |",
    ]
    for key, value in vars(config).items():
        parts.append(f"| {key} | {value} |")
    parts += ["", f"Text preparation: `curate.classify.normalize_text(text, {config.normalization!r})` at training and inference.", ""]
    for title, metrics in evaluations.items():
        parts += [f"## {title}", "", format_metrics(metrics), ""]
    if notes:
        parts += [notes.strip(), ""]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))


def default_card_path(output: str) -> str:
    stem = os.path.splitext(os.path.basename(output))[0]
    return os.path.join(os.path.dirname(output) or ".", f"MODEL_CARD_{stem}.md")


def _train_arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curate train-classifier", description="Train a fastText classifier from Parquet/JSONL (text + label) and write a model card."
    )
    parser.add_argument("--input", required=True, nargs="+", help="Parquet or JSONL files")
    parser.add_argument("--label-field", required=True)
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--output", required=True, help="model path, e.g. models/NAME.bin")
    parser.add_argument("--card", help="model card path (default: MODEL_CARD_<NAME>.md beside the model)")
    defaults = TrainingConfig()
    parser.add_argument("--held-out", type=float, default=defaults.held_out, help="fraction of each label kept for evaluation")
    parser.add_argument("--epoch", type=int, default=defaults.epoch)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--word-ngrams", type=int, default=defaults.word_ngrams)
    parser.add_argument("--dim", type=int, default=defaults.dim)
    parser.add_argument("--min-count", type=int, default=defaults.min_count)
    parser.add_argument("--bucket", type=int, default=defaults.bucket)
    parser.add_argument("--no-quantize", action="store_true")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--normalization", choices=["curate", "newlines"], default=defaults.normalization)
    return parser


def _training_config(args: argparse.Namespace) -> TrainingConfig:
    return TrainingConfig(
        epoch=args.epoch,
        lr=args.lr,
        word_ngrams=args.word_ngrams,
        dim=args.dim,
        min_count=args.min_count,
        bucket=args.bucket,
        quantize=not args.no_quantize,
        held_out=args.held_out,
        seed=args.seed,
        normalization=args.normalization,
    )


def train_main(argv: list[str]) -> int:
    """``curate train-classifier``: train a fastText model from Parquet/JSONL with a held-out split."""
    parser = _train_arguments()
    args = parser.parse_args(argv)
    if not 0.0 <= args.held_out < 1.0:
        parser.error("--held-out must be in [0, 1)")
    config = _training_config(args)
    try:
        examples = [ex for path in args.input for ex in read_examples(path, args.text_field, args.label_field)]
    except (OSError, ValueError) as e:
        print(f"curate train-classifier: {e}", file=sys.stderr)
        return 2
    label_counts: dict[str, int] = {}
    for _, label in examples:
        label_counts[label] = label_counts.get(label, 0) + 1
    if len(label_counts) < 2:
        print(f"curate train-classifier: need at least two labels, found {sorted(label_counts)}", file=sys.stderr)
        return 2
    train, held = split_held_out(examples, config.held_out, config.seed)
    start = time.perf_counter()
    try:
        model = train_fasttext(train, args.output, config)
    except ValueError as e:
        print(f"curate train-classifier: {e}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    metrics = evaluate(model, held, config.normalization)
    card = _write_trained_card(args, config, len(train), len(held), label_counts, metrics)
    print(
        f"trained {args.output} on {len(train)} examples in {seconds:.1f} s; held-out accuracy {metrics.get('accuracy', {}).get('value', math.nan):.3f}; card: {card}"
    )
    print(format_metrics(metrics))
    return 0


def _write_trained_card(
    args: argparse.Namespace, config: TrainingConfig, n_train: int, n_held: int, label_counts: dict, metrics: dict
) -> str:
    """The model card of a ``curate train-classifier`` run; returns its path."""
    card = args.card or default_card_path(args.output)
    data = (
        "Trained with `curate train-classifier` from: "
        + ", ".join(f"`{p}`" for p in args.input)
        + f" (text field `{args.text_field}`, label field `{args.label_field}`)."
    )
    write_model_card(
        card,
        name=os.path.basename(args.output),
        model_path=args.output,
        data=data,
        config=config,
        n_train=n_train,
        label_counts=label_counts,
        evaluations={f"Held-out metrics ({n_held} examples, {config.held_out:.0%} of each label)": metrics},
    )
    return card
