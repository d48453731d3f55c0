"""What contains a submission while it is graded: it is code from someone else, run on the
instructor's machine. Each runs in a child process with resource limits, an environment that
holds none of the instructor's variables (tokens, credentials), a scratch working copy, and no
network where Linux lets an unprivileged tool take it away (``unshare``).

What this cannot contain (book/for-instructors.md says so, with a container recipe that can):
a process running as root ignores the limit on processes, and a submission can read any file
the instructor's user can read.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from helpers.settings import data_dir


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 60.0  # seconds a cell may run before it is interrupted
    cap: float = 900.0  # seconds for the whole submission (and its CPU time)
    memory_gb: float = 8.0  # address space of each process (torch reserves ~2 GB at import)
    file_mb: int = 512  # largest file a submission may write
    processes: int = 512  # processes of this user (not enforced for root)

    def apply(self) -> None:
        """Set the limits in the child process, before it starts (``preexec_fn``); the kernel it
        starts inherits them."""
        memory = int(self.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (int(self.cap), int(self.cap) + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_mb * 2**20,) * 2)
        resource.setrlimit(resource.RLIMIT_NPROC, (self.processes,) * 2)


def stripped_environment(workdir: Path) -> dict[str, str]:
    """The few variables a kernel needs, none of the instructor's: home, temp and runs folders
    inside the scratch copy, the shared data folder, smoke mode, one thread per kernel."""
    home = workdir / "home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    keep = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL") if name in os.environ}
    return {
        **keep,
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "GPT_COURSE_DATA": str(data_dir()),
        "GPT_COURSE_RUNS": str(workdir / "runs"),
        "GPT_COURSE_SMOKE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "VIRTUAL_ENV": sys.prefix,
    }


@functools.cache
def network_cut() -> list[str]:
    """The prefix that runs a command without network (a new, empty network namespace) and in a
    process namespace of its own, so that nothing it starts outlives it: ``unshare`` as root, or
    with ``-r`` where user namespaces are allowed; none where neither works."""
    if shutil.which("unshare") is None:
        return []
    contained = ["-n", "-p", "-f", "--kill-child"]
    for prefix in (["unshare", *contained], ["unshare", "-r", *contained]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return []


def contained_command(command: list[str]) -> list[str]:
    return [*network_cut(), *command]
