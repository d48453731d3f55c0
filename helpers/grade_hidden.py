"""Hidden cases: every auto-checked exercise tried again on shapes, seeds and edge cases its
visible check does not show (T = 1, a batch of one, k at the vocabulary size, p = 0, ...), each
against a reference computed another way. An answer fitted to the one visible input fails; any
right answer passes, however it is written.

The grader (helpers.grade_kernel) calls :func:`report` in a submission's kernel once a check has
passed there, on the objects the notebook gave that check. This file stays out of the student
edition: learners see the visible checks only. A verdict names the case that went wrong and a
hint, never the answer.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from helpers.exercises.verdict import (
    AnswerRaised,
    Verdict,
    as_count,
    as_number,
    as_truth,
    call,
    describe,
    failed,
    passed,
)

CASES: dict[str, Callable[..., Verdict]] = {}  # exercise label -> its hidden cases


def hidden(label: str) -> Callable:
    def register(cases: Callable[..., Verdict]) -> Callable[..., Verdict]:
        CASES[label] = cases
        return cases

    return register


def report(marker: str, label: str, answers: Callable[[], tuple]) -> None:
    """Write :func:`verdict` as JSON on one line after ``marker``, for the grader to read."""
    # on a line of its own, whatever the learner's code printed last (print(..., end=""))
    sys.stdout.write("\n" + marker + json.dumps(verdict(label, answers)._asdict()) + "\n")
    sys.stdout.flush()


def verdict(label: str, answers: Callable[[], tuple]) -> Verdict:
    """``label``'s hidden cases run on ``answers()`` (what the notebook gave the check). Never
    raises, and leaves the random numbers as they were, so the cells after the check draw what
    they drew ungraded."""
    with kept_random_state():
        try:
            return CASES[label](*answers())
        except AnswerRaised as err:
            return failed(f"raised on a hidden case: {err}", err.hint)
        except Exception as err:  # a name the notebook no longer has, a result of the wrong type
            return failed(
                f"a hidden case could not use your answer ({type(err).__name__}: {str(err)[:150]})",
                "return what the statement asks for, for any valid input",
            )


@contextlib.contextmanager
def kept_random_state() -> Iterator[None]:
    """Python's, NumPy's and torch's random state as they were before, whatever ran inside."""
    python, numpy = random.getstate(), np.random.get_state()
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def attempt(case: str, hint: str, answer: Callable, *args: Any) -> Any:
    """What the learner's ``answer`` returns on a hidden case; if it raises, the verdict names
    the case."""
    try:
        return call(answer, *args)
    except AnswerRaised as err:
        raise AnswerRaised(f"{case}: {err}", hint) from err


def wrong(case: str, hint: str) -> Verdict:
    return failed(f"wrong on a hidden case: {case}", hint)


def all_passed(count: int) -> Verdict:
    return passed(f"{count} hidden cases: other shapes, seeds and edge cases")


def same(got: Any, want: torch.Tensor, atol: float = 1e-5) -> bool:
    """``got`` is a tensor of ``want``'s shape and values: exactly when ``atol`` is 0."""
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        return False
    got, want = got.detach().cpu().double(), want.detach().cpu().double()
    return torch.equal(got, want) if atol == 0 else torch.allclose(got, want, atol=atol)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- chapter 01 --------------------------------------------------------------------------------


@hidden("ex-01-pairs")
def pairs(make_pairs: Callable) -> Verdict:
    hint = "take the number of pairs from the block's own length; a repeated id is a new position"
    blocks = [[7, 3], [5, 5, 5, 2, 5], torch.randint(0, 60, (33,), generator=seeded(1)).tolist()]
    for block in blocks:
        case = f"a block of {len(block)} tokens"
        want = list(zip((block[:end] for end in range(1, len(block))), block[1:], strict=True))
        got = attempt(case, hint, make_pairs, list(block))
        if [([int(t) for t in context], int(target)) for context, target in got] != want:
            return wrong(case, hint)
    return all_passed(len(blocks))


