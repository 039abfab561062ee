"""Strategy labels and families of a training config, torch-free, from the declarations (`registry`).

A label names the strategies a config turns on with their values ('plain', 'delta=0.5+trim-linear',
'sb=0.5'); a family names them without values ('delta+trim', 'sb'): what a joint search compares. The
label is shown (live view, results.csv, MLflow tags, the report); the family is stored on the trial record.
"""

from __future__ import annotations

from . import registry


def strategy_name(cfg) -> str:
    """e.g. 'delta=0.5+trim-linear', 'delta=0.5-random' (the random control), 'sb=0.5', 'infobatch=0.5',
    'plain@7.5' (plain SGD for 7.5 compute-equivalents), 'plain'."""
    return registry.label(cfg)


def strategy_family(cfg) -> str:
    """e.g. 'delta+trim+splits', 'delta-random', 'trim-random', 'delta=1', 'sb', 'plain@budget', 'plain'."""
    return registry.family(cfg)


def strategy_keys() -> tuple[str, ...]:
    """The keys that turn strategies on, or change which samples they choose (and `compute_budget`)."""
    return registry.strategy_keys()
