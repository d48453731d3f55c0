"""Every number a chapter's prose quotes is backed: printed by the chapter's own stored outputs,
or cited beside it (tools/prose_numbers.py says what counts). The first tests show the checker
telling a backed number from an unbacked one; the last runs it over every chapter."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "deeper").glob("[0-9][0-9][a-z]_*.ipynb")
)

_spec = importlib.util.spec_from_file_location("prose_numbers", ROOT / "tools" / "prose_numbers.py")
prose_numbers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prose_numbers)


def notebook(tmp_path, prose: str, printed: str = "") -> Path:
    """A two-cell notebook: one markdown cell, one code cell that printed ``printed``."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": prose},
        {
            "cell_type": "code",
            "metadata": {},
            "source": "",
            "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}],
        },
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    return path


def quoted(tmp_path, prose, printed=""):
    return [number for number, _ in prose_numbers.unbacked(notebook(tmp_path, prose, printed))]


@pytest.mark.parametrize(
    "prose, printed",
    [
        ("The loss reached 1.69.", "val loss 1.6902"),  # rounded to the places quoted
        ("It has 27,676 parameters.", "27676 parameters"),
        ("It has 27,676 parameters.", "total: 27,676"),
        ("Accuracy was 89.2%.", "accuracy 0.892"),  # a percentage of a printed fraction
        ("Accuracy was 89.2%.", "accuracy 89.24%"),
        ("Fused attention ran 1.15× faster.", "1.15x"),
        ("fp16 flushes below 5.96e-8.", "5.960464477539063e-08"),
    ],
)
def test_a_number_the_outputs_print_is_backed(tmp_path, prose, printed):
    assert quoted(tmp_path, prose, printed) == []


@pytest.mark.parametrize(
    "prose, printed, number",
    [
        ("The loss reached 1.69.", "val loss 1.7", "1.69"),  # fewer places cannot back more
        ("The loss reached 1.69.", "val loss 1.6951", "1.69"),  # rounds to 1.70
        ("The loss reached 1.69.", "val loss 11.69", "1.69"),  # only whole numbers match
        ("It has 786,432 weights.", "", "786,432"),
        ("Accuracy was 82.4%.", "accuracy 0.86", "82.4%"),
        ("A 16.4× speed-up.", "1.4x", "16.4×"),
    ],
)
def test_a_number_nothing_prints_is_unbacked(tmp_path, prose, printed, number):
    assert quoted(tmp_path, prose, printed) == [number]


@pytest.mark.parametrize(
    "prose",
    [
        "Kaplan et al. measured an exponent of about 0.076 (Kaplan et al., 2020).",
        "Kaplan et al. (2020) measured an exponent of about 0.076.",
        "The README (Karpathy, 2022) reports 1.4697.",
        "A loss of 1.4697 in [nanoGPT's README](https://github.com/karpathy/nanoGPT).",
        "Raters ranked about 33,000 prompts (Ouyang et al. 2022; Stiennon et al., 2020).",
    ],
)
def test_a_cited_source_in_the_same_paragraph_backs_a_number(tmp_path, prose):
    assert quoted(tmp_path, prose) == []


def test_a_citation_backs_only_its_own_paragraph_list_item_or_table_row(tmp_path):
    prose = (
        "Kaplan et al. (2020) found a power law.\n\nOurs has an exponent of 0.057.\n\n"
        "- a cited item (Karpathy, 2022): 1.4697\n- an uncited item: 82.4%\n\n"
        "| run | accuracy |\n|---|---|\n| cited (Smith, 2021) | 86.6% |\n| ours | 81.2% |\n"
    )
    assert quoted(tmp_path, prose) == ["0.057", "82.4%", "81.2%"]


def test_code_math_links_and_plain_numbers_are_not_quotes(tmp_path):
    prose = (
        "Code `lr = 0.0003`, math $\\ln 65 \\approx 4.17$, a link [paper](2005.14165),\n"
        "```python\nx = 1,000.25\n```\n"
        "a 3 × 512 × 512 product, an 8×8 grid, 12 layers, 1e-4, 0.5 and 65%."
    )
    assert quoted(tmp_path, prose) == []


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_in_a_chapters_prose_is_backed(nb):
    found = prose_numbers.unbacked(nb)
    assert not found, "numbers quoted but neither printed nor cited:\n" + "\n".join(
        f"  {number!r} in …{context}…" for number, context in found
    )
