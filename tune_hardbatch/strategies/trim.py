"""Mini-batch trimming (Fassold, "Some like it tough"): train on the mean of the r largest per-sample losses.

r = max(1, round(p * b)) for the actual batch size b (round half up); p follows a schedule over epochs.
Evaluation is never trimmed.
"""

from __future__ import annotations

import math

import torch


def num_kept(p: float, batch_size: int) -> int:
    """r = max(1, round(p * b)), rounding halves up (p = 0.5, b = 5 keeps 3)."""
    return max(1, math.floor(p * batch_size + 0.5))


def trim_loss(losses: torch.Tensor, p: float) -> torch.Tensor:
    """Mean of the r largest per-sample losses (torch.topk); p = 1 is the plain mean."""
    r = num_kept(p, losses.numel())
    if r == losses.numel():
        return losses.mean()
    return torch.topk(losses, r, sorted=False).values.mean()


def p_at(schedule: str, epoch: int, total_epochs: int, p_start: float = 1.0, p_end: float = 0.2,
         step_at: float = 0.5) -> float:
    """p for a 0-based `epoch` of `total_epochs` (constant within an epoch). Stateless.

    none: 1; constant: p_end; linear/cosine: p_start at the first epoch to p_end at the last;
    step: p_start until progress `step_at`, then p_end. With one epoch, progress is 0 (p_start).
    """
    t = epoch / (total_epochs - 1) if total_epochs > 1 else 0.0
    if schedule == "none":
        return 1.0
    if schedule == "constant":
        return p_end
    if schedule == "linear":
        return p_start + (p_end - p_start) * t
    if schedule == "cosine":
        return p_end + (p_start - p_end) * (1 + math.cos(math.pi * t)) / 2
    if schedule == "step":
        return p_start if t < step_at else p_end
    raise ValueError(f"unknown trim schedule {schedule!r}")


class Trimmer:
    """Decides p per epoch from the config and applies `trim_loss`."""

    def __init__(self, cfg):
        self.cfg = cfg  # TrimConfig

    @property
    def enabled(self) -> bool:
        return self.cfg.schedule != "none"

    def p(self, epoch: int, total_epochs: int) -> float:
        c = self.cfg
        return p_at(c.schedule, epoch, total_epochs, c.p_start, c.p_end, c.step_at)

    def loss(self, losses: torch.Tensor, p: float) -> torch.Tensor:
        return trim_loss(losses, p) if p < 1.0 else losses.mean()
