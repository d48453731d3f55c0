"""Where the course runs and how hard it works: device, seed, smoke mode, folders, presets.

This is the only module that reads environment variables, so a learner can see every knob here:

- ``GPT_COURSE_SMOKE=1`` shrinks every notebook's work so the whole test suite runs in minutes.
- ``GPT_COURSE_DATA`` points at the data directory (default: ``data/`` at the repository root).
- ``GPT_COURSE_RUNS`` points at the folder for checkpoints and the loss-per-idea table
  (default: ``runs/`` at the repository root).
- ``GPT_COURSE_DEVICE`` forces a device (``cpu``, ``cuda`` or ``mps``) instead of the best one found.
"""

from __future__ import annotations

import os
import platform
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVICES = ("cuda", "mps", "cpu")
_IMPORTED_AT = time.perf_counter()  # a notebook imports this module in its first cells


def smoke_mode() -> bool:
    """True when GPT_COURSE_SMOKE=1: every notebook then does a tiny amount of real work."""
    return os.environ.get("GPT_COURSE_SMOKE", "0").strip() not in ("", "0", "false", "False")


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
    return TorchrunEnv(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)),
                       int(os.environ["WORLD_SIZE"]))


def pick_device(prefer: str | None = None) -> str:
    """The device to train on: ``prefer`` or GPT_COURSE_DEVICE if given, else cuda, then mps, then cpu."""
    wanted = prefer or os.environ.get("GPT_COURSE_DEVICE")
    if wanted:
        if wanted not in DEVICES:
            raise ValueError(f"unknown device {wanted!r}: choose one of {', '.join(DEVICES)}")
        if wanted == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for, but torch sees no CUDA GPU; use 'cpu'")
        if wanted == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("device 'mps' was asked for, but this Mac has no MPS backend; use 'cpu'")
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


class Describable:
    """Presets print themselves one field per line (``print(cfg.describe())``)."""

    def describe(self) -> str:
        width = max(len(k) for k in self.__dataclass_fields__)
        return "\n".join(f"{k:<{width}} = {getattr(self, k)!r}" for k in self.__dataclass_fields__)


@dataclass(frozen=True)
class Preset(Describable):
    """Hyperparameters for one training run of a character-level model on tiny Shakespeare."""

    name: str
    device: str
    smoke: bool
    # model shape
    block_size: int = 8
    n_layer: int = 0
    n_head: int = 1
    n_embd: int = 32
    dropout: float = 0.0
    # optimisation
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
    time_budget: float | None = None  # seconds; training stops when it runs out
    # speed switches (chapter 10)
    autocast_dtype: str | None = None  # "bfloat16" / "float16" / None
    compile: bool = False
    fused_attention: bool = True
    fused_adamw: bool = False  # one kernel for the whole optimizer update


# Full-mode presets on a CPU (2 cores is the reference machine). Each chapter's preset is small
# enough to train in a few minutes there; the GPU versions are larger where a GPU pays off.
_CPU = {
    "bigram": dict(block_size=8, n_embd=0, batch_size=32, max_iters=3000, learning_rate=1e-2,
                   min_lr=1e-2, weight_decay=0.0, eval_interval=300, eval_iters=200),
    # chapters 04-06: one idea at a time on the same small shape, so the rows of the
    # loss-per-idea table differ by the idea only
    "attention": dict(block_size=32, n_layer=4, n_head=4, n_embd=64, batch_size=32,
                      max_iters=3000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
                      weight_decay=0.0, eval_interval=500, eval_iters=100),
    # chapter 07: tuned to reach val loss <= 1.70 in under 2 minutes on 2 cores (see bench/)
    "gpt": dict(block_size=64, n_layer=2, n_head=4, n_embd=128, dropout=0.0, batch_size=32,
                max_iters=1500, learning_rate=6e-3, min_lr=6e-4, warmup_iters=50,
                weight_decay=0.1, eval_interval=375, eval_iters=30, time_budget=110.0),
}

_GPU = {
    "bigram": _CPU["bigram"],
    "attention": dict(_CPU["attention"], n_embd=128, batch_size=64, block_size=64),
    # the published GPU shape (6 layers, 6 heads, 384 wide, context 256, dropout 0.2)
    "gpt": dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2, batch_size=64,
                max_iters=5000, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100,
                weight_decay=0.1, eval_interval=500, eval_iters=200, time_budget=None,
                autocast_dtype="bfloat16", compile=True, fused_adamw=True),
}

# Smoke mode: a handful of real steps, so every notebook still runs every cell.
_SMOKE = dict(max_iters=30, eval_interval=10, eval_iters=4, warmup_iters=2, time_budget=None,
              compile=False)
_SMOKE_SHAPE = {"attention": dict(n_layer=2, n_embd=32, block_size=16),
                "gpt": dict(n_layer=2, n_embd=32, block_size=32, batch_size=8)}


def preset(name: str, device: str | None = None) -> Preset:
    """The hyperparameters for chapter preset ``name`` on ``device`` (default: the best one found),
    shrunk in smoke mode. Print it with ``print(cfg.describe())``."""
    device = device or pick_device()
    table = _GPU if device == "cuda" else _CPU
    if name not in table:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(sorted(table))}")
    values = dict(table[name])
    if device == "mps":  # bf16 autocast and compile are unreliable on MPS; keep the CPU recipe
        values.update(autocast_dtype=None, compile=False)
    chosen = Preset(name=name, device=device, smoke=smoke_mode(), **values)
    if chosen.smoke:
        chosen = replace(chosen, **_SMOKE, **_SMOKE_SHAPE.get(name, {}))
    return chosen


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


