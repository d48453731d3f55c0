"""Chapter 08 (Hugging Face fine-tuning): who may attend to whom, mean pooling, and F1 by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from helpers.exercises.verdict import (
    Verdict,
    as_number,
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


@exercise("ex-08-masks", expects="a boolean tensor allowed of shape (B, T, T)")
def check_attention_permissions(attention_permissions: Callable[..., Any]) -> Verdict:
    """``attention_permissions(attention_mask, causal)`` should return allowed (B, T, T):
    allowed[b, i, j] is True when position i may attend to position j (j is a real token, and
    j <= i if causal)."""
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])  # (B, T): the second review is padded
    keys = mask.bool()[:, None, :]  # (B, 1, T): every query sees every real key
    want = {
        False: keys.expand(2, 4, 4),
        True: keys & torch.ones(4, 4, dtype=torch.bool).tril(),
    }  # chapter 04's tril mask
    for causal, name in ((False, "encoder (BERT)"), (True, "decoder (GPT)")):
        got = call(attention_permissions, mask.clone(), causal)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (2, 4, 4):
            return failed(
                f"{name}: allowed has shape (B, T, T) = (2, 4, 4), got {shape_of(got)}",
                "one (T, T) table per example: queries as rows, keys as columns",
            )
        if got.dtype != torch.bool:
            return failed(
                f"{name}: allowed is a boolean tensor, got {got.dtype}",
                "compare or combine with logical operators; a float mask means "
                "something else to attention (it is added to the scores)",
            )
        if not torch.equal(got, want[causal]):
            hint = "a query may look at a key j when mask[b, j] is 1 (padding is never seen)"
            if causal:
                hint += "; with causal=True also only at j <= i, as chapter 04's mask"
            return failed(f"{name}: allowed[b, i, j]", hint)
    return passed(
        "encoder: every real token sees every real token; decoder: only itself and the past"
    )


@exercise("ex-08-mean-pool", expects="a float tensor (B, H): one vector per example")
def check_mean_pooling(mean_pool: Callable[..., Any]) -> Verdict:
    """``mean_pool(hidden, attention_mask)`` with hidden (B, T, H) and mask (B, T) should return
    the mean over the real tokens, (B, H)."""
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 4, generator=gen)  # (B, T, H)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])  # (B, T)
    want = torch.stack([hidden[b, : int(mask[b].sum())].mean(0) for b in range(3)])  # (B, H)
    noisy = hidden.masked_fill(~mask.bool().unsqueeze(-1), 1e4)  # padding must not count
    got = call(mean_pool, noisy, mask.clone())
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (3, 4):
        return failed(
            f"mean pooling returns one (H,) vector per example, (B, H) = (3, 4), got "
            f"{shape_of(got)}",
            "average over the token axis (dim=1)",
        )
    if not torch.allclose(got.float(), want, atol=1e-5):
        return failed(
            "the mean runs over the real tokens only (padding ignored)",
            "padding must add nothing to the sum, and each example is divided by its "
            "own number of real tokens, not by T",
        )
    return passed("the mean runs over the real tokens only (padding ignored)")


def reference_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, zero_division=0.0))


@exercise("ex-08-f1", expects="one number between 0 and 1")
def check_f1(my_f1: Callable[..., Any]) -> Verdict:
    """``my_f1(labels, predictions)`` should return the F1 score of the positive class (1)."""
    rng = np.random.default_rng(0)
    cases = [
        (np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])),
        (np.array([1, 0, 1, 1, 0]), np.array([1, 1, 1, 1, 1])),
        (np.array([1, 0, 1]), np.array([0, 0, 0])),  # nothing predicted positive: F1 = 0
        (rng.integers(0, 2, 200), rng.integers(0, 2, 200)),
    ]
    for labels, predictions in cases:
        want = reference_f1(labels, predictions)
        answer = call(my_f1, labels.copy(), predictions.copy())
        got = as_number(answer)
        case = f"labels {labels[:5].tolist()}… and predictions {predictions[:5].tolist()}…"
        if got is None:
            return failed(f"f1 for {case} returned {describe(answer)}, not a number")
        if not abs(got - want) < 1e-9:
            return failed(
                f"f1 for {case}: got {got:.4f}, want {want:.4f}",
                "precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2PR/(P+R), and 0 when TP = 0",
            )
    return passed("f1 agrees with sklearn.metrics.f1_score, including when TP = 0")
