"""The confirmation phase on Ray Tune: arms x seeds after the search, with the search's resources,
storage (`<experiment>/confirm`), retries, live view and MLflow (child runs tagged phase=confirmation
under the same parent). Which arms, their configs and the verdict are Ray-free (`confirmation.py`).
"""

from __future__ import annotations

from typing import Optional

from ..confirmation import ArmLabel, ArmRun, Plan, confirmed_trials, plan_arms
from ..space.schema import CONFIRM_DIR
from ..trials import Trial
from . import ray_private
from .callbacks import CheckpointPruner
from .search import Run
from .tuner import confirm_tuner


def confirm(run: Run, trials: list[Trial]) -> tuple[Optional[Plan], list[Trial]]:
    """(the plan: arms, seeds, notes; the confirmation trials' records) after the search `trials`; (None, [])
    when no confirmation follows (none asked for, or a seed grid that is its own)."""
    spec = run.spec
    if not spec.confirms:
        return None, []
    plan = plan_arms(spec, run.exp_dir, trials)
    if not plan.arms:
        return plan, []
    print(f"\nconfirmation: {len(plan.arms)} arms x {len(plan.seeds)} seeds {plan.seeds} on the full training set, "
          "test set reported: " + ", ".join(f"{a['arm']} (trial {a['trial_id']})" for a in plan.arms),
          file=run.stream, flush=True)
    return plan, _train_arms(run, plan)


def _train_arms(run: Run, plan: Plan) -> list[Trial]:
    spec, confirm_dir, arms, seeds = run.spec, run.exp_dir / CONFIRM_DIR, plan.arms, plan.seeds
    live = run.live(["seed"], "test_top1", "max", len(arms) * len(seeds), ArmLabel(arms))
    callbacks = [live, *ray_private.history_loggers(), CheckpointPruner(confirm_dir)]
    tracking_callback = run.tracking(confirm_dir, phase="confirmation", describe=ArmRun(arms))
    if tracking_callback is not None:
        callbacks.append(tracking_callback)
    results = confirm_tuner(spec, run.exp_dir, arms, seeds, run.concurrency, callbacks).fit()
    confirmed = confirmed_trials(results, live.final_status, arms, spec.resources.gpu)
    if tracking_callback is not None:
        tracking_callback.end_the_rest(confirmed)
    return confirmed
