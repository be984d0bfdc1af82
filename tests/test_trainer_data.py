"""trainer/data.py: the token stream, rank/worker sharding without overlap or gaps, resume."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.data import DataError, Layout, SequenceDataset, TokenStream, eval_batches, make_loader, resolve_shards, shards_from_texts


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir, wikitext_bpe):
    paragraphs = [p.strip() for p in (data_dir / "text" / "wikitext-2-test.txt").read_text().splitlines() if len(p.strip()) > 20]
    folder = tmp_path_factory.mktemp("wiki-run")
    shards_from_texts(paragraphs, str(wikitext_bpe), str(folder), source="wiki", num_shards=3, row_group_size=16)
    return folder


def _all_tokens(run_dir) -> np.ndarray:
    parts = []
    for path in resolve_shards(str(run_dir)):
        parts.append(pq.read_table(path, columns=["tokens"]).column(0).combine_chunks().flatten().to_numpy())
    return np.concatenate(parts).astype(np.int64)


def test_stream_reads_shards_in_order(run_dir):
    stream = TokenStream(str(run_dir))
    everything = _all_tokens(run_dir)
    assert stream.total_tokens == len(everything)
    assert len(stream.files) == 3 and len(stream.groups) > 3  # several row groups per shard
    for start, length in [(0, 10), (1234, 5000), (stream.total_tokens - 7, 7)]:
        assert np.array_equal(stream.read(start, length), everything[start : start + length])
    # the same shards reached as a glob and through an fsspec URL
    assert TokenStream(f"file://{run_dir}/tokens/shard-*.parquet").total_tokens == stream.total_tokens


def test_ranks_and_workers_cover_every_sequence_once(run_dir):
    stream = TokenStream(str(run_dir))
    everything = _all_tokens(run_dir)
    world, workers, micro, seq_len, steps = 3, 2, 4, 32, 10
    seen: list[int] = []
    for rank in range(world):
        dataset = SequenceDataset(stream, Layout(seq_len, micro, world, rank))
        for worker in range(workers):
            ids = dataset.micro_steps(worker, workers)
            for _ in range(steps):
                x, y, idx = dataset.micro_batch(next(ids))
                seen.extend(idx.tolist())
                i = int(idx[0])
                assert torch.equal(x[0], torch.from_numpy(everything[i * seq_len : (i + 1) * seq_len]))
                assert torch.equal(y[0], torch.from_numpy(everything[i * seq_len + 1 : (i + 1) * seq_len + 1]))
    assert sorted(seen) == list(range(world * workers * steps * micro))


def test_dataloader_workers_keep_order(run_dir):
    stream = TokenStream(str(run_dir))
    layout = Layout(16, 2, world_size=1, rank=0)
    single = make_loader(stream, layout, start_micro_step=5, num_workers=0)
    multi = make_loader(stream, layout, start_micro_step=5, num_workers=2)
    for _ in range(6):
        a, b = next(single), next(multi)
        assert torch.equal(a[2], b[2]) and torch.equal(a[0], b[0])


def test_resume_reads_the_next_sequence(run_dir):
    stream = TokenStream(str(run_dir))
    layout = Layout(24, 3, world_size=2, rank=1)
    straight = make_loader(stream, layout, 0)
    batches = [next(straight) for _ in range(8)]
    resumed = make_loader(stream, layout, 5)
    for expected in batches[5:]:
        got = next(resumed)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[2], expected[2])


def test_stream_wraps_into_the_next_epoch(run_dir):
    stream = TokenStream(str(run_dir))
    dataset = SequenceDataset(stream, Layout(256, 1))
    n = dataset.num_sequences
    assert n == (stream.total_tokens - 1) // 256
    assert np.array_equal(dataset.sequence(n + 3), dataset.sequence(3))


def test_micro_batches_are_their_sequences_across_the_epoch_end(run_dir):
    # a micro-batch is read as one span of the stream; the one that crosses the end of the
    # stream (sequence indices wrapping to 0) must hold the same rows as sequence-by-sequence reads
    stream = TokenStream(str(run_dir))
    everything = _all_tokens(run_dir)
    seq_len = 64
    n = (stream.total_tokens - 1) // seq_len
    micro = next(b for b in (3, 5, 7, 11) if n % b)
    dataset = SequenceDataset(stream, Layout(seq_len, micro))
    crossing = n // micro
    for step in [0, 1, crossing - 1, crossing, crossing + 1]:
        x, y, idx = dataset.micro_batch(step)
        assert idx.tolist() == list(range(step * micro, (step + 1) * micro))
        assert x.shape == y.shape == (micro, seq_len)
        for row, i in enumerate(idx.tolist()):
            start = (i % n) * seq_len
            assert torch.equal(x[row], torch.from_numpy(everything[start : start + seq_len])), (step, row)
            assert torch.equal(y[row], torch.from_numpy(everything[start + 1 : start + seq_len + 1])), (step, row)
    assert (dataset.micro_batch(crossing)[2] % n).tolist()[-1] < micro  # this one did wrap


def test_eval_batches_split_over_ranks(run_dir):
    stream = TokenStream(str(run_dir))
    whole = torch.cat([x for x, _ in eval_batches(stream, 32, 5, 20)])
    parts = [torch.cat([x for x, _ in eval_batches(stream, 32, 5, 20, rank=r, world_size=2)]) for r in range(2)]
    assert whole.shape == (20, 32)
    assert torch.equal(torch.cat([parts[0], parts[1]]).sort(dim=0).values, whole.sort(dim=0).values)


def test_bad_inputs_name_the_file(tmp_path, run_dir):
    with pytest.raises(DataError, match="no token shards"):
        TokenStream(str(tmp_path))
    bad = tmp_path / "docs.parquet"
    import pyarrow as pa

    pq.write_table(pa.table({"text": ["a"]}), bad)
    with pytest.raises(DataError, match="docs.parquet: not a token shard"):
        TokenStream(str(bad))


def test_a_run_split_by_language_asks_for_one_language(tmp_path, run_dir):
    """A `shards.partition_by: language` run has tokens/language=<code>/ folders and no shard at
    tokens/: its root is refused naming the languages; one language's folder is read as a run."""
    import shutil

    shards = resolve_shards(str(run_dir))
    for code, picked in (("deu_Latn", shards[:1]), ("eng_Latn", shards[1:])):
        folder = tmp_path / "split" / "tokens" / f"language={code}"
        folder.mkdir(parents=True)
        for shard in picked:
            shutil.copy(shard, folder)
    with pytest.raises(DataError, match=r"split by language \(language=deu_Latn, language=eng_Latn\).*tokens/language=deu_Latn"):
        resolve_shards(str(tmp_path / "split"))
    one = TokenStream(str(tmp_path / "split" / "tokens" / "language=eng_Latn"))
    assert one.total_tokens == TokenStream(shards[1:]).total_tokens


@settings(max_examples=40, deadline=None)
@given(world=st.integers(1, 4), micro=st.integers(1, 5), steps=st.integers(1, 6), start=st.integers(0, 7))
def test_layout_partitions_sequences(world, micro, steps, start):
    seen = []
    for rank in range(world):
        layout = Layout(8, micro, world, rank)
        for step in range(start, start + steps):
            seen.extend(layout.sequences(step))
    first = start * world * micro
    assert sorted(seen) == list(range(first, first + steps * world * micro))
