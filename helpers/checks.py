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
