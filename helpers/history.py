"""What a training run did: one entry per evaluation, and how fast it went.

``helpers.train.train`` returns a ``History``; ``helpers.checkpoint`` stores it beside the
weights (so a resumed run continues it) and ``helpers.plots`` draws it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class History:
    """One entry per evaluation, and how the run was timed."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)  # wall seconds since training started
    max_iters: int = 0  # the step count the run planned (from the time budget, if there was one)
    seconds_per_step: float = 0.0  # measured for the time budget; 0 when there was none
    tokens_per_second: float = 0.0  # all ranks, training steps only (no evals, saves, 1st step)
    first_step_seconds: float = 0.0  # includes torch.compile's compile time when it is on
    stopped_by: str = "max_iters"  # or "stop_after" (a simulated crash)
    mfu: float | None = None  # model FLOPs utilisation (helpers.mfu); None: peak unknown
    precision: str = ""  # the precision path taken, e.g. "bf16 autocast" (helpers.precision)

    @property
    def best_val_loss(self) -> float:
        return min(self.val_loss) if self.val_loss else math.inf

    def to_dict(self) -> dict:
        return asdict(self)
