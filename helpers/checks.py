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


# --- chapter 03 ---


def check_causal_average(fn) -> None:
    """``fn(x)`` for x of shape (B, T, C) should return, at every position t, the mean of
    x[:, :t + 1] (the token and the tokens before it)."""
    import torch

    x = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(0))
    want = torch.stack([x[:, : t + 1].mean(dim=1) for t in range(7)], dim=1)  # (2, 7, 3)
    got, error = attempt(fn, x)
    if error:
        report(False, "average raised " + error)
        return
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        report(False, "the result has the shape of x, (B, T, C) = (2, 7, 3)",
               f"got {type(got).__name__} {tuple(getattr(got, 'shape', ()))}")
        return
    report(torch.allclose(got, want, atol=1e-6), "position t holds the mean of positions 0..t",
           "divide x.cumsum(dim=1) by the number of tokens so far: torch.arange(1, T + 1) as a (T, 1) column")


def check_window_weights(fn) -> None:
    """``fn(T, k)`` should return (T, T) weights where row t averages positions max(0, t-k+1)..t."""
    import torch

    for T, k in ((6, 3), (5, 1), (4, 10)):
        want = torch.zeros(T, T)
        for t in range(T):
            lo = max(0, t - k + 1)
            want[t, lo : t + 1] = 1.0 / (t + 1 - lo)
        got, error = attempt(fn, T, k)
        if error or not isinstance(got, torch.Tensor) or got.shape != (T, T):
            report(False, f"window_weights({T}, {k}) is a ({T}, {T}) tensor",
                   error or f"got {type(got).__name__} {tuple(getattr(got, 'shape', ()))}")
            return
        if not torch.allclose(got.float(), want, atol=1e-6):
            report(False, f"window_weights({T}, {k}): row t averages the last {k} tokens up to t",
                   "keep a band: torch.ones(T, T).tril() minus .tril(-k), then masked_fill(band == 0, "
                   "float('-inf')) and softmax(dim=-1)")
            return
    report(True, "each row averages the last k tokens (fewer at the start), never a future one")


# --- chapter 04 ---


def check_attention(fn) -> None:
    """``fn(q, k, v, causal)`` should be scaled dot-product attention, as
    ``F.scaled_dot_product_attention(q, k, v, is_causal=causal)`` computes it."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 6, 8, generator=g) for _ in range(3))  # (B, T, hs)
    for causal in (True, False):
        want = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        got, error = attempt(fn, q, k, v, causal)
        if error or not isinstance(got, torch.Tensor) or got.shape != want.shape:
            report(False, f"attention(q, k, v, causal={causal}) returns (B, T, hs) = (2, 6, 8)",
                   error or f"got {type(got).__name__} {tuple(getattr(got, 'shape', ()))}")
            return
        if not torch.allclose(got, want, atol=1e-5):
            hint = ("mask with torch.ones(T, T).tril() == 0 before the softmax" if causal else
                    "scale the scores by q.shape[-1] ** -0.5, softmax over the last dim, then @ v")
            report(False, f"attention(..., causal={causal}) equals F.scaled_dot_product_attention", hint)
            return
    report(True, "attention(q, k, v, causal) equals F.scaled_dot_product_attention, with and without the mask")


def check_cross_attention(fn, head) -> None:
    """``fn(x, memory, head)``: queries from ``x``, keys and values from ``memory``, no mask."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    n_embd = head.query.in_features
    x, memory = torch.randn(2, 5, n_embd, generator=g), torch.randn(2, 9, n_embd, generator=g)
    with torch.no_grad():
        want = F.scaled_dot_product_attention(head.query(x), head.key(memory), head.value(memory))
        got, error = attempt(fn, x, memory, head)
    if error or not isinstance(got, torch.Tensor) or got.shape != want.shape:
        report(False, f"cross_attention returns one vector per query token: {tuple(want.shape)}",
               error or f"got {type(got).__name__} {tuple(getattr(got, 'shape', ()))}")
        return
    report(torch.allclose(got, want, atol=1e-5), "5 query tokens attend over 9 memory tokens",
           "q = head.query(x); k and v from head.key(memory) and head.value(memory); no mask")


