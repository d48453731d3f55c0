"""Where the course runs: device, seed, smoke mode, folders, torchrun ranks, the run report.

This is the only module that reads environment variables, so a learner can see every knob here:

- ``GPT_COURSE_SMOKE=1`` shrinks every notebook's work so the whole test suite runs in minutes.
- ``GPT_COURSE_DATA`` points at the data directory (default: ``data/`` at the repository root).
- ``GPT_COURSE_RUNS`` points at the folder for checkpoints and the loss-per-idea table
  (default: ``runs/`` at the repository root).
- ``GPT_COURSE_DEVICE`` forces a device (``cpu``, ``cuda`` or ``mps``) instead of the best found.
"""

from __future__ import annotations

import os
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVICES = ("cuda", "mps", "cpu")
_IMPORTED_AT = time.perf_counter()  # a notebook imports this module in its first cells


def smoke_mode() -> bool:
    """True when GPT_COURSE_SMOKE=1: every notebook then does a tiny amount of real work."""
    return os.environ.get("GPT_COURSE_SMOKE", "0").strip() not in ("", "0", "false", "False")


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with ``overrides``, for a child process: the kernel in which
    helpers.grade runs a learner's notebook in smoke mode, or the ranks that
    ``helpers.distributed.launch`` starts, each told how many threads it may use."""
    return {**os.environ, **overrides}


def data_dir() -> Path:
    """The folder that holds the datasets (tinyshakespeare/, imdb/, ...)."""
    return Path(os.environ.get("GPT_COURSE_DATA") or REPO_ROOT / "data").expanduser().resolve()


def runs_dir() -> Path:
    """The folder for checkpoints and tables a run writes; smoke runs get their own subfolder
    so a quick test never overwrites a learner's real results."""
    root = Path(os.environ.get("GPT_COURSE_RUNS") or REPO_ROOT / "runs").expanduser().resolve()
    return root / "smoke" if smoke_mode() else root


@dataclass(frozen=True)
class TorchrunEnv:
    rank: int
    local_rank: int
    world_size: int


def launched_by_torchrun() -> TorchrunEnv | None:
    """The ranks torchrun gave this process (it sets RANK, LOCAL_RANK and WORLD_SIZE), or None
    when the program was started on its own."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    return TorchrunEnv(
        int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"])
    )


def pick_device(prefer: str | None = None) -> str:
    """The device to train on: ``prefer`` or GPT_COURSE_DEVICE if given, else cuda, then mps,
    then cpu."""
    wanted = prefer or os.environ.get("GPT_COURSE_DEVICE")
    if wanted:
        if wanted not in DEVICES:
            raise ValueError(f"unknown device {wanted!r}: choose one of {', '.join(DEVICES)}")
        if wanted == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for, but torch sees no CUDA GPU; use 'cpu'")
        if wanted == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(
                "device 'mps' was asked for, but this Mac has no MPS backend; use 'cpu'"
            )
        return wanted
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def seed_everything(seed: int = 1337) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated; returns a CPU generator
    seeded the same way, for code that wants its own stream of random numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def hardware() -> str:
    """A one-line description of the machine: processor or GPU, core count, torch version."""
    if torch.cuda.is_available():
        chip = torch.cuda.get_device_name(0)
    else:
        chip = _cpu_model() or platform.processor() or platform.machine()
    return f"{chip}, {os.cpu_count()} CPU cores, torch {torch.__version__}"


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def run_seconds() -> float:
    """Seconds since helpers were first imported: a notebook's run time, kernel start aside."""
    return time.perf_counter() - _IMPORTED_AT


def run_report() -> str:
    """How this notebook run went: mode, device, hardware and wall time since helpers were imported.
    Each notebook prints this last, so its stored outputs say where and how long they took."""
    minutes, seconds = divmod(run_seconds(), 60)
    mode = "smoke" if smoke_mode() else "full"
    return (
        f"{mode} mode on {pick_device()} ({hardware()}): {int(minutes)} min {seconds:.0f} s\n"
        "(from the first helpers import to here)"
    )
