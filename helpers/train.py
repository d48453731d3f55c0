"""Training a language model on a token sequence: the config, the loop, the command line.

``train(model, {"train": ..., "val": ...}, cfg)`` runs AdamW with warmup + cosine learning rate,
gradient clipping and a live progress bar, evaluates every ``eval_interval`` steps and returns a
``History``. Three promises, each kept by one rule:

- **Reproducible.** The learning rate is a function of the step alone, and a time budget is
  turned into a step count before the first real step (by timing a few throw-away steps), so the
  schedule and the order of the data are the same on any machine, however fast. The losses then
  agree up to floating-point non-determinism (the thread count and the machine change the order
  of additions), which some runs amplify. Evaluation has its own batch size
  (``eval_batch_size``), so the same weights get the same validation loss whatever the training
  batch or the number of processes.
- **Exactly data-parallel.** Under torchrun every rank draws the same global batch and trains on
  its slice, so N processes x batch B take the steps of 1 process x batch N*B.
- **Faithfully resumable.** With ``checkpoint_dir`` the best weights and the latest full state
  (optimizer, GradScaler, every random stream) are saved (see ``helpers.checkpoint``); a resumed
  run continues exactly where the stopped one was.

Run ``python -m helpers.train --help`` for the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.nn.parallel import DistributedDataParallel

from helpers import distributed
from helpers.checkpoint import (
    has_training_state,
    load_checkpoint,
    load_training_state,
    read_checkpoint_meta,
    save_checkpoint,
    save_training_state,
)
from helpers.data import CharTokenizer, get_batch, load_splits
from helpers.describe import Describable
from helpers.model import GPT, GPTConfig
from helpers.progress import in_notebook, progress_bar
from helpers.settings import pick_device, seed_everything, smoke_mode

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.distributed import Ranks

__all__ = [
    "TrainConfig",
    "preset",
    "History",
    "train",
    "estimate_loss",
    "learning_rate",
    "make_optimizer",
    "accumulate_gradients",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_meta",
    "reference_curve",
    "main",
]

EVAL_SEED = 1234  # every evaluation sees the same batches, so losses compare across steps and runs
CALIBRATION_STEPS = 5  # timed throw-away steps (after an untimed one) that size a time budget


# ---------------------------------------------------------------------------------------------
# the training config and the presets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig(Describable):
    """One training run: the model's shape (a ``GPTConfig``) and how to train it.

    ``model`` is None for a model that is not a GPT: the bigram of chapter 02 has no layers, heads
    or width, only a table, so it gets no GPTConfig rather than one with a value that means
    "not a GPT". It still needs to know how long its training sequences are: ``context_length``.
    A GPT's sequences are as long as its context (``model.block_size``), so it leaves that None.
    ``cfg.block_size`` is the length of the training sequences either way.
    """

    name: str
    device: str
    smoke: bool
    model: GPTConfig | None = None  # vocab_size 65: tiny Shakespeare's characters
    context_length: int | None = None  # only for a model without a GPTConfig
    # optimisation; batch_size is per process and per micro-batch
    batch_size: int = 32
    max_iters: int = 3000
    learning_rate: float = 1e-2
    min_lr: float = 1e-3
    warmup_iters: int = 0
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    grad_accum_steps: int = 1  # micro-batches per optimizer step (chapter 10)
    # evaluation and budget
    eval_interval: int = 300
    eval_iters: int = 200
    # evaluation batches have their own size, the same on any number of ranks and for any
    # training batch, so the same weights always get the same validation loss
    eval_batch_size: int = 32
    time_budget: float | None = None  # seconds of training steps; sets max_iters (see train)
    # speed switches (chapter 10; fused attention is the model's: model.fused_attention)
    autocast_dtype: str | None = None  # "bfloat16" / "float16" / None
    compile: bool = False
    fused_adamw: bool = False  # one kernel for the whole optimizer update

    def __post_init__(self):
        if (self.model is None) == (self.context_length is None):
            raise ValueError(
                "give a TrainConfig either model=GPTConfig(...) (a GPT trains on its "
                "whole context) or context_length=... (a model without a GPTConfig), "
                "not both and not neither"
            )

    @property
    def block_size(self) -> int:
        """Tokens per training sequence."""
        return self.model.block_size if self.model is not None else self.context_length


# Full-mode presets on a CPU (2 cores is the reference machine). Each chapter's preset is small
# enough to train in a few minutes there; the GPU versions are larger where a GPU pays off.
_CPU = {
    "bigram": dict(
        context_length=8,
        batch_size=32,
        max_iters=3000,
        learning_rate=1e-2,
        min_lr=1e-2,
        weight_decay=0.0,
        eval_interval=300,
        eval_iters=200,
        eval_batch_size=32,
    ),
    # chapters 04-06: one idea at a time on the same small shape, so the rows of the
    # loss-per-idea table differ by the idea only
    "attention": dict(
        model=dict(block_size=32, n_layer=4, n_head=4, n_embd=64),
        batch_size=32,
        max_iters=3000,
        learning_rate=1e-3,
        min_lr=1e-4,
        warmup_iters=100,
        weight_decay=0.0,
        eval_interval=500,
        eval_iters=100,
        eval_batch_size=32,
    ),
    # chapter 07: tuned to reach val loss <= 1.70 in under 2 minutes on 2 cores (see bench/).
    # The budget is a cap for slower machines: the reference machine fits all 1,500 steps in it
    # with room to spare, so timing noise there never changes the step count (or the losses).
    "gpt": dict(
        model=dict(block_size=64, n_layer=2, n_head=4, n_embd=128, dropout=0.0),
        batch_size=32,
        max_iters=1500,
        learning_rate=6e-3,
        min_lr=6e-4,
        warmup_iters=50,
        weight_decay=0.1,
        eval_interval=375,
        eval_iters=30,
        eval_batch_size=32,
        time_budget=120.0,
    ),
}

_GPU = {
    "bigram": _CPU["bigram"],
    "attention": dict(
        _CPU["attention"],
        model=dict(block_size=64, n_layer=4, n_head=4, n_embd=128),
        batch_size=64,
        eval_batch_size=64,
    ),
    # the published GPU shape (6 layers, 6 heads, 384 wide, context 256, dropout 0.2)
    "gpt": dict(
        model=dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
        batch_size=64,
        max_iters=5000,
        learning_rate=1e-3,
        min_lr=1e-4,
        warmup_iters=100,
        weight_decay=0.1,
        eval_interval=500,
        eval_iters=200,
        eval_batch_size=64,
        time_budget=None,
        autocast_dtype="bfloat16",
        compile=True,
        fused_adamw=True,
    ),
}

# Smoke mode: a handful of real steps, so every notebook still runs every cell.
_SMOKE = dict(
    max_iters=30, eval_interval=10, eval_iters=4, warmup_iters=2, time_budget=None, compile=False
)
# (the heads too: the GPU preset's 6 heads do not divide a width of 32)
_SMOKE_SHAPE = {
    "attention": dict(n_layer=2, n_head=4, n_embd=32, block_size=16),
    "gpt": dict(n_layer=2, n_head=4, n_embd=32, block_size=32),
}
_SMOKE_BATCH = {"gpt": 8}  # training and evaluation batch


def preset(name: str, device: str | None = None) -> TrainConfig:
    """The training config for chapter preset ``name`` on ``device`` (default: the best one
    found), shrunk in smoke mode. Print it with ``print(cfg.describe())``."""
    device = device or pick_device()
    table = _GPU if device == "cuda" else _CPU
    if name not in table:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(sorted(table))}")
    values = dict(table[name])
    shape = dict(values.pop("model", None) or {})
    if device == "mps":  # bf16 autocast and compile are unreliable on MPS; keep the CPU recipe
        values.update(autocast_dtype=None, compile=False)
    if smoke_mode():
        values.update(_SMOKE)
        if name in _SMOKE_BATCH:
            values["batch_size"] = values["eval_batch_size"] = _SMOKE_BATCH[name]
        if shape:
            shape.update(_SMOKE_SHAPE.get(name, {}))
    model = GPTConfig(**shape) if shape else None
    return TrainConfig(name=name, device=device, smoke=smoke_mode(), model=model, **values)


# ---------------------------------------------------------------------------------------------
# the pieces of a training step
# ---------------------------------------------------------------------------------------------


@dataclass
class History:
    """What happened during training: one entry per evaluation, and how the run was timed."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)  # wall seconds since training started
    max_iters: int = 0  # the step count the run planned (from the time budget, if there was one)
    seconds_per_step: float = 0.0  # measured for the time budget; 0 when there was none
    tokens_per_second: float = 0.0  # all ranks, training steps only (no evals, saves, 1st step)
    first_step_seconds: float = 0.0  # includes torch.compile's compile time when it is on
    stopped_by: str = "max_iters"  # or "stop_after" (a simulated crash)

    @property
    def best_val_loss(self) -> float:
        return min(self.val_loss) if self.val_loss else math.inf

    def to_dict(self) -> dict:
        return asdict(self)


