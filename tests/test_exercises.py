"""The exercise checks (helpers/exercises): each one is given five kinds of answer (right, wrong,
an unfinished stub that returns None, one that raises, one of the wrong type). Only the right one
gets a tick; none makes a check raise; every verdict is one line with the exercise's label and is
recorded for grading; and the hints of the RMSNorm, top-k and sliding-window checks do not give
their solutions away."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import exercises
from helpers.exercises import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11
from helpers.exercises.verdict import VERDICT_WIDTH
from helpers.model import GPT, GPTConfig


def crash(*args):
    raise RuntimeError("not written yet")


def stub(*args):
    """An unfinished exercise: `# your code here` and no return."""


class TinyBigram(nn.Module):
    """Chapter 02's model at its smallest: logits straight from an embedding table."""

    def __init__(self, vocab_size: int = 7):
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx, targets=None):
        return self.table(idx), None  # (B, T, vocab), no loss


class TinyHead(nn.Module):
    """Chapter 04's head: query, key and value projections without bias."""

    def __init__(self, n_embd: int = 12, head_size: int = 6):
        super().__init__()
        torch.manual_seed(0)
        self.query, self.key, self.value = (
            nn.Linear(n_embd, head_size, bias=False) for _ in range(3)
        )


BIGRAM, HEAD = TinyBigram(), TinyHead()
TINY_GPT = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8))


# --- right answers (the notebooks' solutions, written independently) ---------------------------


def n_params(config):
    return sum(p.numel() for p in GPT(config).parameters())  # what the learner writes


def make_pairs(block):
    return [(block[: t + 1], block[t + 1]) for t in range(len(block) - 1)]


def get_batch(data, block_size, batch_size):
    ix = torch.randint(len(data) - block_size, (batch_size,))
    return (
        torch.stack([data[i : i + block_size] for i in ix]),
        torch.stack([data[i + 1 : i + block_size + 1] for i in ix]),
    )


