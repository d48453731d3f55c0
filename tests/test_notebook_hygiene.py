"""Every chapter notebook keeps the course's promises: stored outputs from one full top-to-bottom
run, no stored errors, the Colab badge and setup cell pointing at the repository in _config.yml,
learning goals, a summary, a run report, a place in the table of contents."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
REPO_PATH = REPO_URL.removeprefix("https://github.com/")


def cells(nb_path):
    return json.loads(nb_path.read_text(encoding="utf-8"))["cells"]


def source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_come_from_one_top_to_bottom_run(nb):
    code = [c for c in cells(nb) if c["cell_type"] == "code" and source(c).strip()]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{nb.name}: execution counts {counts}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_error_outputs_are_stored(nb):
    for c in cells(nb):
        for out in c.get("outputs", []):
            assert out["output_type"] != "error", f"{nb.name}: stored error {out.get('ename')}"
            if out["output_type"] == "stream" and out["name"] == "stderr":
                assert "Traceback" not in "".join(out["text"]), f"{nb.name}: traceback on stderr"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_from_full_mode(nb):
    last = [c for c in cells(nb) if c["cell_type"] == "code"][-1]
    assert "run_report()" in source(last), f"{nb.name}: the last cell must print run_report()"
    text = "".join("".join(o.get("text", "")) for o in last.get("outputs", []))
    assert text.startswith("full mode on"), f"{nb.name}: stored run report is {text!r}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_title_badge_goals_and_summary(nb):
    all_cells = cells(nb)
    first = source(all_cells[0])
    assert all_cells[0]["cell_type"] == "markdown" and first.startswith("# "), "starts with an H1"
    markdown = "\n".join(source(c) for c in all_cells if c["cell_type"] == "markdown")
    outside_fences = re.sub(r"```.*?```", "", markdown, flags=re.S)
    assert len(re.findall(r"^# ", outside_fences, flags=re.M)) == 1, "exactly one H1"
    badge = f"https://colab.research.google.com/github/{REPO_PATH}/blob/main/notebooks/{nb.name}"
    assert badge in first, f"{nb.name}: Colab badge must link to {badge}"
    assert "**Learning goals**" in first and "**Prerequisites" in first and "**Runtime" in first
    assert "## Summary" in markdown
    assert "{exercise}" in markdown, "every chapter has exercises"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_installs_from_the_configured_repository(nb):
    setup = source(cells(nb)[1])
    assert f'REPO = "{REPO_URL}"' in setup
    assert 'find_spec("helpers") is None' in setup


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_some_outputs_are_checked_by_nbval(nb):
    assert any(source(c).startswith("# NBVAL_CHECK_OUTPUT") for c in cells(nb) if c["cell_type"] == "code")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_read_no_environment_variables(nb):
    code = "\n".join(source(c) for c in cells(nb) if c["cell_type"] == "code")
    assert "os.environ" not in code and "getenv" not in code, "only helpers.settings reads the environment"


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in toc, f"{nb.name} is missing from _toc.yml"
