"""Chapter 11 (from GPT-2 to Llama): grouped-query attention's key/value sharing by hand, and
the KV cache's size from the config."""

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


@exercise("ex-11-repeat-kv", expects="a tensor (B, n_kv_head * groups, T, hs)")
def check_repeat_kv(repeat_kv: Callable[..., Any]) -> Verdict:
    """``repeat_kv(k, groups)`` turns k (B, nkv, T, hs) into (B, nkv * groups, T, hs) where
    query head h reads key/value head h // groups."""
    torch.manual_seed(0)
    k = torch.randn(2, 3, 5, 4)  # (B, nkv, T, hs)
    want = k.repeat_interleave(3, dim=1)  # (B, 9, T, hs)
    what = "each key/value head is repeated for its group of 3 query heads, in order"
    got = call(repeat_kv, k.clone(), 3)
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (2, 9, 5, 4):
        return failed(
            f"repeat_kv(k, 3) with k (2, 3, 5, 4) should give (2, 9, 5, 4), got {shape_of(got)}",
            "the head dimension is dim 1: it grows by the factor groups, the others stay",
        )
    if torch.equal(got, want):
        if torch.equal(call(repeat_kv, k.clone(), 1), k):
            return passed(what)
        return failed("repeat_kv(k, 1) should return k unchanged")
    if torch.equal(got, k.repeat(1, 3, 1, 1)):
        return failed(
            what,
            "heads 0, 1, 2 must all read kv head 0 (then 3, 4, 5 read kv head 1): yours cycle "
            "through the kv heads instead of repeating each one in place",
        )
    return failed(what, "the numbers must be copies of k's heads, not new values")


@exercise("ex-11-kv-bytes", expects="a whole number of bytes")
def check_kv_cache_bytes(kv_cache_bytes: Callable[..., Any], config: Any) -> Verdict:
    """``kv_cache_bytes(config, n_tokens, bytes_per_number)`` is the memory a KV cache of
    ``n_tokens`` tokens takes for a Llama of ``config``."""
    from dataclasses import replace

    def want(c, n, b):
        return 2 * c.n_layer * c.n_kv_head * (c.n_embd // c.n_head) * n * b

    cases = [(config, 8192, 2), (config, 1, 4), (replace(config, n_kv_head=config.n_head), 100, 2)]
    for c, n, b in cases:
        answer = call(kv_cache_bytes, c, n, b)
        got = as_count(answer)
        if got is None:
            return failed(f"kv_cache_bytes returned {describe(answer)}, not a whole number")
        if got != want(c, n, b):
            break
    else:
        return passed(f"{want(config, 8192, 2):,} bytes for {8192:,} tokens in bf16")
    if got == want(c, n, b) // 2:
        hint = "a cache keeps two vectors per token per head: the key and the value"
    elif got == want(replace(c, n_kv_head=c.n_head), n, b):
        hint = "only the n_kv_head key/value heads are cached, not one per query head"
    else:
        hint = "keys and values × layers × key/value heads × head size × tokens × bytes"
    return failed(
        f"kv_cache_bytes gave {got:,} for {n:,} tokens at {b} bytes a number, "
        f"the cache holds {want(c, n, b):,}",
        hint,
    )
