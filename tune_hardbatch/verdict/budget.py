"""The budget-matched baseline, Ray-free: which runs it trains (`plan_matched`, `choose_matched`) and where
they are (`matched_dir`; `confirm_dirs`: the confirmation's Ray Tune experiments, the arms' and theirs).

The budget-matched baseline (Kaddour et al. 2023, "No train no gain"; spec section 4), a second step once
every arm x seed has ended: an arm (not plain SGD) whose mean final compute (`compute_equiv`, else
`epoch_equiv`) over its finished confirmation runs is more than `COMPUTE_TOLERANCE` (1%) below the plain
baseline's gets plain SGD trained for that compute: the baseline's confirmed configuration with
`compute_budget` set to the arm's mean compute rounded to 0.01 (its schedule fully decayed within that
budget), on the same seeds, labelled `plain@C` (family `plain@budget`); arms that round to the same C share
one. The compute of InfoBatch is only known once its runs end, hence a second step. The plan is saved in
`confirm_arms.json` under "matched" (absent: not decided yet; [] when no arm spends less), so `--resume`
trains the same runs; they run in their own Ray Tune experiment, `<experiment>/budget_matched/confirm`.
Without a plain SGD arm there is nothing to train for a budget (delta = 1 is not plain SGD): a note says so.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..metrics import finite_interval, is_finite
from ..search.space.schema import CONFIRM_DIR
from ..search.trials import Trial
from .comparisons import compute_of
from .confirm_plan import Plan, arms_ended, look_root, save_plan

MATCHED_DIR = "budget_matched"  # <experiment>/budget_matched/confirm: the budget-matched runs' Ray Tune experiment
COMPUTE_TOLERANCE = 0.01  # an arm spends less than the baseline when its mean compute is more than 1% below
MATCHED_FAMILY = "plain@budget"  # labels.strategy_family of a config with compute_budget set


def matched_dir(exp_dir: Path) -> Path:
    """The budget-matched runs' Ray Tune experiment (`ray_backend.tuner.confirm_tuner` at `exp_dir/MATCHED_DIR`)."""
    return Path(exp_dir) / MATCHED_DIR / CONFIRM_DIR


def confirm_dirs(exp_dir: Path, plan: Plan) -> list[tuple[Path, list]]:
    """The confirmation's Ray Tune experiments with the arms each trained: per look started, the arms', the
    budget-matched runs'."""
    out = []
    for look in range(1, max(1, len(plan.looks or [])) + 1):  # a plan saved before looks: the first
        root = look_root(exp_dir, look)
        out += [(root / CONFIRM_DIR, plan.arms), (matched_dir(root), plan.matched or [])]
    return out


def plan_matched(exp_dir: Path, plan: Plan, confirmed: list[Trial]) -> Plan:
    """`plan` with its budget-matched runs: as saved (`--resume` trains the same ones), else, once every
    arm x seed ended, chosen from the arms' runs (`choose_matched`) and saved; else as it is (undecided)."""
    if plan.matched is not None or not arms_ended(plan, confirmed):
        return plan
    matched, notes = choose_matched(plan, confirmed)
    plan = replace(plan, notes=plan.notes + notes, matched=matched)
    save_plan(exp_dir, plan)
    return plan


def mean_compute(runs: list[Trial]) -> float:
    """The mean final compute (`verdict.compute_of`) of the runs that trained their whole budget (NaN: none)."""
    return finite_interval([compute_of(t.last) for t in runs if t.status == "finished" and t.last])[0]


def choose_matched(plan: Plan, confirmed: list[Trial]) -> tuple[list[dict], list[str]]:
    """(budget-matched runs, notes): one per budget C = an arm's mean compute rounded to 0.01, for each arm
    (not of the plain family) more than `COMPUTE_TOLERANCE` below the baseline's mean compute: the plain
    baseline's confirmed config with `compute_budget` C. The baseline is the first plain arm (the plan puts
    baselines first); none is confirmed: no runs, and a note when some arm spends less than the others."""
    compute = {a["arm"]: mean_compute([t for t in confirmed if t.arm == a["arm"]]) for a in plan.arms}
    base = next((a for a in plan.arms if a["family"] == "plain"), None)
    others = [a for a in plan.arms if a["family"] not in ("plain", MATCHED_FAMILY) and is_finite(compute[a["arm"]])]
    if base is None or not is_finite(compute[base["arm"]]):
        top = max((compute[a["arm"]] for a in others), default=None)
        cheaper = [a["arm"] for a in others if compute[a["arm"]] < (1 - COMPUTE_TOLERANCE) * top]
        why = "no plain SGD arm was confirmed" if base is None else f"{base['arm']} has no finished run"
        return [], [f"no budget-matched baseline for {', '.join(cheaper)} (less compute): {why}"] if cheaper else []
    limit = (1 - COMPUTE_TOLERANCE) * compute[base["arm"]]
    by_budget: dict[float, list[str]] = {}
    for a in others:
        if compute[a["arm"]] < limit:
            by_budget.setdefault(round(compute[a["arm"]], 2), []).append(a["arm"])
    matched = [_matched_arm(base, budget, labels) for budget, labels in by_budget.items()]
    notes = [f"budget-matched baseline {m['arm']}: {base['arm']}'s configuration trained for "
             f"{m['compute_budget']:g} compute-equivalents (its schedule fully decayed within them), the mean compute "
             f"of {', '.join(m['for'])}, against {base['arm']}'s {compute[base['arm']]:.3g}" for m in matched]
    return matched, notes


def _matched_arm(base: dict, budget: float, labels: list[str]) -> dict:
    label = f"plain@{budget:g}"  # labels.strategy_name of the config
    return {**base, "arm": label, "family": MATCHED_FAMILY, "strategy": label,
            "params": {**base["params"], "compute_budget": budget},
            "config": {**base["config"], "compute_budget": budget},
            "compute_budget": budget, "for": labels, "baseline": base["arm"]}
