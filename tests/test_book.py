"""The book: it builds with warnings as errors, and a headless Chromium reads every page.

The book is built once for this module into ``_build/html``. Then Chromium opens the start page
and every page listed in ``_toc.yml`` at 1280 px, as a reader would, and for each one the tests
check that its title is there, that its math was typeset by MathJax (loaded from the build, not
from the network), that every image loads from the build folder, that the console logs no error,
that no code or output block is wider than the page (with every solution opened), and that no
figure is shrunk below half its size. A screenshot of each page goes to ``_build/screenshots/``
for a person to look over.
"""

from __future__ import annotations

import base64
import fcntl
import html
import json
import os
import re
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from chromium import find_chromium

pytestmark = pytest.mark.slow  # builds the whole book

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"
SCREENSHOTS = REPO / "_build" / "screenshots"
JUPYTER_BOOK = REPO / ".venv" / "bin" / "jupyter-book"
BUILD_TIMEOUT_S = 900
BROWSER_TIMEOUT_S = 120
WIDTH = 1280  # px: a laptop's browser window

# A block may stay wider than the page only in a cell tagged WIDE_TAG whose code gives the
# reason in a comment, and at most MAX_WIDE_BLOCKS such blocks in a chapter.
WIDE_TAG = "wide-output"
WIDE_REASON = re.compile(r"^\s*# wide output: \S.{9,}", re.M | re.I)
MAX_WIDE_BLOCKS = 2

# Without a network these fail to load, and the page works without them: the widget manager
# and require.js (saved widgets then show their static fallback), thebe (live code) and the
# widgets' own modules.
OFFLINE_CDN_HOSTS = {"cdn.jsdelivr.net", "cdnjs.cloudflare.com", "unpkg.com"}


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
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):  # this test's own; lab/ belongs to the Lab test
        old.unlink()
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
# Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe): no extra
# package and no port, and the protocol gives what a command line cannot, such as the console's
# errors and measurements of the laid-out page.