# --- chapter 05 ---


def check_split_heads(split, merge) -> None:
    """``split(x, n_head)``: (B, T, C) -> (B, nh, T, hs), head h holding channels h*hs..(h+1)*hs;
    ``merge`` undoes it."""
    import torch

    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)  # (B, T, C), every entry different
    want = x.view(2, 3, 4, 2).transpose(1, 2)  # (B, nh, T, hs)
    got, error = attempt(split, x, 4)
    if error or not isinstance(got, torch.Tensor) or got.shape != want.shape:
        report(False, "split_heads((2, 3, 8), n_head=4) has shape (2, 4, 3, 2)",
               error or f"got {type(got).__name__} {tuple(getattr(got, 'shape', ()))}")
        return
    if not torch.equal(got, want):
        report(False, "head h holds channels h*hs to (h+1)*hs of every token",
               "view as (B, T, nh, hs) first, then transpose(1, 2); a plain view(B, nh, T, hs) mixes tokens")
        return
    back, error = attempt(merge, got)
    ok = error is None and isinstance(back, torch.Tensor) and back.shape == x.shape and torch.equal(back, x)
    report(ok, "split_heads puts each head's channels together and merge_heads undoes it",
           error or "transpose(1, 2) back, then .contiguous().view(B, T, C) (or .reshape)")


def check_attention_params(fn) -> None:
    """``fn(n_embd, n_head)``: parameters of a fused attention layer with biases (c_attn, c_proj)."""
    for n_embd, n_head in ((64, 4), (64, 1), (384, 6), (768, 12)):
        want = 4 * n_embd * n_embd + 4 * n_embd  # c_attn: 3C x C + 3C, c_proj: C x C + C
        got, error = attempt(fn, n_embd, n_head)
        if error or got != want:
            report(False, f"attention_params({n_embd}, {n_head}) = {want:,}",
                   error or f"got {got}; count c_attn (C -> 3C) and c_proj (C -> C), weights and biases")
            return
    report(True, "4·C² + 4·C parameters, whatever the number of heads")


# --- chapter 06 ---


