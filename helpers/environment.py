"""Is my setup right? One call prints what this machine is and what a chapter will do on it."""

from __future__ import annotations

import platform
import sys

import torch

from helpers.settings import hardware, pick_device, smoke_mode


def environment_report(chapter: int | None = None) -> None:
    """Print the device, its hardware, the library versions and, for ``chapter``, the expected
    runtime of a full run on this kind of device."""
    device = pick_device()
    print(f"device: {device} ({hardware()})")
    print(f"threads: {torch.get_num_threads()}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}"
        + _version_of("transformers")
    )
    if chapter is not None:
        expected = _expected_runtime(chapter, device)
        print(f"a full run of chapter {chapter:02d} on {device}: {expected}")
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

    entry = (figures.bands(device) or {}).get("chapters", {}).get(f"{chapter:02d}", {})
    seconds = entry.get("runtime_s", {}).get("reference")
    if seconds is None:
        return "not measured yet on this kind of device"
    minutes, rest = divmod(int(seconds), 60)
    return f"about {minutes} min {rest} s" if minutes else f"about {rest} s"