@hidden("ex-01-batch")
def batch(get_batch: Callable) -> Verdict:
    hint = "draw each start from every offset whose window of block_size + 1 tokens fits the data"
    cases = ((2, 1, 1), (9, 8, 3), (40, 5, 200))  # (tokens, block_size, batch_size)
    for n, block, size in cases:
        case = f"{n} tokens of data, block_size {block}, batch_size {size}"
        data = torch.randperm(1000, generator=seeded(n))[:n]  # distinct ids: a start is findable
        where = torch.full((1000,), -1)
        where[data] = torch.arange(n)
        x, y = attempt(case, hint, get_batch, data.clone(), block, size)
        if not (same_shape(x, (size, block)) and same_shape(y, (size, block))):
            return wrong(case, "x and y have the shape (batch_size, block_size) you are given")
        x, y = x.cpu(), y.cpu()  # the data's device is not part of the exercise
        starts = where[x[:, 0].long().clamp(0, 999)]
        windows = starts[:, None] + torch.arange(block)
        if (starts < 0).any() or windows.max() + 1 >= n:
            return wrong(case, hint)
        if not (same(x, data[windows], 0) and same(y, data[windows + 1], 0)):
            return wrong(case, "each row of x is a window of the data and y the next one")
        if n - block > 1 and len(starts.unique()) == 1:
            return wrong(case, "draw a random start for each row")
    return all_passed(len(cases))


def same_shape(value: Any, shape: tuple) -> bool:
    return isinstance(value, torch.Tensor) and tuple(value.shape) == shape


# --- chapter 02 --------------------------------------------------------------------------------


@hidden("ex-02-counts")
def counts(count_bigrams: Callable) -> Verdict:
    hint = "size the table from vocab_size, and let repeated pairs add up"
    cases = [
        (torch.tensor([4, 4]), 5),
        (torch.tensor([2, 2, 2, 2]), 3),
        (torch.tensor([0, 9, 0]), 10),
        (torch.tensor([1]), 4),  # one token: no pair at all
        (torch.randint(7, (300,), generator=seeded(2)), 7),
    ]
    for data, vocab in cases:
        case = f"count_bigrams on a text of {len(data)} token(s), vocab_size {vocab}"
        want = torch.zeros(vocab, vocab)
        for a, b in zip(data[:-1].tolist(), data[1:].tolist(), strict=True):
            want[a, b] += 1
        if not same(attempt(case, hint, count_bigrams, data.clone(), vocab), want, 0):
            return wrong(case, hint)
    return all_passed(len(cases))


@hidden("ex-02-greedy")
def greedy_decoding(greedy: Callable, _model: Any) -> Verdict:  # cases bring their own models
    from helpers.model import BigramLanguageModel

    hint = (
        "each row of the batch gets its own best token at each step, appended after the "
        "whole prompt, n times (possibly none)"
    )
    for batch, length, n, vocab in ((1, 1, 0, 5), (3, 4, 6, 11), (2, 2, 1, 3)):
        case = f"greedy(model, idx, {n}) on a batch of {batch} prompt(s) of {length} token(s)"
        torch.manual_seed(vocab)
        model = BigramLanguageModel(vocab).eval()
        idx = torch.randint(vocab, (batch, length), generator=seeded(length))
        want = idx
        with torch.no_grad():
            for _ in range(n):  # a bigram's next token depends on the last one only
                best = model.token_embedding_table.weight[want[:, -1]].argmax(dim=-1)
                want = torch.cat([want, best[:, None]], dim=1)
            got = attempt(case, hint, greedy, model, idx.clone(), n)
        if not (same(got, want, 0) and got.dtype == torch.long):
            return wrong(case, hint)
    return all_passed(3)


# --- chapter 03 --------------------------------------------------------------------------------


@hidden("ex-03-cumsum")
def running_mean(average: Callable) -> Verdict:
    hint = "count the tokens along x's own time axis: a size from the notebook fits only its input"
    shapes = ((1, 1, 1), (1, 9, 2), (3, 1, 4), (4, 12, 3))
    for B, T, C in shapes:
        case = f"x of shape (B, T, C) = {(B, T, C)}"
        x = torch.randn(B, T, C, generator=seeded(T))
        want = torch.stack([x[:, : t + 1].mean(dim=1) for t in range(T)], dim=1)
        if not same(attempt(case, hint, average, x.clone()), want):
            return wrong(case, hint)
    return all_passed(len(shapes))


