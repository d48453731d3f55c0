"""Compare two `pip freeze` listings: added packages are fine, a changed or removed one is not.

    python tools/freeze_diff.py BEFORE AFTER

Prints what was added, changed and removed, and exits with 1 when anything was changed or
removed (the notebooks' setup step must leave a preinstalled runtime such as Colab's as it was).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def normalize(name: str) -> str:
    """PEP 503 name: `Jinja2`, `jinja2` and `jinja_2` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_freeze(text: str) -> dict[str, str]:
    """{package: what is installed} from `pip freeze` output: a version for `name==1.2`, the URL
    for `name @ URL`, the folder for an editable `-e PATH` (named by the comment pip writes
    above)."""
    packages: dict[str, str] = {}
    editable_name = None
    for line in text.splitlines():
        line = line.strip()
        if match := re.match(r"# Editable install.*\(([^=)]+)==", line):
            editable_name = normalize(match[1])
        elif line.startswith("-e "):
            packages[editable_name or line[3:]] = "editable " + line[3:]
            editable_name = None
        elif match := re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==|@)\s*(.+)", line):
            packages[normalize(match[1])] = match[2].strip()
    return packages


def diff(before: dict[str, str], after: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    added = [f"{name} {after[name]}" for name in sorted(after.keys() - before.keys())]
    removed = [f"{name} {before[name]}" for name in sorted(before.keys() - after.keys())]
    changed = [
        f"{name} {before[name]} -> {after[name]}"
        for name in sorted(before.keys() & after.keys())
        if before[name] != after[name]
    ]
    return added, changed, removed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    before, after = (parse_freeze(Path(p).read_text()) for p in argv)
    added, changed, removed = diff(before, after)
    print(
        f"setup step: {len(added)} added, {len(changed)} changed, {len(removed)} removed "
        f"({len(before)} packages before)"
    )
    for title, lines in (("added", added), ("CHANGED", changed), ("REMOVED", removed)):
        for line in lines:
            print(f"  {title}: {line}")
    if changed or removed:
        print(
            "FAIL: the setup step must only add packages. Loosen the lower bound in "
            "pyproject.toml that forced the change (or update tools/colab-runtime.txt if the "
            "runtime itself moved)."
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
