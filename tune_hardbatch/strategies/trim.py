"""Mini-batch trimming (Fassold, "Some like it tough"): train on the mean of the r largest per-sample losses.

r = max(1, round(p * b)) for the actual batch size b (round half up); p follows a schedule over epochs
(`schedules.p_at`).
Evaluation is never trimmed.
"""

from __future__ import annotations

import math

import torch

from ..schedules import p_at


def num_kept(p: float, batch_size: int) -> int:
    """r = max(1, round(p * b)), rounding halves up (p = 0.5, b = 5 keeps 3)."""
    return max(1, math.floor(p * batch_size + 0.5))


def trim_loss(losses: torch.Tensor, p: float) -> torch.Tensor:
    """Mean of the r largest per-sample losses (torch.topk); p = 1 is the plain mean."""
    r = num_kept(p, losses.numel())
    if r == losses.numel():
        return losses.mean()
    return torch.topk(losses, r, sorted=False).values.mean()


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