def autocast_context(
    device: str, dtype_name: str | None
) -> contextlib.AbstractContextManager[None]:
    """Mixed precision when asked for: matmuls in bf16/fp16, reductions kept in fp32."""
    if not dtype_name:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype_name))


@torch.no_grad()
def estimate_loss(
    model: torch.nn.Module,
    data: dict[str, torch.Tensor],
    block_size: int,
    batch_size: int,
    eval_iters: int,
    device: str = "cpu",
    autocast_dtype: str | None = None,
) -> dict[str, float]:
    """Mean loss over ``eval_iters`` batches of each split, in eval mode (no dropout).
    A single batch's loss is noisy; the mean over many is what we compare."""
    was_training = model.training
    model.eval()
    out = {}
    for split, tokens in data.items():
        gen = torch.Generator().manual_seed(EVAL_SEED)
        losses = torch.zeros(eval_iters)
        for i in range(eval_iters):
            x, y = get_batch(tokens, block_size, batch_size, device, generator=gen)
            with autocast_context(device, autocast_dtype):
                _, loss = model(x, y)
            losses[i] = loss.item()
        out[split] = losses.mean().item()
    model.train(was_training)
    return out


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``learning_rate``, then a cosine decay to ``min_lr`` at ``max_iters``.
    A function of the step alone: never of the clock, which differs between runs and ranks."""
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / cfg.warmup_iters
    progress = min(1.0, (step - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return cfg.min_lr + cosine * (cfg.learning_rate - cfg.min_lr)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: decaying biases, LayerNorm gains or (for the
    bigram) nothing else buys nothing and can hurt."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=cfg.learning_rate, betas=(0.9, 0.99), fused=cfg.fused_adamw or None
    )  # None: PyTorch picks its default


def rank_batch(
    tokens: torch.Tensor,
    block_size: int,
    batch_size: int,
    ranks: Ranks,
    device: str,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's ``batch_size`` rows of one global batch. Every rank draws the same
    ``world_size * batch_size`` windows from the same generator and keeps its own slice, so N
    processes x B see exactly the examples 1 process x N*B sees, and no two ranks share a row."""
    if ranks.world_size == 1:
        return get_batch(tokens, block_size, batch_size, device, generator=gen)
    x, y = get_batch(tokens, block_size, batch_size * ranks.world_size, "cpu", generator=gen)
    rows = slice(ranks.rank * batch_size, (ranks.rank + 1) * batch_size)
    return x[rows].to(device), y[rows].to(device)


