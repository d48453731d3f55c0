"""The course's "loss per idea" table: each chapter appends the validation loss its idea reached.

Rows are kept in ``runs_dir()/loss_per_idea.json`` (smoke runs keep their own file), one per idea;
running a chapter again replaces its row. The table is the lesson plan in numbers: every idea
should buy a lower validation loss on the same data.
"""

from __future__ import annotations

import json

import pandas as pd

from helpers.atomic_io import atomic_write_text
from helpers.settings import runs_dir


def _path():
    return runs_dir() / "loss_per_idea.json"


def _rows() -> list[dict]:
    path = _path()
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def record(
    chapter: int, idea: str, val_loss: float, params: int | None = None, note: str = ""
) -> LossTable:
    """Add (or replace) the row for ``idea`` and return the table up to this chapter.

    A row that is recorded again keeps its place, so re-running a chapter leaves the order of
    its ideas alone; rows of later chapters (from an earlier run of the course) are kept in the
    file but not shown, so chapter 6 never prints chapter 7's row."""
    if not val_loss == val_loss or val_loss <= 0:  # NaN or nonsense would poison the table
        raise ValueError(f"val_loss must be a positive number, got {val_loss}")
    row = {
        "chapter": chapter,
        "idea": idea,
        "val_loss": round(float(val_loss), 4),
        "params": params,
        "note": note,
    }
    rows = _rows()
    if any(r["idea"] == idea for r in rows):
        rows = [row if r["idea"] == idea else r for r in rows]  # in place: the order stays
    else:
        rows.append(row)
    rows.sort(key=lambda r: r["chapter"])  # stable: within a chapter, ideas stay in order
    atomic_write_text(_path(), json.dumps(rows, indent=2))
    return table(up_to=chapter)


def clear(chapter: int) -> None:
    """Drop ``chapter``'s rows, so a chapter that renames or drops an idea leaves no stale row;
    a chapter calls it before recording its rows afresh."""
    rows = [r for r in _rows() if r["chapter"] != chapter]
    atomic_write_text(_path(), json.dumps(rows, indent=2))


class LossTable(pd.DataFrame):
    """The table, indexed by chapter, shown in a notebook as one clean table.

    The index stays named "chapter" so that ``table().query("chapter == 2")`` works, but pandas
    would show that name as a second header row; the HTML shows the chapter as a plain first
    column instead, and leaves out the note column while no row has a note. Anything computed
    from the table (a query, a column) is an ordinary DataFrame."""

    def _repr_html_(self) -> str:
        shown = pd.DataFrame(self).reset_index()
        if not shown["note"].fillna("").astype(bool).any():
            shown = shown.drop(columns="note")
        with pd.option_context("display.max_colwidth", None):  # a note is read in full
            return shown.to_html(index=False, notebook=True)


def table(up_to: int | None = None) -> LossTable:
    """The table so far, in chapter order; ``up_to`` leaves out the chapters after it."""
    rows = [r for r in _rows() if up_to is None or r["chapter"] <= up_to]
    columns = ["chapter", "idea", "val_loss", "params", "note"]
    frame = pd.DataFrame(rows, columns=columns).set_index("chapter")
    # Nullable integers: a row without a parameter count must not turn the column into floats.
    return LossTable(frame.astype({"params": "Int64"}))