@hidden("ex-03-window")
def window(window_weights: Callable) -> Verdict:
    hint = "row t averages the positions from t - k + 1 to t that exist, and never the future"
    cases = ((1, 1), (1, 4), (7, 7), (9, 2), (12, 4))
    for T, k in cases:
        case = f"window_weights({T}, {k})"
        back = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # t - s
        band = ((back >= 0) & (back < k)).double()
        want = band / band.sum(dim=-1, keepdim=True)
        if not same(attempt(case, hint, window_weights, T, k), want, 1e-6):
            return wrong(case, hint)
    return all_passed(len(cases))


# --- chapter 04 --------------------------------------------------------------------------------


@hidden("ex-04-attention")
def attention(attend: Callable) -> Verdict:
    hint = (
        "take T and the head size from the inputs: a mask or a scale sized for the visible "
        "case fits only that case"
    )
    shapes = ((1, 1, 4), (3, 11, 16), (2, 1, 1), (1, 5, 64))  # (B, T, hs): T = 1, hs = 1 too
    for B, T, hs in shapes:
        g = seeded(T * hs)
        q, k, v = (torch.randn(B, T, hs, generator=g) for _ in range(3))
        for causal in (True, False):
            case = f"causal={causal} on (B, T, hs) = {(B, T, hs)}"
            want = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            if not same(attempt(case, hint, attend, q.clone(), k.clone(), v.clone(), causal), want):
                return wrong(case, hint)
    return all_passed(2 * len(shapes))


@hidden("ex-04-cross")
def cross(cross_attention: Callable, head: torch.nn.Module) -> Verdict:
    hint = (
        "take every size from x and memory; cross-attention has no mask, even when both have "
        "the same length"
    )
    head = copy.deepcopy(head)  # the learner's own head, with weights of its own
    g = seeded(4)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=g).to(p) * 0.3)
    n_embd = head.query.in_features
    device = next(head.parameters()).device
    shapes = ((1, 1, 1), (2, 1, 7), (3, 8, 2), (1, 6, 6))  # (B, T_x, T_m)
    for B, T_x, T_m in shapes:
        case = f"{T_x} query token(s) over {T_m} memory token(s), a batch of {B}"
        x = torch.randn(B, T_x, n_embd, generator=g).to(device)
        memory = torch.randn(B, T_m, n_embd, generator=g).to(device)
        with torch.no_grad():
            want = F.scaled_dot_product_attention(
                head.query(x), head.key(memory), head.value(memory)
            )
            got = attempt(case, hint, cross_attention, x.clone(), memory.clone(), head)
        if not same(got, want):
            return wrong(case, hint)
    return all_passed(len(shapes))


# --- chapter 05 --------------------------------------------------------------------------------


@hidden("ex-05-split")
def split(split_heads: Callable, merge_heads: Callable) -> Verdict:
    hint = "take every size from the tensor and n_head you are given"
    cases = ((1, 1, 6, 3), (2, 5, 12, 1), (2, 4, 6, 6), (3, 2, 20, 4))  # (B, T, C, n_head)
    for B, T, C, nh in cases:
        hs = C // nh
        case = f"split_heads on x of shape {(B, T, C)} with n_head = {nh}"
        x = torch.randn(B, T, C, generator=seeded(C))
        want = torch.stack([x[..., h * hs : (h + 1) * hs] for h in range(nh)], dim=1)
        if not same(attempt(case, hint, split_heads, x.clone(), nh), want, 0):
            return wrong(case, hint)
        case = f"merge_heads on heads of shape {(B, nh, T, hs)}"
        y = torch.randn(B, nh, T, hs, generator=seeded(T))
        merged = torch.cat([y[:, h] for h in range(nh)], dim=-1)  # (B, T, C)
        if not same(attempt(case, hint, merge_heads, y.clone()), merged, 0):
            return wrong(case, hint)
    return all_passed(2 * len(cases))


