"""helpers.grade grades a class: each submission in its own contained kernel, every exercise from
the kernel's own record of its check, against the course's list of exercises. A small course of
one chapter (99) with one checked and one discussion exercise keeps these tests fast and
independent of the chapters' own exercises; the real chapters are the slow tests at the end."""

import csv
import importlib.util
import json
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers import grade, grade_course
from helpers.grade_sandbox import Limits, network_cut

ROOT = Path(__file__).resolve().parents[1]

CHECK = (
    "import os\n"
    "from helpers.exercises.verdict import exercise, passed, failed\n"
    '@exercise("ex-99-double", "a number")\n'
    "def check_double(fn):\n"
    '    if fn(2) == 4 and fn(-3) == -6:\n        return passed("doubles 2 and -3")\n'
    '    return failed("does not double", "multiply by 2")\n'
)
RIGHT = CHECK + "check_double(lambda x: 2 * x)"
STUB = CHECK + "check_double(lambda x: None)"


def statement(label, number, title):
    return new_markdown_cell(
        f'<div class="exercise" id="{label}">\n\n**Exercise 99.{number} · {title}**\n\n'
        "Do it.\n\n</div>"
    )


def answer(text):
    return new_markdown_cell(text, metadata={"answer_to": "ex-99-why"})


DOUBLE, WHY = statement("ex-99-double", 1, "Double it"), statement("ex-99-why", 2, "Why")


@pytest.fixture
def course(tmp_path, monkeypatch):
    """The instructor's chapter 99, whose ex-99-double is auto-checked."""
    folder = tmp_path / "course"
    folder.mkdir()
    nb = new_notebook(cells=[new_markdown_cell("# 99"), DOUBLE, new_code_cell(RIGHT), WHY])
    nbformat.write(nb, folder / "99_test.ipynb")
    monkeypatch.setattr(grade_course, "all_checks", lambda: {"ex-99-double": None})
    return folder


def write(folder: Path, name: str, *cells) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=list(cells)), folder / name)
    return folder / name


def graded(course, path, **limits):
    report, executed = grade.grade(path.stem, path, Limits(**{"cell_timeout": 5, **limits}), course)
    return report, {e.label: e.status for e in report.exercises}, executed


def test_a_right_answer_scores_its_points_and_the_discussion_answer_is_kept(tmp_path, course):
    path = write(tmp_path / "class", "99_alice.ipynb", DOUBLE, new_code_cell(RIGHT), WHY,
                 answer("Because two."))  # fmt: skip
    report, status, executed = graded(course, path)
    assert status == {"ex-99-double": "passed", "ex-99-why": "discussion"}
    assert (report.points, report.max_points, report.failed_cells) == (1, 1, [])
    assert report.exercises[1].answer == "Because two." and executed is not None


def test_an_untouched_stub_fails_with_its_hint(tmp_path, course):
    report, status, _ = graded(course, write(tmp_path, "99_s.ipynb", DOUBLE, new_code_cell(STUB)))
    assert status["ex-99-double"] == "failed" and report.exercises[0].hint == "multiply by 2"


def test_printing_a_success_line_scores_nothing(tmp_path, course):
    faked = new_code_cell('print("✅ ex-99-double: done")')
    report, status, _ = graded(course, write(tmp_path, "99_f.ipynb", DOUBLE, faked))
    assert status["ex-99-double"] == "not checked" and report.points == 0


def test_an_error_and_a_hang_before_an_exercise_cost_only_their_own_cells(tmp_path, course):
    cells = [new_code_cell("out.shape(1)"), new_code_cell("while True:\n    pass")]
    path = write(tmp_path, "99_e.ipynb", *cells, DOUBLE, new_code_cell(RIGHT))
    report, status, _ = graded(course, path, cell_timeout=3)
    assert status["ex-99-double"] == "passed"
    assert [(f["cell"], f["ename"], f["timed_out"]) for f in report.failed_cells] == [
        (0, "NameError", False),
        (1, "Timeout", True),
    ]


def test_a_deleted_exercise_is_missing_and_scores_zero(tmp_path, course):
    report, status, _ = graded(course, write(tmp_path, "99_d.ipynb", new_code_cell("x = 1")))
    assert status == {"ex-99-double": "missing", "ex-99-why": "missing"}
    assert (report.points, report.max_points) == (0, 1)


