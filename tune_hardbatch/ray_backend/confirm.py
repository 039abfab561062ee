"""The confirmation phase on Ray Tune, a loop of looks: plan the next look (Ray-free, `verdict/confirm_plan.py`),
train it here, judge it (Ray-free, `verdict/judgement.judge_look`), until no look follows. A look trains its
arms x its seeds with the search's resources, retries, live view and MLflow (child runs tagged
phase=confirmation under the same parent) as its own Ray Tune experiment (`confirm_plan.look_root`); after
the first look's arms ended, the budget-matched baselines are decided (`verdict/budget.py`), and each look
trains those of the arms it trains. A fixed design is one look. Every step is saved in `confirm_arms.json`,
so `--resume` continues the same plan: a look already trained is restored (its trials read back), not run
again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..search.space.schema import CONFIRM_DIR
from ..search.trials import Trial
from ..verdict.budget import MATCHED_DIR, plan_matched
from ..verdict.confirm_plan import Plan, begin_look, look_root, plan_arms
from ..verdict.judgement import ArmLabel, ArmRun, confirmed_trials, judge_look
from . import ray_private
from .callbacks import CheckpointPruner, ForgetAnalysis
from .search import Run
from .tuner import confirm_tuner, decided_by


def confirm(run: Run, trials: list[Trial]) -> tuple[Optional[Plan], list[Trial]]:
    """(the plan: arms, seeds, design, looks, budget-matched runs; the confirmation trials' records, every
    look's, the budget-matched ones included) after the search `trials`; (None, []) when no confirmation
    follows (none asked for, or a seed grid that is its own). An interrupted look returns what it has:
    `--resume` continues it."""
    space = run.space
    if not space.confirms:
        return None, []
    plan = plan_arms(space, run.exp_dir, trials)
    if not plan.arms:
        return plan, []
    confirmed: list[Trial] = []
    look, arms = 1, None
    while look is not None:
        plan = begin_look(run.exp_dir, plan, look, arms)
        record = plan.looks[look - 1]
        plan, new = _look(run, plan, record)
        confirmed += new
        if any(t.status == "unfinished" for t in new):
            return plan, confirmed
        plan, arms = judge_look(space, run.exp_dir, plan, look, confirmed)
        look = None if arms is None else look + 1
    return plan, confirmed


def _look(run: Run, plan: Plan, record: dict) -> tuple[Plan, list[Trial]]:
    """Train one look: its arms x its seeds, then the budget-matched runs of those arms (decided after the
    first look's arms ended)."""
    root, k = look_root(run.exp_dir, record["look"]), record["look"]
    index = [i for i, a in enumerate(plan.arms) if a["arm"] in record["arms"]]
    looks = len(plan.design["looks"]) if plan.design else 1
    _announce(run, f"confirmation{f' look {k} of {looks}' if looks > 1 else ''}: "
                   f"{len(index)} arms x seeds {record['seeds']} on the full training set, test set reported: "
                   + ", ".join(f"{plan.arms[i]['arm']} (trial {plan.arms[i]['trial_id']})" for i in index))
    done = _train(run, plan.arms, index, record["seeds"], root)
    if any(t.status == "unfinished" for t in done):
        return plan, done
    if plan.matched is None:
        plan = plan_matched(run.exp_dir, plan, done)
    serving = [i for i, m in enumerate(plan.matched or []) if set(m["for"]) & set(record["arms"])]
    if serving:
        _announce(run, f"budget-matched baseline, look {k}: {len(serving)} x seeds {record['seeds']}, plain SGD for "
                       "the compute of the arms that spent less, its schedule fully decayed within it: "
                       + ", ".join(f"{plan.matched[i]['arm']} (for {', '.join(plan.matched[i]['for'])})"
                                   for i in serving))
        done += _train(run, plan.matched, serving, record["seeds"], root / MATCHED_DIR)
    return plan, done


def _announce(run: Run, text: str) -> None:
    print(f"\n{text}", file=run.stream, flush=True)


def _train(run: Run, arms: list[dict], index: list[int], seeds: list[int], root: Path) -> list[Trial]:
    """`arms[index]` x `seeds` as the Ray Tune experiment `<root>/confirm` (continued when it exists)."""
    space, confirm_dir = run.space, root / CONFIRM_DIR
    live = run.live(["seed"], "test_top1", "max", len(index) * len(seeds), ArmLabel(arms))
    callbacks = [live, *ray_private.history_loggers(), CheckpointPruner(confirm_dir),
                 ForgetAnalysis(decided_by(space))]
    tracking_callback = run.tracking(confirm_dir, phase="confirmation", describe=ArmRun(arms))
    if tracking_callback is not None:
        callbacks.append(tracking_callback)
    results = confirm_tuner(space, root, arms, seeds, run.concurrency, callbacks, index).fit()
    confirmed = confirmed_trials(results, live.final_status, arms, space.resources.gpu)
    if tracking_callback is not None:
        tracking_callback.end_the_rest(confirmed)
    return confirmed
