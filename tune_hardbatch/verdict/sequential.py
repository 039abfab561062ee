"""The confirmation's decisions, group-sequential and pure (numpy and scipy only): seeds come in a few looks,
and each comparison of the primary family stops as soon as its repeated confidence interval decides it.

- `Design`: the seeds in the order they are trained, the looks (cumulative seeds at each), the familywise
  alpha and the resolution R (the equivalence margin, points of test top-1). A fixed design is one look.
- Boundaries: an O'Brien-Fleming-type Lan-DeMets alpha-spending function (Lan & DeMets 1983),
  alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) at information fraction t = n_k / n_max, turned into
  boundaries on the z scale by the recursive numerical integration of Armitage, McPherson & Rowe (1969)
  (`z_bounds`), then into t quantiles at the look's degrees of freedom (the nominal level of the z boundary:
  `t_bound`). At one look the boundary is the plain two-sided quantile, so a fixed design is the usual test.
- Holm across the primary family, step-down within a look and across looks (Ye et al. 2013, "Holm's
  procedure in group sequential trials"): at each look the open comparisons are tested at alpha / (number
  open); each one decided (either way) frees its share for the rest, at this look and the later ones.
- A comparison decides "helps" / "hurts" when its repeated (1 - a) interval excludes 0; "equivalent" when
  its repeated (1 - 2a) interval (two one-sided tests at a, Schuirmann 1987) lies within ±R; at the last
  look what is left is "unresolved", with its interval and the difference it could have detected.
- The error term (`error_term`): the residual variance of the arms x seeds table (an additive model, arm +
  seed, fitted by least squares over the cells observed) with its degrees of freedom, when Levene's test
  (scipy) does not reject equal variances of the comparisons' paired differences and it gives more degrees
  of freedom than a comparison's own; else each comparison's own paired standard deviation (n - 1 df).

`judge` decides one look; `replay` runs every look from the values alone, so the verdict, the plan of
the next look and `--resume` all read the same decisions from the same data. The error rates are proven by
simulation (tests/verdict/test_sequential.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
from scipy import optimize
from scipy import stats as sps

from ..metrics import is_finite
from .stats import min_detectable

ALPHA = 0.05  # familywise, over the primary comparisons
POWER = 0.8  # of the difference an unresolved comparison could have detected
DECIDED = ("helps", "hurts", "equivalent")
UNRESOLVED, OPEN, NOT_JUDGED = "unresolved", "open", "not judged"
EXPLORATORY = "exploratory"  # a secondary comparison: an estimate and its interval, no words
GRID = 801  # points of the numerical integration (boundaries to ~1e-4 on the z scale)
LEVENE_ALPHA = 0.05  # equal variances are rejected below this


@dataclass(frozen=True)
class Design:
    """Seeds in training order, `looks` (cumulative seeds at each look, the last = all), familywise `alpha`
    and the resolution `margin` R (None: no equivalence decisions)."""
    seeds: tuple
    looks: tuple
    alpha: float = ALPHA
    margin: Optional[float] = None

    @property
    def fractions(self) -> tuple:
        return tuple(n / self.looks[-1] for n in self.looks)

    def seeds_at(self, look: int) -> tuple:
        """The seeds trained by look `look` (1-based)."""
        return tuple(self.seeds[: self.looks[look - 1]])


def plan_looks(max_seeds: int, looks: int) -> tuple:
    """Cumulative seeds at each of `looks` looks, evenly spaced up to `max_seeds` (12, 3: 4, 8, 12); never two
    looks at the same count, and the first at 2 seeds or more (an interval needs 2)."""
    counts = sorted({max(2, math.ceil(k * max_seeds / looks)) for k in range(1, looks + 1)})
    return tuple(n for n in counts if n <= max_seeds) or (max_seeds,)


def spent(t: float, alpha: float) -> float:
    """The O'Brien-Fleming-type Lan-DeMets spending function: alpha spent (two-sided) by fraction t."""
    if t <= 0:
        return 0.0
    return float(2 * sps.norm.sf(sps.norm.isf(alpha / 2) / math.sqrt(min(t, 1.0))))


