"""Strategy labels and families of a training config, torch-free, from the declarations (`registry`).

A label names the strategies a config turns on with their values ('plain', 'delta=0.5+trim-linear',
'sb=0.5'); a family names them without values ('delta+trim', 'sb'): what a joint search compares. The
label is shown (live view, results.csv, MLflow tags, the report); the family is stored on the trial record.
"""

from __future__ import annotations

from . import registry


def strategy_keys() -> tuple[str, ...]:
    """The keys that turn strategies on, or change which samples they choose (and `compute_budget`)."""
    keys = [k for d in registry.declarations() for k in (d.gate_key, *(f"{d.name}.{s}" for s in d.selects))]
    return tuple(keys) + ("compute_budget",)


def strategy_name(cfg) -> str:
    """A short label of the strategies a config turns on, e.g. 'delta=0.5+trim-linear', 'delta=0.5-random'
    (the random control), 'sb=0.5', 'plain@7.5' (plain SGD for 7.5 compute-equivalents), 'plain'."""
    parts = [d.label(getattr(cfg, d.name)) for d in registry.active(cfg)]
    if cfg.compute_budget is not None:
        parts.append(f"plain@{cfg.compute_budget:g}")
    return "+".join(parts) or "plain"


def strategy_family(cfg) -> str:
    """What a config is compared as in a joint search: its strategies without their values, e.g.
    'delta+trim', 'delta-random', 'delta=1', 'sb', 'plain@budget' (budget-matched plain SGD), 'plain'."""
    parts = [d.family(getattr(cfg, d.name)) for d in registry.active(cfg)]
    if cfg.compute_budget is not None:
        parts.append("plain@budget")
    return "+".join(parts) or "plain"
