"""The confirmation's plan, Ray-free: which arms are confirmed (`plan_arms`, `choose_arms`), their configs and
seeds (`confirm_seeds`), how the search tuned them (`tuning`, `sampler_of`), the plan saved for `--resume`
(`save_plan`, `load_plan`: `confirm_arms.json`) and whether every arm x seed has ended (`arms_ended`).

After a search, the best configuration of each declared arm (or, in a joint search, of each strategy
family present: plain, delta=1, delta, trim, splits, and each combination searched), chosen by the search's
validation metric among the trials that trained their whole budget, is trained again with `confirm.seeds`
seeds, shared by all arms, on the full training set (no validation hold-out) and evaluated on the test set.
The arms are fixed once chosen (`confirm_arms.json`): `--resume` continues the same phase. The Ray side is
`ray_backend/confirm.py`. The plan also carries the budget-matched runs once decided (`Plan.matched`,
chosen in `budget.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..metrics import is_finite
from ..search.space import SearchSpace, trial_config
from ..search.space.schema import ARMS_FILE
from ..search.trials import Trial
from ..training.config import apply_overrides, flat_dict
from .comparisons import BASELINES, compared_as, family_rank

ENDED_NOT = ("unfinished", "running", "pending")  # statuses of a run that has not ended


@dataclass(frozen=True)
class Plan:
    """The confirmation's arms (each: arm, family, trial_id, value, params, config), seeds and notes; its
    budget-matched runs (`matched`, arm dicts like the arms' plus `compute_budget` and `for`: the labels of
    the arms they match), None until decided (after the arms' runs ended)."""
    arms: list
    seeds: list
    notes: list
    matched: Optional[list] = None


def confirm_seeds(spec: SearchSpace) -> list[int]:
    """`confirm.seeds` seeds after the search's own (base) seed: the search never saw them."""
    return [spec.base_cfg.seed + 1 + i for i in range(spec.confirm.seeds)]


def plan_arms(spec: SearchSpace, exp_dir: Path, trials: list[Trial]) -> Plan:
    """The arms chosen when the phase first started (`--resume` confirms those), else chosen now and saved."""
    saved = load_plan(exp_dir)
    if saved is not None:
        return saved
    arms, notes = choose_arms(spec, trials)
    plan = Plan(arms, confirm_seeds(spec), notes)
    save_plan(exp_dir, plan)
    return plan


def arms_ended(plan: Plan, confirmed: list[Trial]) -> bool:
    """Whether every arm x seed of `plan` has a run that ended (finished, diverged, failed)."""
    ended = {(t.arm, t.seed) for t in confirmed if t.status not in ENDED_NOT}
    return all((a["arm"], s) in ended for a in plan.arms for s in plan.seeds)


def choose_arms(spec: SearchSpace, trials: list[Trial]) -> tuple[list[dict], list[str]]:
    """(arms, notes): per declared arm (else per strategy family), its best trial by the search metric
    (validation).

    A trial that trained its whole budget beats one stopped early; among those stopped early, the one
    that went furthest (ASHA kept it longest), then the metric. Baselines first, then by that metric; at
    most `confirm.max_arms` (the baselines are kept first)."""
    metric, mode = spec.search.metric, spec.search.mode

    def rank(t):
        return family_rank(t.status, t.last.get("epoch_equiv"), t.final(metric), mode)

    best: dict[str, Trial] = {}
    for t in trials:
        if t.status not in ("finished", "stopped_early") or not is_finite(t.final(metric)):
            continue
        key = compared_as(t)
        if key not in best or rank(t) > rank(best[key]):
            best[key] = t
    what = "arm" if spec.arms else "family"
    notes = []
    missing = sorted({compared_as(t) for t in trials} - set(best) - {"invalid"})
    if missing:
        notes.append(f"not confirmed (every trial diverged or failed): {', '.join(missing)}")
    early = sorted(f for f, t in best.items() if t.status != "finished")
    if early:
        notes.append(f"confirmed from a trial stopped early (none of the {what} trained its whole budget): "
                     + ", ".join(f"{f} (trial {best[f].trial_id} at {best[f].last.get('epoch_equiv'):.3g} "
                                 "epoch-equivalents)" for f in early))
    weak = [k for k, t in best.items() if t.family in BASELINES and t.status != "finished"]
    if weak:
        notes.append(f"the baseline {weak[0]} is confirmed from a trial stopped early: the search tuned it less than "
                     "the arms that trained their whole budget, so a 'helps' may reflect tuning, not the strategy")

    def order_key(k):
        fam = best[k].family
        return (fam not in BASELINES, BASELINES.index(fam) if fam in BASELINES else 0, [-x for x in rank(best[k])])

    order = sorted(best, key=order_key)
    limit = spec.confirm.max_arms
    if limit is not None and len(order) > limit:  # the baselines come first in `order`
        notes.append(f"confirm.max_arms {limit}: not confirmed: {', '.join(order[limit:])}")
        order = order[:limit]
    return [_arm(spec, best[k], k if spec.arms else best[k].strategy) for k in order], notes


def tuning(spec: SearchSpace, trials: list[Trial]) -> dict:
    """How the arms were tuned: mode (arms: declared, alike; joint: the sampler picked the family; grid),
    the sampler, and per arm (or family) the search trials it received and those that trained their budget."""
    mode = "grid" if spec.self_confirming else ("arms" if spec.arms else "joint")
    counts: dict[str, int] = {a.name: 0 for a in spec.arms}
    finished: dict[str, int] = {a.name: 0 for a in spec.arms}
    for t in trials:
        key = compared_as(t)
        if key == "invalid":
            continue
        counts[key] = counts.get(key, 0) + 1
        finished[key] = finished.get(key, 0) + (t.status == "finished")
    return {"mode": mode, "sampler": sampler_of(spec), "trials": counts, "finished": finished}


def sampler_of(spec: SearchSpace) -> str:
    """What drew the search's trials and what stopped them: 'Optuna TPE, ASHA early stopping per arm'."""
    s = spec.search
    sampler = {"optuna": "Optuna TPE", "random": "Optuna random sampling" if spec.arms else "Ray random sampling",
               "grid": "grid (every point once)"}[s.searcher]
    if s.scheduler == "asha":
        sampler += ", ASHA early stopping" + (" per arm" if spec.arms else "")
    return sampler


def _arm(spec: SearchSpace, t: Trial, label: str) -> dict:
    cfg = trial_config(spec.base_flat, t.params, spec.dims)
    full = apply_overrides(cfg, {"data.val_fraction": 0.0})  # the full training set
    return {"arm": label, "family": t.family, "strategy": t.strategy, "trial_id": t.trial_id,
            "value": t.final(spec.search.metric), "params": t.decoded(), "config": flat_dict(full)}


def save_plan(exp_dir: Path, plan: Plan) -> None:
    """`confirm_arms.json`: arms, seeds, notes, and the budget-matched runs once decided ("matched")."""
    path = Path(exp_dir) / ARMS_FILE
    tmp = path.with_suffix(".tmp")
    body = {"arms": plan.arms, "seeds": plan.seeds, "notes": plan.notes,
            **({"matched": plan.matched} if plan.matched is not None else {})}
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)


def load_plan(exp_dir: Path) -> Optional[Plan]:
    """The saved plan (None before the phase started)."""
    saved = load_arms(exp_dir)
    return None if saved is None else Plan(saved["arms"], saved["seeds"], saved["notes"], saved.get("matched"))


def load_arms(exp_dir: Path) -> Optional[dict]:
    """The arms chosen when the phase started (None before): --resume confirms those, not new ones."""
    path = Path(exp_dir) / ARMS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError("--resume", f"{path} is unreadable; delete it to choose the arms again") from None
