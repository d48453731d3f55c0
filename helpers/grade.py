"""Grade learners' notebooks from the exercise checks.

    python -m helpers.grade NOTEBOOK [NOTEBOOK or FOLDER ...] [--json] [--timeout S]

Each notebook runs top to bottom in a fresh kernel, in smoke mode (GPT_COURSE_SMOKE=1, so a
chapter takes seconds to a minute), started in the notebook's folder. The checks print one line
each, ``✅ ex-07-topk: ...`` or ``❌ ex-07-topk: ...``; the grade of an exercise is the last
verdict printed under its label, read from the executed outputs (so the verdicts of the cells that
ran are kept even when a later cell fails, times out or kills the kernel). Each exercise of the
notebook (a ``<div class="exercise" id="ex-…">`` statement, see tools/exercise_markup.py) is
listed: passed, failed, not reached (the run stopped before it), not checked (the run went past
it without calling its check), or not auto-checked (a prose answer, no check).

A notebook that fails is reported with the failing cell and the exercises reached, not as a crash;
``--timeout`` bounds each notebook's whole run. ``--json`` prints one JSON object per notebook,
in a list, for a learning-management system. The exit status is 0 when every notebook was
graded, whatever its grade; 2 for a path that is not a notebook or a folder.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.exercises import all_checks, verdicts_in
from helpers.settings import child_environment

if TYPE_CHECKING:
    from nbformat import NotebookNode

EXERCISE = re.compile(
    r'^<div class="exercise" id="(ex-[\w-]+)">\s*'
    r"(?:\*\*Exercise[ \t]+[\d.]+(?:[ \t]*·[ \t]*([^\n]*?))?\*\*)?",
    re.MULTILINE,
)


@dataclass
class Exercise:
    label: str
    title: str
    cell: int  # index of the cell that states it
    status: str = ""


@dataclass
class Report:
    notebook: str
    completed: bool = False
    seconds: float = 0.0
    error: dict | None = None  # cell (index), source (first line), ename, evalue, timed_out
    exercises: list[Exercise] = field(default_factory=list)

    @property
    def auto_checked(self) -> int:
        return sum(e.status != "not auto-checked" for e in self.exercises)

    @property
    def passed(self) -> int:
        return sum(e.status == "passed" for e in self.exercises)

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "auto_checked": self.auto_checked}


def exercises_in(nb: NotebookNode) -> list[Exercise]:
    """Every exercise statement of the notebook's markdown cells, in order."""
    return [
        Exercise(label, title.strip(), index)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for label, title in EXERCISE.findall(cell.source)
    ]


def printed_text(nb: NotebookNode) -> str:
    """The text every code cell printed, in cell order (where the checks' verdicts are)."""
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


def execute(nb: NotebookNode, folder: Path, timeout: float) -> dict | None:
    """Run the notebook's code cells in a fresh smoke-mode kernel, keeping their outputs in
    ``nb``; None when every cell ran, else what stopped it (the cell index, and why)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    deadline = time.monotonic() + timeout  # counted again from when the kernel is up

    def seconds_left() -> float:
        return deadline - time.monotonic()

    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
        timeout_func=lambda cell: max(1, int(seconds_left())),
        shutdown_kernel="immediate",
    )
    index = None
    try:
        with client.setup_kernel(env=child_environment(GPT_COURSE_SMOKE="1")):
            deadline = time.monotonic() + timeout
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    if seconds_left() <= 0:
                        raise CellTimeoutError(f"no time left for cell {index}")
                    client.execute_cell(cell, index)
    except Exception as err:  # a failing cell, a timeout, a dead kernel, a kernel that won't start
        stopped = {
            "cell": index,
            "source": _first_line(nb.cells[index]) if index is not None else "",
            "ename": type(err).__name__,
            "evalue": str(err).strip().splitlines()[-1][:300],
            "timed_out": isinstance(err, CellTimeoutError),
        }
        if isinstance(err, CellExecutionError):
            stopped.update(ename=err.ename, evalue=err.evalue[:300])
        if stopped["timed_out"]:
            stopped["evalue"] = f"the notebook ran past its {timeout:g} s"
        return stopped
    return None


def _first_line(cell) -> str:
    lines = [line for line in cell.source.splitlines() if line.strip()]
    return lines[0][:100] if lines else ""


def grade(path: str | Path, timeout: float = 600) -> Report:
    """Run one notebook and grade its exercises; never raises for a broken notebook."""
    import nbformat

    path = Path(path)
    report = Report(str(path))
    start = time.perf_counter()
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # not JSON, not a notebook
        report.error = {
            "cell": None,
            "source": "",
            "ename": type(err).__name__,
            "evalue": f"not a readable notebook: {str(err)[:200]}",
            "timed_out": False,
        }
        return report
    for cell in nb.cells:  # judge this run only, never verdicts stored in the file
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    report.error = execute(nb, path.parent.resolve(), timeout)
    report.completed = report.error is None
    report.seconds = round(time.perf_counter() - start, 1)
    report.exercises = exercises_in(nb)
    stopped_at = len(nb.cells) if report.completed else report.error["cell"] or 0
    checked, verdicts = all_checks(), verdicts_in(printed_text(nb))
    for ex in report.exercises:
        if ex.label in verdicts:
            ex.status = "passed" if verdicts[ex.label] else "failed"
        elif ex.label not in checked:
            ex.status = "not auto-checked"
        else:
            ex.status = "not reached" if ex.cell >= stopped_at else "not checked"
    listed = {e.label for e in report.exercises}  # checks called without a statement
    report.exercises += [
        Exercise(label, "", -1, "passed" if ok else "failed")
        for label, ok in verdicts.items()
        if label not in listed
    ]
    return report


def as_table(report: Report) -> str:
    if report.completed:
        how = f"ran to the end in {report.seconds:.0f} s"
    elif report.error["cell"] is None:
        how = report.error["evalue"]
    else:
        e = report.error
        how = f"stopped at cell {e['cell']} ({e['source']!r}): " + (
            "timed out" if e["timed_out"] else f"{e['ename']}: {e['evalue']}"
        )
    lines = [
        f"{report.notebook}: {how}",
        f"  {report.passed} of {report.auto_checked} auto-checked exercises passed",
    ]
    lines += [f"  {e.label:<20} {e.status:<17} {e.title}" for e in report.exercises]
    return "\n".join(lines)


def notebooks_at(paths: list[str]) -> list[Path]:
    """The notebooks named, and those in the folders named (recursively), in order."""
    found = []
    for name in map(Path, paths):
        if name.is_dir():
            found += sorted(p for p in name.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif name.suffix == ".ipynb" and name.is_file():
            found.append(name)
        else:
            raise SystemExit(f"error: {name} is not a notebook (.ipynb) or a folder")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", help="notebooks, or folders of notebooks")
    parser.add_argument(
        "--json", action="store_true", help="print JSON (a list, one object per notebook)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds per notebook (default 600)"
    )
    args = parser.parse_args(argv)
    try:
        paths = notebooks_at(args.notebooks)
    except SystemExit as err:
        print(err, file=sys.stderr)
        return 2
    reports = []
    for path in paths:
        reports.append(grade(path, args.timeout))
        if not args.json:
            print(as_table(reports[-1]), end="\n\n", flush=True)
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
