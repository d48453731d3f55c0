"""helpers.widgets: the static sampling picture fits the book's column with titles that do not
collide, and the live apps show whole slider labels and keep a prompt's newlines."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from helpers.widgets import attention_explorer, sampling_figure, sampling_lab

# Chapter 07's five settings: an odd count, so the grid has an empty cell.
SETTINGS = [
    dict(temperature=0.5),
    dict(temperature=1.0),
    dict(temperature=1.5),
    dict(temperature=1.0, top_k=3),
    dict(temperature=1.0, top_p=0.6),
]
PROMPT = "KING:\nWhat says the king?"


@pytest.fixture
def model(tiny_gpt):
    return tiny_gpt()


def test_sampling_figure_is_a_grid_that_fits_the_books_column(model, char_tokenizer):
    fig = sampling_figure(model, char_tokenizer, PROMPT, SETTINGS)
    try:
        width, _ = fig.get_size_inches()
        assert width <= 10, f"the figure is {width} in wide; the book's column fits about 10"
        shown = [ax for ax in fig.axes if ax.axison]
        assert len(shown) == len(SETTINGS), "one chart per setting, the spare grid cell hidden"
        columns = {round(ax.get_position().x0, 3) for ax in shown}
        assert len(columns) == 2, f"expected 2 columns, got {len(columns)}"
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = [ax.title.get_window_extent(renderer) for ax in shown]
        figure_box = fig.bbox
        for i, box in enumerate(boxes):
            assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1, (
                f"title {shown[i].get_title()!r} runs off the figure"
            )
            for j in range(i):
                assert not box.overlaps(boxes[j]), (
                    f"titles {shown[i].get_title()!r} and {shown[j].get_title()!r} overlap"
                )
    finally:
        plt.close(fig)


@pytest.mark.parametrize("bad", [[], "columns"], ids=["no-settings", "zero-columns"])
def test_sampling_figure_rejects_an_empty_grid(model, char_tokenizer, bad):
    settings, columns = ([], 2) if bad == [] else (SETTINGS, 0)
    with pytest.raises(ValueError, match="at least"):
        sampling_figure(model, char_tokenizer, PROMPT, settings, columns=columns)


def _displayed(monkeypatch, app, *args, **kwargs):
    """The widget box ``app`` displays, and the figures its first draw made, closed."""
    ipywidgets = pytest.importorskip("ipywidgets")
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: shown.extend(objs))
    monkeypatch.setattr(plt, "show", lambda *a, **k: plt.close("all"))
    app(*args, **kwargs)
    assert len(shown) == 1 and isinstance(shown[0], ipywidgets.VBox), shown
    return ipywidgets, shown[0]


def _all_children(box):
    for child in getattr(box, "children", ()):
        yield child
        yield from _all_children(child)


def test_sampling_lab_shows_whole_slider_labels_and_a_multiline_prompt(
    monkeypatch, model, char_tokenizer
):
    w, box = _displayed(monkeypatch, sampling_lab, model, char_tokenizer, prompt=PROMPT)
    sliders = [c for c in _all_children(box) if isinstance(c, (w.FloatSlider, w.IntSlider))]
    assert [s.description for s in sliders] == ["temperature", "top-k (0=off)", "top-p"]
    for slider in sliders:
        assert slider.style.description_width == "initial", (
            f"{slider.description!r} would be cut to the default label width"
        )
    (prompt,) = [c for c in _all_children(box) if isinstance(c, (w.Text, w.Textarea))]
    assert isinstance(prompt, w.Textarea) and prompt.value == PROMPT


def test_attention_explorer_prompt_keeps_its_newline(monkeypatch, model, char_tokenizer):
    w, box = _displayed(monkeypatch, attention_explorer, model, char_tokenizer, prompt=PROMPT)
    (prompt,) = [c for c in _all_children(box) if isinstance(c, (w.Text, w.Textarea))]
    assert isinstance(prompt, w.Textarea), "a one-line Text field runs 'KING:' into the next line"
    assert prompt.value == PROMPT
