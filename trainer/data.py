"""Token shards -> fixed-length training sequences, split by rank and loader worker.

The shards of a run (``RUN/tokens/shard-*.parquet``, one row per document with the
end-of-document token appended) are read, in file order and row order, as one long token
stream. Sequence ``i`` is the window ``stream[i*L : i*L + L + 1]`` (inputs and the targets
shifted by one); past the end the stream starts over (epoch 2, 3, ...).

Every optimizer micro-step consumes one *global micro-batch* ``j`` of ``world * B``
consecutive sequences; rank ``r`` takes the ``B`` sequences starting at ``(j*world + r)*B``,
and loader worker ``w`` of ``k`` takes the micro-batches with ``j % k == w`` (PyTorch's
loader reads its workers round-robin, so the order is kept). Ranks and workers therefore
never share a sequence and never skip one, and the whole position of the data is the single
number ``j``: a restart at ``j`` reads exactly the sequence it would have read next.

Shards are opened through fsspec, so a local folder and ``s3://``/``gs://``/``hf://``
URLs work alike; only the ``n_tokens`` column is read up front, token lists are read one
Parquet row group at a time.
"""

from __future__ import annotations

import json
import posixpath
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info


class DataError(ValueError):
    pass


def resolve_shards(path: str) -> list[str]:
    """Shard URLs from a run folder, a ``tokens/`` folder, a single file or a glob."""
    fs, root = fsspec.core.url_to_fs(path)
    if fs.isdir(root):
        if fs.isdir(posixpath.join(root, "tokens")):
            root = posixpath.join(root, "tokens")
        found = fs.glob(posixpath.join(root, "*.parquet"))
        split = sorted(posixpath.basename(d) for d in fs.glob(posixpath.join(root, "language=*")))
        if not found and split:
            # Each language's shards are sorted by id within it only; read together they would
            # feed the model one language after another, so the choice is the user's.
            example = posixpath.join(root, split[0])
            raise DataError(
                f"{path}: the run is split by language ({', '.join(split)}): train on one language's folder, e.g. {shard_url(fs, example)}"
            )
    elif fs.isfile(root):
        found = [root]
    else:
        found = fs.glob(root)
    # hidden files are temporaries of a writer that has not finished (curate/shards.py)
    found = sorted(f for f in found if not posixpath.basename(f).startswith("."))
    if not found:
        raise DataError(f"{path}: no token shards (*.parquet) found")
    return [shard_url(fs, f) for f in found]


def shard_url(fs, path: str) -> str:
    """A path as ``fs`` lists it -> what the user would type: local paths plain, others as URLs."""
    return path if isinstance(fs, fsspec.implementations.local.LocalFileSystem) else fs.unstrip_protocol(path)