def accumulate_gradients(
    forward: torch.nn.Module,
    micro_batches: list[tuple[torch.Tensor, torch.Tensor]],
    device: str,
    autocast_dtype: str | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """Backpropagate the mean loss over ``micro_batches`` [(x, y), ...]: each micro-batch's loss is
    divided by their number, so the summed gradients equal those of one batch k times larger.
    Under DDP only the last backward averages gradients across ranks (``no_sync`` on the others).
    Returns the mean loss."""
    k, total = len(micro_batches), 0.0
    for i, (x, y) in enumerate(micro_batches):
        last = i == k - 1
        no_sync = not last and hasattr(forward, "no_sync")
        sync = forward.no_sync() if no_sync else contextlib.nullcontext()
        with sync:
            with autocast_context(device, autocast_dtype):
                _, loss = forward(x, y)
            loss = loss / k
            (scaler.scale(loss) if scaler is not None else loss).backward()
        total += loss.item()
    return total


def optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    grad_clip: float,
) -> None:
    """Clip the gradient norm, step, and clear the gradients. With fp16 the GradScaler first
    unscales the gradients (so clipping sees true values) and skips steps whose gradients
    overflowed, lowering the loss scale."""
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def rng_state(device: str) -> dict:
    """This process's torch random state (dropout draws from it), CPU and, on a GPU, CUDA."""
    state = {"cpu": torch.get_rng_state()}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: str) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.startswith("cuda"):
        torch.cuda.set_rng_state(state["cuda"], device)


