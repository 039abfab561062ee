"""Mini-batch trimming (Fassold, "Some like it tough"): train on the mean of the r largest per-sample losses.

r = max(1, round(p * b)) for the actual batch size b (round half up); p follows a schedule over epochs
(`schedules.p_at`). `trim.select: random` is its control: the mean of r per-sample losses drawn uniformly
(seeded), the same number as the r largest, so it isolates choosing *hard* samples from choosing *fewer*.
Evaluation is never trimmed.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..schedules import p_at
from .base import Context, Strategy


def num_kept(p: float, batch_size: int) -> int:
    """r = max(1, round(p * b)), rounding halves up (p = 0.5, b = 5 keeps 3)."""
    return max(1, math.floor(p * batch_size + 0.5))


def trim_loss(losses: torch.Tensor, p: float) -> torch.Tensor:
    """Mean of the r largest per-sample losses (torch.topk); p = 1 is the plain mean."""
    r = num_kept(p, losses.numel())
    if r == losses.numel():
        return losses.mean()
    return torch.topk(losses, r, sorted=False).values.mean()


def random_trim_loss(losses: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Mean of r = max(1, round(p * b)) per-sample losses drawn uniformly without replacement."""
    r = num_kept(p, losses.numel())
    if r == losses.numel():
        return losses.mean()
    draw = torch.randperm(losses.numel(), generator=generator, device=generator.device)[:r]
    return losses[draw].mean()


class Trim(Strategy):
    """Decides p per epoch from the config and applies `trim_loss` (or its random control)."""

    def __init__(self, cfg, context: Context):
        self.cfg = cfg.trim
        self.generator = context.generator() if cfg.trim.select == "random" else None
        self.p = 1.0

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        c = self.cfg
        self.p = p_at(c.schedule, epoch, total_epochs, c.p_start, c.p_end, c.step_at)

    def reduce(self, terms: torch.Tensor) -> Optional[tuple[torch.Tensor, int]]:
        if self.p >= 1.0:
            return terms.mean(), terms.numel()
        loss = random_trim_loss(terms, self.p, self.generator) if self.generator is not None else \
            trim_loss(terms, self.p)
        return loss, num_kept(self.p, terms.numel())

    def fields(self) -> dict:
        return {"p": self.p}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()} if self.generator is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])
