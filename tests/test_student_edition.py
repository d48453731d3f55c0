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
_spec = importlib.util.spec_from_file_location(
    "exercise_markup", ROOT / "tools" / "exercise_markup.py"
)
exercise_markup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exercise_markup)


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
    assert "Solution to Exercise" not in text and "<details>" not in text
    assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
    assert not any(c.metadata.get("jupyter", {}).get("source_hidden") for c in student.cells)
    statement = r'<div class="exercise" id="(ex-[\w-]+)">'
    labels = re.findall(statement, "\n".join(c.source for c in original.cells))
    assert labels and re.findall(statement, text) == labels
    stubs = [
        c.source
        for i, c in enumerate(original.cells[1:], 1)
        if c.cell_type == "code" and '<div class="exercise"' in original.cells[i - 1].source
    ]
    assert stubs and all(stub in code_sources(student) for stub in stubs)
    removed = set(code_sources(original)) - set(code_sources(student))
    tagged = {c.source for c in original.cells if "solution" in c.metadata.get("tags", [])}
    assert removed and removed <= tagged, "only the cells tagged solution go"


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


def test_cells_tagged_solution_go_and_directives_are_refused():
    solution = {"tags": ["solution"]}
    cells = [
        new_markdown_cell('<div class="exercise" id="ex-00-e">\n\n**Exercise 0.1 · E**\n\n</div>'),
        new_code_cell("stub()"),
        new_markdown_cell("**Solution to Exercise 0.1**: the code cell below", metadata=solution),
        new_code_cell("solution()", metadata={"tags": ["solution", "hide-cell"]}),
        new_markdown_cell(
            "<details>\n<summary>Why</summary>\n\nBecause.\n\n</details>", metadata=solution
        ),
        new_markdown_cell("## Summary"),
    ]
    kept = [c.source for c in student_edition.without_solutions(cells)]
    assert kept == [cells[0].source, "stub()", "## Summary"]
    old = new_markdown_cell("```{solution} ex-00-e\n:class: dropdown\nBecause.\n```")
    with pytest.raises(ValueError, match="exercise_markup"):
        student_edition.without_solutions([*cells, old])


def test_a_chapter_written_with_directives_converts_and_loses_its_solutions():
    """tools/exercise_markup.py turns sphinx-exercise directives into the portable format,
    touching no code cell, and the student edition then drops exactly the solutions."""
    solution_code = new_code_cell("solution()")
    nb = nbformat.v4.new_notebook(
        cells=[
            new_markdown_cell("Intro.\n\n```{exercise} E\n:label: ex-03-e\nDo it.\n```"),
            new_code_cell("stub()"),
            new_markdown_cell("```{solution-start} ex-03-e\n:class: dropdown\n```"),
            solution_code,
            new_markdown_cell("Why it works.\n\n```{solution-end}\n```"),
            new_markdown_cell(
                "```{exercise} P\n:label: ex-03-p\nSay why.\n```\n\n"
                "```{solution} ex-03-p\n:class: dropdown\nBecause.\n```\n\n## Summary"
            ),
        ]
    )
    exercise_markup.convert(nb, chapter=3)
    nbformat.validate(nb)
    assert [c.source for c in nb.cells] == [
        "Intro.",
        '<div class="exercise" id="ex-03-e">\n\n**Exercise 3.1 · E**\n\nDo it.\n\n</div>',
        "stub()",
        exercise_markup.code_solution_source("3.1"),
        "solution()",
        "<details>\n<summary>Solution to Exercise 3.1, continued</summary>\n\n"
        "Why it works.\n\n</details>",
        '<div class="exercise" id="ex-03-p">\n\n**Exercise 3.2 · P**\n\nSay why.\n\n</div>',
        "<details>\n<summary>Solution to Exercise 3.2</summary>\n\nBecause.\n\n</details>",
        "## Summary",
    ]
    assert solution_code.metadata["jupyter"]["source_hidden"] and solution_code.metadata.cellView
    assert len({c.id for c in nb.cells}) == len(nb.cells)
    kept = [c.source for c in student_edition.without_solutions(nb.cells)]
    assert kept == [nb.cells[i].source for i in (0, 1, 2, 6, 8)]
    with pytest.raises(ValueError, match="no exercise before it"):
        exercise_markup.convert(
            nbformat.v4.new_notebook(cells=[new_markdown_cell("```{solution} ex-03-x\nNo.\n```")]),
            chapter=3,
        )


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
