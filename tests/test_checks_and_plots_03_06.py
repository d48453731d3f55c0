"""The exercise checks and plots that chapters 03-06 use: a right answer gets a tick, a wrong or
crashing one a cross with a hint, and no check ever raises."""

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F

from helpers import checks
from helpers.model import Head
from helpers.plots import compare_losses, plot_gradient_norms
from helpers.train import History


def crash(*args):
    raise RuntimeError("not written yet")


def attention(q, k, v, causal):
    T = q.shape[1]
    wei = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if causal:
        wei = wei.masked_fill(torch.ones(T, T).tril() == 0, float("-inf"))
    return F.softmax(wei, dim=-1) @ v


def window_weights(T, k):
    band = torch.ones(T, T).tril() - torch.ones(T, T).tril(diagonal=-k)
    return F.softmax(torch.zeros(T, T).masked_fill(band == 0, float("-inf")), dim=-1)


def dropout(x, p, generator):
    return x * (torch.rand(x.shape, generator=generator) >= p) / (1 - p)


HEAD = Head(16, 8, 10)
CASES = {  # check -> (right answer, wrong answers)
    "causal_average": (lambda f: checks.check_causal_average(f),
                       lambda x: x.cumsum(1) / torch.arange(1, x.shape[1] + 1).view(-1, 1),
                       [lambda x: x, lambda x: x.mean(1), crash]),
    "window_weights": (lambda f: checks.check_window_weights(f), window_weights,
                       [lambda T, k: torch.ones(T, T).tril() / torch.ones(T, T).tril().sum(1, keepdim=True),
                        lambda T, k: torch.zeros(T), crash]),
    "attention": (lambda f: checks.check_attention(f), attention,
                  [lambda q, k, v, c: attention(q, k, v, False), lambda q, k, v, c: v, crash]),
    "cross_attention": (lambda f: checks.check_cross_attention(f, HEAD),
                        lambda x, m, h: attention(h.query(x), h.key(m), h.value(m), False),
                        [lambda x, m, h: attention(h.query(x), h.key(x), h.value(x), False), crash]),
    "split_heads": (lambda fs: checks.check_split_heads(*fs),
                    (lambda x, n: x.view(x.shape[0], x.shape[1], n, -1).transpose(1, 2),
                     lambda y: y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)),
                    [(lambda x, n: x.view(x.shape[0], n, x.shape[1], -1), lambda y: y),
                     (lambda x, n: x.view(x.shape[0], x.shape[1], n, -1).transpose(1, 2), crash),
                     (crash, crash)]),
    "attention_params": (lambda f: checks.check_attention_params(f), lambda c, n: 4 * c * c + 4 * c,
                         [lambda c, n: 4 * c * c, lambda c, n: 4 * c * c // n, crash]),
    "rms_norm": (lambda f: checks.check_rms_norm(f),
                 lambda x, w, e: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + e) * w,
                 [lambda x, w, e: F.layer_norm(x, (16,), w, eps=e), crash]),
    "dropout": (lambda f: checks.check_dropout(f), dropout,
                [lambda x, p, g: x, lambda x, p, g: x * (torch.rand(x.shape, generator=g) >= p), crash]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_right_answer_gets_a_tick(name, capsys):
    run, right, _ = CASES[name]
    run(right)
    out = capsys.readouterr().out
    assert out.startswith("✅") and "❌" not in out, out


@pytest.mark.parametrize("name", list(CASES))
def test_wrong_or_crashing_answers_get_a_cross_and_never_raise(name, capsys):
    run, _, wrongs = CASES[name]
    for wrong in wrongs:
        run(wrong)
        out = capsys.readouterr().out
        assert "❌" in out and "✅" not in out, out


def history(offset: float) -> History:
    return History(steps=[0, 10, 20], train_loss=[4.0 - offset, 3.0, 2.5], val_loss=[4.1, 3.2, 2.8 + offset])


def test_compare_losses_draws_one_line_per_run_and_train_curves_on_request():
    ax = compare_losses({"a": history(0.0), "b": history(0.1)})
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    ax = compare_losses({"a": history(0.0), "b": history(0.1)}, train=True)
    assert len(ax.get_lines()) == 4
    assert ax.get_lines()[1].get_linestyle() == "--"
    plt.close("all")


def test_plot_gradient_norms_uses_a_log_scale_and_numbers_layers_from_one():
    ax = plot_gradient_norms({"plain": [1e-9, 1e-3, 1.0], "residual": [1.0, 1.0, 1.0]})
    assert ax.get_yscale() == "log"
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    plt.close("all")
