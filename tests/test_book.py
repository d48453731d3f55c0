"""The book: it builds with warnings as errors, and a headless Chromium renders every page.

The book is built once for this module into ``_build/html``. Then Chromium opens the start page
and every page listed in ``_toc.yml``, and for each one the test checks that its title is there,
that its math was typeset by MathJax (loaded from the build, not from the network), and that
every image loads from the build folder. A screenshot of each page goes to
``_build/screenshots/`` for a person to look over.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

pytestmark = pytest.mark.slow  # builds the whole book

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"
SCREENSHOTS = REPO / "_build" / "screenshots"
JUPYTER_BOOK = REPO / ".venv" / "bin" / "jupyter-book"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BUILD_TIMEOUT_S = 900
BROWSER_TIMEOUT_S = 120


# --- what the book should contain -------------------------------------------------------------


def _toc_files(node) -> list[str]:
    """Every ``file:`` entry under a node of _toc.yml, in reading order."""
    found = []
    if isinstance(node, dict):
        if "file" in node:
            found.append(node["file"])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                found.extend(_toc_files(child))
    return found


def _toc() -> tuple[str, list[str]]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    return _strip_suffix(toc["root"]), [_strip_suffix(f) for f in _toc_files(toc)]


def _strip_suffix(doc: str) -> str:
    return re.sub(r"\.(md|ipynb)$", "", doc)


ROOT, CHAPTERS = _toc()
PAGES = [ROOT] + CHAPTERS


def _source(doc: str) -> Path:
    for suffix in (".md", ".ipynb"):
        if (REPO / f"{doc}{suffix}").exists():
            return REPO / f"{doc}{suffix}"
    raise AssertionError(f"_toc.yml lists {doc!r}, but neither {doc}.md nor {doc}.ipynb exists")


def _markdown_of(doc: str) -> str:
    """The page's Markdown: the whole file, or a notebook's Markdown cells joined."""
    path = _source(doc)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        sources = (
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells
            if c["cell_type"] == "markdown"
        )
        return "\n\n".join(sources)
    return text


def _title_of(doc: str) -> str:
    for line in _markdown_of(doc).splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise AssertionError(f"{_source(doc)} has no H1 ('# Title'); every page starts with one")


_CODE = re.compile(r"^(```|~~~).*?^\1\s*$|`[^`\n]+`", re.S | re.M)
_MATH = re.compile(r"\$\$.+?\$\$|\$[^\s$][^$\n]*?(?<!\s)\$|\\\(|\\\[|\\begin\{", re.S)


def _has_math(doc: str) -> bool:
    """True when the page's Markdown has math outside code: $...$, $$...$$ or a {math} block."""
    text = _markdown_of(doc)
    if re.search(r"^(```|:::)\{math\}", text, re.M):
        return True
    return bool(_MATH.search(_CODE.sub("", text)))


def _words(text: str) -> str:
    """Letters and digits only, lower case: compares a Markdown title with its rendered text."""
    return re.sub(r"[\W_]+", "", text).lower()


def _screenshot_name(doc: str) -> str:
    return "index.png" if doc == ROOT else doc.replace("/", "-") + ".png"


# --- the build ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def book() -> subprocess.CompletedProcess:
    """Build the whole book once. --all re-reads every page: an incremental build does not repeat
    the warnings of pages that did not change, so -W alone would pass the second time."""
    assert JUPYTER_BOOK.exists(), f"{JUPYTER_BOOK} is missing: run `make test`, which installs it"
    env = dict(os.environ, OMP_NUM_THREADS="1")  # torch processes of other tests share the cores
    cmd = [
        str(JUPYTER_BOOK),
        "build",
        str(REPO),
        "--all",
        "--warningiserror",
        "--keep-going",
        "--builder",
        "html",
    ]
    try:
        result = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the book build took longer than {BUILD_TIMEOUT_S} s: {' '.join(cmd)}")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return result


def test_book_builds_without_warnings(book):
    output = book.stdout + book.stderr
    warnings = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    assert book.returncode == 0 and not warnings, (
        f"jupyter-book build failed (exit code {book.returncode}):\n"
        + "\n".join(warnings or [output[-3000:]])
    )


def test_start_page_links_every_page(book):
    """The chapter list on the start page is written by hand; a page added to _toc.yml must also
    be linked there (the sidebar alone is easy to miss on a phone)."""
    page = (HTML / f"{ROOT}.html").read_text(encoding="utf-8")
    article = re.search(r"<article[^>]*bd-article.*?</article>", page, re.S)
    assert article, "the start page has no <article class='bd-article'>: did the theme change?"
    base = (HTML / ROOT).parent
    linked = {
        (base / unquote(urlsplit(href).path)).resolve()
        for href in re.findall(r'href="([^"#][^"]*)"', article.group(0))
        if not urlsplit(href).scheme
    }
    missing = [doc for doc in CHAPTERS if (HTML / f"{doc}.html").resolve() not in linked]
    assert not missing, (
        f"{_source(ROOT).relative_to(REPO)} does not link these pages of "
        f"_toc.yml: {missing}; add each with {{doc}}`...` to its chapter list"
    )


