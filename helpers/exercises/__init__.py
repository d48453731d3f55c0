"""The exercise checks, one module per chapter: ``from helpers.exercises import ch01`` and
``ch01.check_get_batch(my_get_batch)``. Each check prints one line, ``✅ ex-01-batch: ...`` or
``❌ ex-01-batch: ... — hint: ...``, records the verdict under the exercise's label and never
raises, so a notebook with an unfinished exercise still runs to the end.

A grader collects the verdicts with :func:`results` in the kernel that ran the notebook, or with
:func:`verdicts_in` from the notebook's printed outputs; :func:`all_checks` lists every checked
exercise label (an exercise without one has a prose answer and is not auto-checked).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from helpers.exercises.verdict import clear_results, results, verdicts_in

CHAPTERS = tuple(f"ch{n:02d}" for n in range(1, 12))

__all__ = ["CHAPTERS", "all_checks", "clear_results", "results", "verdicts_in"]


def all_checks() -> dict[str, Callable[..., None]]:
    """Every check, by exercise label, in chapter order (imports every chapter's module)."""
    from helpers.exercises import verdict

    for chapter in CHAPTERS:
        importlib.import_module(f"helpers.exercises.{chapter}")
    return dict(verdict._checks)
