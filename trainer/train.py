"""The training loop: ``torchrun --nproc_per_node N -m trainer.train CONFIG.yaml``.

One process (``python -m trainer.train CONFIG.yaml``) or N under torchrun: DistributedDataParallel
over gloo (CPU) or NCCL (GPU); AdamW with linear warmup then cosine decay to ``min_lr``;
gradient accumulation; gradient clipping; bf16 autocast on GPU; optional ``torch.compile``.

Every ``checkpoint.every`` steps the model, optimizer, schedule, data position and RNG states
are written atomically (temporary file, then rename) to ``OUT/checkpoints/``; a rerun of the
same config resumes from the newest one and continues bit-exactly on CPU. Rank 0 appends one
JSON line every ``log.every`` steps (default 1) to ``OUT/metrics.jsonl`` (step, tokens, loss and
tokens/s averaged over those steps, lr, MFU on GPU) and one per evaluation (loss on every named
held-out set).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from curate.config import deep_merge, from_dict
from trainer.data import Layout, TokenStream, eval_batches, make_loader
from trainer.model import GPT, config_for


# --- configuration (YAML -> dataclasses through curate.config: one converter, one merge) -------


@dataclass
class ModelSection:
    size: str = "tiny"  # a name in trainer.model.SIZES, or "custom" with dims below
    n_layer: int | None = None
    n_head: int | None = None
    n_embd: int | None = None
    mlp: str = "swiglu"
    positions: str = "rope"
    norm: str = "rmsnorm"
    dropout: float = 0.0
    tie_embeddings: bool = True  # False: a separate output matrix (same compute, more parameters)
    vocab_size: int | None = None  # default: the tokenizer's vocabulary


@dataclass
class DataSection:
    train: str = ""  # run folder, tokens/ folder, shard file or glob; any fsspec URL
    seq_len: int = 128
    num_workers: int = 0
    tokenizer: str | None = None  # for the vocabulary size; default: the run manifest's tokenizer
    shuffle_seed: int | None = None  # None: windows in stream order; else a seeded order per epoch


@dataclass
class EvalSection:
    sets: dict[str, str] = field(default_factory=dict)  # name -> token shards
    every: int = 0  # steps; 0: only at the end
    max_sequences: int = 64
    batch_size: int = 8


@dataclass
class OptimSection:
    micro_batch: int = 8
    grad_accum: int = 1
    max_steps: int | None = None
    max_tokens: int | None = None  # alternative to max_steps: steps = ceil(tokens / tokens per step)
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 10
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0


@dataclass
class SystemSection:
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | float32 | bfloat16
    compile: bool = False
    threads: int | None = None  # CPU threads per process (default: torch's choice)
    peak_flops: float | None = None  # per device, for MFU; default from the GPU's name


@dataclass
class CheckpointSection:
    every: int = 0  # steps; 0: only at the end
    resume: bool = True  # continue from OUT/checkpoints/latest.pt when present


@dataclass
class LogSection:
    every: int = 1  # steps per metrics line; its loss and tokens/s are the mean over those steps
    progress: bool = True
    record_data: bool = False  # write the sequence indices every rank trained on (tests, audits)


@dataclass
class TrainConfig:
    out_dir: str
    seed: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    eval: EvalSection = field(default_factory=EvalSection)
    optim: OptimSection = field(default_factory=OptimSection)
    system: SystemSection = field(default_factory=SystemSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    log: LogSection = field(default_factory=LogSection)

    def validate(self) -> None:
        if not self.data.train:
            raise ValueError("data.train: expected the token shards to train on")
        if (self.optim.max_steps is None) == (self.optim.max_tokens is None):
            raise ValueError("optim: give exactly one of max_steps and max_tokens")
        if self.optim.micro_batch < 1 or self.optim.grad_accum < 1 or self.data.seq_len < 1:
            raise ValueError("optim.micro_batch, optim.grad_accum and data.seq_len must be positive")
        if self.log.every < 1:
            raise ValueError("log.every must be positive")


def load_config(path: str, overrides: dict | None = None) -> TrainConfig:
    import yaml

    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    return parse_config(deep_merge(raw, overrides or {}), os.path.basename(path))


def parse_config(raw: dict, file: str = "<config>") -> TrainConfig:
    return from_dict(TrainConfig, raw, "", file)


# --- distributed set-up ------------------------------------------------------------------------


@dataclass
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for full precision

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start_runtime(system: SystemSection) -> Runtime:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = system.device == "cuda" or (system.device == "auto" and torch.cuda.is_available())
    if use_cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if system.threads:
        torch.set_num_threads(system.threads)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if system.dtype == "auto":
        dtype = torch.bfloat16 if use_cuda else None
    else:
        dtype = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[system.dtype]
    return Runtime(rank, world_size, local_rank, device, dtype)


def _all_mean(value: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    if runtime.world_size > 1:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= runtime.world_size
    return value


# GPU peak dense bf16 FLOP/s by device name, for MFU.
PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12, "4090": 165e12}


def peak_flops(runtime: Runtime, system: SystemSection) -> float | None:
    if system.peak_flops:
        return system.peak_flops
    if runtime.device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(runtime.device)
    return next((v for k, v in PEAK_FLOPS.items() if k in name), None)


# --- schedule, checkpoints ----------------------------------------------------------------------


class WarmupCosine:
    """Linear warmup to ``lr`` over ``warmup`` steps, then cosine to ``min_lr`` at ``total``."""

    def __init__(self, lr: float, min_lr: float, warmup: int, total: int):
        self.lr, self.min_lr, self.warmup, self.total = lr, min_lr, warmup, total
        self.step = 0

    def value(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if step >= self.total:
            return self.min_lr
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return self.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "min_lr": self.min_lr, "warmup": self.warmup, "total": self.total, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str, payload: dict) -> None:
    """Write to a temporary name, then rename: a crash never leaves a half checkpoint."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def latest_checkpoint(out_dir: str) -> str | None:
    path = os.path.join(out_dir, "checkpoints", "latest.pt")
    return path if os.path.exists(path) else None


