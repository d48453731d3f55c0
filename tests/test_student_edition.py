"""The student edition (`make student`, tools/student_edition.py): solutions gone, exercise
statements and stubs kept, outputs cleared except where the text states them, badges pointing at
the student copies; and every student notebook passes nbval in smoke mode (slow)."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

_spec = importlib.util.spec_from_file_location(
    "student_edition", ROOT / "tools" / "student_edition.py"
)
student_edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_edition)


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "notebooks"
    student_edition.build(out)
    return out


def code_sources(nb):
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_are_removed_and_exercises_and_stubs_kept(source, edition):
    original = nbformat.read(source, as_version=4)
    student = nbformat.read(edition / source.name, as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert not re.search(r"\{solution(-start|-end)?\}", text)
    assert not any(c.metadata.get("jupyter", {}).get("source_hidden") for c in student.cells)
    labels = re.findall(r":label: (ex-[\w-]+)", "\n".join(c.source for c in original.cells))
    assert labels and re.findall(r":label: (ex-[\w-]+)", text) == labels
    stubs = [
        c.source
        for i, c in enumerate(original.cells[1:], 1)
        if c.cell_type == "code" and "{exercise}" in original.cells[i - 1].source
    ]
    assert stubs and all(stub in code_sources(student) for stub in stubs)
    solutions = set(code_sources(original)) - set(code_sources(student))
    assert solutions and all("check_" in s for s in solutions), (
        "only solutions go (each runs its check)"
    )


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_kept_only_where_the_text_states_them(source, edition):
    student = nbformat.read(edition / source.name, as_version=4)
    for cell in student.cells:
        if cell.cell_type == "code":
            assert bool(cell.outputs) <= student_edition.keeps_output(cell), cell.source[:60]
            assert (cell.execution_count is None) == (not cell.outputs)
    assert any(c.get("outputs") for c in student.cells), "the nbval-check-output cells keep theirs"
    assert "widgets" not in student.metadata


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_badge_points_at_the_student_copy(source, edition):
    first = nbformat.read(edition / source.name, as_version=4).cells[0].source
    path = student_edition.student_path()
    assert f"/blob/main/{path}/{source.name})" in first
    assert f"/blob/main/notebooks/{source.name}" not in first


def test_text_around_the_solution_markers_stays():
    cells = [
        new_markdown_cell("```{exercise} E\n:label: ex-00-e\nDo it.\n```"),
        new_code_cell("stub()"),
        new_markdown_cell(
            "Before the solution.\n\n```{solution-start} ex-00-e\n:class: dropdown\n```"
        ),
        new_code_cell("solution()"),
        new_markdown_cell("Why it works.\n\n```{solution-end}\n```\n\nAfter the solution."),
        new_markdown_cell(
            "```{exercise} P\n:label: ex-00-p\nSay why.\n```\n\n"
            "```{solution} ex-00-p\n:class: dropdown\nBecause.\n```\n\n## Summary"
        ),
    ]
    kept = [c.source for c in student_edition.without_solutions(cells)]
    assert kept == [
        cells[0].source,
        "stub()",
        "Before the solution.",
        "After the solution.",
        "```{exercise} P\n:label: ex-00-p\nSay why.\n```\n\n## Summary",
    ]
    with pytest.raises(ValueError, match="no \\{solution-end\\}"):
        student_edition.without_solutions(cells[:4])


@pytest.mark.slow
def test_every_student_notebook_passes_nbval_in_smoke_mode(edition):
    env = {**os.environ, "GPT_COURSE_SMOKE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--nbval-lax",
            "--rootdir",
            str(edition),
            "-o",
            "addopts=",
            str(edition),
        ],
        cwd=edition,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
