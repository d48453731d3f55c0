"""Run chapters in full mode and compare their key figures with the bands expected on this device.

    python tools/verify.py                 every chapter, in order       (make verify)
    python tools/verify.py 07              one chapter, or several       (make verify CHAPTER=07)
    python tools/verify.py --write-bands   measure this device's bands (a GPU's, say) from the run

Each chapter is copied to _build/verify/ and executed there in a fresh kernel
(tools/execute_notebooks.py), so the stored outputs in notebooks/ stay as they are. Its last cell
records its key figures (helpers.figures, in the runs folder); they and the chapter's wall time
are compared with helpers/reference/figures_<device>.json. The table shows figure, expected
band, got and verdict; the exit status is 1 when a figure is outside its band or missing, or a
chapter does not run to the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from execute_notebooks import execute  # noqa: E402

from helpers import figures  # noqa: E402
from helpers.settings import hardware, pick_device, smoke_mode  # noqa: E402

SCRATCH = ROOT / "_build" / "verify"
RUNTIME = "runtime_s"  # measured here, not recorded by the notebook


def figure_key(notebook: Path) -> str:
    """The name a notebook's figures and bands go by: "07" for a chapter, "07a" for the first of
    its companions (notebooks/deeper/07a_….ipynb)."""
    return notebook.name[:3] if notebook.parent.name == "deeper" else notebook.name[:2]


def chapter_notebooks(chapters: list[str], source: Path = ROOT / "notebooks") -> list[Path]:
    """The notebooks of ``chapters`` ("7", "07", "07a", ...), in order, each chapter followed by
    its companions; every one of them when ``chapters`` is empty."""
    every = sorted(source.glob("[0-9][0-9]_*.ipynb")) + sorted(
        (source / "deeper").glob("[0-9][0-9][a-z]_*.ipynb")
    )
    found = dict(sorted((figure_key(nb), nb) for nb in every))
    wanted = [c if c[-1].isalpha() else f"{int(c):02d}" for c in chapters] or list(found)
    missing = [c for c in wanted if not any(key.startswith(c) for key in found)]
    if missing:
        raise SystemExit(f"no notebook for chapter {', '.join(missing)} in {source}")
    return [nb for key, nb in found.items() if any(key.startswith(c) for c in wanted)]


def run_chapter(notebook: Path) -> tuple[float | None, str | None]:
    """Execute a scratch copy of ``notebook`` in full mode: (seconds, None), or (None, why not)."""
    copy = SCRATCH / notebook.name
    SCRATCH.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, copy)
    figures.clear(figure_key(notebook))  # judge this run only, never an earlier one's figures
    try:
        return execute(copy), None
    except Exception as err:  # a cell failed, timed out or the kernel died: say which, go on
        last = [line for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
        return None, last[-1][:200]


def in_band(value: float | None, band: list | None) -> str:
    if band is None:
        return "no band yet"
    if value is None:
        return "missing"
    return "ok" if band[0] <= value <= band[1] else "OUTSIDE"


def compare(expected: dict, got: dict) -> list[tuple[str, list | None, float | None, str]]:
    """(figure, band, value, verdict) for every figure expected or recorded."""
    rows = [
        (name, entry.get("band"), got.get(name), in_band(got.get(name), entry.get("band")))
        for name, entry in expected.items()
    ]
    rows += [
        (name, None, value, "no band yet") for name, value in got.items() if name not in expected
    ]
    return rows


def _number(x: float | None) -> str:
    if x is None:
        return "-"
    if x == int(x) or abs(x) >= 1e4:
        return f"{x:,.0f}"
    return f"{x:.1e}" if abs(x) < 1e-3 else f"{x:.5g}"


def report(chapter: str, seconds: float | None, error: str | None, rows) -> str:
    head = f"chapter {chapter}: " + (
        f"ran in {seconds:.0f} s" if error is None else f"FAILED: {error}"
    )
    lines = [head, f"  {'figure':<34}{'expected band':>22}{'got':>11}  verdict"]
    for name, band, value, verdict in rows:
        shown = "-" if band is None else f"{_number(band[0])} – {_number(band[1])}"
        lines.append(f"  {name:<34}{shown:>22}{_number(value):>11}  {verdict}")
    return "\n".join(lines)


def measured_bands(widths: dict | None, got: dict, seconds: float) -> dict:
    """Bands centred on this run's figures, as wide as ``widths`` (the reference machine's cpu
    bands of the chapter), else +-5%; for a device measured the first time (``--write-bands``).
    Review them before committing."""
    cpu = widths or {}
    out = {RUNTIME: {"reference": round(seconds), "band": [0, max(120, 3 * round(seconds))]}}
    for name, value in got.items():
        if value is None or name == RUNTIME:
            continue
        band = cpu.get(name, {}).get("band")
        half = (band[1] - band[0]) / 2 if band else 0.05 * abs(value)
        out[name] = {"reference": value, "band": [round(value - half, 6), round(value + half, 6)]}
    return out


def bands_json(bands: dict) -> str:
    """The bands file's text: one line per figure, easy to review in a diff."""
    dump = partial(json.dumps, ensure_ascii=False)
    lines = ["{", *(f" {dump(k)}: {dump(v)}," for k, v in bands.items() if k != "chapters")]
    chapters = [
        f"  {dump(chapter)}: {{\n"
        + ",\n".join(f"   {dump(name)}: {dump(entry)}" for name, entry in entries.items())
        + "\n  }"
        for chapter, entries in sorted(bands["chapters"].items())
    ]
    return "\n".join([*lines, ' "chapters": {', ",\n".join(chapters), " }", "}"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers, e.g. 02 07 (default: all)")
    parser.add_argument(
        "--device", default=None, help="device kind of the bands (default: the one in use)"
    )
    parser.add_argument(
        "--write-bands",
        action="store_true",
        help="write this run's figures as the device's bands (its first measurement)",
    )
    parser.add_argument(
        "--notebooks", type=Path, default=ROOT / "notebooks", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if smoke_mode():
        sys.exit("GPT_COURSE_SMOKE is set: verification compares full runs; unset it")
    device = args.device or pick_device()
    stored = figures.bands(device)
    if stored is None and not args.write_bands:
        sys.exit(
            f"no bands for device '{device}' yet (helpers/reference/figures_{device}.json); "
            f"measure them once with: python tools/verify.py --write-bands"
        )
    stored = stored or {"device": device, "chapters": {}}
    failures, measured = 0, {}
    for notebook in chapter_notebooks(args.chapters, args.notebooks):
        chapter = figure_key(notebook)
        seconds, error = run_chapter(notebook)
        got = figures.read(chapter)
        if seconds is not None:
            got = {RUNTIME: round(seconds, 1), **got}
            widths = (figures.bands("cpu") or {"chapters": {}})["chapters"].get(chapter)
            measured[chapter] = measured_bands(widths, got, seconds)
        rows = compare(stored["chapters"].get(chapter, {}), got)
        failures += (error is not None) + sum(verdict != "ok" for *_, verdict in rows)
        print(report(chapter, seconds, error, rows), end="\n\n", flush=True)
    if args.write_bands:
        stored["chapters"].update(measured)
        stored["machine"] = hardware()
        file = figures.REFERENCE / f"figures_{device}.json"
        file.write_text(bands_json(stored), encoding="utf-8")
        print(f"wrote {file.relative_to(ROOT)}: review each band, then run tools/on_track_table.py")
        return 0
    print(
        f"{'all figures within their bands' if not failures else f'{failures} problem(s)'} "
        f"(device '{device}', bands from {stored.get('machine', 'an unnamed machine')})"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
