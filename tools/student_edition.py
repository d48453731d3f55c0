"""Write the student edition: every chapter without its solutions, ready to hand out.

    python tools/student_edition.py [--out _build/student/notebooks]      (or: make student)

From each notebooks/NN_*.ipynb it writes a copy in which
- the solutions are gone: every cell tagged ``solution`` (the format is described in
  tools/exercise_markup.py); the exercise statements and their stub cells stay, so each check
  prints a cross with a hint until the learner's answer is right;
- outputs are cleared, except those of the cells whose result the text states exactly: the
  deterministic cells tagged ``nbval-check-output`` (nbval compares them, and a learner
  can compare their own run with them), and any cell tagged ``keep-output``. Everything else
  (losses, timings, samples, plots, widgets) a learner's own run produces, and it differs from
  machine to machine;
- each discussion exercise (one with no check in helpers.exercises) gets an answer cell right
  after its statement, marked ``answer_to`` in its metadata, where ``helpers.grade`` collects
  the answers;
- the Colab badge points at the student copy: ``student_edition.path`` in _config.yml, in the
  repository of ``repository.url`` (the setup cell clones that repository, as before).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "student" / "notebooks"
DIRECTIVE = re.compile(r"^(`{3,}|:{3,})\{(exercise|solution|solution-start|solution-end)\}", re.M)


def student_path(root: Path = ROOT) -> str:
    """Where the student copies live in the repository (``student_edition.path``)."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return str((config.get("student_edition") or {}).get("path", "student/notebooks")).strip("/")


def keeps_output(cell) -> bool:
    """A cell whose output the text states exactly: tagged ``nbval-check-output`` (nbval compares
    it) or ``keep-output``."""
    return bool({"nbval-check-output", "keep-output"} & set(cell.metadata.get("tags", [])))


def is_solution(cell) -> bool:
    return "solution" in cell.metadata.get("tags", [])


def without_solutions(cells: list) -> list:
    """The cells without those tagged ``solution``. A notebook still written with
    sphinx-exercise directives is refused (its solutions are not tagged): convert it first."""
    for cell in cells:
        if cell.cell_type == "markdown" and DIRECTIVE.search(cell.source):
            raise ValueError(
                "exercise directives in a markdown cell: run tools/exercise_markup.py first"
            )
    return [cell for cell in cells if not is_solution(cell)]


def with_answer_cells(cells: list, checked: set[str]) -> list:
    """``cells`` with an answer cell after each statement of an exercise that has no check."""
    from helpers.grade_course import STATEMENT

    out = []
    for cell in cells:
        out.append(cell)
        for label, *_ in STATEMENT.findall(cell.source) if cell.cell_type == "markdown" else []:
            if label not in checked:
                out.append(
                    nbformat.v4.new_markdown_cell(
                        "*Your answer (edit this cell):* ", metadata={"answer_to": label}
                    )
                )
    return out


def student_notebook(nb, name: str, repo_url: str, branch: str, path: str):
    """A student copy of the notebook ``nb`` (read with nbformat), named ``name``."""
    from helpers.exercises import all_checks

    nb = nbformat.from_dict(nb)
    nb.cells = with_answer_cells(without_solutions(nb.cells), set(all_checks()))
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # timings of the author's run
        if cell.cell_type == "code" and not keeps_output(cell):
            cell.outputs, cell.execution_count = [], None  # a kept output keeps its count: nbval
    nb.metadata.pop("widgets", None)  # the widgets' state went with their outputs
    repo = repo_url.removeprefix("https://github.com/")
    badge = f"colab.research.google.com/github/{repo}/blob/{branch}/"
    nb.cells[0].source = nb.cells[0].source.replace(
        f"{badge}notebooks/{name}", f"{badge}{path}/{name}"
    )
    return nb


def build(out: Path = OUT, root: Path = ROOT) -> list[Path]:
    """Write the student edition of every chapter into ``out``; returns the files written."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repository = config["repository"]
    url, branch = repository["url"].rstrip("/"), repository.get("branch", "main")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = student_notebook(
            nbformat.read(source, as_version=4), source.name, url, branch, student_path(root)
        )
        nbformat.validate(nb)
        nbformat.write(nb, out / source.name)
        written.append(out / source.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=OUT, help="folder to write (default %(default)s)"
    )
    args = parser.parse_args(argv)
    written = build(args.out)
    where = args.out.resolve()
    shown = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
    print(
        f"wrote {len(written)} student notebooks to {shown}; "
        f"their Colab badges point at {student_path()}/ in the repository"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
