"""Step-wise plans (Prasad et al.): stages, their fractions, epochs and multipliers, and their rules.

Pure arithmetic on a Config (no torch), so validating a config or a search space stays cheap; the
tensor side (nested subsets) is in `stepwise.py`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Optional

# The paper's named splits: A..D are 20..80% of the training set, O is all of it.
PLAN_LETTERS = {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "O": 1.0}


@dataclass(frozen=True)
class Stage:
    index: int  # 0-based
    fraction: float  # f_i
    epochs: int  # e_i
    batch_multiplier: int  # m_i: batch size B * m_i
    lr_multiplier: float  # g_i: learning rate lr * g_i
    steps: Optional[int] = None  # back-propagations of the stage when a compute budget sets them, else e_i x N


def resolve_fractions(spec) -> tuple[float, ...]:
    """A named plan ("A-B-C-D-O") or explicit fractions -> fractions; None -> (1.0,)."""
    if spec is None:
        return (1.0,)
    if isinstance(spec, str):
        letters = [s.strip().upper() for s in spec.split("-")]
        unknown = [s for s in letters if s not in PLAN_LETTERS]
        if unknown:
            raise ValueError(f"unknown split {unknown[0]!r} in {spec!r}; letters: "
                             + ", ".join(f"{k}={v}" for k, v in PLAN_LETTERS.items()))
        return tuple(PLAN_LETTERS[s] for s in letters)
    return tuple(float(f) for f in spec)


def default_batch_multipliers(fractions) -> tuple[int, ...]:
    """f_i / f_1 rounded (keeps M_i / b_i constant on the way up), 1 in the last stage: 1,2,3,4,1."""
    ms = [max(1, round(f / fractions[0])) for f in fractions[:-1]]
    return tuple(ms) + (1,)


def default_lr_multipliers(n: int) -> tuple[float, ...]:
    """Paper eq. 9: g = 1 in the first and last stage, 1 / (10 n) in between."""
    if n == 1:
        return (1.0,)
    return (1.0,) + (1.0 / (10 * n),) * (n - 2) + (1.0,)


def default_epochs(fractions, total_epochs: int, stage_ee=None) -> tuple[int, ...]:
    """Near-equal whole epochs per stage (each e or e + 1) whose plan forwards as close to `total_epochs`
    epoch-equivalents as whole epochs allow.

    `stage_ee[i]`: epoch-equivalents one epoch of stage i forwards (`stage_epoch_equivs`); None uses the
    fractions (exact when every stage's batch size divides its subset). All choices of which stages get the
    extra epoch are tried (for more than 12 stages only the last k stages); ties go to fewer extra epochs,
    then to extra epochs in later stages.
    """
    n = len(fractions)
    ee = [float(x) for x in (stage_ee if stage_ee is not None and sum(stage_ee) > 0 else fractions)]
    base = max(1, math.floor(total_epochs / sum(ee) + 1e-9))
    best = None
    for e in (base, base + 1):
        for k in range(n + 1):
            chosen = itertools.combinations(range(n), k) if n <= 12 else [tuple(range(n - k, n))]
            for extra in chosen:
                forwarded = e * sum(ee) + sum(ee[i] for i in extra)
                key = (round(abs(forwarded - total_epochs), 9), k, sorted((-i for i in extra)))
                if best is None or key < best[0]:
                    best = (key, tuple(e + (i in extra) for i in range(n)))
    return best[1]


def stage_epoch_equivs(plan: list[Stage], num_samples: int, batch_size: int) -> list[float]:
    """Epoch-equivalents one epoch of each stage forwards: floor(floor(f_i M) / b_i) x b_i / M (drop_last)."""
    return [size // (batch_size * st.batch_multiplier) * batch_size * st.batch_multiplier / num_samples
            for st, size in zip(plan, stage_sizes(num_samples, plan))]


def make_plan(cfg, num_train=None) -> list[Stage]:
    """The stage list for a Config: one stage on all data when `stepwise.fractions` is unset.

    Default stage epochs use the exact epoch-equivalents per stage epoch when `num_train` (the training
    set's size after the split) is given, as the trainer does; without it, the fractions (search side).
    """
    s = cfg.stepwise
    fractions = resolve_fractions(s.fractions)
    if cfg.compute_budget is not None:
        return [budget_stage(cfg.compute_budget, num_train, cfg.optim.batch_size)]
    if s.fractions is None:
        return [Stage(0, 1.0, cfg.epochs, 1, 1.0)]
    mults = s.batch_multipliers or default_batch_multipliers(fractions)
    lrs = s.lr_multipliers or default_lr_multipliers(len(fractions))
    epochs = s.epochs
    if epochs is None:
        stage_ee = None
        if num_train:
            ones = [Stage(i, f, 1, m, g) for i, (f, m, g) in enumerate(zip(fractions, mults, lrs))]
            stage_ee = stage_epoch_equivs(ones, num_train, cfg.optim.batch_size)
        epochs = default_epochs(fractions, cfg.epochs, stage_ee)
    return [Stage(i, f, e, m, g) for i, (f, e, m, g) in enumerate(zip(fractions, epochs, mults, lrs))]


def budget_stage(budget: float, num_train, batch_size: int) -> Stage:
    """Plain SGD for `budget` compute-equivalents: round(budget x M / B) back-propagations of B samples
    (each B / M of compute), in epochs of N = floor(M / B) steps, the last one partial; without M (the
    search side) whole epochs, ceil(budget)."""
    if not num_train:
        return Stage(0, 1.0, max(1, math.ceil(budget - 1e-9)), 1, 1.0)
    steps = max(1, round(budget * num_train / batch_size))
    per_epoch = max(1, num_train // batch_size)
    return Stage(0, 1.0, math.ceil(steps / per_epoch), 1, 1.0, steps)


def stage_sizes(num_samples: int, plan: list[Stage]) -> list[int]:
    return [math.floor(st.fraction * num_samples + 1e-9) for st in plan]


def validate(cfg) -> None:
    """Raise ValueError(key, message) pairs as UserError by the caller."""
    s = cfg.stepwise
    if s.fractions is None:
        for key in ("epochs", "batch_multipliers", "lr_multipliers"):
            if getattr(s, key) is not None:
                raise _err(f"stepwise.{key}", "needs stepwise.fractions (the splits) to be set")
        return
    try:
        fractions = resolve_fractions(s.fractions)
    except ValueError as exc:
        raise _err("stepwise.fractions", str(exc)) from None
    if not all(0 < f <= 1 for f in fractions):
        raise _err("stepwise.fractions", f"got {list(fractions)}; each fraction must be in (0, 1]")
    if any(b <= a for a, b in zip(fractions, fractions[1:])):
        raise _err("stepwise.fractions", f"got {list(fractions)}; fractions must strictly increase")
    if fractions[-1] != 1.0:
        raise _err("stepwise.fractions", f"got {list(fractions)}; the last fraction must be 1.0")
    n = len(fractions)
    for key in ("epochs", "batch_multipliers", "lr_multipliers"):  # each entry's range: the declaration's
        values = getattr(s, key)
        if values is not None and len(values) != n:
            raise _err(f"stepwise.{key}", f"has {len(values)} entries but stepwise.fractions has {n}")


def _err(key, message):
    from ...errors import UserError

    return UserError(key, message)
