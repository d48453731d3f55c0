"""Checks for the exercises: each takes a learner's answer, tests it, and prints what is right or
wrong. They never raise, so a notebook with an unfinished exercise still runs to the end."""

from __future__ import annotations


def report(ok: bool, what: str, hint: str = "") -> None:
    """Print one line: a tick and ``what`` when ``ok``, else a cross, ``what`` and the hint.
    (Checks print rather than return, so a notebook cell shows the verdict and nothing else.)"""
    print(f"✅ {what}" if ok else f"❌ {what}" + (f" — hint: {hint}" if hint else ""))


def attempt(fn, *args, **kwargs):
    """Call a learner's function; return (result, None) or (None, the error message)."""
    try:
        return fn(*args, **kwargs), None
    except Exception as err:  # a learner's unfinished code may raise anything
        return None, f"{type(err).__name__}: {err}"


# --- chapter 01 ---


def check_context_target_pairs(fn) -> None:
    """``fn(block)`` should return [(context, target), ...]: every prefix of block[:-1] with the
    token that follows it."""
    block = [18, 47, 56, 57, 58, 1, 15, 47, 58]
    want = [(block[: t + 1], block[t + 1]) for t in range(len(block) - 1)]
    got, error = attempt(fn, block)
    if error:
        report(False, "make_pairs raised " + error, "start from `for t in range(len(block) - 1)`")
        return
    got = [(list(c), int(t)) for c, t in got] if got is not None else None
    report(got == want, f"{len(want)} pairs from a block of {len(block)} tokens",
                  f"for {block} the first pair is ({want[0][0]}, {want[0][1]}), the last ({want[-1][0]}, {want[-1][1]})")


def check_get_batch(fn) -> None:
    """``fn(data, block_size, batch_size)`` should return x, y of shape (batch, block) with y = x
    shifted left by one token of the data."""
    import torch

    data = torch.arange(100)
    got, error = attempt(fn, data, 8, 4)
    if error:
        report(False, "get_batch raised " + error)
        return
    x, y = got
    shapes = tuple(x.shape) == (4, 8) and tuple(y.shape) == (4, 8)
    report(shapes, "x and y are (batch_size, block_size) = (4, 8)", f"got {tuple(x.shape)}, {tuple(y.shape)}")
    if not shapes:
        return
    # on data = 0, 1, 2, ... each window is consecutive and y is x + 1
    report(bool((y == x + 1).all() and (x[:, 1:] == x[:, :-1] + 1).all()),
                  "each row is a window of the data and y is x shifted by one",
                  "y must start one token after x: data[i + 1 : i + block_size + 1]")


# --- chapter 02 ---


def check_uniform_loss(fn) -> None:
    import math

    for v in (2, 65, 50257):
        got, error = attempt(fn, v)
        if error or got is None or abs(float(got) - math.log(v)) > 1e-6:
            report(False, f"uniform_loss({v})", error or f"got {got}; a uniform guess gives p = 1/{v} to the right token")
            return
    report(True, "uniform_loss(V) = ln V for V = 2, 65 and 50,257")


def check_greedy(fn, model) -> None:
    import torch

    start = torch.zeros((1, 1), dtype=torch.long)
    got, error = attempt(fn, model, start, 20)
    if error or got is None or tuple(got.shape) != (1, 21):
        report(False, "greedy returns (1, 21) ids for 20 new tokens", error or f"got {None if got is None else tuple(got.shape)}")
        return
    with torch.no_grad():
        ok = all(model(got[:, : t + 1])[0][0, -1].argmax().item() == got[0, t + 1].item() for t in range(20))
    report(ok, "every new token is the argmax of the logits before it", "use logits[:, -1, :].argmax(dim=-1, keepdim=True)")


# --- chapter 08 ---


