"""Every corner of a space is built and validated before anything starts, and gives the budget.

E.g. `hard_batch.delta: {uniform: [0, 1]}` is rejected because 0 is not a valid delta. The budget is the
largest epoch-equivalent budget of any trial (where the last rung must fall short of).
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Iterable

from ...errors import UserError
from ...training.config import Config, apply_overrides, validate
from ...training.strategies.plan import make_plan
from .dims import Dim, is_active, sampling_order

MAX_CORNERS = 20000  # corner combinations validated exhaustively up to this many


def validate_corners(base: Config, dims: list[Dim]) -> tuple[float, list[tuple[dict, Config]]]:
    """Build and validate every combination of corner values: (the largest epoch-equivalent budget, the
    distinct corners as (active values, config)).

    Inactive parameters are skipped exactly as in a trial. Above `MAX_CORNERS` combinations, each
    dimension's corners are checked with the other dimensions at their first corner.
    """
    budget, corners = float(base.epochs), []
    for values in _corner_values(base, sampling_order(dims)):
        try:
            cfg = apply_overrides(base, values)
            validate(cfg)
        except UserError as exc:
            raise corner_error(exc, values, dims) from None
        budget = max(budget, plan_budget(cfg))
        corners.append((values, cfg))
    return budget, corners


def _corner_values(base: Config, dims: list[Dim]) -> Iterable[dict]:
    """Each distinct combination of the dimensions' corner values that a trial could apply."""
    corners = [d.corners() for d in dims]
    total = math.prod(len(c) for c in corners)
    if total <= MAX_CORNERS:
        combos: Iterable = itertools.product(*corners)
    else:
        first = [c[0] for c in corners]
        combos = (tuple(first[:i] + [v] + first[i + 1:]) for i, c in enumerate(corners) for v in c)
    seen = set()
    for combo in combos:
        values: dict = {}
        for dim, value in zip(dims, combo):
            if is_active(dim.key, values, base):
                values[dim.key] = value
        marker = json.dumps(values, sort_keys=True, default=str)
        if marker not in seen:
            seen.add(marker)
            yield values


def corner_error(exc: UserError, values: dict, dims: list[Dim]) -> UserError:
    message = str(exc)[len(exc.key) + 2:] if exc.key and str(exc).startswith(f"{exc.key}: ") else str(exc)
    by_key = {d.key: d for d in dims}
    others = {k: v for k, v in values.items() if k != exc.key}
    context = f" (with {', '.join(f'{k}={v!r}' for k, v in others.items())})" if others else ""
    if exc.key in by_key:
        dim = by_key[exc.key]
        return UserError(f"space.{exc.key}", f"{dim.describe()} allows {values[exc.key]!r}{context}: {message}")
    return UserError(exc.key, f"{message}; with space values {', '.join(f'{k}={v!r}' for k, v in values.items())}"
                     if values else message)


def plan_budget(cfg: Config) -> float:
    return float(sum(st.epochs * st.fraction for st in make_plan(cfg)))
