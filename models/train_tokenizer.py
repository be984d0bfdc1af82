"""Train the default tokenizer: byte-level BPE, 16384 tokens, on real English + web text.

Two steps, so that training needs nothing outside the repository:

    # 1. (once, already done: the output is committed) copy the training text into models/data/
    .venv/bin/python models/train_tokenizer.py prepare --shared /work/shared/data
    # 2. train from models/data/ and write models/tokenizer/tokenizer.json
    .venv/bin/python models/train_tokenizer.py train

``prepare`` writes gzip'd UTF-8 text, one document per blank-line-separated block:

* ``wikitext2-valid.txt.gz`` (training) and ``wikitext2-test.txt.gz`` (held out, only used
  to measure bytes per token): WikiText-2 with its tokenization artefacts undone
  (``@-@`` -> ``-``, spaces before punctuation, ``<unk>`` dropped, `` = Title = `` headings
  turned into plain title lines);
* ``trafilatura-eval-pages.txt.gz``: the main text of the 290 trafilatura-eval pages
  (several languages), extracted with :func:`curate.extract.html_to_text`; pages whose
  index is a multiple of 10 are held out (``trafilatura-eval-heldout.txt.gz``).

The tokenizer: no normalizer (text is never changed), ByteLevel pre-tokenizer without a
prefix space (GPT-2's split regex), BPE over the 256 byte symbols, ByteLevel decoder, so
``decode(encode(s)) == s`` for every string. ``<|endoftext|>`` (id 0) and ``<|pad|>``
(id 1) are plain vocabulary entries, *not* added tokens: the pre-tokenizer splits
``<|endoftext|>`` written in a document into ``<|``, ``endoftext``, ``|>``, so no document
can smuggle an end-of-document id into the token stream; only the pipeline appends it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
OUT = HERE / "tokenizer"
VOCAB_SIZE = 16384
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>"]
TRAIN_FILES = ["wikitext2-valid.txt.gz", "trafilatura-eval-pages.txt.gz"]
HELDOUT_FILES = ["wikitext2-test.txt.gz", "trafilatura-eval-heldout.txt.gz"]

# WikiText's tokenization is undone by curate.wikitext.detokenize_wikitext, the same code that
# makes the ablations' "wiki" reference set.
sys.path.insert(0, str(HERE.parent))
from curate.wikitext import detokenize_wikitext  # noqa: E402


def _write_documents(path: Path, documents: list[str]) -> None:
    # mtime=0: the same text gives the same bytes, so re-running prepare changes nothing
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write("\n\n\n".join(documents).encode("utf-8"))


def read_documents(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode("utf-8").split("\n\n\n")


def prepare(shared: Path) -> None:
    from curate.extract import html_to_text

    DATA.mkdir(parents=True, exist_ok=True)
    for split in ("valid", "test"):
        lines = (shared / "text" / "wikitext-2" / f"{split}.txt").read_text(encoding="utf-8").splitlines()
        _write_documents(DATA / f"wikitext2-{split}.txt.gz", detokenize_wikitext(lines))
    folder = shared / "html" / "trafilatura-eval"
    expectations = json.loads((folder / "expectations.json").read_text())
    train, heldout = [], []
    for index, (key, entry) in enumerate(sorted(expectations.items())):
        html = gzip.open(folder / "pages" / entry["file"]).read()
        text = html_to_text(html, key if key.startswith("http") else None)
        if text:
            (heldout if index % 10 == 0 else train).append(text.replace("\n\n\n", "\n\n"))
    _write_documents(DATA / "trafilatura-eval-pages.txt.gz", train)
    _write_documents(DATA / "trafilatura-eval-heldout.txt.gz", heldout)
    for name in TRAIN_FILES + HELDOUT_FILES:
        print(f"{name}: {len(read_documents(DATA / name))} documents, {(DATA / name).stat().st_size} bytes")


# --- training ---------------------------------------------------------------------------------


def build_tokenizer(vocab_size: int = VOCAB_SIZE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return tokenizer, trainer


def train(vocab_size: int = VOCAB_SIZE, out: Path = OUT) -> dict:
    from tokenizers import Tokenizer

    documents = [doc for name in TRAIN_FILES for doc in read_documents(DATA / name)]
    tokenizer, trainer = build_tokenizer(vocab_size)
    tokenizer.train_from_iterator(documents, trainer=trainer, length=len(documents))
    # Demote the special tokens to ordinary vocabulary entries (see the module docstring).
    spec = json.loads(tokenizer.to_str())
    spec["added_tokens"] = []
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tokenizer.json"
    path.write_text(json.dumps(spec, ensure_ascii=False, indent=None, sort_keys=False), encoding="utf-8")
    tokenizer = Tokenizer.from_file(str(path))
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1]
    stats = {
        "vocab_size": tokenizer.get_vocab_size(),
        "train_documents": len(documents),
        "train_bytes": sum(len(d.encode()) for d in documents),
    }
    for name in HELDOUT_FILES:
        held = read_documents(DATA / name)
        n_bytes = sum(len(d.encode("utf-8")) for d in held)
        n_tokens = sum(len(e.ids) for e in tokenizer.encode_batch(held, add_special_tokens=False))
        stats[f"bytes_per_token:{name}"] = round(n_bytes / n_tokens, 3)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description="Prepare training text or train the default tokenizer.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="copy and clean training text into models/data/")
    p.add_argument("--shared", type=Path, default=Path("/work/shared/data"))
    t = sub.add_parser("train", help="train from models/data/ into models/tokenizer/tokenizer.json")
    t.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    t.add_argument(
        "--out", type=Path, default=OUT, help="folder for tokenizer.json (the 4,096-entry ablation tokenizer: models/tokenizer-4k)"
    )
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.shared)
    else:
        print(json.dumps(train(args.vocab_size, args.out), indent=2))


if __name__ == "__main__":
    main()