def check_f1(fn) -> None:
    """``fn(labels, predictions)`` must return the F1 score of the positive class (label 1)."""
    import numpy as np
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    cases = [(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])),
             (np.array([1, 0, 1, 1, 0]), np.array([1, 1, 1, 1, 1])),
             (np.array([1, 0, 1]), np.array([0, 0, 0])),  # nothing predicted positive: F1 = 0
             (rng.integers(0, 2, 200), rng.integers(0, 2, 200))]
    for labels, predictions in cases:
        want = f1_score(labels, predictions, zero_division=0.0)
        got, error = attempt(fn, labels, predictions)
        if error or got is None or abs(float(got) - want) > 1e-9:
            report(False, f"f1 for labels {labels[:5].tolist()}… and predictions "
                          f"{predictions[:5].tolist()}…",
                   error or f"got {got}, want {want:.4f}: precision = TP/(TP+FP), "
                            f"recall = TP/(TP+FN), F1 = 2PR/(P+R), and 0 when TP = 0")
            return
    report(True, "f1 agrees with sklearn.metrics.f1_score, including when TP = 0")


def check_mean_pooling(fn) -> None:
    """``fn(hidden, attention_mask)`` with hidden (B, T, H) and mask (B, T) must return the
    mean over the real tokens, (B, H)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 4, generator=gen)  # (B, T, H)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])  # (B, T)
    want = torch.stack([hidden[b, : int(mask[b].sum())].mean(0) for b in range(3)])  # (B, H)
    noisy = hidden.masked_fill(~mask.bool().unsqueeze(-1), 1e4)  # padding must not count
    got, error = attempt(fn, noisy, mask)
    if error or got is None or tuple(got.shape) != (3, 4):
        report(False, "mean pooling returns one (H,) vector per example, (B, H)",
               error or f"got shape {None if got is None else tuple(got.shape)}")
        return
    report(bool(torch.allclose(got.float(), want, atol=1e-5)),
           "the mean runs over the real tokens only (padding ignored)",
           "multiply hidden by mask.unsqueeze(-1), sum over T, divide by mask.sum(1, keepdim=True)")


def check_attention_permissions(fn) -> None:
    """``fn(attention_mask, causal)`` must return allowed (B, T, T): allowed[b, i, j] is True when
    position i may attend to position j (j is a real token, and j <= i if causal)."""
    import torch

    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])  # (B, T): the second review is padded
    keys = mask.bool()[:, None, :]  # (B, 1, T): every query sees every real key
    want = {False: keys.expand(2, 4, 4),
            True: keys & torch.ones(4, 4, dtype=torch.bool).tril()}  # chapter 04's tril mask
    for causal, name in ((False, "encoder (BERT)"), (True, "decoder (GPT)")):
        got, error = attempt(fn, mask, causal)
        if error or got is None or tuple(got.shape) != (2, 4, 4):
            report(False, f"{name}: allowed has shape (B, T, T) = (2, 4, 4)",
                   error or f"got {None if got is None else tuple(got.shape)}")
            return
        if not torch.equal(got.bool(), want[causal]):
            hint = ("a query may look at a key j when mask[b, j] is 1 (padding is never seen)"
                    + ("; with causal=True also only at j <= i: torch.tril" if causal else ""))
            report(False, f"{name}: allowed[b, i, j]", hint)
            return
    report(True, "encoder: every real token sees every real token; decoder: only itself and the past")


# --- chapter 07 ---


def check_top_k(fn) -> None:
    """``fn(logits, k)`` should keep the k largest logits of each row and set the rest to -inf."""
    import torch

    from helpers.model import filter_logits

    logits = torch.tensor([[0.5, 2.0, -1.0, 3.0, 0.0], [1.0, 0.0, 4.0, 2.0, 3.0]])
    got, error = attempt(fn, logits.clone(), 2)
    want = filter_logits(logits, top_k=2)
    ok = error is None and isinstance(got, torch.Tensor) and torch.equal(got, want)
    report(ok, "top-k keeps the 2 largest logits per row and masks the rest with -inf",
           error or "torch.topk(logits, k).values[:, -1:] is the k-th largest value of each row")


def check_parameter_count(fn, model) -> None:
    """``fn(config)`` should give the model's parameter count from its config alone."""
    got, error = attempt(fn, model.config)
    want = model.num_parameters()
    report(error is None and got == want, f"parameter count from the config = {want:,}",
           error or f"got {got}; per block: 2 LayerNorms (2C each), attention (C*3C + 3C + C*C + C), "
                    f"MLP (C*4C + 4C + 4C*C + C); plus wte, wpe and ln_f (lm_head is tied)")
