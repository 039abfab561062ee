"""The confirmation phase on Ray Tune: arms x seeds after the search, with the search's resources,
storage (`<experiment>/confirm`), retries, live view and MLflow (child runs tagged phase=confirmation
under the same parent); then, once every arm x seed ended, the budget-matched baseline of each arm that
spent less compute than plain SGD (plain SGD trained for that compute, same seeds) in
`<experiment>/budget_matched/confirm`. Which arms and runs, their configs and the verdict are Ray-free
(`verdict/confirm_plan.py`, `verdict/budget.py`, `verdict/judgement.py`); both steps are saved in
`confirm_arms.json`, so `--resume` continues the same ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..search.space.schema import CONFIRM_DIR
from ..search.trials import Trial
from ..verdict.budget import MATCHED_DIR, plan_matched
from ..verdict.confirm_plan import Plan, plan_arms
from ..verdict.judgement import ArmLabel, ArmRun, confirmed_trials
from . import ray_private
from .callbacks import CheckpointPruner, ForgetAnalysis
from .search import Run
from .tuner import confirm_tuner, decided_by


def confirm(run: Run, trials: list[Trial]) -> tuple[Optional[Plan], list[Trial]]:
    """(the plan: arms, seeds, notes, budget-matched runs; the confirmation trials' records, the
    budget-matched ones included) after the search `trials`; (None, []) when no confirmation follows (none
    asked for, or a seed grid that is its own). An interrupted arm step (a run unfinished) decides no
    budget-matched runs: `--resume` does, once the arms ended."""
    space = run.space
    if not space.confirms:
        return None, []
    plan = plan_arms(space, run.exp_dir, trials)
    if not plan.arms:
        return plan, []
    print(f"\nconfirmation: {len(plan.arms)} arms x {len(plan.seeds)} seeds {plan.seeds} on the full training set, "
          "test set reported: " + ", ".join(f"{a['arm']} (trial {a['trial_id']})" for a in plan.arms),
          file=run.stream, flush=True)
    confirmed = _train_arms(run, plan.arms, plan.seeds, run.exp_dir)
    if any(t.status == "unfinished" for t in confirmed):
        return plan, confirmed
    plan = plan_matched(run.exp_dir, plan, confirmed)
    if plan.matched:
        print(f"\nbudget-matched baseline: {len(plan.matched)} x {len(plan.seeds)} seeds, plain SGD for the compute "
              "of the arms that spent less, its schedule fully decayed within it: "
              + ", ".join(f"{m['arm']} (for {', '.join(m['for'])})" for m in plan.matched),
              file=run.stream, flush=True)
        confirmed += _train_arms(run, plan.matched, plan.seeds, run.exp_dir / MATCHED_DIR)
    return plan, confirmed


def _train_arms(run: Run, arms: list[dict], seeds: list[int], root: Path) -> list[Trial]:
    """`arms` x `seeds` as the Ray Tune experiment `<root>/confirm` (continued when it exists)."""
    space, confirm_dir = run.space, root / CONFIRM_DIR
    live = run.live(["seed"], "test_top1", "max", len(arms) * len(seeds), ArmLabel(arms))
    callbacks = [live, *ray_private.history_loggers(), CheckpointPruner(confirm_dir),
                 ForgetAnalysis(decided_by(space))]
    tracking_callback = run.tracking(confirm_dir, phase="confirmation", describe=ArmRun(arms))
    if tracking_callback is not None:
        callbacks.append(tracking_callback)
    results = confirm_tuner(space, root, arms, seeds, run.concurrency, callbacks).fit()
    confirmed = confirmed_trials(results, live.final_status, arms, space.resources.gpu)
    if tracking_callback is not None:
        tracking_callback.end_the_rest(confirmed)
    return confirmed
