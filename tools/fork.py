"""Point the course at another GitHub repository in one step (an instructor's fork).

    python tools/fork.py https://github.com/someone/gpt-course     (or: make fork URL=...)
    python tools/fork.py --check                                   (is everything consistent?)

The public repository URL is set in `_config.yml` (`repository.url`); this rewrites that line,
every notebook's "Open in Colab" badge and setup cell (`REPO = "..."`, what Colab clones), the
chapters' and their companions' in notebooks/deeper/, and the Colab links in README.md and
book/*.md. Nothing else in the notebooks changes (every other byte is kept). Afterwards it
runs the same agreement check as tests/test_notebook_hygiene.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
URL_PATTERN = re.compile(
    r"https://github\.com/([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/([A-Za-z0-9._-]{1,100})"
)
CONFIG_URL_LINE = re.compile(
    r"^(repository:\s*\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+url:[ \t]*)(\S+)", re.M
)
COLAB_LINK = re.compile(r"colab\.research\.google\.com/github/([^/\s)\"]+/[^/\s)\"]+)/")


def normalize_url(url: str) -> str:
    """``https://github.com/OWNER/REPO`` from what a user may paste (a trailing slash or ``.git``
    is dropped); a ValueError that says what is expected for anything else."""
    cleaned = url.strip().removesuffix("/").removesuffix(".git")
    match = URL_PATTERN.fullmatch(cleaned)
    if not match or match[2] in {".", ".."}:
        raise ValueError(
            f"not a GitHub repository URL: {url!r}. Expected "
            f"https://github.com/OWNER/REPO, for example https://github.com/someone/gpt-course"
        )
    return cleaned


def configured_url(root: Path = ROOT) -> str:
    match = CONFIG_URL_LINE.search((root / "_config.yml").read_text(encoding="utf-8"))
    if not match:
        raise ValueError(f"{root / '_config.yml'} has no repository: url: line")
    return match[2].rstrip("/")


def notebooks(root: Path = ROOT) -> list[Path]:
    """The chapters, then their companions in notebooks/deeper/: each has a badge and a setup
    cell."""
    folder = root / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb")) + sorted(
        (folder / "deeper").glob("[0-9][0-9][a-z]_*.ipynb")
    )


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def badge_url(url: str, notebook: str, branch: str = "main") -> str:
    """The Colab link of ``notebook``, a path inside notebooks/ (``deeper/04a_....ipynb``)."""
    path = url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{branch}/notebooks/{notebook}"


def notebook_disagreements(nb_path: Path, url: str, root: Path = ROOT) -> list[str]:
    """What in one notebook does not point at ``url``: its badge (first cell) and its setup cell
    (second cell). An empty list when both agree."""
    cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
    problems = []
    badge = badge_url(url, nb_path.relative_to(root / "notebooks").as_posix())
    if badge not in _source(cells[0]):
        problems.append(f"{nb_path.name}: the Colab badge must link to {badge}")
    if f'REPO = "{url}"' not in _source(cells[1]):
        problems.append(f'{nb_path.name}: the setup cell must clone REPO = "{url}"')
    return problems


def disagreements(root: Path = ROOT) -> list[str]:
    """Everything that does not point at `_config.yml`'s repository: notebook badges and setup
    cells, and Colab links in README.md and book/*.md."""
    url = configured_url(root)
    path = url.removeprefix("https://github.com/")
    problems = [p for nb in notebooks(root) for p in notebook_disagreements(nb, url, root)]
    for doc in [root / "README.md", *sorted((root / "book").glob("*.md"))]:
        if doc.exists():
            for other in set(COLAB_LINK.findall(doc.read_text(encoding="utf-8"))) - {path}:
                problems.append(
                    f"{doc.relative_to(root)}: a Colab link points at {other}, not {path}"
                )
    return problems


def _rewrite_notebook(nb_path: Path, old: str, new: str) -> None:
    """Replace the old URL in Colab links and in the setup cell's ``REPO = "..."`` line, as text
    in the file (in JSON a quote is written \\"), so every other byte stays as it was."""
    text = nb_path.read_text(encoding="utf-8")
    old_path, new_path = (u.removeprefix("https://github.com/") for u in (old, new))
    text = text.replace(
        f"colab.research.google.com/github/{old_path}/",
        f"colab.research.google.com/github/{new_path}/",
    )
    text = text.replace(f'REPO = \\"{old}\\"', f'REPO = \\"{new}\\"')
    json.loads(text)  # still a valid notebook
    nb_path.write_text(text, encoding="utf-8")


def fork(url: str, root: Path = ROOT) -> list[str]:
    """Point everything under ``root`` at ``url``; returns the files changed."""
    new = normalize_url(url)
    old = configured_url(root)
    changed = []
    config = root / "_config.yml"
    text = config.read_text(encoding="utf-8")
    config.write_text(CONFIG_URL_LINE.sub(lambda m: m[1] + new, text, count=1), encoding="utf-8")
    changed.append(config)
    for nb in notebooks(root):
        before = nb.read_bytes()
        _rewrite_notebook(nb, old, new)
        if nb.read_bytes() != before:
            changed.append(nb)
    old_path, new_path = (u.removeprefix("https://github.com/") for u in (old, new))
    for doc in [root / "README.md", *sorted((root / "book").glob("*.md"))]:
        if doc.exists():
            text = doc.read_text(encoding="utf-8")
            updated = text.replace(
                f"colab.research.google.com/github/{old_path}/",
                f"colab.research.google.com/github/{new_path}/",
            )
            if updated != text:
                doc.write_text(updated, encoding="utf-8")
                changed.append(doc)
    return [str(p.relative_to(root)) for p in changed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="the fork, https://github.com/OWNER/REPO")
    parser.add_argument("--check", action="store_true", help="only check that everything agrees")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.check:
        if args.url is None:
            parser.error("give the fork's URL, e.g. https://github.com/someone/gpt-course")
        try:
            old = configured_url(args.root)
            changed = fork(args.url, args.root)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{old} -> {configured_url(args.root)}; rewrote {len(changed)} files:")
        for name in changed:
            print(f"  {name}")
    problems = disagreements(args.root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"badges, setup cells and _config.yml agree on {configured_url(args.root)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
