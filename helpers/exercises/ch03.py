"""Chapter 03 (the averaging trick): running averages with cumsum and a sliding window."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from helpers.exercises.verdict import Verdict, call, exercise, failed, passed, shape_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@exercise("ex-03-cumsum", expects="a float tensor of the shape of x, (B, T, C)")
def check_causal_average(average: Callable[..., Any]) -> Verdict:
    """``average(x)`` for x of shape (B, T, C) should return, at every position t, the mean of
    x[:, :t + 1] (the token and the tokens before it)."""
    x = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(0))
    want = torch.stack([x[:, : t + 1].mean(dim=1) for t in range(7)], dim=1)  # (2, 7, 3)
    got = call(average, x.clone())
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return failed(
            f"the result has the shape of x, (B, T, C) = (2, 7, 3), got {shape_of(got)}",
            "sum along the time axis (dim=1) and keep every position",
        )
    if not got.is_floating_point():
        return failed(
            f"averages are fractions: the result's dtype is {got.dtype}",
            "divide as floats, not integers",
        )
    if torch.allclose(got, x.cumsum(dim=1), atol=1e-5):
        return failed(
            "position t holds the sum of positions 0..t, not their mean",
            "divide each running sum by the number of tokens it adds up",
        )
    if not torch.allclose(got, want, atol=1e-5):
        return failed(
            "position t holds the mean of positions 0..t",
            "position t sums t + 1 tokens; shape the counts so that they broadcast "
            "along time, over every batch element and channel",
        )
    return passed("position t holds the mean of positions 0..t")


def window(T: int, k: int) -> torch.Tensor:
    """The reference weights, built row by row so that they share no code with an answer."""
    want = torch.zeros(T, T)
    for t in range(T):
        first = max(0, t - k + 1)
        want[t, first : t + 1] = 1.0 / (t + 1 - first)
    return want


@exercise("ex-03-window", expects="a (T, T) float tensor of weights")
def check_window_weights(window_weights: Callable[..., Any]) -> Verdict:
    """``window_weights(T, k)`` should return (T, T) weights where row t averages positions
    max(0, t - k + 1) .. t."""
    for T, k in ((6, 3), (5, 1), (4, 10)):
        want = window(T, k)
        got = call(window_weights, T, k)
        if not isinstance(got, torch.Tensor) or got.shape != (T, T):
            return failed(
                f"window_weights({T}, {k}) is a ({T}, {T}) tensor, got {shape_of(got)}",
                "one row per token, one column per position it may look at",
            )
        got = got.float()
        if torch.allclose(got, want, atol=1e-6):
            continue
        future = got.triu(diagonal=1)
        if future.abs().sum() > 0:
            return failed(
                f"window_weights({T}, {k}): a row gives weight to a future position",
                "row t may only see columns s <= t, as in version 3's causal mask",
            )
        if not torch.allclose(got.sum(dim=-1), torch.ones(T), atol=1e-5):
            return failed(
                f"window_weights({T}, {k}): each row sums to 1",
                "fill the forbidden scores with -inf and take the softmax over each row",
            )
        seen = (got > 0).sum(dim=-1).tolist()
        return failed(
            f"window_weights({T}, {k}): row t averages the last {k} tokens up to t "
            f"(fewer at the start); your rows see {seen} positions",
            f"row t may see column s when t - s is between 0 and {k - 1}: forbid the "
            f"future as in version 3 and, besides, everything {k} or more steps back",
        )
    return passed("each row averages the last k tokens (fewer at the start), never a future one")
