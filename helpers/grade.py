"""Grade a class: every submission in its own contained kernel, each exercise from its own check.

    python -m helpers.grade SUBMISSIONS... [--csv FILE] [--json FILE] [--feedback DIR]
                            [--answers DIR] [--jobs N] [--cell-timeout S] [--cap S]

A submission is a notebook (the student is its file name) or a folder holding one (the student
is the folder's name). Each runs in smoke mode in a fresh kernel (helpers.grade_kernel) inside a
scratch copy of its folder, with an environment stripped of the instructor's variables, limits on
memory, CPU time, file size and processes, and no network where Linux allows it. Every cell runs;
an error or a hang (``--cell-timeout``, default 60 s; ``--cap`` bounds the whole run) costs only
that cell. The verdicts come from the kernel's own record of the checks, never from printed text.
An exercise passes when its visible check passes and so do its hidden cases (helpers.grade_hidden:
other shapes, seeds and edge cases, run in the kernel on the same answer); the reports say which
of the two failed.

The exercises, their titles, kinds and points come from the course's chapter notebooks
(helpers.grade_course): an exercise missing from a submission scores zero. One line per student
is printed as each finishes; ``--json`` is rewritten after each, so an interrupted run keeps what
it graded. ``--csv`` has one row per student, one column per exercise, the total and what failed;
``--feedback`` gets each student's executed notebook with the verdicts and hints on top;
``--answers`` gets one file per discussion exercise with every student's answer. A path that is
not a submission becomes a row with its error. The exit status is 0 once everything is graded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.atomic_io import atomic_write_text
from helpers.grade_course import CourseExercise, chapter_of, course_exercises
from helpers.grade_sandbox import Limits, contained_command, stripped_environment

if TYPE_CHECKING:
    from nbformat import NotebookNode


@dataclass
class Graded:
    label: str
    number: str
    title: str
    kind: str
    max_points: int
    status: str  # passed, failed, not checked, missing, discussion
    points: int = 0
    part: str = ""  # what failed: "visible check" or "hidden cases"
    verdict: str = ""
    hint: str = ""
    answer: str = ""


@dataclass
class Report:
    student: str
    notebook: str
    chapter: str | None = None
    error: str | None = None  # why the submission could not be graded at all
    failed_cells: list[dict] = field(default_factory=list)
    exercises: list[Graded] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(e.max_points for e in self.exercises)

    def as_dict(self) -> dict:
        return {**asdict(self), "points": self.points, "max_points": self.max_points}


def submissions_at(paths: list[Path]) -> list[tuple[str, Path]]:
    """(student, notebook) for each path: a notebook, a folder of one student's notebook, or a
    folder of a class (its notebooks and its folders). A path that is none of these is kept, to
    be reported as a row with its error."""
    found = []
    for path in paths:
        notebooks = sorted(path.glob("*.ipynb")) if path.is_dir() else []
        if path.is_file():
            found.append((path.stem, path))
        elif path.is_dir() and len(notebooks) == 1 and not any(p.is_dir() for p in _dirs(path)):
            found.append((path.name, notebooks[0]))
        elif path.is_dir():
            found += [(nb.stem, nb) for nb in notebooks]
            for folder in _dirs(path):
                inside = sorted(folder.glob("*.ipynb"))
                found += [(folder.name, inside[0])] if len(inside) == 1 else [(folder.name, folder)]
        else:
            found.append((path.name, path))
    return found


def _dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def grade(
    student: str, notebook: Path, limits: Limits | None = None, course: Path | None = None
) -> tuple[Report, NotebookNode | None]:
    """Grade one submission; never raises. Returns the report and the executed notebook, or
    None when nothing ran."""
    import nbformat

    limits = limits or Limits()
    report = Report(student, str(notebook))
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as err:  # a folder without one notebook, a missing file, not JSON
        report.error = f"not a readable notebook: {type(err).__name__}: {str(err)[:200]}"
        return report, None
    sources = [c.source for c in nb.cells]
    report.chapter = chapter_of(notebook, sources)
    try:
        expected = course_exercises(report.chapter, **({"course": course} if course else {}))
    except (ValueError, TypeError):
        report.error = "no chapter: name the notebook NN_….ipynb as the course does"
        return report, None
    with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
        workdir = Path(scratch)
        (workdir / "work").mkdir()  # the notebook alone: nothing of the other students'
        shutil.copyfile(notebook, workdir / "work" / notebook.name)
        result = run_contained(workdir / "work" / notebook.name, workdir, limits)
        executed = workdir / "executed.ipynb"
        executed = nbformat.read(executed, as_version=4) if executed.exists() else None
    report.seconds = round(result.get("seconds", 0.0), 1)
    report.failed_cells = result.get("failures", [])
    report.error = result.get("error")
    answers = discussion_answers(nb.cells)
    present = {label for source in sources for label in _labels(source)}
    verdicts, hidden = result.get("verdicts", {}), result.get("hidden", {})
    report.exercises = [
        judged(ex, verdicts, hidden, ex.label in present, answers) for ex in expected
    ]
    return report, executed


def run_contained(notebook: Path, workdir: Path, limits: Limits) -> dict:
    """Run helpers.grade_kernel on ``notebook`` as a contained child process; its result."""
    command = [
        sys.executable,
        "-m",
        "helpers.grade_kernel",
        str(notebook),
        str(workdir),
        "--cell-timeout",
        str(limits.cell_timeout),
        "--cap",
        str(limits.cap),
    ]
    try:
        done = subprocess.run(
            contained_command(command),
            env=stripped_environment(workdir),
            cwd=notebook.parent,
            capture_output=True,
            text=True,
            timeout=limits.cap + 120,
            preexec_fn=limits.apply,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the run did not end within {limits.cap + 120:g} s"}
    result = workdir / "result.json"
    if not result.exists():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {"error": f"the grading kernel stopped (exit {done.returncode}): {tail}"}
    return json.loads(result.read_text(encoding="utf-8"))


def judged(
    ex: CourseExercise, verdicts: dict, hidden: dict, present: bool, answers: dict
) -> Graded:
    graded = Graded(ex.label, ex.number, ex.title, ex.kind, ex.points, "discussion")
    if ex.kind == "discussion":
        graded.answer = answers.get(ex.label, "")
        graded.status = "discussion" if present else "missing"
        return graded
    verdict = verdicts.get(ex.label)
    if verdict is None:
        graded.status = "not checked" if present else "missing"
        return graded
    if not verdict["ok"]:
        graded.part = "visible check"
    elif not hidden.get(ex.label, {"ok": True})["ok"]:  # no record: it has no hidden cases
        graded.part, verdict = "hidden cases", hidden[ex.label]
    graded.status = "failed" if graded.part else "passed"
    graded.points = 0 if graded.part else ex.points
    graded.verdict, graded.hint = verdict["what"], verdict["hint"]
    return graded


def _labels(source: str) -> list[str]:
    from helpers.grade_course import STATEMENT

    return [label for label, *_ in STATEMENT.findall(source)]


def discussion_answers(cells) -> dict[str, str]:
    """The student's answer to each discussion exercise: the cell the student edition placed
    after its statement (metadata ``answer_to``)."""
    return {
        cell.metadata["answer_to"]: cell.source.strip()
        for cell in cells
        if cell.metadata.get("answer_to")
    }


def one_line(report: Report) -> str:
    if report.error:
        return f"{report.student}: not graded: {report.error}"
    failed = f", {len(report.failed_cells)} cell(s) failed" if report.failed_cells else ""
    return (
        f"{report.student}: {report.points}/{report.max_points} points "
        f"(chapter {report.chapter}, {report.seconds:.0f} s{failed})"
    )


def feedback_notebook(nb: NotebookNode, report: Report, out: Path) -> None:
    """The student's executed notebook with their verdicts, hints and failed cells on top."""
    import nbformat
    from nbformat.v4 import new_markdown_cell

    rows = [f"**{report.points} of {report.max_points} points**", ""]
    rows += [
        f"- Exercise {e.number} ({e.label}): {e.status}"
        + (f" ({e.part})" if e.part else "")
        + (f". {e.verdict}" if e.verdict else "")
        + (f" Hint: {e.hint}" if e.hint and e.status == "failed" else "")
        for e in report.exercises
    ]
    rows += [
        f"- Cell {f['cell']} ({f['source']!r}) failed: {f['ename']}: {f['evalue']}"
        for f in report.failed_cells
    ]
    nb.cells.insert(0, new_markdown_cell("\n".join(rows)))
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / f"{report.student}.ipynb")


