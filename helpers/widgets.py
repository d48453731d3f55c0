"""Two small apps for a trained model, each with a static picture for the book.

- ``sampling_lab``: type a prompt, move temperature / top-k / top-p, and watch the next-token
  distribution change (and a sample drawn from it).
- ``attention_explorer``: pick a layer and a head and see who attends to whom in a prompt.

The built book shows saved widget state but cannot run Python callbacks, so each app has a
matplotlib counterpart (``sampling_figure``, ``attention_grid``) that the chapter also shows.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.data import CharTokenizer, show_char
from helpers.model import GPT, complete, filter_logits
from helpers.plots import attention_heatmap


@torch.no_grad()
def next_token_probs(
    model: GPT,
    tokenizer: CharTokenizer,
    prompt: str,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Probabilities of the next character after ``prompt`` (vocab,), after temperature and the
    top-k / top-p filters, exactly as ``generate`` would sample it."""
    device = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)[-model.block_size :]], device=device)  # (1, T)
    model.eval()
    logits, _ = model(idx)
    logits = logits[:, -1, :].float()  # (1, vocab)
    logits = filter_logits(logits / max(temperature, 1e-6), top_k, top_p)
    return F.softmax(logits, dim=-1)[0].cpu()


def plot_next_token(
    probs: torch.Tensor,
    tokenizer: CharTokenizer,
    title: str = "",
    ax: Axes | None = None,
    k: int = 15,
) -> Axes:
    """The ``k`` most likely next characters as bars. Characters a filter ruled out (probability
    0) are left off, so a top-k or top-p panel shows only what can still be sampled."""
    ax = ax or plt.subplots(figsize=(6, 2.8))[1]
    kept = int((probs > 0).sum())
    top = torch.topk(probs, min(k, kept))
    labels = [show_char(tokenizer.decode([i])) for i in top.indices.tolist()]
    ax.bar(range(len(labels)), top.values.tolist(), color="C0")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.6, k - 0.4)  # the same bar width in every panel
    ax.set_ylim(0, 1)
    # Two lines, so the title stays within a half-width panel of sampling_figure's grid.
    ax.set_title(f"{title}\n{kept} of {len(probs)} characters can be sampled", fontsize=9)
    return ax


def sampling_figure(
    model: GPT, tokenizer: CharTokenizer, prompt: str, settings: list[dict], columns: int = 2
) -> Figure:
    """One next-token chart per sampling setting, ``columns`` to a row (the static sampling lab).
    Two columns keep the figure 9 inches wide, so the book shows it near full size."""
    if not settings:
        raise ValueError("sampling_figure needs at least one sampling setting, e.g. [{}]")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    rows = -(-len(settings) // columns)  # ceil
    fig, axes = plt.subplots(rows, columns, figsize=(9, 2.6 * rows), squeeze=False)
    for ax, s in zip(axes.flat, settings, strict=False):
        probs = next_token_probs(model, tokenizer, prompt, **s)
        title = ", ".join(f"{k}={v}" for k, v in s.items()) or "no filter"
        plot_next_token(probs, tokenizer, title, ax=ax, k=10)
    for ax in axes.flat[len(settings) :]:  # an odd count leaves the last cell of the grid empty
        ax.set_axis_off()
    fig.suptitle(f"next character after {prompt[-30:]!r}", fontsize=10)
    fig.tight_layout()
    return fig


def _prompt_box(prompt: str):
    """A multi-line prompt field: a prompt may hold newlines ("KING:\\nWhat says the king?"),
    which a one-line Text field would show run together and drop when edited."""
    import ipywidgets as w

    return w.Textarea(value=prompt, description="prompt", rows=3, layout=w.Layout(width="95%"))


def sampling_lab(
    model: GPT, tokenizer: CharTokenizer, prompt: str = "ROMEO:\n", seed: int = 0
) -> None:
    """The interactive version: a text box and three sliders over ``plot_next_token``."""
    import ipywidgets as w
    from IPython.display import display

    text = _prompt_box(prompt)
    fit = {"description_width": "initial"}  # the whole label, not the first 8 characters
    temperature = w.FloatSlider(
        value=1.0, min=0.1, max=2.0, step=0.05, description="temperature", style=fit
    )
    top_k = w.IntSlider(
        value=0, min=0, max=tokenizer.vocab_size, description="top-k (0=off)", style=fit
    )
    top_p = w.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p", style=fit)
    out = w.Output()

    def redraw(*_):
        out.clear_output(wait=True)
        settings = dict(
            temperature=temperature.value,
            top_k=top_k.value or None,
            top_p=top_p.value if top_p.value < 1.0 else None,
        )
        with out:
            try:
                probs = next_token_probs(model, tokenizer, text.value or "\n", **settings)
            except ValueError as err:  # e.g. a character outside the vocabulary
                print(err)
                return
            plot_next_token(probs, tokenizer, "next character")
            plt.show()
            sample = complete(
                model,
                tokenizer,
                text.value or "\n",
                120,
                generator=torch.Generator().manual_seed(seed),
                **settings,
            )
            print(sample)

    for control in (text, temperature, top_k, top_p):
        control.observe(redraw, names="value")
    redraw()
    sliders = w.HBox([temperature, top_k, top_p], layout=w.Layout(flex_flow="row wrap"))
    display(w.VBox([text, sliders, out]))


def attention_grid(
    model: GPT, tokenizer: CharTokenizer, prompt: str, max_layers: int = 4, max_heads: int = 4
) -> Figure:
    """Layer x head heatmaps of one prompt (the static attention explorer)."""
    device = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)], device=device)  # (1, T)
    maps = model.eval().attention_maps(idx)[:, 0].cpu()  # (n_layer, nh, T, T)
    layers, heads = min(max_layers, maps.shape[0]), min(max_heads, maps.shape[1])
    fig, axes = plt.subplots(layers, heads, figsize=(3 * heads, 3 * layers), squeeze=False)
    tokens = [show_char(c) for c in prompt]
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer][head]
            ax.imshow(maps[layer, head], cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(len(tokens)), tokens, fontsize=6)
            ax.set_yticks(range(len(tokens)), tokens, fontsize=6)
            ax.set_title(f"layer {layer}, head {head}", fontsize=9)
    fig.tight_layout()
    return fig


def attention_explorer(
    model: GPT, tokenizer: CharTokenizer, prompt: str = "ROMEO:\nBut soft, what light"
) -> None:
    """Dropdowns for layer and head over one prompt's attention heatmap."""
    import ipywidgets as w
    from IPython.display import display

    text = _prompt_box(prompt)
    layer = w.Dropdown(options=range(model.config.n_layer), description="layer")
    head = w.Dropdown(options=range(model.config.n_head), description="head")
    out = w.Output()

    def redraw(*_):
        out.clear_output(wait=True)
        with out:
            try:
                idx = torch.tensor(
                    [tokenizer.encode(text.value[-model.block_size :] or "\n")],
                    device=next(model.parameters()).device,
                )
            except ValueError as err:
                print(err)
                return
            maps = model.eval().attention_maps(idx)[:, 0].cpu()  # (n_layer, nh, T, T)
            attention_heatmap(
                maps[layer.value, head.value],
                list(tokenizer.decode(idx[0])),
                title=f"layer {layer.value}, head {head.value}",
            )
            plt.show()

    for control in (text, layer, head):
        control.observe(redraw, names="value")
    redraw()
    display(w.VBox([text, w.HBox([layer, head]), out]))
