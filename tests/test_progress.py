"""helpers.progress: quiet in a log, tqdm in a terminal, and in a notebook a widget whose stored
fallback text ends as the bar's final line."""

import io

import pytest

from helpers import progress
from helpers.progress import QuietBar, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def drive(bar, steps=3):
    with bar:
        for step in range(steps):
            bar.set_postfix(loss=f"{2.5 - step:.2f}")
            bar.update()
    return bar


def test_a_log_file_gets_nothing_per_step(capsys):
    log = io.StringIO()
    bar = drive(progress_bar(3, desc="bigram", file=log))
    assert isinstance(bar, QuietBar)
    assert bar.n == 3 and bar.total == 3 and bar.postfix == {"loss": "0.50"}
    assert log.getvalue() == "" and capsys.readouterr() == ("", "")


def test_write_prints_one_line_whatever_the_bar():
    out = io.StringIO()
    progress_bar(3, desc="bigram", file=io.StringIO()).write("step 100: val loss 2.5", file=out)
    assert out.getvalue() == "step 100: val loss 2.5\n"


def test_a_terminal_gets_the_tqdm_bar():
    terminal = FakeTerminal()
    bar = drive(progress_bar(3, desc="bigram", file=terminal))
    assert bar.n == 3
    assert "bigram: 100%" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_initial_counts_from_a_resumed_step():
    bar = progress_bar(10, desc="resume", initial=4, file=io.StringIO())
    bar.update(2)
    assert bar.n == 6


def test_disable_shows_nothing_even_in_a_terminal():
    terminal = FakeTerminal()
    drive(progress_bar(3, desc="rank 1", disable=True, file=terminal))
    assert terminal.getvalue() == ""


def test_outside_a_kernel_is_not_a_notebook():
    assert progress.in_notebook() is False


class FakeHandle:
    def __init__(self, published):
        self.published = published

    def update(self, bundle, raw=False):
        assert raw
        self.published.append(("update", bundle))


def test_in_a_notebook_the_stored_text_becomes_the_final_line(monkeypatch):
    pytest.importorskip("ipywidgets")
    published = []

    def fake_display(bundle, raw=False, display_id=None):
        assert raw and display_id is True
        published.append(("display", bundle))
        return FakeHandle(published)

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(progress, "display", fake_display)
    bar = drive(progress_bar(3, desc="bigram"))
    bar.close()  # a second close (as from __del__) publishes nothing more

    (first_kind, first), (last_kind, last) = published
    assert (first_kind, last_kind) == ("display", "update")
    view = "application/vnd.jupyter.widget-view+json"
    assert first[view]["model_id"] == last[view]["model_id"] == bar.container.model_id
    assert "0/3" in first["text/plain"]
    assert last["text/plain"].startswith("bigram: 100%|██████████| 3/3")
    assert "loss=0.50" in last["text/plain"]
