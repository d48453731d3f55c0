"""Pictures the chapters share: loss curves, matrices as images, attention heatmaps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from helpers.data import show_char

if TYPE_CHECKING:  # plots draw a History; they do not need the training code to run
    from helpers.train import History


def plot_losses(
    history: History,
    title: str = "loss",
    reference: History | dict | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Train and validation loss against step. ``reference`` (another History, or a dict with
    ``steps`` and ``val_loss``) is drawn behind in grey: the curve a reference run reached with
    the same preset, so a learner can see whether their run is on track."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    if reference is not None:
        ref = reference if isinstance(reference, dict) else reference.to_dict()
        ax.plot(ref["steps"], ref["val_loss"], color="0.75", lw=4, label="reference run (val)")
    ax.plot(history.steps, history.train_loss, label="train")
    ax.plot(history.steps, history.val_loss, label="validation")
    ax.set(xlabel="step", ylabel="cross-entropy (nats per token)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def show_matrix(
    m: torch.Tensor,
    title: str = "",
    ax: Axes | None = None,
    labels: list[str] | None = None,
    cmap: str = "viridis",
    annotate: bool | None = None,
) -> Axes:
    """A 2-D tensor as an image, with its values written in when it is small enough to read."""
    m = m.detach().float().cpu()
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    im = ax.imshow(m.numpy(), cmap=cmap)
    ax.set_title(title)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
    if annotate if annotate is not None else m.numel() <= 64:
        for (i, j), v in zip(
            ((i, j) for i in range(m.shape[0]) for j in range(m.shape[1])), m.flatten(), strict=True
        ):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v < (m.max() + m.min()) / 2 else "black",
            )
    plt.colorbar(im, ax=ax, fraction=0.046)
    return ax


def attention_heatmap(
    weights: torch.Tensor, tokens: list[str], title: str = "", ax: Axes | None = None
) -> Axes:
    """One head's (T, T) attention weights: row = the token that looks, column = the token looked
    at. Tokens are labelled with :func:`helpers.data.show_char` (space ␣, newline ⏎)."""
    ax = ax or plt.subplots(figsize=(5, 5))[1]
    image = ax.imshow(weights.detach().float().cpu().numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, label="attention weight")
    shown = [show_char(t) for t in tokens]
    ax.set_xticks(range(len(tokens)), shown, fontsize=8)
    ax.set_yticks(range(len(tokens)), shown, fontsize=8)
    ax.set(xlabel="key (looked at)", ylabel="query (looking)", title=title)
    return ax


def compare_losses(
    histories: dict[str, History],
    title: str = "validation loss",
    ax: Axes | None = None,
    train: bool = False,
) -> Axes:
    """Several runs on one axis: the validation loss of each History in ``histories`` (label ->
    History), and with ``train=True`` its training loss dashed in the same colour, so the gap
    between the two (overfitting) shows too."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for i, (label, history) in enumerate(histories.items()):
        ax.plot(
            history.steps,
            history.val_loss,
            color=f"C{i}",
            label=f"{label} (val)" if train else label,
        )
        if train:
            ax.plot(
                history.steps, history.train_loss, color=f"C{i}", ls="--", label=f"{label} (train)"
            )
    ax.set(xlabel="step", ylabel="cross-entropy (nats per token)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_gradient_norms(
    norms: dict[str, list[float]], title: str = "gradient norm per layer", ax: Axes | None = None
) -> Axes:
    """One line per model in ``norms`` (label -> list of gradient norms, first layer first), on a
    log scale: a line that falls towards layer 1 means the early layers barely learn."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for label, values in norms.items():
        ax.plot(range(1, len(values) + 1), values, "o-", label=label)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
    ax.set(xlabel="layer (1 = nearest the input)", ylabel="gradient norm", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return ax


def plot_spread(
    values: dict[str, list[float]],
    title: str = "final validation loss, one dot per seed",
    xlabel: str = "validation loss (nats per token)",
    ax: Axes | None = None,
) -> Axes:
    """One row per design in ``values`` (label -> one number per seed): a dot for every seed and
    a line from the lowest to the highest, so two designs whose ranges do not overlap differ by
    more than the luck of the seed."""
    if not values or any(len(v) == 0 for v in values.values()):
        raise ValueError("plot_spread needs at least one label, each with at least one value")
    ax = ax or plt.subplots(figsize=(7, 0.6 * len(values) + 1.6))[1]
    for row, (label, seeds) in enumerate(values.items()):
        ax.plot([min(seeds), max(seeds)], [row, row], color=f"C{row}", lw=6, alpha=0.3)
        ax.plot(seeds, [row] * len(seeds), "o", color=f"C{row}", label=label)
    ax.set_yticks(range(len(values)), list(values))
    ax.set_ylim(len(values) - 0.5, -0.5)  # the first label on top
    ax.set(xlabel=xlabel, title=title)
    ax.grid(alpha=0.3, axis="x")
    return ax
