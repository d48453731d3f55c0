"""Chapter 01 (data and tokenization): context/target pairs and get_batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from helpers.exercises.verdict import Verdict, call, describe, exercise, failed, passed, shape_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@exercise("ex-01-pairs", expects="a list of (context, target) pairs, context a list of ids")
def check_context_target_pairs(make_pairs: Callable[..., Any]) -> Verdict:
    """``make_pairs(block)`` should return [(context, target), ...]: every prefix of block[:-1]
    with the token that follows it."""
    block = [18, 47, 56, 57, 58, 1, 15, 47, 58]
    want = [(block[: t + 1], block[t + 1]) for t in range(len(block) - 1)]
    got = call(make_pairs, list(block), hint="walk t over the positions that have a next token")
    if not isinstance(got, (list, tuple)):
        return failed(f"make_pairs returned {describe(got)}", "return a list of (context, target)")
    if len(got) != len(want):
        return failed(
            f"{len(got)} pairs from a block of {len(block)} tokens, want {len(want)}",
            "a block of block_size + 1 tokens holds block_size examples",
        )
    pairs = [(list(context), int(target)) for context, target in got]
    for (context, target), (want_context, want_target) in zip(pairs, want, strict=True):
        if (context, target) != (want_context, want_target):
            return failed(
                f"for context {want_context} you gave ({context}, {target})",
                "a context is every token up to position t; its target is the token at t + 1",
            )
    return passed(f"{len(want)} pairs from a block of {len(block)} tokens")


@exercise("ex-01-batch", expects="x, y: two tensors of token ids, each (batch_size, block_size)")
def check_get_batch(get_batch: Callable[..., Any]) -> Verdict:
    """``get_batch(data, block_size, batch_size)`` should return x, y of shape (batch, block) with
    y = x shifted left by one token of the data."""
    data = torch.arange(100)  # 0, 1, 2, ...: a window starting at i holds i, i + 1, ...
    x, y = call(get_batch, data, 8, 4)
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        return failed(
            f"x and y should be tensors, got {shape_of(x)} and {shape_of(y)}",
            "stack the windows into one tensor each",
        )
    if tuple(x.shape) != (4, 8) or tuple(y.shape) != (4, 8):
        return failed(
            f"x and y are (batch_size, block_size) = (4, 8), got {tuple(x.shape)} and "
            f"{tuple(y.shape)}",
            "one row per example, one column per position",
        )
    if x.dtype != data.dtype or y.dtype != data.dtype:
        return failed(
            f"x and y keep the data's dtype {data.dtype}, got {x.dtype} and {y.dtype}",
            "token ids are integers: index the data, do not compute new numbers",
        )
    if not bool((x[:, 1:] == x[:, :-1] + 1).all() and (x >= 0).all() and (x < 100).all()):
        return failed(
            "each row of x is a window of consecutive tokens of the data",
            "slice block_size tokens from a random starting offset",
        )
    if not bool((y == x + 1).all()):
        return failed("y is x shifted by one token", "y's window starts one token after x's")
    return passed("x and y are (4, 8) windows of the data, y shifted by one token")
