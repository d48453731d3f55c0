"""tools/fork.py (`make fork URL=...`) on a copy of the repository: one command re-points
_config.yml, every badge and setup cell, and the Colab links of the docs, and nothing else."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORK_URL = "https://github.com/someone/my-gpt-course"

_spec = importlib.util.spec_from_file_location("fork", ROOT / "tools" / "fork.py")
fork = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fork)


@pytest.fixture
def copy(tmp_path) -> Path:
    """The files the fork command reads and writes, copied into tmp_path."""
    for name in ["_config.yml", "README.md", "tools/fork.py"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("figures", "_ext")
    )
    for nb in fork.notebooks(ROOT):
        (tmp_path / nb.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(nb, tmp_path / nb.relative_to(ROOT))
    return tmp_path


def run_fork(copy: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(copy / "tools" / "fork.py"), *args],
        capture_output=True,
        text=True,
        cwd=copy,
    )


def test_the_repository_agrees_with_itself():
    assert fork.disagreements(ROOT) == []


def test_fork_repoints_config_badges_setup_cells_and_docs(copy):
    old_url = fork.configured_url(copy)
    result = run_fork(copy, FORK_URL + "/")  # a trailing slash is fine
    assert result.returncode == 0, result.stderr
    assert fork.configured_url(copy) == FORK_URL
    assert fork.disagreements(copy) == []  # the same check as tests/test_notebook_hygiene.py
    for nb in fork.notebooks(copy):
        text = nb.read_text(encoding="utf-8")
        assert old_url not in text and f'REPO = \\"{FORK_URL}\\"' in text
        assert fork.badge_url(FORK_URL, nb.relative_to(copy / "notebooks").as_posix()) in text
    assert any("/deeper/" in str(nb) for nb in fork.notebooks(copy)), "companions too"
    assert "someone/my-gpt-course/blob/main/notebooks/01" in (copy / "README.md").read_text()
    assert "agree on https://github.com/someone/my-gpt-course" in result.stdout


def test_fork_changes_only_the_badge_and_setup_cells(copy):
    before = {nb.name: json.loads(nb.read_text(encoding="utf-8")) for nb in fork.notebooks(copy)}
    config_before = (copy / "_config.yml").read_text()
    assert run_fork(copy, FORK_URL).returncode == 0
    for nb in fork.notebooks(copy):
        after = json.loads(nb.read_text(encoding="utf-8"))
        assert after["cells"][2:] == before[nb.name]["cells"][2:]
        assert after["metadata"] == before[nb.name]["metadata"]
        for old_cell, new_cell in zip(
            before[nb.name]["cells"][:2], after["cells"][:2], strict=True
        ):
            assert old_cell.get("outputs") == new_cell.get("outputs")
    config_after = (copy / "_config.yml").read_text()
    changed = [
        (a, b)
        for a, b in zip(config_before.splitlines(), config_after.splitlines(), strict=True)
        if a != b
    ]
    assert changed == [(f"  url: {fork.configured_url(ROOT)}", f"  url: {FORK_URL}")]


def test_forking_back_restores_the_files_byte_for_byte(copy):
    originals = {
        p: p.read_bytes() for p in [*fork.notebooks(copy), copy / "_config.yml", copy / "README.md"]
    }
    assert run_fork(copy, FORK_URL).returncode == 0
    assert run_fork(copy, fork.configured_url(ROOT)).returncode == 0
    assert {p: p.read_bytes() for p in originals} == originals


@pytest.mark.parametrize(
    "bad",
    [
        "gitlab.com/someone/course",
        "http://github.com/someone/course",
        "https://github.com/someone",
        "https://github.com/some one/course",
        "https://github.com/someone/course/tree/main",
        "",
    ],
)
def test_a_bad_url_is_refused_with_a_clear_error_and_nothing_changes(copy, bad):
    before = {p: p.read_bytes() for p in [*fork.notebooks(copy), copy / "_config.yml"]}
    result = run_fork(copy, bad)
    assert result.returncode == 2
    assert "https://github.com/OWNER/REPO" in result.stderr
    assert {p: p.read_bytes() for p in before} == before


def test_the_check_finds_a_notebook_that_disagrees(copy):
    nb = fork.notebooks(copy)[0]
    old_path = fork.configured_url(copy).removeprefix("https://github.com/")
    nb.write_text(
        nb.read_text(encoding="utf-8").replace(old_path, "someone/my-gpt-course"), encoding="utf-8"
    )
    problems = fork.disagreements(copy)
    assert any("Colab badge" in p for p in problems) and any("setup cell" in p for p in problems)
    assert run_fork(copy, "--check").returncode == 1
