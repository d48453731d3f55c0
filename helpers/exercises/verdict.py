"""What every exercise check shares: one verdict line per check, a record of the verdicts by
exercise label for grading, and a guard that keeps a check from raising, whatever the answer.

A check is a function decorated with :func:`exercise`. It calls the learner's function through
:func:`call` and returns :func:`passed` or :func:`failed`. If the learner's function raises, or
returns something the check's own comparisons choke on (None, a string, a list, a tensor of the
wrong dtype), the guard prints a cross that says what came back and what was expected.
"""

from __future__ import annotations

import functools
import numbers
import re
import textwrap
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

_results: dict[str, bool] = {}  # exercise label -> passed, in the order first checked
_verdicts: dict[str, Verdict] = {}  # exercise label -> its last verdict, hint included
_checks: dict[str, Callable[..., None]] = {}  # exercise label -> its check
_returned: list[Any] = []  # what the learner's functions returned during the current check

VERDICT_LINE = re.compile(r"^(✅|❌) (ex-[\w-]+): ", re.MULTILINE)
# A verdict is wrapped to fit an output box of the book at 1280 px (about 88 characters), its
# continuation lines indented; words are never split, so a code name in a hint stays whole.
VERDICT_WIDTH = 84


class Verdict(NamedTuple):
    ok: bool
    what: str
    hint: str = ""


def passed(what: str) -> Verdict:
    return Verdict(True, what)


def failed(what: str, hint: str = "") -> Verdict:
    return Verdict(False, what, hint)


class AnswerRaised(Exception):
    """The learner's function raised: the guard reports it with the check's hint, if any."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def call(fn: Callable, *args: Any, hint: str = "") -> Any:
    """Call a learner's function and return what it returned (remembered, so that the guard can
    describe it if the check cannot use it). If it raises, the check stops with a cross."""
    try:
        got = fn(*args)
    except Exception as err:  # a learner's unfinished code may raise anything
        name = getattr(fn, "__name__", "")
        name = name if name.isidentifier() else "your function"  # a lambda is "<lambda>"
        raise AnswerRaised(f"{name} raised {type(err).__name__}: {err}", hint) from err
    _returned.append(got)
    return got


def describe(value: Any) -> str:
    """A short description of a value for a verdict: its type and, for arrays, dtype and shape."""
    try:
        if value is None:
            return "None (no `return`?)"
        if isinstance(value, (torch.Tensor, np.ndarray)):
            return f"a {type(value).__name__} of dtype {value.dtype} and shape {tuple(value.shape)}"
        if isinstance(value, (list, tuple, dict, set)):
            n = len(value)
            return f"a {type(value).__name__} of {n} item{'s' if n != 1 else ''}"
        text = repr(value)
        return f"a {type(value).__name__} ({text if len(text) <= 40 else text[:39] + '…'})"
    except Exception:  # a learner's object with a broken __repr__ or __len__
        return f"a {type(value).__name__}"


def shape_of(value: Any) -> str:
    """What a learner returned, for verdicts about shapes: a tensor's shape, else its type."""
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else describe(value)


def as_number(value: Any) -> float | None:
    """A real number as a float (a Python or NumPy number, or a one-element tensor or array),
    else None: a string, a bool, a list or None is not an answer to "how much"."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        flat = value.reshape(-1)
        if len(flat) != 1:
            return None
        value = flat[0].item()  # a Python number (or a bool, rejected below)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    return None


def as_count(value: Any) -> int | None:
    """A whole number as an int (see :func:`as_number`), else None."""
    number = as_number(value)
    return int(number) if number is not None and number.is_integer() else None


def as_truth(value: Any) -> bool | None:
    """True or False (a Python or NumPy bool, or a one-element bool tensor), else None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype == torch.bool:
        return bool(value.item())
    return bool(value) if isinstance(value, (bool, np.bool_)) else None


def device_of(module: Any) -> torch.device:
    """Where a learner's model or head lives (the checks build their inputs there)."""
    try:
        return next(module.parameters()).device
    except Exception:  # no parameters, or not a module
        return torch.device("cpu")


def report(label: str, verdict: Verdict) -> None:
    """Print the verdict, ``✅ label: what`` or ``❌ label: what — hint: ...``, and record it.

    A long verdict goes on over indented lines, so the first line alone names the label."""
    _results[label] = verdict.ok
    _verdicts[label] = verdict
    line = f"{'✅' if verdict.ok else '❌'} {label}: {verdict.what}"
    if verdict.hint and not verdict.ok:
        line += f" — hint: {verdict.hint}"
    wrapped = textwrap.fill(
        line,
        width=VERDICT_WIDTH,
        subsequent_indent="    ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    print(wrapped)


def exercise(label: str, expects: str) -> Callable[[Callable[..., Verdict]], Callable[..., None]]:
    """Make a check out of a function that returns a Verdict: it prints the verdict with the
    exercise's label, records it for :func:`results`, returns None and never raises.
    ``expects`` says what a right answer returns, for the cross printed when it returns
    something else."""

    def decorate(check: Callable[..., Verdict]) -> Callable[..., None]:
        @functools.wraps(check)
        def guarded(*answers: Any) -> None:
            _returned.clear()
            try:
                verdict = check(*answers)
            except AnswerRaised as err:
                verdict = failed(str(err), err.hint)
            except Exception:  # the answer has a type or shape the comparisons cannot handle
                got = describe(_returned[-1]) if _returned else "something the check cannot use"
                verdict = failed(f"your answer returned {got}: expected {expects}")
            finally:
                _returned.clear()
            report(label, verdict)

        guarded.label = label  # type: ignore[attr-defined]
        guarded.expects = expects  # type: ignore[attr-defined]
        _checks[label] = guarded
        return guarded

    return decorate


def results() -> dict[str, bool]:
    """The verdict of every check run in this process, by exercise label (the last run wins)."""
    return dict(_results)


def verdict_records() -> dict[str, dict]:
    """Every verdict of this process by label, as JSON-ready records (ok, what, hint): what a
    grader reads from the kernel that ran a submission, so printed text counts for nothing."""
    return {label: v._asdict() for label, v in _verdicts.items()}


def clear_results() -> None:
    _results.clear()
    _verdicts.clear()


def verdicts_in(text: str) -> dict[str, bool]:
    """The verdicts printed in ``text`` (a notebook's outputs), by label (the last one wins): for
    a grader that reads an executed notebook instead of asking its kernel."""
    return {label: mark == "✅" for mark, label in VERDICT_LINE.findall(text)}
