"""Chapter 07 (the full GPT): top-k by hand and the parameter count from the config."""

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
from helpers.model import count_parameters

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from helpers.model import GPT


@exercise("ex-07-topk", expects="a float tensor (B, vocab): the logits, all but k per row -inf")
def check_top_k(top_k: Callable[..., Any]) -> Verdict:
    """``top_k(logits, k)`` should keep the k largest logits of each row and set the rest to
    -inf."""
    logits = torch.tensor([[0.5, 2.0, -1.0, 3.0, 0.0], [1.0, 0.0, 4.0, 2.0, 3.0]])  # (B, vocab)
    keep = torch.tensor([[False, True, False, True, False], [False, False, True, False, True]])
    want = logits.masked_fill(~keep, float("-inf"))  # the two largest of each row, written out
    got = call(top_k, logits.clone(), 2)
    if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
        return failed(
            f"my_top_k keeps the shape of the logits, (2, 5), got {shape_of(got)}",
            "mask the logits you drop rather than removing them",
        )
    if torch.equal(got, want):
        return passed("top-k keeps the 2 largest logits per row and masks the rest with -inf")
    what = "top-k keeps the 2 largest logits per row and masks the rest with -inf"
    kept = got > float("-inf")
    if kept.sum(dim=-1).tolist() != [2, 2]:
        return failed(
            what,
            f"each row should keep exactly 2 logits; yours keep "
            f"{kept.sum(dim=-1).tolist()}: the others become float('-inf')",
        )
    if not torch.equal(kept, keep):
        return failed(what, "the kept logits must be each row's largest, compared within the row")
    return failed(what, "the kept logits must keep their values; only the dropped ones change")


@exercise("ex-07-params", expects="a whole number of parameters")
def check_parameter_count(n_params: Callable[..., Any], model: GPT) -> Verdict:
    """``n_params(config)`` should give the model's parameter count from its config alone."""
    want = count_parameters(model)  # a tied weight is counted once
    answer = call(n_params, model.config)
    got = as_count(answer)
    if got is None:
        return failed(f"n_params returned {describe(answer)}, not a whole number")
    if got == want:
        return passed(f"parameter count from the config = {want:,}")
    config = model.config
    if got == want + config.vocab_size * config.n_embd:
        hint = "lm_head shares wte's weights: count them once"
    else:
        hint = (
            "count each Linear as in × out weights plus out biases and each LayerNorm as a "
            "gain and a bias; a block holds two LayerNorms, attention (c_attn, c_proj) and "
            "the MLP (c_fc, c_proj); add wte, wpe and ln_f"
        )
    return failed(f"n_params(config) gave {got:,}, the model has {want:,}", hint)
