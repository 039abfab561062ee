"""Synchronous successive halving, the policy: where the rungs fall, and what each rung decides.

Every group of trials (a declared arm, or the whole search without arms) climbs the same rungs. A rung at
milestone m (compute in epoch-equivalents, Ray's `asha_time`) records each entrant's search metric at its
first report that reaches m; it decides only once every entrant has recorded there or ended (a diverged or
failed trial enters as the worst: it cannot go on): the best `max(1, n // eta)` of its n entrants go on, the
others stop. A trial that arrives early waits (Ray pauses it from its checkpoint), so no trial
passes a rung for arriving first, whatever the start order. A rung with fewer than `eta` entrants would
compare nothing: it and the rungs after it are not climbed, so a group of fewer than `eta` trials is not
early-stopped at all.

Rung placement (`first_useful`): no rung falls before a step-wise plan's last stage has begun, nor while
the learning rate is above half its peak (inside a warm-up, or near the peak after it), where a value ranks
learning rates by how they fare at the peak, or plans by a subset, not by how they end (measured: see
`high_rate_share`). The first rung is the grace period moved past that
point, the next ones `eta` times further, all below the budget.

`Ladder` is one group's state, plain data that `to_dict`/`from_dict` keep in a file: the Ray scheduler
(`ray_backend/halving.py`) acts on its answers and saves it after every change, so a driver killed and
resumed goes on with the same rungs. Pure: no Ray, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..metrics import is_finite

CONTINUE, WAIT, STOP = "continue", "wait", "stop"
EPS = 1e-9


def first_useful(cfg) -> float:
    """Epoch-equivalents before which a config's values do not predict its end: its last stage's start (each
    stage restarts its schedule on a subset) plus the share of that stage in which the learning rate is
    above half its peak (`high_rate_share`)."""
    from ..training.strategies.plan import make_plan

    plan = make_plan(cfg)
    start = float(sum(st.epochs * st.fraction for st in plan[:-1]))
    last = plan[-1].epochs * plan[-1].fraction
    return start + high_rate_share(cfg.optim.schedule, cfg.optim.warmup) * last


def high_rate_share(schedule: str, warmup: float, steps: int = 1000) -> float:
    """The share of a stage after which its schedule keeps the learning rate at or below half its peak (0 for
    a schedule that never decays): one-cycle 0.625 at warm-up 0.25, cosine and step 0.5.

    Why half the peak, not the warm-up's end: measured (BENCHMARKS.md, bench_tuning), values taken while the
    rate is near its peak rank configurations close to backwards against their ends (Spearman rho of about
    -0.3 to 0.1 at 2 of 6 epoch-equivalents of one-cycle, just past its warm-up; 0.6 once the rate has
    halved), and a rung there stopped an arm's best configuration (3.7 points of regret)."""
    from ..training.schedules import LR_SCHEDULES

    rate = LR_SCHEDULES[schedule]
    values = [rate(i / steps, warmup) for i in range(steps + 1)]
    peak = max(values)
    above = [i for i, v in enumerate(values) if v > peak / 2 + EPS]
    if len(above) == len(values):
        return 0.0  # constant: a value now is a value at the end's rate
    return (above[-1] + 1) / steps if above else 0.0


def first_rung(grace_period, useful: float) -> float:
    """The first rung: the grace period (None: 1 epoch-equivalent) moved past where values predict the end."""
    return max(1.0 if grace_period is None else float(grace_period), useful)


def milestones(first: float, eta: float, budget: float) -> tuple[float, ...]:
    """The rung milestones `first * eta**k` below the budget."""
    out, m = [], first
    while m < budget - EPS:
        out.append(round(m, 6))
        m *= eta
    return tuple(out)


def keep(n: int, eta: float) -> int:
    """Entrants that go on from a rung of `n`."""
    return max(1, int(math.floor(n / eta + EPS)))


def entrants(size: int, eta: float, rungs: int) -> list[int]:
    """Entrants of each rung climbed by a group of `size` trials (rungs with fewer than `eta` are not)."""
    out, n = [], size
    for _ in range(rungs):
        if n < eta - EPS:
            break
        out.append(n)
        n = keep(n, eta)
    return out


