"""Chapter 04 (masked self-attention): attention in one function, and cross-attention."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from helpers.exercises.verdict import Verdict, call, device_of, exercise, failed, passed, shape_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@exercise("ex-04-attention", expects="a float tensor (B, T, hs), the shape of v")
def check_attention(attention: Callable[..., Any]) -> Verdict:
    """``attention(q, k, v, causal)`` should be scaled dot-product attention, as
    ``F.scaled_dot_product_attention(q, k, v, is_causal=causal)`` computes it."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 6, 8, generator=g) for _ in range(3))  # (B, T, hs)
    for causal in (True, False):
        want = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        got = call(attention, q.clone(), k.clone(), v.clone(), causal)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return failed(
                f"attention(q, k, v, causal={causal}) returns (B, T, hs) = (2, 6, 8), "
                f"got {shape_of(got)}",
                "the weights (B, T, T) times v give (B, T, hs)",
            )
        if torch.allclose(got, want, atol=1e-5):
            continue
        unscaled = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=1.0)
        if torch.allclose(got, unscaled, atol=1e-5):
            return failed(
                f"attention(..., causal={causal}) equals F.scaled_dot_product_attention",
                "the scores are not scaled: divide them by the square root of the "
                "head size, as the variance demo showed",
            )
        other = F.scaled_dot_product_attention(q, k, v, is_causal=not causal)
        if torch.allclose(got, other, atol=1e-5):
            hint = (
                "the future is visible: hide the positions after each token before the softmax"
                if causal
                else "causal=False is an encoder: nothing is masked"
            )
            return failed(
                f"attention(..., causal={causal}) equals F.scaled_dot_product_attention", hint
            )
        return failed(
            f"attention(..., causal={causal}) equals F.scaled_dot_product_attention",
            "scores are q times k transposed, scaled; the softmax runs over the keys "
            "(the last dim); the weights then multiply v",
        )
    return passed(
        "attention(q, k, v, causal) equals F.scaled_dot_product_attention, with and "
        "without the mask"
    )


@exercise("ex-04-cross", expects="a float tensor (B, T_x, hs): one vector per query token")
def check_cross_attention(cross_attention: Callable[..., Any], head: torch.nn.Module) -> Verdict:
    """``cross_attention(x, memory, head)``: queries from ``x``, keys and values from ``memory``,
    no mask."""
    g = torch.Generator().manual_seed(0)
    n_embd = head.query.in_features
    x, memory = torch.randn(2, 5, n_embd, generator=g), torch.randn(2, 9, n_embd, generator=g)
    x, memory = x.to(device_of(head)), memory.to(device_of(head))
    with torch.no_grad():
        want = F.scaled_dot_product_attention(head.query(x), head.key(memory), head.value(memory))
        got = call(cross_attention, x.clone(), memory.clone(), head)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return failed(
            f"cross_attention returns one vector per query token: {tuple(want.shape)}, "
            f"got {shape_of(got)}",
            "x has 5 tokens and memory 9: the weights are (B, 5, 9)",
        )
    if not torch.allclose(got, want, atol=1e-5):
        return failed(
            "5 query tokens attend over 9 memory tokens",
            "queries come from x; keys and values from memory, all through the "
            "head's projections; scale the scores and do not mask",
        )
    return passed("5 query tokens attend over 9 memory tokens")