def synchronize(device: str) -> None:
    """Wait for the GPU: its work is queued, so a clock read without this times the queueing."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------


def train(
    model: torch.nn.Module,
    data: dict[str, torch.Tensor],
    cfg: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    tokenizer: CharTokenizer | None = None,
    resume: bool = False,
    progress: bool = True,
    seed: int = 1337,
    stop_after: int | None = None,
) -> History:
    """Train ``model`` on ``data["train"]``, evaluating on ``data["val"]`` (see the module doc).

    ``resume`` continues from ``checkpoint_dir/last`` when it exists. ``stop_after`` stops at that
    step as a crash would (the latest state saved, no final evaluation), for trying out resume.
    Under torchrun (``helpers.distributed.setup`` called first) every rank runs this function;
    only rank 0 shows progress and writes checkpoints."""
    if set(data) != {"train", "val"}:
        raise ValueError(
            f"data must be a dict with 'train' and 'val' token tensors, got {sorted(data)}"
        )
    ranks, device = distributed.current(), cfg.device
    model.to(device)
    block_size = getattr(model, "block_size", None) or cfg.block_size
    optimizer = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=cfg.autocast_dtype == "float16")
    batches = torch.Generator().manual_seed(seed)  # one stream for all ranks: see rank_batch
    history, start = History(), 0
    if resume and has_training_state(checkpoint_dir):
        start, history = restore(checkpoint_dir, model, optimizer, scaler, batches, device, seed)
    else:
        torch.manual_seed(seed + 1 + ranks.rank)  # dropout: a stream per rank, none the batches'
    forward = DistributedDataParallel(model) if ranks.world_size > 1 else model
    if cfg.compile:
        forward = torch.compile(forward)
    tokens_per_step = cfg.grad_accum_steps * cfg.batch_size * block_size * ranks.world_size

    def one_step(step: int, gen) -> float:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        micro_batches = [
            rank_batch(data["train"], block_size, cfg.batch_size, ranks, device, gen)
            for _ in range(cfg.grad_accum_steps)
        ]
        loss = accumulate_gradients(forward, micro_batches, device, cfg.autocast_dtype, scaler)
        optimizer_step(model, optimizer, scaler, cfg.grad_clip)
        return loss

    model.train()
    if start and history.seconds_per_step:  # resumed: the budget's plan made at step 0 holds
        cfg = replace(cfg, max_iters=history.max_iters)
    elif cfg.time_budget:
        first, per_step = time_throwaway_steps(model, optimizer, scaler, one_step, device)
        history.first_step_seconds = first
        history.seconds_per_step = distributed.broadcast_from_main(per_step, device)
        cfg = replace(cfg, max_iters=plan_steps(cfg, history.seconds_per_step))
    history.max_iters = cfg.max_iters
    shown = progress and ranks.is_main
    say = print if shown else (lambda *a, **k: None)
    if cfg.time_budget and not (resume and start):
        say(
            f"time budget {cfg.time_budget:g} s at {history.seconds_per_step * 1e3:.1f} ms per "
            f"step (first step {history.first_step_seconds:.1f} s, not counted): "
            f"{cfg.max_iters} steps"
        )
    live = shown and _interactive()  # a terminal or notebook gets a bar; a log file gets lines
    bar = progress_bar(total=cfg.max_iters, desc=cfg.name, initial=start, disable=not live)

    clock = time.perf_counter() - (history.elapsed[-1] if history.elapsed else 0.0)
    timed_seconds, timed_steps, loss = 0.0, 0, float("nan")
    for step in range(start, cfg.max_iters + 1):
        is_eval_step = step % cfg.eval_interval == 0 or step == cfg.max_iters
        if is_eval_step and not (history.steps and history.steps[-1] == step):
            # every rank evaluates the same batches (cheap), which keeps the ranks in step
            losses = estimate_loss(
                model,
                data,
                block_size,
                cfg.eval_batch_size,
                cfg.eval_iters,
                device,
                cfg.autocast_dtype,
            )
            improved = losses["val"] < history.best_val_loss
            for key, value in (
                ("steps", step),
                ("train_loss", losses["train"]),
                ("val_loss", losses["val"]),
                ("lr", learning_rate(step, cfg)),
                ("elapsed", time.perf_counter() - clock),
            ):
                getattr(history, key).append(value)
            bar.set_postfix(train=f"{losses['train']:.3f}", val=f"{losses['val']:.3f}")
            if shown and not live:
                print(
                    f"step {step}/{cfg.max_iters}: train {losses['train']:.4f}, "
                    f"val {losses['val']:.4f}, lr {history.lr[-1]:.2e}, "
                    f"{history.elapsed[-1]:.0f} s",
                    flush=True,
                )
            if checkpoint_dir and improved and ranks.is_main:
                save_checkpoint(
                    checkpoint_dir,
                    model,
                    tokenizer=tokenizer,
                    step=step,
                    history=history,
                    train_config=cfg,
                )
        stopping = step == cfg.max_iters or step == stop_after
        if checkpoint_dir and step != start and (is_eval_step or stopping):
            state = {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "batches": batches.get_state(),
                "rng": distributed.gather_objects(rng_state(device)),
            }  # every rank's
            if ranks.is_main:
                save_training_state(
                    checkpoint_dir,
                    model,
                    state,
                    tokenizer=tokenizer,
                    history=history,
                    train_config=cfg,
                )
        if stopping:
            history.stopped_by = "max_iters" if step == cfg.max_iters else "stop_after"
            break
        tick = time.perf_counter()
        loss = one_step(step, batches)
        synchronize(device)
        seconds = time.perf_counter() - tick
        if step == start:  # compile, allocator warm-up: reported apart, not in tokens/s
            history.first_step_seconds = history.first_step_seconds or seconds
        else:
            timed_seconds, timed_steps = timed_seconds + seconds, timed_steps + 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{history.val_loss[-1]:.3f}")
    bar.close()
    if timed_steps:
        history.tokens_per_second = tokens_per_step * timed_steps / timed_seconds
    return history


def restore(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batches: torch.Generator,
    device: str,
    seed: int,
) -> tuple[int, History]:
    """Put the run back as it was at the latest save (``helpers.checkpoint``): weights, optimizer,
    GradScaler, the batch stream and this rank's dropout stream. Returns (step, history)."""
    state, meta = load_training_state(directory, model)
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    batches.set_state(state["batches"])
    ranks, step = distributed.current(), state["step"]
    if len(state["rng"]) == ranks.world_size:
        set_rng_state(state["rng"][ranks.rank], device)
    else:  # another number of processes: fresh dropout streams, still one per rank
        torch.manual_seed(seed + 1 + ranks.rank + ranks.world_size * step)
    return step, History(**meta["history"])


