"""Tuning curves: per arm, the expected best validation metric after n of its search trials, n = 1..N, over
values taken at ONE budget, with a bootstrap band, and the expected gain of one more trial.

The budget (`search.trials.common_values`): the highest every ended trial of the arm with a finite value
reached: the full budget where every one of them trained it (a fifo search), else each trial's value at its
first report that reaches the highest budget all reached (with synchronous halving, the first rung: the
values that rung compared). A diverged trial counts with its value there when it reached it; failed trials,
and trials still running or interrupted, are left out. The estimator (`stats.expected_max`) is the
without-replacement one of Tang et al. 2020 and Dodge et al. 2021; the band (`stats.expected_max_band`) is a
seeded percentile bootstrap over the arm's values, 95% per n. The expected gain of one more trial is the
curve's last step, E[best of N] - E[best of N-1], with the same bootstrap band: the verdict states it beside
the resolution of the arm's comparison with the baseline. Both treat the trials as independent draws, which
they are for a random sampler and only roughly for TPE (each draw learns from the earlier ones): the table
and the plot name the sampler. Pure: no Ray, MLflow or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..metrics import is_finite
from ..output.formats import fixed
from ..search.trials import Trial, common_values
from .comparisons import compared_as
from .stats import expected_max_band
from .words import gain_phrase

COLUMNS = 8  # n = 1..8 in the report's table (the plot shows every n)
ENDED = ("finished", "stopped_early")  # the trials that set an arm's budget
LEVEL = 0.95


@dataclass(frozen=True)
class Curve:
    """One arm's tuning curve: `mean` E[best of n] for n = 1..N and its 95% bootstrap band (`low`, `high`);
    `budget` the compute (epoch-equivalents) its values were taken at, `full` whether that is every trial's
    full budget; `gain` the expected gain of one more trial (the last step, an improvement) and its band;
    `left_out` the arm's trials without a value there (diverged before it, failed, running)."""
    mean: list
    low: list
    high: list
    budget: float
    full: bool
    gain: float
    gain_low: float
    gain_high: float
    left_out: int = 0

    @property
    def trials(self) -> int:
        return len(self.mean)

    def summary(self) -> dict:
        """What the verdict keeps of it (verdict.json: `tuning.gains`)."""
        return {"trials": self.trials, "budget": self.budget, "full": self.full, "gain": self.gain,
                "gain_low": self.gain_low, "gain_high": self.gain_high}


def arm_curve(trials: list[Trial], metric: str, mode: str, rungs: Sequence[float] = ()) -> Optional[Curve]:
    """The tuning curve of one arm's search trials (None when none has a value at a common budget)."""
    ended = [t for t in trials if t.status in ENDED]
    compared = common_values(ended, metric, rungs)
    values = compared.values
    if is_finite(compared.threshold):  # a diverged trial counts where it reached the budget
        for t in trials:
            h = t.report_at(metric, compared.threshold) if t.status == "diverged" else None
            if h is not None:
                values.append(float(h[metric]))
    if not values:
        return None
    band = expected_max_band(values, mode, LEVEL)
    return Curve(band["mean"], band["low"], band["high"], compared.budget, compared.full, band["gain"],
                 band["gain_low"], band["gain_high"], left_out=len(trials) - len(values))


def tuning_curves(trials: list[Trial], metric: str, mode: str, order: Sequence[str] = (),
                  rungs: Sequence[float] = ()) -> dict[str, Curve]:
    """{arm: its `Curve`} over the search trials; arms named in `order` (the space's declared arms) first, in
    that order, the rest by name. `rungs`: the early stopper's milestones (values at a rung's)."""
    groups: dict[str, list[Trial]] = {}
    for t in trials:
        if t.phase == "search" and t.strategy != "invalid":
            groups.setdefault(compared_as(t), []).append(t)
    rank = {arm: i for i, arm in enumerate(order)}
    curves = {arm: arm_curve(groups[arm], metric, mode, rungs)
              for arm in sorted(groups, key=lambda a: (rank.get(a, len(rank)), a))}
    return {arm: c for arm, c in curves.items() if c is not None}


def budget_text(c: Curve) -> str:
    """Where an arm's values were taken: 'full (6)' or '2' (epoch-equivalents of compute)."""
    at = f"{c.budget:.3g}" if is_finite(c.budget) else "?"
    return f"full ({at})" if c.full else at


def tuning_markdown(curves: dict[str, Curve], metric: str, sampler: str,
                    resolutions: Optional[dict] = None) -> str:
    """A table: one row per arm, where its values were taken, E[best] after n = 1..COLUMNS trials with the
    95% band, and the expected gain of one more trial; then what it assumes, and per arm the gain beside the
    resolution of its comparison (`resolutions`: arm -> 'its comparison with plain resolves 1.6 points of
    test top-1', from the verdict: `words.resolution_phrase`)."""
    if not curves:
        return ""
    width = min(COLUMNS, max(c.trials for c in curves.values()))
    head = ["arm", "trials", "at (epoch-eq.)", *[f"n={n}" for n in range(1, width + 1)], "one more trial"]

    def cell(c: Curve, n: int) -> str:
        if n > c.trials:
            return "-"
        return f"{fixed(c.mean[n - 1], 2)} [{fixed(c.low[n - 1], 2)}, {fixed(c.high[n - 1], 2)}]"

    def gain_cell(c: Curve) -> str:
        if not is_finite(c.gain):
            return "-"
        return f"+{fixed(c.gain, 2)} [{fixed(c.gain_low, 2)}, {fixed(c.gain_high, 2)}]"

    rows = [[arm, str(c.trials) + (f" ({c.left_out} left out)" if c.left_out else ""), budget_text(c),
             *[cell(c, n) for n in range(1, width + 1)], gain_cell(c)] for arm, c in curves.items()]
    lines = [
        f"Expected best `{metric}` after n search trials of each arm, [95% bootstrap band] (the without-replacement "
        "estimator of Tang et al. 2020 and Dodge et al. 2021; the band: percentile bootstrap of the arm's values, "
        "2000 seeded numpy resamples). Each arm's values are taken at one budget (at, in epoch-equivalents of "
        "compute): full, its trials' final values where every one trained its whole budget; else each trial's "
        "value at its first report reaching the highest budget all of them reached (with successive halving, "
        "the first rung). One more trial: the expected gain of one more trial, the curve's last step "
        "E[best of N] - E[best of N-1], with its band. It assumes independent draws; these came from "
        + (f"{sampler}, which learns from earlier draws, so read it as indicative." if "TPE" in sampler else
           f"{sampler}."), "",
        "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
        *["| " + " | ".join(r) + " |" for r in rows], ""]
    resolutions = resolutions or {}
    lines += [f"- {gain_phrase(arm, c.summary(), metric, resolutions.get(arm, ''))}." for arm, c in curves.items()]
    return "\n".join(lines + [""])