class TokenStream:
    """The concatenated tokens of a list of shards, read by row group on demand."""

    def __init__(self, path: str | list[str], cache_row_groups: int = 4):
        self.files = list(path) if isinstance(path, list) else resolve_shards(path)
        self.cache_row_groups = cache_row_groups
        groups: list[tuple[int, int]] = []
        counts: list[int] = []
        for f, url in enumerate(self.files):
            pf = self._open(url)
            if "tokens" not in pf.schema_arrow.names or "n_tokens" not in pf.schema_arrow.names:
                raise DataError(f"{url}: not a token shard (needs columns 'tokens' and 'n_tokens'; has {pf.schema_arrow.names})")
            for g in range(pf.num_row_groups):
                n = pf.read_row_group(g, columns=["n_tokens"]).column(0)
                groups.append((f, g))
                counts.append(int(pc.sum(n).as_py() or 0))
        self.groups = groups
        self.offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        self.total_tokens = int(self.offsets[-1])
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()  # open data stays in the process that read it
        return state

    @staticmethod
    def _open(url: str) -> pq.ParquetFile:
        fs, path = fsspec.core.url_to_fs(url)
        return pq.ParquetFile(path if isinstance(fs, fsspec.implementations.local.LocalFileSystem) else fs.open(path, "rb"))

    def _group_tokens(self, index: int) -> np.ndarray:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        f, g = self.groups[index]
        column = self._open(self.files[f]).read_row_group(g, columns=["tokens"]).column(0).combine_chunks()
        values = column.flatten().to_numpy().astype(np.int64)
        expected = int(self.offsets[index + 1] - self.offsets[index])
        if len(values) != expected:
            raise DataError(f"{self.files[f]}: row group {g} holds {len(values)} tokens but its n_tokens add up to {expected}")
        self._cache[index] = values
        while len(self._cache) > self.cache_row_groups:
            self._cache.popitem(last=False)
        return values

    def read(self, start: int, length: int) -> np.ndarray:
        """Tokens ``[start, start+length)`` of the stream (``start + length <= total_tokens``)."""
        out = np.empty(length, dtype=np.int64)
        filled = 0
        group = int(np.searchsorted(self.offsets, start, side="right") - 1)
        while filled < length:
            values = self._group_tokens(group)
            begin = start + filled - int(self.offsets[group])
            take = min(length - filled, len(values) - begin)
            out[filled : filled + take] = values[begin : begin + take]
            filled += take
            group += 1
        return out


@dataclass(frozen=True)
class Layout:
    """Who reads which sequences: micro-batch size, world size, this rank."""

    seq_len: int
    micro_batch: int
    world_size: int = 1
    rank: int = 0

    def sequences(self, micro_step: int) -> range:
        first = (micro_step * self.world_size + self.rank) * self.micro_batch
        return range(first, first + self.micro_batch)