@torch.no_grad()
def greedy(model, idx, n):
    for _ in range(n):
        logits, _ = model(idx)
        idx = torch.cat([idx, logits[:, -1, :].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


def window_weights(T, k):
    band = torch.ones(T, T).tril() - torch.ones(T, T).tril(diagonal=-k)
    return F.softmax(torch.zeros(T, T).masked_fill(band == 0, float("-inf")), dim=-1)


def attention(q, k, v, causal):
    T = q.shape[1]
    wei = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if causal:
        wei = wei.masked_fill(torch.ones(T, T).tril() == 0, float("-inf"))
    return F.softmax(wei, dim=-1) @ v


def split_heads(x, n_head):
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(y):
    B, nh, T, hs = y.shape
    return y.transpose(1, 2).reshape(B, T, nh * hs)


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def dropout(x, p, generator):
    return x * (torch.rand(x.shape, generator=generator) >= p) / (1 - p)


def top_k(logits, k):
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def allowed(mask, causal):
    T = mask.shape[1]
    keys = mask.bool()[:, None, :].expand(-1, T, -1)  # (B, T, T)
    return keys & torch.ones(T, T, dtype=torch.bool).tril() if causal else keys


def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1)


def f1(labels, predictions):
    tp = int(((labels == 1) & (predictions == 1)).sum())
    fp = int(((labels == 0) & (predictions == 1)).sum())
    fn = int(((labels == 1) & (predictions == 0)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def stable_bt_loss(r_chosen, r_rejected):
    d = r_chosen - r_rejected
    return (torch.clamp(-d, min=0) + torch.log1p(torch.exp(-d.abs()))).mean()


def survives(value, dtype):
    stored = torch.tensor(value).to(dtype).float().item()
    return math.isfinite(stored) and abs(stored - value) <= 0.1 * abs(value)


# --- right answers to the exercises that build a large piece -----------------------------------


def count_bigrams(data, vocab_size):
    counts = torch.zeros(vocab_size, vocab_size)
    for a, b in zip(data[:-1].tolist(), data[1:].tolist(), strict=True):
        counts[a, b] += 1
    return counts


def accumulated_step(model, optimizer, x, y, k, divide=True, step_inside=False):
    losses = []
    for xs, ys in zip(x.chunk(k), y.chunk(k), strict=True):
        _, loss = model(xs, ys)
        (loss / k if divide else loss).backward()
        losses.append(loss.item())
        if step_inside:
            optimizer.step()
    optimizer.step()
    optimizer.zero_grad()
    return sum(losses) / k


class MultiHeadAttention(nn.Module):
    """Chapter 05's exercise: causal multi-head attention with GPT-2's c_attn and c_proj."""

    def __init__(self, n_embd, n_head, block_size, **mistake):
        super().__init__()
        self.c_attn, self.c_proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
        self.n_head, self.mistake = n_head, mistake

    def forward(self, x):
        return ch05._attention_variant(x, self.c_attn, self.c_proj, self.n_head, **self.mistake)


def attention_with(**mistake):
    return lambda n_embd, n_head, block_size: MultiHeadAttention(
        n_embd, n_head, block_size, **mistake
    )


class PreNormBlock(nn.Module):
    """Chapter 06's exercise: GPT-2's pre-norm block, or one of its known mistakes."""

    def __init__(self, config, kind="right"):
        from helpers.model import CausalSelfAttention, FeedForward

        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(config.n_embd), CausalSelfAttention(config)
        self.ln_2, self.mlp = nn.LayerNorm(config.n_embd), FeedForward(config)
        self.kind = kind

    def forward(self, x):
        if self.kind == "right":
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))
        return ch06._block_variant(self, x, self.kind)


def block_of(kind):
    return lambda config: PreNormBlock(config, kind)


def helpers_loop(model, data, cfg):
    from helpers.train import train

    train(model, data, cfg, progress=False)


def loop_with(**mistake):
    return lambda model, data, cfg: ch07._reference_loop(model, data, cfg, **mistake)


class GPTWithoutFinalNorm(GPT):
    def __init__(self, config):
        super().__init__(config)
        self.transformer.ln_f = nn.Identity()


class LogitsOnlyGPT(GPT):
    def forward(self, idx, targets=None):
        return super().forward(idx, targets)[0]


def build_check(answer):
    """Chapter 07's check takes a model class and a loop; a stub or crash stands for both."""
    if isinstance(answer, tuple):
        return ch07.check_gpt_and_loop(*answer)
    return ch07.check_gpt_and_loop(answer, answer)


def repeat_kv(k, groups):
    return k.repeat_interleave(groups, dim=1)


def kv_bytes(config, n_tokens, bytes_per_number):
    head_size = config.n_embd // config.n_head
    return 2 * config.n_layer * config.n_kv_head * head_size * n_tokens * bytes_per_number


def llama_config():
    from helpers.llama import LlamaConfig

    return LlamaConfig(vocab_size=64, n_layer=2, n_embd=32, n_head=4, n_kv_head=2)


# --- the cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    run: Callable[[Any], None]  # calls the check with an answer
    right: Any
    wrong: list  # plausible mistakes
    wrong_type: list  # answers that return the wrong kind of thing
    stub: Any = stub
    crash: Any = crash
    hint_must_not_contain: list[str] = field(default_factory=list)


CASES = {
    "ex-01-pairs": Case(
        ch01.check_context_target_pairs,
        make_pairs,
        [
            lambda b: [(b[:t], b[t]) for t in range(len(b))],
            lambda b: [(b[: t + 1], b[t]) for t in range(len(b) - 1)],
        ],
        [lambda b: "pairs", lambda b: [1, 2, 3], lambda b: torch.tensor(b)],
    ),
    "ex-01-batch": Case(
        ch01.check_get_batch,
        get_batch,
        [
            lambda d, bs, n: (torch.zeros(1), torch.zeros(1)),
            lambda d, bs, n: (d[:bs].repeat(n, 1), d[:bs].repeat(n, 1)),
        ],
        [
            lambda d, bs, n: [d[:bs]] * n,
            lambda d, bs, n: tuple(t.float() for t in get_batch(d, bs, n)),
            lambda d, bs, n: get_batch(d, bs, n) + (None,),
        ],
    ),
    "ex-02-greedy": Case(
        lambda fn: ch02.check_greedy(fn, BIGRAM),
        greedy,
        [
            lambda model, idx, n: idx,
            lambda model, idx, n: torch.cat([idx, idx.new_zeros(1, n)], dim=1),
        ],
        [
            lambda model, idx, n: greedy(model, idx, n).float(),
            lambda model, idx, n: greedy(model, idx, n)[0].tolist(),
            lambda model, idx, n: "The",
        ],
    ),
    "ex-03-cumsum": Case(
        ch03.check_causal_average,
        lambda x: x.cumsum(1) / torch.arange(1, x.shape[1] + 1).view(-1, 1),
        [lambda x: x, lambda x: x.cumsum(1), lambda x: x.mean(1, keepdim=True).expand_as(x)],
        [lambda x: x.long(), lambda x: x.tolist(), lambda x: x.mean(1)],
    ),
    "ex-03-window": Case(
        ch03.check_window_weights,
        window_weights,
        [
            lambda T, k: torch.zeros(T, T),
            lambda T, k: window_weights(T, T),  # the causal average: no window
            lambda T, k: torch.full((T, T), 1 / T),
            lambda T, k: window_weights(T, k + 1),
        ],
        [
            lambda T, k: np.zeros((T, T)),
            lambda T, k: window_weights(T, k).tolist(),
            lambda T, k: window_weights(T, k) > 0,
        ],
        hint_must_not_contain=["tril(", "diagonal=-k", "tril(-k", "masked_fill", "band"],
    ),
    "ex-04-attention": Case(
        ch04.check_attention,
        attention,
        [
            lambda q, k, v, c: v,
            lambda q, k, v, c: attention(q, k, v, False),
            lambda q, k, v, c: attention(q * 8**0.5, k, v, c),
        ],
        [
            lambda q, k, v, c: (attention(q, k, v, c), None),
            lambda q, k, v, c: attention(q, k, v, c).long(),
            lambda q, k, v, c: attention(q, k, v, c).numpy(),
        ],
    ),
    "ex-04-cross": Case(
        lambda fn: ch04.check_cross_attention(fn, HEAD),
        lambda x, m, h: attention(h.query(x), h.key(m), h.value(m), False),
        [lambda x, m, h: x, lambda x, m, h: attention(h.query(x), h.key(x), h.value(x), False)],
        [
            lambda x, m, h: attention(h.query(x), h.key(m), h.value(m), False).int(),
            lambda x, m, h: [x, m],
        ],
    ),
    "ex-05-split": Case(
        lambda fns: ch05.check_split_heads(*fns),
        (split_heads, merge_heads),
        [
            (lambda x, n: x, lambda y: y),
            (lambda x, n: x.view(x.shape[0], n, x.shape[1], -1), lambda y: y),
            (split_heads, lambda y: y.reshape(y.shape[0], y.shape[2], -1)),
        ],
        [
            (lambda x, n: x.tolist(), merge_heads),
            (split_heads, lambda y: y.shape),
            (lambda x, n: split_heads(x, n).long(), merge_heads),
        ],
        stub=(stub, stub),
        crash=(crash, crash),
    ),
    "ex-05-params": Case(
        ch05.check_attention_params,
        lambda c, n: 4 * c * c + 4 * c,
        [lambda c, n: 0, lambda c, n: 4 * c * c, lambda c, n: 4 * c * c // n],
        [
            lambda c, n: str(4 * c * c + 4 * c),
            lambda c, n: [4 * c * c, 4 * c],
            lambda c, n: 4 * c * c + 4 * c + 0.5,
        ],
    ),
    "ex-06-rmsnorm": Case(
        ch06.check_rms_norm,
        rms_norm,
        [
            lambda x, w, e: x,
            lambda x, w, e: F.layer_norm(x, (16,), w, eps=e),
            lambda x, w, e: rms_norm(x, torch.ones_like(w), e),
            lambda x, w, e: x / x.pow(2).mean(dim=-1, keepdim=True).sqrt(),
        ],
        [
            lambda x, w, e: rms_norm(x, w, e).numpy(),
            lambda x, w, e: rms_norm(x, w, e).long(),
            lambda x, w, e: rms_norm(x, w, e)[0],
        ],
        hint_must_not_contain=[
            "rsqrt",
            "pow(2)",
            "** 2",
            "mean(-1",
            "mean(dim=-1",
            "keepdim",
            "x *",
            "x /",
        ],
    ),
    "ex-06-dropout": Case(
        ch06.check_dropout,
        dropout,
        [
            lambda x, p, g: x,
            lambda x, p, g: x * (torch.rand(x.shape, generator=g) >= p),
            lambda x, p, g: x * (torch.rand(x.shape, generator=g) < p) / p,
        ],
        [
            lambda x, p, g: torch.rand(x.shape, generator=g) >= p,
            lambda x, p, g: dropout(x, p, g).tolist(),
            lambda x, p, g: dropout(x, p, g).long(),
        ],
    ),
    "ex-07-topk": Case(
        ch07.check_top_k,
        top_k,
        [
            lambda lg, k: lg,
            lambda lg, k: lg.masked_fill(top_k(lg, k) > float("-inf"), float("-inf")),
            lambda lg, k: top_k(lg, k + 1),
            lambda lg, k: top_k(lg, k).clamp(min=-1e9),
            lambda lg, k: torch.where(top_k(lg, k).isinf(), top_k(lg, k), 0.0),
            lambda lg, k: top_k(lg.flip(-1), k),
        ],
        [
            lambda lg, k: lg.topk(k).indices,
            lambda lg, k: lg.topk(k),
            lambda lg, k: top_k(lg, k).tolist(),
        ],
        hint_must_not_contain=[
            "topk(",
            ".values",
            "[:, -1:]",
            "masked_fill",
            "logits <",
            "kth",
            "sort(",
        ],
    ),
    "ex-07-params": Case(
        lambda fn: ch07.check_parameter_count(fn, TINY_GPT),
        n_params,
        [
            lambda config: 0,
            lambda config: n_params(config) + config.vocab_size * config.n_embd,
            lambda config: 12 * config.n_layer * config.n_embd**2,
        ],
        [lambda config: str(n_params(config)), lambda config: {"total": 1}, lambda config: config],
    ),
    "ex-08-masks": Case(
        ch08.check_attention_permissions,
        allowed,
        [
            lambda mask, causal: torch.ones(2, 4, 4, dtype=torch.bool),
            lambda mask, causal: allowed(mask, False),
            lambda mask, causal: allowed(mask, not causal),
        ],
        [
            lambda mask, causal: allowed(mask, causal).float(),
            lambda mask, causal: allowed(mask, causal).tolist(),
            lambda mask, causal: allowed(mask, causal)[0],
        ],
    ),
    "ex-08-mean-pool": Case(
        ch08.check_mean_pooling,
        mean_pool,
        [
            lambda hidden, mask: hidden[:, 0],
            lambda hidden, mask: hidden.mean(1),
            lambda hidden, mask: (hidden * mask[..., None]).sum(1) / 5,
        ],
        [
            lambda hidden, mask: (mean_pool(hidden, mask), mask),
            lambda hidden, mask: mean_pool(hidden, mask).numpy(),
            lambda hidden, mask: mean_pool(hidden, mask).int(),
        ],
    ),
    "ex-08-f1": Case(
        ch08.check_f1,
        f1,
        [
            lambda labels, predictions: 0.0,
            lambda labels, predictions: float((labels == predictions).mean()),
        ],
        [
            lambda labels, predictions: f"{f1(labels, predictions)}",
            lambda labels, predictions: np.array([f1(labels, predictions)] * 2),
            lambda labels, predictions: f1(labels, predictions) > 0,
        ],
    ),
    "ex-09-stable-bt": Case(
        ch09.check_stable_bt_loss,
        stable_bt_loss,
        [
            lambda c, r: -torch.log(torch.sigmoid(c - r)).mean(),
            lambda c, r: F.softplus(c - r).mean(),
            lambda c, r: F.softplus(r - c).sum(),
        ],
        [
            lambda c, r: stable_bt_loss(c, r).item(),
            lambda c, r: F.softplus(r - c),
            lambda c, r: "loss",
        ],
    ),
    "ex-09-dpo-accuracy": Case(
        ch09.check_implicit_accuracy,
        lambda pc, pr, rc, rr: ((pc - rc) - (pr - rr) > 0).float().mean(),
        [lambda pc, pr, rc, rr: 0.5, lambda pc, pr, rc, rr: (pc > pr).float().mean()],
        [
            lambda pc, pr, rc, rr: ((pc - rc) - (pr - rr) > 0).float(),
            lambda pc, pr, rc, rr: "75%",
            lambda pc, pr, rc, rr: ((pc - rc) - (pr - rr) > 0).all(),
        ],
    ),
    "ex-10-formats": Case(
        ch10.check_survives,
        survives,
        [lambda value, dtype: True, lambda value, dtype: dtype == torch.bfloat16],
        [
            lambda value, dtype: str(survives(value, dtype)),
            lambda value, dtype: torch.tensor(value).to(dtype),
            lambda value, dtype: [survives(value, dtype)],
        ],
    ),
    "ex-02-counts": Case(
        ch02.check_count_bigrams,
        count_bigrams,
        [
            lambda d, V: count_bigrams(d, V).T,
            lambda d, V: count_bigrams(torch.cat([d, d[:1]]), V),
            lambda d, V: torch.ones(V, V),
        ],
        [lambda d, V: count_bigrams(d, V).tolist(), lambda d, V: count_bigrams(d, V)[0]],
    ),
    "ex-05-mha": Case(
        ch05.check_multi_head_attention,
        attention_with(),
        [
            attention_with(causal=False),
            attention_with(scale_by="embd"),
            attention_with(split="tokens"),
            lambda n_embd, n_head, block_size: nn.Identity(),
        ],
        [
            lambda *a: "attention",
            lambda n_embd, n_head, block_size: nn.Linear(n_embd, n_embd),
        ],
    ),
    "ex-06-block": Case(
        ch06.check_pre_norm_block,
        block_of("right"),
        [block_of("post-norm"), block_of("no residual"), block_of("ln_1 twice")],
        [lambda config: "block", lambda config: nn.LayerNorm(config.n_embd)],
    ),
    "ex-07-build": Case(
        build_check,
        (GPT, helpers_loop),
        [
            (GPT, loop_with(default_betas=True)),
            (GPT, loop_with(no_clip=True)),
            (GPT, lambda model, data, cfg: None),
            (GPTWithoutFinalNorm, helpers_loop),
        ],
        [(lambda config: "gpt", helpers_loop), (LogitsOnlyGPT, helpers_loop)],
    ),
    "ex-10-accum": Case(
        ch10.check_accumulated_step,
        accumulated_step,
        [
            lambda *a: accumulated_step(*a, divide=False),
            lambda *a: accumulated_step(*a, step_inside=True),
        ],
        [lambda *a: [accumulated_step(*a)], lambda *a: "loss"],
    ),
    "ex-11-repeat-kv": Case(
        ch11.check_repeat_kv,
        repeat_kv,
        [lambda k, g: k.repeat(1, g, 1, 1), lambda k, g: torch.randn_like(repeat_kv(k, g))],
        [lambda k, g: repeat_kv(k, g).tolist(), lambda k, g: k],
    ),
    "ex-11-kv-bytes": Case(
        lambda fn: ch11.check_kv_cache_bytes(fn, llama_config()),
        kv_bytes,
        [lambda c, n, b: kv_bytes(c, n, b) // 2, lambda c, n, b: kv_bytes(c, n, b) * 2],
        [lambda c, n, b: f"{kv_bytes(c, n, b)} bytes", lambda c, n, b: float("nan")],
    ),
}


def answers(case: Case):
    """Every answer of a case, each with the kind it is."""
    yield "right", case.right
    yield from (("wrong", a) for a in case.wrong)
    yield "stub", case.stub
    yield "raises", case.crash
    yield from (("wrong type", a) for a in case.wrong_type)


def test_every_check_has_a_case_and_labels_follow_the_chapters():
    checks = exercises.all_checks()
    assert sorted(checks) == sorted(CASES)
    for label, check in checks.items():
        chapter = label.split("-")[1]
        assert check.label == label and check.__module__ == f"helpers.exercises.ch{chapter}"


@pytest.mark.parametrize("label", list(CASES))
def test_only_the_right_answer_gets_a_tick_and_no_answer_makes_a_check_raise(label, capsys):
    case = CASES[label]
    for kind, answer in answers(case):
        returned = case.run(answer)  # must not raise
        lines = capsys.readouterr().out.splitlines()
        assert returned is None, "a check returns nothing: a notebook cell shows only its verdict"
        # One verdict: a first line, then indented continuation lines that fit the book's page.
        assert all(line.startswith("    ") for line in lines[1:]), (kind, lines)
        too_long = [ln for ln in lines if len(ln) > VERDICT_WIDTH and " " in ln.strip()]
        assert not too_long, (kind, too_long)
        verdict = " ".join(line.strip() for line in lines)
        mark = "✅" if kind == "right" else "❌"
        assert lines[0].startswith(f"{mark} {label}: "), (kind, lines[0])
        assert exercises.results()[label] == (kind == "right")
        assert exercises.verdicts_in("\n".join(lines)) == {label: kind == "right"}
        if kind == "stub":
            assert "None" in verdict
        if kind == "raises":
            assert "raised RuntimeError: not written yet" in verdict
        for code in case.hint_must_not_contain:
            assert code not in verdict, f"{label}: a {kind} answer's verdict gives away {code!r}"


def test_a_grader_collects_verdicts_by_label_the_last_one_winning(capsys):
    exercises.clear_results()
    ch11.check_repeat_kv(lambda k, groups: k)
    ch11.check_repeat_kv(repeat_kv)
    ch10.check_survives(stub)
    assert exercises.results() == {"ex-11-repeat-kv": True, "ex-10-formats": False}
    assert exercises.verdicts_in(capsys.readouterr().out) == exercises.results()
