"""Chapter 10 (scaling up): the effective batch, gradient accumulation by hand, and which number
format keeps a value."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from helpers.exercises.verdict import (
    Verdict,
    as_number,
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
                "store the value in the format and read it back: below fp16's smallest "
                "normal number (about 6.1e-5) fewer and fewer digits survive (1e-7 comes "
                "back as 1.19e-7), and above 65504 it overflows; bf16 has fp32's range",
            )
    return passed("fp16 loses 1e-7 and 1e5, bf16 keeps both")


@exercise("ex-10-accum", expects="the mean loss, a float")
def check_accumulated_step(accumulated_step: Callable[..., Any]) -> Verdict:
    """``accumulated_step(model, optimizer, x, y, k)`` should leave the model where one step on
    the whole batch leaves it, with the gradients cleared, and return the mean loss."""
    from torch.nn.utils import parameters_to_vector

    from helpers.model import GPT, GPTConfig

    config = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(65, (8, 16), generator=gen)  # (B, T)
    y = torch.randint(65, (8, 16), generator=gen)
    for k in (4, 2, 1):
        torch.manual_seed(0)
        reference, learner = GPT(config), GPT(config)
        learner.load_state_dict(reference.state_dict())
        start = parameters_to_vector(reference.parameters()).detach()
        _, loss = reference(x, y)  # one step on the whole batch
        loss.backward()
        torch.optim.SGD(reference.parameters(), lr=0.1).step()
        optimizer = torch.optim.SGD(learner.parameters(), lr=0.1)
        got = call(accumulated_step, learner, optimizer, x, y, k)
        want_step = parameters_to_vector(reference.parameters()).detach() - start
        their_step = parameters_to_vector(learner.parameters()).detach() - start
        if their_step.abs().max() == 0:
            returned = f" and it returned {describe(got)}" if got is None else ""
            return failed(
                f"with k = {k} the weights did not change{returned}", "call optimizer.step()"
            )
        error = (their_step - want_step).abs().max().item()
        if error > 1e-6:
            ratio = their_step.norm().item() / want_step.norm().item()
            hint = (
                "divide each micro-batch's loss by k before backward"
                if k > 1 and abs(ratio - k) < 0.1 * k
                else "step once, after all k backward passes, on the summed gradients"
            )
            return failed(
                f"with k = {k} the weights differ from one step on the whole batch by {error:.1e}",
                hint,
            )
        if any(p.grad is not None and p.grad.abs().max() > 0 for p in learner.parameters()):
            return failed(
                f"with k = {k} the gradients were left in place after the step",
                "clear them (optimizer.zero_grad()) before returning",
            )
        value = as_number(got)
        if value is None or abs(value - loss.item()) > 1e-5:
            return failed(
                f"with k = {k} it returned {describe(got)}, want the mean loss {loss.item():.4f}",
                "return the mean of the k micro-batch losses, as a float (loss.item())",
            )
    return passed("k micro-batches make the same step as the whole batch, for k = 4, 2 and 1")
