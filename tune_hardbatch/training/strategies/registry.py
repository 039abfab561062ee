"""The registry of strategies: when each is on, how it is built, and the configs a test trains it with.

Adding a strategy is one module (pure functions + a `Strategy`), one entry here, and its tests; the
parametrized loop test trains every entry's examples. Order matters where hooks compose: the first
strategy that owns a sampler samples; `select` runs before `weigh`, and `weigh` before `reduce`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .base import Strategies, Strategy
from .hard_batch import HardBatch, ShuffledSampler
from .infobatch import InfoBatch
from .selective_backprop import SelectiveBackprop
from .stepwise import Stepwise
from .trim import Trim


@dataclass(frozen=True)
class Entry:
    on: Callable  # cfg -> bool
    make: Callable  # (cfg, partition_gen, device) -> Strategy
    examples: dict  # name -> config mapping that turns it on (and its controls)


REGISTRY: dict[str, Entry] = {
    "infobatch": Entry(lambda c: c.infobatch.prune_ratio is not None,
                       lambda c, gen, dev: InfoBatch(c, dev),
                       {"infobatch": {"infobatch": {"prune_ratio": 0.5}}}),
    "hard_batch": Entry(lambda c: c.hard_batch.delta is not None,
                        lambda c, gen, dev: HardBatch(c, gen, dev),
                        {"delta=1": {"hard_batch": {"delta": 1.0}},
                         "delta<1": {"hard_batch": {"delta": 0.5}},
                         "delta<1-random": {"hard_batch": {"delta": 0.5, "select": "random"}}}),
    "stepwise": Entry(lambda c: c.stepwise.fractions is not None,
                      lambda c, gen, dev: Stepwise(),
                      {"splits": {"stepwise": {"fractions": "A-C-O"}}}),
    "selective_backprop": Entry(lambda c: c.selective_backprop.keep not in (None, 1.0),
                                lambda c, gen, dev: SelectiveBackprop(c, dev),
                                {"sb": {"selective_backprop": {"keep": 0.5, "start": 0.0}}}),
    "trim": Entry(lambda c: c.trim.schedule != "none",
                  lambda c, gen, dev: Trim(c, dev),
                  {"trim": {"trim": {"schedule": "linear", "p_end": 0.3}},
                   "trim-random": {"trim": {"schedule": "linear", "p_end": 0.3, "select": "random"}}}),
}


def build(cfg, partition_gen: torch.Generator, data_gen: torch.Generator, device: torch.device) -> Strategies:
    """The config's active strategies; plain reshuffled SGD (drawn from `data_gen`) samples when none does."""
    members: dict[str, Strategy] = {name: e.make(cfg, partition_gen, device)
                                    for name, e in REGISTRY.items() if e.on(cfg)}
    return Strategies(members, lambda subset, batch: ShuffledSampler(subset, batch, data_gen))


def examples() -> dict[str, dict]:
    """Every registered strategy's example configs, plus plain SGD: what the loop test trains."""
    out = {"plain": {}}
    for entry in REGISTRY.values():
        out.update(entry.examples)
    return out
