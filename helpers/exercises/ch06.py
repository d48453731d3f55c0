"""Chapter 06 (residuals, LayerNorm, dropout): RMSNorm and dropout by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from helpers.exercises.verdict import Verdict, call, exercise, failed, passed, shape_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@exercise("ex-06-rmsnorm", expects="a float tensor of the shape of x")
def check_rms_norm(rms_norm: Callable[..., Any]) -> Verdict:
    """``rms_norm(x, weight, eps)`` should equal ``F.rms_norm(x, (C,), weight, eps)``."""
    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(2, 5, 16, generator=g) + 1  # a mean far from 0 tells RMS from LayerNorm
    weight = torch.randn(16, generator=g)
    want = F.rms_norm(x, (16,), weight, eps=1e-5)
    got = call(rms_norm, x.clone(), weight.clone(), 1e-5)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return failed(
            f"rms_norm keeps the shape of x, (2, 5, 16), got {shape_of(got)}",
            "the statistic of each token must broadcast back over its channels",
        )
    if torch.allclose(got, want, atol=1e-5):
        return passed("rms_norm equals torch.nn.functional.rms_norm")
    what = "rms_norm equals torch.nn.functional.rms_norm"
    if torch.allclose(got, F.layer_norm(x, (16,), weight, eps=1e-5), atol=1e-5):
        return failed(what, "this is LayerNorm: RMSNorm subtracts no mean")
    if torch.allclose(got, F.rms_norm(x, (16,), None, eps=1e-5), atol=1e-5):
        return failed(what, "the normalised x must still be scaled by weight")
    return failed(
        what,
        "compare with the formula: the mean of x² runs over each token's "
        "channels (the last dim), eps goes inside the square root, and no mean "
        "is subtracted",
    )


@exercise("ex-06-dropout", expects="a float tensor of the shape of x")
def check_dropout(dropout: Callable[..., Any]) -> Verdict:
    """``dropout(x, p, generator)``: zero each entry with probability p, scale the rest by
    1 / (1 - p)."""
    x = torch.full((200, 500), 2.0)
    got = call(dropout, x.clone(), 0.25, torch.Generator().manual_seed(0))
    if not isinstance(got, torch.Tensor) or got.shape != x.shape:
        return failed(
            f"dropout keeps the shape of x, (200, 500), got {shape_of(got)}",
            "draw one random number per entry of x",
        )
    zeros = (got == 0).float().mean().item()
    if abs(zeros - 0.25) > 0.01:
        return failed(
            f"about a quarter of the entries are zero (p = 0.25), got {zeros:.1%}",
            "draw one uniform number per entry with the generator and drop the entry "
            "when it falls below p",
        )
    if not bool(torch.isclose(got[got != 0], torch.tensor(2.0 / 0.75)).all()):
        return failed(
            "the surviving entries are scaled so that the mean is unchanged",
            "a quarter of the mass is gone: scale the survivors by 1 / (1 - p)",
        )
    return passed(
        "entries dropped with probability p, the survivors scaled by 1 / (1 - p): the "
        "mean is unchanged"
    )
