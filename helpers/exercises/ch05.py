"""Chapter 05 (multi-head attention): splitting and merging heads, what heads cost, and a whole
multi-head attention layer written from memory."""

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

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@exercise("ex-05-split", expects="split_heads: a (B, nh, T, hs) tensor; merge_heads: (B, T, C)")
def check_split_heads(split_heads: Callable[..., Any], merge_heads: Callable[..., Any]) -> Verdict:
    """``split_heads(x, n_head)``: (B, T, C) -> (B, nh, T, hs), head h holding channels
    h*hs..(h+1)*hs of every token; ``merge_heads`` undoes it."""
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)  # (B, T, C), all different
    want = torch.stack([x[:, :, 2 * h : 2 * h + 2] for h in range(4)], dim=1)  # (B, nh, T, hs)
    got = call(split_heads, x.clone(), 4)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return failed(
            f"split_heads on (2, 3, 8) with n_head=4 gives (2, 4, 3, 2), got {shape_of(got)}",
            "B stays first; the head axis comes before time",
        )
    if got.dtype != x.dtype:
        return failed(
            f"split_heads keeps x's dtype {x.dtype}, got {got.dtype}",
            "splitting heads only rearranges the numbers; it computes nothing",
        )
    if not torch.equal(got, want):
        return failed(
            "head h holds channels h*hs to (h+1)*hs of every token",
            "split only the channel axis into (n_head, hs), then move the head axis "
            "in front of time: reshaping straight to (B, nh, T, hs) cuts across tokens",
        )
    back = call(merge_heads, got.clone())
    if not isinstance(back, torch.Tensor) or back.shape != x.shape:
        return failed(
            f"merge_heads gives back (B, T, C) = (2, 3, 8), got {shape_of(back)}",
            "undo split_heads' steps in reverse order",
        )
    if back.dtype != x.dtype or not torch.equal(back, x):
        return failed(
            "merge_heads(split_heads(x)) gives back x",
            "undo split_heads' steps in reverse order; a view after a transpose needs "
            "contiguous memory (or use reshape)",
        )
    return passed("split_heads puts each head's channels together and merge_heads undoes it")


@exercise("ex-05-params", expects="a whole number of parameters")
def check_attention_params(attention_params: Callable[..., Any]) -> Verdict:
    """``attention_params(n_embd, n_head)``: parameters of a fused attention layer with biases
    (c_attn and c_proj)."""
    for n_embd, n_head in ((64, 4), (64, 1), (384, 6), (768, 12)):
        want = 4 * n_embd * n_embd + 4 * n_embd  # c_attn: 3C x C + 3C, c_proj: C x C + C
        answer = call(attention_params, n_embd, n_head)
        got = as_count(answer)
        if got is None:
            return failed(
                f"attention_params({n_embd}, {n_head}) returned {describe(answer)}, "
                "not a whole number"
            )
        if got != want:
            hint = (
                "count c_attn (C -> 3C) and c_proj (C -> C), each a weight matrix and a bias"
                if got != 4 * n_embd * n_embd
                else "the biases count too"
            )
            return failed(f"attention_params({n_embd}, {n_head}) gave {got:,}, want {want:,}", hint)
    return passed("4·C² + 4·C parameters, whatever the number of heads")


def _attention_variant(x, c_attn, c_proj, n_head, causal=True, scale_by="head", split="heads"):
    """Multi-head attention from given c_attn and c_proj, right or with one known mistake:
    no mask, scores divided by √n_embd, or heads cut across tokens."""
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = c_attn(x).split(C, dim=-1)  # (B, T, C) each
    if split == "heads":
        q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
    else:  # reshaped straight to (B, nh, T, hs): each "head" holds whole tokens
        q, k, v = (t.reshape(B, n_head, T, hs) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / (hs if scale_by == "head" else C) ** 0.5
    if causal:
        future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    y = scores.softmax(dim=-1) @ v  # (B, nh, T, hs)
    y = y.transpose(1, 2).reshape(B, T, C) if split == "heads" else y.reshape(B, T, C)
    return c_proj(y)


@exercise("ex-05-mha", expects="a module whose forward maps (B, T, C) to (B, T, C)")
def check_multi_head_attention(layer_class: Callable[..., Any]) -> Verdict:
    """``layer_class(n_embd, n_head, block_size)``: causal multi-head attention with GPT-2's
    ``c_attn`` (queries, keys, values of every head, in that order) and ``c_proj``. Given the
    weights of a seeded ``helpers.model.CausalSelfAttention``, it must give its output."""
    from helpers.model import CausalSelfAttention, GPTConfig

    for n_embd, n_head, block_size, T in ((16, 4, 8, 8), (12, 1, 6, 5), (24, 6, 10, 7)):
        made = f"MyMultiHeadAttention({n_embd}, {n_head}, {block_size})"
        layer = call(layer_class, n_embd, n_head, block_size)
        if not isinstance(layer, torch.nn.Module):
            return failed(
                f"{made} returned {describe(layer)}, not an nn.Module",
                "subclass nn.Module and call super().__init__() first",
            )
        torch.manual_seed(n_embd)
        config = GPTConfig(n_embd=n_embd, n_head=n_head, block_size=block_size)
        reference = CausalSelfAttention(config).eval()
        for name, n_out in (("c_attn", 3 * n_embd), ("c_proj", n_embd)):
            linear = getattr(layer, name, None)
            if (
                not isinstance(linear, torch.nn.Linear)
                or tuple(linear.weight.shape) != (n_out, n_embd)
                or linear.bias is None
            ):
                return failed(
                    f"{made} has {name} = nn.Linear({n_embd}, {n_out}), with a bias; "
                    f"found {'nothing' if linear is None else describe(linear)}",
                    "one Linear computes [q | k | v] of every head, another mixes the heads",
                )
            with torch.no_grad():
                linear.weight.copy_(getattr(reference, name).weight)
                linear.bias.copy_(getattr(reference, name).bias)
        if hasattr(layer, "eval"):
            layer.eval()
        x = torch.randn(2, T, n_embd, generator=torch.Generator().manual_seed(T))
        with torch.no_grad():
            got = call(layer, x.clone())
            want = reference(x)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return failed(
                f"{made} maps (B, T, C) = {tuple(x.shape)} to the same shape, got {shape_of(got)}",
                "the heads side by side give C channels again, and c_proj keeps them",
            )
        got = got.detach().float()
        if torch.allclose(got, want, atol=1e-5):
            continue
        what = f"{made} with known weights equals helpers.model.CausalSelfAttention"
        with torch.no_grad():
            mistakes = (
                (dict(causal=False), "the future is visible: mask the scores to the past"),
                (dict(scale_by="embd"), "divide the scores by √head_size, not √n_embd"),
                (
                    dict(split="tokens"),
                    "split only the channel axis into (n_head, head_size), then move the "
                    "head axis in front of time",
                ),
            )
            for change, hint in mistakes:
                if n_head > 1 or "causal" in change:
                    variant = _attention_variant(
                        x, reference.c_attn, reference.c_proj, n_head, **change
                    )
                    if torch.allclose(got, variant, atol=1e-5):
                        return failed(what, hint)
        return failed(
            what,
            "c_attn's output is [q | k | v]; each is split into heads, the scores q·kᵀ are "
            "scaled, masked and softmaxed over the keys, then multiply v",
        )
    return passed(
        "your multi-head attention equals helpers.model.CausalSelfAttention with 1, 4 and 6 heads"
    )
