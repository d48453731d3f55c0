"""Chapter 10's reading of its own speed-up table: what the hardware offers, and what the measured
rows say about each switch.

Whether a speed-up pays depends on the machine. bf16 autocast is a large win where the hardware
multiplies bf16 matrices (GPU tensor cores, CPUs with AVX-512-BF16 or AMX) and a large loss where
the CPU has to emulate them; ``torch.compile`` costs seconds of compiling that only a long enough
run earns back. One machine's table is therefore no rule for the next, and the chapter states no
verdict of its own: ``bench/scaling.py --json PATH`` measures this machine, ``cpu_features()``
says which instructions it has, ``table()`` prints the measured rows narrow enough for a book
page, and ``conclusions()`` turns them into sentences::

    measured = json.loads(Path(PATH).read_text())
    print(table(measured))
    print(cpu_features().describe())
    for sentence in conclusions(measured["rows"], run_steps=1500):
        print("-", sentence)

A row is a dict as ``bench/scaling.py`` writes it: ``label``, ``switch`` (the setting the row
adds: ``None`` for the first row, ``"compile"``, ``"ddp"``, ...), ``processes``,
``tokens_per_second``, ``mfu`` (model FLOPs utilisation; None or absent where unknown),
``ratio`` (to the first row), ``seconds_per_step`` (steady, first step excluded),
``first_step_seconds`` (compiling included), ``peak_bytes`` and ``kept``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class HardwareFeatures:
    """The instructions that decide whether bf16 is fast here. ``None`` means "could not tell"."""

    avx2: bool | None
    avx512f: bool | None
    avx512_bf16: bool | None  # bf16 dot products in AVX-512 registers
    amx_bf16: bool | None  # AMX tiles that multiply bf16 matrices (flags amx_tile and amx_bf16)
    source: str  # where the CPU flags came from
    gpu: str | None = None  # the CUDA device's name, None without one
    gpu_bf16: bool | None = None  # bf16 in hardware on that GPU (compute capability 8.0+, ROCm)

    @property
    def cpu_bf16(self) -> bool | None:
        """Whether the CPU multiplies bf16 matrices in hardware rather than emulating them."""
        if self.avx512_bf16 or self.amx_bf16:
            return True
        if self.avx512_bf16 is None or self.amx_bf16 is None:
            return None
        return False

    def describe(self) -> str:
        """One line: the CPU's vector instructions, whether it has bf16, and the GPU if any."""

        def word(flag):
            return "unknown" if flag is None else "yes" if flag else "no"

        bf16 = {True: "bf16 in hardware", False: "bf16 emulated", None: "bf16 support unknown"}
        cpu = (
            f"CPU: AVX2 {word(self.avx2)}, AVX-512F {word(self.avx512f)}, AVX-512-BF16 "
            f"{word(self.avx512_bf16)}, AMX-BF16 {word(self.amx_bf16)} -> {bf16[self.cpu_bf16]}"
            f" (from {self.source})"
        )
        gpu = f"GPU: {self.gpu}, {bf16[self.gpu_bf16]}" if self.gpu else "GPU: none"
        return f"{cpu} | {gpu}"


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> HardwareFeatures:
    """Read the CPU's flags from ``/proc/cpuinfo`` (Linux). Elsewhere fall back to the vector
    width PyTorch dispatches to (``torch.backends.cpu.get_cpu_capability()``), which tells AVX2
    and AVX-512 apart but not whether bf16 instructions exist. Also reports the CUDA GPU, whose
    bf16 counts only when native (``is_bf16_supported(including_emulation=False)``)."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    gpu_bf16 = torch.cuda.is_bf16_supported(including_emulation=False) if gpu else None
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    flags = next(
        (
            set(line.split(":", 1)[1].split())
            for line in text.splitlines()
            if line.startswith("flags")
        ),
        None,
    )
    if flags is not None:
        return HardwareFeatures(
            avx2="avx2" in flags,
            avx512f="avx512f" in flags,
            avx512_bf16="avx512_bf16" in flags,
            amx_bf16={"amx_tile", "amx_bf16"} <= flags,
            source="/proc/cpuinfo",
            gpu=gpu,
            gpu_bf16=gpu_bf16,
        )
    capability = torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2", "DEFAULT", ...
    avx512 = capability.startswith("AVX512")
    known = capability.startswith("AVX")  # on other architectures the x86 flags do not apply
    return HardwareFeatures(
        avx2=(avx512 or capability == "AVX2") if known else None,
        avx512f=avx512 if known else None,
        avx512_bf16=None,
        amx_bf16=None,
        source=f"torch's CPU capability {capability}",
        gpu=gpu,
        gpu_bf16=gpu_bf16,
    )


def table_header(device: str) -> str:
    """The column titles of the speed-up table (peak memory is the allocator's on a GPU, the
    process's resident set on a CPU)."""
    memory = "peak alloc" if device == "cuda" else "peak RSS"
    return f"{'':<36}{'tokens/s':>9}{'MFU':>5}{'ratio':>6}{memory:>11}{'first step':>11}"


def table_row(row: dict) -> str:
    """One measured row of ``bench/scaling.py``, at most 88 characters: tokens/s after the first
    step, the model FLOPs utilisation (``helpers.mfu``; "?" where the peak is unknown or the row
    was stored before MFU was measured), the ratio to the first row, peak memory, the first
    step's time (compiling included) and whether the switch was kept."""
    verdict = "" if row["switch"] in (None, "ddp") else "kept" if row["kept"] else "left off"
    mfu = "?" if row.get("mfu") is None else f"{row['mfu']:.0%}"
    return (
        f"{row['label']:<36}{row['tokens_per_second']:>9,.0f}{mfu:>5}{row['ratio']:>5.2f}x"
        f"{row['peak_bytes'] / 2**20:>7,.0f} MiB{row['first_step_seconds']:>10.1f}s"
        f"  {verdict}".rstrip()
    )


def table(measured: dict) -> str:
    """``bench/scaling.py``'s JSON as the table the script prints, under the machine and the
    preset it measured."""
    shape = measured["preset"]
    lines = [
        measured["hardware"],
        f"preset {shape['n_layer']}x{shape['n_head']}x{shape['n_embd']}, context "
        f"{shape['block_size']}, batch {shape['batch_size']}; {measured['steps']} steps per row",
        "",
        table_header(measured["device"]),
        *(table_row(row) for row in measured["rows"]),
    ]
    return "\n".join(lines)


def conclusions(rows: list[dict], run_steps: int, noise: float = 0.10) -> list[str]:
    """Sentences that follow from the measured rows and nothing else: for each switch, whether it
    was kept and its ratio to the configuration it was tried on (the rows kept before it) as
    well as to the first row; for ``torch.compile``, after how many steps its extra first-step
    time is paid back, set against a run of ``run_steps`` steps; for DDP, its ratio to the best
    single process. A margin smaller than ``noise`` is flagged as no clear gain or loss: two
    runs of this table on 2-core EPYCs of the same kind (AVX-512-BF16) measured DDP at 0.94x
    and 1.05x the best single process, so a 40-step row is not more precise than that."""
    first, best, kept = rows[0], rows[0], []
    said = [
        f'The first row, "{first["label"]}", trained at {first["tokens_per_second"]:,.0f} '
        f"tokens/s ({first['seconds_per_step'] * 1e3:.1f} ms per step)."
    ]
    for row in rows[1:]:
        base = _configuration(kept, first)
        ratio = row["tokens_per_second"] / best["tokens_per_second"]
        if row.get("processes", 1) > 1:
            said.append(
                f"{row['label']}: {_times(ratio)} the tokens/s of the best single process, "
                f'"{base}"{_margin(ratio, noise)}.'
            )
            continue
        verdict = "kept" if row["kept"] else "left off"
        versus_first = f" ({_times(row['ratio'])} the first row)" if kept else ""
        said.append(
            f'{_name(row)}: {verdict}, {_times(ratio)} the tokens/s of "{base}", the '
            f"configuration it was tried on{versus_first}{_margin(ratio, noise)}."
        )
        if row.get("switch") == "compile":
            said.append(_payback(row, best, run_steps))
        if row["kept"]:
            best = row
            kept.append(row)
    said.append(
        f'Fastest single process: "{_configuration(kept, first)}", '
        f"{best['tokens_per_second']:,.0f} tokens/s, {_times(best['ratio'])} the first "
        "row."
    )
    return said


def _payback(row: dict, base: dict, run_steps: int) -> str:
    """Compiling costs once (a slower first step) and saves on every later step."""
    extra = row["first_step_seconds"] - base["first_step_seconds"]
    saved = base["seconds_per_step"] - row["seconds_per_step"]
    if saved <= 0:
        return (
            f"torch.compile's first step took {extra:.1f} s longer than without it, and the "
            "steps after it were not faster in this measurement: here it never pays back."
        )
    if extra <= 0:
        return "torch.compile's first step was no slower, so it paid from the first step on."
    steps = extra / saved
    lead = (
        f"torch.compile's first step took {extra:.1f} s longer (compiling); at "
        f"{saved * 1e3:.1f} ms saved per step that is paid back after about {steps:,.0f} steps"
    )
    net = saved * (run_steps - 1) - extra  # seconds a run of run_steps steps saves with it
    if net > 0:
        return f"{lead}, within a {run_steps:,}-step run, which ends {net:,.0f} s sooner with it."
    return f"{lead}: a {run_steps:,}-step run would end {-net:,.0f} s later with it."


def _name(row: dict) -> str:
    return row["label"].removeprefix("+ ")


def _configuration(kept: list[dict], first: dict) -> str:
    return " + ".join(_name(r) for r in kept) if kept else first["label"]


def _times(ratio: float) -> str:
    return f"{ratio:.2f}×"


def _margin(ratio: float, noise: float) -> str:
    if abs(ratio - 1) < noise:
        return f"; under {noise:.0%} apart, within run-to-run noise: no clear gain or loss"
    if ratio < 1:
        return f"; {1 / ratio:.1f}× slower" if ratio < 0.5 else f"; {1 - ratio:.0%} slower"
    return f"; {ratio - 1:.0%} faster"


@dataclass(frozen=True)
class MeasurementPreset:
    """How much chapter 10 measures: training steps timed per speed-up switch, the context
    lengths of the fused-attention comparison, the lengths of the two DDP runs, the widths and
    the token budget of the model-size sweep, and the batches each of its evaluations averages.
    Like the training presets it shrinks itself in smoke mode, so every cell still runs."""

    timing_steps: int = 40
    contexts: tuple[int, ...] = (64, 256, 1024)
    ddp_steps: tuple[int, ...] = (5, 50)
    widths: tuple[int, ...] = (16, 32, 48, 64, 96, 128)
    token_budget: int = 768_000  # a quarter of chapter 07's CPU run: 375 of its steps
    eval_iters: int = 20


def measurement_preset() -> MeasurementPreset:
    """Chapter 10's measurement sizes (the smoke-mode ones when GPT_COURSE_SMOKE=1)."""
    from helpers.settings import smoke_mode

    if smoke_mode():
        return MeasurementPreset(
            timing_steps=3,
            contexts=(64, 128),
            ddp_steps=(2, 4),
            widths=(16, 32),
            token_budget=30 * 8 * 32,  # the smoke preset's 30 steps of 8 x 32 tokens
            eval_iters=2,
        )
    return MeasurementPreset()
