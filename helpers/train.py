"""Training a language model on a token sequence: the loop.

``train(model, {"train": ..., "val": ...}, cfg)`` runs AdamW with warmup + cosine learning rate,
gradient clipping and a live progress bar, evaluates every ``eval_interval`` steps and returns a
``History``. ``model`` is any ``nn.Module`` whose ``forward(idx, targets)`` returns
``(logits, loss)``: the course's GPT or the one a chapter writes. Three promises, each kept by one
rule:

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

A GPU runs ahead of Python, so the loop never waits for it per step: the loss stays on the
device and is read at evaluations (and every ``LOG_INTERVAL`` steps for a live bar), and the clock
is read, after waiting for the GPU, only around the timed stretches between evaluations.

The presets are in ``helpers.presets``, the command line in ``helpers.train_cli``:
``python -m helpers.train --help``.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field, replace
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
from helpers.data import CharTokenizer, get_batch
from helpers.history import History
from helpers.mfu import mfu, model_flops_per_token, peak_flops
from helpers.precision import precision_name
from helpers.presets import TrainConfig, preset, reference_curve
from helpers.progress import in_notebook, progress_bar

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
    "optimizer_step",
    "rank_batch",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_meta",
    "reference_curve",
]

EVAL_SEED = 1234  # every evaluation sees the same batches, so losses compare across steps and runs
CALIBRATION_STEPS = 5  # timed throw-away steps (after an untimed one) that size a time budget
LOG_INTERVAL = 10  # steps between the live bar's loss readings (each one waits for the GPU)


# ---------------------------------------------------------------------------------------------
# the pieces of a training step
# ---------------------------------------------------------------------------------------------


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
    A single batch's loss is noisy; the mean over many is what we compare. The losses stay on
    the device until the mean is taken: one read per split."""
    was_training = model.training
    model.eval()
    out = {}
    for split, tokens in data.items():
        gen = torch.Generator().manual_seed(EVAL_SEED)
        losses = []
        for _ in range(eval_iters):
            x, y = get_batch(tokens, block_size, batch_size, device, generator=gen)
            with autocast_context(device, autocast_dtype):
                _, loss = model(x, y)
            losses.append(loss.float())
        out[split] = torch.stack(losses).cpu().mean().item()
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
) -> torch.Tensor:
    """Backpropagate the mean loss over ``micro_batches`` [(x, y), ...]: each micro-batch's loss is
    divided by their number, so the summed gradients equal those of one batch k times larger.
    Under DDP only the last backward averages gradients across ranks (``no_sync`` on the others).
    Returns the mean loss (unscaled) as a tensor on the device: reading it (``.item()``) would
    make the CPU wait for the GPU, so the loop reads it only now and then."""
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
        total = total + loss.detach()
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
# the loop: plan the steps, then step, evaluate, save; report at the end
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the loop's steps share: the model (and ``forward``, the same model wrapped for
    DDP or compiled), its optimizer and GradScaler, the batch stream, and the record so far."""

    model: torch.nn.Module
    forward: torch.nn.Module
    data: dict[str, torch.Tensor]
    cfg: TrainConfig
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batches: torch.Generator
    history: History
    start: int
    ranks: Ranks
    block_size: int
    timer: StepTimer = field(init=False)

    def __post_init__(self):
        self.timer = StepTimer(self.cfg.device)

    @property
    def tokens_per_step(self) -> int:
        cfg = self.cfg
        return cfg.grad_accum_steps * cfg.batch_size * self.block_size * self.ranks.world_size


class StepTimer:
    """Times the training steps without waiting for the GPU at every one: the first step
    (compiling, warming up) is timed apart; the others in stretches between evaluations, the
    clock read (after waiting for the GPU) only where a stretch starts and stops."""

    def __init__(self, device: str):
        self.device, self.seconds, self.steps = device, 0.0, 0
        self.first_step_seconds: float | None = None
        self._tick: float | None = None

    def step(self, take: Callable[..., torch.Tensor], *args) -> torch.Tensor:
        """``take(*args)``, timed."""
        if self.first_step_seconds is None:
            synchronize(self.device)
            tick = time.perf_counter()
            loss = take(*args)
            synchronize(self.device)
            self.first_step_seconds = time.perf_counter() - tick
            return loss
        if self._tick is None:
            synchronize(self.device)
            self._tick = time.perf_counter()
        self.steps += 1
        return take(*args)

    def pause(self) -> None:
        if self._tick is not None:
            synchronize(self.device)
            self.seconds += time.perf_counter() - self._tick
            self._tick = None


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
    check_inputs(model, data, cfg, checkpoint_dir, resume)
    run = prepare(model, data, cfg, checkpoint_dir, resume, seed)
    plan_steps_of(run, resumed=resume and run.start > 0)
    log = Log(run, shown=progress and run.ranks.is_main)
    saving = checkpoint_dir is not None
    for step in range(run.start, run.cfg.max_iters + 1):
        evaluating = step % run.cfg.eval_interval == 0 or step == run.cfg.max_iters
        stopping = step == run.cfg.max_iters or step == stop_after
        if evaluating or stopping:
            run.timer.pause()  # evaluations and saves are not training steps
        already = run.history.steps and run.history.steps[-1] == step  # resumed at an eval
        if evaluating and not already and evaluate(run, step, log) and saving:
            save_best(run, step, checkpoint_dir, tokenizer)
        if saving and step != run.start and (evaluating or stopping):
            save_state(run, step, checkpoint_dir, tokenizer)
        if stopping:
            run.history.stopped_by = "max_iters" if step == run.cfg.max_iters else "stop_after"
            break
        log.step(run.timer.step(take_step, run, learning_rate(step, run.cfg), run.batches))
    report(run, log)
    return run.history


def check_inputs(
    model: torch.nn.Module,
    data: dict[str, torch.Tensor],
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None,
    resume: bool,
) -> None:
    """Refuse what would fail later with a less helpful message."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig (e.g. preset('gpt')), got {type(cfg).__name__}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs the checkpoint_dir to resume from")
    if checkpoint_dir is not None and Path(checkpoint_dir).is_file():
        raise ValueError(f"checkpoint_dir {checkpoint_dir} is a file: give a folder")
    if not isinstance(data, dict) or set(data) != {"train", "val"}:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"data must be a dict with 'train' and 'val' token tensors, got {got}")
    for split, tokens in data.items():
        integers = isinstance(tokens, torch.Tensor) and tokens.dtype in (torch.long, torch.int)
        if not integers or tokens.dim() != 1:
            raise TypeError(
                f"data[{split!r}] must be a 1-D tensor of token ids (torch.long), e.g. "
                f"torch.tensor(tokenizer.encode(text)); got {_describe(tokens)}"
            )
    if checkpoint_dir is not None and not hasattr(getattr(model, "config", None), "to_dict"):
        raise TypeError(
            f"checkpoints store a GPT's config (model.config.to_dict()), and this "
            f"{type(model).__name__} has none: train it without checkpoint_dir, or save "
            f"its state_dict yourself"
        )


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dim()}-D {value.dtype} tensor"
    return type(value).__name__


