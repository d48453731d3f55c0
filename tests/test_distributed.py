"""Exact data parallelism: 2 processes x batch B take the steps of 1 process x batch 2B, and every
collective uses a tensor on a device its backend can move (NCCL: the GPU only)."""

import pytest
import torch
from safetensors.torch import load_file

from helpers import distributed, train_cli
from helpers import train as train_module

# One step's gradients, from the same model, tokens and batch stream as helpers.train draws them.
GRADIENT_WORKER = """
import sys, torch
from torch.nn.parallel import DistributedDataParallel
from helpers import distributed
from helpers.model import GPT, GPTConfig
from helpers.train import accumulate_gradients, rank_batch
distributed.setup("cpu")
ranks, batch_size = distributed.current(), int(sys.argv[2])
torch.manual_seed(0)
model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16))
tokens = torch.randint(0, 65, (5000,), generator=torch.Generator().manual_seed(1))
x, y = rank_batch(tokens, 16, batch_size, ranks, "cpu", torch.Generator().manual_seed(2))
forward = DistributedDataParallel(model) if ranks.world_size > 1 else model
accumulate_gradients(forward, [(x, y)], "cpu")
if ranks.is_main:
    torch.save({n: p.grad for n, p in model.named_parameters()}, sys.argv[1])
distributed.teardown()
"""


def torchrun(nproc: int, *args: str) -> None:
    result = distributed.launch(nproc, *args, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


@pytest.mark.parametrize(
    "backend, device, expected",
    [
        ("nccl", "cuda:1", "cuda:1"),
        ("nccl", "cuda", "cuda"),
        ("gloo", "cpu", "cpu"),
        ("gloo", "cuda:0", "cpu"),
    ],
)
def test_collectives_use_a_tensor_on_the_backends_device(backend, device, expected):
    assert distributed.collective_device(backend, device) == torch.device(expected)


def test_ranks_slice_one_global_batch():
    tokens = torch.arange(1000)
    whole = train_module.rank_batch(
        tokens, 8, 6, distributed.Ranks(0, 1), "cpu", torch.Generator().manual_seed(3)
    )[0]
    parts = [
        train_module.rank_batch(
            tokens, 8, 3, distributed.Ranks(r, 2), "cpu", torch.Generator().manual_seed(3)
        )[0]
        for r in range(2)
    ]
    assert torch.equal(torch.cat(parts), whole)


@pytest.mark.slow
def test_two_processes_give_the_gradients_of_one_process_with_twice_the_batch(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")  # the ranks inherit it
    script = tmp_path / "gradients.py"
    script.write_text(GRADIENT_WORKER)
    torchrun(2, str(script), str(tmp_path / "ddp.pt"), "4")
    torchrun(1, str(script), str(tmp_path / "one.pt"), "8")
    ddp, one = torch.load(tmp_path / "ddp.pt"), torch.load(tmp_path / "one.pt")
    for name in one:
        torch.testing.assert_close(ddp[name], one[name], atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_two_processes_train_to_the_weights_of_one_process_with_twice_the_batch(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("GPT_COURSE_SMOKE", "1")  # the ranks and the one process alike
    common = ["--preset", "gpt", "--device", "cpu", "--max-iters", "4", "--eval-interval", "2"]
    torchrun(2, "-m", "helpers.train", *common, "--batch-size", "4", "--out", str(tmp_path / "ddp"))
    train_cli.main([*common, "--batch-size", "8", "--out", str(tmp_path / "one")])
    ddp = load_file(tmp_path / "ddp" / "last" / "model.safetensors")
    one = load_file(tmp_path / "one" / "last" / "model.safetensors")
    for name in one:
        torch.testing.assert_close(ddp[name], one[name], atol=1e-5, rtol=1e-4)


def test_launch_splits_the_cores_between_the_ranks(monkeypatch):
    calls = []
    monkeypatch.setattr(distributed.subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    distributed.launch(2, "-m", "helpers.train", "--max-iters", 3)
    cmd, kw = calls[0]
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert cmd[-2:] == ["--max-iters", "3"] and kw["env"]["OMP_NUM_THREADS"] == "4" and kw["check"]
