"""Stateless schedules (timm style: the position is passed in), one registry per family.

Both families map a position to a value through a named shape of progress t in [0, 1]:
- learning rate (`optim.schedule`): the peak times a factor, per 0-based step of a stage (step-wise stages
  restart it);
- trimming fraction p (`trim.schedule`): from p_start at the first epoch to p_end at the last, constant
  within an epoch.

`LR_SCHEDULES` and `TRIM_SCHEDULES` are the registries: `config.validate` reads their names, so a schedule
added here is accepted everywhere at once.
"""

from __future__ import annotations

import math

ONECYCLE_START = 1 / 25  # torch's OneCycleLR div_factor: start at peak / 25


def cosine(t: float) -> float:
    """Half a cosine from 1 at t = 0 to 0 at t = 1."""
    return 0.5 * (1 + math.cos(math.pi * t))


def _onecycle(t: float, warmup: float) -> float:
    """Linear from 1/25 up to 1 over `warmup` of the stage, then linear down to 0 (no annealing phase)."""
    if t < warmup:
        return ONECYCLE_START + (1 - ONECYCLE_START) * t / warmup
    return max(0.0, 1 - (t - warmup) / (1 - warmup))


# factor of the peak at progress t (warmup: onecycle's rising share)
LR_SCHEDULES = {
    "none": lambda t, warmup: 1.0,
    "step": lambda t, warmup: 0.1 ** ((t >= 0.5) + (t >= 0.75)),  # /10 at 50% and again at 75%
    "cosine": lambda t, warmup: cosine(t),
    "onecycle": _onecycle,
}

# p at progress t from p_start (a) to p_end (b); step_at: where the step schedule switches
TRIM_SCHEDULES = {
    "none": lambda t, a, b, step_at: 1.0,  # no trimming: the whole batch
    "constant": lambda t, a, b, step_at: b,
    "linear": lambda t, a, b, step_at: a + (b - a) * t,
    "cosine": lambda t, a, b, step_at: b + (a - b) * cosine(t),
    "step": lambda t, a, b, step_at: a if t < step_at else b,
}


def lr_at(schedule: str, step: int, total: int, peak: float, warmup: float = 0.25) -> float:
    """Learning rate at 0-based `step` of a stage of `total` steps."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}")
    return peak * LR_SCHEDULES[schedule](step / max(1, total), warmup)


def p_at(schedule: str, epoch: int, total_epochs: int, p_start: float = 1.0, p_end: float = 0.2,
         step_at: float = 0.5) -> float:
    """p for a 0-based `epoch` of `total_epochs`. With one epoch, progress is 0 (p_start): E = 1 must not
    divide by zero."""
    if schedule not in TRIM_SCHEDULES:
        raise ValueError(f"unknown trim schedule {schedule!r}")
    t = epoch / (total_epochs - 1) if total_epochs > 1 else 0.0
    return TRIM_SCHEDULES[schedule](t, p_start, p_end, step_at)
