"""Chapter 10's table: the same model trained for a fixed number of steps with each speed-up
switched on in turn, measured in one run. Each row runs in a fresh process (so compile caches
and peak memory do not leak between rows) and prints tokens/s, peak memory and the ratio to the
first row.

    python bench/scaling.py [--device cpu|cuda] [--steps 40]

On a CPU the model is chapter 07's CPU preset; the last row trains it with DDP on 2 processes
(gloo), each with half the threads. On a GPU it is the GPU preset (6x6x384, context 256).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from dataclasses import replace

import torch

# (label, preset overrides); each row adds one switch to the row before it
ROWS = [
    ("explicit attention, fp32", dict(fused_attention=False)),
    ("+ fused attention (SDPA)", dict()),
    ("+ bf16 autocast", dict(autocast_dtype="bfloat16")),
    ("+ torch.compile", dict(autocast_dtype="bfloat16", compile=True)),
    ("+ fused AdamW", dict(autocast_dtype="bfloat16", compile=True, fused_adamw=True)),
]
BASE = dict(fused_attention=True, autocast_dtype=None, compile=False, fused_adamw=False)


def run_row(device: str, steps: int, overrides: dict) -> dict:
    """Train for ``steps`` steps in this process and report throughput and memory."""
    from helpers.data import CharTokenizer, load_tiny_shakespeare, train_val_split
    from helpers.model import GPT
    from helpers.settings import preset
    from helpers.train import gpt_config_for, train

    cfg = replace(preset("gpt", device), **{**BASE, **overrides}, max_iters=steps,
                  eval_interval=steps, eval_iters=1, time_budget=None, warmup_iters=0)
    text = load_tiny_shakespeare()
    tok = CharTokenizer.from_text(text)
    train_data, val_data = train_val_split(torch.tensor(tok.encode(text), dtype=torch.long))
    torch.manual_seed(0)
    model = GPT(gpt_config_for(cfg, tok.vocab_size), fused_attention=cfg.fused_attention)
    history = train(model, {"train": train_data, "val": val_data}, cfg, progress=False)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"tokens_per_second": history.tokens_per_second, "peak_bytes": peak,
            "first_step_seconds": history.first_step_seconds, "final_loss": history.train_loss[-1]}


def in_subprocess(device: str, steps: int, overrides: dict, nproc: int = 1) -> dict:
    args = ["--device", device, "--steps", str(steps), "--row", json.dumps(overrides)]
    if nproc == 1:
        cmd = [sys.executable, __file__, *args]
        env = dict(os.environ)
    else:  # DDP: split the cores between the processes
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", __file__, *args]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // nproc))}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--no-compile", action="store_true",
                        help="leave out the torch.compile rows (compiling takes a minute on 2 cores)")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row and print JSON
    args = parser.parse_args()
    if args.row is not None:
        from helpers import distributed
        distributed.setup(args.device)
        result = run_row(args.device, args.steps, json.loads(args.row))
        if distributed.current().is_main:
            print(json.dumps(result))
        distributed.teardown()
        return

    from helpers.settings import hardware, preset
    cfg = preset("gpt", args.device)
    print(f"{hardware()}; preset {cfg.n_layer}x{cfg.n_head}x{cfg.n_embd}, context {cfg.block_size}, "
          f"batch {cfg.batch_size}; {args.steps} steps per row\n")
    print(f"{'':<34}{'tokens/s':>12}{'ratio':>8}{'peak memory':>14}{'first step':>12}")
    rows = [(label, overrides, 1) for label, overrides in ROWS
            if not (args.no_compile and overrides.get("compile"))]
    if args.device == "cpu":
        rows.append(("DDP, 2 processes (gloo), fused fp32", dict(), 2))
    first = None
    for label, overrides, nproc in rows:
        r = in_subprocess(args.device, args.steps, overrides, nproc)
        first = first or r["tokens_per_second"]
        print(f"{label:<34}{r['tokens_per_second']:>12,.0f}{r['tokens_per_second'] / first:>7.2f}x"
              f"{r['peak_bytes'] / 2**20:>11,.0f} MiB{r['first_step_seconds']:>11.1f}s", flush=True)


if __name__ == "__main__":
    main()
