"""Training a language model on a token sequence, and checkpoints that survive a crash.

``train(model, {"train": ..., "val": ...}, preset)`` runs AdamW with warmup + cosine learning
rate, gradient clipping and a live progress bar, evaluates every ``eval_interval`` steps, stops
at ``max_iters`` or when the time budget runs out, and returns a ``History``. With
``checkpoint_dir`` it keeps the best model so far (by validation loss) on disk.

A checkpoint folder holds ``model.safetensors`` (weights, with the config, tokenizer and step in
its metadata, so the one file is always self-consistent), ``config.json`` (the same facts, for
people to read) and ``optimizer.pt`` (for resuming). Each file is written atomically.

Run ``python -m helpers.train --help`` for the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from helpers import distributed
from helpers.atomic_io import atomic_path, atomic_write_text
from helpers.data import CharTokenizer, get_batch, load_tiny_shakespeare, train_val_split
from helpers.model import GPT, GPTConfig
from helpers.settings import Preset, pick_device, preset as get_preset, seed_everything

EVAL_SEED = 1234  # every evaluation sees the same batches, so losses compare across steps and runs


@dataclass
class History:
    """What happened during training: one entry per evaluation."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)  # seconds since training started
    tokens_per_second: float = 0.0  # all ranks together
    first_step_seconds: float = 0.0  # includes torch.compile's compile time when it is on
    stopped_by: str = "max_iters"  # or "time_budget"

    @property
    def best_val_loss(self) -> float:
        return min(self.val_loss) if self.val_loss else math.inf

    def to_dict(self) -> dict:
        return asdict(self)


def autocast_context(device: str, dtype_name: str | None):
    """Mixed precision when asked for: matmuls in bf16/fp16, reductions kept in fp32."""
    if not dtype_name:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype_name))


@torch.no_grad()
def estimate_loss(model, data: dict[str, torch.Tensor], block_size: int, batch_size: int,
                  eval_iters: int, device: str = "cpu", autocast_dtype: str | None = None):
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


def learning_rate(step: int, cfg: Preset, elapsed: float = 0.0) -> float:
    """Linear warmup to ``learning_rate``, then a cosine decay to ``min_lr`` at the end of
    training: at ``max_iters``, or when the time budget runs out if that comes first (so a run cut
    short by the clock still ends on a small learning rate, where the loss settles lowest)."""
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / cfg.warmup_iters
    progress = (step - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters)
    if cfg.time_budget:
        progress = max(progress, elapsed / cfg.time_budget)
    progress = min(1.0, progress)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def make_optimizer(model, cfg: Preset) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: decaying biases, LayerNorm gains or (for the
    bigram) nothing else buys nothing and can hurt."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.99),
                             fused=cfg.fused_adamw or None)  # None: PyTorch picks its default


def accumulate_gradients(forward, micro_batches, device: str, autocast_dtype=None, scaler=None) -> float:
    """Backpropagate the mean loss over ``micro_batches`` [(x, y), ...]: each micro-batch's loss is
    divided by their number, so the summed gradients equal those of one batch k times larger.
    Under DDP only the last backward averages gradients across ranks (``no_sync`` on the others).
    Returns the mean loss."""
    k, total = len(micro_batches), 0.0
    for i, (x, y) in enumerate(micro_batches):
        last = i == k - 1
        sync = contextlib.nullcontext() if last or not hasattr(forward, "no_sync") else forward.no_sync()
        with sync:
            with autocast_context(device, autocast_dtype):
                _, loss = forward(x, y)
            loss = loss / k
            (scaler.scale(loss) if scaler is not None else loss).backward()
        total += loss.item()
    return total


