"""Search dimensions and trial configs: what a trial samples and the training config it becomes.

A `Dim` is one dotted config key with one distribution. Choice and grid values are encoded for Optuna
(explicit lists become JSON strings). A strategy's parameters apply as its declaration says
(`Declaration.applies`: `trim.*` only when `trim.schedule` is not none, `trim.p_start` not for `constant`,
`trim.step_at` only for `step`; `stepwise.*` only when `stepwise.fractions` is set); its gate is sampled
before them, and parameters that do not apply are never applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Union

from ...errors import UserError
from ...training.config import Config, apply_overrides, base_config, validate
from ...training.strategies import registry
from ...training.strategies.labels import strategy_family, strategy_name


@dataclass(frozen=True)
class Dim:
    """One search dimension. `values` hold choice/grid values encoded for Optuna (lists -> JSON strings)."""

    key: str
    kind: str  # uniform | loguniform | int | choice | grid
    low: Any = None
    high: Any = None
    step: Optional[int] = None
    values: tuple = ()

    def describe(self) -> str:
        if self.kind in ("choice", "grid"):
            return f"{self.kind} {json.dumps([decode(v) for v in self.values])}"
        args = [self.low, self.high] + ([self.step] if self.step not in (None, 1) else [])
        return f"{self.kind} {args}"

    def corners(self) -> list:
        """Decoded values that bound what this dimension can produce (every value of a choice/grid)."""
        if self.kind in ("choice", "grid"):
            return [decode(v) for v in self.values]
        if self.kind == "int":
            top = self.low + (self.high - self.low) // (self.step or 1) * (self.step or 1)
            return [self.low, top]
        return [self.low, self.high]

    def suggest(self, trial):
        """Optuna define-by-run sampling (the value stays encoded)."""
        if self.kind == "uniform":
            return trial.suggest_float(self.key, self.low, self.high)
        if self.kind == "loguniform":
            return trial.suggest_float(self.key, self.low, self.high, log=True)
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1)
        return trial.suggest_categorical(self.key, list(self.values))


def encode(value):
    """Optuna categoricals hold scalars only: an explicit list becomes its JSON string ('[0.5, 1.0]')."""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return value


def decode(value):
    """Inverse of `encode` (named step-wise plans never start with '[')."""
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value


def sampling_order(dims: Iterable[Dim]) -> list[Dim]:
    """Gate keys (trim.schedule, stepwise.fractions, ...) first: the others' activity depends on them."""
    dims, gates = list(dims), registry.gate_keys()
    return [d for d in dims if d.key in gates] + [d for d in dims if d.key not in gates]


def is_active(key: str, values: dict, base: Config) -> bool:
    """Whether a parameter matters given the (decoded) values sampled so far and the base config."""
    return registry.applies(key, values, base)


def active_params(params: dict, dims: Iterable[Dim], base: Config) -> dict:
    """The dimensions of a trial's params that apply (in dimension order), values still encoded."""
    out, decoded = {}, {}
    for dim in sampling_order(dims):
        if dim.key in params and is_active(dim.key, decoded, base):
            out[dim.key] = params[dim.key]
            decoded[dim.key] = decode(params[dim.key])
    return {d.key: out[d.key] for d in dims if d.key in out}


def trial_config(base: Union[Config, dict], params: dict, dims: Iterable[Dim]) -> Config:
    """The training config of one trial: `apply_overrides(base, active params)`, then `validate`."""
    base_cfg = base_config(base) if isinstance(base, dict) else base
    active = active_params(params, dims, base_cfg)
    cfg = apply_overrides(base_cfg, {k: decode(v) for k, v in active.items()})
    validate(cfg)
    return cfg


def baseline_points(dims: list[Dim], base_flat: dict) -> list[dict]:
    """The searcher's first trials: plain SGD (every searched strategy off) and, when the space has it,
    delta = 1, each with the other parameters sampled. A joint search may otherwise never try the
    baseline that the verdict compares every strategy with. [] when the space cannot turn them off."""
    by_key = {d.key: d for d in dims}
    point = {}
    for key, offs in registry.off_values().items():
        dim = by_key.get(key)
        if dim is None:
            continue
        offered = [decode(v) for v in dim.values] if dim.kind in ("choice", "grid") else []
        found = [v for v in offs if v in offered]  # the "off" values the dimension offers, first preferred
        if not found:
            return []
        point[key] = encode(found[0])
    if not point or strategy_name(trial_config(base_flat, point, dims)) != "plain":
        return []
    delta = by_key.get("hard_batch.delta")
    if delta is not None and 1.0 in [decode(v) for v in delta.values]:
        return [point, {**point, "hard_batch.delta": 1.0}]
    return [point]


class DefineByRun:
    """Optuna define-by-run space: samples gate keys first and a strategy's parameters only when it is on.

    A picklable object (Ray saves the searcher for --resume). The strategy label is not part of a trial's
    config (Ray restores unresolved `sample_from` values as placeholders): `StrategyLabel` derives it.
    """

    def __init__(self, dims: list[Dim], base_flat: dict):
        self.dims = dims
        self.base_flat = base_flat
        self._base = None

    def __getstate__(self):
        return {"dims": self.dims, "base_flat": self.base_flat}

    def __setstate__(self, state):
        self.__init__(state["dims"], state["base_flat"])

    def base(self) -> Config:
        if self._base is None:
            self._base = base_config(self.base_flat)
        return self._base

    def __call__(self, trial) -> dict:
        base, decoded, params = self.base(), {}, {}
        for dim in sampling_order(self.dims):
            if is_active(dim.key, decoded, base):
                params[dim.key] = dim.suggest(trial)
                decoded[dim.key] = decode(params[dim.key])
        return None


class StrategyLabel:
    """`labels.strategy_name` of a trial's sampled params (the live view, results, report), and with `both`
    its family (`labels.strategy_family`: what the trial is compared as)."""

    def __init__(self, dims: list[Dim], base_flat: dict):
        self.dims = dims
        self.base_flat = base_flat

    def __call__(self, config: dict) -> str:
        return self.both(config)[0]

    def both(self, config: dict) -> tuple[str, str]:
        """(label, family); ("invalid", "invalid") when the params make no valid config."""
        params = {d.key: config[d.key] for d in self.dims if d.key in config}
        try:
            cfg = trial_config(self.base_flat, params, self.dims)
        except UserError:
            return "invalid", "invalid"
        return strategy_name(cfg), strategy_family(cfg)
