"""Tuning curves: per arm, the expected best validation metric after n of its search trials, n = 1..N.

The estimator (`stats.expected_max`, Dodge et al. 2019 "Show your work"; Tang et al. 2020) treats an arm's
trials as independent draws, which they are for a random sampler and only roughly for TPE (each draw
learns from the earlier ones): the table and the plot name the sampler. Each trial counts with its last
value of the search metric, a trial ASHA stopped with the value it was stopped at (what the search saw);
failed and diverged trials, with no finite value, are left out. Pure: no Ray, MLflow or torch.
"""

from __future__ import annotations

from typing import Sequence

from ..metrics import is_finite
from ..output.formats import fixed
from ..search.trials import Trial
from .comparisons import compared_as
from .stats import expected_max

COLUMNS = 8  # n = 1..8 in the report's table (the plot shows every n)


def tuning_curves(trials: list[Trial], metric: str, mode: str, order: Sequence[str] = ()) -> dict[str, list[float]]:
    """{arm: [E[best of n trials] for n = 1..N]} over the search trials with a finite `metric`; arms named in
    `order` (the space's declared arms) first, in that order, the rest by name."""
    values: dict[str, list[float]] = {}
    for t in trials:
        if t.phase != "search" or t.strategy == "invalid":
            continue
        v = t.final(metric)
        if is_finite(v):
            values.setdefault(compared_as(t), []).append(float(v))
    rank = {arm: i for i, arm in enumerate(order)}
    arms = sorted(values, key=lambda a: (rank.get(a, len(rank)), a))
    return {arm: expected_max(values[arm], mode) for arm in arms}


def tuning_markdown(curves: dict[str, list[float]], metric: str, sampler: str) -> str:
    """A table: one row per arm, E[best] after n = 1..COLUMNS trials, and what it assumes."""
    if not curves:
        return ""
    width = min(COLUMNS, max(len(c) for c in curves.values()))
    head = ["arm", "trials", *[f"n={n}" for n in range(1, width + 1)]]
    rows = [[arm, str(len(c)), *[fixed(c[n - 1], 2) if n <= len(c) else "-" for n in range(1, width + 1)]]
            for arm, c in curves.items()]
    return "\n".join([
        f"Expected best `{metric}` after n search trials of each arm (the unbiased estimator of Dodge et al. "
        f"2019 over the arm's trials; each trial at its last report, one ASHA stopped at the value it was stopped "
        f"at). It assumes independent draws; these came from {sampler}, which learns from earlier draws, so "
        "read it as indicative. A curve still rising at its last n says the arm was not tuned to its best.", "",
        "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
        *["| " + " | ".join(r) + " |" for r in rows], ""])
