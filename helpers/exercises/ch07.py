"""Chapter 07 (the full GPT): top-k by hand, the parameter count from the config, and the GPT
with its training loop assembled from memory."""

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
    from dataclasses import replace

    from helpers.model import GPT as HelpersGPT

    cases = [(model.config, count_parameters(model))]  # a tied weight is counted once
    for shape in (dict(n_layer=3, n_head=2, n_embd=24), dict(vocab_size=50, block_size=20)):
        config = replace(model.config, **shape)
        cases.append((config, count_parameters(HelpersGPT(config))))
    for config, want in cases:
        answer = call(n_params, config)
        got = as_count(answer)
        if got is None:
            return failed(f"n_params returned {describe(answer)}, not a whole number")
        if got != want:
            break
    else:
        return passed(f"parameter count from the config = {cases[0][1]:,}")
    if got == want + config.vocab_size * config.n_embd:
        hint = "lm_head shares wte's weights: count them once"
    else:
        hint = (
            "count each Linear as in × out weights plus out biases and each LayerNorm as a "
            "gain and a bias; a block holds two LayerNorms, attention (c_attn, c_proj) and "
            "the MLP (c_fc, c_proj); add wte, wpe and ln_f"
        )
    which = (
        "" if config is model.config else f" for {config.n_layer} layers of width {config.n_embd}"
    )
    return failed(f"n_params(config) gave {got:,}{which}, the model has {want:,}", hint)


# ---------------------------------------------------------------------------------------------
# Exercise 7.4: the GPT and its training loop, from memory
# ---------------------------------------------------------------------------------------------

_BUILD_CONFIG = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)
_NAMES_HINT = (
    "name the parts as the chapter does: transformer.wte, transformer.wpe, transformer.h.0.ln_1, "
    ".attn.c_attn, .attn.c_proj, .ln_2, .mlp.c_fc, .mlp.c_proj, transformer.ln_f and lm_head "
    "(tied to wte)"
)


def _build_setup() -> tuple[Any, Any, dict]:
    """A tiny GPT config, the helpers' model with known weights, and a few hundred tokens."""
    from dataclasses import replace

    from helpers.model import GPT as HelpersGPT
    from helpers.model import GPTConfig
    from helpers.train import preset

    config = GPTConfig(**_BUILD_CONFIG)
    torch.manual_seed(7)
    reference = HelpersGPT(config).eval()
    tokens = torch.randint(0, config.vocab_size, (600,), generator=torch.Generator().manual_seed(3))
    data = {"train": tokens[:500], "val": tokens[500:]}
    cfg = replace(
        preset("gpt", device="cpu"),
        model=config,
        batch_size=4,
        max_iters=12,
        warmup_iters=3,
        learning_rate=3e-2,
        min_lr=3e-3,
        weight_decay=0.1,
        grad_clip=0.5,
        eval_interval=6,
        eval_iters=1,
        time_budget=None,
    )  # the CPU preset trains in float32, uncompiled
    return reference, cfg, data


def _load_known_weights(model: Any, reference: torch.nn.Module) -> str | None:
    """Copy the helpers' weights into the learner's model; a message when they do not fit."""
    try:
        mine = dict(model.state_dict())
    except Exception:
        return "MyGPT(config) is not an nn.Module (no state_dict)"
    theirs = reference.state_dict()
    missing = sorted(set(theirs) - set(mine))
    unexpected = sorted(set(mine) - set(theirs))
    if missing or unexpected:
        first = (missing or unexpected)[0]
        kind = "has no parameter" if missing else "has a parameter the GPT does not have:"
        return f"your GPT {kind} {first} ({len(missing)} missing, {len(unexpected)} extra)"
    wrong = [k for k in theirs if tuple(mine[k].shape) != tuple(theirs[k].shape)]
    if wrong:
        k = wrong[0]
        return f"{k} has shape {tuple(mine[k].shape)}, the GPT's is {tuple(theirs[k].shape)}"
    try:
        model.load_state_dict(theirs)
    except Exception as err:
        return f"loading the known weights failed: {type(err).__name__}"
    return None


