"""Run the notebooks' Colab setup step here, exactly as their setup cell runs it in Colab.

    python tools/colab_setup.py

Reads the `pip install` command of the setup cell (the second cell of every notebook; they must
all agree), puts this checkout where the cell has its clone (`/content/gpt-course`), and runs the
command with the Python that runs this script. `make test-colab` uses it in .venv-colab.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLONE = "/content/gpt-course"  # where the setup cell clones the course in Colab


def pip_commands(cell_source: str) -> list[list[str]]:
    """The argument lists of the cell's `subprocess.run([sys.executable, "-m", "pip", ...])`
    calls, with `sys.executable` left out."""
    commands = []
    for node in ast.walk(ast.parse(cell_source)):
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.List)
            and ast.unparse(node.args[0].elts[0]) == "sys.executable"
        ):
            commands.append([ast.literal_eval(e) for e in node.args[0].elts[1:]])
    return commands


def setup_command() -> list[str]:
    found = {}
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        source = "".join(json.loads(nb.read_text(encoding="utf-8"))["cells"][1]["source"])
        commands = pip_commands(source)
        if len(commands) != 1 or commands[0][:3] != ["-m", "pip", "install"]:
            sys.exit(f"{nb.name}: the setup cell should run one `pip install`, found {commands}")
        found[nb.name] = commands[0]
    if len({tuple(c) for c in found.values()}) != 1:
        sys.exit(f"the notebooks' setup cells install different things: {found}")
    return [arg.replace(CLONE, str(ROOT)) for arg in next(iter(found.values()))]


if __name__ == "__main__":
    command = [sys.executable, *setup_command()]
    print("setup step:", " ".join(command[1:]), flush=True)
    sys.exit(subprocess.run(command).returncode)