class SequenceDataset(IterableDataset):
    """Yields ``(inputs, targets, sequence_indices)`` micro-batches from ``start_micro_step`` on."""

    def __init__(self, stream: TokenStream, layout: Layout, start_micro_step: int = 0, shuffle_seed: int | None = None):
        super().__init__()
        if stream.total_tokens < layout.seq_len + 1:
            raise DataError(
                f"{stream.files[0] if stream.files else '?'}...: {stream.total_tokens} tokens cannot fill one sequence of {layout.seq_len}+1"
            )
        self.stream = stream
        self.layout = layout
        self.start_micro_step = start_micro_step
        # the last sequence needs one extra token for its final target
        self.num_sequences = (stream.total_tokens - 1) // layout.seq_len
        self.shuffle_seed = shuffle_seed
        self._order: tuple[int, np.ndarray] | None = None

    def window(self, index: int) -> int:
        """Which window of the stream global sequence ``index`` reads.

        Unshuffled, sequence ``i`` is window ``i mod n``. With ``shuffle_seed``, every epoch reads
        all ``n`` windows once, in an order drawn from (seed, epoch): two seeds see the same
        data in different orders, and a budget under one epoch sees a different sample of it.
        """
        epoch, position = divmod(index, self.num_sequences)
        if self.shuffle_seed is None:
            return position
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.shuffle_seed, epoch])
            self._order = (epoch, rng.permutation(self.num_sequences))
        return int(self._order[1][position])

    def sequence(self, index: int) -> np.ndarray:
        i = self.window(index)
        return self.stream.read(i * self.layout.seq_len, self.layout.seq_len + 1)

    def micro_batch(self, micro_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs and targets ``(B, L)`` and the ``B`` global sequence indices.

        Inputs and targets may be views of one buffer (targets shifted by one token): treat
        them as read-only.
        """
        indices = self.layout.sequences(micro_step)
        B, L = len(indices), self.layout.seq_len
        first = indices.start % self.num_sequences
        if self.shuffle_seed is None and first + B <= self.num_sequences:
            # Consecutive sequences overlap by one token, so the micro-batch is one read of
            # B*L+1 tokens: no per-sequence reads, no stack, no copies into x and y.
            data = torch.from_numpy(self.stream.read(first * L, B * L + 1))
            return data[:-1].view(B, L), data[1:].view(B, L), torch.arange(indices.start, indices.stop, dtype=torch.int64)
        # shuffled windows, or a micro-batch that wraps into the next epoch
        rows = torch.from_numpy(np.stack([self.sequence(i) for i in indices]))
        return rows[:, :-1].contiguous(), rows[:, 1:].contiguous(), torch.arange(indices.start, indices.stop, dtype=torch.int64)

    def micro_steps(self, worker_id: int = 0, num_workers: int = 1) -> Iterator[int]:
        step = self.start_micro_step + worker_id
        while True:
            yield step
            step += num_workers

    def __iter__(self):
        info = get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in self.micro_steps(worker_id, num_workers):
            yield self.micro_batch(step)


def make_loader(
    stream: TokenStream, layout: Layout, start_micro_step: int, num_workers: int = 0, shuffle_seed: int | None = None
) -> Iterator:
    dataset = SequenceDataset(stream, layout, start_micro_step, shuffle_seed)
    if num_workers == 0:
        return iter(dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers, persistent_workers=False, prefetch_factor=4)
    return iter(loader)


def eval_batches(stream: TokenStream, seq_len: int, batch_size: int, max_sequences: int, rank: int = 0, world_size: int = 1):
    """The first ``max_sequences`` sequences of a held-out stream, split over ranks (strided)."""
    n = min(max_sequences, (stream.total_tokens - 1) // seq_len)
    mine = list(range(rank, n, world_size))
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        rows = torch.from_numpy(np.stack([stream.read(i * seq_len, seq_len + 1) for i in idx]))
        yield rows[:, :-1].contiguous(), rows[:, 1:].contiguous()


def write_token_shards(
    rows: list[dict] | pa.Table,
    folder: str,
    num_shards: int = 1,
    row_group_size: int = 256,
    tokenizer: str | None = None,
    eos_token: str | None = None,
) -> dict:
    """Write token rows (``TOKENS_SCHEMA``) as ``folder/tokens/shard-*.parquet`` + a manifest.

    For held-out sets and tests; curation runs write their own shards through Spark.
    """
    import os

    from curate.schema import TOKENS_SCHEMA
    from curate.shards import write_sharded

    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=TOKENS_SCHEMA)
    infos = write_sharded(
        table,
        os.path.join(folder, "tokens"),
        "shard",
        range(num_shards),
        num_shards,
        row_group_size=row_group_size,
        token_column="n_tokens",
    )
    manifest = {
        "name": os.path.basename(os.path.normpath(folder)),
        "output": os.path.abspath(folder),
        "tokens": {
            "total": sum(i["tokens"] for i in infos),
            "tokenizer": os.path.abspath(tokenizer) if tokenizer else None,
            "eos_token": eos_token,
            "shards": [{"path": os.path.relpath(i["path"], folder), "documents": i["rows"], "tokens": i["tokens"]} for i in infos],
        },
    }
    with open(os.path.join(folder, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest


def shards_from_texts(
    texts: list[str],
    tokenizer_path: str,
    folder: str,
    source: str = "text",
    eos_token: str = "<|endoftext|>",
    num_shards: int = 1,
    row_group_size: int = 256,
) -> dict:
    """Tokenize documents (EOS appended, as curation runs do) and write them as token shards."""
    from curate.schema import TOKENS_SCHEMA, document_id
    from curate.tokens import DocumentTokenizer

    encoded = DocumentTokenizer(tokenizer_path, eos_token).encode(texts)
    rows = [
        {"id": document_id(source, str(i)), "source": source, "n_tokens": len(ids), "tokens": ids, "repeat": 0}
        for i, ids in enumerate(encoded)
    ]
    table = pa.Table.from_pylist(rows, schema=TOKENS_SCHEMA)
    return write_token_shards(table, folder, num_shards, row_group_size, tokenizer=tokenizer_path, eos_token=eos_token)
