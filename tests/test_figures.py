"""Full-mode verification: helpers.figures records each chapter's key figures, the bands in
helpers/reference/figures_cpu.json cover every chapter, tools/verify.py compares the two, and the
"am I on track?" table in README.md and book/setup.md is generated from the bands."""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from helpers import figures

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BANDS = figures.bands("cpu")
EVERY_NOTEBOOK = NOTEBOOKS + sorted((ROOT / "notebooks" / "deeper").glob("[0-9][0-9][a-z]_*.ipynb"))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


verify = load_tool("verify")
on_track_table = load_tool("on_track_table")


def test_record_writes_merges_and_clears_a_chapter_file(empty_data_dir):
    figures.record(7, "val_loss", torch.tensor(1.69))
    figures.record(7, "speedup", 2)
    figures.record(7, "val_loss", 1.70)  # a later value replaces the earlier one
    figures.record(7, "not_measured", None)
    figures.record(7, "diverged", float("nan"))
    assert figures.path(7).name == "ch07.json" and figures.path(7).parent.name == "figures"
    assert figures.read(7) == {
        "val_loss": 1.70,
        "speedup": 2.0,
        "not_measured": None,
        "diverged": None,
    }
    with pytest.raises(TypeError, match="must be a number"):
        figures.record(7, "oops", "1.7")
    figures.clear(7)
    assert figures.read(7) == {}


def test_the_cpu_bands_cover_every_chapter_and_companion():
    assert BANDS is not None and BANDS["device"] == "cpu"
    assert sorted(BANDS["chapters"]) == sorted(verify.figure_key(nb) for nb in EVERY_NOTEBOOK)
    for chapter, entries in BANDS["chapters"].items():
        assert "runtime_s" in entries and len(entries) >= 2, f"chapter {chapter}: no figure"
        for name, entry in entries.items():
            band, reference = entry["band"], entry["reference"]
            assert band is not None and reference is not None, (
                f"{chapter} {name}: TODO, not measured"
            )
            assert band[0] <= reference <= band[1], f"{chapter} {name}: {reference} outside {band}"


# Figures that cannot be negative: a band reaching below zero is wider than the figure's range.
NEVER_NEGATIVE = re.compile(r"runtime|speedup|ratio|loss|accuracy|difference|diff|norm|kl|size")


def test_every_band_can_fail():
    for chapter, entries in BANDS["chapters"].items():
        for name, entry in entries.items():
            low, high = entry["band"]
            assert high < float("inf") and low < high or low == high, f"{chapter} {name}"
            if NEVER_NEGATIVE.search(name):
                assert low >= 0, f"{chapter} {name}: band {entry['band']} reaches below zero"


CLOSING_CALL = re.compile(r"^check_my_run\(\s*\"?(\w+)\"?\s*,(.*?)\)\s*$", re.S | re.M)


@pytest.mark.parametrize("nb", EVERY_NOTEBOOK, ids=lambda p: p.stem)
def test_each_notebook_checks_the_figures_its_bands_expect(nb):
    code = "\n".join(
        c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"
    )
    calls = CLOSING_CALL.findall(code)
    assert calls, f"{nb.name}: no check_my_run(...) line"
    key, arguments = calls[-1]
    key = f"{int(key):02d}" if key.isdigit() else key
    assert key == verify.figure_key(nb), f"{nb.name} checks figures of {key}"
    recorded = set(re.findall(r"(?:^|,)\s*(\w+)\s*=", arguments))
    expected = set(BANDS["chapters"][key]) - {"runtime_s"}
    assert recorded == expected, (
        f"{nb.name}: records {sorted(recorded)}, bands expect {sorted(expected)}"
    )


def test_figures_are_compared_with_their_bands():
    expected = {
        "val_loss": {"band": [2.45, 2.51]},
        "accuracy": {"band": [0.8, 0.9]},
        "speedup": {"band": [1.0, 3.0]},
        "new": {"band": None},
    }
    got = {"val_loss": 2.48, "accuracy": 0.95, "new": 1.0, "unexpected": 3.0}
    verdicts = {name: verdict for name, _, _, verdict in verify.compare(expected, got)}
    assert verdicts == {
        "val_loss": "ok",
        "accuracy": "OUTSIDE",
        "speedup": "missing",
        "new": "no band yet",
        "unexpected": "no band yet",
    }


def test_verify_runs_a_chapter_copy_in_full_mode_and_fails_on_a_figure_out_of_its_band(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "0")
    monkeypatch.setenv("GPT_COURSE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(verify, "SCRATCH", tmp_path / "scratch")
    monkeypatch.setattr(figures, "REFERENCE", tmp_path / "reference")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "figures_cpu.json").write_text(
        json.dumps(
            {
                "device": "cpu",
                "chapters": {
                    "02": {
                        "runtime_s": {"reference": 5, "band": [0, 120]},
                        "val_loss": {"reference": 2.48, "band": [2.45, 2.51]},
                        "train_loss": {"reference": 2.46, "band": [2.43, 2.49]},
                    }
                },
            }
        )
    )
    source = tmp_path / "notebooks"
    source.mkdir()
    nb = new_notebook(
        cells=[
            new_code_cell(
                "from helpers import figures\n"
                'figures.record(2, "val_loss", 2.47)\n'
                'figures.record(2, "train_loss", 9.9)'
            )
        ]
    )
    nbformat.write(nb, source / "02_tiny.ipynb")
    figures.record(2, "stale", 1.0)  # from an earlier run: must not count

    assert verify.main(["2", "--device", "cpu", "--notebooks", str(source)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"val_loss\s+2\.45 – 2\.51\s+2\.47\s+ok", out)
    assert re.search(r"train_loss\s+2\.43 – 2\.49\s+9\.9\s+OUTSIDE", out)
    assert re.search(r"runtime_s\s+0 – 120\s+[\d.]+\s+ok", out) and "stale" not in out
    assert nbformat.read(source / "02_tiny.ipynb", as_version=4).cells[0].outputs == [], (
        "source untouched"
    )


def test_the_on_track_tables_are_generated_from_the_bands():
    assert on_track_table.main(["--check"]) == 0, "run: python tools/on_track_table.py"
    rendered = on_track_table.table(BANDS)
    for chapter in filter(str.isdigit, BANDS["chapters"]):  # chapters; companions have no row
        assert f"| {int(chapter)}. " in rendered
    low, high = BANDS["chapters"]["07"]["val_loss"]["band"]
    assert f"validation loss {low:.2f}–{high:.2f}" in rendered


def test_a_new_device_gets_bands_as_wide_as_the_cpu_ones_centred_on_its_run():
    widths = {"val_loss": {"reference": 2.48, "band": [2.45, 2.51]}}
    got = {"runtime_s": 30.0, "val_loss": 2.2, "new": -0.5, "skipped": None}
    bands = verify.measured_bands(widths, got, seconds=30.0)
    assert bands["runtime_s"] == {"reference": 30, "band": [0, 120]}
    assert bands["val_loss"] == {"reference": 2.2, "band": [2.17, 2.23]}
    assert bands["new"]["band"] == [-0.525, -0.475] and "skipped" not in bands
    text = verify.bands_json({"device": "cuda", "chapters": {"07": bands}})
    assert json.loads(text)["chapters"]["07"] == bands
    assert verify.bands_json(BANDS) == (figures.REFERENCE / "figures_cpu.json").read_text()
