"""The `space` section: each dotted config key with exactly one distribution, checked against its field.

    optim.lr: {loguniform: [0.01, 0.3]}         # low > 0, low < high
    trim.p_end: {uniform: [0.1, 0.8]}           # low < high
    optim.batch_size: {int: [32, 128, 32]}      # [low, high] or [low, high, step]; high - low a multiple of step
    hard_batch.delta: {choice: [null, 1.0, 0.5]}  # non-empty, no duplicates
    stepwise.fractions: {choice: [null, A-C-O, [0.5, 1.0]]}  # named plans or explicit lists
    seed: {grid: [0, 1, 2]}                     # every value once (searcher random or grid only)
"""

from __future__ import annotations

import typing

from ...errors import UserError
from ...metrics import is_finite
from ...training.config import Config, all_keys, apply_overrides, closest
from .dims import Dim, decode, encode
from .schema import KINDS

USAGE = "one of {uniform: [low, high]}, {loguniform: [low, high]}, {int: [low, high(, step)]}, " \
        "{choice: [values]}, {grid: [values]}"


def parse_dims(space, searcher: str) -> list[Dim]:
    if space is None:
        space = {}
    if not isinstance(space, dict):
        raise UserError("space", f"must be a mapping of dotted config keys to distributions, "
                        f"got {type(space).__name__}")
    probe = Config()
    config_keys = all_keys()
    dims = []
    for key, spec in space.items():
        where = f"space.{key}"
        if key not in config_keys:
            hint = closest(key, config_keys)
            raise UserError(where, f"unknown config key; {f'did you mean space.{hint}? ' if hint else ''}"
                            f"allowed: {', '.join(config_keys)}")
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise UserError(where, f"got {spec!r}; allowed: {USAGE}")
        kind, args = next(iter(spec.items()))
        if kind in ("choice", "grid"):
            dims.append(_parse_values(key, kind, args))
        else:
            dims.append(_parse_range(key, kind, args))
        dim = dims[-1]
        if searcher == "optuna" and kind == "grid":
            raise UserError(where, "grid needs search.searcher random or grid (Optuna samples: use choice, "
                            "or searcher grid for a full table); allowed with optuna: uniform, loguniform, "
                            "int, choice")
        if searcher == "grid" and kind not in ("grid", "choice"):
            raise UserError(where, f"the grid searcher needs grid or choice values, got {dim.describe()}; "
                            "allowed: grid, choice (or search.searcher optuna/random)")
        if kind in ("uniform", "loguniform"):
            try:  # the field must take non-integer floats
                apply_overrides(probe, {key: 0.5})
            except UserError:
                raise UserError(where, f"{kind} gives non-integer values but {key} takes "
                                f"{_type_name(probe, key)}; allowed here: int, choice, grid") from None
        elif kind == "int":
            try:
                apply_overrides(probe, {key: 1})
            except UserError:
                raise UserError(where, f"int gives integers but {key} takes {_type_name(probe, key)}; "
                                "allowed here: choice, grid") from None
    return dims


def _type_name(cfg, key) -> str:
    section, _, name = key.rpartition(".")
    owner = type(getattr(cfg, section)) if section else type(cfg)
    hint = typing.get_type_hints(owner).get(name)
    return str(hint).replace("typing.", "") if hint is not None else "?"


def _parse_range(key: str, kind: str, args) -> Dim:
    where = f"space.{key}"
    shape = "[low, high] or [low, high, step] (integers)" if kind == "int" else "[low, high]"
    if not isinstance(args, list) or len(args) not in ((2, 3) if kind == "int" else (2,)):
        raise UserError(where, f"{kind} got {args!r}; allowed: {shape}")
    if kind == "int":
        if not all(is_int(a) for a in args):
            raise UserError(where, f"int got {args!r}; allowed: integers {shape}")
        low, high = args[0], args[1]
        step = args[2] if len(args) == 3 else None
        if step is not None and step < 1:
            raise UserError(where, f"int step got {step}; allowed: an integer >= 1")
        if low >= high:
            raise UserError(where, f"int low {low} >= high {high}; allowed: low < high")
        if step is not None and (high - low) % step:
            raise UserError(where, f"int [{low}, {high}, {step}]: high - low must be a multiple of the step; "
                            f"allowed e.g. high = {low + (high - low) // step * step}")
        return Dim(key, kind, low, high, step)
    if not all(is_finite(a) for a in args):
        raise UserError(where, f"{kind} got {args!r}; allowed: two finite numbers {shape}")
    low, high = float(args[0]), float(args[1])
    if low >= high:
        raise UserError(where, f"{kind} low {args[0]} >= high {args[1]}; allowed: low < high "
                        "(use choice for a single value)")
    if kind == "loguniform" and low <= 0:
        raise UserError(where, f"loguniform low {args[0]} <= 0; allowed: 0 < low < high")
    return Dim(key, kind, low, high)


def _parse_values(key: str, kind: str, args) -> Dim:
    where = f"space.{key}"
    if not isinstance(args, list) or not args:
        raise UserError(where, f"{kind} got {args!r}; allowed: a non-empty list of values")
    values = []
    for v in args:
        if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v)):
            raise UserError(where, f"{kind} value {v!r}; allowed: null, numbers, strings, booleans or "
                            "flat lists (e.g. step-wise fractions)")
        values.append(encode(v))
    seen = set()
    for v in values:
        marker = (type(v).__name__ if v is not None else "null", v)
        if marker in seen or (v in seen):
            raise UserError(where, f"{kind} lists {decode(v)!r} twice; allowed: distinct values")
        seen.add(marker)
        seen.add(v)
    return Dim(key, kind, values=tuple(values))


def dim_raw(d: Dim):
    if d.kind in ("choice", "grid"):
        return {d.kind: [decode(v) for v in d.values]}
    return {d.kind: [d.low, d.high] + ([d.step] if d.step is not None else [])}


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
