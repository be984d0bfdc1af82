"""trainer/model.py and trainer/train.py on one CPU process: shapes, learning, bit-exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from trainer.data import shards_from_texts
from trainer.model import GPT, config_for
from trainer.train import WarmupCosine, load_config, parse_config, train


@pytest.fixture(scope="module")
def shards(tmp_path_factory, data_dir, wikitext_bpe):
    paragraphs = [p.strip() for p in (data_dir / "text" / "wikitext-2-test.txt").read_text().splitlines() if len(p.strip()) > 20]
    root = tmp_path_factory.mktemp("shards")
    shards_from_texts(paragraphs[:-20], str(wikitext_bpe), str(root / "train"), source="wiki", num_shards=2)
    shards_from_texts(paragraphs[-20:], str(wikitext_bpe), str(root / "heldout"), source="wiki")
    return root


def _config(out_dir, shards, wikitext_bpe, **optim):
    return parse_config(
        {
            "out_dir": str(out_dir),
            "seed": 3,
            "model": {"size": "tiny"},
            "data": {"train": str(shards / "train"), "seq_len": 32, "tokenizer": str(wikitext_bpe)},
            "eval": {"sets": {"heldout": str(shards / "heldout")}, "every": 4, "max_sequences": 16},
            "optim": {"micro_batch": 4, "grad_accum": 2, "max_steps": 8, "warmup_steps": 2, **optim},
            "system": {"threads": 1},
            "log": {"progress": False},
        }
    )


@pytest.mark.parametrize("mlp,positions,norm", [("swiglu", "rope", "rmsnorm"), ("gelu", "learned", "layernorm")])
def test_model_variants_forward_and_tie(mlp, positions, norm):
    torch.manual_seed(0)
    model = GPT(config_for("tiny", vocab_size=128, block_size=16, mlp=mlp, positions=positions, norm=norm))
    idx = torch.randint(0, 128, (2, 16))
    logits, loss = model(idx, torch.randint(0, 128, (2, 16)))
    assert logits.shape == (2, 16, 128)
    assert abs(loss.item() - torch.log(torch.tensor(128.0)).item()) < 0.3  # near uniform at init
    assert model.head.weight is model.tok_emb.weight
    # causal: changing a later token never changes earlier logits
    changed = idx.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 128
    assert torch.allclose(model(changed)[0][:, :10], logits[:, :10], atol=1e-6)


def test_sizes_by_name_and_dims():
    assert config_for("124m", vocab_size=50304).n_embd == 768
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = GPT(config_for("124m", vocab_size=50304, block_size=1024, mlp="gelu", positions="learned"))
    assert 123e6 < model.num_parameters(non_embedding=False) - model.pos_emb.weight.numel() < 125e6  # GPT-2 small
    assert config_for({"n_layer": 3, "n_head": 4, "n_embd": 32}, vocab_size=10).n_layer == 3
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        config_for("huge", vocab_size=10)
    with pytest.raises(ValueError, match="multiple of n_head"):
        config_for({"n_layer": 1, "n_head": 3, "n_embd": 32}, vocab_size=10)


def test_schedule_warms_up_then_decays():
    s = WarmupCosine(1.0, 0.1, warmup=4, total=20)
    values = [s.value(i) for i in range(22)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert values[4] == 1.0 and values[-1] == 0.1
    assert all(a >= b for a, b in zip(values[3:], values[4:]))


def test_training_lowers_loss_and_logs(tmp_path, shards, wikitext_bpe):
    summary = train(_config(tmp_path / "run", shards, wikitext_bpe, max_steps=30, lr=1e-2, warmup_steps=3))
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [l for l in lines if "loss" in l]
    evals = [l for l in lines if "eval" in l]
    assert [l["step"] for l in steps] == list(range(1, 31))
    assert steps[-1]["tokens"] == 30 * 4 * 2 * 32 and summary["tokens"] == steps[-1]["tokens"]
    assert {"lr", "tokens_per_s"} <= set(steps[0]) and "mfu" not in steps[0]  # MFU only on GPU
    assert sum(l["loss"] for l in steps[-5:]) / 5 < steps[0]["loss"] - 0.4
    assert [e["step"] for e in evals] == [4, 8, 12, 16, 20, 24, 28, 30]
    assert evals[-1]["eval"]["heldout"] < evals[0]["eval"]["heldout"]


def test_resume_is_bit_exact(tmp_path, shards, wikitext_bpe):
    straight = train(_config(tmp_path / "straight", shards, wikitext_bpe))
    # the same 8-step run interrupted after step 4 (its checkpoint), then started again
    interrupted = _config(tmp_path / "resumed", shards, wikitext_bpe)
    interrupted.checkpoint.every = 4
    assert train(interrupted, stop_after=4)["step"] == 4
    resumed = train(_config(tmp_path / "resumed", shards, wikitext_bpe))

    a = torch.load(tmp_path / "straight" / "checkpoints" / "latest.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "latest.pt", weights_only=False)
    assert a["step"] == b["step"] == 8 and b["data"]["micro_step"] == 16
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    assert straight["loss"] == resumed["loss"] and straight["eval_heldout"] == resumed["eval_heldout"]

    def logged(name):
        lines = [json.loads(l) for l in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in l.items() if k != "tokens_per_s"} for l in lines]

    assert logged("straight") == logged("resumed")  # lines past the checkpoint are not doubled


def test_log_every_averages_the_steps_since_the_last_line(tmp_path, shards, wikitext_bpe):
    def steps(name, **log):
        config = _config(tmp_path / name, shards, wikitext_bpe)
        config.eval.sets = {}
        config.checkpoint.every = 4
        config.log.every = log.get("every", 1)
        train(config)
        return [json.loads(l) for l in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]

    each = {l["step"]: l["loss"] for l in steps("each")}
    assert sorted(each) == list(range(1, 9))
    windowed = steps("every3", every=3)
    # every 3rd step, plus the checkpoint at 4 and the last step, 8: each line the mean since the one before
    assert [l["step"] for l in windowed] == [3, 4, 6, 8]
    assert [l["tokens"] for l in windowed] == [s * 4 * 2 * 32 for s in (3, 4, 6, 8)]
    for line, covered in zip(windowed, [(1, 2, 3), (4,), (5, 6), (7, 8)]):
        assert line["loss"] == pytest.approx(sum(each[s] for s in covered) / len(covered), rel=1e-6), line
        assert line["tokens_per_s"] > 0
    assert windowed[1]["loss"] == each[4]  # a one-step window is that step's loss, bit for bit


def test_config_errors_name_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("out_dir: x\ndata: {train: runs/x, seq_len: long}\noptim: {max_steps: 3}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: data.seq_len: expected an integer, got 'long'"):
        load_config(str(path))
    path.write_text("out_dir: x\ndata: {train: runs/x}\noptim: {max_steps: 3, max_tokens: 100}\n")
    with pytest.raises(ValueError, match="exactly one of max_steps and max_tokens"):
        load_config(str(path))
    path.write_text("out_dir: x\ndata: {train: runs/x}\noptim: {max_steps: 3}\nlog: {every: 0}\n")
    with pytest.raises(ValueError, match="log.every must be positive"):
        load_config(str(path))
