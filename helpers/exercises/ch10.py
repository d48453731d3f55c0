"""Chapter 10 (scaling up): the effective batch and which number format keeps a value."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from helpers.exercises.verdict import (
    Verdict,
    as_count,
    as_truth,
    call,
    describe,
    exercise,
    failed,
    passed,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@exercise("ex-10-batch", expects="a whole number of sequences")
def check_effective_batch(effective_batch: Callable[..., Any]) -> Verdict:
    """``effective_batch(batch_size, grad_accum_steps, n_processes)``: sequences per step."""
    for args, want in (((32, 1, 1), 32), ((32, 4, 1), 128), ((16, 2, 8), 256)):
        answer = call(effective_batch, *args)
        got = as_count(answer)
        if got is None:
            return failed(f"effective_batch{args} returned {describe(answer)}, not a whole number")
        if got != want:
            return failed(
                f"effective_batch{args} gave {got}, want {want}",
                "every process accumulates its own micro-batches before the step",
            )
    return passed("effective batch = batch_size x grad_accum_steps x n_processes")


@exercise("ex-10-formats", expects="True or False")
def check_survives(survives: Callable[..., Any]) -> Verdict:
    """``survives(value, dtype)``: does ``value`` keep a significant digit in ``dtype``?"""
    cases = [
        (1e-7, torch.float16, False),
        (1e-7, torch.bfloat16, True),
        (1e5, torch.float16, False),
        (1e5, torch.bfloat16, True),
        (0.1, torch.float16, True),
    ]
    for value, dtype, want in cases:
        answer = call(survives, value, dtype)
        got = as_truth(answer)
        if got is None:
            return failed(f"survives({value}, {dtype}) returned {describe(answer)}, not a bool")
        if got != want:
            return failed(
                f"survives({value}, {dtype}) should be {want}",
                "store the value in the format and read it back: fp16 flushes below "
                "~6e-8 and overflows above 65504; bf16 has fp32's range",
            )
    return passed("fp16 loses 1e-7 and 1e5, bf16 keeps both")
