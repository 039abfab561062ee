"""Stateless learning-rate schedules (timm style): the step and the stage length are passed in."""

from __future__ import annotations

import math

ONECYCLE_START = 1 / 25  # torch's OneCycleLR div_factor: start at peak / 25


def lr_at(schedule: str, step: int, total: int, peak: float, warmup: float = 0.25) -> float:
    """Learning rate at 0-based `step` of a stage of `total` steps.

    none: constant; step: /10 at 50% and again at 75%; cosine: half cosine to 0;
    onecycle: linear from peak/25 up to peak over `warmup` of the stage, then linear down to 0.
    """
    t = step / max(1, total)
    if schedule == "none":
        return peak
    if schedule == "step":
        return peak * 0.1 ** ((t >= 0.5) + (t >= 0.75))
    if schedule == "cosine":
        return peak * 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "onecycle":
        if t < warmup:
            return peak * (ONECYCLE_START + (1 - ONECYCLE_START) * t / warmup)
        return peak * max(0.0, 1 - (t - warmup) / (1 - warmup))
    raise ValueError(f"unknown schedule {schedule!r}")
