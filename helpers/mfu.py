"""Model FLOPs utilisation (MFU): the share of the hardware's peak that training turns into the
model's own arithmetic (Chowdhery et al., 2022).

    MFU = flops_per_token x tokens per second / peak FLOP/s

A GPT's training step costs about ``6N + 12 L T d`` FLOPs per token (Kaplan et al., 2020;
chapter 10 derives it): each of the N weights takes part in a multiply-add (2 FLOPs) in the
forward pass and two in the backward pass (input and weight gradients), and attention's scores
and weighted sums add ``2 x 2 T d`` FLOPs per layer forward, three times that with the backward.
Recomputation, padding and the optimizer do not count: MFU measures useful work only.

The peak is a datasheet figure for GPUs (dense, no sparsity, for the precision in use); an
unknown GPU says "peak unknown" rather than guess. A CPU's datasheet peak depends on clocks and
vector units nobody lists, so it is measured: the best of a few large matrix multiplies in the
same process (:func:`cpu_peak_flops`).
"""

from __future__ import annotations

import functools
import re
import time

import torch

# Datasheet dense tensor-core (bf16/fp16) and plain fp32 peaks, TFLOP/s. PyTorch's default fp32
# matmul does not use TF32, so fp32 rows are the plain FP32 figures.
GPU_PEAK_TFLOPS = {
    "T4": {"float16": 65.0, "float32": 8.1},  # no bf16 hardware
    "L4": {"bfloat16": 121.0, "float16": 121.0, "float32": 30.3},
    "A10": {"bfloat16": 125.0, "float16": 125.0, "float32": 31.2},
    "A100": {"bfloat16": 312.0, "float16": 312.0, "float32": 19.5},
    "H100 PCIe": {"bfloat16": 756.0, "float16": 756.0, "float32": 51.0},
    "H100": {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0},  # SXM
    "H200": {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0},
}


def flops_per_token(n_params: int, n_layer: int, block_size: int, n_embd: int) -> float:
    """Training FLOPs per token of a GPT: 6N + 12 L T d."""
    return 6 * n_params + 12 * n_layer * block_size * n_embd


def model_flops_per_token(model: torch.nn.Module, block_size: int) -> float:
    """:func:`flops_per_token` of ``model``. N counts every weight but the position table (a
    lookup, no multiply), as nanoGPT does; a model without a GPT's ``config`` (n_layer, n_embd)
    gets 6N alone, attention's share not counted."""
    n = sum(p.numel() for p in model.parameters())
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "n_layer"):
        return 6.0 * n
    wpe = getattr(getattr(model, "transformer", None), "wpe", None)
    if isinstance(wpe, torch.nn.Embedding):
        n -= wpe.weight.numel()
    return float(flops_per_token(n, config.n_layer, block_size, config.n_embd))


def gpu_peak_flops(name: str, dtype: str | None) -> float | None:
    """The datasheet peak of GPU ``name`` (as ``torch.cuda.get_device_name`` gives it) for
    autocast ``dtype`` (None: fp32), in FLOP/s; None for a GPU not in the table."""
    for key in sorted(GPU_PEAK_TFLOPS, key=len, reverse=True):  # "H100 PCIe" before "H100"
        if re.search(rf"\b{re.escape(key)}\b", name):
            tflops = GPU_PEAK_TFLOPS[key].get(dtype or "float32")
            return None if tflops is None else tflops * 1e12
    return None


@functools.cache
def cpu_peak_flops(dtype: str | None = None, size: int = 1024, repeats: int = 5) -> float:
    """This CPU's matrix-multiply speed in FLOP/s (``dtype`` None: fp32): the best of ``repeats``
    (size x size) @ (size x size) products with torch's current threads. Measured once per
    process (a fraction of a second), so a run and its peak are measured on the same machine
    under the same load."""
    dt = getattr(torch, dtype) if dtype else torch.float32
    a = torch.randn(size, size, generator=torch.Generator().manual_seed(0)).to(dt)
    b = a.t().contiguous()
    a @ b  # warm up the kernels and caches
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - tick)
    return 2 * size**3 / best


def peak_flops(device: str, dtype: str | None = None) -> tuple[float | None, str]:
    """(peak FLOP/s, where it came from) for training on ``device`` with autocast ``dtype``."""
    kind = device.split(":")[0]
    precision = {"bfloat16": "bf16", "float16": "fp16"}.get(dtype or "", "fp32")
    if kind == "cpu":
        return cpu_peak_flops(dtype), f"{precision} matmul probe on this CPU"
    if kind == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device).index or 0)
        peak = gpu_peak_flops(name, dtype)
        if peak is not None:
            return peak, f"{name} datasheet {precision} peak"
        return None, f"peak unknown for {name} in {precision}"
    return None, f"peak unknown on {kind}"


def mfu(tokens_per_second: float, flops_per_token: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation, 0 to 1; None when the peak is unknown."""
    if not peak or not tokens_per_second:
        return None
    return tokens_per_second * flops_per_token / peak


def describe_mfu(value: float | None) -> str:
    """In words: MFU 46%, or MFU: peak unknown."""
    return "MFU: peak unknown" if value is None else f"MFU {value:.0%}"
