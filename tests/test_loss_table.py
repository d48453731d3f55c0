"""helpers.loss_table: the loss-per-idea table that grows chapter by chapter."""

import re

import pytest

from helpers import loss_table


@pytest.fixture(autouse=True)
def empty_runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_COURSE_RUNS", str(tmp_path))


def test_rows_come_in_chapter_order_and_a_chapter_sees_no_later_rows():
    loss_table.record(7, "full GPT", 1.69)
    loss_table.record(2, "bigram", 2.48)
    shown = loss_table.record(6, "+ residual", 1.83)
    assert shown.index.tolist() == [2, 6] and shown["idea"].tolist() == ["bigram", "+ residual"]
    assert loss_table.table().index.tolist() == [2, 6, 7]


def test_recording_an_idea_again_replaces_it_in_place():
    for idea, loss in (("+ residual", 1.9), ("+ LayerNorm", 1.85), ("+ dropout", 1.95)):
        loss_table.record(6, idea, loss)
    shown = loss_table.record(6, "+ residual", 1.83)  # the chapter is run again
    assert shown["idea"].tolist() == ["+ residual", "+ LayerNorm", "+ dropout"]
    assert shown["val_loss"].tolist() == [1.83, 1.85, 1.95]


def test_clearing_a_chapter_drops_its_stale_rows_only():
    loss_table.record(5, "+ feed-forward", 2.09)
    loss_table.record(6, "+ residual connections (deep stack)", 1.83)  # an idea since renamed
    loss_table.clear(6)
    shown = loss_table.record(6, "+ residual connections (1 block)", 2.02)
    assert shown["idea"].tolist() == ["+ feed-forward", "+ residual connections (1 block)"]


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -1.0])
def test_a_nonsense_loss_is_refused(bad):
    with pytest.raises(ValueError, match="positive number"):
        loss_table.record(2, "bigram", bad)


def _header_rows(html: str) -> list[str]:
    head = html.split("<thead>")[1].split("</thead>")[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for row in head.split("</tr>")[:-1]
    ]


def test_the_notebook_shows_one_clean_table():
    loss_table.record(2, "bigram", 2.48, params=4225)
    html = loss_table.record(4, "one attention head", 2.2)._repr_html_()
    assert _header_rows(html) == ["chapter idea val_loss params"]  # no index-name row, no note
    assert "4225" in html and "4225.0" not in html  # a missing count leaves the others integers
    note = "p = 0.1; control on 1/20 of the text: 2.2810 with, 2.3648 without"
    html = loss_table.record(6, "+ dropout", 1.9, params=9000, note=note)._repr_html_()
    assert _header_rows(html) == ["chapter idea val_loss params note"]
    assert note in html  # in full: pandas would cut a cell at 50 characters


def test_the_table_is_still_queried_by_chapter():
    loss_table.record(2, "bigram", 2.48)
    loss_table.record(4, "one attention head", 2.2)
    assert loss_table.table().query("chapter == 2")["idea"].tolist() == ["bigram"]
