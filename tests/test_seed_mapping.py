"""The table in book/references.md that maps each section of the course's three source documents
to the chapter and heading that teaches it: every heading it names exists in the page it names,
and every section of the three documents has a row.

The source documents are not part of the repository; they are looked for beside it
(``../shared/seeds``, as in the course's working setup) and the coverage test is skipped where
they are absent, for example in a fresh clone."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "book" / "references.md"
SEEDS = ROOT.parent / "shared" / "seeds"
MAPPING_HEADING = "## Where the course teaches its source documents"
DOCUMENTS = ("000", "001", "002")  # study card, article, lecture summary

# Lines of the documents that stand alone like headings but are page furniture: site and deck
# names, the author block, the documents' own titles.
FURNITURE = {
    "Buffl",
    "NLP, Transformers & ChatGPT",
    "Author",
    "Carmen F.",
    "Informationen",
    "Zuletzt geändert",
    "Building a GPT-like Model from Scratch with Detailed Theory and Code Implementation",
    "Articles",
    "Information",
}
CODE = re.compile(r"[=\[\]{}*_]|\w\(|^(import|from|class|def|return|print)\b")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
DOC_ROLE = re.compile(r"\{doc\}`([^`]+)`")


def normalise(text: str) -> str:
    """Drop leading emoji and symbols (the lecture summary's outline marks) and squeeze spaces."""
    return " ".join(re.sub(r"^[^\w]+", "", text.strip()).split())


def seed_sections(text: str, sentences: bool) -> list[str]:
    """The section headings of a plain-text source document: lines that stand alone between
    blank lines, unindented, at most 15 words, that are not code, not a timestamp, not in
    Chinese (the summary's translated keyword notes), not a code comment (#) nor an entry of the
    keyword list (💡),
    and do not end like a clause (``,`` ``;`` ``:``). A line ending in ``.`` is prose, except in
    the study card (``sentences=True``), whose card titles are instructions ending in a full
    stop (and have no comma)."""
    lines = text.splitlines()
    found = []
    for i, raw in enumerate(lines):
        line = raw.strip()
        before = lines[i - 1].strip() if i else ""
        after = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not line or before or after or raw != raw.lstrip():
            continue
        if not re.search("[A-Za-z]", line) or re.search("[\u3000-\u9fff]", line):
            continue
        if line.startswith(("💡", "#")):
            continue
        if len(line.split()) > 15 or CODE.search(line) or line.endswith((",", ";", ":")):
            continue
        if line.endswith(".") and (not sentences or "," in line):
            continue
        if line not in FURNITURE:
            found.append(normalise(line))
    return found


def mapping_tables() -> dict[str, list[tuple[str, str, list[str]]]]:
    """document number -> rows of (section, page path relative to the repository, headings)."""
    text = REFERENCES.read_text(encoding="utf-8")
    assert MAPPING_HEADING in text, f"book/references.md has no '{MAPPING_HEADING}' section"
    section = text.split(MAPPING_HEADING, 1)[1]
    tables, current = {}, None
    for line in section.splitlines():
        number = re.match(r"###\s.*source document (\d{3})", line)
        if number:
            current = tables.setdefault(number.group(1), [])
        elif line.startswith("## "):
            break
        elif current is not None and line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if cells[0] == "section of the document":
                continue
            assert len(cells) == 3, f"a mapping row needs 3 cells: {line}"
            page = DOC_ROLE.fullmatch(cells[1])
            assert page, f"the 'taught in' cell must be a {{doc}} link: {line}"
            path = (ROOT / "book" / page.group(1)).resolve().relative_to(ROOT)
            headings = [h.strip() for h in cells[2].split("; ")]
            current.append((normalise(cells[0]), str(path), headings))
    return tables


def page_headings(path: str) -> set[str]:
    """The markdown headings (text after the #s) of a notebook or a book page, outside code."""
    notebook, page = ROOT / f"{path}.ipynb", ROOT / f"{path}.md"
    if notebook.exists():
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        texts = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    else:
        assert page.exists(), f"the mapping names {path}, which is neither a notebook nor a page"
        texts = [page.read_text(encoding="utf-8")]
    headings, fenced = set(), False
    for text in texts:
        for line in text.splitlines():
            if line.startswith("```"):
                fenced = not fenced
            match = HEADING.match(line)
            if match and not fenced:
                headings.add(match.group(2))
    return headings


def test_the_mapping_has_one_table_per_source_document():
    assert sorted(mapping_tables()) == list(DOCUMENTS)


def test_every_heading_the_mapping_names_exists():
    missing = [
        f"{path}: {heading!r} (for {section!r})"
        for rows in mapping_tables().values()
        for section, path, headings in rows
        for heading in headings
        if heading not in page_headings(path)
    ]
    assert not missing, "headings in book/references.md that do not exist:\n" + "\n".join(missing)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the source documents are not beside the repo")
@pytest.mark.parametrize("number", DOCUMENTS)
def test_every_section_of_the_source_document_has_a_row(number):
    (document,) = SEEDS.glob(f"{number}_*.txt")
    sections = set(seed_sections(document.read_text(encoding="utf-8"), sentences=number == "000"))
    assert len(sections) >= 5, f"{document.name}: only {sections} found; has its format changed?"
    mapped = {section for section, _, _ in mapping_tables()[number]}
    assert not sections - mapped, f"{document.name}: sections without a row: {sections - mapped}"
    assert not mapped - sections, f"{document.name}: rows for no section: {mapped - sections}"


def test_the_section_finder_skips_code_prose_and_furniture():
    text = "Buffl\n\nA heading\n\nx = torch.rand(3)\n\nA sentence, with a comma.\n\n00:15\n\n  in\n"
    assert seed_sections(text, sentences=True) == ["A heading"]
    outline = "\n\n🔧 Fine-Tuning the Model\n\n"
    assert seed_sections(outline, sentences=False) == ["Fine-Tuning the Model"]
