"""Is my setup right? One call prints what this machine is and what a chapter will do on it.

``environment_report(chapter=7)`` prints the device (for a GPU: its name, compute capability,
memory and whether it multiplies bf16 in hardware), whether torch.compile can use Triton, the
CPU's vector instructions and thread count, the library versions, and for the chapter: the
precision and compile choice (with the reason), the preset, and the expected runtime of a full
run on this kind of device (from the bands of the course's own runs, else an estimate).
"""

from __future__ import annotations

import platform
import sys

import torch

from helpers.precision import choose_precision, detect
from helpers.settings import hardware, pick_device, smoke_mode
from helpers.speedups import cpu_features

# The training preset each chapter uses (chapters 08, 09 and 11 configure their own runs).
CHAPTER_PRESETS = {7: "gpt", 10: "gpt"}


def environment_report(chapter: int | None = None) -> None:
    """Print the device, its hardware, the library versions and, for ``chapter``, the
    precision, compile and preset it will use and the expected runtime of a full run."""
    device = pick_device()
    print(f"device: {device} ({hardware()})")
    if device == "cuda":
        gpu = detect(device)
        major, minor = gpu.capability
        print(
            f"GPU: {gpu.name}, capability {major}.{minor}, {gpu.memory_gb:.0f} GB, native bf16 "
            f"{'yes' if torch.cuda.is_bf16_supported(including_emulation=False) else 'no'}"
        )
    triton = "found" if detect(device).triton else "not installed"
    print(f"torch.compile's GPU backend (Triton): {triton}")
    print(cpu_features().describe().split(" | ")[0])
    print(f"threads: {torch.get_num_threads()}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}"
        + _version_of("transformers")
    )
    if chapter is None:
        return
    print(f"chapter {chapter:02d} will use: {choose_precision(device).describe()}")
    if chapter in CHAPTER_PRESETS:
        print(f"training preset: {CHAPTER_PRESETS[chapter]!r} for {device}")
    print(f"a full run of chapter {chapter:02d} on {device}: {_expected_runtime(chapter, device)}")
    if smoke_mode():
        print("a shortened run: every size and step count is cut down")


def _version_of(package: str) -> str:
    module = sys.modules.get(package)
    if module is None:
        try:
            from importlib.metadata import version

            return f", {package} {version(package)}"
        except Exception:
            return ""
    return f", {package} {module.__version__}"


def _expected_runtime(chapter: int, device: str) -> str:
    from helpers import figures
    from helpers.presets import GPU_ESTIMATES, gpu_class

    entry = (figures.bands(device) or {}).get("chapters", {}).get(f"{chapter:02d}", {})
    seconds = entry.get("runtime_s", {}).get("reference")
    if seconds is not None:
        minutes, rest = divmod(int(seconds), 60)
        return f"about {minutes} min {rest} s" if minutes else f"about {rest} s"
    if device == "cuda" and CHAPTER_PRESETS.get(chapter) == "gpt":
        kind = gpu_class(detect(device))
        return f"not measured yet; its training on a {kind} GPU: {GPU_ESTIMATES[kind]}"
    return "not measured yet on this kind of device"