@hidden("ex-05-params")
def attention_parameters(attention_params: Callable) -> Verdict:
    hint = "count from n_embd and n_head alone, for any width"
    cases = ((1, 1), (12, 3), (10, 5), (2048, 16))
    for n_embd, n_head in cases:
        case = f"attention_params({n_embd}, {n_head})"
        c_attn = torch.nn.Linear(n_embd, 3 * n_embd, device="meta")  # shapes, no memory
        c_proj = torch.nn.Linear(n_embd, n_embd, device="meta")
        want = sum(p.numel() for p in [*c_attn.parameters(), *c_proj.parameters()])
        answer = attempt(case, hint, attention_params, n_embd, n_head)
        if as_count(answer) != want:
            return wrong(f"{case} gave {describe(answer)}", hint)
    return all_passed(len(cases))


@hidden("ex-05-mha")
def multi_head(layer_class: Callable) -> Verdict:
    from helpers.model import CausalSelfAttention, GPTConfig

    hint = "take B, T and C from x, and mask the T positions it has, however long the context"
    cases = ((8, 2, 4, 1, 1), (12, 12, 6, 2, 6), (20, 4, 32, 3, 3), (16, 1, 16, 1, 16))
    for n_embd, n_head, block_size, B, T in cases:
        case = (
            f"MyMultiHeadAttention({n_embd}, {n_head}, {block_size}) with known weights on "
            f"{B} sequence(s) of {T} token(s)"
        )
        torch.manual_seed(n_embd + T)
        config = GPTConfig(n_embd=n_embd, n_head=n_head, block_size=block_size)
        reference = CausalSelfAttention(config).eval()
        layer = attempt(case, hint, layer_class, n_embd, n_head, block_size)
        layer.load_state_dict(reference.state_dict(), strict=False)  # its own buffers may stay
        layer.eval()
        x = torch.randn(B, T, n_embd, generator=seeded(T))
        with torch.no_grad():
            got, want = attempt(case, hint, layer, x.clone()), reference(x)
        if not same(got, want):
            return wrong(case, hint)
    return all_passed(len(cases))


# --- chapter 06 --------------------------------------------------------------------------------


@hidden("ex-06-rmsnorm")
def rms(rms_norm: Callable) -> Verdict:
    hint = "normalise over the last dim, whatever the number of dims, with eps inside the root"
    g = seeded(6)
    zero_token = torch.randn(2, 3, 5, generator=g)
    zero_token[0, 1] = 0.0  # a token whose channels are all 0: its output is 0, never NaN
    cases = [
        (torch.randn(1, 1, 1, generator=g), 1e-5, "x of shape (1, 1, 1)"),
        (torch.randn(4, 8, generator=g) * 3 + 1, 1e-5, "a 2-D x"),
        (torch.randn(2, 3, 4, 8, generator=g) - 2, 1e-5, "a 4-D x"),
        (zero_token, 1e-5, "a token of zeros"),
        (torch.randn(2, 6, generator=g) * 0.1, 0.5, "eps = 0.5"),  # a large eps shows its place
    ]
    for x, eps, case in cases:
        weight = torch.randn(x.shape[-1], generator=g, dtype=x.dtype)
        want = F.rms_norm(x, (x.shape[-1],), weight, eps=eps)
        if not same(attempt(case, hint, rms_norm, x.clone(), weight.clone(), eps), want):
            return wrong(case, hint)
    return all_passed(len(cases))


@hidden("ex-06-dropout")
def dropout_cases(dropout: Callable) -> Verdict:
    hint = "drop each entry with probability p and scale the survivors by 1 / (1 - p), for any p"
    for p, shape, within in ((0.0, (3, 7), 0.0), (0.5, (4, 50, 60), 0.03), (0.9, (1000, 50), 0.01)):
        case = f"p = {p} on x of shape {shape}"
        x = torch.rand(shape, generator=seeded(7)) + 0.5  # no entry is 0 before dropout
        got = attempt(case, hint, dropout, x.clone(), p, seeded(8))
        if not same_shape(got, shape):
            return wrong(case, hint)
        kept = got != 0
        if abs((~kept).double().mean().item() - p) > within or not same(
            got[kept], x[kept] / (1 - p)
        ):
            return wrong(case, hint)
        again = attempt(case, hint, dropout, x.clone(), p, seeded(8))
        if not same(again, got, 0):
            return wrong(
                f"{case}, twice with generators of the same seed",
                "draw the random numbers with the generator you are given",
            )
    return all_passed(3)


