"""JupyterLab used as a learner uses it, in headless Chromium: chapter 07 runs top to bottom
(Run All, smoke mode) with no traceback and no red progress bar, the sampling lab redraws when
its temperature slider moves, and a chapter's exercises show their titles with the prose
solutions folded. tests/lab_e2e.mjs drives the browser with Playwright (playwright-core from
npm, `npm ci` installs it; it uses the system's Chromium and downloads none). Screenshots go to
_build/screenshots/lab/.

The server serves a scratch copy of notebooks/: Lab autosaves what it runs, and the repository's
notebooks keep their stored full-mode outputs. The copy finds `helpers` as any notebook does,
through the editable install in .venv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from chromium import find_chromium
from test_lab import running_lab, tail

pytestmark = pytest.mark.slow  # a JupyterLab server, a kernel running chapter 07, a browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SCRIPT = REPO / "tests" / "lab_e2e.mjs"
SCREENSHOTS = REPO / "_build" / "screenshots" / "lab"
RUN_NOTEBOOK = "07_full_gpt.ipynb"  # the sampling lab and the attention explorer live here
# Smoke-mode chapter 07 runs in about a minute alone on 2 cores; the other pytest worker shares
# them, so the limits are generous. A run that needs them is slow, not broken.
RUN_TIMEOUT_S = 900
SCRIPT_TIMEOUT_S = RUN_TIMEOUT_S + 300

# Lab's user settings for the test: every cell stays in the page (the default windowing keeps
# only the cells near the viewport, and the checks read all outputs), and no news or update
# notice covers the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _exercise_notebook() -> str:
    """The first chapter with a prose solution (a markdown cell tagged solution), whose
    exercises the browser checks."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text("utf-8"))["cells"]
        if any(
            c["cell_type"] == "markdown" and "solution" in c["metadata"].get("tags", [])
            for c in cells
        ):
            return path.name
    pytest.fail(f"no notebook in {NOTEBOOKS} has a prose solution to check")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is missing: on Debian or Ubuntu run `sudo apt-get install -y nodejs npm`"
        )
    if not (REPO / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is missing: run `npm ci` in the repository (`make test` does)")
    return node


@pytest.fixture
def lab(tmp_path):
    """JupyterLab in smoke mode, serving a copy of notebooks/; yields (base url, token, log)."""
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name, settings in LAB_SETTINGS.items():
        path = tmp_path / "lab-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    # The kernel inherits this environment: smoke mode, the datasets (GPT_COURSE_DATA as given),
    # checkpoints in the scratch folder. Jupyter's own folders keep the user's configuration,
    # workspaces and kernels out of the test.
    env = dict(
        GPT_COURSE_SMOKE="1",
        GPT_COURSE_RUNS=str(tmp_path / "runs"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
    )
    with running_lab(root, tmp_path, env) as server:
        yield server


def test_chapter_07_runs_and_its_widgets_respond_in_jupyterlab(lab, tmp_path):
    node, chromium = _node(), find_chromium()
    base, token, log_path = lab
    exercises = _exercise_notebook()
    # The browser writes its screenshots here first; they are copied to _build/screenshots/lab
    # at the end, pass or fail, so a book test clearing _build/screenshots meanwhile loses none.
    shots = tmp_path / "screenshots"
    env = dict(
        os.environ,
        LAB_URL=base,
        LAB_TOKEN=token,
        RUN_NOTEBOOK=RUN_NOTEBOOK,
        EXERCISE_NOTEBOOK=exercises,
        SCREENSHOTS=str(shots),
        CHROMIUM=chromium,
        RUN_TIMEOUT_S=str(RUN_TIMEOUT_S),
    )
    try:
        result = subprocess.run(
            [node, str(SCRIPT)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:
        steps = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else err.stdout
        pytest.fail(
            f"{SCRIPT.name} did not finish within {SCRIPT_TIMEOUT_S} s:\n{steps or ''}\n"
            f"--- jupyter lab log ---\n{tail(log_path)}"
        )
    finally:
        if shots.is_dir():
            shutil.copytree(shots, SCREENSHOTS, dirs_exist_ok=True)
    print(result.stdout)  # the steps and their times, shown with -s or -rP
    print(f"screenshots copied to {SCREENSHOTS}")
    assert result.returncode == 0, (
        f"{SCRIPT.name} failed (exit code {result.returncode}); screenshots in {SCREENSHOTS}\n"
        f"{result.stdout}\n{result.stderr}\n--- jupyter lab log ---\n{tail(log_path)}"
    )
    stems = (RUN_NOTEBOOK.removesuffix(".ipynb"), exercises.removesuffix(".ipynb"))
    for name in (f"{stems[0]}_run_all.png", f"{stems[1]}_exercises.png"):
        assert (shots / name).is_file(), f"{SCRIPT.name} saved no screenshot {name}"