def write_json(reports: list[Report], path: Path) -> None:
    text = json.dumps([r.as_dict() for r in reports], indent=1, ensure_ascii=False)
    atomic_write_text(path, text + "\n")


def write_csv(reports: list[Report], path: Path) -> None:
    """One row per student, one column per exercise (points), the total: a gradebook import. The
    last column says, for each failed exercise, which part failed and its hint."""
    labels = list(dict.fromkeys(e.label for r in reports for e in r.exercises))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *labels, "total", "max", "error", "failed"])
        for r in reports:
            points = {e.label: e.points for e in r.exercises}
            failed = "; ".join(
                f"{e.label} ({e.part}): {e.hint or e.verdict}" for e in r.exercises if e.part
            )
            writer.writerow(
                [r.student, *(points.get(x, 0) for x in labels), r.points, r.max_points, r.error]
                + [failed]
            )


def write_answers(reports: list[Report], folder: Path) -> None:
    """One markdown file per discussion exercise, with every student's answer under their name."""
    by_label: dict[str, list[str]] = {}
    for r in reports:
        for e in r.exercises:
            if e.kind == "discussion":
                by_label.setdefault(e.label, []).append(
                    f"## {r.student}\n\n{e.answer or '(no answer)'}\n"
                )
    folder.mkdir(parents=True, exist_ok=True)
    for label, answers in by_label.items():
        (folder / f"{label}.md").write_text("\n".join(answers), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="notebooks or folders")
    parser.add_argument("--json", type=Path, help="write the report (points, verdicts, hints)")
    parser.add_argument("--csv", type=Path, help="write one row per student for a gradebook")
    parser.add_argument("--feedback", type=Path, help="folder for executed notebooks + verdicts")
    parser.add_argument("--answers", type=Path, help="folder for the discussion answers")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout)
    parser.add_argument("--cap", type=float, default=Limits.cap, help="seconds per submission")
    parser.add_argument("--memory-gb", type=float, default=Limits.memory_gb)
    parser.add_argument("--course", type=Path, help="the chapter notebooks (default: notebooks/)")
    args = parser.parse_args(argv)
    limits = Limits(args.cell_timeout, args.cap, args.memory_gb)
    reports: list[Report] = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            pool.submit(grade, s, nb, limits, args.course) for s, nb in submissions_at(args.paths)
        ]
        for future in as_completed(futures):
            report, executed = future.result()
            reports.append(report)
            print(one_line(report), flush=True)
            if executed and args.feedback:
                feedback_notebook(executed, report, args.feedback)
            if args.json:
                write_json(reports, args.json)
    reports.sort(key=lambda r: r.student)
    if args.json:
        write_json(reports, args.json)
    if args.csv:
        write_csv(reports, args.csv)
    if args.answers:
        write_answers(reports, args.answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
