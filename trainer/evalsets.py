"""Held-out reference sets of an ablation: what they hold, how they are kept out of training.

An eval set is a body of text the ablation models are scored on (mean next-token loss). Each
is read once, optionally thinned to a fixed sample (``fraction`` and ``max_documents``,
chosen by a hash of each document's URL or text, so the sample never depends on file
order), shuffled by the same hash (the first evaluated sequences are a sample of the whole
set, not its first pages) and tokenized once per tokenizer. Its documents are also written
to ``<name>.protected.jsonl.gz`` (text and URL), which ``curate ablate`` hands to a
``decontaminate`` stage in every training mix: no mix trains on a page it is scored on.

Kinds (``kind: auto`` guesses from the path):

* ``wikitext``: raw WikiText-2 (`` = Title = `` articles; with ``detokenize: true`` its
  tokenization artefacts ``@-@``, `` , ``, ``<unk>`` and ``= = Heading = =`` lines are
  undone, so the set measures prose rather than that format);
* ``text``: documents separated by two blank lines;
* ``jsonl`` / ``parquet``: a ``text_field`` and a ``url_field`` per row;
* ``warc``: the main text of the HTML pages (the ``extract`` stage's default extractor);
* ``run``: the ``documents/`` of a finished curate run;
* ``shards``: token shards used as they are (no text: they cannot be checked against training).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xxhash

from curate.wikitext import detokenize_wikitext

EVALDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaldata")

EvalKind = Literal["auto", "wikitext", "text", "jsonl", "parquet", "warc", "run", "shards"]


class EvalSetError(ValueError):
    pass


@dataclass
class EvalSetSpec:
    name: str
    path: str
    kind: EvalKind = "auto"
    text_field: str = "text"
    url_field: str = "url"
    fraction: float = 1.0  # keep this share of the documents (by hash), the rest stays usable for training
    max_documents: int | None = None
    detokenize: bool = False  # wikitext only
    language: str | None = None  # keep documents whose fastText language is this code
    where: dict[str, list[str]] = field(default_factory=dict)  # jsonl/parquet: keep rows whose field is one of these values
    about: str = ""  # what the set measures, for the report

    def validate(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction: expected a number in (0, 1], got {self.fraction}")
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", self.name):
            raise ValueError(f"name: {self.name!r} must be letters, digits, '_' or '-'")


# The default references of `curate ablate` (all shipped in trainer/evaldata/).
DEFAULT_EVAL_SETS = [
    EvalSetSpec(
        "wiki",
        os.path.join(EVALDATA, "wikitext-2-test.txt.gz"),
        kind="wikitext",
        detokenize=True,
        about="Wikipedia Good/Featured articles (WikiText-2 test) as plain prose: well-edited encyclopedic English",
    ),
    EvalSetSpec(
        "web",
        os.path.join(EVALDATA, "web-heldout.warc.gz"),
        kind="warc",
        about="main text of 15 real academic home pages and blogs (a sample WARC no shipped recipe reads): everyday web prose",
    ),
]


# --- reading ----------------------------------------------------------------------------------


def wikitext_articles(path: str) -> list[str]:
    """Raw WikiText articles: a new one starts at each top-level `` = Title = `` line."""
    articles: list[list[str]] = []
    for line in _read_lines(path):
        if re.fullmatch(r" = [^=].* = ", line):
            articles.append([])
        if articles and line.strip():
            articles[-1].append(line.strip())
    return ["\n".join(a) for a in articles if a]


def _read_lines(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def guess_kind(path: str) -> str:
    name = os.path.basename(path.rstrip("/")).lower()
    if os.path.isdir(path):
        return "run" if os.path.isdir(os.path.join(path, "documents")) else "shards"
    if ".warc" in name:
        return "warc"
    if name.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".txt", ".txt.gz")):
        return "wikitext" if "wikitext" in name else "text"
    raise EvalSetError(f"{path}: cannot tell what kind of eval set this is; give kind: wikitext|text|jsonl|parquet|warc|run|shards")


def read_documents(spec: EvalSetSpec) -> list[tuple[str, str | None]]:
    """(text, url) of every document of the set, before sampling."""
    kind = spec.kind if spec.kind != "auto" else guess_kind(spec.path)
    if not os.path.exists(spec.path):
        raise EvalSetError(f"eval set {spec.name!r}: {spec.path}: no such file or folder")
    if spec.where:
        return _rows_where(spec, kind)
    if kind == "wikitext":
        lines = _read_lines(spec.path)
        texts = detokenize_wikitext(lines) if spec.detokenize else wikitext_articles(spec.path)
        return [(t, None) for t in texts]
    if kind == "text":
        opener = gzip.open if spec.path.endswith(".gz") else open
        with opener(spec.path, "rt", encoding="utf-8") as fh:
            return [(t.strip(), None) for t in re.split(r"\n\s*\n\s*\n", fh.read()) if t.strip()]
    if kind == "shards":
        raise EvalSetError(f"eval set {spec.name!r}: token shards have no text to read")
    from curate.decontaminate import ProtectedSet, protected_documents

    protected = ProtectedSet(spec.name, [spec.path], kind=kind, text_field=spec.text_field, url_field=spec.url_field)
    return list(protected_documents(protected))


def _rows_where(spec: EvalSetSpec, kind: str) -> list[tuple[str, str | None]]:
    """(text, url) of the JSONL/Parquet rows whose ``where`` fields hold one of the given values."""
    if kind == "jsonl":
        opener = gzip.open if spec.path.endswith(".gz") else open
        with opener(spec.path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    elif kind == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(spec.path).to_pylist()
    else:
        raise EvalSetError(f"eval set {spec.name!r}: 'where' applies to jsonl and parquet sets, not {kind}")
    for key in spec.where:
        if rows and key not in rows[0]:
            raise EvalSetError(f"eval set {spec.name!r}: {spec.path}: no field {key!r} for 'where' (fields: {', '.join(rows[0])})")
    kept = [r for r in rows if all(str(r.get(k)) in map(str, values) for k, values in spec.where.items())]
    return [(r.get(spec.text_field), r.get(spec.url_field)) for r in kept if r.get(spec.text_field)]


def _document_key(text: str, url: str | None) -> int:
    return xxhash.xxh64_intdigest((url or text).encode("utf-8"), seed=20261202)


def select_documents(spec: EvalSetSpec, documents: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """The sample an eval set keeps, in hash order (independent of the order of the input)."""
    keyed = sorted((_document_key(t, u), t, u) for t, u in documents if t and t.strip())
    limit = spec.fraction * 2**64
    chosen = [(t, u) for key, t, u in keyed if key < limit]
    if spec.language:
        chosen = [(t, u) for t, u in chosen if _language(t) == spec.language]
    return chosen[: spec.max_documents] if spec.max_documents else chosen


def _language(text: str) -> str:
    from curate.langid import LangIdParams, LangIdStage

    if not hasattr(_language, "stage"):
        _language.stage = LangIdStage(LangIdParams(), name="langid")
        _language.stage.ensure_setup()
    from curate.schema import documents_from_pylist

    batch = _language.stage(documents_from_pylist([{"id": "x", "source": "eval", "text": text}]))
    return batch.column("language")[0].as_py() or ""


# --- preparing --------------------------------------------------------------------------------


@dataclass
class PreparedEvalSet:
    spec: EvalSetSpec
    shards: str  # token shard folder
    protected: str | None  # JSONL of its documents, for decontamination (None for token shards)
    documents: int
    urls: int


def prepare_eval_set(spec: EvalSetSpec, tokenizer: str, eos_token: str, folder: str) -> PreparedEvalSet:
    """Read, sample and tokenize one set (cached under ``folder`` by tokenizer and spec)."""
    spec.validate()
    kind = spec.kind if spec.kind != "auto" else guess_kind(spec.path)
    if kind == "shards":
        return PreparedEvalSet(spec, spec.path, None, 0, 0)
    from trainer.data import shards_from_texts

    key = xxhash.xxh64_hexdigest(json.dumps([spec.__dict__, _file_digest(tokenizer)], sort_keys=True, default=str).encode())[:12]
    target = os.path.join(folder, f"{spec.name}-{key}")
    protected = os.path.join(folder, f"{spec.name}-{key}.protected.jsonl.gz")
    meta_path = os.path.join(target, "eval_set.json")
    if not os.path.exists(meta_path):
        documents = select_documents(spec, read_documents(spec))
        if not documents:
            raise EvalSetError(f"eval set {spec.name!r}: {spec.path}: no text (after sampling)")
        _write_protected(documents, protected)
        shards_from_texts([t for t, _ in documents], tokenizer, target, source=spec.name, eos_token=eos_token)
        with open(meta_path + ".tmp", "w") as fh:
            json.dump({"documents": len(documents), "urls": sum(1 for _, u in documents if u)}, fh)
        os.replace(meta_path + ".tmp", meta_path)
    with open(meta_path) as fh:
        meta = json.load(fh)
    return PreparedEvalSet(spec, target, protected, meta["documents"], meta["urls"])


def _write_protected(documents: list[tuple[str, str | None]], path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path + ".tmp", "wt", encoding="utf-8") as fh:
        for text, url in documents:
            fh.write(json.dumps({"text": text, "url": url}, ensure_ascii=False) + "\n")
    os.replace(path + ".tmp", path)


def _file_digest(path: str) -> str:
    with open(path, "rb") as fh:
        return xxhash.xxh64_hexdigest(fh.read())


# --- the unigram baseline ---------------------------------------------------------------------


def token_counts(shards: str, vocab_size: int) -> np.ndarray:
    """How often each token id occurs in a folder of token shards."""
    import pyarrow.parquet as pq

    from trainer.data import resolve_shards

    counts = np.zeros(vocab_size, dtype=np.int64)
    for path in resolve_shards(shards):
        column = pq.read_table(path, columns=["tokens"]).column("tokens").combine_chunks()
        counts += np.bincount(column.flatten().to_numpy(), minlength=vocab_size)[:vocab_size]
    return counts


def unigram_loss(train_counts: np.ndarray, eval_shards: str, seq_len: int, max_sequences: int) -> float:
    """Cross-entropy (nats/token) on the evaluated targets of a set of the training mix's
    token frequencies (add-one smoothed): the loss of a model that learned nothing but them."""
    from trainer.data import TokenStream

    stream = TokenStream(eval_shards)
    n = min(max_sequences, (stream.total_tokens - 1) // seq_len)
    targets = np.concatenate([stream.read(i * seq_len + 1, seq_len) for i in range(n)]) if n else np.zeros(0, dtype=np.int64)
    probabilities = (train_counts + 1) / (train_counts.sum() + len(train_counts))
    return float(-np.log(probabilities[targets]).mean()) if len(targets) else float("nan")