def time_throwaway_steps(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    one_step: Callable[[int, torch.Generator], float],
    device: str,
) -> tuple[float, float]:
    """(seconds of a first step, mean seconds of the next CALIBRATION_STEPS) on throw-away batches.
    Weights, optimizer, scaler and random state are put back afterwards, so the real run starts as
    if this never happened; the first step (compiling, warming caches) is timed apart."""
    saved = (
        copy.deepcopy(model.state_dict()),
        copy.deepcopy(optimizer.state_dict()),
        scaler.state_dict(),
        rng_state(device),
    )
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(1 + CALIBRATION_STEPS):
        tick = time.perf_counter()
        one_step(0, gen)
        synchronize(device)
        times.append(time.perf_counter() - tick)
    model.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    if saved[2]:
        scaler.load_state_dict(saved[2])
    set_rng_state(saved[3], device)
    return times[0], sum(times[1:]) / CALIBRATION_STEPS


def plan_steps(cfg: TrainConfig, seconds_per_step: float) -> int:
    """How many steps of ``seconds_per_step`` fit in the time budget, at most ``max_iters``.
    The budget is for training steps; evaluations and checkpoint writes come on top."""
    return max(1, min(cfg.max_iters, int(cfg.time_budget / max(seconds_per_step, 1e-9))))