def prepare(
    model: torch.nn.Module,
    data: dict[str, torch.Tensor],
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None,
    resume: bool,
    seed: int,
) -> Run:
    """Move the model to the device and build what the steps share; on ``resume`` put the run
    back as it was at its latest save."""
    ranks, device = distributed.current(), cfg.device
    model.to(device)
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
    model.train()
    block_size = getattr(model, "block_size", None) or cfg.block_size
    return Run(
        model, forward, data, cfg, optimizer, scaler, batches, history, start, ranks, block_size
    )


def take_step(run: Run, lr: float, batches: torch.Generator) -> torch.Tensor:
    """One optimizer step at learning rate ``lr`` on the next batch of ``batches``. Returns the
    loss, on the device."""
    cfg = run.cfg
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    micro_batches = [
        rank_batch(
            run.data["train"], run.block_size, cfg.batch_size, run.ranks, cfg.device, batches
        )
        for _ in range(cfg.grad_accum_steps)
    ]
    loss = accumulate_gradients(
        run.forward, micro_batches, cfg.device, cfg.autocast_dtype, run.scaler
    )
    optimizer_step(run.model, run.optimizer, run.scaler, cfg.grad_clip)
    return loss


def plan_steps_of(run: Run, resumed: bool) -> None:
    """Fix the step count before the loop: with a time budget, from the time a few throw-away
    steps take (rank 0's timing on every rank, so all ranks stop together). A resumed run keeps
    the plan made at its step 0."""
    cfg, history = run.cfg, run.history
    if resumed and history.seconds_per_step:
        run.cfg = replace(cfg, max_iters=history.max_iters)
    elif cfg.time_budget:
        first, per_step = time_throwaway_steps(run)
        history.first_step_seconds = first
        history.seconds_per_step = distributed.broadcast_from_main(per_step, cfg.device)
        run.cfg = replace(cfg, max_iters=plan_steps(cfg, history.seconds_per_step))
    history.max_iters = run.cfg.max_iters


def time_throwaway_steps(run: Run) -> tuple[float, float]:
    """(seconds of a first step, mean seconds of the next CALIBRATION_STEPS) on throw-away batches.

    The steps run at learning rate 0, so AdamW leaves every weight exactly as it was (a decay
    factor of 1, an update times 0); their moment estimates are then forgotten, and the
    GradScaler and random state put back, so the real run starts as if this never happened. The
    first step (compiling, warming caches) is timed apart."""
    scaler_state, random_state = run.scaler.state_dict(), rng_state(run.cfg.device)
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(1 + CALIBRATION_STEPS):
        tick = time.perf_counter()
        take_step(run, 0.0, gen)
        synchronize(run.cfg.device)
        times.append(time.perf_counter() - tick)
    run.optimizer.state.clear()  # AdamW starts its moments afresh at the first real step
    if scaler_state:
        run.scaler.load_state_dict(scaler_state)
    set_rng_state(random_state, run.cfg.device)
    return times[0], sum(times[1:]) / CALIBRATION_STEPS


