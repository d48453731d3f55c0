"""Progress bars that leave the right trace wherever the code runs.

``progress_bar(total, desc)`` returns an object with tqdm's interface (``update``,
``set_postfix``, ``set_description``, ``write``, ``close``, ``n``, ``total``; a context manager).
What it shows depends on where the output goes:

- **a notebook** (Jupyter, Colab, VS Code): tqdm's live widget. A stored notebook keeps a widget's
  ``text/plain`` fallback, and that is what the book shows; tqdm's own fallback is the bar's
  *first* state (``bigram:   0%|          | 0/3001``). This bar publishes the widget under a
  display id and, on ``close``, publishes it again with the *final* line as the fallback
  (``bigram: 100%|██████████| 3001/3001 [00:41<00:00, 72.5it/s, loss=2.47]``).
- **a terminal**: tqdm's usual bar on stderr.
- **anything else** (a log file: ``python -m helpers.train > log 2>&1``, CI, pytest): nothing per
  step. The caller prints a line where it matters (the training loop does at each evaluation).
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

from tqdm.std import tqdm as terminal_tqdm

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    from IPython.display import DisplayHandle
    from tqdm.notebook import TqdmHBox


def progress_bar(
    total: int,
    desc: str | None = None,
    initial: int = 0,
    disable: bool = False,
    unit: str = "it",
    file: TextIO | None = None,
) -> terminal_tqdm | QuietBar:
    """A progress bar over ``total`` units, starting at ``initial`` (a resumed run).

    ``file`` is where a terminal bar is written (default ``sys.stderr``); the bar is shown only
    when it is a terminal. ``disable=True`` shows nothing anywhere (for example on every rank
    but the first under torchrun)."""
    if disable:
        return QuietBar(total, desc, initial, unit)
    if in_notebook():
        return notebook_bar_class()(total=total, desc=desc, initial=initial, unit=unit)
    stream = sys.stderr if file is None else file
    if getattr(stream, "isatty", lambda: False)():
        return terminal_tqdm(total=total, desc=desc, initial=initial, unit=unit, file=stream)
    return QuietBar(total, desc, initial, unit)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, Colab, VS Code) with ipywidgets
    installed: where tqdm.auto would choose its widget. Not in a terminal IPython."""
    if "ipykernel.zmqshell" not in sys.modules:
        return False
    from ipykernel.zmqshell import ZMQInteractiveShell
    from IPython import get_ipython
    from tqdm.notebook import IProgress

    return isinstance(get_ipython(), ZMQInteractiveShell) and IProgress is not None


class QuietBar:
    """tqdm's interface, counting but printing nothing: the bar for a log file."""

    def __init__(self, total: int, desc: str | None = None, initial: int = 0, unit: str = "it"):
        self.total, self.desc, self.n, self.unit = total, desc, initial, unit
        self.postfix: dict = {}

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(
        self,
        ordered_dict: Mapping[str, object] | None = None,
        refresh: bool = True,
        **kwargs: object,
    ) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = {"": s}

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc

    def refresh(self) -> None:
        pass

    @staticmethod
    def write(s: str, file: TextIO | None = None, end: str = "\n") -> None:
        print(s, file=file or sys.stdout, end=end, flush=True)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def display(obj: object, **kwargs: object) -> DisplayHandle | None:
    """IPython's ``display`` (a module attribute so that tests can replace it)."""
    from IPython.display import display as ipython_display

    return ipython_display(obj, **kwargs)


def widget_bundle(container: TqdmHBox) -> dict:
    """The MIME bundle of tqdm's widget (an ``HBox`` of label, bar and text) with the bar's
    current line, drawn with Unicode blocks, as the text/plain fallback."""
    return {
        "text/plain": container.__repr__(True),  # TqdmHBox: pretty=True, the bar's format_meter
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": container.model_id,
        },
    }


@functools.cache
def notebook_bar_class() -> type[terminal_tqdm]:
    """``NotebookBar``, defined on first use: importing tqdm.notebook imports ipywidgets and
    IPython, which a terminal run does not need."""
    from tqdm.notebook import tqdm as notebook_tqdm

    class NotebookBar(notebook_tqdm):
        """tqdm's notebook widget, displayed under a display id so that ``close`` can replace
        the stored fallback text (the bar's first state) by its last state."""

        def __init__(self, *args, **kwargs):
            # display=False: tqdm builds its widget (self.container) without showing it; we show
            # it with the bundle ipywidgets 7 and 8 publish, plus a display id to update it by
            super().__init__(*args, display=False, **kwargs)
            self.handle = display(widget_bundle(self.container), raw=True, display_id=True)

        def close(self) -> None:
            if self.disable:  # tqdm sets disable on close; close runs again from __del__
                return
            super().close()
            self.handle.update(widget_bundle(self.container), raw=True)

    return NotebookBar