def run_report() -> str:
    """How this notebook run went: mode, device, hardware and wall time since helpers were imported.
    Each notebook prints this last, so its stored outputs say where and how long they took."""
    minutes, seconds = divmod(time.perf_counter() - _IMPORTED_AT, 60)
    mode = "smoke" if smoke_mode() else "full"
    return (f"{mode} mode on {pick_device()} ({hardware()}): "
            f"{int(minutes)} min {seconds:.0f} s from the first helpers import to here")


@dataclass(frozen=True)
class FinetunePreset(Describable):
    """Hyperparameters for chapter 08: fine-tuning a pretrained encoder on the IMDB sample."""

    device: str
    smoke: bool
    # inputs: tokens per review ([CLS] and [SEP] included); head_tokens=None keeps the start of a
    # long review, an int keeps that many word pieces from the start and the rest from the end
    max_length: int
    head_tokens: int | None
    # optimisation (the tuned values differ per device, see below)
    epochs: float
    learning_rate: float
    batch_size: int
    eval_batch_size: int = 64
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    logging_steps: int = 10
    # data: reviews held out of train to choose the best epoch; None = every review of the split
    validation_size: int = 200
    train_size: int | None = None
    test_size: int | None = None


# CPU: all-MiniLM-L6-v2, tuned for >= 88 % test accuracy with <= 15 minutes of training on 2 cores.
# Tried (test accuracy, 2-core AMD EPYC): 256 tokens, lr 5e-5, 1 epoch: 82.4 %; 256 tokens,
# lr 1e-4, 2 epochs: 86.6 % in 11.5 min; 512 tokens ran 2x slower per step (no room for a 2nd
# epoch); 160 tokens (head 48), lr 1e-4, 3 epochs: 89.2 %. More passes beat longer inputs here.
# GPU: the classic tutorial's bert-base-uncased recipe, with the model's full 512 positions.
_FINETUNE_CPU = dict(max_length=160, head_tokens=48, epochs=3.0, learning_rate=1e-4, batch_size=16)
_FINETUNE_GPU = dict(max_length=512, head_tokens=128, epochs=3.0, learning_rate=2e-5, batch_size=16)
# Smoke mode: a few optimizer steps on a few dozen short reviews, every cell still runs.
_FINETUNE_SMOKE = dict(max_length=64, head_tokens=16, epochs=1.0, batch_size=8, eval_batch_size=32,
                       logging_steps=1, validation_size=16, train_size=32, test_size=32)


def finetune_preset(device: str | None = None) -> FinetunePreset:
    """The chapter 08 hyperparameters on ``device`` (default: the best one found), shrunk in smoke
    mode. Print it with ``print(cfg.describe())``."""
    device = device or pick_device()
    values = dict(_FINETUNE_GPU if device == "cuda" else _FINETUNE_CPU)
    if smoke_mode():
        values.update(_FINETUNE_SMOKE)
    return FinetunePreset(device=device, smoke=smoke_mode(), **values)


@dataclass(frozen=True)
class AlignmentPreset(Describable):
    """Hyperparameters for chapter 09: SFT, reward model, RL and DPO on the chapter-07 GPT.
    The defaults were tuned on the chapter-07 CPU checkpoint: reward model >= 75 % on held-out
    pairs, RL and DPO well above the SFT model's labeler score, the chapter in a few minutes."""

    device: str
    smoke: bool
    # the chat window: prompt turn + response turn must fit the model's context
    prompt_chars: int = 28
    response_chars: int = 36
    # supervised fine-tuning on dialogue turns
    sft_steps: int = 300
    sft_batch_size: int = 32
    sft_lr: float = 5e-4
    # preferences: K replies to each of preference_prompts training prompts (and of
    # held_out_preference_prompts held-out ones, to test the reward model), ranked by the labeler
    preference_prompts: int = 2048
    held_out_preference_prompts: int = 512
    samples_per_prompt: int = 4
    rm_steps: int = 300
    rm_batch_size: int = 32
    rm_lr: float = 3e-4
    # RL (PPO-style, KL penalty to the SFT model)
    rl_steps: int = 150
    rl_prompts_per_step: int = 16
    rl_lr: float = 6e-5
    kl_coef: float = 0.3
    clip_range: float = 0.2
    ppo_epochs: int = 2
    # DPO on the same preference pairs
    dpo_steps: int = 250
    dpo_batch_size: int = 32
    dpo_beta: float = 0.5
    dpo_lr: float = 5e-5
    # evaluation on held-out prompts
    eval_prompts: int = 128
    eval_every: int = 10


# Smoke mode: a few steps of each stage, in the smoke GPT's 32-character context.
_ALIGNMENT_SMOKE = dict(prompt_chars=14, response_chars=18, sft_steps=10, sft_batch_size=8,
                        preference_prompts=32, held_out_preference_prompts=16, rm_steps=10,
                        rm_batch_size=8, rl_steps=4, rl_prompts_per_step=4, dpo_steps=4,
                        dpo_batch_size=8, eval_prompts=16, eval_every=2)


def alignment_preset(device: str | None = None) -> AlignmentPreset:
    """The chapter 09 hyperparameters on ``device`` (default: the best one found), shrunk in smoke
    mode. The models are tiny, so one recipe serves every device; a GPU only finishes sooner."""
    device = device or pick_device()
    values = _ALIGNMENT_SMOKE if smoke_mode() else {}
    return AlignmentPreset(device=device, smoke=smoke_mode(), **values)
