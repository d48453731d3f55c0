"""Chapter 02 (bigram model): the loss of a uniform guess, counting bigrams, greedy decoding."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from helpers.exercises.verdict import (
    Verdict,
    call,
    describe,
    device_of,
    exercise,
    failed,
    passed,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def last_logits(model: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """The model's logits for the last position, (B, vocab), whether it returns (logits, loss)
    or the logits alone."""
    out = model(idx)
    logits = out[0] if isinstance(out, tuple) else out
    return logits[:, -1, :]


@exercise("ex-02-greedy", expects="a (1, 21) tensor of token ids: the prompt and 20 new tokens")
def check_greedy(greedy: Callable[..., Any], model: torch.nn.Module) -> Verdict:
    """``greedy(model, idx, n)`` should append n tokens, each the argmax of the logits."""
    start = torch.zeros((1, 1), dtype=torch.long, device=device_of(model))
    with torch.no_grad():
        got = call(greedy, model, start.clone(), 20)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (1, 21):
            return failed(
                f"greedy(model, idx, 20) from one token returns (1, 21), got {describe(got)}",
                "append one token per step to idx and return it",
            )
        if got.dtype != torch.long:
            return failed(
                f"token ids are integers (torch.long), got {got.dtype}",
                "append the index of the best token, not its logit or probability",
            )
        if not torch.equal(got[:, :1], start):
            return failed("the result starts with the prompt", "append to idx; do not replace it")
        for t in range(20):
            best = last_logits(model, got[:, : t + 1]).argmax(dim=-1)  # (1,)
            if best.item() != got[0, t + 1].item():
                return failed(
                    f"new token {t + 1} is not the most likely one after the tokens before it",
                    "feed the whole sequence so far to the model, read "
                    "the logits of its last position and take the best token",
                )
    return passed("every new token is the argmax of the logits before it")


@exercise("ex-02-counts", expects="a (vocab_size, vocab_size) tensor of counts")
def check_count_bigrams(count_bigrams: Callable[..., Any]) -> Verdict:
    """``count_bigrams(data, V)[i, j]`` should count how often token j follows token i."""
    cases = [(torch.tensor([0, 1, 1, 2, 0, 1]), 3)]
    cases.append((torch.randint(65, (500,), generator=torch.Generator().manual_seed(0)), 65))
    for data, vocab_size in cases:
        want = torch.bincount(data[:-1] * vocab_size + data[1:], minlength=vocab_size**2)
        want = want.view(vocab_size, vocab_size).double()
        got = call(count_bigrams, data.clone(), vocab_size)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != want.shape:
            return failed(
                f"count_bigrams(data, {vocab_size}) should be a ({vocab_size}, {vocab_size}) "
                f"tensor, got {describe(got)}",
                "one row per current token, one column per next token",
            )
        got = got.double()
        if got.sum().item() != len(data) - 1:
            return failed(
                f"the counts add up to {got.sum().item():g} for a text of {len(data)} tokens",
                f"a text of n tokens holds n - 1 adjacent pairs: here {len(data) - 1}",
            )
        if torch.equal(got, want.T) and not torch.equal(got, want):
            return failed(
                "the table is transposed", "row = the current token, column = the one after it"
            )
        if not torch.equal(got, want):
            return failed(
                f"some counts differ from the pairs in a {len(data)}-token text",
                "add 1 at [data[t], data[t + 1]] for every t; repeated pairs must add up "
                "(index_put_ with accumulate=True, or torch.bincount)",
            )
    return passed("counts[i, j] is how often token j follows token i")