def optimizer_step(model, optimizer, scaler, grad_clip: float) -> None:
    """Clip the gradient norm, step, and clear the gradients. With fp16 the GradScaler first
    unscales the gradients (so clipping sees true values) and skips steps whose gradients
    overflowed, lowering the loss scale."""
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def train(model, data: dict[str, torch.Tensor], cfg: Preset, *, checkpoint_dir=None,
          tokenizer: CharTokenizer | None = None, resume: bool = False, progress: bool = True,
          seed: int = 1337) -> History:
    """Train ``model`` on ``data["train"]``, evaluating on ``data["val"]``; see the module docstring.
    Under torchrun (``helpers.distributed.setup`` called first) every rank runs this function on
    its own batches; only rank 0 shows progress and writes checkpoints."""
    if set(data) != {"train", "val"}:
        raise ValueError(f"data must be a dict with 'train' and 'val' token tensors, got {sorted(data)}")
    ranks, device = distributed.current(), cfg.device
    model.to(device)
    block_size = cfg.block_size if getattr(model, "block_size", None) is None else model.block_size
    optimizer = make_optimizer(model, cfg)
    history, start = History(), 0
    if resume and checkpoint_dir and (Path(checkpoint_dir) / "model.safetensors").exists():
        start, history = resume_from(checkpoint_dir, model, optimizer)  # already evaluated there
    # each rank draws its own batches; a resumed run does not repeat the batches it already saw
    gen = torch.Generator().manual_seed(seed + 1000 * ranks.rank + start)
    forward = DistributedDataParallel(model) if ranks.world_size > 1 else model
    if cfg.compile:
        forward = torch.compile(forward)
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=cfg.autocast_dtype == "float16")
    bar = tqdm(total=cfg.max_iters, initial=start, disable=not (progress and ranks.is_main),
               desc=cfg.name, unit="it")
    # a resumed run continues the clock where it stopped, so a time-based schedule carries on too
    clock = time.perf_counter() - (history.elapsed[-1] if history.elapsed else 0.0)
    run_start, tokens = time.perf_counter(), 0
    model.train()
    for step in range(start, cfg.max_iters + 1):
        elapsed = time.perf_counter() - clock
        out_of_time = distributed.any_rank(cfg.time_budget is not None and elapsed > cfg.time_budget)
        due = step % cfg.eval_interval == 0 or step == cfg.max_iters or out_of_time
        if due and not (history.steps and history.steps[-1] == step):
            # every rank evaluates the same batches (cheap), which keeps the ranks in step
            losses = estimate_loss(model, data, block_size, cfg.batch_size, cfg.eval_iters,
                                   device, cfg.autocast_dtype)
            improved = losses["val"] < history.best_val_loss
            for key, value in (("steps", step), ("train_loss", losses["train"]),
                               ("val_loss", losses["val"]), ("lr", learning_rate(step, cfg, elapsed)),
                               ("elapsed", time.perf_counter() - clock)):
                getattr(history, key).append(value)
            bar.set_postfix(train=f"{losses['train']:.3f}", val=f"{losses['val']:.3f}")
            if checkpoint_dir and improved and ranks.is_main:
                save_checkpoint(checkpoint_dir, model, tokenizer=tokenizer, step=step,
                                history=history, optimizer=optimizer, preset=cfg)
        if step == cfg.max_iters or out_of_time:
            history.stopped_by = "time_budget" if out_of_time else "max_iters"
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg, elapsed)
        micro_batches = [get_batch(data["train"], block_size, cfg.batch_size, device, generator=gen)
                         for _ in range(cfg.grad_accum_steps)]
        loss = accumulate_gradients(forward, micro_batches, device, cfg.autocast_dtype, scaler)
        optimizer_step(model, optimizer, scaler, cfg.grad_clip)
        if step == start:  # includes torch.compile's compilation when it is on
            history.first_step_seconds = time.perf_counter() - clock - elapsed
        tokens += cfg.grad_accum_steps * cfg.batch_size * block_size
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{history.val_loss[-1]:.3f}")
    bar.close()
    history.tokens_per_second = tokens * ranks.world_size / max(1e-9, time.perf_counter() - run_start)
    return history


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


def save_checkpoint(directory, model: GPT, *, tokenizer=None, step: int = 0, history=None,
                    optimizer=None, preset: Preset | None = None) -> Path:
    """Write the checkpoint files into ``directory`` (see the module docstring) and return it."""
    directory = Path(directory)
    meta = {
        "model_config": model.config.to_dict(),
        "tokenizer": tokenizer.to_json() if tokenizer is not None else None,
        "step": step,
        "best_val_loss": history.best_val_loss if history else None,
        "preset": asdict(preset) if preset else None,
        "history": history.to_dict() if history else None,
    }
    if optimizer is not None:  # first, so weights never point at a missing optimizer state
        with atomic_path(directory / "optimizer.pt") as tmp:
            torch.save({"step": step, "optimizer": optimizer.state_dict()}, tmp)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()
               if k != "lm_head.weight"}  # tied to wte: safetensors stores shared memory once
    with atomic_path(directory / "model.safetensors") as tmp:
        save_file(weights, tmp, metadata={"course_checkpoint": json.dumps(meta)})
    atomic_write_text(directory / "config.json", json.dumps(meta, indent=2, default=str))
    return directory


def read_checkpoint_meta(directory) -> dict:
    path = Path(directory) / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint in {directory}: {path.name} is missing. Train one "
                                f"with `python -m helpers.train --out {directory}`.")
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        meta = (f.metadata() or {}).get("course_checkpoint")
    if meta is None:
        raise ValueError(f"{path} was not written by helpers.train.save_checkpoint")
    return json.loads(meta)


