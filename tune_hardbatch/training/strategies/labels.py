"""Strategy labels of a training config ('plain', 'delta=0.5+trim-linear', 'sb=0.5', ...): pure, no torch.

Used by `train` (its summary), the search side (live view, results.csv, MLflow tags) and the report;
`verdict.family_of` reads them back into families.
"""

from __future__ import annotations

# the keys that turn strategies on, or change which samples they choose
STRATEGY_KEYS = ("hard_batch.delta", "hard_batch.select", "trim.schedule", "trim.select", "stepwise.fractions",
                 "selective_backprop.keep", "infobatch.prune_ratio", "compute_budget")


def strategy_name(cfg) -> str:
    """A short label of the strategies a config turns on, e.g. 'delta=0.5+trim-linear', 'delta=0.5-random'
    (the random control), 'sb=0.5', 'infobatch=0.5', 'plain@7.5' (plain SGD for 7.5 compute-equivalents)."""
    parts = []
    if cfg.hard_batch.delta is not None:
        parts.append(f"delta={cfg.hard_batch.delta:g}" + ("-random" if cfg.hard_batch.select == "random" else ""))
    if cfg.trim.schedule != "none":
        parts.append(f"trim-{cfg.trim.schedule}" + ("-random" if cfg.trim.select == "random" else ""))
    if cfg.stepwise.fractions is not None:
        f = cfg.stepwise.fractions
        parts.append("splits=" + (f if isinstance(f, str) else "-".join(f"{x:g}" for x in f)))
    if cfg.selective_backprop.keep not in (None, 1.0):
        parts.append(f"sb={cfg.selective_backprop.keep:g}")
    if cfg.infobatch.prune_ratio is not None:
        parts.append(f"infobatch={cfg.infobatch.prune_ratio:g}")
    if cfg.compute_budget is not None:
        parts.append(f"plain@{cfg.compute_budget:g}")
    return "+".join(parts) or "plain"