def _reference_loop(model: torch.nn.Module, data: dict, cfg: Any, **mistake: Any) -> None:
    """The chapter's loop with one deliberate mistake, to name a learner's (not for teaching)."""
    from helpers.data import get_batch
    from helpers.train import learning_rate

    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    wd = cfg.weight_decay
    groups = (
        [{"params": decay + rest, "weight_decay": wd}]
        if mistake.get("decay_all")
        else [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]
    )
    betas = (0.9, 0.999) if mistake.get("default_betas") else (0.9, 0.99)
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=betas)
    g = torch.Generator().manual_seed(1337)
    for step in range(cfg.max_iters):
        lr = cfg.learning_rate if mistake.get("constant_lr") else learning_rate(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(data["train"], cfg.block_size, cfg.batch_size, generator=g)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not mistake.get("no_clip"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()


_MISTAKES = {
    "default_betas": "Adam's betas here are (0.9, 0.99), not PyTorch's default (0.9, 0.999)",
    "decay_all": "only 2-D tensors (matrices, embeddings) decay; biases and LayerNorm gains "
    "go in a group with weight_decay 0",
    "constant_lr": "set every group's learning rate from the warmup + cosine schedule at each step",
    "no_clip": "clip the gradient norm at cfg.grad_clip between backward() and step()",
}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.allclose(sa[k].float(), sb[k].float(), atol=1e-5, rtol=1e-4) for k in sb)


@exercise(
    "ex-07-build",
    expects="MyGPT(config): an nn.Module with the GPT's parameter names whose forward returns "
    "(logits, loss); my_train(model, data, cfg) trains it in place",
)
def check_gpt_and_loop(my_gpt: Callable[..., Any], my_train: Callable[..., Any]) -> Verdict:
    """``my_gpt(config)`` builds the GPT; with the helpers' weights loaded it must give the same
    logits and loss. ``my_train(model, data, cfg)`` trains it for ``cfg.max_iters`` steps; from
    the same start it must reach the weights ``helpers.train.train`` reaches."""
    import copy

    from helpers.train import train

    reference, cfg, data = _build_setup()
    model = call(my_gpt, cfg.model)
    if not isinstance(model, torch.nn.Module):
        return failed(f"MyGPT(config) returned {describe(model)}, not an nn.Module")
    problem = _load_known_weights(model, reference)
    if problem:
        return failed(problem, _NAMES_HINT)
    model.eval()
    idx = torch.randint(0, cfg.model.vocab_size, (3, cfg.model.block_size))
    targets = torch.roll(idx, -1, dims=1)
    with torch.no_grad():
        out = call(model, idx, targets)
        want_logits, want_loss = reference(idx, targets)
    if not isinstance(out, tuple) or len(out) != 2:
        return failed(f"MyGPT's forward returned {describe(out)}: return (logits, loss)")
    logits, loss = out
    if not isinstance(logits, torch.Tensor) or logits.shape != want_logits.shape:
        return failed(
            f"logits of shape {tuple(want_logits.shape)} (B, T, vocab), got {shape_of(logits)}"
        )
    if not torch.allclose(logits, want_logits, atol=1e-4):
        early = idx.clone()
        early[:, -1] = (early[:, -1] + 1) % cfg.model.vocab_size  # change the last token only
        with torch.no_grad():
            changed = call(model, early)[0]
        if not torch.allclose(changed[:, :-1], logits[:, :-1], atol=1e-5):
            hint = "the last token changed the logits of earlier positions: mask the future"
        else:
            hint = (
                "with the GPT's weights your logits differ: check pre-norm (LayerNorm before "
                "attention and MLP, added to the stream), the 1/sqrt(head size) scale, the "
                "position embeddings and the final LayerNorm"
            )
        return failed("with the known weights, your logits differ from helpers.model.GPT's", hint)
    if not isinstance(loss, torch.Tensor) or not torch.allclose(loss, want_loss, atol=1e-5):
        return failed(
            "with targets, the loss is the mean cross-entropy of the next-token predictions",
            "flatten (B, T, vocab) to (B*T, vocab) and the targets to (B*T,)",
        )
    model.train()
    start = copy.deepcopy(model)
    call(my_train, model, data, cfg)
    expected = copy.deepcopy(reference).train()
    train(expected, data, cfg, progress=False)
    if _same_weights(model, expected):
        return passed(
            "your GPT computes helpers.model.GPT's logits, and your loop takes "
            "helpers.train.train's steps"
        )
    if _same_weights(model, start):
        return failed("my_train left the weights unchanged", "call optimizer.step() each step")
    for mistake, hint in _MISTAKES.items():
        variant = copy.deepcopy(start)
        _reference_loop(variant, data, cfg, **{mistake: True})
        if _same_weights(model, variant):
            return failed("your GPT is right; your loop takes other steps", hint)
    return failed(
        "your GPT is right; your loop takes other steps than helpers.train.train",
        "draw one batch per step from the generator seeded 1337, set the learning rate before "
        "the step, zero the gradients, backward, clip, step; AdamW's betas (0.9, 0.99)",
    )
