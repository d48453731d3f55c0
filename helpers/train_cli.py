"""The command line: ``python -m helpers.train`` (or ``torchrun ... -m helpers.train``) trains
chapter 07's GPT on tiny Shakespeare and writes a checkpoint. ``--help`` lists the options."""

from __future__ import annotations

import argparse
from dataclasses import replace

from helpers import distributed
from helpers.checkpoint import has_training_state
from helpers.data import load_splits
from helpers.history import History
from helpers.mfu import describe_mfu
from helpers.model import GPT
from helpers.precision import choose_precision
from helpers.presets import preset
from helpers.settings import pick_device, seed_everything
from helpers.train import train


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train the chapter-07 GPT on tiny Shakespeare and write a checkpoint. "
        "Runs as one process, or as several under `torchrun --nproc_per_node N`.",
    )
    p.add_argument(
        "--preset",
        default="gpt",
        choices=["attention", "gpt"],
        help="training preset from helpers.presets.preset (default: gpt)",
    )
    p.add_argument("--max-iters", type=int, help="override the preset's number of steps")
    p.add_argument(
        "--time-budget",
        type=float,
        help="seconds of training steps; fixes the step count (0: no budget)",
    )
    p.add_argument("--eval-interval", type=int, help="steps between evaluations")
    p.add_argument("--batch-size", type=int, help="override the batch size (per process)")
    p.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    p.add_argument("--dropout", type=float, help="override the model's dropout")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="default: the best one found")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--resume", action="store_true", help="continue from the latest state in --out")
    p.add_argument(
        "--stop-after",
        type=int,
        help="stop at this step as a crash would, leaving a state to --resume",
    )
    p.add_argument("--seed", type=int, default=1337)
    return p


def main(argv: list[str] | None = None) -> History:
    p = parser()
    args = p.parse_args(argv)
    least = {"max_iters": 0, "stop_after": 0, "eval_interval": 1, "batch_size": 1, "grad_accum": 1}
    for flag, minimum in least.items():
        value = getattr(args, flag)
        if value is not None and value < minimum:
            p.error(f"--{flag.replace('_', '-')} must be >= {minimum}, got {value}")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.time_budget is not None and args.time_budget < 0:
        p.error(f"--time-budget must be >= 0 seconds (0: no budget), got {args.time_budget}")
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
    if args.resume and not has_training_state(args.out):
        say(f"nothing to resume in {args.out} (no last/ state yet): starting at step 0")
    seed_everything(args.seed)  # the same initial weights on every rank
    shakespeare = load_splits()
    shape = {"vocab_size": shakespeare.tokenizer.vocab_size}
    if args.dropout is not None:
        shape["dropout"] = args.dropout
    cfg = replace(cfg, model=replace(cfg.model, **shape))
    model = GPT(cfg.model)
    say(
        f"{model.num_parameters() / 1e6:.2f}M parameters, {ranks.world_size} process(es) x batch "
        f"{cfg.batch_size}, preset:\n{cfg.describe()}\nprecision: "
        f"{choose_precision(cfg.device).describe()}"
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
        f"({history.tokens_per_second:,.0f} tokens/s in training steps, "
        f"{describe_mfu(history.mfu)}, {history.precision}, first step "
        f"{history.first_step_seconds:.2f} s, stopped by {history.stopped_by}); "
        f"checkpoint in {args.out}"
    )
    return history


if __name__ == "__main__":
    main()