# --- the loop --------------------------------------------------------------------------------------


def vocab_size_for(config: TrainConfig) -> int:
    if config.model.vocab_size:
        return config.model.vocab_size
    tokenizer = config.data.tokenizer
    if tokenizer is None:
        manifest = os.path.join(config.data.train, "manifest.json")
        if os.path.exists(manifest):
            with open(manifest) as fh:
                tokenizer = json.load(fh).get("tokens", {}).get("tokenizer")
    if not tokenizer:
        raise ValueError("model.vocab_size: not given, and no data.tokenizer or run manifest names a tokenizer")
    from tokenizers import Tokenizer

    return Tokenizer.from_file(tokenizer).get_vocab_size()


def build_model(config: TrainConfig) -> GPT:
    m = config.model
    vocab = vocab_size_for(config)
    vocab = 64 * math.ceil(vocab / 64)  # multiples of 64 keep the output matmul on fast paths
    size: Any = m.size
    if m.size == "custom":
        size = {"n_layer": m.n_layer, "n_head": m.n_head, "n_embd": m.n_embd}
    return GPT(
        config_for(
            size,
            vocab_size=vocab,
            block_size=config.data.seq_len,
            mlp=m.mlp,
            positions=m.positions,
            norm=m.norm,
            dropout=m.dropout,
            tie_embeddings=m.tie_embeddings,
        )
    )


class _MetricsFile:
    """Rank 0's ``metrics.jsonl``, open for the whole run.

    Lines are flushed at most every ``flush_seconds`` (enough to follow a run with
    ``tail -f``), before every checkpoint and at the end, not one open/flush per step: lines
    lost in a crash are those past the last checkpoint, which a resume logs again anyway.
    """

    def __init__(self, path: str, flush_seconds: float = 2.0):
        self.fh = open(path, "a", encoding="utf-8")
        self.flush_seconds = flush_seconds
        self.flushed = time.monotonic()

    def write(self, record: dict) -> None:
        self.fh.write(json.dumps(record) + "\n")
        if time.monotonic() - self.flushed >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self.fh.flush()
        self.flushed = time.monotonic()

    def close(self) -> None:
        self.fh.close()