@dataclass
class Ladder:
    """One group's rungs: the values recorded at each, and each decided rung's survivors."""

    size: int  # trials the group will have
    milestones: tuple  # the climbed rungs' milestones
    eta: float
    mode: str  # max | min
    members: list = field(default_factory=list)  # trial ids in start order (breaks ties)
    values: list = field(default_factory=list)  # rung k: {trial id: value or None}
    survivors: list = field(default_factory=list)  # rung k: [trial ids] once decided, else None
    ended: list = field(default_factory=list)  # trial ids that ended (finished, stopped, diverged, failed)

    def __post_init__(self):
        self.milestones = tuple(self.milestones[:len(entrants(self.size, self.eta, len(self.milestones)))])
        self.values = self.values or [{} for _ in self.milestones]
        self.survivors = self.survivors or [None for _ in self.milestones]

    def add(self, tid: str) -> None:
        if tid not in self.members:
            self.members.append(tid)

    def arrive(self, tid: str, time: float, value) -> tuple[str, list]:
        """A report of trial `tid` at compute `time` with the metric `value`: (its fate, newly decided rungs
        as (k, survivors, losers))."""
        self.add(tid)
        k = self._due(tid, time)
        if k is not None:
            self.values[k][tid] = float(value) if is_finite(value) else None
        decided = self.settle()
        return self.fate(tid, time), decided

    def fate(self, tid: str, time: float) -> str:
        """CONTINUE, WAIT (recorded at an undecided rung) or STOP (lost a rung) at compute `time`."""
        for k, m in enumerate(self.milestones):
            if time < m - EPS or tid not in self.values[k]:
                return CONTINUE
            if self.survivors[k] is None:
                return WAIT
            if tid not in self.survivors[k]:
                return STOP
        return CONTINUE

    def end(self, tid: str) -> list:
        """Trial `tid` ended: it enters every rung it was due at as the worst; newly decided rungs."""
        self.add(tid)
        if tid not in self.ended:
            self.ended.append(tid)
        return self.settle()

    def forget(self, tid: str) -> list:
        """A trial that no longer exists: suggested by a driver killed before Ray's snapshot held it, so the
        resumed search suggests another in its place. It leaves every rung; a rung decided with it decides
        again (and the rungs after it) once its replacement is in. Newly decided rungs."""
        entered = [k for k, v in enumerate(self.values) if tid in v]
        for values in self.values:
            values.pop(tid, None)
        for group in (self.members, self.ended):
            if tid in group:
                group.remove(tid)
        for k in range(min(entered, default=len(self.survivors)), len(self.survivors)):
            self.survivors[k] = None
        return self.settle()

    def settle(self, force: bool = False) -> list:
        """Decide every rung whose entrants are all in (`force`: the ones in now, when no other can come)."""
        decided = []
        for k in range(len(self.milestones)):
            if self.survivors[k] is not None:
                continue
            present = self._present(k)
            expected = self.size if k == 0 else len(self.survivors[k - 1] or [])
            if k > 0 and self.survivors[k - 1] is None:
                break
            if len(present) < expected and not (force and present):
                break
            ranked = sorted(present, key=lambda t: self._rank(t, k))
            self.survivors[k] = ranked[:keep(len(present), self.eta)] if len(present) >= self.eta else ranked
            decided.append((k, list(self.survivors[k]), ranked[len(self.survivors[k]):]))
        return decided

    def waiting(self) -> list[str]:
        """Trials recorded at a rung not yet decided."""
        return [t for k, s in enumerate(self.survivors) if s is None for t in self.values[k]]

    def _due(self, tid: str, time: float) -> Optional[int]:
        """The rung this report records `tid` at: the first it has reached, is entitled to and has no value at."""
        for k, m in enumerate(self.milestones):
            if time < m - EPS:
                return None
            if tid not in self.values[k]:
                return k
            if self.survivors[k] is None or tid not in self.survivors[k]:
                return None
        return None

    def _present(self, k: int) -> list[str]:
        """Rung k's entrants so far: those recorded there, and the ended ones entitled to it without a value."""
        entitled = self.members if k == 0 else (self.survivors[k - 1] or [])
        return [t for t in entitled if t in self.values[k] or t in self.ended]

    def _rank(self, tid: str, k: int) -> tuple:
        """Trials that can go on first (an ended one cannot, whatever it recorded), then by value."""
        v = self.values[k].get(tid)
        order = self.members.index(tid) if tid in self.members else len(self.members)
        if v is None:
            return (tid in self.ended, 1, 0.0, order)
        return (tid in self.ended, 0, -v if self.mode == "max" else v, order)

    def to_dict(self) -> dict:
        return {"size": self.size, "milestones": list(self.milestones), "eta": self.eta, "mode": self.mode,
                "members": self.members, "values": self.values, "survivors": self.survivors, "ended": self.ended}

    @classmethod
    def from_dict(cls, d: dict) -> "Ladder":
        return cls(d["size"], tuple(d["milestones"]), d["eta"], d["mode"], list(d["members"]),
                   [dict(v) for v in d["values"]], [None if s is None else list(s) for s in d["survivors"]],
                   list(d["ended"]))
