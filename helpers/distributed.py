"""Data-parallel training across processes (chapter 10), in as few lines as it takes.

``torchrun --nproc_per_node N -m helpers.train ...`` starts N copies of the same program. Each
copy (a *rank*) holds a full model, trains on its own random batches, and DistributedDataParallel
averages the gradients across ranks during ``backward()``, so all copies take identical steps:
the effective batch is N times larger. GPUs talk over NCCL; CPUs over gloo.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from helpers.settings import launched_by_torchrun


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, prints and shows progress."""
        return self.rank == 0


def setup(device: str) -> str:
    """Join the process group when launched by torchrun (else: a single process, nothing to do).
    Returns the device this process trains on: on GPUs, each rank takes the GPU of its local rank."""
    env = launched_by_torchrun()
    if env is None:
        return device
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        torch.cuda.set_device(env.local_rank)
        return f"cuda:{env.local_rank}"
    return device


def current() -> Ranks:
    """The ranks of this process, from the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def any_rank(flag: bool, device: str = "cpu") -> bool:
    """True if ``flag`` is true on any rank. Used for stopping on a time budget: if one rank
    stopped while another went on, the other would wait forever for its gradient partner."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