@hidden("ex-06-block")
def block(block_class: Callable) -> Verdict:
    from helpers.model import Block, GPTConfig

    hint = "build every part from config, and take B, T and C from x"
    for n_embd, n_head, block_size, B, T in ((8, 1, 4, 1, 1), (12, 3, 16, 2, 5), (16, 16, 8, 1, 8)):
        case = (
            f"MyBlock with {n_head} head(s) of width {n_embd}, context {block_size}, with known "
            f"weights, on {B} sequence(s) of {T} token(s)"
        )
        config = GPTConfig(n_embd=n_embd, n_head=n_head, block_size=block_size, vocab_size=11)
        torch.manual_seed(n_embd)
        reference = Block(config).eval()
        with torch.no_grad():
            for p in reference.parameters():
                p.add_(0.1 * torch.randn_like(p))  # gains and biases away from 1 and 0
        mine = attempt(case, hint, block_class, config)
        mine.load_state_dict(reference.state_dict())
        mine.eval()
        x = 2 * torch.randn(B, T, n_embd, generator=seeded(T)) + 1
        with torch.no_grad():
            got, want = attempt(case, hint, mine, x.clone()), reference(x)
        if not same(got, want):
            return wrong(case, hint)
    return all_passed(3)


# --- chapter 07 --------------------------------------------------------------------------------


@hidden("ex-07-topk")
def top_k(my_top_k: Callable) -> Verdict:
    hint = "keep exactly the k largest logits of each row, for any k up to the vocabulary size"
    g = seeded(9)
    holes = torch.tensor([[float("-inf"), 1.0, 2.0, float("-inf"), 0.5]])  # filtered before
    cases = [
        (torch.randn(1, 3, generator=g), 3),  # k = the vocabulary size: every logit stays
        (torch.randn(3, 7, generator=g), 1),
        (torch.randn(4, 50, generator=g), 5),
        (holes, 2),
        (torch.randn(2, 4, generator=g), 9),  # k above the vocabulary size: every logit stays
    ]
    for logits, k in cases:
        case = f"k = {k} on {logits.shape[0]} row(s) of {logits.shape[1]} logits"
        keep = torch.zeros_like(logits, dtype=torch.bool)
        keep.scatter_(-1, torch.topk(logits, min(k, logits.shape[-1]), dim=-1).indices, True)
        want = logits.masked_fill(~keep, float("-inf"))
        if not same(attempt(case, hint, my_top_k, logits.clone(), k), want, 0):
            return wrong(case, hint)
    return all_passed(len(cases))


@hidden("ex-07-params")
def parameters(count_from_config: Callable, model: Any) -> Verdict:
    from helpers.model import GPT

    hint = "every term comes from the config: vocabulary, context, width and layers"
    configs = [
        replace(model.config, n_layer=1, n_head=1, n_embd=8, vocab_size=5, block_size=3),
        replace(model.config, n_layer=0),
        replace(model.config, vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768),
    ]
    for config in configs:
        case = (
            f"{config.n_layer} layer(s) of width {config.n_embd}, vocabulary "
            f"{config.vocab_size}, context {config.block_size}"
        )
        with torch.device("meta"):  # shapes without memory: GPT-2's size costs nothing
            want = sum(p.numel() for p in GPT(config).parameters())  # a tied weight once
        if as_count(attempt(case, hint, count_from_config, config)) != want:
            return wrong(case, hint)
    return all_passed(len(configs))


