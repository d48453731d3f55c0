"""Chapter 05 (multi-head attention): splitting and merging heads, and what heads cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from helpers.exercises.verdict import (
    Verdict,
    as_count,
    call,
    describe,
    exercise,
    failed,
    passed,
    shape_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@exercise("ex-05-split", expects="split_heads: a (B, nh, T, hs) tensor; merge_heads: (B, T, C)")
def check_split_heads(split_heads: Callable[..., Any], merge_heads: Callable[..., Any]) -> Verdict:
    """``split_heads(x, n_head)``: (B, T, C) -> (B, nh, T, hs), head h holding channels
    h*hs..(h+1)*hs of every token; ``merge_heads`` undoes it."""
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)  # (B, T, C), all different
    want = torch.stack([x[:, :, 2 * h : 2 * h + 2] for h in range(4)], dim=1)  # (B, nh, T, hs)
    got = call(split_heads, x.clone(), 4)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return failed(
            f"split_heads on (2, 3, 8) with n_head=4 gives (2, 4, 3, 2), got {shape_of(got)}",
            "B stays first; the head axis comes before time",
        )
    if got.dtype != x.dtype:
        return failed(
            f"split_heads keeps x's dtype {x.dtype}, got {got.dtype}",
            "splitting heads only rearranges the numbers; it computes nothing",
        )
    if not torch.equal(got, want):
        return failed(
            "head h holds channels h*hs to (h+1)*hs of every token",
            "split only the channel axis into (n_head, hs), then move the head axis "
            "in front of time: reshaping straight to (B, nh, T, hs) cuts across tokens",
        )
    back = call(merge_heads, got.clone())
    if not isinstance(back, torch.Tensor) or back.shape != x.shape:
        return failed(
            f"merge_heads gives back (B, T, C) = (2, 3, 8), got {shape_of(back)}",
            "undo split_heads' steps in reverse order",
        )
    if back.dtype != x.dtype or not torch.equal(back, x):
        return failed(
            "merge_heads(split_heads(x)) gives back x",
            "undo split_heads' steps in reverse order; a view after a transpose needs "
            "contiguous memory (or use reshape)",
        )
    return passed("split_heads puts each head's channels together and merge_heads undoes it")


@exercise("ex-05-params", expects="a whole number of parameters")
def check_attention_params(attention_params: Callable[..., Any]) -> Verdict:
    """``attention_params(n_embd, n_head)``: parameters of a fused attention layer with biases
    (c_attn and c_proj)."""
    for n_embd, n_head in ((64, 4), (64, 1), (384, 6), (768, 12)):
        want = 4 * n_embd * n_embd + 4 * n_embd  # c_attn: 3C x C + 3C, c_proj: C x C + C
        answer = call(attention_params, n_embd, n_head)
        got = as_count(answer)
        if got is None:
            return failed(
                f"attention_params({n_embd}, {n_head}) returned {describe(answer)}, "
                "not a whole number"
            )
        if got != want:
            hint = (
                "count c_attn (C -> 3C) and c_proj (C -> C), each a weight matrix and a bias"
                if got != 4 * n_embd * n_embd
                else "the biases count too"
            )
            return failed(f"attention_params({n_embd}, {n_head}) gave {got:,}, want {want:,}", hint)
    return passed("4·C² + 4·C parameters, whatever the number of heads")
