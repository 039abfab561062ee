"""One space-filling design over the shared dimensions: the values every arm's k-th start-up trial takes.

With declared arms each arm has its own sampler; arms that search more dimensions use their random stream
differently, so a common seed alone does not give their start-up trials the same learning rates. Instead
the search draws one design, once, from `search.seed`, and every arm's k-th start-up trial takes its point
k for the shared dimensions (the `space` section); each arm's own dimensions stay its sampler's. A
difference between arms is then not a difference in the learning rates they happened to try.

The design is a scrambled Sobol' sequence (`scipy.stats.qmc.Sobol`), not a Latin hypercube: a Sobol'
sequence is extensible, so its point k is the same whatever the number of points drawn, and every prefix
of 2^m points is a (t, m, s)-net (one point per 2^-m-wide stratum of each coordinate, and in the first two
coordinates one per elementary box). A Latin hypercube's strata are 1/n wide: its k-th point depends on n,
so a design for n start-up trials would not agree with one for n + 1. Scrambling (scipy's linear matrix
scramble plus a digital shift, seeded) keeps the net property, removes the unscrambled sequence's corner
point 0 and makes the values a seeded draw.

Each unit coordinate becomes its dimension's value, encoded as the dimension's Optuna sampler produces it
(`Dim.suggest`): uniform a float in [low, high]; loguniform a float, evenly spread in log; int an int on
the grid low, low + step, ..., high; choice one of its encoded `values` (a list is its JSON string). Grid
dimensions are enumerated by the grid searcher, never sampled: they take no part.

Pure: numpy and scipy only.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import numpy as np

from .dims import Dim

SAMPLED_KINDS = ("uniform", "loguniform", "int", "choice")


def sampled_dims(dims: Iterable[Dim]) -> list[Dim]:
    """The dimensions a design covers, in the given order (every kind but grid)."""
    return [d for d in dims if d.kind in SAMPLED_KINDS]


def shared_design(dims: Iterable[Dim], n: int, seed: Optional[int]) -> list[dict]:
    """`n` points (dimension key -> encoded value), point k for start-up trial k.

    Deterministic for (dims, n, seed) (seed None: a fresh draw), and point k does not depend on `n`: the
    first n points of the seeded sequence. An empty dict per point when no dimension is sampled."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    dims = sampled_dims(dims)
    if not dims:
        return [{} for _ in range(n)]
    unit = unit_points(len(dims), n, seed)
    return [{d.key: unit_value(d, float(u)) for d, u in zip(dims, row)} for row in unit]


def unit_points(d: int, n: int, seed: Optional[int]) -> np.ndarray:
    """The first `n` points of a scrambled Sobol' sequence in [0, 1)^d, shape (n, d).

    Drawn as a power-of-two block (the sizes at which Sobol' points are balanced, and scipy's supported
    way to draw them) and cut to n: the sequence is the same for every block size, so row k is too."""
    from scipy.stats import qmc

    if n == 0:
        return np.empty((0, d))
    sobol = qmc.Sobol(d, scramble=True, rng=np.random.default_rng(seed))
    return sobol.random_base2(math.ceil(math.log2(n)))[:n]


def unit_value(dim: Dim, u: float):
    """Dimension `dim`'s value at unit coordinate u in [0, 1), encoded as its sampler gives it."""
    if dim.kind == "uniform":
        return _clip(dim.low + u * (dim.high - dim.low), dim.low, dim.high)
    if dim.kind == "loguniform":
        log_low, log_high = math.log(dim.low), math.log(dim.high)
        return _clip(math.exp(log_low + u * (log_high - log_low)), dim.low, dim.high)
    if dim.kind == "int":
        step = dim.step or 1
        return int(dim.low + _index(u, (dim.high - dim.low) // step + 1) * step)
    if dim.kind == "choice":
        return dim.values[_index(u, len(dim.values))]
    raise ValueError(f"{dim.key}: a {dim.kind} dimension is not sampled; allowed: {', '.join(SAMPLED_KINDS)}")


def _index(u: float, count: int) -> int:
    """Equal-width stratum of [0, 1) that u falls in, of `count`."""
    return min(int(u * count), count - 1)


def _clip(value: float, low: float, high: float) -> float:
    # exp(log(high)) and low + u * (high - low) can round past a bound, which Optuna would warn is out of range
    return float(min(max(value, low), high))
