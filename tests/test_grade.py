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


# Hidden cases (helpers.grade_hidden): after a real check passes, in the same kernel.
ATTENTION = new_markdown_cell(
    '<div class="exercise" id="ex-04-attention">\n\n**Exercise 4.1 · Attention**\n\n</div>'
)
MASKED_FOR_SIX = (
    "import torch, torch.nn.functional as F\n"
    "from helpers.exercises import ch04\n"
    "def attention(q, k, v, causal):\n"
    "    wei = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5\n"
    "    if causal:  # a mask for the visible case's T = 6 only\n"
    "        wei = wei.masked_fill(torch.ones(6, 6).tril() == 0, float('-inf'))\n"
    "    return F.softmax(wei, dim=-1) @ v\n"
)
BY_EINSUM = (
    "import math, torch\n"
    "from helpers.exercises import ch04\n"
    "def attention(q, k, v, causal):\n"
    "    scores = torch.einsum('btd,bsd->bts', q, k) / math.sqrt(q.size(-1))\n"
    "    if causal:\n"
    "        future = torch.ones(q.size(1), k.size(1), dtype=torch.bool).triu(1)\n"
    "        scores = scores.masked_fill(future, -math.inf)\n"
    "    return scores.softmax(-1) @ v\n"
)
# A submission trying its luck: a module of its own under the hidden cases' name, the names the
# grader's cell binds, and lines that look like verdicts of every kind.
TRICKS = (
    "import sys, types\n"
    "sys.modules['helpers.grade_hidden'] = types.SimpleNamespace(report=print, CASES={})\n"
    "_util = _spec = _hidden = report = None\n"
    "for kind in ('hidden', 'verdicts'):\n"
    '    print(kind + \'-0123456789abcdef:\' + \'{"ok": true, "what": "", "hint": ""}\')\n'
)


@pytest.fixture
def course04(tmp_path, monkeypatch):
    """The instructor's chapter 04, reduced to its auto-checked ex-04-attention."""
    folder = tmp_path / "course04"
    write(folder, "04_test.ipynb", ATTENTION)
    monkeypatch.setattr(grade_course, "all_checks", lambda: {"ex-04-attention": None})
    return folder


def test_an_answer_fitted_to_the_visible_check_fails_on_a_hidden_case(tmp_path, course04):
    """The mask sized for T = 6 passes the visible check and breaks at T = 1; the tricks change
    nothing; every report says the hidden cases failed, and why."""
    fitted = new_code_cell(MASKED_FOR_SIX + TRICKS + "ch04.check_attention(attention)")
    path = write(tmp_path, "04_ann.ipynb", ATTENTION, fitted)
    out = tmp_path / "out"
    grade.main(
        [str(path), "--course", str(course04), "--cell-timeout", "60"]
        + ["--csv", str(out / "g.csv"), "--json", str(out / "g.json"), "--feedback", str(out)]
    )
    (report,) = json.loads((out / "g.json").read_text())
    (attention,) = report["exercises"]
    assert attention["status"] == "failed" and attention["part"] == "hidden cases"
    assert "(B, T, hs) = (1, 1, 4)" in attention["verdict"] and "take T" in attention["hint"]
    row = next(csv.DictReader(open(out / "g.csv")))
    assert row["ex-04-attention"] == "0" and "(hidden cases): take T" in row["failed"]
    feedback = nbformat.read(out / "04_ann.ipynb", as_version=4)
    assert "✅ ex-04-attention" in str(feedback.cells[2].outputs)  # the visible check's tick
    assert "failed (hidden cases)" in feedback.cells[0].source
    assert "Hint: take T" in feedback.cells[0].source


def test_a_right_answer_written_another_way_passes_the_hidden_cases(tmp_path, course04):
    code = new_code_cell(BY_EINSUM + "ch04.check_attention(attention)")
    path = write(tmp_path, "04_bob.ipynb", ATTENTION, code)
    report, status, _ = graded(course04, path, cell_timeout=60)
    assert status == {"ex-04-attention": "passed"} and report.points == 1, report.as_dict()


def test_a_check_called_where_the_grader_cannot_follow_fails_its_hidden_cases(tmp_path, course04):
    """Called under another name, the check passes, but the grader cannot tell which answer to
    give the hidden cases: they count as failed, with a hint saying how to call the check."""
    aliased = new_code_cell(BY_EINSUM + "check = ch04.check_attention\ncheck(attention)")
    path = write(tmp_path, "04_cy.ipynb", ATTENTION, aliased)
    report, status, _ = graded(course04, path, cell_timeout=60)
    assert status == {"ex-04-attention": "failed"} and report.exercises[0].part == "hidden cases"
    assert "chNN.check_" in report.exercises[0].hint


def test_a_hidden_case_that_hangs_is_stopped_by_the_cell_timeout(tmp_path, course04):
    """Fine on the visible case, endless on any other: the hidden cases stop at the cell's time
    limit, fail, and the cells after them still run."""
    hangs = BY_EINSUM.replace(
        "    return scores", "    while q.shape[1] != 6:\n        pass\n    return scores"
    )
    cells = [ATTENTION, new_code_cell(hangs + "ch04.check_attention(attention)")]
    path = write(tmp_path, "04_dee.ipynb", *cells, new_code_cell("after = 1"))
    report, status, executed = graded(course04, path, cell_timeout=20)
    assert status == {"ex-04-attention": "failed"}
    assert "Timeout" in report.exercises[0].verdict and report.failed_cells == []
    assert executed.cells[-1].execution_count is not None


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