@hidden("ex-07-build")
def gpt_and_loop(my_gpt: Callable, my_train: Callable) -> Verdict:
    from helpers.model import GPT, GPTConfig
    from helpers.train import preset, train

    hint = "take every size from the config and the input: T may be shorter than the context"
    small = GPTConfig(vocab_size=7, block_size=5, n_layer=1, n_head=1, n_embd=8)
    wide = GPTConfig(vocab_size=11, block_size=9, n_layer=3, n_head=4, n_embd=16)
    for config, B, T in ((small, 1, 1), (small, 2, 5), (wide, 3, 3)):
        case = (
            f"MyGPT with {config.n_layer} layer(s) and {config.n_head} head(s), context "
            f"{config.block_size}, with known weights, on {B} sequence(s) of {T} token(s)"
        )
        torch.manual_seed(config.n_embd)
        reference = GPT(config).eval()
        model = attempt(case, hint, my_gpt, config)
        model.load_state_dict(reference.state_dict())
        model.eval()
        idx = torch.randint(config.vocab_size, (B, T), generator=seeded(T))
        targets = torch.randint(config.vocab_size, (B, T), generator=seeded(B))
        with torch.no_grad():
            logits, loss = attempt(case, hint, model, idx, targets)
            want_logits, want_loss = reference(idx, targets)
        if not (same(logits, want_logits, 1e-4) and same(loss, want_loss)):
            return wrong(case, hint)
    case = "my_train on another config: 5 steps, warmup 1, other rates, decay and clipping"
    hint = "read every setting from cfg: steps, warmup, rates, decay, clipping, batch size"
    tokens = torch.randint(small.vocab_size, (300,), generator=seeded(10))
    data = {"train": tokens[:250], "val": tokens[250:]}
    cfg = replace(
        preset("gpt", device="cpu"), model=small, batch_size=2, max_iters=5, warmup_iters=1,
        learning_rate=2e-2, min_lr=1e-3, weight_decay=0.3, grad_clip=0.2, eval_interval=5,
        eval_iters=1, time_budget=None,
    )  # fmt: skip
    torch.manual_seed(0)
    expected = GPT(small)
    mine = attempt(case, hint, my_gpt, small)
    mine.load_state_dict(expected.state_dict())
    mine.train()
    attempt(case, hint, my_train, mine, data, cfg)
    train(expected, data, cfg, progress=False)
    theirs = mine.state_dict()
    if not all(same(theirs[name], want) for name, want in expected.state_dict().items()):
        return wrong(case, hint)
    return all_passed(4)


# --- chapter 08 --------------------------------------------------------------------------------


@hidden("ex-08-masks")
def permissions(attention_permissions: Callable) -> Verdict:
    hint = (
        "take B and T from the mask; a key is seen when it is a real token (and not in the "
        "future, if causal), wherever the padding is"
    )
    masks = [
        torch.tensor([[1]]),
        torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]),  # left padding, all padding
        (torch.rand(3, 6, generator=seeded(11)) > 0.3).long(),
    ]
    for mask in masks:
        B, T = mask.shape
        for causal in (False, True):
            case = f"a padding mask of shape {(B, T)}, causal={causal}"
            want = torch.zeros(B, T, T, dtype=torch.bool)
            for b, i, j in np.ndindex(B, T, T):
                want[b, i, j] = bool(mask[b, j]) and (j <= i or not causal)
            got = attempt(case, hint, attention_permissions, mask.clone(), causal)
            if not (same(got, want, 0) and got.dtype == torch.bool):
                return wrong(case, hint)
    return all_passed(2 * len(masks))


@hidden("ex-08-mean-pool")
def mean_pooling(mean_pool: Callable) -> Verdict:
    hint = "average the real tokens wherever they are, each example over its own count"
    masks = [
        torch.tensor([[1]]),
        torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]]),  # padded on the left
        torch.tensor([[1, 0, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1]]),
    ]
    for mask in masks:
        B, T = mask.shape
        case = f"a mask of shape {(B, T)} with padding anywhere in a row"
        states = torch.randn(B, T, T + 2, generator=seeded(T))
        want = torch.stack([states[b, mask[b].bool()].mean(dim=0) for b in range(B)])
        noisy = states.masked_fill(~mask.bool()[..., None], -1e6)  # padding must not count
        if not same(attempt(case, hint, mean_pool, noisy, mask.clone()), want):
            return wrong(case, hint)
    return all_passed(len(masks))


