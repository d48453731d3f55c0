"""helpers.precision: the number format and compiler chosen from what the device has, on each kind
of device a learner brings (simulated here: no test needs the hardware), and one training step
with each choice where this machine can run it."""

import platform
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from helpers import precision, speedups
from helpers.precision import Device, choose_precision
from helpers.presets import preset
from helpers.train import train

GPUS = {  # name, capability, memory (GB)
    "T4": ("Tesla T4", (7, 5), 15.8),
    "A100": ("NVIDIA A100-SXM4-40GB", (8, 0), 42.4),
    "H100": ("NVIDIA H100 80GB HBM3", (9, 0), 85.0),
}


def fake_gpu(monkeypatch, gpu: str, system: str = "Linux", triton: bool = True) -> None:
    """Make torch see one CUDA GPU like ``gpu``, on ``system``, with or without Triton."""
    name, capability, memory = GPUS[gpu]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: name)
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda index=0: SimpleNamespace(total_memory=int(memory * 1e9)),
    )
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(precision, "has_triton", lambda: triton)


@pytest.mark.parametrize(
    "gpu, dtype, scaler, arguments",
    [
        ("T4", "float16", True, {"bf16": False, "fp16": True}),
        ("A100", "bfloat16", False, {"bf16": True, "fp16": False}),
        ("H100", "bfloat16", False, {"bf16": True, "fp16": False}),
    ],
)
def test_each_gpu_gets_its_fast_precision(monkeypatch, gpu, dtype, scaler, arguments):
    """A T4 says it supports bf16 (emulation) but gets fp16 + GradScaler."""
    fake_gpu(monkeypatch, gpu)
    choice = choose_precision("cuda")
    assert (choice.autocast_dtype, choice.grad_scaler, choice.compile) == (dtype, scaler, True)
    assert choice.training_arguments == arguments
    assert f"capability {GPUS[gpu][1][0]}.{GPUS[gpu][1][1]}" in choice.reason
    monkeypatch.setenv("GPT_COURSE_SMOKE", "0")
    cfg = preset("gpt", "cuda")
    assert (cfg.autocast_dtype, cfg.compile, cfg.fused_adamw) == (dtype, True, True)


def test_windows_without_triton_does_not_compile(monkeypatch):
    fake_gpu(monkeypatch, "T4", system="Windows", triton=False)
    choice = choose_precision("cuda")
    assert choice.autocast_dtype == "float16" and choice.grad_scaler and not choice.compile
    assert "Windows" in choice.reason


def test_a_linux_gpu_without_triton_does_not_compile(monkeypatch):
    fake_gpu(monkeypatch, "A100", triton=False)
    assert not choose_precision("cuda").compile


def test_an_old_gpu_trains_in_fp32_without_compile():
    choice = choose_precision(Device("cuda", (6, 1), "GTX 1080", 8.0, triton=True))
    assert (choice.autocast_dtype, choice.grad_scaler, choice.compile) == (None, False, False)
    assert choice.name == "fp32"


def test_mps_trains_in_fp32_without_compile(monkeypatch):
    monkeypatch.setattr(precision, "has_triton", lambda: False)
    choice = choose_precision("mps")
    assert (choice.autocast_dtype, choice.grad_scaler, choice.compile) == (None, False, False)
    assert choice.dtype == torch.float32 and "MPS" in choice.reason
    assert preset("gpt", "mps").autocast_dtype is None


@pytest.mark.parametrize("has_bf16", [True, False, None])
def test_a_cpu_keeps_fp32_unless_asked_and_able(monkeypatch, has_bf16):
    features = replace(speedups.cpu_features(), avx512_bf16=has_bf16, amx_bf16=has_bf16)
    monkeypatch.setattr(precision, "cpu_features", lambda: features)
    default = choose_precision("cpu")
    assert (default.autocast_dtype, default.compile) == (None, False)
    asked = choose_precision("cpu", cpu_bf16=True)
    assert asked.autocast_dtype == ("bfloat16" if has_bf16 else None)
    assert preset("gpt", "cpu").autocast_dtype is None  # the stored CPU figures are fp32


def test_smoke_shapes_build_on_every_device(monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    fake_gpu(monkeypatch, "T4")
    for device in ("cpu", "cuda", "mps"):
        for name in ("bigram", "attention", "gpt"):
            cfg = preset(name, device)
            assert not cfg.compile  # a handful of steps never pays for compiling


@pytest.mark.parametrize("gpu", ["T4", "A100", "H100"])
def test_one_training_step_with_each_gpus_choice_runs_here_on_the_cpu(
    monkeypatch, gpu, tiny_gpt, shakespeare, char_tokenizer
):
    """The choice made for each GPU, run on this CPU (autocast and GradScaler exist there too),
    compile left off to keep the test fast."""
    fake_gpu(monkeypatch, gpu)
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")
    cfg = preset("gpt", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = tiny_gpt()
    cfg = replace(
        cfg, device="cpu", compile=False, fused_adamw=False, model=model.config, max_iters=2,
        eval_interval=2, eval_iters=1, batch_size=4, eval_batch_size=4,
    )  # fmt: skip
    ids = torch.tensor(char_tokenizer.encode(shakespeare[:5000]))
    history = train(model, {"train": ids[:4000], "val": ids[4000:]}, cfg, progress=False)
    assert history.steps == [0, 2] and all(torch.isfinite(torch.tensor(history.val_loss)))