def test_a_folder_is_graded_into_a_gradebook_feedback_and_answers(tmp_path, course, capsys):
    klass = tmp_path / "class"
    write(klass, "alice.ipynb", DOUBLE, new_code_cell(RIGHT), WHY, answer("Two."))
    write(klass / "bob", "99_test.ipynb", DOUBLE, new_code_cell(STUB))
    (klass / "carol.ipynb").write_text("{ not json")
    out = tmp_path / "out"
    code = grade.main(
        [str(klass), str(tmp_path / "nobody"), "--course", str(course), "--jobs", "2"]
        + ["--csv", str(out / "g.csv"), "--json", str(out / "g.json")]
        + ["--feedback", str(out / "fb"), "--answers", str(out / "answers")]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == ["alice", "bob", "carol", "nobody"]
    rows = {row["student"]: row for row in csv.DictReader(open(out / "g.csv"))}
    assert (rows["alice"]["ex-99-double"], rows["alice"]["total"]) == ("1", "1")
    assert rows["bob"]["total"] == "0" and "not a readable notebook" in rows["carol"]["error"]
    assert rows["nobody"]["error"]  # a bad path is a row, never an abort
    report = json.loads((out / "g.json").read_text())
    assert {r["student"] for r in report} == set(rows)
    bob = nbformat.read(out / "fb" / "bob.ipynb", as_version=4)
    assert "multiply by 2" in bob.cells[0].source and "0 of 1 points" in bob.cells[0].source
    assert "## alice\n\nTwo." in (out / "answers" / "ex-99-why.md").read_text()


def test_hostile_code_is_contained(tmp_path, course, monkeypatch):
    """Memory without bound, a huge file, a process left behind, the instructor's secret and the
    network: each fails inside the submission and harms nothing; the exercise still grades."""
    monkeypatch.setenv("INSTRUCTOR_TOKEN", "s3cret")
    hostile = [
        "x = bytearray(64 * 2**30)",
        'open("big", "wb").write(b"0" * (200 * 2**20))',
        'import subprocess\nsubprocess.Popen(["sleep", "313"])',
        'import os\nassert "INSTRUCTOR_TOKEN" not in os.environ, "leaked"',
    ]
    if network_cut():
        hostile.append('import socket\nsocket.create_connection(("1.1.1.1", 53), timeout=3)')
    path = write(tmp_path, "99_m.ipynb", *map(new_code_cell, hostile), DOUBLE, new_code_cell(RIGHT))
    report, status, _ = graded(course, path, file_mb=64)
    failed = {f["cell"]: f["ename"] for f in report.failed_cells}
    assert failed[0] == "MemoryError" and failed[1] == "OSError" and 3 not in failed
    assert (4 in failed) == bool(network_cut())
    assert status["ex-99-double"] == "passed"
    left = subprocess.run(["pgrep", "-f", "sleep 313"], capture_output=True, text=True).stdout
    assert not network_cut() or not left.strip(), "a process outlived its submission"


# The real chapters: slow (each runs in smoke mode).
_spec = importlib.util.spec_from_file_location(
    "student_edition", ROOT / "tools" / "student_edition.py"
)
student_edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_edition)
CHAPTERS = ["01_data_and_tokenization", "04_self_attention"]


def test_every_chapter_states_its_exercises_for_the_grader():
    listed = [
        e.label
        for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        for e in grade_course.course_exercises(nb.name[:2])
    ]
    assert len(listed) == len(set(listed)) and len(listed) >= 20
    assert set(grade_course.all_checks()) <= set(listed), "every check belongs to an exercise"


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_a_solution_notebook_passes_every_checked_exercise(name):
    report, _ = grade.grade(name, ROOT / "notebooks" / f"{name}.ipynb", Limits(cell_timeout=300))
    checked = [e for e in report.exercises if e.kind == "auto-checked"]
    assert checked and all(e.status == "passed" for e in checked), report.as_dict()


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_a_student_notebook_fails_every_checked_exercise_and_runs_to_the_end(name, tmp_path):
    student_edition.build(tmp_path)
    report, _ = grade.grade(name, tmp_path / f"{name}.ipynb", Limits(cell_timeout=300))
    assert report.failed_cells == [], report.failed_cells
    checked = [e for e in report.exercises if e.kind == "auto-checked"]
    assert checked and all(e.status == "failed" for e in checked), report.as_dict()