def load_checkpoint(directory, model: GPT | None = None, device: str = "cpu"):
    """``(model, tokenizer)`` from a checkpoint folder. Given a ``model``, the weights load into
    it, and a config that differs from the model's is an error that names the fields."""
    meta = read_checkpoint_meta(directory)
    config = GPTConfig(**meta["model_config"])
    if model is None:
        model = GPT(config)
    elif model.config != config:
        diff = {k: (v, getattr(model.config, k)) for k, v in config.to_dict().items()
                if getattr(model.config, k) != v}
        raise ValueError(f"the checkpoint in {directory} does not fit this model: "
                         + ", ".join(f"{k} is {a} there but {b} here" for k, (a, b) in diff.items()))
    state = load_file(Path(directory) / "model.safetensors")
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state)
    tokenizer = CharTokenizer.from_json(meta["tokenizer"]) if meta["tokenizer"] else None
    return model.to(device), tokenizer


def resume_from(directory, model: GPT, optimizer) -> tuple[int, History]:
    """Load weights and optimizer state; return the step to continue from and the history so far."""
    meta = read_checkpoint_meta(directory)
    load_checkpoint(directory, model, device=next(model.parameters()).device)
    opt_path = Path(directory) / "optimizer.pt"
    if opt_path.exists():
        saved = torch.load(opt_path, map_location="cpu", weights_only=True)
        if saved["step"] == meta["step"]:  # both files from the same save
            optimizer.load_state_dict(saved["optimizer"])
    history = History(**meta["history"]) if meta.get("history") else History()
    return meta["step"], history


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def gpt_config_for(cfg: Preset, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                     n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout)


def main(argv: list[str] | None = None) -> History:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train the chapter-07 GPT on tiny Shakespeare and write a checkpoint. "
                    "Runs as one process, or as several under `torchrun --nproc_per_node N`.")
    parser.add_argument("--preset", default="gpt", help="preset name from helpers.settings (default: gpt)")
    parser.add_argument("--max-iters", type=int, help="override the preset's number of steps")
    parser.add_argument("--time-budget", type=float,
                        help="stop after this many seconds of training (0: no limit)")
    parser.add_argument("--eval-interval", type=int, help="override the preset's steps between evaluations")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size (per process)")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    parser.add_argument("--device", choices=["cpu", "cuda", "mps"], help="default: the best one found")
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)

    cfg = get_preset(args.preset, pick_device(args.device))
    cfg = replace(cfg, device=distributed.setup(cfg.device))
    if args.max_iters is not None:
        cfg = replace(cfg, max_iters=args.max_iters)
    if args.time_budget is not None:
        cfg = replace(cfg, time_budget=args.time_budget or None)
    if args.eval_interval is not None:
        cfg = replace(cfg, eval_interval=args.eval_interval)
    if args.batch_size is not None:
        cfg = replace(cfg, batch_size=args.batch_size)
    if args.grad_accum is not None:
        cfg = replace(cfg, grad_accum_steps=args.grad_accum)
    ranks = distributed.current()
    say = print if ranks.is_main else (lambda *a, **k: None)
    seed_everything(args.seed)  # the same initial weights on every rank
    text = load_tiny_shakespeare()
    tokenizer = CharTokenizer.from_text(text)
    train_data, val_data = train_val_split(torch.tensor(tokenizer.encode(text), dtype=torch.long))
    model = GPT(gpt_config_for(cfg, tokenizer.vocab_size), fused_attention=cfg.fused_attention)
    say(f"{model.num_parameters() / 1e6:.2f}M parameters, {ranks.world_size} process(es), preset:\n"
        f"{cfg.describe()}")
    try:
        history = train(model, {"train": train_data, "val": val_data}, cfg, checkpoint_dir=args.out,
                        tokenizer=tokenizer, resume=args.resume, seed=args.seed)
    finally:
        distributed.teardown()
    say(f"best val loss {history.best_val_loss:.4f} after {history.elapsed[-1]:.1f}s "
        f"({history.tokens_per_second:,.0f} tokens/s, stopped by {history.stopped_by}); "
        f"checkpoint in {args.out}")
    return history


def reference_curve(cfg: Preset) -> dict | None:
    """The validation curve the course's own run of this preset reached on the reference machine
    (``helpers/reference/<preset>_<device>.json``, the history of the run stored in chapter 07), or None
    for a preset nobody has measured yet. Plot it behind a run to see whether it is on track."""
    path = Path(__file__).parent / "reference" / f"{cfg.name}_{cfg.device}.json"
    return json.loads(path.read_text()) if path.exists() and not cfg.smoke else None


if __name__ == "__main__":
    main()
