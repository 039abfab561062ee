"""The `arms` section: the arms a search compares, each tuned alike.

    space:                      # shared: searched the same way in every arm
      optim.lr: {loguniform: [0.05, 0.8]}
    arms:                       # name -> its fixed part and the dimensions only it searches
      plain: {}
      delta=1: {fixed: {hard_batch.delta: 1.0}}
      delta<1: {space: {hard_batch.delta: {choice: [0.5, 0.3]}}}
      trim: {fixed: {trim.schedule: linear}, space: {trim.p_end: {uniform: [0.3, 0.8]}}}
    search: {trials_per_arm: 4}  # every arm gets exactly this many trials, its own sampler and early stopper

A trial of an arm has the config `{"arm": name, **fixed, **sampled}`: its training config is the base
with the fixed part and the sampled values applied. The space's `dims` (`union_dims`) hold one dimension
per key any arm sets, so every reader of a trial's params (labels, results, importances) works unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...errors import UserError
from ...files import as_text
from ...training.config import all_keys, closest, flatten
from .dims import Dim, decode, encode
from .distributions import parse_dims
from .names import check_arm_names

ARM_KEY = "arm"  # a search trial's config names its arm under this key
ARM_KEYS = ("fixed", "space")


@dataclass(frozen=True)
class Arm:
    """One arm: its name, fixed part (dotted key -> encoded value), the shared dimensions and its own."""

    name: str
    fixed: dict
    shared: tuple
    own: tuple

    @property
    def dims(self) -> list[Dim]:
        return [*self.shared, *self.own]

    @property
    def fixed_values(self) -> dict:
        """The fixed part, decoded (a step-wise plan as its list)."""
        return {k: decode(v) for k, v in self.fixed.items()}

    def base_flat(self, base_flat: dict) -> dict:
        """The search's base with this arm's fixed part applied."""
        return {**base_flat, **self.fixed_values}

    def config(self, sampled: dict) -> dict:
        """A trial's Ray config: the arm's name, its fixed part and the values its sampler drew."""
        return {ARM_KEY: self.name, **self.fixed, **sampled}


def parse_arms(raw, shared: list[Dim], searcher: str) -> list[Arm]:
    """The `arms` section (None: no arms) checked: names, fixed keys and values' keys, own dimensions."""
    if raw is None:
        return []
    if not isinstance(raw, dict) or not raw:
        raise UserError("arms", "must be a mapping of arm names to {fixed: {...}, space: {...}} (at least one)")
    if searcher == "grid":
        raise UserError("arms", "declared arms need search.searcher optuna or random (each arm gets its own "
                        "sampler); a grid's rows are its arms already: put the strategies in the grid")
    shared_keys = {d.key for d in shared}
    _no_grid(shared, "space")
    arms = []
    check_arm_names([as_text(name) for name in raw])
    for name, body in raw.items():
        name = as_text(name)  # a key from Python rather than a file: 0.5 is the arm "0.5"
        where = f"arms.{name}"
        body = {} if body is None else body
        if not isinstance(body, dict) or any(k not in ARM_KEYS for k in body):
            bad = next((k for k in body if k not in ARM_KEYS), None) if isinstance(body, dict) else None
            raise UserError(f"{where}.{bad}" if bad else where, f"allowed keys: {', '.join(ARM_KEYS)}")
        fixed = _fixed(body.get("fixed"), f"{where}.fixed")
        own = _own_dims(body.get("space"), searcher, where)
        _no_grid(own, f"{where}.space")
        for key in [*fixed, *(d.key for d in own)]:
            if key in shared_keys:
                raise UserError(f"{where}.{key}", "already in the shared space section (searched in every arm "
                                "alike); allowed: keys the shared space does not search")
        overlap = set(fixed) & {d.key for d in own}
        if overlap:
            key = sorted(overlap)[0]
            raise UserError(f"{where}.space.{key}", "also in this arm's fixed part; allowed: one of the two")
        arms.append(Arm(name, fixed, tuple(shared), tuple(own)))
    return arms


def _no_grid(dims: list[Dim], where: str) -> None:
    grid = next((d for d in dims if d.kind == "grid"), None)
    if grid is not None:
        raise UserError(f"{where}.{grid.key}", "grid with declared arms: each arm's sampler draws its "
                        "trials; allowed: uniform, loguniform, int, choice (or a fixed value per arm)")


def _fixed(raw, where: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(where, f"must be a mapping of dotted config keys to values, got {type(raw).__name__}")
    flat, keys = flatten(raw, where=f"{where}."), all_keys()
    for key in flat:
        if key not in keys:
            hint = closest(key, keys)
            raise UserError(f"{where}.{key}", f"unknown config key; {f'did you mean {hint}? ' if hint else ''}"
                            f"allowed: {', '.join(keys)}")
    return {k: encode(v) for k, v in flat.items()}


def _own_dims(raw, searcher: str, where: str) -> list[Dim]:
    try:
        return parse_dims(raw, searcher)
    except UserError as exc:
        message = str(exc)[len(exc.key) + 2:] if exc.key and str(exc).startswith(f"{exc.key}: ") else str(exc)
        raise UserError(f"{where}.{exc.key}", message) from None


def union_dims(shared: list[Dim], arms: list[Arm]) -> list[Dim]:
    """One dimension per key a trial of any arm may carry: a shared or arm's own dimension as it is, a key
    fixed in some arms (or searched in several) as a choice over every value it takes."""
    dims = {d.key: d for d in shared}
    sources: dict[str, list] = {}
    for arm in arms:
        for key, value in arm.fixed.items():
            sources.setdefault(key, []).append(value)
        for d in arm.own:
            sources.setdefault(d.key, []).append(d)
    for key, found in sources.items():
        dims[key] = found[0] if len(found) == 1 and isinstance(found[0], Dim) else _choice(key, found)
    return list(dims.values())


def _choice(key: str, found: list) -> Dim:
    continuous = [d for d in found if isinstance(d, Dim) and d.kind not in ("choice", "grid")]
    if continuous:  # its range describes the key; fixed values outside it are read as they are
        return continuous[0]
    values: list = []
    for item in found:
        for v in (item.values if isinstance(item, Dim) else (item,)):
            if v not in values:
                values.append(v)
    return Dim(key, "choice", values=tuple(values))


def arm_summary(arm: Arm) -> str:
    """'fixed trim.schedule=linear; searches trim.p_end uniform [0.3, 0.8]' (MLflow params, the header)."""
    parts = [f"fixed {', '.join(f'{k}={v}' for k, v in arm.fixed_values.items())}" if arm.fixed else "",
             f"searches {', '.join(f'{d.key} {d.describe()}' for d in arm.own)}" if arm.own else ""]
    return "; ".join(p for p in parts if p) or "the base config"


def arm_of(params: dict) -> Optional[str]:
    """The arm a trial's config names (None: a search without declared arms)."""
    value = params.get(ARM_KEY)
    return value if isinstance(value, str) else None


class TrialLabel:
    """What the live view calls a search trial: its declared arm, else its strategy label."""

    def __init__(self, strategy_label):
        self.strategy_label = strategy_label

    def __call__(self, config: dict) -> str:
        return arm_of(config) or self.strategy_label(config)
