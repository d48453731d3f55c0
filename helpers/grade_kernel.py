"""One submission in its own kernel: every code cell runs, an error or a hang costing only that
cell, and the verdicts are read from the kernel's own record afterwards, so a printed line
counts for nothing. helpers.grade starts this module as a child process, with limits:

    python -m helpers.grade_kernel SUBMISSION.ipynb WORKDIR --cell-timeout 60 --cap 900
"""

from __future__ import annotations

import argparse
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


def first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0][:100] if lines else ""


def run(nb, workdir: Path, cell_timeout: float, cap: float) -> dict:
    """Execute ``nb`` in a kernel started in ``workdir`` (outputs kept in ``nb``): the failing or
    timed-out cells, the kernel's verdicts by label, and the seconds taken."""
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
    start, failures, verdicts = time.monotonic(), [], {}
    marker = f"verdicts-{secrets.token_hex(8)}:"
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
    return {"failures": failures, "verdicts": verdicts, "seconds": time.monotonic() - start}


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