@lru_cache(maxsize=4096)
def z_bounds(fractions: tuple, alpha: float) -> tuple:
    """Two-sided z boundaries c_k at the looks' information fractions, spending `spent(t_k) - spent(t_k-1)`
    at look k given no crossing before: the score S_k = Z_k sqrt(t_k) is a Brownian motion, so its density
    within the continuation region is carried from look to look by a Gaussian convolution on a grid."""
    bounds, before, t_prev = [], 0.0, 0.0
    grid = weights = density = None
    for t in fractions:
        target = spent(t, alpha) - before
        if grid is None:
            c = float(sps.norm.isf(target / 2)) if target > 0 else math.inf
            b = c * math.sqrt(t)
            grid, weights = _grid(b)
            density = sps.norm.pdf(grid, scale=math.sqrt(t))
        else:
            sd = math.sqrt(t - t_prev)
            mass = density * weights

            def crossing(b):
                return float(mass @ (sps.norm.cdf((-b - grid) / sd) + sps.norm.sf((b - grid) / sd))) - target

            b = math.inf if target <= 1e-15 else optimize.brentq(crossing, 1e-9, 40.0, xtol=1e-10)
            c = b / math.sqrt(t)
            new_grid, new_weights = _grid(min(b, 12.0))
            density = sps.norm.pdf((new_grid[:, None] - grid[None, :]) / sd) / sd @ mass
            grid, weights = new_grid, new_weights
        bounds.append(c)
        before, t_prev = spent(t, alpha), t
    return tuple(bounds)


