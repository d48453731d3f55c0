"""The GPU check (``make gpu-check``): on one CUDA GPU, in about 8 minutes on an A100-class one.

1. Prints the environment report (precision and compile choice, with the reason).
2. Trains chapter 07's GPU preset (nanoGPT's Shakespeare-char shape) for ``--steps`` steps
   (default 2,000 of the preset's 5,000) and prints the validation loss, tokens/s, MFU, peak
   GPU memory and the precision path taken. nanoGPT's published full run of this shape reached
   1.4697; 2,000 steps land above that.
3. Runs chapters 07 and 10 (with their companions) in full mode through ``tools/verify.py
   --write-bands``, which writes ``helpers/reference/figures_cuda.json`` from that run.

Without a GPU it stops at once and says so. ``--skip-chapters`` does steps 1 and 2 only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def train_preset(steps: int) -> None:
    from helpers.data import load_splits
    from helpers.environment import environment_report
    from helpers.mfu import describe_mfu
    from helpers.model import GPT
    from helpers.precision import choose_precision
    from helpers.presets import preset
    from helpers.settings import seed_everything
    from helpers.train import train

    environment_report(chapter=7)
    shakespeare = load_splits()
    cfg = preset("gpt", "cuda")
    cfg = replace(
        cfg,
        max_iters=steps,
        eval_interval=min(cfg.eval_interval, steps),
        model=replace(cfg.model, vocab_size=shakespeare.tokenizer.vocab_size),
    )
    seed_everything(1337)
    model = GPT(cfg.model)
    torch.cuda.reset_peak_memory_stats()
    history = train(model, shakespeare.as_dict(), cfg, progress=False)
    print(
        f"\nchapter 07's GPU preset, {steps} steps: val loss {history.val_loss[-1]:.4f} "
        f"(best {history.best_val_loss:.4f}; nanoGPT's full 5,000-step run: 1.4697)\n"
        f"{history.tokens_per_second:,.0f} tokens/s, {describe_mfu(history.mfu)}, peak memory "
        f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, first step "
        f"{history.first_step_seconds:.1f} s (compiling included)\n"
        f"precision path: {history.precision}; {choose_precision('cuda').describe()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    parser.add_argument("--skip-chapters", action="store_true", help="train only")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "make gpu-check needs a CUDA GPU, and torch sees none here "
            f"(torch {torch.__version__}, torch.cuda.is_available() is False). Run it on a "
            "machine with an NVIDIA GPU and a CUDA build of torch, e.g. Colab with a GPU runtime.",
            file=sys.stderr,
        )
        return 2
    train_preset(args.steps)
    if args.skip_chapters:
        return 0
    verify = [sys.executable, str(ROOT / "tools" / "verify.py"), "07", "10", "--write-bands"]
    return subprocess.run(verify, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