def test_colab_links_point_at_the_repository():
    """The Colab links in README.md and book/ open this repository's notebooks, at the URL and
    branch set once in _config.yml (tests/test_notebook_hygiene.py checks the notebooks)."""
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))["repository"]
    repo = urlsplit(config["url"]).path.strip("/")
    wrong = []
    for path in [REPO / "README.md", *sorted((REPO / "book").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for where, branch, notebook in re.findall(
            r"colab\.research\.google\.com/github/([^/\s)]+/[^/\s)]+)/blob/([^/\s)]+)/"
            r"([^\s)#?]+)",
            text,
        ):
            if where != repo or branch != config["branch"] or not (REPO / notebook).exists():
                wrong.append(f"{path.relative_to(REPO)}: {where}/blob/{branch}/{notebook}")
    assert not wrong, (
        f"Colab links that do not open {repo} at branch {config['branch']} or "
        f"name a notebook that does not exist:\n" + "\n".join(wrong)
    )


# --- the browser -------------------------------------------------------------------------------


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no Chromium found (looked for " + ", ".join(BROWSERS) + "). The browser test "
        "needs it: on Debian or Ubuntu run `sudo apt-get install -y chromium` "
        "(CI installs it)."
    )


def _render(url: str, screenshot: Path) -> str:
    """Open ``url`` in headless Chromium; return the DOM after scripts ran, save a screenshot."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            _browser(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
            f"--screenshot={screenshot}",
            url,
        ]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Chromium did not finish {url} within {BROWSER_TIMEOUT_S} s")
    assert result.returncode == 0 and "<html" in result.stdout, (
        f"Chromium failed on {url} (exit code {result.returncode}):\n{result.stderr[-2000:]}"
    )
    assert screenshot.exists() and screenshot.stat().st_size > 0, f"no screenshot of {url}"
    return result.stdout


def _local_file(src: str, page: Path) -> Path | None:
    """The file an <img src> or <script src> refers to, or None when it comes from the network."""
    parts = urlsplit(src)
    if parts.scheme in ("http", "https") or src.startswith("//"):
        return None
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return (page.parent / unquote(parts.path)).resolve()


@pytest.mark.parametrize("doc", [d for d in PAGES if d.startswith("notebooks/")])
def test_no_test_or_setup_machinery_in_a_chapter_page(book, doc):
    """nbval marks are cell tags and the Colab setup cell is tagged remove-cell: readers of the
    book see neither (learners in Lab and Colab still have the setup cell)."""
    text = html.unescape((HTML / f"{doc}.html").read_text("utf-8"))
    assert "NBVAL_" not in text, f"{doc}: an nbval marker shows in the page"
    assert 'find_spec("helpers")' not in text, f"{doc}: the Colab setup cell shows in the page"


@pytest.mark.parametrize("doc", [d for d in PAGES if re.match(r"notebooks/\d\d_", d)])
def test_exercises_are_numbered_within_their_chapter(book, doc):
    """Chapter 7's exercises read "Exercise 7.1", "7.2", ... in the page, one per exercise box."""
    chapter = int(re.match(r"notebooks/(\d\d)_", doc).group(1))
    text = (HTML / f"{doc}.html").read_text("utf-8")
    boxes = re.findall(r'<div class="exercise" id="(ex-[\w-]+)">', text)
    titles = re.findall(r"<strong>Exercise (\d+)\.(\d+) ·", text)
    assert boxes, f"{doc}: no exercise box in the built page"
    assert titles == [(str(chapter), str(k)) for k in range(1, len(boxes) + 1)], (
        f"{doc}: exercise titles {titles} for {len(boxes)} boxes; want {chapter}.1, {chapter}.2"
    )


@pytest.mark.parametrize("doc", PAGES)
def test_page_renders_in_chromium(book, doc):
    page = HTML / f"{doc}.html"
    assert page.exists(), f"{page.relative_to(REPO)} was not built from {_source(doc)}"
    # The start page is opened through index.html, which must redirect to it.
    url = (HTML / "index.html" if doc == ROOT else page).as_uri()
    dom = _render(url, SCREENSHOTS / _screenshot_name(doc))

    title = _title_of(doc)
    headings = [
        html.unescape(re.sub(r"<[^>]+>", "", h))
        for h in re.findall(r"<h1\b[^>]*>(.*?)</h1>", dom, re.S)
    ]
    assert any(_words(title) in _words(h) for h in headings), (
        f"{url}: no <h1> with the title {title!r}; the <h1>s are {headings}"
    )

    # MathJax is bundled into the build: a CDN would leave raw TeX on an offline machine.
    for src in re.findall(
        r'<script\b[^>]*\bsrc="([^"]*mathjax[^"]*)"', page.read_text("utf-8"), re.I
    ):
        local = _local_file(src, page)
        assert local is not None, f"{url} loads MathJax from the network ({src}), not _static/"
        assert local.exists(), f"{url} loads MathJax from {src}, which is not in the build"
    # Math in the Markdown, or in outputs (text/latex), must have been typeset by MathJax.
    formulas = len(re.findall(r'class="math notranslate', page.read_text("utf-8")))
    if _has_math(doc) or formulas:
        assert "<mjx-container" in dom, (
            f"{url}: the page has math, but MathJax typeset none of it (no <mjx-container>); "
            f"is sphinx-mathjax-offline in _config.yml, and did _static/mathjax get copied?"
        )
        assert "<mjx-merror" not in dom, f"{url}: MathJax reports a TeX error on this page"
        typeset = dom.count("<mjx-container")
        assert typeset >= formulas, f"{url}: only {typeset} of {formulas} formulas were typeset"

    broken = []
    for src in re.findall(r'<img\b[^>]*?\bsrc="([^"]*)"', dom):
        if src.startswith("data:"):
            continue
        local = _local_file(html.unescape(src), page)
        if local is None:
            broken.append(f"{src} (from the network: keep images in book/figures/ or outputs)")
        elif not local.is_file() or HTML.resolve() not in local.parents:
            broken.append(f"{src} (no such file in _build/html)")
    assert not broken, f"{url}: images that do not load offline:\n" + "\n".join(broken)
