"""Data-parallel training across processes (chapter 10), in as few lines as it takes.

``torchrun --nproc_per_node N -m helpers.train ...`` starts N copies of the same program. Each
copy (a *rank*) holds a full model. Every step, all ranks draw the same global batch of N x B
examples and each trains on its own slice of B; DistributedDataParallel averages the gradients
across ranks during ``backward()``, so all copies take identical steps, the same steps one process
would take on the whole N x B batch. GPUs talk over NCCL; CPUs over gloo.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from helpers.settings import REPO_ROOT, child_environment, launched_by_torchrun

if TYPE_CHECKING:
    from pathlib import Path


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
    Returns the device this process trains on: on GPUs, each rank takes its local rank's GPU."""
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


def collective_device(backend: str, device: str) -> torch.device:
    """Where a tensor must live to take part in a collective of ``backend``: NCCL moves only CUDA
    tensors (a CPU tensor fails with "No backend type associated with device type cpu"), so with
    NCCL it is this rank's GPU; gloo is used with CPU tensors."""
    return torch.device(device) if backend == "nccl" else torch.device("cpu")


def broadcast_from_main(value: float, device: str) -> float:
    """Rank 0's ``value`` on every rank. Used for decisions that must agree, such as how many
    steps fit in a time budget: ranks that disagree would wait forever for each other."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor(
        [float(value)], dtype=torch.float64, device=collective_device(dist.get_backend(), device)
    )
    dist.broadcast(t, src=0)
    return t.item()


def gather_objects(obj: object) -> list:
    """``obj`` from every rank, in rank order (for saving each rank's random state)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)  # NCCL: uses the GPU set by setup(), as it must
    return out


def teardown() -> None:
    """Leave the process group together: a rank that tears down while another is still writing
    its checkpoint can abort at exit ("terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def launch(
    nproc: int, *args: object, cwd: str | Path = REPO_ROOT, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run ``torchrun --standalone --nproc_per_node nproc ARGS...`` on this machine and return the
    finished process (output captured). This process's CPU threads are split between the ranks:
    N processes that each use every core would slow one another down many times over. A rank
    that fails is an error that shows the end of its output."""
    threads = str(max(1, torch.get_num_threads() // nproc))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        *map(str, args),
    ]
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
            timeout=timeout,
            env=child_environment(OMP_NUM_THREADS=threads),
        )
    except subprocess.CalledProcessError as err:
        raise RuntimeError(
            f"torchrun exited with {err.returncode}: {' '.join(command[3:])}\n"
            + err.stdout[-2000:]
            + err.stderr[-3000:]
        ) from err
