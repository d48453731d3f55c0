"""Each chapter's key figures, written where `make verify` finds them.

A chapter's last cell records the numbers its run is judged by (validation losses, accuracies,
speed-ups) with :func:`record`; they go to ``runs_dir()/figures/chNN.json``, one small JSON file
per chapter (a smoke run writes under ``runs/smoke``, so it never mixes with a full run).
``tools/verify.py`` runs the chapters in full mode, reads these files and compares each figure
with the band stored for this kind of device in ``helpers/reference/figures_<device>.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from helpers.atomic_io import atomic_write_text
from helpers.settings import runs_dir

REFERENCE = Path(__file__).parent / "reference"


def key(chapter: int | str) -> str:
    """A chapter's name in the bands: ``7`` → ``"07"``; a companion notebook keeps its own
    (``"06a"`` for ``notebooks/deeper/06a_….ipynb``)."""
    return f"{chapter:02d}" if isinstance(chapter, int) else chapter


def path(chapter: int | str) -> Path:
    """Where chapter ``chapter``'s figures are written: ``runs_dir()/figures/chNN.json``."""
    return runs_dir() / "figures" / f"ch{key(chapter)}.json"


def as_float(value: Any) -> float | None:
    """A figure as a float: a Python or NumPy number or a one-element tensor; None (not measured
    in this run) stays None, and so does NaN or infinity (JSON has no spelling for them)."""
    if value is None:
        return None
    if hasattr(value, "item"):  # a tensor or a NumPy scalar
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a figure must be a number, got {type(value).__name__} ({value!r})")
    return float(value) if math.isfinite(value) else None


def record(chapter: int | str, name: str, value: Any) -> None:
    """Record one figure of ``chapter`` under ``name`` (a later value of the same name replaces
    it); ``value`` None means it was not measured in this run."""
    figures = read(chapter)
    figures[name] = as_float(value)
    atomic_write_text(path(chapter), json.dumps(figures, indent=1, sort_keys=True) + "\n")


def read(chapter: int | str) -> dict[str, float | None]:
    """The figures chapter ``chapter`` recorded in this runs folder ({} before its first run)."""
    file = path(chapter)
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}


def clear(chapter: int | str) -> None:
    """Forget chapter ``chapter``'s figures, so that a new run cannot be judged by old ones."""
    path(chapter).unlink(missing_ok=True)


def bands(device: str) -> dict | None:
    """The expected figures for ``device`` (``cpu``, ``cuda``, ``mps``): the parsed
    ``helpers/reference/figures_<device>.json``, or None where none were measured yet."""
    file = REFERENCE / f"figures_{device}.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else None


def check_my_run(chapter: int | str, **measured: Any) -> None:
    """A chapter's closing line: record ``measured`` quietly (for ``make verify``), then print each
    figure beside the band a full run on this kind of device lands in, with "on track" or "look
    again", and how long this run took. Smoke runs and devices with no bands yet say so."""
    from helpers.settings import pick_device, run_seconds, smoke_mode

    measured["runtime_s"] = run_seconds()
    for name, value in measured.items():
        record(chapter, name, value)
    device = pick_device()
    expected = (bands(device) or {}).get("chapters", {}).get(key(chapter), {})
    if smoke_mode():
        print("a shortened run: its figures are not meant to land in a full run's bands")
    elif not expected:
        print(f"no expected values for a full run on {device} yet: these are the first")
    else:
        print(f"your run beside the range a full run on {device} lands in ('on track': inside)")
    for name, value in measured.items():
        band = expected.get(name, {}).get("band")
        print(_verdict_line(name, as_float(value), band, smoke_mode()))


def _verdict_line(name: str, value: float | None, band: list | None, shortened: bool) -> str:
    shown = "not measured" if value is None else f"{value:.4g}"
    if name == "runtime_s" and value is not None:
        shown = f"{int(value // 60)} min {value % 60:.0f} s"
    if band is None or value is None or shortened:
        return f"{name:<28} {shown}"
    low, high = band
    verdict = "on track" if low <= value <= high else "look again"
    return f"{name:<28} {shown:<14} expected {low:.4g} to {high:.4g}: {verdict}"
