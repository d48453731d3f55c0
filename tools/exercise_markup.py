"""Exercise markup that JupyterLab, Colab, VS Code and the book all render alike.

    python tools/exercise_markup.py [NOTEBOOK ...]     (default: every notebooks/NN_*.ipynb)

The format. Chapter NN's exercises are numbered NN.1, NN.2, ... in order of appearance, and each
is labelled ``ex-NN-name`` (the label its check prints and ``helpers.grade`` reports).

- The statement is a markdown cell of its own, plain HTML around markdown (every renderer keeps
  a ``div`` with ``class`` and ``id``; the blank lines let the text inside be markdown)::

      <div class="exercise" id="ex-07-topk">

      **Exercise 7.1 · Top-k by hand**

      Write `my_top_k(logits, k)` ...

      </div>

- A coding exercise's stub cell follows it and calls its check (``ch07.check_top_k(...)``).
- A solution in words is a markdown cell tagged ``solution``, closed until the learner opens it::

      <details>
      <summary>Solution to Exercise 7.3</summary>

      Training restarts from ...

      </details>

- A solution in code is a markdown cell tagged ``solution``
  (``**Solution to Exercise 7.1**, in the code cell below: ...``), then the code cell(s), each
  tagged ``solution`` and ``hide-cell`` (the book shows a toggle over code and output) with
  ``metadata.jupyter.source_hidden`` (JupyterLab and VS Code show it collapsed) and
  ``metadata.cellView = "form"`` (Colab shows "Show code" instead of the code). Words that
  follow the code are a ``<details>`` cell tagged ``solution`` too.

The student edition (tools/student_edition.py) drops every cell tagged ``solution``.

Run on notebooks written with sphinx-exercise directives (``{exercise}`` with ``:label:``,
``{solution}``, ``{solution-start}`` ... ``{solution-end}``), this script rewrites them into the
format above, in place. It edits markdown cells and cell metadata only, never code or outputs,
so stored outputs stay valid. A notebook without directives is left as it is.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>exercise|solution|solution-start|solution-end)\}"
    r"[ \t]*(?P<arg>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)
OPTION = re.compile(r"^:(\w[\w-]*):[ \t]*(.*)$")
SOLUTION_TAGS = ["solution", "hide-cell"]


def exercise_source(label: str, number: str, title: str, text: str) -> str:
    heading = f"**Exercise {number} · {title}**" if title else f"**Exercise {number}**"
    return f'<div class="exercise" id="{label}">\n\n{heading}\n\n{text.strip()}\n\n</div>'


def details_source(summary: str, text: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n\n{text.strip()}\n\n</details>"


def code_solution_source(number: str) -> str:
    return f"**Solution to Exercise {number}**, in the code cell below: try the exercise first."


def _directive(match: re.Match) -> tuple[str, str, dict, str]:
    """(name, argument, options, body) of one directive block."""
    lines = match["body"].splitlines()
    options = {}
    while lines and (option := OPTION.match(lines[0])):
        options[option[1]] = option[2].strip()
        lines.pop(0)
    return match["name"], match["arg"].strip(), options, "\n".join(lines)


def _parts(text: str) -> list[tuple]:
    """The cell's text cut into ("text", str) and (name, argument, options, body) pieces."""
    parts, at = [], 0
    for match in DIRECTIVE.finditer(text):
        if text[at : match.start()].strip():
            parts.append(("text", text[at : match.start()].strip("\n")))
        parts.append(_directive(match))
        at = match.end()
    if text[at:].strip():
        parts.append(("text", text[at:].strip("\n")))
    return parts


def _tag(cell, tags: list[str]) -> None:
    have = cell.metadata.setdefault("tags", [])
    have += [t for t in tags if t not in have]


def _piece(cell, source: str, suffix: str, tags: list[str], first: bool):
    """The cell ``cell`` with a new source (its first piece keeps it and its id), or a new
    markdown cell with an id derived from it."""
    if first:
        piece = cell
    else:
        piece = new_markdown_cell()
        if "id" in cell:
            piece.id = f"{cell.id}-{suffix}"[:64]
        else:
            del piece["id"]
    piece.source = source
    if tags:
        _tag(piece, tags)
    return piece


def convert(nb, chapter: int):
    """The notebook ``nb`` (read with nbformat) with its directives rewritten, in place; returns
    it. Raises ValueError for markup it cannot place (a label not ``ex-NN-…``, a solution of an
    unknown exercise, a ``{solution-start}`` without its end)."""
    numbers: dict[str, str] = {}  # label -> "7.1"
    cells, inside = [], None  # inside: the number of the open code solution

    def number_of(label):
        if label not in numbers:
            raise ValueError(f"a solution for {label!r}, which no exercise before it states")
        return numbers[label]

    for cell in nb.cells:
        if cell.cell_type != "markdown":
            if inside is not None:
                _tag(cell, SOLUTION_TAGS)
                cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
                cell.metadata["cellView"] = "form"  # Colab's way of hiding a cell's code
            cells.append(cell)
            continue
        parts = _parts(cell.source)
        if inside is None and all(p[0] == "text" for p in parts):
            cells.append(cell)
            continue
        pieces = []  # (source, id suffix, tags)
        for k, part in enumerate(parts):
            kind = part[0]
            if kind == "text" and inside is not None:
                summary = f"Solution to Exercise {inside}, continued"
                pieces.append((details_source(summary, part[1]), f"s{k}", ["solution"]))
            elif kind == "text":
                pieces.append((part[1], f"t{k}", []))
            elif kind == "exercise":
                _, title, options, body = part
                label = options.get("label", "")
                if not re.fullmatch(rf"ex-{chapter:02d}-[\w-]+", label):
                    raise ValueError(f"{title!r} has label {label!r}, not ex-{chapter:02d}-…")
                numbers[label] = f"{chapter}.{len(numbers) + 1}"
                pieces.append((exercise_source(label, numbers[label], title, body), f"e{k}", []))
            elif kind == "solution":
                _, label, _, body = part
                summary = f"Solution to Exercise {number_of(label)}"
                pieces.append((details_source(summary, body), f"{label}-solution", ["solution"]))
            elif kind == "solution-start":
                inside = number_of(part[1])
                pieces.append((code_solution_source(inside), f"{part[1]}-solution", ["solution"]))
            else:  # solution-end: the marker itself goes
                if inside is None:
                    raise ValueError("a {solution-end} without its {solution-start}")
                inside = None
        cells += [_piece(cell, *piece, first=i == 0) for i, piece in enumerate(pieces)]
    if inside is not None:
        raise ValueError(f"the solution to Exercise {inside} has no {{solution-end}}")
    nb.cells = cells
    return nb


def convert_file(path: Path) -> bool:
    """Rewrite one notebook in place; True when it changed."""
    before = path.read_text(encoding="utf-8")
    nb = convert(nbformat.reads(before, as_version=4), int(path.name[:2]))
    nbformat.validate(nb)
    after = nbformat.writes(nb) + "\n"
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a.startswith("-") for a in args):
        print(__doc__)
        return 0 if {"-h", "--help"} & set(args) else 2
    paths = [Path(a) for a in args] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    changed = [p for p in paths if convert_file(p)]
    print(f"rewrote the exercise markup of {len(changed)} of {len(paths)} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
