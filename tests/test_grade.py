"""helpers.grade: a learner's notebook runs in a fresh smoke-mode kernel and each exercise gets
its check's last verdict; a notebook that breaks, loops forever or is not a notebook is reported,
never a crash. Tiny hand-made notebooks keep these tests fast; the real chapters are the slow
tests at the end (the solution notebooks pass everything, the student edition fails everything)."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers import grade
from helpers.exercises import all_checks

ROOT = Path(__file__).resolve().parents[1]


def exercise(label, title="An exercise", text="Do it."):
    """A statement in the notebooks' format (tools/exercise_markup.py)."""
    return new_markdown_cell(
        f'<div class="exercise" id="{label}">\n\n**Exercise 0.1 · {title}**\n\n{text}\n\n</div>'
    )


def write(tmp_path, *cells, name="submission.ipynb"):
    path = tmp_path / name
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


def statuses(report):
    return {e.label: e.status for e in report.exercises}


def test_verdicts_are_collected_by_label_and_prose_exercises_are_listed(tmp_path):
    path = write(
        tmp_path,
        exercise("ex-02-uniform", "The loss of a uniform guess"),
        new_code_cell(
            "import math\nfrom helpers.exercises import ch02\n"
            "ch02.check_uniform_loss(lambda v: 0.0)\n"
            "ch02.check_uniform_loss(lambda v: math.log(v))  # the last verdict counts"
        ),
        exercise("ex-02-greedy"),
        new_code_cell("ch02.check_uniform_loss  # the greedy check is never called"),
        exercise("ex-02-lr", "Learning rate", "Try."),
        new_markdown_cell(
            "<details>\n<summary>Solution to Exercise 0.3</summary>\n\n"
            "An answer in words.\n\n</details>",
            metadata={"tags": ["solution"]},
        ),
    )
    report = grade.grade(path, timeout=120)
    assert report.completed and report.error is None
    assert statuses(report) == {
        "ex-02-uniform": "passed",
        "ex-02-greedy": "not checked",
        "ex-02-lr": "not auto-checked",
    }
    assert report.exercises[0].title == "The loss of a uniform guess"
    assert (report.passed, report.auto_checked) == (1, 2)
    assert "1 of 2 auto-checked exercises passed" in grade.as_table(report)


def test_a_syntax_error_is_reported_with_its_cell_and_the_exercises_reached(tmp_path):
    path = write(
        tmp_path,
        exercise("ex-01-pairs"),
        new_code_cell('print("✅ ex-01-pairs: 8 pairs")'),
        new_code_cell("def make_pairs(block:\n    return []"),
        exercise("ex-01-batch"),
        new_code_cell('print("✅ ex-01-batch: never printed")'),
    )
    report = grade.grade(path, timeout=120)
    assert not report.completed
    assert report.error["cell"] == 2 and report.error["ename"] == "SyntaxError"
    assert report.error["source"] == "def make_pairs(block:"
    assert statuses(report) == {"ex-01-pairs": "passed", "ex-01-batch": "not reached"}
    assert "stopped at cell 2" in grade.as_table(report)


def test_a_notebook_that_never_ends_is_stopped_by_the_timeout(tmp_path):
    path = write(
        tmp_path,
        exercise("ex-01-pairs"),
        new_code_cell('print("❌ ex-01-pairs: 0 pairs — hint: ...")'),
        new_code_cell("while True:\n    pass"),
        exercise("ex-01-batch"),
        new_code_cell('print("✅ ex-01-batch: never printed")'),
    )
    report = grade.grade(path, timeout=3)
    assert not report.completed and report.error["timed_out"] and report.error["cell"] == 2
    assert statuses(report) == {"ex-01-pairs": "failed", "ex-01-batch": "not reached"}
    assert report.seconds < 60
    assert "timed out" in grade.as_table(report)


def test_stored_outputs_do_not_count_only_this_run_does(tmp_path):
    cell = new_code_cell("pass")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✅ ex-01-pairs: faked\n")]
    report = grade.grade(write(tmp_path, exercise("ex-01-pairs"), cell), timeout=120)
    assert statuses(report) == {"ex-01-pairs": "not checked"}


def test_a_file_that_is_not_a_notebook_is_reported(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{ not json")
    report = grade.grade(path)
    assert not report.completed and report.error["cell"] is None
    assert "not a readable notebook" in grade.as_table(report)


def test_the_command_line_grades_a_folder_as_json(tmp_path, capsys):
    (tmp_path / "alice").mkdir()
    write(
        tmp_path / "alice",
        exercise("ex-01-pairs"),
        new_code_cell('print("✅ ex-01-pairs: ok")'),
        name="01.ipynb",
    )
    (tmp_path / "bob.ipynb").write_text("not a notebook")
    assert grade.main([str(tmp_path), "--json", "--timeout", "120"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [Path(r["notebook"]).name for r in reports] == ["01.ipynb", "bob.ipynb"]
    assert reports[0]["exercises"][0]["status"] == "passed" and reports[0]["passed"] == 1
    assert reports[1]["completed"] is False
    assert grade.main([str(tmp_path / "missing.txt")]) == 2


def test_exercise_blocks_are_found_in_every_chapter():
    labels = [
        e.label
        for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        for e in grade.exercises_in(nbformat.read(nb, as_version=4))
    ]
    assert len(labels) == len(set(labels)) and len(labels) >= 20
    assert set(all_checks()) <= set(labels), "every check belongs to an exercise block"


# The real chapters: slow (each runs in smoke mode). Two chapters with checks of different kinds.
_spec = importlib.util.spec_from_file_location(
    "student_edition", ROOT / "tools" / "student_edition.py"
)
student_edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_edition)
CHAPTERS = ["01_data_and_tokenization", "04_self_attention"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_a_solution_notebook_passes_every_checked_exercise(name):
    report = grade.grade(ROOT / "notebooks" / f"{name}.ipynb", timeout=600)
    assert report.completed, report.error
    checked = [e for e in report.exercises if e.status != "not auto-checked"]
    assert checked and all(e.status == "passed" for e in checked), statuses(report)


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_a_student_notebook_fails_every_checked_exercise_and_runs_to_the_end(name, tmp_path):
    student_edition.build(tmp_path)
    report = grade.grade(tmp_path / f"{name}.ipynb", timeout=600)
    assert report.completed, report.error
    checked = [e for e in report.exercises if e.status != "not auto-checked"]
    assert checked and all(e.status == "failed" for e in checked), statuses(report)