class Chromium:
    """One headless Chromium; :meth:`send` calls a DevTools method and returns its result, and
    the events that arrive meanwhile are kept in :attr:`events`."""

    def __init__(self):
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_chromium, self._to_chromium = os.pipe()
        self._from_chromium, from_chromium = os.pipe()
        # Chromium reads the protocol from fd 3 and writes to fd 4; copies above 10 cannot be
        # overwritten while they are put in place.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chromium, from_chromium)]

        def on_fds_3_and_4():
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        flags = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={self._profile.name}",
            "--remote-debugging-pipe",
        ]
        self._process = subprocess.Popen(
            [find_chromium(), *flags, "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=on_fds_3_and_4,
            close_fds=False,  # fds 3 and 4 must reach Chromium (Python's own fds are not inherited)
        )
        for fd in (to_chromium, from_chromium, *high):
            os.close(fd)
        self._received = b""
        self._last_id = 0
        self.events: list[dict] = []

    def _next_message(self, deadline: float) -> dict:
        while b"\0" not in self._received:  # messages are JSON, each ended by a NUL byte
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chromium], [], [], left)[0]:
                pytest.fail(f"Chromium did not answer within {BROWSER_TIMEOUT_S} s")
            chunk = os.read(self._from_chromium, 1 << 20)
            if not chunk:
                pytest.fail(f"Chromium quit (exit code {self._process.poll()})")
            self._received += chunk
        message, self._received = self._received.split(b"\0", 1)
        return json.loads(message)

    def send(
        self, method: str, session: str | None = None, *, may_fail: bool = False, **params
    ) -> dict:
        """Call ``method``; if Chromium refuses it, fail the test, or return {} if ``may_fail``."""
        self._last_id += 1
        request = {"id": self._last_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._to_chromium, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + BROWSER_TIMEOUT_S
        while True:
            message = self._next_message(deadline)
            if message.get("id") == self._last_id:
                if "error" in message and may_fail:
                    return {}
                assert "error" not in message, f"Chromium refused {method}: {message['error']}"
                return message["result"]
            self.events.append(message)

    def evaluate(self, session: str, script: str):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.send(
            "Runtime.evaluate", session, expression=script, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, f"the page's script failed: {result}"
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self._process.wait(timeout=30)
        except BaseException:
            self._process.kill()
            self._process.wait()
        finally:
            os.close(self._to_chromium)
            os.close(self._from_chromium)
            self._profile.cleanup()


# Waits until the page is finished: MathJax has typeset, fonts and every image have loaded.
_SETTLE = """(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  await Promise.all([...document.images].map((img) => {
    img.loading = "eager";
    return img.decode().catch(() => null);  // a broken image is reported by its own check
  }));
})()"""

# Opens every solution, then measures the article: each code, output, maths and table block
# whose content is wider than its box (scrollWidth > clientWidth; scroll boxes inside it count
# too), and each image's natural and shown width.
_MEASURE = r"""(() => {
  const article = document.querySelector("article.bd-article") || document.body;
  article.querySelectorAll("details").forEach((d) => { d.open = true; });
  const scrolls = (el) => el.scrollWidth > el.clientWidth + 1;
  const inner = "pre, div.highlight, div.output, table, div.math, mjx-container, "
    + ".pst-scrollable-table-container";
  const text = (el) => {
    const items = window.MathJax && MathJax.startup && MathJax.startup.document
      && MathJax.startup.document.getMathItemsWithin
      ? MathJax.startup.document.getMathItemsWithin(el) : [];
    const raw = el.matches("div.math") && items.length ? items[0].math : el.innerText;
    return (raw || "").replace(/\s+/g, " ").trim().slice(0, 80);
  };
  const blocks = [];
  const visit = (el, kind) => {
    const boxes = [el, ...el.querySelectorAll(inner)].filter(scrolls);
    if (!boxes.length) return;
    const cell = el.closest(".cell");
    blocks.push({
      kind,
      text: text(el),
      excess: Math.max(...boxes.map((b) => b.scrollWidth - b.clientWidth)),
      allowed: !!(cell && cell.classList.contains("tag_wide-output")),
    });
  };
  const outside = (el) => !el.closest(".cell");
  for (const cell of article.querySelectorAll(".cell")) {
    cell.querySelectorAll(":scope .cell_input").forEach((el) => visit(el, "code"));
    cell.querySelectorAll(":scope .cell_output > *").forEach((el) => visit(el, "output"));
  }
  article.querySelectorAll("div.highlight").forEach((el) => outside(el) && visit(el, "code"));
  article.querySelectorAll("div.math").forEach((el) => outside(el) && visit(el, "maths"));
  article.querySelectorAll("table").forEach(
    (el) => outside(el) && visit(el.closest(".pst-scrollable-table-container") || el, "table"));
  const style = getComputedStyle(article);
  const content = article.clientWidth - parseFloat(style.paddingLeft)
    - parseFloat(style.paddingRight);
  const images = [...article.querySelectorAll("img")].map((img) => {
    const input = img.closest(".cell") && img.closest(".cell").querySelector(".cell_input");
    return {  // a figure made by a cell is named by the cell's code, which is easier to find
      where: input ? "the output of " + JSON.stringify(text(input)) : img.getAttribute("src"),
      natural: img.naturalWidth,
      shown: img.getBoundingClientRect().width,
    };
  });
  return {blocks, images, content};
})()"""


@dataclass
class Visit:
    """What Chromium saw of one page at 1280 px."""

    dom: str  # the document after its scripts ran
    errors: list[str]  # console errors, offline CDN loads left out
    blocks: list[dict]  # blocks wider than their box: kind, text, excess (px), allowed
    images: list[dict]  # where (the cell's code or the src), natural and shown width (px)
    content_width: float  # the article's content width (px)


def _console_errors(events: list[dict], session: str) -> list[str]:
    errors = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            what = details.get("exception", {}).get("description") or details.get("text")
            errors.append(f"{what} ({details.get('url', '')}:{details.get('lineNumber')})")
        elif event.get("method") == "Runtime.consoleAPICalled" and params["type"] == "error":
            errors.append(" ".join(str(arg.get("value", arg)) for arg in params["args"]))
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            host = urlsplit(entry.get("url", "")).hostname
            if entry["source"] == "network" and host in OFFLINE_CDN_HOSTS:
                continue  # expected without a network; the page works without them
            errors.append(f"{entry['text']} ({entry.get('url', '')})")
    return errors


@pytest.fixture(scope="module")
def chromium(book):
    browser = Chromium()
    yield browser
    browser.close()


_visits: dict[str, Visit] = {}


def _wait_until_loaded(chromium: Chromium, session: str, url: str) -> None:
    """Wait until the tab shows ``url``, loaded: the start page is reached through a redirect."""
    deadline = time.monotonic() + BROWSER_TIMEOUT_S
    where = ""
    while time.monotonic() < deadline:
        result = chromium.send(
            "Runtime.evaluate",
            session,
            may_fail=True,  # while one page replaces another, there is nothing to ask
            expression="location.href + ' ' + document.readyState",
            returnByValue=True,
        )
        where = result.get("result", {}).get("value") or ""
        if where == f"{url} complete":
            return
        time.sleep(0.1)
    pytest.fail(f"Chromium did not load {url} within {BROWSER_TIMEOUT_S} s (it shows {where!r})")


def _visit(chromium: Chromium, doc: str) -> Visit:
    """Open the page at 1280 × 900 px once (the start page through index.html, which must
    redirect to it), save a screenshot, and measure it with every solution opened."""
    if doc in _visits:
        return _visits[doc]
    page = HTML / f"{doc}.html"
    assert page.exists(), f"{page.relative_to(REPO)} was not built from {_source(doc)}"
    url = (HTML / "index.html" if doc == ROOT else page).as_uri()
    target = chromium.send("Target.createTarget", url="about:blank")["targetId"]
    session = chromium.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        chromium.send(f"{domain}.enable", session)
    chromium.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=WIDTH,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    chromium.send("Page.navigate", session, url=url)
    _wait_until_loaded(chromium, session, page.as_uri())
    chromium.evaluate(session, _SETTLE)
    shot = chromium.send("Page.captureScreenshot", session, format="png")["data"]
    (SCREENSHOTS / _screenshot_name(doc)).write_bytes(base64.b64decode(shot))
    dom = chromium.evaluate(session, "document.documentElement.outerHTML")
    measured = chromium.evaluate(session, _MEASURE)
    chromium.send("Target.closeTarget", targetId=target)
    errors = _console_errors(chromium.events, session)
    chromium.events = [e for e in chromium.events if e.get("sessionId") != session]
    _visits[doc] = Visit(dom, errors, measured["blocks"], measured["images"], measured["content"])
    return _visits[doc]


def _local_file(src: str, page: Path) -> Path | None:
    """The file an <img src> or <script src> refers to, or None when it comes from the network."""
    parts = urlsplit(src)
    if parts.scheme in ("http", "https") or src.startswith("//"):
        return None
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return (page.parent / unquote(parts.path)).resolve()


def _page_text(doc: str) -> str:
    """The built page as a reader sees its text: tags removed (code is split into highlighted
    spans, so a line of code is only found in the text), entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", (HTML / f"{doc}.html").read_text("utf-8")))


def _cells(doc: str) -> list[dict]:
    cells = json.loads(_source(doc).read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if isinstance(cell["source"], list):
            cell["source"] = "".join(cell["source"])
    return cells


NOTEBOOK_PAGES = [d for d in PAGES if d.startswith("notebooks/")]


@pytest.mark.parametrize("doc", NOTEBOOK_PAGES)
def test_no_test_or_setup_machinery_in_a_chapter_page(book, doc):
    """nbval marks are cell tags, and the Colab setup cell and the live widgets are tagged
    remove-cell: readers of the book see none of them (learners in Lab and Colab still have
    every cell)."""
    text = _page_text(doc)
    assert "NBVAL_" not in text, f"{doc}: an nbval marker shows in the page"
    assert 'find_spec("helpers")' not in text, f"{doc}: the Colab setup cell shows in the page"
    for cell in _cells(doc):
        if "remove-cell" in cell["metadata"].get("tags", []):
            lines = [ln.strip() for ln in cell["source"].splitlines() if ln.strip()]
            longest = max(lines, key=len, default="")
            assert longest not in text, f"{doc}: a cell tagged remove-cell shows: {longest!r}"


@pytest.mark.parametrize("doc", NOTEBOOK_PAGES)
def test_a_wide_output_cell_says_why(doc):
    """A block may be wider than the page only in a cell tagged ``wide-output`` whose code says
    why in a comment, ``# wide output: <reason>``, and at most MAX_WIDE_BLOCKS cells per
    chapter (book/for-instructors.md)."""
    tagged = [c for c in _cells(doc) if WIDE_TAG in c["metadata"].get("tags", [])]
    unexplained = [
        c["source"].splitlines()[0][:80] if c["source"] else "(empty cell)"
        for c in tagged
        if not WIDE_REASON.search(c["source"])
    ]
    assert not unexplained, (
        f"{doc}: cells tagged {WIDE_TAG} without a '# wide output: <reason>' comment: {unexplained}"
    )
    assert len(tagged) <= MAX_WIDE_BLOCKS, (
        f"{doc}: {len(tagged)} cells are tagged {WIDE_TAG}; at most {MAX_WIDE_BLOCKS} per chapter"
    )


def test_glossary_links_each_term_to_the_section_that_teaches_it(book):
    """Every glossary entry links to a chapter's section, and every such link lands on a
    heading that exists (a renamed heading would silently send the reader to the page top)."""
    page = HTML / "book" / "glossary.html"
    text = page.read_text("utf-8")
    entries = re.findall(r"<dt[^>]*>(.*?)</dt>\s*<dd>(.*?)</dd>", text, re.S)
    assert entries, "the glossary has no entries (a definition list: Term, then ': meaning')"
    unlinked = [
        re.sub(r"<[^>]+>", "", term)
        for term, meaning in entries
        if not re.search(r'href="[^"]*notebooks/[^"]+#', meaning)
    ]
    assert not unlinked, f"glossary entries without a link to a chapter's section: {unlinked}"
    broken = []
    for target, anchor in re.findall(r'href="(\.\./notebooks/[^"#]+)#([^"]+)"', text):
        chapter = (page.parent / target).resolve()
        if not chapter.is_file() or f'id="{anchor}"' not in chapter.read_text("utf-8"):
            broken.append(f"{target}#{anchor}")
    assert not broken, (
        "glossary links to sections that do not exist (the heading was renamed? anchors are "
        f"the heading in lower case, spaces as hyphens, punctuation dropped): {broken}"
    )


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
def test_page_renders_in_chromium(chromium, doc):
    page = HTML / f"{doc}.html"
    dom = _visit(chromium, doc).dom

    title = _title_of(doc)
    headings = [
        html.unescape(re.sub(r"<[^>]+>", "", h))
        for h in re.findall(r"<h1\b[^>]*>(.*?)</h1>", dom, re.S)
    ]
    assert any(_words(title) in _words(h) for h in headings), (
        f"{page}: no <h1> with the title {title!r}; the <h1>s are {headings}"
    )

    # MathJax is bundled into the build: a CDN would leave raw TeX on an offline machine.
    for src in re.findall(
        r'<script\b[^>]*\bsrc="([^"]*mathjax[^"]*)"', page.read_text("utf-8"), re.I
    ):
        local = _local_file(src, page)
        assert local is not None, f"{page} loads MathJax from the network ({src}), not _static/"
        assert local.exists(), f"{page} loads MathJax from {src}, which is not in the build"
    # Math in the Markdown, or in outputs (text/latex), must have been typeset by MathJax.
    formulas = len(re.findall(r'class="math notranslate', page.read_text("utf-8")))
    if _has_math(doc) or formulas:
        assert "<mjx-container" in dom, (
            f"{page}: the page has math, but MathJax typeset none of it (no <mjx-container>); "
            f"is sphinx-mathjax-offline in _config.yml, and did _static/mathjax get copied?"
        )
        assert "<mjx-merror" not in dom, f"{page}: MathJax reports a TeX error on this page"
        typeset = dom.count("<mjx-container")
        assert typeset >= formulas, f"{page}: only {typeset} of {formulas} formulas were typeset"

    broken = []
    for src in re.findall(r'<img\b[^>]*?\bsrc="([^"]*)"', dom):
        if src.startswith("data:"):
            continue
        local = _local_file(html.unescape(src), page)
        if local is None:
            broken.append(f"{src} (from the network: keep images in book/figures/ or outputs)")
        elif not local.is_file() or HTML.resolve() not in local.parents:
            broken.append(f"{src} (no such file in _build/html)")
    assert not broken, f"{page}: images that do not load offline:\n" + "\n".join(broken)


@pytest.mark.parametrize("doc", PAGES)
def test_no_console_errors(chromium, doc):
    """A page logs no error in the browser console; only the loads from a CDN that fail without
    a network (the widget manager, thebe) are expected."""
    errors = _visit(chromium, doc).errors
    assert not errors, f"{doc}: the page logs console errors:\n" + "\n".join(errors)


@pytest.mark.parametrize("doc", PAGES)
def test_code_and_outputs_fit_the_page(chromium, doc):
    """At 1280 px, with every solution open, no code, output, maths or table block is wider
    than its box (a reader would scroll sideways), except in cells tagged wide-output."""
    blocks = _visit(chromium, doc).blocks
    wide = [b for b in blocks if not b["allowed"]]
    allowed = [b for b in blocks if b["allowed"]]
    listing = "\n".join(
        f"  {b['kind']:6} +{b['excess']:>4} px  {b['text']!r}" for b in wide + allowed
    )
    assert not wide and len(allowed) <= MAX_WIDE_BLOCKS, (
        f"{doc}: {len(wide)} blocks are wider than their box at {WIDTH} px, and "
        f"{len(allowed)} in cells tagged {WIDE_TAG} (at most {MAX_WIDE_BLOCKS}):\n{listing}\n"
        "Wrap or narrow them (textwrap, fewer columns, shorter lines, aligned maths); see "
        "book/for-instructors.md for the rare block that must stay wide."
    )


@pytest.mark.parametrize("doc", PAGES)
def test_wide_figures_are_shown_at_half_size_or_more(chromium, doc):
    """A figure wider than the page is shrunk to fit it; shrunk below half its size, its text
    is too small to read: lay out fewer panels per row, or make the figure narrower."""
    visit = _visit(chromium, doc)
    shrunk = [
        f"  {i['natural']} px shown at {i['shown']:.0f} px "
        f"({i['shown'] / i['natural']:.0%}): {i['where']}"
        for i in visit.images
        if i["natural"] > visit.content_width and 0 < i["shown"] < i["natural"] / 2
    ]
    assert not shrunk, (
        f"{doc}: figures shown below half their size (content width "
        f"{visit.content_width:.0f} px):\n" + "\n".join(shrunk)
    )
