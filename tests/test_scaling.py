"""Chapter 10's speed switches: gradient accumulation, autocast, DDP under torchrun."""

import json

import pytest
import torch

from helpers import distributed
from helpers.train import accumulate_gradients, load_checkpoint


def gradients(model):
    return [p.grad.clone() for p in model.parameters()]


def test_accumulating_k_micro_batches_equals_one_batch_k_times_larger(tiny_gpt):
    x = torch.randint(0, 65, (8, 16))
    y = torch.randint(0, 65, (8, 16))
    one, many = tiny_gpt(), tiny_gpt()
    accumulate_gradients(one, [(x, y)], "cpu")
    accumulate_gradients(many, [(x[i : i + 2], y[i : i + 2]) for i in range(0, 8, 2)], "cpu")
    for a, b in zip(gradients(one), gradients(many), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_bf16_autocast_on_cpu_gives_a_finite_loss_close_to_fp32(tiny_gpt):
    model = tiny_gpt()
    x = torch.randint(0, 65, (4, 16))
    _, fp32 = model(x, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, bf16 = model(x, x)
    assert logits.dtype == torch.bfloat16 and torch.isfinite(bf16)
    assert abs(bf16.item() - fp32.item()) < 0.05


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_writes_one_loadable_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")  # the ranks inherit it
    out = tmp_path / "ddp"
    result = distributed.launch(
        2,
        "-m",
        "helpers.train",
        "--preset",
        "gpt",
        "--max-iters",
        4,
        "--device",
        "cpu",
        "--out",
        out,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.count("best val loss") == 1  # only rank 0 reports
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "last", "model.safetensors"]
    assert sorted(p.name for p in (out / "last").iterdir()) == [
        "config.json",
        "model.safetensors",
        "training_state.pt",
    ]
    meta = json.loads((out / "last" / "config.json").read_text())
    assert meta["step"] == 4
    model, tokenizer = load_checkpoint(out)  # no "module." prefix from the DDP wrapper
    assert not any(k.startswith("module.") for k in model.state_dict())
