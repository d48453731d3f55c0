"""Write a student repository: a new git repository, one commit, no solution in it.

    python tools/student_repo.py DEST [--url https://github.com/OWNER/REPO]
    (or: make student-repo DEST=DIR [URL=https://github.com/OWNER/REPO])

DEST receives every file git tracks here, as it is in the working tree, except those in DROPPED
below; each chapter notebooks/NN_*.ipynb is replaced by its student edition
(tools/student_edition.py), with its badge left at notebooks/. The companions in
notebooks/deeper/ have no exercises and go as they are. With a URL, the badges, setup cells,
_config.yml and the docs' Colab links then point at it (tools/fork.py), as `make fork` does.
One file differs: notebooks/ruff.toml lets a stub import what its answer will use. DEST is
committed once: its history holds no commit of this repository.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import fork  # noqa: E402
import student_edition  # noqa: E402

# What stays behind, and why. Everything else git tracks goes to the student repository; a new
# file holding answers must be added here (tests/test_student_repo.py looks for the solutions).
DROPPED = {
    "helpers/grade_hidden.py": "the grader's hidden cases: right answers",
    "tests/test_exercises.py": "a right answer to every exercise, to test the checks",
    "tests/test_grade.py": "grades right answers, and uses the hidden cases",
    "tests/test_grade_hidden.py": "right answers, written other ways, for the hidden cases",
    "tests/test_student_edition.py": "compares the student edition with the solutions",
    "tests/test_student_repo.py": "looks for this repository's solutions in a student one",
    "tests/test_notebook_hygiene.py": "checks the stored outputs of a full run and the "
    "solutions' markup; the student notebooks have neither",
    "tests/test_prose_numbers.py": "finds the prose's numbers in stored outputs, which the "
    "student notebooks leave to the learner's run",
    "tests/test_lab_e2e.py": "checks that JupyterLab folds the solutions",
    "tests/lab_e2e.mjs": "the browser half of tests/test_lab_e2e.py",
    "tools/exercise_markup.py": "writes solution cells for authors; its docstring shows one",
    "tools/prose_numbers.py": "the checker of tests/test_prose_numbers.py",
    "tools/student_edition.py": "makes student notebooks from solution notebooks",
    "tools/student_repo.py": "makes a student repository from solution notebooks",
    ".github/workflows/verify.yml": "monthly full runs, compared with bands the student "
    "notebooks cannot meet: their exercises are stubs",
}
CHAPTER = "notebooks/[0-9][0-9]_*.ipynb"  # replaced by their student edition
# Added to the notebooks' ruff ignores there: a stub imports what the learner's answer will use
# (chapter 04's estimate_loss), which stays unused until the answer is written.
UNUSED_IMPORTS = '  "F401",  # a stub imports what the answer will use (a student repository)\n'


def tracked_files(root: Path = ROOT) -> list[str]:
    """The files git tracks in ``root`` that exist in its working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


def kept_files(root: Path = ROOT) -> list[str]:
    """The files copied as they are: the tracked ones, less DROPPED and the chapters."""
    return [
        name
        for name in tracked_files(root)
        if name not in DROPPED and not Path(name).match(CHAPTER)
    ]


def write_student_notebooks(dest: Path, root: Path = ROOT) -> None:
    """Each chapter's student edition at DEST/notebooks/, its badge still at notebooks/."""
    repository = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))["repository"]
    url, branch = repository["url"].rstrip("/"), repository.get("branch", "main")
    for source in sorted(root.glob(CHAPTER)):
        nb = nbformat.read(source, as_version=4)
        nb = student_edition.student_notebook(nb, source.name, url, branch, "notebooks")
        nbformat.validate(nb)
        nbformat.write(nb, dest / "notebooks" / source.name)


def allow_unused_imports(dest: Path) -> None:
    """Let `make lint` there accept the stubs' imports (UNUSED_IMPORTS)."""
    config = dest / "notebooks" / "ruff.toml"
    text = config.read_text(encoding="utf-8")
    if "\nignore = [\n" not in text:
        raise ValueError(f"{config} has no ignore = [ list to add F401 to")
    config.write_text(text.replace("\nignore = [\n", "\nignore = [\n" + UNUSED_IMPORTS, 1))


def commit_once(dest: Path, branch: str) -> None:
    """``git init`` DEST and commit everything in it, in a single commit."""
    git = ["git", "-C", str(dest)]
    subprocess.run([*git, "init", "--quiet", "--initial-branch", branch], check=True)
    subprocess.run([*git, "add", "--all"], check=True)
    # A committer for machines where git has none (or only half of one) configured, such as a
    # CI runner; an instructor's own name and email win.
    who = []
    for key, default in (("user.name", "gpt-course"), ("user.email", "gpt-course@localhost")):
        if subprocess.run([*git, "config", key], capture_output=True).returncode != 0:
            who += ["-c", f"{key}={default}"]
    message = "The course, student edition"
    subprocess.run([*git, *who, "commit", "--quiet", "--message", message], check=True)


def build(dest: Path, url: str | None = None, root: Path = ROOT) -> None:
    """Write the student repository of ``root`` into ``dest`` (absent or an empty folder)."""
    url = fork.normalize_url(url) if url else None  # a bad URL fails before anything is written
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"{dest} exists and is not an empty folder: choose a new DEST")
    for name in kept_files(root):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)  # copy2 keeps .ci/run executable
    write_student_notebooks(dest, root)
    allow_unused_imports(dest)
    if url:
        fork.fork(url, dest)
    problems = fork.disagreements(dest)
    if problems:
        raise ValueError("the badges and setup cells disagree:\n" + "\n".join(problems))
    config = yaml.safe_load((dest / "_config.yml").read_text(encoding="utf-8"))
    commit_once(dest, config["repository"].get("branch", "main"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="the new repository's folder (absent or empty)")
    parser.add_argument("--url", help="its GitHub URL, https://github.com/OWNER/REPO")
    args = parser.parse_args(argv)
    try:
        build(args.dest, args.url)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote the student repository to {args.dest} (one commit); its badges and setup "
        f"cells point at {fork.configured_url(args.dest)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
