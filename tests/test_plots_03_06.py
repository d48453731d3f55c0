"""The plots that chapters 03-06 use (their exercise checks are tested in test_exercises.py)."""

import warnings

import matplotlib.pyplot as plt
import pytest
import torch

from helpers.plots import attention_heatmap, compare_losses, plot_gradient_norms, plot_spread
from helpers.train import History


def history(offset: float) -> History:
    return History(
        steps=[0, 10, 20], train_loss=[4.0 - offset, 3.0, 2.5], val_loss=[4.1, 3.2, 2.8 + offset]
    )


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


def test_attention_heatmap_shows_spaces_and_newlines_and_the_font_has_their_glyphs():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Glyph ... missing from font"
        ax = attention_heatmap(torch.full((4, 4), 0.25), ["a", " ", "\n", "\t"])
        ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣", "⏎", "⇥"]
    plt.close("all")


def test_plot_spread_draws_every_seed_on_its_design_row_and_refuses_empty_input():
    ax = plot_spread({"plain": [2.8, 2.9, 2.85], "residual": [1.83, 1.84]})
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [list(d.get_ydata()) for d in dots] == [[0, 0, 0], [1, 1]]
    assert list(dots[1].get_xdata()) == [1.83, 1.84]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["plain", "residual"]
    for bad in ({}, {"plain": []}):
        with pytest.raises(ValueError, match="at least one"):
            plot_spread(bad)
    plt.close("all")
