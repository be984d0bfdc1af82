"""Two CPU processes under torchrun (gloo): disjoint data, and the same losses as one process
with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from trainer.data import shards_from_texts
from trainer.train import load_config, train

ROOT = Path(__file__).resolve().parent.parent


def _write_config(path: Path, out_dir: Path, shards: Path, tokenizer: Path, micro_batch: int) -> Path:
    config = {
        "out_dir": str(out_dir),
        "seed": 5,
        "model": {"size": "tiny"},
        "data": {"train": str(shards / "train"), "seq_len": 32, "tokenizer": str(tokenizer)},
        "eval": {"sets": {"heldout": str(shards / "heldout")}, "every": 3, "max_sequences": 12, "batch_size": 4},
        "optim": {"micro_batch": micro_batch, "grad_accum": 2, "max_steps": 6, "warmup_steps": 2},
        "system": {"threads": 1},
        "log": {"progress": False, "record_data": True},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _metrics(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def test_torchrun_two_gloo_processes_match_one(tmp_path, data_dir, wikitext_bpe):
    paragraphs = [p.strip() for p in (data_dir / "text" / "wikitext-2-test.txt").read_text().splitlines() if len(p.strip()) > 20]
    shards_from_texts(paragraphs[:-20], str(wikitext_bpe), str(tmp_path / "train"), source="wiki", num_shards=2)
    shards_from_texts(paragraphs[-20:], str(wikitext_bpe), str(tmp_path / "heldout"), source="wiki")

    two = _write_config(tmp_path / "two.yaml", tmp_path / "two", tmp_path, wikitext_bpe, micro_batch=2)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(torchrun + ["-m", "trainer.train", str(two)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["step"] == 6

    # one process, micro-batch doubled: the same 8 sequences per optimizer step
    one = _write_config(tmp_path / "one.yaml", tmp_path / "one", tmp_path, wikitext_bpe, micro_batch=4)
    train(load_config(str(one)))

    ranks = []
    for rank in range(2):
        lines = [json.loads(l) for l in (tmp_path / "two" / f"data-rank{rank}.jsonl").read_text().splitlines()]
        ranks.append([i for l in lines for i in l["sequences"]])
    single = [i for l in (tmp_path / "one" / "data-rank0.jsonl").read_text().splitlines() for i in json.loads(l)["sequences"]]
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(single) == list(range(6 * 2 * 8 // 2))

    two_lines, one_lines = _metrics(tmp_path / "two"), _metrics(tmp_path / "one")
    assert [l["step"] for l in two_lines] == [l["step"] for l in one_lines]
    for a, b in zip(two_lines, one_lines):
        if "loss" in a:
            assert abs(a["loss"] - b["loss"]) < 1e-4 * b["loss"], (a, b)
            assert a["tokens"] == b["tokens"]
        else:
            for name in b["eval"]:
                assert abs(a["eval"][name] - b["eval"][name]) < 1e-4 * b["eval"][name], (a, b)
