"""What the tool knows of a strategy, declared once and torch-free: `Declaration`.

A strategy is its implementation (a `base.Strategy`, with torch) plus one `Declaration`: its config section
with defaults and ranges, the field that turns it on and the values that leave it off, its label and
family, its numeric fields' ranges, the fields that apply only while it is on, whether it spends less compute than plain SGD, which
hooks it takes over (the sampler, the loss), its random stream and the configs a test trains it with.
Everything else (the config's sections, the strategy keys, labels, families, the baseline's "off" values,
the search's gates, the importances' conditions, the budget rule) is derived from the declarations in
`registry`. Built-in declarations are in `catalog`; a user's come from a plug-in (`registry.load_plugins`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union


@dataclass(frozen=True)
class Declaration:
    name: str  # the config section and registry key, e.g. "trim": its keys are trim.<field>
    section: type  # a frozen dataclass of its hyperparameters; the defaults leave it off
    gate: str  # the section's field that turns it on; searched before the others
    off: tuple  # values of `gate` that leave it off; off[0] is what plain SGD's baseline sets
    impl: Union[str, type]  # "module:Class" of its `base.Strategy` (imported when a run trains), or the class
    label: Callable[[Any], str]  # section -> its part of a trial's label ('trim-linear-random')
    family: Callable[[Any], str]  # section -> its part of a trial's family ('trim-random'): what is compared
    choices: Mapping[str, tuple] = field(default_factory=dict)  # field -> the values it allows
    ranges: Mapping[str, Any] = field(default_factory=dict)  # numeric field -> its `training.ranges.Range`
    rules: Optional[Callable[[Any], None]] = None  # cfg -> None: ranges and conflicts, `UserError` naming the key
    applies: Optional[Callable[[str, Any], bool]] = None  # (field, section) -> whether a field matters; None: all do
    selects: tuple = ()  # fields besides the gate that change which samples it chooses (random controls)
    saves_compute: bool = False  # may train fewer samples than plain SGD in its epochs: a budget-matched baseline
    samples: bool = False  # owns the sampler (at most one strategy that is on may)
    sets_loss: bool = False  # its `reduce` sets the loss to back-propagate (at most one strategy that is on may)
    stream: Optional[int] = None  # its random stream (a multiple of 100): generators seed*1000 + stream + offset
    examples: Mapping[str, dict] = field(default_factory=dict)  # name -> config mapping the loop test trains

    @property
    def gate_key(self) -> str:
        return f"{self.name}.{self.gate}"

    @property
    def keys(self) -> list[str]:
        """Its dotted config keys, in field order."""
        return [f"{self.name}.{f.name}" for f in dataclasses.fields(self.section)]

    def on(self, cfg) -> bool:
        return getattr(getattr(cfg, self.name), self.gate) not in self.off

    def field_applies(self, name: str, section) -> bool:
        """Whether field `name` matters given the section's values (the gate always does)."""
        return name == self.gate or self.applies is None or self.applies(name, section)
