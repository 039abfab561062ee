"""Strategy labels of a training config ('plain', 'delta=0.5+trim-linear', ...): pure, no torch.

Used by `train` (its summary), the search side (live view, results.csv, MLflow tags) and the report.
"""

from __future__ import annotations

STRATEGY_KEYS = ("hard_batch.delta", "trim.schedule", "stepwise.fractions")  # the keys that turn strategies on


def strategy_name(cfg) -> str:
    """A short label of the strategies a config turns on, e.g. 'delta=0.5+trim-linear'."""
    parts = []
    if cfg.hard_batch.delta is not None:
        parts.append(f"delta={cfg.hard_batch.delta:g}")
    if cfg.trim.schedule != "none":
        parts.append(f"trim-{cfg.trim.schedule}")
    if cfg.stepwise.fractions is not None:
        f = cfg.stepwise.fractions
        parts.append("splits=" + (f if isinstance(f, str) else "-".join(f"{x:g}" for x in f)))
    return "+".join(parts) or "plain"
