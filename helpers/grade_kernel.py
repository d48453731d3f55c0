"""One submission in its own kernel: every code cell runs, an error or a hang costing only that
cell, and the verdicts are read from the kernel's own record afterwards, so a printed line
counts for nothing. Right after a cell whose check passed, the exercise's hidden cases
(helpers.grade_hidden) run in the same kernel on the objects that cell gave the check, under the
same time limit. helpers.grade starts this module as a child process, with limits:

    python -m helpers.grade_kernel SUBMISSION.ipynb WORKDIR --cell-timeout 60 --cap 900
"""

from __future__ import annotations

import argparse
import ast
import json
import secrets
import sys
import time
from pathlib import Path

READ_VERDICTS = (
    "import json as _json\n"
    "from helpers.exercises.verdict import verdict_records as _records\n"
    "print({marker!r} + _json.dumps(_records()))"
)
# The hidden cases' module is loaded from its file, not imported: a submission may have put a
# module of its own under that name. Every name the cell binds is bound there, before its use.
HIDDEN = Path(__file__).with_name("grade_hidden.py")
RUN_HIDDEN = (
    "import importlib.util as _util\n"
    "_spec = _util.spec_from_file_location('_grade_hidden', {path!r})\n"
    "_hidden = _util.module_from_spec(_spec)\n"
    "_spec.loader.exec_module(_hidden)\n"
    "_hidden.report({marker!r}, {label!r}, lambda: ({args},))\n"
    "del _util, _spec, _hidden"
)
NOT_RUN = {
    "ok": False,
    "what": "the check passed in a cell the grader could not read its answer from",
    "hint": "call the check as the notebook does: chNN.check_...(your answer)",
}


def first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0][:100] if lines else ""


def run(nb, workdir: Path, cell_timeout: float, cap: float) -> dict:
    """Execute ``nb`` in a kernel started in ``workdir`` (outputs kept in ``nb``): the failing or
    timed-out cells, the kernel's verdicts by label, the hidden cases' verdicts by label (for
    each exercise whose check passed and has hidden cases) and the seconds taken."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    # Unix sockets, not TCP: nothing listens on the network, so the kernel has no TCP warning
    # to print and runs alike inside a network namespace with no interfaces.
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / "kernel"))
    client = NotebookClient(
        nb,
        km=km,
        resources={"metadata": {"path": str(workdir)}},
        interrupt_on_timeout=True,  # a hang is interrupted; the next cell runs
        error_on_timeout={"ename": "Timeout", "evalue": f"ran past {cell_timeout:g} s"},
        shutdown_kernel="immediate",
    )
    start, failures, verdicts, hidden = time.monotonic(), [], {}, {}
    token = secrets.token_hex(8)
    marker, hidden_marker = f"verdicts-{token}:", f"hidden-{token}:"
    checks = hidden_checks()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            left = cap - (time.monotonic() - start)
            if left <= 1:
                failures.append(failure(index, cell, "Timeout", f"the run's cap of {cap:g} s"))
                break
            client.timeout = int(min(cell_timeout, left))
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as err:
                failures.append(failure(index, cell, err.ename, err.evalue))
            except DeadKernelError as err:  # out of memory, or the kernel exited
                failures.append(failure(index, cell, "DeadKernel", str(err)))
                break
            # read after every cell, so a kernel that dies later keeps the verdicts before it
            verdicts.update(read_verdicts(client, marker))
            for label, args in check_calls(cell.source, checks).items():
                if verdicts.get(label, {}).get("ok"):
                    code = RUN_HIDDEN.format(
                        path=str(HIDDEN), marker=hidden_marker, label=label, args=args
                    )
                    left = cap - (time.monotonic() - start)  # each run gets what is left now
                    hidden[label] = run_hidden(client, code, hidden_marker, min(cell_timeout, left))
            if any(result is KERNEL_DIED for result in hidden.values()):
                break  # the hidden cases killed it: the next cell is not to blame
    for label in set(checks.values()):  # passed, but never where the grader could follow
        if verdicts.get(label, {}).get("ok") and label not in hidden:
            hidden[label] = NOT_RUN
    return {
        "failures": failures,
        "verdicts": verdicts,
        "hidden": hidden,
        "seconds": time.monotonic() - start,
    }


def hidden_checks() -> dict[str, str]:
    """The exercise label of each check that has hidden cases, by the check's name; none where
    this copy of the course has no helpers/grade_hidden.py (the student edition)."""
    if not HIDDEN.exists():
        return {}
    from helpers.exercises import all_checks
    from helpers.grade_hidden import CASES

    return {check.__name__: label for label, check in all_checks().items() if label in CASES}


def check_calls(source: str, checks: dict[str, str]) -> dict[str, str]:
    """The checks a cell calls, by exercise label, each with its arguments' source: the names
    under which the notebook holds the answers (``ch04.check_attention(attention)``)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:  # a cell may hold magics (%time, !pip): IPython turns them into Python first
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return {}
    calls = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in checks:
                calls[checks[name]] = ", ".join(ast.unparse(arg) for arg in node.args)
    return calls


def run_hidden(client, code: str, marker: str, timeout: float) -> dict:
    """Run the hidden cases (``code``) in the kernel; their verdict, or a failure when they
    raised, ran past ``timeout`` or printed no verdict after the random marker."""
    from nbclient.exceptions import CellExecutionError, DeadKernelError
    from nbformat.v4 import new_code_cell

    cell = new_code_cell(code)
    client.nb.cells.append(cell)  # nbclient stores a cell's outputs at its index
    client.timeout = max(1, int(timeout))
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1)
    except CellExecutionError as err:  # a timeout, or a submission that broke the loading
        what = f"the hidden cases stopped: {err.ename}: {err.evalue.strip()[-200:]}"
        return {"ok": False, "what": what, "hint": ""}
    except DeadKernelError:  # out of memory, say: the run ends here
        return KERNEL_DIED
    finally:
        client.nb.cells.pop()
    lines = [
        line[len(marker) :]
        for out in cell.outputs
        for line in out.get("text", "").splitlines()
        if line.startswith(marker)
    ]  # the last line: the answer's own prints come before the verdict
    if not lines:
        return {"ok": False, "what": "the hidden cases wrote no verdict", "hint": ""}
    return json.loads(lines[-1])


KERNEL_DIED = {"ok": False, "what": "the kernel died during the hidden cases", "hint": ""}


def failure(index: int, cell, ename: str, evalue: str) -> dict:
    return {
        "cell": index,
        "source": first_line(cell.source),
        "ename": ename,
        "evalue": (evalue.strip().splitlines() or [""])[-1][:300],
        "timed_out": ename == "Timeout",
    }


def read_verdicts(client, marker: str) -> dict:
    """Ask the kernel for its verdicts; a random marker keeps a submission from printing them."""
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell

    cell = new_code_cell(READ_VERDICTS.format(marker=marker))
    client.nb.cells.append(cell)  # nbclient stores a cell's outputs at its index
    client.timeout = 60
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1)
    except CellExecutionError:  # the submission broke the checks' module: no verdicts
        return {}
    finally:
        client.nb.cells.pop()
    for out in cell.outputs:
        for line in out.get("text", "").splitlines():
            if line.startswith(marker):
                return json.loads(line[len(marker) :])
    return {}


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--cell-timeout", type=float, default=60)
    parser.add_argument("--cap", type=float, default=900)
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    for cell in nb.cells:  # judge this run only, never outputs stored in the file
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    result = run(nb, args.workdir, args.cell_timeout, args.cap)
    nbformat.write(nb, args.workdir / "executed.ipynb")
    (args.workdir / "result.json").write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
