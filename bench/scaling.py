"""Chapter 10's table: the same model trained for a fixed number of steps with one speed-up
switched on per row, measured in one run. Each row runs in a fresh process (so compile caches
and peak memory do not leak between rows) and prints tokens/s of the training steps alone (no
evaluation, no first step; the GPU synchronised before each clock read) with its model FLOPs
utilisation (``helpers.mfu``: a datasheet peak on a GPU, a matmul probe on a CPU), peak
memory, the ratio to the first row and the time of the first step (which includes compiling).
Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU; on a CPU it is the whole process's
peak resident set (Python, torch and the data included), so read it as an upper bound, not the
model's share.

Each row adds its switch to the best configuration so far, and keeps it only if it was faster:
on hardware where a switch hurts (bf16 on a CPU without bf16 instructions) the later rows are
not measured with that handicap.

    python bench/scaling.py [--device cpu|cuda] [--steps 40] [--no-compile] [--json PATH]

``--json PATH`` also writes the rows (label, settings, tokens/s, ratio, steady seconds per step,
peak memory, first-step seconds, kept) and the hardware, for ``helpers.speedups.conclusions``.

On a CPU the model is chapter 07's CPU preset, and a last row trains the best configuration with
DDP on 2 processes (gloo), each with half the threads. On a GPU it is the GPU preset (6x6x384,
context 256).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import torch

# the first row is the baseline; each later row is one switch tried on top of those kept so far
BASELINE = (
    "explicit attention, fp32",
    dict(fused_attention=False, autocast_dtype=None, compile=False, fused_adamw=False),
)
MODEL_SWITCHES = {"fused_attention"}  # fields of the GPTConfig; the rest are TrainConfig's
SWITCHES = [
    ("+ fused attention (SDPA)", dict(fused_attention=True)),
    ("+ bf16 autocast", dict(autocast_dtype="bfloat16")),
    ("+ torch.compile", dict(compile=True)),
    ("+ fused AdamW", dict(fused_adamw=True)),
]


def run_row(device: str, steps: int, settings: dict) -> dict:
    """Train for ``steps`` steps in this process and report throughput and memory."""
    from helpers.data import load_splits
    from helpers.model import GPT
    from helpers.train import preset, train

    cfg = preset("gpt", device)
    shape = {k: v for k, v in settings.items() if k in MODEL_SWITCHES}
    knobs = {k: v for k, v in settings.items() if k not in MODEL_SWITCHES}
    shakespeare = load_splits()
    cfg = replace(
        cfg,
        **knobs,
        model=replace(cfg.model, vocab_size=shakespeare.tokenizer.vocab_size, **shape),
        max_iters=steps,
        eval_interval=steps,
        eval_iters=1,
        time_budget=None,
        warmup_iters=0,
    )
    torch.manual_seed(0)
    model = GPT(cfg.model)
    # tokens/s counts the training steps only: not the evaluations at step 0 and at the end, not
    # the first step (compilation, allocator warm-up), which is reported apart
    history = train(model, shakespeare.as_dict(), cfg, progress=False)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:  # the resource module is POSIX only: no peak RSS on Windows
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except ImportError:
            peak = 0
    return {
        "tokens_per_second": history.tokens_per_second,
        "mfu": history.mfu,
        "peak_bytes": peak,
        "first_step_seconds": history.first_step_seconds,
        "final_loss": history.train_loss[-1],
    }


def in_subprocess(device: str, steps: int, settings: dict, nproc: int = 1) -> dict:
    args = ["--device", device, "--steps", str(steps), "--row", json.dumps(settings)]
    if nproc == 1:
        cmd = [sys.executable, __file__, *args]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    else:  # DDP: torchrun, the threads split between the processes
        from helpers.distributed import launch

        out = launch(nproc, __file__, *args).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="leave out the torch.compile row (compiling takes a minute on 2 cores)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the measured rows and the hardware to this JSON file",
    )
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row and print JSON
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step is timed apart from the rest")
    if args.row is not None:
        from helpers import distributed

        distributed.setup(args.device)
        result = run_row(args.device, args.steps, json.loads(args.row))
        if distributed.current().is_main:
            print(json.dumps(result))
        distributed.teardown()
        return

    from helpers.atomic_io import atomic_write_text
    from helpers.settings import hardware
    from helpers.speedups import cpu_features, table_header, table_row
    from helpers.train import preset

    cfg = preset("gpt", args.device)
    shape = cfg.model
    tokens_per_step = cfg.grad_accum_steps * cfg.batch_size * shape.block_size  # one process
    rows = []
    print(
        f"{hardware()}; preset {shape.n_layer}x{shape.n_head}x{shape.n_embd}, context "
        f"{shape.block_size}, batch {cfg.batch_size}; {args.steps} steps per row\n"
    )
    print(table_header(args.device))

    def show(label, result, settings, switch=None, kept=None, processes=1):
        """Print one line of the table and keep the row for --json."""
        row = {
            "label": label,
            "switch": switch,
            "settings": settings,
            "processes": processes,
            **result,
            "ratio": result["tokens_per_second"] / first,
            "kept": kept,
            "seconds_per_step": tokens_per_step * processes / result["tokens_per_second"],
        }
        print(table_row(row), flush=True)
        rows.append(row)

    label, kept = BASELINE
    best = in_subprocess(args.device, args.steps, kept)
    first = best["tokens_per_second"]
    show(label, best, kept, kept=True)
    for label, switch in SWITCHES:
        if args.no_compile and switch.get("compile"):
            continue
        trial = in_subprocess(args.device, args.steps, {**kept, **switch})
        faster = trial["tokens_per_second"] > best["tokens_per_second"]
        show(label, trial, {**kept, **switch}, switch=next(iter(switch)), kept=faster)
        if faster:
            kept, best = {**kept, **switch}, trial
    if args.device == "cpu":  # not a switch on top: compared with the best single process
        ddp = in_subprocess(args.device, args.steps, kept, nproc=2)
        show("DDP, 2 processes (gloo), best above", ddp, kept, switch="ddp", processes=2)
    if args.json:
        table = {
            "hardware": hardware(),
            "features": cpu_features().describe(),
            "device": args.device,
            "steps": args.steps,
            "tokens_per_step": tokens_per_step,
            "preset": {
                "n_layer": shape.n_layer,
                "n_head": shape.n_head,
                "n_embd": shape.n_embd,
                "block_size": shape.block_size,
                "batch_size": cfg.batch_size,
            },
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