def _truncate_metrics(path: str, step: int) -> None:
    """After a resume, drop lines logged past the checkpoint (they will be logged again)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        keep = [line for line in fh if line.strip() and json.loads(line)["step"] <= step]
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(keep)


@torch.no_grad()
def evaluate(model: torch.nn.Module, streams: dict[str, TokenStream], config: TrainConfig, runtime: Runtime) -> dict[str, float]:
    model.eval()
    out = {}
    for name, stream in streams.items():
        total = torch.zeros(2, dtype=torch.float64, device=runtime.device)
        for x, y in eval_batches(
            stream, config.data.seq_len, config.eval.batch_size, config.eval.max_sequences, runtime.rank, runtime.world_size
        ):
            x, y = x.to(runtime.device), y.to(runtime.device)
            with _autocast(runtime):
                _, loss = model(x, y)
            total += torch.tensor([loss.item() * y.numel(), y.numel()], dtype=torch.float64, device=runtime.device)
        if runtime.world_size > 1:
            dist.all_reduce(total)
        out[name] = float(total[0] / total[1]) if total[1] > 0 else float("nan")
    model.train()
    return out


def _autocast(runtime: Runtime):
    if runtime.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=runtime.device.type, dtype=runtime.dtype)


@dataclass
class _TrainState:
    """What the loop advances: the unwrapped model, its optimizer and schedule, and the step."""

    model: GPT
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosine
    step: int
    resumed: bool
    max_steps: int
    tokens_per_step: int


def _start_state(config: TrainConfig, runtime: Runtime) -> _TrainState:
    """A fresh model, optimizer and schedule, or the newest checkpoint's (``checkpoint.resume``)."""
    opt = config.optim
    tokens_per_step = opt.micro_batch * opt.grad_accum * runtime.world_size * config.data.seq_len
    max_steps = opt.max_steps if opt.max_steps is not None else math.ceil(opt.max_tokens / tokens_per_step)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    model = build_model(config).to(runtime.device)
    optimizer = torch.optim.AdamW(
        model.optimizer_groups(opt.weight_decay), lr=opt.lr, betas=(opt.beta1, opt.beta2), fused=runtime.device.type == "cuda"
    )
    schedule = WarmupCosine(opt.lr, opt.min_lr, opt.warmup_steps, max_steps)
    metrics_path = os.path.join(config.out_dir, "metrics.jsonl")
    step = 0
    resume_from = latest_checkpoint(config.out_dir) if config.checkpoint.resume else None
    if resume_from:
        state = torch.load(resume_from, map_location=runtime.device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        set_rng_state(state["rng"][runtime.rank] if runtime.rank < len(state["rng"]) else state["rng"][0])
        if runtime.is_main:
            _truncate_metrics(metrics_path, step)
    elif runtime.is_main and os.path.exists(metrics_path):
        os.remove(metrics_path)
    if runtime.world_size > 1:
        dist.barrier()
    return _TrainState(model, optimizer, schedule, step, bool(resume_from), max_steps, tokens_per_step)


def _wrap(model: GPT, config: TrainConfig, runtime: Runtime) -> torch.nn.Module:
    """The module the steps run: ``model`` compiled and/or in DDP (checkpoints save ``model`` itself)."""
    if config.system.compile:
        model = torch.compile(model)
    if runtime.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[runtime.local_rank] if runtime.device.type == "cuda" else None)
    return model


class _RunLogs:
    """A rank's outputs while it trains: metrics.jsonl (rank 0), the data log, the progress bar."""

    def __init__(self, config: TrainConfig, runtime: Runtime, state: _TrainState):
        self.data = None
        if config.log.record_data:
            self.data = open(os.path.join(config.out_dir, f"data-rank{runtime.rank}.jsonl"), "a" if state.resumed else "w")
        self.metrics = _MetricsFile(os.path.join(config.out_dir, "metrics.jsonl")) if runtime.is_main else None
        self.progress = None
        if runtime.is_main and config.log.progress:
            from tqdm.auto import tqdm

            self.progress = tqdm(total=state.max_steps, initial=state.step, desc="train", unit="step", dynamic_ncols=True, file=sys.stderr)

    def close(self) -> None:
        for output in (self.progress, self.data, self.metrics):
            if output is not None:
                output.close()


