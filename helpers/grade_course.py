"""The instructor's list of exercises: labels, titles, points and kinds come from the course's own
chapter notebooks, never from a submission, so a deleted or renamed exercise cannot shrink the
list it is graded against."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from helpers.exercises import all_checks
from helpers.settings import REPO_ROOT

COURSE = REPO_ROOT / "notebooks"
STATEMENT = re.compile(
    r'^<div class="exercise" id="(ex-(\d\d)-[\w-]+)">\s*'
    r"\*\*Exercise[ \t]+([\d.]+)(?:[ \t]*·[ \t]*([^\n]*?))?\*\*",
    re.MULTILINE,
)
LABEL = re.compile(r"\bex-(\d\d)-[\w-]+")


@dataclass(frozen=True)
class CourseExercise:
    label: str
    number: str  # "4.2"
    title: str
    kind: str  # "auto-checked" (a check in helpers.exercises) or "discussion" (a prose answer)
    points: int


def exercises_of(notebook_text_cells: list[str]) -> list[tuple[str, str, str]]:
    """(label, number, title) of every exercise statement in the given markdown sources."""
    return [
        (label, number, title.strip())
        for source in notebook_text_cells
        for label, _chapter, number, title in STATEMENT.findall(source)
    ]


def course_exercises(chapter: str, course: Path = COURSE) -> list[CourseExercise]:
    """The exercises of chapter ``chapter`` ("04") as the course states them."""
    import nbformat

    found = sorted(course.glob(f"{chapter}_*.ipynb"))
    if not found:
        raise ValueError(f"the course has no chapter {chapter} in {course}")
    cells = nbformat.read(found[0], as_version=4).cells
    checked = all_checks()
    return [
        CourseExercise(
            label, number, title, *(("auto-checked", 1) if label in checked else ("discussion", 0))
        )
        for label, number, title in exercises_of(
            [c.source for c in cells if c.cell_type == "markdown"]
        )
    ]


def chapter_of(notebook: Path, sources: list[str]) -> str | None:
    """The chapter a submission belongs to: its file name's ``NN_`` prefix, else the chapter
    most of its exercise labels name; None when neither says."""
    if re.match(r"\d\d_", notebook.name):
        return notebook.name[:2]
    chapters = [m for source in sources for m in LABEL.findall(source)]
    return max(set(chapters), key=chapters.count) if chapters else None