def _interactive() -> bool:
    """True in a terminal or a notebook (show a live bar), False when output goes to a log file."""
    return sys.stderr.isatty() or in_notebook()


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> History:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train the chapter-07 GPT on tiny Shakespeare and write a checkpoint. "
        "Runs as one process, or as several under `torchrun --nproc_per_node N`.",
    )
    parser.add_argument(
        "--preset",
        default="gpt",
        choices=["attention", "gpt"],
        help="training preset from helpers.train.preset (default: gpt)",
    )
    parser.add_argument("--max-iters", type=int, help="override the preset's number of steps")
    parser.add_argument(
        "--time-budget",
        type=float,
        help="seconds of training steps; fixes the step count (0: no budget)",
    )
    parser.add_argument("--eval-interval", type=int, help="steps between evaluations")
    parser.add_argument("--batch-size", type=int, help="override the batch size (per process)")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    parser.add_argument("--dropout", type=float, help="override the model's dropout")
    parser.add_argument(
        "--device", choices=["cpu", "cuda", "mps"], help="default: the best one found"
    )
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the latest state in --out"
    )
    parser.add_argument(
        "--stop-after",
        type=int,
        help="stop at this step as a crash would, leaving a state to --resume",
    )
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)

    cfg = preset(args.preset, pick_device(args.device))
    cfg = replace(cfg, device=distributed.setup(cfg.device))
    overrides = {
        "max_iters": args.max_iters,
        "eval_interval": args.eval_interval,
        "batch_size": args.batch_size,
        "grad_accum_steps": args.grad_accum,
    }
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    if args.time_budget is not None:
        cfg = replace(cfg, time_budget=args.time_budget or None)
    ranks = distributed.current()
    say = print if ranks.is_main else (lambda *a, **k: None)
    seed_everything(args.seed)  # the same initial weights on every rank
    shakespeare = load_splits()
    shape = {"vocab_size": shakespeare.tokenizer.vocab_size}
    if args.dropout is not None:
        shape["dropout"] = args.dropout
    cfg = replace(cfg, model=replace(cfg.model, **shape))
    model = GPT(cfg.model)
    say(
        f"{model.num_parameters() / 1e6:.2f}M parameters, {ranks.world_size} process(es) x batch "
        f"{cfg.batch_size}, preset:\n{cfg.describe()}"
    )
    try:
        history = train(
            model,
            shakespeare.as_dict(),
            cfg,
            checkpoint_dir=args.out,
            tokenizer=shakespeare.tokenizer,
            resume=args.resume,
            seed=args.seed,
            stop_after=args.stop_after,
        )
    finally:
        distributed.teardown()
    say(
        f"best val loss {history.best_val_loss:.4f} after {history.elapsed[-1]:.1f}s "
        f"({history.tokens_per_second:,.0f} tokens/s in training steps, first step "
        f"{history.first_step_seconds:.2f} s, stopped by {history.stopped_by}); "
        f"checkpoint in {args.out}"
    )
    return history


def reference_curve(cfg: TrainConfig) -> dict | None:
    """The validation curve the course's own run of this preset reached on the reference machine
    (``helpers/reference/<preset>_<device>.json``, the history of the run stored in chapter 07),
    or None for a preset nobody has measured yet. Plot it behind a run to see if it is on track."""
    path = Path(__file__).parent / "reference" / f"{cfg.name}_{cfg.device}.json"
    return json.loads(path.read_text()) if path.exists() and not cfg.smoke else None


if __name__ == "__main__":
    main()
