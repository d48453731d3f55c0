"""Training throughput of the chapter-07 GPT on this machine, measured in one run.

Rows: the CPU preset's shape and the well-known 4-layer/4-head/128-wide "baby" shape, each with
fused attention (F.scaled_dot_product_attention) and with the explicit per-head path, plus bf16
autocast. Prints tokens per second and the ratio to the first row.

    python bench/train_speed.py [--steps 30]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from helpers.data import get_batch, load_splits
from helpers.mfu import describe_mfu, mfu, model_flops_per_token, peak_flops
from helpers.model import GPT
from helpers.settings import hardware
from helpers.train import TrainConfig, autocast_context, make_optimizer, preset


def tokens_per_second(
    cfg: TrainConfig, tokens: torch.Tensor, steps: int, fused: bool = True, dtype: str | None = None
) -> tuple[float, float]:
    """Full training steps (forward, backward, AdamW) on one batch of ``tokens``, after 3 warm-up
    steps. Nothing but training steps is inside the timed loop (no evaluation, no data loading).
    Returns (tokens/s, the model's training FLOPs per token)."""
    torch.manual_seed(0)
    model = GPT(replace(cfg.model, fused_attention=fused))
    optimizer = make_optimizer(model, cfg)
    x, y = get_batch(
        tokens, cfg.block_size, cfg.batch_size, generator=torch.Generator().manual_seed(0)
    )
    for step in range(steps + 3):
        if step == 3:
            start = time.perf_counter()
        with autocast_context("cpu", dtype):
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    return steps * x.numel() / seconds, model_flops_per_token(model, cfg.block_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    shakespeare = load_splits()
    cpu = preset("gpt", device="cpu")
    cpu = replace(cpu, model=replace(cpu.model, vocab_size=shakespeare.tokenizer.vocab_size))
    baby = replace(
        cpu, model=replace(cpu.model, n_layer=4, n_head=4, n_embd=128, block_size=64), batch_size=12
    )
    shape = cpu.model
    rows = [
        (
            f"CPU preset {shape.n_layer}x{shape.n_head}x{shape.n_embd}, T={shape.block_size}, "
            f"B={cpu.batch_size}, fused",
            cpu,
            True,
            None,
        ),
        ("CPU preset, explicit attention", cpu, False, None),
        ("CPU preset, fused, bf16 autocast", cpu, True, "bfloat16"),
        ("baby 4x4x128, T=64, B=12, fused", baby, True, None),
        ("baby 4x4x128, T=64, B=12, explicit", baby, False, None),
    ]
    print(f"{hardware()}, {torch.get_num_threads()} threads, {args.steps} steps per row\n")
    first = None
    for label, cfg, fused, dtype in rows:
        tps, flops = tokens_per_second(cfg, shakespeare.train, args.steps, fused, dtype)
        peak, _ = peak_flops("cpu", dtype)  # this CPU's matmul probe in the row's precision
        first = first or tps
        print(
            f"{label:<52} {tps:>10,.0f} tokens/s  {describe_mfu(mfu(tps, flops, peak)):>8}"
            f"  {tps / first:5.2f}x"
        )
    print("(MFU: 6N + 12LTd FLOPs per token over a matmul probe of this CPU in the same run)")


if __name__ == "__main__":
    main()
