"""tools/student_repo.py (`make student-repo DEST=...`): a new git repository with one commit, in
whose files and history no solution can be found, pointed at its own URL; and its own fast tests
and lint pass there (slow)."""

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
URL = "https://github.com/someone/gpt-course-students"
# A solution's heading carries its exercise's number; the markup described in the book
# ("Solution to Exercise N.k") does not.
SOLUTION_HEADING = re.compile(r"Solution to Exercise \d+\.\d+")


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


student_repo = load_tool("student_repo")
student_edition = load_tool("student_edition")
fork = load_tool("fork")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("students") / "course"
    student_repo.build(dest, URL)
    return dest


def flat(text: str) -> str:
    """``text`` with every run of white space made one space: a re-indented copy still counts."""
    return " ".join(text.split())


def solution_cells() -> list[str]:
    """Every cell of the chapters that the student edition removes."""
    return [
        cell.source
        for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        for cell in nbformat.read(nb_path, as_version=4).cells
        if student_edition.is_solution(cell)
    ]


def right_answers() -> list[str]:
    """The functions and classes of tests/test_exercises.py's "right answers" sections."""
    path = ROOT / "tests" / "test_exercises.py"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    starts = [i + 1 for i, line in enumerate(lines) if line.startswith("# --- right answers")]
    end = next(i + 1 for i, line in enumerate(lines) if line.startswith("# --- the cases"))
    return [
        ast.get_source_segment(text, node)
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and starts[0] < node.lineno < end
    ]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def blob_texts(repo: Path) -> list[str]:
    """Every blob in the repository's object store (reachable or not), a notebook as the text
    of its cells and outputs."""
    raw = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    texts, at = [], 0
    while at < len(raw):
        header_end = raw.index(b"\n", at)
        _, kind, size = raw[at:header_end].split()
        body = raw[header_end + 1 : header_end + 1 + int(size)]
        at = header_end + 1 + int(size) + 1  # the body is followed by a newline
        if kind == b"blob":
            texts.append(notebook_text(body.decode("utf-8", errors="replace")))
    return texts


def notebook_text(text: str) -> str:
    """A notebook's cell sources and outputs as plain text (its JSON escapes quotes and line
    breaks); any other text as it is."""
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception:
        return text
    return "\n".join(cell.source + "\n" + json.dumps(cell.get("outputs", [])) for cell in nb.cells)


def test_it_has_exactly_one_commit_and_everything_is_committed(repo):
    assert git(repo, "rev-list", "--all", "--count").strip() == "1"
    assert git(repo, "status", "--porcelain", "--ignored") == ""


def test_no_solution_or_right_answer_in_its_files_or_history(repo):
    solutions, answers = solution_cells(), right_answers()
    assert len(solutions) > 50 and len(answers) > 10, "the solutions to look for were found"
    dropped = [
        (ROOT / name).read_text(encoding="utf-8")
        for name in student_repo.DROPPED
        if (ROOT / name).exists()  # a copy under another name counts too
    ]
    texts = blob_texts(repo)
    assert len(texts) >= len(git(repo, "ls-files").split()), "every file is a blob"
    flat_texts = [flat(text) for text in texts]
    leaks = [
        piece[:80]
        for piece in [*solutions, *answers, *dropped]
        if any(flat(piece) in text for text in flat_texts)
    ]
    assert not leaks, f"solutions found in the student repository: {leaks}"
    headings = [m for text in texts for m in SOLUTION_HEADING.findall(text)]
    assert not headings, headings
    for name in student_repo.DROPPED:
        assert not (repo / name).exists(), name


def test_it_points_at_its_own_url_with_the_student_notebooks_at_notebooks(repo):
    assert fork.configured_url(repo) == URL
    assert fork.disagreements(repo) == []  # badges, setup cells, docs: what hygiene checks
    chapters = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in (repo / "notebooks").glob("[0-9][0-9]_*.ipynb")) == chapters
    for name in chapters:
        nb = nbformat.read(repo / "notebooks" / name, as_version=4)
        assert '<div class="exercise"' in "".join(c.source for c in nb.cells)
        assert not any(student_edition.is_solution(c) for c in nb.cells)
    assert os.access(repo / ".ci" / "run", os.X_OK)


def test_a_used_folder_or_a_bad_url_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.md").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        student_repo.build(tmp_path / "used", URL)
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["notes.md"]
    with pytest.raises(ValueError, match="OWNER/REPO"):
        student_repo.build(tmp_path / "new", "https://gitlab.com/someone/course")
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_its_own_fast_tests_and_lint_pass(repo):
    """What `make check` and `make lint` run there, with this environment's packages; its
    `helpers` is imported from the student repository (python -m puts the folder first)."""
    env = {**os.environ, "GPT_COURSE_SMOKE": "1", "OMP_NUM_THREADS": "1"}
    bin_dir = Path(sys.executable).parent
    paths = ["helpers", "bench", "tests", "tools", "notebooks"]
    commands = [
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:xdist"]
        + ["-m", "not slow", "tests"],
        [str(bin_dir / "ruff"), "check", *paths],
        [str(bin_dir / "ruff"), "format", "--check", *paths],
    ]
    for command in commands:
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
