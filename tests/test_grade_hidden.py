"""The hidden cases (helpers/grade_hidden.py) pass every right answer and fail answers fitted to
the visible check. Right: the course's own solution of every exercise, read from its notebook,
and a few written another way. Fitted: answers that pass the visible check but hard-code its
shapes or miss an edge case. Like helpers/grade_hidden.py, this file stays out of the student
edition."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import exercises, grade_hidden
from helpers.data import get_batch
from helpers.exercises import ch01, ch03, ch04, ch05, ch06, ch07, ch08, ch10
from helpers.exercises.verdict import results
from helpers.grade_hidden import CASES
from helpers.llama import LlamaConfig
from helpers.model import GPT, BigramLanguageModel, CausalSelfAttention, FeedForward, GPTConfig
from helpers.model import Head as SelfAttentionHead

ROOT = Path(__file__).resolve().parents[1]
# What the chapters' solution cells find already defined when they run.
CONTEXT = dict(
    torch=torch, nn=nn, F=F, math=math, np=np, get_batch=get_batch,
    CausalSelfAttention=CausalSelfAttention, FeedForward=FeedForward,
    model=GPT(GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)),
    head=SelfAttentionHead(16, 8, block_size=8),
    smol=SimpleNamespace(config=LlamaConfig(n_layer=30, n_head=9, n_kv_head=3, n_embd=576)),
)  # fmt: skip


def solutions() -> dict[str, tuple]:
    """Each checked exercise's solution, as the arguments its notebook gives the check: the
    solution cell's code up to the check's call, run in CONTEXT."""
    checks = {check.__name__: label for label, check in exercises.all_checks().items()}
    found = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if "solution" not in cell.metadata.get("tags", []) or cell.cell_type != "code":
                continue
            body = ast.parse(cell.source).body
            for at, statement in enumerate(body):
                call = getattr(statement, "value", None)
                name = getattr(getattr(call, "func", None), "attr", None)
                if isinstance(call, ast.Call) and name in checks:
                    namespace = dict(CONTEXT)
                    exec(compile(ast.Module(body[:at], []), path.name, "exec"), namespace)
                    found[checks[name]] = tuple(eval(ast.unparse(a), namespace) for a in call.args)
                    break
    return found


SOLUTIONS = solutions()


def verdict(label: str, *answers):
    return grade_hidden.verdict(label, lambda: answers)


def test_every_checked_exercise_has_hidden_cases_and_a_solution_in_its_notebook():
    assert set(CASES) == set(exercises.all_checks()) == set(SOLUTIONS)


@pytest.mark.parametrize("label", sorted(CASES))
def test_the_course_solution_passes_its_hidden_cases(label):
    result = verdict(label, *SOLUTIONS[label])
    assert result.ok, result


def test_the_hidden_cases_leave_the_random_numbers_as_they_were():
    torch.manual_seed(5)
    want = torch.rand(3)
    torch.manual_seed(5)
    assert verdict("ex-01-batch", *SOLUTIONS["ex-01-batch"]).ok  # draws with torch.randint
    assert torch.equal(torch.rand(3), want)


# --- right answers written another way ----------------------------------------------------------


def attention_by_einsum(q, k, v, causal):
    scores = torch.einsum("btd,bsd->bts", q, k) / math.sqrt(q.size(-1))
    if causal:
        future = torch.triu(torch.ones(q.size(1), k.size(1), dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, -math.inf)
    weights = (scores - scores.amax(-1, keepdim=True)).exp()
    return (weights / weights.sum(-1, keepdim=True)) @ v


def top_k_by_sorting(logits, k):
    order = logits.argsort(dim=-1, descending=True)
    dropped = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order[:, k:], True)
    return logits.masked_fill(dropped, float("-inf"))


def mean_pool_by_loops(hidden, mask):
    return torch.stack([hidden[b][mask[b] == 1].mean(0) for b in range(len(hidden))])


def survives_by_finfo(value, dtype):
    stored = torch.tensor([value], dtype=torch.float64).to(dtype).item()
    return math.isfinite(stored) and math.isclose(stored, value, rel_tol=0.1)


@pytest.mark.parametrize(
    "label, answer",
    [
        ("ex-04-attention", attention_by_einsum),
        ("ex-07-topk", top_k_by_sorting),
        ("ex-08-mean-pool", mean_pool_by_loops),
        ("ex-10-formats", survives_by_finfo),
    ],
)
def test_a_right_answer_written_another_way_passes(label, answer):
    result = verdict(label, answer)
    assert result.ok, result


# --- answers fitted to the visible check ---------------------------------------------------------


def attention_masked_for_six(q, k, v, causal):
    wei = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if causal:
        wei = wei.masked_fill(torch.ones(6, 6).tril() == 0, float("-inf"))  # the visible T
    return F.softmax(wei, dim=-1) @ v


def top_k_past_the_kth(logits, k):
    kth = logits.sort(dim=-1, descending=True).values[:, k]  # the (k+1)-th: none at k = vocab
    return logits.masked_fill(logits <= kth[:, None], float("-inf"))


def average_of_seven(x):
    return x.cumsum(dim=1) / torch.arange(1, 8).view(7, 1)


def dropout_without_the_generator(x, p, generator):
    return x * (torch.rand(x.shape) >= p) / (1 - p)


def mean_pool_of_the_first_tokens(hidden, mask):  # right only for padding on the right
    return torch.stack([hidden[b, : int(mask[b].sum())].mean(0) for b in range(len(hidden))])


def permissions_by_length(mask, causal):  # the same mistake for who may attend to whom
    B, T = mask.shape
    real = torch.arange(T)[None, :] < mask.sum(dim=1, keepdim=True)  # (B, T)
    allowed = real[:, None, :].expand(B, T, T)
    return allowed & torch.ones(T, T, dtype=torch.bool).tril() if causal else allowed


def split_in_four(x, n_head):
    B, T, C = x.shape
    return x.view(B, T, 4, C // 4).transpose(1, 2)


def survives_for_two_formats(value, dtype):
    return 1e-6 < abs(value) < 65504 if dtype == torch.float16 else True


def pairs_of_eight(block):
    return [(block[: t + 1], block[t + 1]) for t in range(8)]  # the visible block's 8


FITTED = [
    ("ex-04-attention", ch04.check_attention, (attention_masked_for_six,), "(1, 1, 4)"),
    ("ex-07-topk", ch07.check_top_k, (top_k_past_the_kth,), "k = 3 on 1 row(s) of 3"),
    ("ex-03-cumsum", ch03.check_causal_average, (average_of_seven,), "(1, 1, 1)"),
    ("ex-06-dropout", ch06.check_dropout, (dropout_without_the_generator,), "same seed"),
    ("ex-08-mean-pool", ch08.check_mean_pooling, (mean_pool_of_the_first_tokens,), "(2, 4)"),
    ("ex-08-masks", ch08.check_attention_permissions, (permissions_by_length,), "(3, 4)"),
    ("ex-05-split", ch05.check_split_heads, (split_in_four, SOLUTIONS["ex-05-split"][1]), "= 3"),
    ("ex-10-formats", ch10.check_survives, (survives_for_two_formats,), "1e+39"),
    ("ex-01-pairs", ch01.check_context_target_pairs, (pairs_of_eight,), "2 tokens"),
]


@pytest.mark.parametrize("label, check, answers, case", FITTED, ids=[f[0] for f in FITTED])
def test_an_answer_fitted_to_the_visible_check_fails_a_hidden_case(label, check, answers, case):
    check(*answers)
    assert results()[label], "the visible check passes it"
    result = verdict(label, *answers)
    assert not result.ok and result.hint and case in result.what, result


def test_a_greedy_decoder_that_ignores_the_batch_fails():
    def first_row_only(model, idx, n):
        for _ in range(n):
            logits, _ = model(idx)
            idx = torch.cat([idx, logits[:1, -1].argmax(-1).expand(len(idx), 1)], dim=1)
        return idx

    result = verdict("ex-02-greedy", first_row_only, BigramLanguageModel(5))
    assert not result.ok and "batch of 3" in result.what
