"""Which number format and which compiler a device trains with, and why.

``choose_precision(device)`` answers from what the device has, not from what it claims:

| device                     | precision     | loss scaling | torch.compile                 |
|----------------------------|---------------|--------------|-------------------------------|
| CUDA, capability >= 8.0    | bf16 autocast | none         | where Triton is installed     |
| CUDA, capability 7.x       | fp16 autocast | GradScaler   | where Triton is installed     |
| older CUDA                 | fp32          | none         | off (Triton needs 7.0+)       |
| Apple MPS                  | fp32          | none         | off                           |
| CPU                        | fp32          | none         | off                           |

A T4 or V100 (capability 7.x) has no bf16 hardware: ``torch.cuda.is_bf16_supported()`` still
says True (emulation), but its matmuls are slow and Inductor skips bf16 graphs there, while fp16
tensor cores run at about 65 TFLOPS on a T4 against about 8 in fp32. fp16's narrow range needs a
GradScaler (chapter 10); bf16 has fp32's range and needs none. Windows wheels ship without Triton,
so there compile is off whatever the GPU.

On a CPU, bf16 is fast only where it multiplies in hardware (AVX-512-BF16 or AMX). Even there the
presets keep fp32: on the 2-core AVX-512-BF16 machine chapter 10 measured bf16 autocast at 1.02x
the fused fp32 row (``bench/results/scaling_cpu_avx512bf16_rerun.txt``), within run-to-run noise,
and bf16 would change every figure the CPU chapters store. ``choose_precision("cpu",
cpu_bf16=True)`` gives the bf16 choice where the hardware has it. torch.compile is off on CPUs for
the same reason: 1.08x after a 26 s first step, measured in the same table.

Chapter 08's ``TrainingArguments`` and chapter 09's models take the same choice
(``Precision.training_arguments``, ``Precision.dtype``).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import torch

from helpers.speedups import cpu_features


@dataclass(frozen=True)
class Device:
    """What decides the precision: the kind of device and, for CUDA, its compute capability;
    whether Triton (torch.compile's GPU backend) is installed; the operating system."""

    kind: str  # "cuda", "mps" or "cpu"
    capability: tuple[int, int] | None = None  # CUDA only, e.g. (7, 5) for a T4
    name: str = ""
    memory_gb: float | None = None
    triton: bool = False
    system: str = "Linux"  # platform.system(): "Linux", "Darwin", "Windows"
    cpu_bf16: bool | None = None  # AVX-512-BF16 or AMX (speedups.cpu_features)


@dataclass(frozen=True)
class Precision:
    """The choice: an autocast dtype (None: plain fp32), a GradScaler or not, compile or not,
    and the reason in words."""

    autocast_dtype: str | None
    grad_scaler: bool
    compile: bool
    reason: str

    @property
    def name(self) -> str:
        return precision_name(self.autocast_dtype)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype to run a model in for inference (chapter 09): the autocast dtype or fp32."""
        return getattr(torch, self.autocast_dtype) if self.autocast_dtype else torch.float32

    @property
    def training_arguments(self) -> dict[str, bool]:
        """The same choice for Hugging Face's ``TrainingArguments(**...)`` (chapter 08): its
        ``fp16=True`` brings the GradScaler with it."""
        return {
            "bf16": self.autocast_dtype == "bfloat16",
            "fp16": self.autocast_dtype == "float16",
        }

    def describe(self) -> str:
        return f"{self.name}, compile {'on' if self.compile else 'off'}: {self.reason}"


def precision_name(autocast_dtype: str | None) -> str:
    """The precision path in words: bf16 autocast, fp16 autocast + GradScaler (fp16 always
    brings the scaler) or fp32."""
    return {
        "bfloat16": "bf16 autocast",
        "float16": "fp16 autocast + GradScaler",
        None: "fp32",
    }[autocast_dtype or None]


def detect(device: str) -> Device:
    """The facts about ``device`` ("cuda", "cuda:1", "mps", "cpu") that the choice needs."""
    kind = device.split(":")[0]
    system, triton = platform.system(), has_triton()
    if kind == "cuda" and not torch.cuda.is_available():  # a GPU preset printed elsewhere
        return Device("cuda", (8, 0), "an A100 assumed (no CUDA GPU visible)", 80.0, True, system)
    if kind == "cuda":
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        return Device(
            "cuda",
            capability=torch.cuda.get_device_capability(index),
            name=torch.cuda.get_device_name(index),
            memory_gb=props.total_memory / 1e9,
            triton=triton,
            system=system,
        )
    return Device(kind, triton=triton, system=system, cpu_bf16=cpu_features().cpu_bf16)


def has_triton() -> bool:
    """Whether Triton, torch.compile's backend for GPUs, can be imported here."""
    try:
        from torch.utils._triton import has_triton as torch_has_triton

        return bool(torch_has_triton())
    except ImportError:
        return False


def choose_precision(device: str | Device, *, cpu_bf16: bool = False) -> Precision:
    """The precision and compile choice for ``device`` (a name, or a :class:`Device` for tests).
    ``cpu_bf16=True`` asks for bf16 on a CPU that multiplies bf16 in hardware."""
    dev = detect(device) if isinstance(device, str) else device
    if dev.kind == "cuda":
        return _cuda(dev)
    if dev.kind == "mps":
        return Precision(
            None, False, False, "Apple MPS, where bf16/fp16 autocast and compile are unreliable"
        )
    if cpu_bf16 and dev.cpu_bf16:
        return Precision(
            "bfloat16", False, False, "this CPU multiplies bf16 in hardware (AVX-512-BF16/AMX)"
        )
    hardware = {True: "has", False: "has no", None: "may lack"}[dev.cpu_bf16]
    return Precision(
        None,
        False,
        False,
        f"a CPU (this one {hardware} bf16 hardware): fp32, the course's choice on every CPU "
        "(bf16 changes the numbers; cpu_bf16=True opts in)",
    )


def _cuda(dev: Device) -> Precision:
    major, minor = dev.capability
    gpu = f"{dev.name or 'CUDA GPU'} (capability {major}.{minor})"
    if major >= 8:
        dtype, scaler, why = "bfloat16", False, "bf16 tensor cores, fp32's range: no scaler"
    elif major == 7:
        dtype, scaler, why = "float16", True, "no bf16 hardware; fp16 tensor cores + GradScaler"
    else:
        dtype, scaler, why = None, False, "no tensor cores: fp32"
    if dev.system == "Windows":
        compile_on, how = False, "compile off (no Triton on Windows)"
    elif major < 7:
        compile_on, how = False, "compile off (Triton needs capability 7.0+)"
    elif not dev.triton:
        compile_on, how = False, "compile off (Triton is not installed)"
    else:
        compile_on, how = True, "compile on (Triton found)"
    return Precision(dtype, scaler, compile_on, f"{gpu}: {why}; {how}")
