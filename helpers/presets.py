"""Training presets: the hyperparameters of each chapter's run, chosen by device and mode.

``cfg = preset("gpt")`` is chapter 07's run on the best device found; ``print(cfg.describe())``
shows every number in it. A CPU preset trains in a few minutes on 2 cores; a GPU preset is larger
where a GPU pays off. In smoke mode (``GPT_COURSE_SMOKE=1``) every preset shrinks to a handful of
real steps, so a notebook's cells all run in seconds; notebooks never branch on the mode
themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from helpers.describe import Describable
from helpers.model import GPTConfig
from helpers.precision import Device, choose_precision
from helpers.settings import DEVICES, pick_device, smoke_mode

__all__ = ["TrainConfig", "preset", "reference_curve", "gpu_class", "GPU_ESTIMATES"]


@dataclass(frozen=True)
class TrainConfig(Describable):
    """One training run: the model's shape (a ``GPTConfig``) and how to train it.

    ``model`` is None for a model that is not a GPT: the bigram of chapter 02 has no layers, heads
    or width, only a table, so it gets no GPTConfig rather than one with a value that means
    "not a GPT". It still needs to know how long its training sequences are: ``context_length``.
    A GPT's sequences are as long as its context (``model.block_size``), so it leaves that None.
    ``cfg.block_size`` is the length of the training sequences either way.
    """

    name: str
    device: str
    smoke: bool
    model: GPTConfig | None = None  # vocab_size 65: tiny Shakespeare's characters
    context_length: int | None = None  # only for a model without a GPTConfig
    # optimisation; batch_size is per process and per micro-batch
    batch_size: int = 32
    max_iters: int = 3000
    learning_rate: float = 1e-2
    min_lr: float = 1e-3
    warmup_iters: int = 0
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    grad_accum_steps: int = 1  # micro-batches per optimizer step (chapter 10)
    # evaluation and budget
    eval_interval: int = 300
    eval_iters: int = 200
    # evaluation batches have their own size, the same on any number of ranks and for any
    # training batch, so the same weights always get the same validation loss
    eval_batch_size: int = 32
    time_budget: float | None = None  # seconds of training steps; sets max_iters (see train)
    # speed switches (chapter 10; fused attention is the model's: model.fused_attention)
    autocast_dtype: str | None = None  # "bfloat16" / "float16" / None
    compile: bool = False
    fused_adamw: bool = False  # one kernel for the whole optimizer update

    def __post_init__(self):
        if (self.model is None) == (self.context_length is None):
            raise ValueError(
                "give a TrainConfig either model=GPTConfig(...) (a GPT trains on its "
                "whole context) or context_length=... (a model without a GPTConfig), "
                "not both and not neither"
            )
        counts = (
            "batch_size",
            "eval_batch_size",
            "eval_interval",
            "eval_iters",
            "grad_accum_steps",
        )
        wrong = [f"{k}={getattr(self, k)!r}" for k in counts if not _count(getattr(self, k), 1)]
        wrong += [f"max_iters={self.max_iters!r}"] if not _count(self.max_iters, 0) else []
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: batch sizes, intervals and counts must be whole numbers "
                f">= 1 (max_iters >= 0)"
            )
        if not (self.learning_rate >= 0 and self.min_lr >= 0):
            raise ValueError(
                f"learning rates must be >= 0, got learning_rate={self.learning_rate}, "
                f"min_lr={self.min_lr}"
            )
        if self.autocast_dtype not in (None, "bfloat16", "float16"):
            raise ValueError(
                f"autocast_dtype must be 'bfloat16', 'float16' or None (fp32), got "
                f"{self.autocast_dtype!r}"
            )
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(
                f"time_budget must be a positive number of seconds or None, got {self.time_budget}"
            )

    @property
    def block_size(self) -> int:
        """Tokens per training sequence."""
        return self.model.block_size if self.model is not None else self.context_length


def _count(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


# Full-mode presets on a CPU (2 cores is the reference machine). Each chapter's preset is small
# enough to train in a few minutes there; the GPU versions are larger where a GPU pays off.
_CPU = {
    "bigram": dict(
        context_length=8,
        batch_size=32,
        max_iters=3000,
        learning_rate=1e-2,
        min_lr=1e-2,
        weight_decay=0.0,
        eval_interval=300,
        eval_iters=200,
        eval_batch_size=32,
    ),
    # chapters 04-06: one idea at a time on the same small shape, so the rows of the
    # loss-per-idea table differ by the idea only; trained as chapter 02 trains (a constant
    # learning rate, no warmup, no clipping), since chapter 07 is where those are taught
    "attention": dict(
        model=dict(block_size=32, n_layer=4, n_head=4, n_embd=64),
        batch_size=32,
        max_iters=3000,
        learning_rate=1e-3,
        min_lr=1e-3,
        warmup_iters=0,
        grad_clip=0.0,
        weight_decay=0.0,
        eval_interval=500,
        eval_iters=100,
        eval_batch_size=32,
    ),
    # chapter 07: tuned to reach val loss <= 1.70 in under 2 minutes on 2 cores (see bench/).
    # The budget is a cap for slower machines: the reference machine fits all 1,500 steps in it
    # with room to spare, so timing noise there never changes the step count (or the losses).
    "gpt": dict(
        model=dict(block_size=64, n_layer=2, n_head=4, n_embd=128, dropout=0.0),
        batch_size=32,
        max_iters=1500,
        learning_rate=6e-3,
        min_lr=6e-4,
        warmup_iters=50,
        weight_decay=0.1,
        eval_interval=375,
        eval_iters=30,
        eval_batch_size=32,
        time_budget=120.0,
    ),
}

_GPU = {
    "bigram": _CPU["bigram"],
    "attention": dict(
        _CPU["attention"],
        model=dict(block_size=64, n_layer=4, n_head=4, n_embd=128),
        batch_size=64,
        eval_batch_size=64,
    ),
    # nanoGPT's Shakespeare-char shape (6 layers, 6 heads, 384 wide, context 256, dropout 0.2),
    # whose published run reached val loss 1.4697 in about 3 minutes on one A100. It fits a
    # 16 GB T4 with room to spare (10.7M parameters; activations of 64 x 256 tokens take a few
    # GB). The precision and compile switches come from the GPU itself (helpers.precision).
    "gpt": dict(
        model=dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
        batch_size=64,
        max_iters=5000,
        learning_rate=1e-3,
        min_lr=1e-4,
        warmup_iters=100,
        weight_decay=0.1,
        eval_interval=500,
        eval_iters=200,
        eval_batch_size=64,
        time_budget=None,
        fused_adamw=True,
    ),
}

# What a full run of the GPU "gpt" preset should take, until a measured band replaces it
# (helpers/reference/figures_cuda.json, written by `make gpu-check`).
GPU_ESTIMATES = {
    "A100/H100-class": "about 3 min (nanoGPT's published time for this shape on one A100)",
    "T4-class": "about 15 min (an estimate: the A100's 3 min times 4.8, the ratio of their "
    "bf16/fp16 tensor-core peaks, 312 and 65 TFLOPS)",
}

# Smoke mode: a handful of real steps, so every notebook still runs every cell.
_SMOKE = dict(
    max_iters=30, eval_interval=10, eval_iters=4, warmup_iters=2, time_budget=None, compile=False
)
# (the heads too: the GPU preset's 6 heads do not divide a width of 32)
_SMOKE_SHAPE = {
    "attention": dict(n_layer=2, n_head=4, n_embd=32, block_size=16),
    "gpt": dict(n_layer=2, n_head=4, n_embd=32, block_size=32),
}
_SMOKE_BATCH = {"gpt": 8}  # training and evaluation batch


def preset(name: str, device: str | None = None) -> TrainConfig:
    """The training config for chapter preset ``name`` on ``device`` (default: the best one
    found), shrunk in smoke mode. Print it with ``print(cfg.describe())``."""
    device = device or pick_device()
    if not isinstance(device, str) or device.split(":")[0] not in DEVICES:
        raise ValueError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    table = _GPU if device.startswith("cuda") else _CPU
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(sorted(table))}")
    values = dict(table[name])
    shape = dict(values.pop("model", None) or {})
    precision = choose_precision(device)
    values.update(autocast_dtype=precision.autocast_dtype, compile=precision.compile)
    if smoke_mode():
        values.update(_SMOKE)
        if name in _SMOKE_BATCH:
            values["batch_size"] = values["eval_batch_size"] = _SMOKE_BATCH[name]
        if shape:
            shape.update(_SMOKE_SHAPE.get(name, {}))
    model = GPTConfig(**shape) if shape else None
    return TrainConfig(name=name, device=device, smoke=smoke_mode(), model=model, **values)


def gpu_class(device: Device) -> str:
    """The GPU's class for the GPU preset's expected time: A100/H100-class with bf16 tensor
    cores (capability 8.0+) and 40 GB or more, else T4-class."""
    big = device.capability >= (8, 0) and (device.memory_gb or 0) >= 40
    return "A100/H100-class" if big else "T4-class"


def reference_curve(cfg: TrainConfig) -> dict | None:
    """The validation curve the course's own run of this preset reached on the reference machine
    (``helpers/reference/<preset>_<device>.json``, the history of the run stored in chapter 07),
    or None for a preset nobody has measured yet. Plot it behind a run to see if it is on track."""
    path = Path(__file__).parent / "reference" / f"{cfg.name}_{cfg.device}.json"
    return json.loads(path.read_text()) if path.exists() and not cfg.smoke else None
