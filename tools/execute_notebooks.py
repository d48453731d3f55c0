"""Run chapters top to bottom in full mode and store their outputs: how the stored runs are made.

    python tools/execute_notebooks.py notebooks/07_full_gpt.ipynb [more notebooks ...]

Each notebook runs in a fresh kernel started in notebooks/, one at a time (timing-sensitive
cells must have the machine to themselves), with its widgets' state stored so that the book can
show them. The kernelspec is written into each notebook so Lab, Colab and VS Code pick Python 3.
Smoke mode must be off: this writes the outputs readers see.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellControlSignal

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def same_code(a: nbformat.NotebookNode, b: nbformat.NotebookNode) -> bool:
    return a.cell_type == b.cell_type and (a.cell_type != "code" or a.source == b.source)


def keep_prose_edits(nb: nbformat.NotebookNode, started: str, path: Path) -> bool:
    """Markdown cells edited on disk while ``nb`` ran (``started``: the file's text when the run
    began) keep their edit, since prose has no outputs. False when code cells changed: then
    this run's outputs belong to code that is no longer in the file."""
    if path.read_text(encoding="utf-8") == started:
        return True
    before = nbformat.reads(started, as_version=4).cells
    try:
        now = nbformat.read(path, as_version=4).cells
    except ValueError:  # caught half-saved: treat it as changed, and keep the run aside
        return False
    if len(now) != len(before) or not all(map(same_code, before, now)):
        return False
    for ran, edited in zip(nb.cells, now, strict=True):
        if ran.cell_type != "code":
            ran.source = edited.source
    return True


def execute(path: Path) -> float:
    """Execute ``path`` in place; return the seconds it took."""
    started = path.read_text(encoding="utf-8")
    nb = nbformat.reads(started, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=None,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nb.metadata["kernelspec"] = KERNELSPEC
    if not keep_prose_edits(nb, started, path):
        aside = ROOT / "_build" / path.name  # outside notebooks/: no chapter glob picks it up
        aside.parent.mkdir(exist_ok=True)
        nbformat.write(nb, aside)
        raise RuntimeError(
            f"{path.name}: its code changed during the run; the run is in {aside.name}"
        )
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(paths: list[str]) -> None:
    if os.environ.get("GPT_COURSE_SMOKE", "0") not in ("", "0"):
        sys.exit("GPT_COURSE_SMOKE is set: stored outputs must come from a full run; unset it")
    if not paths:
        sys.exit(__doc__)
    failed = []
    for path in map(Path, paths):
        try:
            print(f"{path.name}: {execute(path.resolve()):.0f} s", flush=True)
        except (RuntimeError, CellControlSignal) as err:  # a failed cell, a dead kernel: go on
            print(err, flush=True)
            failed.append(path.name)
    if failed:
        sys.exit(f"not stored: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
