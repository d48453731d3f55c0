"""Configs that print themselves, one field per line, so a chapter can show the numbers it uses.

Every preset (``helpers.train.TrainConfig``, ``helpers.finetune.FinetunePreset``,
``helpers.alignment.AlignmentPreset``) is a frozen dataclass with this mixin. A chapter prints the
whole config, or only the fields it is about to explain, so the reader is not buried in knobs that
come chapters later::

    print(cfg.describe())                                    # every field
    print(cfg.describe("batch_size", "learning_rate"))       # just these
    print(cfg.describe("model.n_layer", "model.n_embd"))     # fields of a nested config
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass


class Describable:
    def describe(self, *names: str) -> str:
        """``name = value`` lines for ``names`` (all fields when none are given). A nested config
        (a training config's ``model``) is shown field by field as ``model.n_layer = ...``."""
        rows = dict(_rows(self))
        if not names:
            chosen = rows
        else:
            unknown = [n for n in names if n not in rows]
            if unknown:
                raise ValueError(
                    f"{type(self).__name__} has no field "
                    f"{', '.join(map(repr, unknown))}; it has {', '.join(rows)}"
                )
            chosen = {n: rows[n] for n in names}
        width = max(map(len, chosen))
        return "\n".join(f"{k:<{width}} = {v!r}" for k, v in chosen.items())


# How the course shrinks itself for a quick run is not one of the lesson's numbers.
NOT_SHOWN = {"smoke"}


def _rows(obj, prefix: str = ""):
    for f in fields(obj):
        if f.name in NOT_SHOWN:
            continue
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from _rows(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", value
