"""Checkpoints: the best model for using, the latest state for resuming.

A training run's folder keeps two different things, because they answer different questions:

    out/model.safetensors     the best weights so far (lowest validation loss): what chapter 07
    out/config.json           loads and samples from, and what a learner should keep
    out/last/model.safetensors    the weights at the latest save (every evaluation, and the step a
    out/last/config.json          run was stopped at), even when they are not the best
    out/last/training_state.pt    what else the run needs to continue exactly: optimizer and
                                  GradScaler state, the batch generator's state, every rank's
                                  torch RNG state (dropout), the step and the planned step count

Resuming from the best weights would rewind to an older step with a newer optimizer state, so
``resume`` always reads ``last/``. Each ``model.safetensors`` carries the model config, tokenizer,
step and history in its metadata, so the one file is always self-consistent; ``config.json``
repeats them for people to read. Every file is written atomically (a crash leaves the old file).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from helpers.atomic_io import atomic_path, atomic_write_text
from helpers.data import CharTokenizer
from helpers.model import GPT, GPTConfig

if TYPE_CHECKING:
    from helpers.history import History
    from helpers.presets import TrainConfig

LAST = "last"  # the sub-folder with the latest training state
STATE_FILE = "training_state.pt"


def save_checkpoint(
    directory: str | Path,
    model: GPT,
    *,
    tokenizer: CharTokenizer | None = None,
    step: int = 0,
    history: History | None = None,
    train_config: TrainConfig | None = None,
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` and return it."""
    directory = Path(directory)
    meta = {
        "model_config": model.config.to_dict(),
        "tokenizer": tokenizer.to_json() if tokenizer is not None else None,
        "step": step,
        "best_val_loss": history.best_val_loss if history else None,
        "train_config": asdict(train_config) if train_config else None,
        "history": history.to_dict() if history else None,
    }
    weights = {
        k: v.detach().contiguous().cpu()
        for k, v in model.state_dict().items()
        if k != "lm_head.weight"
    }  # tied to wte: safetensors stores shared memory once
    with atomic_path(directory / "model.safetensors") as tmp:
        save_file(weights, tmp, metadata={"course_checkpoint": json.dumps(meta)})
    atomic_write_text(directory / "config.json", json.dumps(meta, indent=2, default=str))
    return directory


def read_checkpoint_meta(directory: str | Path) -> dict:
    path = Path(directory) / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint in {directory}: {path.name} is missing. Train one "
            f"with `python -m helpers.train --out {directory}`."
        )
    try:
        with safe_open(path, framework="pt") as f:
            meta = (f.metadata() or {}).get("course_checkpoint")
    except SafetensorError as err:
        raise damaged(path, err) from err
    if meta is None:
        raise ValueError(f"{path} was not written by helpers.checkpoint.save_checkpoint")
    return json.loads(meta)


def load_checkpoint(
    directory: str | Path, model: GPT | None = None, device: str = "cpu"
) -> tuple[GPT, CharTokenizer | None]:
    """``(model, tokenizer)`` from a checkpoint folder. Given a ``model``, the weights load into
    it, and a config that differs from the model's is an error that names the fields."""
    meta = read_checkpoint_meta(directory)
    config = GPTConfig(**meta["model_config"])
    if model is None:
        model = GPT(config)
    elif model.config != config:
        diff = {
            k: (v, getattr(model.config, k))
            for k, v in config.to_dict().items()
            if getattr(model.config, k) != v
        }
        raise ValueError(
            f"the checkpoint in {directory} does not fit this model: "
            + ", ".join(f"{k} is {a} there but {b} here" for k, (a, b) in diff.items())
        )
    path = Path(directory) / "model.safetensors"
    try:
        state = load_file(path)
    except SafetensorError as err:
        raise damaged(path, err) from err
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state)
    tokenizer = CharTokenizer.from_json(meta["tokenizer"]) if meta["tokenizer"] else None
    return model.to(device), tokenizer


def damaged(path: Path, err: Exception) -> ValueError:
    """The error for a checkpoint file that cannot be read, naming it and what is still good."""
    run = path.parent.parent if path.parent.name == LAST else path.parent
    good = [
        str(folder)
        for folder in (run, run / LAST)
        if folder != path.parent and (folder / "model.safetensors").exists()
    ]
    keep = (
        f"the other weights of this run, {' and '.join(good)}, are separate files: load them "
        f"with load_checkpoint(...)"
        if good
        else "no other weights of this run were found"
    )
    return ValueError(
        f"{path} is damaged and cannot be read ({err}). Saves are atomic (a crash while "
        f"saving keeps the previous file whole), so the file was most likely cut short while "
        f"copied or on a full disk. Nothing was changed; {keep}, or train again with "
        f"`python -m helpers.train --out {run}` (add --resume to continue from last/ when "
        f"it is intact), which replaces the damaged file."
    )


def save_training_state(directory: str | Path, model: GPT, state: dict, **meta) -> Path:
    """Write ``last/``: the weights (with ``meta`` as for :func:`save_checkpoint`) and
    ``state`` (a dict with at least ``step``) beside them. The state goes first, so the weights
    never point at a missing one; a crash between the two leaves steps that differ, which
    :func:`load_training_state` reports instead of silently mixing them."""
    last = Path(directory) / LAST
    with atomic_path(last / STATE_FILE) as tmp:
        torch.save(state, tmp)
    return save_checkpoint(last, model, step=state["step"], **meta)


def has_training_state(directory: str | Path | None) -> bool:
    return directory is not None and (Path(directory) / LAST / "model.safetensors").exists()


def load_training_state(directory: str | Path, model: GPT) -> tuple[dict, dict]:
    """Load ``last/``'s weights into ``model``; return (training state, the weights' metadata)."""
    last = Path(directory) / LAST
    meta = read_checkpoint_meta(last)
    state_path = last / STATE_FILE
    if not state_path.exists():
        raise FileNotFoundError(
            f"cannot resume: {state_path} is missing (the weights alone do not "
            f"say where the optimizer and the random streams were)"
        )
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise damaged(state_path, err) from err
    if state["step"] != meta["step"]:
        raise ValueError(
            f"cannot resume from {last}: {STATE_FILE} is from step {state['step']} "
            f"but model.safetensors is from step {meta['step']}; they were not saved "
            f"together (a crash between the two writes?)"
        )
    load_checkpoint(last, model, device=next(model.parameters()).device)
    return state, meta