def _grid(b: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on [-b, b] and their trapezoid weights."""
    grid = np.linspace(-b, b, GRID)
    w = np.full(GRID, grid[1] - grid[0])
    w[[0, -1]] /= 2
    return grid, w


@lru_cache(maxsize=65536)
def t_bound(z: float, df: float) -> float:
    """The t quantile at the nominal two-sided level of the z boundary `z`, at `df` degrees of freedom."""
    if not math.isfinite(z):
        return math.inf
    if not (df >= 1):
        return math.inf
    return float(sps.t.isf(sps.norm.sf(z), df))


@dataclass(frozen=True)
class Comparison:
    """`a` against `b` (arm labels); `primary`: carries words; `kind`: what b is to a (baseline, delta=1,
    random control, equal compute), for the words."""
    name: str
    a: str
    b: str
    primary: bool = True
    kind: str = "baseline"


def paired(values: dict, c: Comparison) -> np.ndarray:
    """The paired differences a - b over the seeds both have (finite), in seed order."""
    a, b = values.get(c.a, {}), values.get(c.b, {})
    return np.array([a[s] - b[s] for s in sorted(set(a) & set(b)) if _ok(a[s]) and _ok(b[s])], dtype=float)


def _ok(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def error_term(values: dict, comparisons: Sequence[Comparison]) -> dict:
    """{"sd_pair": the sd of one paired difference from the pooled residual (sqrt 2 x residual sd), "df",
    "levene_p"}, or {"sd_pair": NaN, ...} when the table's variances are not compatible or it has no spare
    degrees of freedom. Pooled over every arm x seed cell of `values` (arm -> {seed: value})."""
    diffs = [d for c in comparisons if len(d := paired(values, c)) >= 3]
    levene_p = float(sps.levene(*diffs, center="median").pvalue) if len(diffs) >= 2 else math.nan
    if len(diffs) >= 2 and not levene_p >= LEVENE_ALPHA:  # NaN (all constant): not compatible either
        return {"sd_pair": math.nan, "df": 0, "levene_p": levene_p}
    rss, df = _additive_residual(values)
    sd = math.sqrt(2 * rss / df) if df >= 1 else math.nan
    return {"sd_pair": sd, "df": df, "levene_p": levene_p}


def _additive_residual(values: dict) -> tuple[float, int]:
    """(residual sum of squares, residual df) of value = mean + arm + seed over the observed cells."""
    cells = [(a, s, v) for a, by_seed in values.items() for s, v in by_seed.items() if _ok(v)]
    if not cells:
        return 0.0, 0
    arms = sorted({a for a, _, _ in cells})
    seeds = sorted({s for _, s, _ in cells})
    x = np.zeros((len(cells), 1 + len(arms) + len(seeds)))
    x[:, 0] = 1
    for i, (a, s, _) in enumerate(cells):
        x[i, 1 + arms.index(a)] = 1
        x[i, 1 + len(arms) + seeds.index(s)] = 1
    y = np.array([v for _, _, v in cells])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    rank = np.linalg.matrix_rank(x)
    return float(((y - x @ coef) ** 2).sum()), int(len(cells) - rank)


def estimate(values: dict, c: Comparison, pooled: dict) -> dict:
    """Mean, standard error, df and which error term: pooled where it gives more df than the pairs' own."""
    d = paired(values, c)
    n = len(d)
    own_sd = float(d.std(ddof=1)) if n >= 2 else math.nan
    use_pooled = math.isfinite(pooled["sd_pair"]) and pooled["df"] > n - 1 and n >= 1
    sd, df = (pooled["sd_pair"], pooled["df"]) if use_pooled else (own_sd, n - 1)
    se = sd / math.sqrt(n) if n >= 1 and math.isfinite(sd) else math.nan
    return {"mean": float(d.mean()) if n else math.nan, "se": se, "sd": sd, "df": df, "n": n,
            "error": "pooled" if use_pooled else "own"}


def _interval(e: dict, z: float) -> tuple[float, float]:
    q = t_bound(z, e["df"])
    if not (math.isfinite(e["se"]) and math.isfinite(q)):
        return -math.inf, math.inf
    half = q * e["se"] if e["se"] > 0 else 0.0
    return e["mean"] - half, e["mean"] + half


def _try(design: Design, e: dict, look: int, level_alpha: float, last: bool) -> Optional[dict]:
    """The decision of one comparison at `look` at its Holm share `level_alpha`: helps/hurts, equivalent,
    unresolved (last look), or None (open). `within`: the equivalence interval lies within ±R too (both of
    the comparison's null hypotheses rejected)."""
    fr = design.fractions[:look]
    z = z_bounds(fr, level_alpha)[-1]
    low, high = _interval(e, z)
    out = {**e, "look": look, "alpha": level_alpha, "level": 1 - level_alpha, "low": low, "high": high,
           "within": False, "nominal": 2 * float(sps.norm.sf(z))}  # the boundary's nominal two-sided level
    if design.margin is not None and e["n"] >= 2 and 2 * level_alpha < 1:
        eq_low, eq_high = _interval(e, z_bounds(fr, 2 * level_alpha)[-1])
        out["within"] = -design.margin < eq_low and eq_high < design.margin
    if e["n"] >= 2 and (low > 0 or high < 0):
        return {**out, "decision": "helps" if low > 0 else "hurts"}
    if out["within"]:
        return {**out, "decision": "equivalent", "level": 1 - 2 * level_alpha, "low": eq_low, "high": eq_high}
    if last:
        return {**out, "decision": UNRESOLVED}
    return None


def detectable(d: dict) -> float:
    """The difference a decided or unresolved comparison could detect at the look it ended: the minimum
    detectable difference (80% power) of a fixed test at that look's boundary's nominal level, with its n,
    sd and df (the earlier looks only add power, so this errs on the large side). NaN: not tested."""
    if not (d.get("n", 0) >= 2 and is_finite(d.get("nominal")) and is_finite(d.get("sd"))):
        return math.nan
    return min_detectable(d["n"], d["sd"], d["nominal"], POWER, df=d["df"])


def judge(design: Design, values: dict, comparisons: Sequence[Comparison], look: int, before: dict) -> dict:
    """The decisions after look `look` (1-based): `before` (name -> decision of the looks before) and, for
    the open primary comparisons, this look's, Holm step-down at `design.alpha`. `values`: arm -> {seed:
    value} restricted to the look's seeds. Each decision: decision, look, n, mean, se, sd, df, error
    (pooled | own), alpha (its Holm share), level and [low, high] (the repeated interval it rests on).

    Holm's shares come from closed testing over both null hypotheses of each comparison (no difference;
    a difference of R or more): a comparison frees its share only when both are rejected ("helps" with its
    equivalence interval within ±R too), so without a resolution every "helps"/"hurts" frees it, and with
    one almost none does (Bonferroni): letting any decision free it does not hold the familywise error of
    "equivalent" (tests/verdict/test_sequential.py). A comparison with fewer than 2 paired seeds is not tested and takes no
    share; at the last look it is "not judged"."""
    primary = [c for c in comparisons if c.primary]
    pooled = error_term(values, primary)
    out = dict(before)
    last = look == len(design.looks)
    judged = [c for c in primary if len(paired(values, c)) >= 2]  # fewer pairs: no test, no share of alpha

    def holding() -> int:  # comparisons that still hold an unrejected null hypothesis
        return sum(1 for c in judged if not (c.name in out and _resolved(design, out[c.name])))

    count = holding()
    while count:
        decided = {c.name: d for c in judged if c.name not in out
                   if (d := _try(design, estimate(values, c, pooled), look, design.alpha / count, False))}
        out.update(decided)
        if not decided or holding() == count:
            break
        count = holding()
    if last:
        out.update({c.name: _try(design, estimate(values, c, pooled), look, design.alpha / max(1, count), True)
                    for c in judged if c.name not in out})
        out.update({c.name: {**estimate(values, c, pooled), "decision": NOT_JUDGED, "look": look, "level": math.nan,
                             "low": math.nan, "high": math.nan, "alpha": math.nan, "within": False}
                    for c in primary if c.name not in out})
    return out


def _resolved(design: Design, d: dict) -> bool:
    """Both of a decided comparison's null hypotheses are rejected (only "no difference" without a margin)."""
    return d["decision"] in ("helps", "hurts") and (design.margin is None or d.get("within", False))


def restrict(values: dict, seeds: Sequence) -> dict:
    """`values` (arm -> {seed: value}) on `seeds` only."""
    keep = set(seeds)
    return {a: {s: v for s, v in by_seed.items() if s in keep} for a, by_seed in values.items()}


def replay(design: Design, values: dict, comparisons: Sequence[Comparison], looks: int) -> dict:
    """The decisions after the first `looks` looks, each judged on the seeds it had."""
    decided: dict = {}
    for k in range(1, looks + 1):
        decided = judge(design, restrict(values, design.seeds_at(k)), comparisons, k, decided)
    return decided


def trace(design: Design, values: dict, comparisons: Sequence[Comparison], looks: int) -> list[dict]:
    """Per look judged, per primary comparison: n, mean and the repeated interval at its Holm share there,
    and its decision (open until decided; a decided one appears at its look only): the looks' plot."""
    out, decided = [], {}
    for k in range(1, looks + 1):
        values_k = restrict(values, design.seeds_at(k))
        decided = judge(design, values_k, comparisons, k, decided)
        primary = [c for c in comparisons if c.primary]
        pooled = error_term(values_k, primary)
        holding = sum(1 for c in primary if not (c.name in decided and _resolved(design, decided[c.name])))
        share = design.alpha / max(1, holding)
        row = {}
        for c in primary:
            d = decided.get(c.name)
            if d is not None and d["look"] < k:
                continue
            if d is None:
                e = estimate(values_k, c, pooled)
                low, high = _interval(e, z_bounds(design.fractions[:k], share)[-1])
                d = {**e, "low": low, "high": high, "decision": OPEN}
            row[c.name] = {key: d[key] for key in ("n", "mean", "low", "high", "decision")}
        out.append({"look": k, "seeds": design.looks[k - 1], "comparisons": row})
    return out


def needed(comparisons: Sequence[Comparison], decided: dict) -> list[str]:
    """The arms the next look trains: those of an open primary comparison (in first-seen order)."""
    out: list[str] = []
    for c in comparisons:
        if c.primary and c.name not in decided:
            out += [x for x in (c.a, c.b) if x not in out]
    return out


def raw_interval(e: dict, level: float = 0.95) -> tuple[float, float]:
    """The plain (unadjusted, not repeated) `level` t-interval of an estimate: mean ± t(df) se."""
    if not (e.get("df", 0) >= 1 and math.isfinite(e.get("se", math.nan))):
        return math.nan, math.nan
    half = float(sps.t.isf((1 - level) / 2, e["df"])) * e["se"]
    return e["mean"] - half, e["mean"] + half


def exploratory(values: dict, c: Comparison, pooled: dict, level: float = 0.95) -> dict:
    """A secondary comparison: its estimate over every common seed and a plain `level` t-interval, no words."""
    e = estimate(values, c, pooled)
    low, high = raw_interval(e, level)
    return {**e, "decision": EXPLORATORY, "level": level, "low": low, "high": high}


def fixed_seeds_for(sd: float, margin: float, alpha: float, power: float = POWER, df_extra: int = 0,
                    limit: int = 10_000) -> float:
    """The seeds a fixed design needs for its minimum detectable difference (two-sided at `alpha`, `power`)
    to be at most `margin`, at paired sd `sd`; `df_extra`: the df a pooled error term adds. NaN: unknown sd."""
    if not (math.isfinite(sd) and margin and margin > 0):
        return math.nan
    n = 2
    while n <= limit:
        if min_detectable(n, sd, alpha, power, df=n - 1 + df_extra) <= margin:
            return float(n)
        n = n + 1 if n < 64 else int(n * 1.1)
    return math.inf