def check_rms_norm(fn) -> None:
    """``fn(x, weight, eps)`` should be RMSNorm: x / sqrt(mean(x², last dim) + eps) * weight."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(2, 5, 16, generator=g) + 1
    weight = torch.randn(16, generator=g)
    want = F.rms_norm(x, (16,), weight, eps=1e-5)
    got, error = attempt(fn, x, weight, 1e-5)
    if error or not isinstance(got, torch.Tensor) or got.shape != want.shape:
        report(False, "rms_norm keeps the shape (2, 5, 16)",
               error or f"got {type(got).__name__} {tuple(getattr(got, 'shape', ()))}")
        return
    report(torch.allclose(got, want, atol=1e-5), "rms_norm equals torch.nn.functional.rms_norm",
           "no mean subtraction: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight")


def check_dropout(fn) -> None:
    """``fn(x, p, generator)``: zero each entry with probability p, scale the rest by 1 / (1 - p)."""
    import torch

    x = torch.full((200, 500), 2.0)
    got, error = attempt(fn, x, 0.25, torch.Generator().manual_seed(0))
    if error or not isinstance(got, torch.Tensor) or got.shape != x.shape:
        report(False, "dropout keeps the shape of x",
               error or f"got {type(got).__name__} {tuple(getattr(got, 'shape', ()))}")
        return
    zeros = (got == 0).float().mean().item()
    if abs(zeros - 0.25) > 0.01:
        report(False, "about a quarter of the entries are zero (p = 0.25)",
               f"{zeros:.1%} are zero; keep = torch.rand(x.shape, generator=generator) >= p")
        return
    survivors_ok = bool(torch.isclose(got[got != 0], torch.tensor(2.0 / 0.75)).all())
    report(survivors_ok, "entries dropped with probability p, the survivors scaled by 1 / (1 - p): "
           "the mean is unchanged", "multiply the kept entries by 1 / (1 - p)")


# --- chapter 10 ---


def check_effective_batch(fn) -> None:
    cases = [((32, 1, 1), 32), ((32, 4, 1), 128), ((16, 2, 8), 256)]
    for args, want in cases:
        got, error = attempt(fn, *args)
        if error or got != want:
            report(False, f"effective_batch{args} = {want}", error or f"got {got}; every process accumulates its own micro-batches")
            return
    report(True, "effective batch = batch_size x grad_accum_steps x n_processes")


def check_survives(fn) -> None:
    import torch

    cases = [(1e-7, torch.float16, False), (1e-7, torch.bfloat16, True), (1e5, torch.float16, False),
             (1e5, torch.bfloat16, True), (0.1, torch.float16, True)]
    for value, dtype, want in cases:
        got, error = attempt(fn, value, dtype)
        if error or bool(got) != want:
            report(False, f"survives({value}, {dtype}) should be {want}",
                   error or "fp16 flushes below ~6e-8 and overflows above 65504; bf16 has fp32's range")
            return
    report(True, "fp16 loses 1e-7 and 1e5, bf16 keeps both")


# --- chapter 09 ---


def check_stable_bt_loss(fn) -> None:
    """``fn(r_chosen, r_rejected)`` must equal the Bradley-Terry loss -mean(log sigma(r_c - r_r))
    and stay finite for margins of +-1000."""
    import torch

    from helpers.alignment import bradley_terry_loss

    cases = [(torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 0.5, 1.0])),
             (torch.tensor([1000.0, 0.0]), torch.tensor([0.0, 1000.0]))]
    for r_chosen, r_rejected in cases:
        want = bradley_terry_loss(r_chosen, r_rejected)
        got, error = attempt(fn, r_chosen, r_rejected)
        ok = (error is None and isinstance(got, torch.Tensor) and got.shape == want.shape
              and bool(torch.isfinite(got).all()) and torch.allclose(got.float(), want, rtol=1e-5))
        if not ok:
            margins = (r_chosen - r_rejected).tolist()
            report(False, f"loss for margins {margins}",
                   error or f"got {got}, want {want.item():.4f}; -log sigma(d) = max(-d, 0) + "
                            f"log(1 + exp(-|d|)) never exponentiates a positive number")
            return
    report(True, "equals the Bradley-Terry loss and stays finite for margins of +-1000")


def check_implicit_accuracy(fn) -> None:
    """``fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected)`` must return the share of
    pairs where (log pi(y_c) - log pi_ref(y_c)) - (log pi(y_r) - log pi_ref(y_r)) > 0."""
    import torch

    policy_c, policy_r = torch.tensor([-3.0, -5.0, -2.0, -6.0]), torch.tensor([-4.0, -2.0, -2.0, -1.0])
    ref_c, ref_r = torch.tensor([-3.5, -4.0, -3.0, -9.0]), torch.tensor([-3.5, -3.0, -2.0, -1.0])
    # margins 1.0, -2.0, 1.0, 3.0: three of four pairs ranked right, though policy_c > policy_r
    # only for the first: the reference's log-probs matter
    got, error = attempt(fn, policy_c, policy_r, ref_c, ref_r)
    if error is None:
        got, error = attempt(float, got)  # one number: a float or a one-element tensor
    ok = error is None and abs(got - 0.75) < 1e-6
    report(ok, "implicit-reward accuracy on four pairs is 0.75",
           error or f"got {got}; compare (policy_chosen - ref_chosen) with "
                    f"(policy_rejected - ref_rejected), not the policy's log-probs alone")
