"""Numbers quoted in a chapter's prose that nothing backs.

A chapter may quote a measured number only if the reader can see where it comes from. This
checker looks at the markdown cells of a notebook (outside code fences and math) for the
numbers a reader would take as measured (inline code counts as code):

- decimals with two or more places: 1.6902, 0.25;
- percentages with a decimal: 89.2%;
- comma-grouped integers: 27,676;
- ratios: 16.4× or 16.4x (a number written straight before the sign, not "3 × 512").

Each one must be backed, in one of two ways:

1. **By the notebook's stored outputs** (streams, text and HTML displays): some number printed
   there equals it once rounded to the places quoted (1.69 is backed by 1.6902; 27,676 by
   27676; a percentage also by the fraction, 89.2% by 0.892).
2. **By a source standing beside it**: the same paragraph (a list item and a table row each
   count as a paragraph of their own) cites it, with either
   - a markdown link to a web page, `[nanoGPT's README](https://github.com/...)`, or
   - an author-year citation, `(Kaplan et al., 2020)`, `Kaplan et al. (2020)`,
     `(Hoffmann et al. 2022; Kaplan et al., 2020)` or `(Karpathy, 2022)`.

Usage: python tools/prose_numbers.py NOTEBOOK... (prints each unbacked number in context;
exit status 1 if there is any)."""

import json
import re
import sys
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

QUOTED = re.compile(
    r"(?<![\w.,])(?:"
    r"(?P<grouped>\d{1,3}(?:,\d{3})+)(?!\.?\d)"  # 27,676
    r"|(?P<ratio>\d+(?:\.\d+)?)[×x](?![\w×])"  # 16.4× (but not 8×8 or 0x1f)
    r"|(?P<percent>\d+\.\d+)\s?%"  # 89.2%
    r"|(?P<decimal>\d+\.\d{2,})(?!\.?\d)"  # 1.6902
    r")"
)
PRINTED = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")  # a number in the outputs, commas removed
WEB_LINK = re.compile(r"\]\(https?://[^)]+\)")
_AUTHOR = r"[A-Z][\w'’-]+(?:\s+et\s+al\.|\s+(?:and|&)\s+[A-Z][\w'’-]+)?"
AUTHOR_YEAR = re.compile(
    rf"\(\s*{_AUTHOR},?\s+(?:19|20)\d\d[a-z]?\s*[;)]"  # (Kaplan et al., 2020)
    rf"|{_AUTHOR}\s+\((?:19|20)\d\d[a-z]?\)"  # Kaplan et al. (2020)
)


def _joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


def prose_paragraphs(nb: dict) -> list[str]:
    """The markdown cells' paragraphs, without code fences, inline code and math; a list item
    or a table row is a paragraph of its own."""
    paragraphs = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"```.*?```", " ", _joined(cell["source"]), flags=re.S)
        text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$|`[^`\n]+`", " ", text, flags=re.S)
        text = re.sub(r"</?[A-Za-z][^>\n]*>", " ", text)  # HTML tags: ids, not prose
        for block in re.split(r"\n\s*\n", text):
            # a new list item or table row starts a new paragraph; wrapped lines continue one
            paragraphs += re.split(r"\n(?=\s*(?:[-*+]|\d+\.|\|)\s)", block)
    return paragraphs


def printed_numbers(nb: dict) -> list[str]:
    """Every number in the notebook's stored text outputs, as printed (commas removed)."""
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                texts.append(_joined(out["text"]))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    texts.append(_joined(value))
    return PRINTED.findall(re.sub(r"(?<=\d),(?=\d{3})", "", "\n".join(texts)))


def rounds_to(printed: str, quoted: str) -> bool:
    """Whether ``printed`` (to at least as many places) rounds to ``quoted``, either way a
    half is rounded."""
    places = Decimal(quoted).as_tuple().exponent
    if Decimal(printed).as_tuple().exponent > places:
        return False  # 1.7 printed cannot back 1.69 quoted
    return any(
        Decimal(printed).quantize(Decimal(1).scaleb(places), rounding=r) == Decimal(quoted)
        for r in (ROUND_HALF_EVEN, ROUND_HALF_UP)
    )


def is_backed(match: re.Match, printed: list[str]) -> bool:
    quoted = next(v for v in match.groupdict().values() if v is not None).replace(",", "")
    if any(rounds_to(p, quoted) for p in printed):
        return True
    if match["percent"] is not None:  # 89.2% from a fraction printed as 0.892
        percent = Decimal(quoted)
        return any(rounds_to(str(Decimal(p) * 100), str(percent)) for p in printed)
    return False


def cites_a_source(paragraph: str) -> bool:
    return bool(WEB_LINK.search(paragraph) or AUTHOR_YEAR.search(paragraph))


def unbacked(path: Path) -> list[tuple[str, str]]:
    """(number, its context) for each number quoted in the prose that nothing backs."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    printed = printed_numbers(nb)
    found = []
    for paragraph in prose_paragraphs(nb):
        if cites_a_source(paragraph):
            continue
        paragraph = re.sub(r"\]\([^)]*\)", "]", paragraph)  # link targets: 2005.14165
        for match in QUOTED.finditer(paragraph):
            if not is_backed(match, printed):
                context = paragraph[max(0, match.start() - 60) : match.end() + 30]
                found.append((match[0], " ".join(context.split())))
    return found


def main(paths: list[str]) -> int:
    total = 0
    for path in paths:
        for number, context in unbacked(Path(path)):
            print(f"{path}: {number!r} in …{context}…")
            total += 1
    print(f"{total} unbacked number(s) in the prose of {len(paths)} notebook(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