def _one_step(
    model: torch.nn.Module, state: _TrainState, batches, config: TrainConfig, runtime: Runtime, lr: float, data_log
) -> torch.Tensor:
    """One optimizer step over ``grad_accum`` micro-batches; the step's mean loss, left on the device."""
    opt = config.optim
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    step_loss = None
    for micro in range(opt.grad_accum):
        x, y, seq_idx = next(batches)
        if data_log is not None:
            data_log.write(json.dumps({"step": state.step, "micro": micro, "sequences": seq_idx.tolist()}) + "\n")
        x, y = x.to(runtime.device, non_blocking=True), y.to(runtime.device, non_blocking=True)
        # DDP all-reduces gradients only on the last micro-step of an accumulation
        sync = micro == opt.grad_accum - 1 or runtime.world_size == 1
        with contextlib.nullcontext() if sync else model.no_sync(), _autocast(runtime):
            _, loss = model(x, y)
            (loss / opt.grad_accum if opt.grad_accum > 1 else loss).backward()
        step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
    if opt.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), opt.grad_clip)
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    state.step += 1
    state.schedule.step = state.step
    return step_loss / opt.grad_accum if opt.grad_accum > 1 else step_loss


class _LossWindow:
    """The steps since the last metrics line: their losses summed on the device (reading a loss,
    ``.item()``, waits for its step to finish, so only a line's step pays that wait) and the
    clock since the line before."""

    def __init__(self):
        self.loss: torch.Tensor | None = None
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, step_loss: torch.Tensor) -> None:
        self.loss = step_loss if self.loss is None else self.loss + step_loss
        self.steps += 1

    def close(self, runtime: Runtime, tokens_per_step: int) -> tuple[float, float]:
        """(mean loss over all ranks, tokens/s) of the window, which starts again empty."""
        mean_loss = _all_mean(self.loss / self.steps if self.steps > 1 else self.loss, runtime).item()
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        # the whole loop since the previous line (data, logging, progress bar included), minus
        # evaluations and checkpoints, which restart the clock
        now = time.perf_counter()
        rate = self.steps * tokens_per_step / (now - self.started)
        self.started, self.loss, self.steps = now, None, 0
        return mean_loss, rate

    def restart_clock(self) -> None:
        self.started = time.perf_counter()


def _log_line(
    window: _LossWindow, state: _TrainState, lr: float, runtime: Runtime, logs: _RunLogs, flops_per_token: float, peak: float | None
) -> dict:
    """Close the loss window into one metrics line (rank 0 writes it); returns the line."""
    mean_loss, rate = window.close(runtime, state.tokens_per_step)
    record = {"step": state.step, "tokens": state.step * state.tokens_per_step, "loss": mean_loss, "lr": lr, "tokens_per_s": rate}
    if peak:
        record["mfu"] = flops_per_token * record["tokens_per_s"] / (peak * runtime.world_size)
    if logs.metrics is not None:
        logs.metrics.write(record)
    if logs.progress is not None:
        # refresh=False: the bar redraws on its own clock (update), not on every line
        logs.progress.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.2e}", refresh=False)
    return record


def _evaluate_and_checkpoint(
    model: torch.nn.Module,
    eval_streams: dict,
    state: _TrainState,
    config: TrainConfig,
    runtime: Runtime,
    logs: _RunLogs,
    checkpoint_now: bool,
) -> tuple[dict, bool]:
    """The evaluation and checkpoint due at this step: (eval_<set> losses, whether either ran)."""
    step, losses, paused = state.step, {}, False
    if eval_streams and ((config.eval.every and step % config.eval.every == 0) or step == state.max_steps):
        losses = evaluate(model, eval_streams, config, runtime)
        if logs.metrics is not None:
            logs.metrics.write({"step": step, "tokens": step * state.tokens_per_step, "eval": losses})
        paused = True
    if checkpoint_now:
        if logs.metrics is not None:
            logs.metrics.flush()  # every line up to the checkpoint is on disk before it exists
        _checkpoint(config, runtime, state.model, state.optimizer, state.schedule, step)
        paused = True
    return {f"eval_{k}": v for k, v in losses.items()}, paused