def plan_steps(cfg: TrainConfig, seconds_per_step: float) -> int:
    """How many steps of ``seconds_per_step`` fit in the time budget, at most ``max_iters``.
    The budget is for training steps; evaluations and checkpoint writes come on top."""
    return max(1, min(cfg.max_iters, int(cfg.time_budget / max(seconds_per_step, 1e-9))))


def evaluate(run: Run, step: int, log: Log) -> bool:
    """Evaluate both splits, append to the history, log; True when the validation loss is the
    best so far. Every rank evaluates the same batches (cheap), which keeps the ranks in step."""
    cfg, history = run.cfg, run.history
    losses = estimate_loss(
        run.model,
        run.data,
        run.block_size,
        cfg.eval_batch_size,
        cfg.eval_iters,
        cfg.device,
        cfg.autocast_dtype,
    )
    improved = losses["val"] < history.best_val_loss
    history.steps.append(step)
    history.train_loss.append(losses["train"])
    history.val_loss.append(losses["val"])
    history.lr.append(learning_rate(step, cfg))
    history.elapsed.append(log.elapsed())
    log.evaluation(step, losses)
    return improved


def save_best(run: Run, step: int, directory: str | Path, tokenizer: CharTokenizer | None) -> None:
    """Write the best weights so far (rank 0): what chapter 07 loads and samples from."""
    if run.ranks.is_main:
        save_checkpoint(
            directory,
            run.model,
            tokenizer=tokenizer,
            step=step,
            history=run.history,
            train_config=run.cfg,
        )


def save_state(run: Run, step: int, directory: str | Path, tokenizer: CharTokenizer | None) -> None:
    """Write ``last/``: the weights and everything else a resumed run needs (every rank's random
    state is gathered; rank 0 writes)."""
    state = {
        "step": step,
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict(),
        "batches": run.batches.get_state(),
        "rng": distributed.gather_objects(rng_state(run.cfg.device)),
    }
    if run.ranks.is_main:
        save_training_state(
            directory,
            run.model,
            state,
            tokenizer=tokenizer,
            history=run.history,
            train_config=run.cfg,
        )


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


class Log:
    """What the run shows: a live bar in a terminal or notebook, one line per evaluation in a log
    file, nothing on ranks other than 0."""

    def __init__(self, run: Run, shown: bool):
        self.run, self.shown = run, shown
        self.live = shown and (sys.stderr.isatty() or in_notebook())  # a log file gets lines
        history, cfg = run.history, run.cfg
        if shown and cfg.time_budget and history.seconds_per_step and not run.start:
            print(
                f"time budget {cfg.time_budget:g} s at {history.seconds_per_step * 1e3:.1f} ms "
                f"per step (first step {history.first_step_seconds:.1f} s, not counted): "
                f"{cfg.max_iters} steps"
            )
        self.bar = progress_bar(
            total=cfg.max_iters, desc=cfg.name, initial=run.start, disable=not self.live
        )
        self.clock = time.perf_counter() - (history.elapsed[-1] if history.elapsed else 0.0)
        self.loss_sum, self.loss_steps = None, 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.clock

    def evaluation(self, step: int, losses: dict[str, float]) -> None:
        self.bar.set_postfix(train=f"{losses['train']:.3f}", val=f"{losses['val']:.3f}")
        if self.shown and not self.live:
            history = self.run.history
            print(
                f"step {step}/{self.run.cfg.max_iters}: train {losses['train']:.4f}, "
                f"val {losses['val']:.4f}, lr {history.lr[-1]:.2e}, {history.elapsed[-1]:.0f} s",
                flush=True,
            )

    def step(self, loss: torch.Tensor) -> None:
        """After a step: advance the bar, and every LOG_INTERVAL steps show their mean loss."""
        self.bar.update(1)
        if not self.live:
            return
        self.loss_sum = loss if self.loss_sum is None else self.loss_sum + loss
        self.loss_steps += 1
        if self.loss_steps == LOG_INTERVAL:
            mean = (self.loss_sum / LOG_INTERVAL).item()
            self.bar.set_postfix(loss=f"{mean:.3f}", val=f"{self.run.history.val_loss[-1]:.3f}")
            self.loss_sum, self.loss_steps = None, 0

    def close(self) -> None:
        self.bar.close()


def report(run: Run, log: Log) -> None:
    """Close the bar and put the step timings, the precision path and the MFU into the history."""
    timer, history, cfg = run.timer, run.history, run.cfg
    timer.pause()
    log.close()
    history.first_step_seconds = history.first_step_seconds or timer.first_step_seconds or 0.0
    history.precision = precision_name(cfg.autocast_dtype)
    if timer.steps:
        history.tokens_per_second = run.tokens_per_step * timer.steps / timer.seconds
        peak, _ = peak_flops(cfg.device, cfg.autocast_dtype)  # one device's peak: per rank
        per_rank = history.tokens_per_second / run.ranks.world_size
        history.mfu = mfu(per_rank, model_flops_per_token(run.model, run.block_size), peak)


if __name__ == "__main__":  # python -m helpers.train, torchrun ... -m helpers.train
    from helpers.train_cli import main

    main()
