"""Documents -> token ids with a HF ``tokenizers`` tokenizer (batched), EOS appended.

The tokenizer is loaded once per Python worker. Output rows follow ``TOKENS_SCHEMA``:
one row per document, so shards keep document boundaries and a mixture can sample whole
documents; the trainer packs them into fixed-length sequences at read time.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import pyarrow as pa

from curate.schema import TOKENS_SCHEMA


class TokenizerError(ValueError):
    pass


@lru_cache(maxsize=4)
def load_tokenizer(path: str):
    from tokenizers import Tokenizer

    if not os.path.isfile(path):
        raise TokenizerError(f"{path}: tokenizer file not found")
    try:
        return Tokenizer.from_file(path)
    except Exception as e:  # a corrupt JSON file raises a bare Exception from Rust
        raise TokenizerError(f"{path}: not a valid tokenizers JSON file ({e})") from None


class DocumentTokenizer:
    """Picklable handle: only the path travels to Spark workers."""

    def __init__(self, path: str, eos_token: str = "<|endoftext|>", batch_size: int = 256):
        self.path = os.path.abspath(path)
        self.eos_token = eos_token
        self.batch_size = batch_size

    @property
    def tokenizer(self):
        return load_tokenizer(self.path)

    @property
    def eos_id(self) -> int:
        eos = self.tokenizer.token_to_id(self.eos_token)
        if eos is None:
            raise TokenizerError(f"{self.path}: has no token {self.eos_token!r} (tokenizer.eos_token in the recipe)")
        return eos

    def check(self) -> None:
        _ = self.eos_id

    def encode(self, texts: list[str]) -> list[list[int]]:
        eos = self.eos_id
        out: list[list[int]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            for enc in self.tokenizer.encode_batch(chunk, add_special_tokens=False):
                ids = enc.ids
                ids.append(eos)
                out.append(ids)
        return out

    def decode(self, ids: list[int] | np.ndarray, strip_eos: bool = True) -> str:
        ids = list(ids)
        if strip_eos and ids and ids[-1] == self.eos_id:
            ids = ids[:-1]
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def tokenize_documents(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Document batch (kept documents) -> token rows."""
        texts = [t or "" for t in batch.column("text").to_pylist()]
        encoded = self.encode(texts)
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int32, count=len(encoded))
        offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((t for e in encoded for t in e), dtype=np.int32, count=int(offsets[-1]))
        tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
        return pa.RecordBatch.from_arrays(
            [
                batch.column("id"),
                batch.column("source"),
                pa.array(lengths, type=pa.int32()),
                tokens,
                pa.array(np.zeros(len(encoded), dtype=np.int32)),
            ],
            schema=TOKENS_SCHEMA,
        )