@hidden("ex-08-f1")
def f1(my_f1: Callable) -> Verdict:
    hint = "count from the arrays themselves, whatever their length; F1 is 0 with no true positive"
    rng = np.random.default_rng(12)
    cases = [
        ([1], [1]),
        ([0], [0]),  # no positive anywhere: F1 is 0
        ([0, 0, 1], [1, 1, 0]),
        ([1, 1, 1, 1], [1, 0, 1, 0]),
        (rng.integers(0, 2, 1000), rng.integers(0, 2, 1000)),
    ]
    for labels, predictions in cases:
        labels, predictions = np.asarray(labels), np.asarray(predictions)
        tp = int(np.sum(labels & predictions))
        errors = int(np.sum(labels ^ predictions))  # false positives and false negatives
        want = 2 * tp / (2 * tp + errors) if tp else 0.0
        case = f"{len(labels)} prediction(s) with {tp} true positive(s)"
        got = as_number(attempt(case, hint, my_f1, labels.copy(), predictions.copy()))
        if got is None or abs(got - want) > 1e-9:
            return wrong(case, hint)
    return all_passed(len(cases))


# --- chapter 09 --------------------------------------------------------------------------------


@hidden("ex-09-stable-bt")
def stable_bt(stable_bt_loss: Callable) -> Verdict:
    hint = "the mean over any number of pairs, finite and exact for any margin, either way"
    cases = [
        (torch.tensor([3.0]), torch.tensor([-2.0])),  # one pair
        (torch.tensor([1e4, 0.0, 5.0]), torch.tensor([0.0, 1e4, 5.0])),  # margins 1e4, -1e4, 0
        (torch.tensor([88.5, 0.0, 89.5, 0.0]), torch.tensor([0.0, 88.5, 0.0, 89.5])),
        (
            20 * torch.randn(100, generator=seeded(13)),
            torch.zeros(100),
        ),
    ]
    for chosen, rejected in cases:
        margins = chosen - rejected
        case = f"{len(chosen)} pair(s) with margins up to {margins.abs().max().item():g}"
        want = F.softplus(-margins.double()).mean().item()  # -log sigma(d), averaged
        got = as_number(attempt(case, hint, stable_bt_loss, chosen.clone(), rejected.clone()))
        if got is None or not abs(got - want) <= 1e-5 * max(1.0, abs(want)):
            return wrong(case, hint)
    return all_passed(len(cases))


@hidden("ex-09-dpo-accuracy")
def dpo_accuracy(implicit_accuracy: Callable) -> Verdict:
    hint = "the share of pairs whose chosen reply's implicit reward is strictly higher"
    cases = [  # (policy_chosen, policy_rejected, ref_chosen, ref_rejected), what is special
        ((-1.0, -3.0, -2.0, -2.0), "one pair, ranked right"),
        ((-3.0, -1.0, -2.0, -2.0), "one pair, ranked wrong"),
        ((-2.0, -3.0, -1.0, -2.0), "one pair, a tie"),  # a tie is not ranked higher
    ]
    cases = [([torch.tensor([v]) for v in values], what) for values, what in cases]
    cases.append(([torch.randn(200, generator=seeded(14)) for _ in range(4)], "200 pairs"))
    for (pc, pr, rc, rr), case in cases:
        want = (((pc - rc) - (pr - rr)) > 0).double().mean().item()
        got = as_number(attempt(case, hint, implicit_accuracy, pc, pr, rc, rr))
        if got is None or abs(got - want) > 1e-6:
            return wrong(case, hint)
    return all_passed(len(cases))


# --- chapter 10 --------------------------------------------------------------------------------


