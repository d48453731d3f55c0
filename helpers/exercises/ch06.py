"""Chapter 06 (residuals, LayerNorm, dropout): RMSNorm and dropout by hand, and a pre-norm
residual block written from memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from helpers.exercises.verdict import (
    Verdict,
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


def _block_variant(block, x, kind):
    """A pre-norm block's layers wired with one known mistake, for the hints of
    :func:`check_pre_norm_block`."""
    ln_1, attn, ln_2, mlp = block.ln_1, block.attn, block.ln_2, block.mlp
    if kind == "post-norm":
        x = ln_1(x + attn(x))
        return ln_2(x + mlp(x))
    if kind == "no residual":
        return mlp(ln_2(attn(ln_1(x))))
    if kind == "no norm":
        x = x + attn(x)
        return x + mlp(x)
    if kind == "one residual":
        return x + mlp(ln_2(attn(ln_1(x))))
    if kind == "ln_1 twice":
        x = x + attn(ln_1(x))
        return x + mlp(ln_1(x))
    if kind == "norm after the sum":  # x + f(ln(x)), then the sum normalised too
        x = ln_1(x + attn(ln_1(x)))
        return ln_2(x + mlp(ln_2(x)))
    raise ValueError(kind)


_BLOCK_MISTAKES = (
    (
        "post-norm",
        "that is post-norm, ln(x + f(x)): normalise the sublayer's input, "
        "x + f(ln(x)), and leave the sum alone",
    ),
    ("no residual", "each sublayer's output must be added to its input: x = x + f(ln(x))"),
    ("no norm", "each sublayer reads a normalised copy of x: attn(ln_1(x)), mlp(ln_2(x))"),
    ("one residual", "two residual sums, one around each sublayer, not one around both"),
    ("ln_1 twice", "the feed-forward sublayer has its own LayerNorm, ln_2"),
    ("norm after the sum", "pre-norm leaves the residual sum alone: no LayerNorm after it"),
)


@exercise("ex-06-block", expects="a module whose forward maps (B, T, C) to (B, T, C)")
def check_pre_norm_block(block_class: Callable[..., Any]) -> Verdict:
    """``block_class(config)``: GPT-2's pre-norm block with parts ``ln_1``, ``attn``, ``ln_2``,
    ``mlp``. Given the weights of a seeded ``helpers.model.Block`` (gains and biases perturbed,
    so that they count), it must give that block's output."""
    from helpers.model import Block, GPTConfig

    for n_embd, n_head, block_size, T in ((16, 4, 8, 8), (24, 2, 12, 7)):
        config = GPTConfig(n_embd=n_embd, n_head=n_head, block_size=block_size, vocab_size=65)
        made = f"MyBlock(GPTConfig(n_embd={n_embd}, n_head={n_head}, ...))"
        block = call(block_class, config)
        torch.manual_seed(n_embd)
        reference = Block(config).eval()
        with torch.no_grad():
            for p in reference.parameters():
                p.add_(0.1 * torch.randn_like(p))
        if not isinstance(block, torch.nn.Module):
            return failed(
                f"{made} is an nn.Module, got {describe(block)}",
                "subclass nn.Module and call super().__init__() first",
            )
        want_keys = set(reference.state_dict())
        have_keys = set(block.state_dict())
        if have_keys != want_keys:
            missing = sorted({k.split(".")[0] for k in want_keys - have_keys})
            extra = sorted({k.split(".")[0] for k in have_keys - want_keys})
            found = f"missing {', '.join(missing) or 'nothing'}"
            if extra:
                found += f"; unexpected {', '.join(extra)}"
            return failed(
                f"{made} has the parts ln_1, attn, ln_2, mlp of helpers.model.Block ({found})",
                "ln_1 = nn.LayerNorm(config.n_embd), attn = CausalSelfAttention(config), "
                "ln_2 = nn.LayerNorm(config.n_embd), mlp = FeedForward(config)",
            )
        try:
            block.load_state_dict(reference.state_dict())
        except Exception as err:  # shapes that differ: a LayerNorm over the wrong size
            return failed(
                f"helpers.model.Block's weights load into {made}",
                f"the shapes differ ({type(err).__name__}); both LayerNorms normalise "
                "config.n_embd channels",
            )
        block.eval()
        x = 2 * torch.randn(2, T, n_embd, generator=torch.Generator().manual_seed(T)) + 1
        with torch.no_grad():
            got = call(block, x.clone())
            want = reference(x)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return failed(
                f"{made} maps (B, T, C) = {tuple(x.shape)} to the same shape, got {shape_of(got)}",
                "forward returns the residual stream x after both sublayers",
            )
        got = got.detach().float()
        if torch.allclose(got, want, atol=1e-5):
            continue
        what = f"{made} with known weights equals helpers.model.Block"
        if torch.allclose(got, x, atol=1e-6):
            return failed(what, "forward returns its input unchanged: add both sublayers")
        with torch.no_grad():
            for kind, hint in _BLOCK_MISTAKES:
                if torch.allclose(got, _block_variant(reference, x, kind), atol=1e-5):
                    return failed(what, hint)
        return failed(
            what,
            "each sublayer reads its own normalised copy of the stream, x + f(ln(x)), "
            "attention first, then the feed-forward layer",
        )
    return passed("your block equals helpers.model.Block: pre-norm, two residual sums")
