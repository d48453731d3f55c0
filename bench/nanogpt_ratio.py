"""Training throughput of the course's GPT against nanoGPT's, side by side in one run, at equal
maths.

nanoGPT is not part of this repository: clone it anywhere and pass its ``model.py``::

    git clone https://github.com/karpathy/nanoGPT /tmp/nanoGPT
    python bench/nanogpt_ratio.py --nanogpt /tmp/nanoGPT/model.py [--steps 30] [--rounds 5]

Both models get nanoGPT's CPU example shape (4 layers, 4 heads, 128 wide, context 64, batch 12,
no dropout, biases), and the same weights: nanoGPT's are loaded into ours, and the script checks
that the logits agree before it times anything. Rows: nanoGPT (exact erf GELU), ours with the
erf GELU (equal maths), ours with GPT-2's tanh GELU (the course's default, needed to equal
Hugging Face's GPT-2). Each row is timed in every round, in turn, so a slow spell of the machine
hits all rows alike; the median round counts. A step is forward, backward and AdamW on one fixed
batch, as in ``bench/train_speed.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from dataclasses import replace

import torch

from helpers.data import get_batch, load_splits
from helpers.mfu import describe_mfu, mfu, model_flops_per_token, peak_flops
from helpers.model import GPT, GPTConfig
from helpers.settings import hardware

SHAPE = dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=True)
BATCH = 12


def nanogpt_model(path: str, vocab_size: int) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.GPT(module.GPTConfig(vocab_size=vocab_size, **SHAPE))


def timed_steps(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Seconds for ``steps`` training steps (after the optimizer's state exists)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", required=True, help="path to nanoGPT's model.py")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shakespeare = load_splits()
    vocab = shakespeare.tokenizer.vocab_size
    theirs = nanogpt_model(args.nanogpt, vocab)
    config = GPTConfig(vocab_size=vocab, **SHAPE)
    rows = {
        "nanoGPT (erf GELU)": theirs,
        "ours, erf GELU (equal maths)": GPT(replace(config, gelu="erf")),
        "ours, tanh GELU (GPT-2's)": GPT(config),
    }
    for model in list(rows.values())[1:]:
        model.load_state_dict(theirs.state_dict())
    x, y = get_batch(
        shakespeare.train, SHAPE["block_size"], BATCH, generator=torch.Generator().manual_seed(0)
    )
    gap = (rows["ours, erf GELU (equal maths)"](x, y)[0] - theirs(x, y)[0]).abs().max().item()
    print(f"{hardware()}, {torch.get_num_threads()} threads")
    print(
        f"shape 4x4x128, context 64, batch {BATCH}; {args.steps} steps x {args.rounds} rounds; "
        f"largest logit difference, ours (erf) vs nanoGPT, same weights: {gap:.1e}\n"
    )
    times = {label: [] for label in rows}
    for _ in range(args.rounds):
        for label, model in rows.items():
            times[label].append(timed_steps(model, x, y, args.steps))
    peak, source = peak_flops("cpu")
    flops = model_flops_per_token(rows["ours, tanh GELU (GPT-2's)"], SHAPE["block_size"])
    base = None
    for label, seconds in times.items():
        rate = args.steps * x.numel() / statistics.median(seconds)
        base = base or rate
        print(
            f"{label:<32}{rate:>10,.0f} tokens/s  {describe_mfu(mfu(rate, flops, peak)):>8}"
            f"  {rate / base:5.2f}x nanoGPT"
        )
    print(f"(median of {args.rounds} rounds; MFU over the {source}, {peak / 1e9:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