@hidden("ex-10-formats")
def formats(survives: Callable) -> Verdict:
    hint = "store the value in the format and compare what comes back, for any format and sign"
    cases = [
        (1e-5, torch.float16),  # below fp16's normal range, a digit still kept
        (3e-8, torch.float16),
        (6e4, torch.float16),
        (7e4, torch.float16),
        (-1e5, torch.bfloat16),
        (-1e5, torch.float16),
        (1e-30, torch.bfloat16),
        (1e39, torch.float32),
        (1e-46, torch.float32),
        (-0.1, torch.float16),
    ]
    for value, dtype in cases:
        case = f"survives({value}, {dtype})"
        stored = torch.tensor(value).to(dtype).double().item()
        want = bool(np.isfinite(stored) and abs(stored - value) <= 0.1 * abs(value))
        if as_truth(attempt(case, hint, survives, value, dtype)) != want:
            return wrong(case, hint)
    return all_passed(len(cases))


@hidden("ex-10-accum")
def accumulation(accumulated_step: Callable) -> Verdict:
    from torch.nn.utils import parameters_to_vector

    from helpers.model import GPT, GPTConfig

    hint = "size the micro-batches from x and k; one step, cleared gradients, the mean loss back"
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=8)
    for B, T, k in ((6, 5, 3), (4, 8, 4)):  # micro-batches of 2, then of 1
        case = f"k = {k} on a batch of {B} sequences of {T} tokens, with SGD"
        x = torch.randint(11, (B, T), generator=seeded(B))
        y = torch.randint(11, (B, T), generator=seeded(T))
        torch.manual_seed(k)
        reference, learner = GPT(config), GPT(config)
        learner.load_state_dict(reference.state_dict())
        _, loss = reference(x, y)  # one step on the whole batch
        loss.backward()
        torch.optim.SGD(reference.parameters(), lr=0.5).step()
        optimizer = torch.optim.SGD(learner.parameters(), lr=0.5)
        got = as_number(attempt(case, hint, accumulated_step, learner, optimizer, x, y, k))
        stepped = parameters_to_vector(learner.parameters())
        cleared = all(p.grad is None or not p.grad.any() for p in learner.parameters())
        if not (same(stepped, parameters_to_vector(reference.parameters()), 1e-6) and cleared):
            return wrong(case, hint)
        if got is None or abs(got - loss.item()) > 1e-5:
            return wrong(case, hint)
    return all_passed(2)


# --- chapter 11 --------------------------------------------------------------------------------


@hidden("ex-11-repeat-kv")
def repeat_kv(my_repeat_kv: Callable) -> Verdict:
    hint = "take every size from k and groups; query head h reads key/value head h // groups"
    g = seeded(15)
    cases = [  # (keys (B, n_kv_head, T, hs), groups, what is special)
        (torch.randn(1, 1, 1, 1, generator=g), 4, "one key/value head for all"),
        (torch.randn(2, 2, 7, 3, generator=g), 2, "two groups"),
        (torch.randn(1, 4, 3, 8, generator=g), 1, "groups of one"),
        (torch.randn(2, 5, 3, 4, generator=g).transpose(1, 2), 2, "a transposed view"),
    ]
    for k, groups, special in cases:
        case = f"keys of shape {tuple(k.shape)}, groups = {groups} ({special})"
        want = k.repeat_interleave(groups, dim=1)
        if not same(attempt(case, hint, my_repeat_kv, k.clone(), groups), want, 0):
            return wrong(case, hint)
    return all_passed(len(cases))


@hidden("ex-11-kv-bytes")
def kv_bytes(kv_cache_bytes: Callable, config: Any) -> Verdict:
    from helpers.llama import kv_cache_bytes_per_token

    hint = "every factor comes from the config and the arguments"
    cases = [
        (replace(config, n_kv_head=1), 1000, 1),
        (config, 0, 2),
        (replace(config, n_layer=3, n_head=4, n_kv_head=2, n_embd=64), 7, 4),
    ]
    for c, n_tokens, size in cases:
        case = (
            f"{c.n_layer} layers, {c.n_kv_head} key/value head(s) of {c.n_embd // c.n_head}, "
            f"{n_tokens} tokens at {size} byte(s) a number"
        )
        want = kv_cache_bytes_per_token(c, size) * n_tokens
        if as_count(attempt(case, hint, kv_cache_bytes, c, n_tokens, size)) != want:
            return wrong(case, hint)
    return all_passed(len(cases))