def _summary(config: TrainConfig, runtime: Runtime, state: _TrainState, last: dict) -> dict:
    """The run's summary (rank 0 also writes ``summary.json``)."""
    summary = {
        "step": state.step,
        "max_steps": state.max_steps,
        "tokens": state.step * state.tokens_per_step,
        "world_size": runtime.world_size,
        **{k: v for k, v in last.items() if k not in ("step", "tokens")},
    }
    if runtime.is_main:
        with open(os.path.join(config.out_dir, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=2)
    return summary


def train(config: TrainConfig, stop_after: int | None = None) -> dict:
    """Run (or resume) training; returns a summary (final step, tokens, last losses).

    ``stop_after`` ends the run after that step while the schedule still spans the whole
    budget: a time-sliced job (preemptible machines, queue limits) continues on the next call.
    """
    config.validate()
    runtime = start_runtime(config.system)
    os.makedirs(config.out_dir, exist_ok=True)
    state = _start_state(config, runtime)
    model = _wrap(state.model, config, runtime)
    layout = Layout(config.data.seq_len, config.optim.micro_batch, runtime.world_size, runtime.rank)
    start = state.step * config.optim.grad_accum
    batches = make_loader(TokenStream(config.data.train), layout, start, config.data.num_workers, config.data.shuffle_seed)
    eval_streams = {name: TokenStream(path) for name, path in config.eval.sets.items()}
    peak = peak_flops(runtime, config.system)
    flops_per_token = state.model.flops_per_token(config.data.seq_len)
    logs = _RunLogs(config, runtime, state)
    last: dict[str, Any] = {}
    model.train()
    end = state.max_steps if stop_after is None else min(state.max_steps, stop_after)
    window = _LossWindow()
    try:
        while state.step < end:
            lr = state.schedule.value(state.step)
            window.add(_one_step(model, state, batches, config, runtime, lr, logs.data))
            checkpoint_now = bool(config.checkpoint.every and state.step % config.checkpoint.every == 0) or state.step == state.max_steps
            # a line also closes the window at a checkpoint and at the run's last step, so each
            # line's loss is the mean since the previous line, across resumes too
            if state.step % config.log.every == 0 or state.step == end or checkpoint_now:
                last.update(_log_line(window, state, lr, runtime, logs, flops_per_token, peak))
            if logs.progress is not None:
                logs.progress.update(1)
            losses, paused = _evaluate_and_checkpoint(model, eval_streams, state, config, runtime, logs, checkpoint_now)
            last.update(losses)
            if paused:
                window.restart_clock()
    finally:
        logs.close()
    return _summary(config, runtime, state, last)


def _checkpoint(config: TrainConfig, runtime: Runtime, model: GPT, optimizer, schedule: WarmupCosine, step: int) -> None:
    # Every rank's RNG state is kept (they differ only if a rank draws differently, e.g. dropout).
    states = [rng_state()]
    if runtime.world_size > 1:
        gathered: list = [None] * runtime.world_size
        dist.all_gather_object(gathered, states[0])
        states = gathered
    if runtime.is_main:
        payload = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "step": step,
            "data": {
                "micro_step": step * config.optim.grad_accum,
                "world_size": runtime.world_size,
                "micro_batch": config.optim.micro_batch,
            },
            "rng": states,
            "config": dataclasses.asdict(config),
            "model_config": dataclasses.asdict(model.config),
        }
        folder = os.path.join(config.out_dir, "checkpoints")
        save_checkpoint(os.path.join(folder, f"step-{step:07d}.pt"), payload)
        save_checkpoint(os.path.join(folder, "latest.pt"), payload)
    if runtime.world_size > 1:
        dist.barrier()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trainer.train", description="Train a GPT on curated token shards.")
    parser.add_argument("config", help="training config YAML (see trainer/configs/)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a key, e.g. optim.max_steps=20 (YAML value)"
    )
    args = parser.parse_args(argv)
    import yaml

    overrides: dict = {}
    for item in args.set:
        key, _, value = item.partition("=")
        node = overrides
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    from curate.recipe import RecipeError

    try:
        config = load_config(args.config, overrides)
    except (RecipeError, FileNotFoundError) as e:
        print(f"trainer: invalid config: {e}", file=sys.stderr)
        return 2
    try:
        summary = train(config)
        if dist.is_initialized():
            # every rank's last collective is done before any rank tears gloo down: a rank that
            # destroyed its group while its peer still used it aborted once in CI
            # ("terminate called without an active exception" in rank 1's exit path)
            dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
