"""The confirmation's plan, Ray-free: which arms are confirmed (`plan_arms`, `choose_arms`), their configs and
seeds (`confirm_seeds`), its design and looks (`design_of`, `begin_look`, `end_look`, `look_root`), how the
search tuned them (`tuning`, `sampler_of`), the plan saved for `--resume` (`save_plan`, `load_plan`:
`confirm_arms.json`) and whether every arm x seed trained so far has ended (`arms_ended`).

After a search, the best configuration of each declared arm (or, in a joint search, of each strategy
family present: plain, delta=1, delta, trim, splits, and each combination searched), chosen by the search's
validation metric at one budget every compared trial reached (`best_per_arm`: the trials that trained their
whole budget by their final values; only when none did, the trials stopped early at the highest budget all
of them reached), is trained again on the full training set (no validation hold-out) and evaluated on the
whole test set (unless `confirm.test_limit`), with seeds the search never saw, shared by all arms: a fixed
design's `confirm.seeds` in one look, or a sequential design's looks up to `confirm.max_seeds`, each look
training only the arms of a primary comparison still open (decided by `sequential` through the verdict).
The arms are fixed once chosen, and each look is recorded before it trains (its seeds and arms) and after
it is judged (its decisions), so `--resume` continues the same plan. The Ray side is
`ray_backend/confirm.py`. The plan also carries the budget-matched runs once decided (`Plan.matched`,
chosen in `budget.py` after the first look).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

from ..errors import UserError
from ..files import problem_of, read_json
from ..metrics import is_finite
from ..search.space import SearchSpace, trial_config
from ..search.space.schema import ARMS_FILE
from ..search.trials import Choice, Trial, choose, start_order
from ..training.config import apply_overrides, flat_dict
from .comparisons import BASELINES, compared_as
from .sequential import ALPHA, OPEN, Comparison, Design, needed, plan_looks
from .tuning_curves import tuning_curves

ENDED_NOT = ("unfinished", "running", "pending")  # statuses of a run that has not ended


@dataclass(frozen=True)
class Plan:
    """The confirmation's arms (each: arm, family, trial_id, value, params, config), seeds (all the design
    may use, in training order) and notes; its budget-matched runs (`matched`, arm dicts like the arms' plus
    `compute_budget` and `for`: the labels of the arms they match), None until decided (after the first
    look's runs ended); the design (`design`: looks, alpha, margin, primary) and one record per look started
    (`looks`: look, n, seeds, arms, judged, decisions); `done` once the last look is judged."""
    arms: list
    seeds: list
    notes: list
    matched: Optional[list] = None
    design: Optional[dict] = None
    looks: Optional[list] = None
    done: bool = False


DEFAULT_MAX_SEEDS = 12  # with a resolution: looks at 4, 8, 12 seeds by default


def confirm_seeds(spec: SearchSpace) -> list[int]:
    """The seeds after the search's own (base) seed, which the search never saw: `confirm.seeds` of them
    (a fixed design), or `confirm.max_seeds` with a resolution (a sequential one)."""
    c = spec.confirm
    count = (c.max_seeds or DEFAULT_MAX_SEEDS) if c.resolution is not None else c.seeds
    return [spec.base_cfg.seed + 1 + i for i in range(count)]


def design_of(spec: SearchSpace, seeds: list) -> dict:
    """The confirmation's design: one look over every seed (fixed), or `confirm.looks` looks up to
    `confirm.max_seeds` with the resolution as the equivalence margin (sequential)."""
    c = spec.confirm
    looks = plan_looks(len(seeds), c.looks) if c.resolution is not None else (len(seeds),)
    margin = c.resolution if c.resolution is not None else c.equivalence_margin
    return {"looks": list(looks), "alpha": ALPHA, "margin": margin, "primary": c.primary}


def design(plan: Plan) -> Design:
    """The plan's `sequential.Design` (a plan saved before designs: one look over its seeds, no margin)."""
    d = plan.design or {"looks": [len(plan.seeds)], "alpha": ALPHA, "margin": None}
    return Design(tuple(plan.seeds), tuple(d["looks"]), d["alpha"], d["margin"])


def look_root(exp_dir: Path, look: int) -> Path:
    """Where look `look`'s Ray Tune experiments live: the search's directory for the first (its `confirm`
    and `budget_matched/confirm`, as a fixed design's), `looks/<k>` below it for the later ones."""
    return Path(exp_dir) if look == 1 else Path(exp_dir) / LOOKS_DIR / str(look)


LOOKS_DIR = "looks"


def begin_look(exp_dir: Path, plan: Plan, look: int, arms: Optional[list] = None) -> Plan:
    """`plan` with look `look` recorded (saved): its seeds and the arms it trains (`arms`: labels; None:
    every arm). A look already recorded (`--resume`) is kept as it was."""
    records = list(plan.looks or [])
    if len(records) >= look:
        return plan
    d = design(plan)
    before = d.looks[look - 2] if look > 1 else 0
    labels = [a["arm"] for a in plan.arms] if arms is None else [a["arm"] for a in plan.arms if a["arm"] in arms]
    records.append({"look": look, "n": d.looks[look - 1], "seeds": list(plan.seeds[before:d.looks[look - 1]]),
                    "arms": labels, "judged": False, "decisions": {}})
    plan = replace(plan, looks=records)
    save_plan(exp_dir, plan)
    return plan


def end_look(exp_dir: Path, plan: Plan, look: int, verdict: dict) -> tuple[Plan, Optional[list]]:
    """Look `look` judged (`verdict`: `build_verdict` over the looks so far): its decisions recorded, and
    the arms the next look trains (those of an open primary comparison); (plan saved, None) when no look
    follows (the last look, or every primary comparison decided)."""
    primary = [c for a in verdict["arms"] for c in a["diffs"] if c.get("primary")]
    records = [dict(r) for r in plan.looks]
    records[look - 1].update(judged=True, decisions={c["name"]: c["decision"] for c in primary})
    arms = needed([Comparison(c["name"], c["arm"], c["baseline"]) for c in primary],
                  {c["name"]: c for c in primary if c["decision"] != OPEN})
    last = look >= len(design(plan).looks) or not arms
    plan = replace(plan, looks=records, done=last)
    save_plan(exp_dir, plan)
    return plan, None if last else arms


def plan_arms(spec: SearchSpace, exp_dir: Path, trials: list[Trial]) -> Plan:
    """The arms chosen when the phase first started (`--resume` confirms those), else chosen now and saved."""
    saved = load_plan(exp_dir)
    if saved is not None:
        return saved
    arms, notes = choose_arms(spec, trials)
    seeds = confirm_seeds(spec)
    plan = Plan(arms, seeds, notes, design=design_of(spec, seeds))
    save_plan(exp_dir, plan)
    return plan


def arms_ended(plan: Plan, confirmed: list[Trial]) -> bool:
    """Whether every arm x seed the plan's looks trained so far (a plan without looks: every arm x seed) has a
    run that ended (finished, diverged, failed)."""
    ended = {(t.arm, t.seed) for t in confirmed if t.status not in ENDED_NOT}
    if plan.looks:
        return all((arm, s) in ended for r in plan.looks for arm in r["arms"] for s in r["seeds"])
    return all((a["arm"], s) in ended for a in plan.arms for s in plan.seeds)


SEARCHED = ("finished", "stopped_early")  # the search trials an arm's best is chosen among


def best_per_arm(trials: list[Trial], metric: str, mode: str, rungs: Sequence[float] = (),
                 statuses: Sequence[str] = SEARCHED) -> dict[str, Choice]:
    """Per declared arm (else per strategy family), its best trial among those with a status in `statuses`,
    by the one rule `search.trials.choose`: the trials that trained their whole budget by their final
    `metric`; when none did, every trial at the highest budget all of them reached (a rung's milestone of
    `rungs` where the early stopper compared them there). The confirmation, the report's table of chosen
    trials and its best-trial curves all choose so."""
    groups: dict[str, list[Trial]] = {}
    for t in trials:
        if t.status in statuses and compared_as(t) != "invalid":
            groups.setdefault(compared_as(t), []).append(t)
    chosen = {key: choose(group, metric, mode, rungs) for key, group in groups.items()}
    return {key: c for key, c in chosen.items() if c is not None}


def start_indexes(trials: list[Trial]) -> dict[str, tuple[int, int]]:
    """trial id -> (k, n): the trial started k-th of the n search trials of its arm (`trials.start_order`)."""
    groups: dict[str, list[Trial]] = {}
    for t in start_order(trials):
        groups.setdefault(compared_as(t), []).append(t)
    return {t.trial_id: (k, len(group)) for group in groups.values() for k, t in enumerate(group, start=1)}


def choose_arms(spec: SearchSpace, trials: list[Trial]) -> tuple[list[dict], list[str]]:
    """(arms, notes): per declared arm (else per strategy family), its best trial by the search metric
    (validation) at one budget every compared trial reached (`best_per_arm`): the trials that trained their
    whole budget, by their final values; only when none did, the trials stopped early, at the highest
    budget all of them reached. Baselines first, then by that value; at most `confirm.max_arms` (the
    baselines are kept first)."""
    metric, mode = spec.search.metric, spec.search.mode
    best = best_per_arm(trials, metric, mode, spec.rungs)
    what = "arm" if spec.arms else "family"
    notes = []
    missing = sorted({compared_as(t) for t in trials} - set(best) - {"invalid"})
    if missing:
        notes.append(f"not confirmed (every trial diverged or failed): {', '.join(missing)}")
    early = sorted(k for k, c in best.items() if not c.full)
    if early:
        notes.append(f"confirmed from a trial stopped early (none of the {what}'s trials trained its whole budget; "
                     "compared at the highest budget all of them reached): "
                     + ", ".join(f"{k} (trial {best[k].trial.trial_id}, {metric} {best[k].value:.4g}"
                                 + (f" at {best[k].budget:.3g} epoch-equivalents" if is_finite(best[k].budget)
                                    else "") + ")" for k in early))
    weak = [k for k, c in best.items() if c.trial.family in BASELINES and not c.full]
    if weak:
        notes.append(f"the baseline {weak[0]} is confirmed from a trial stopped early: the search tuned it less than "
                     "the arms that trained their whole budget, so a 'helps' may reflect tuning, not the strategy")

    def order_key(k):
        fam, sign = best[k].trial.family, 1.0 if mode == "max" else -1.0
        return (fam not in BASELINES, BASELINES.index(fam) if fam in BASELINES else 0, -sign * best[k].value)

    order = sorted(best, key=order_key)
    limit = spec.confirm.max_arms
    if limit is not None and len(order) > limit:  # the baselines come first in `order`
        notes.append(f"confirm.max_arms {limit}: not confirmed: {', '.join(order[limit:])}")
        order = order[:limit]
    starts = start_indexes(trials)
    return [_arm(spec, best[k], k if spec.arms else best[k].trial.strategy, starts.get(best[k].trial.trial_id))
            for k in order], notes


def tuning(spec: SearchSpace, trials: list[Trial]) -> dict:
    """How the arms were tuned: mode (arms: declared, alike; joint: the sampler picked the family; grid),
    the sampler, per arm (or family) the search trials it received and those that trained their budget, and
    (not for a grid) the expected gain of one more trial from its tuning curve (`gains`: arm ->
    `tuning_curves.Curve.summary()`, of the search `metric`)."""
    mode = "grid" if spec.self_confirming else ("arms" if spec.arms else "joint")
    counts: dict[str, int] = {a.name: 0 for a in spec.arms}
    finished: dict[str, int] = {a.name: 0 for a in spec.arms}
    for t in trials:
        key = compared_as(t)
        if key == "invalid":
            continue
        counts[key] = counts.get(key, 0) + 1
        finished[key] = finished.get(key, 0) + (t.status == "finished")
    out = {"mode": mode, "sampler": sampler_of(spec), "trials": counts, "finished": finished}
    if mode != "grid":
        curves = tuning_curves(trials, spec.search.metric, spec.search.mode, rungs=spec.rungs)
        out.update({"metric": spec.search.metric, "gains": {arm: c.summary() for arm, c in curves.items()}})
    return out


def sampler_of(spec: SearchSpace) -> str:
    """What drew the search's trials and what stopped them: 'Optuna TPE, successive halving per arm'."""
    s = spec.search
    sampler = {"optuna": "Optuna TPE", "random": "Optuna random sampling" if spec.arms else "Ray random sampling",
               "grid": "grid (every point once)"}[s.searcher]
    if spec.arms and s.searcher != "grid" and spec.arms[0].shared:  # search.space.design
        sampler += " with the shared dimensions of start-up trials from one Sobol' design (stratified draws)"
    if s.scheduler == "halving":
        sampler += ", synchronous successive halving" + (" per arm" if spec.arms else "")
    return sampler


def _arm(spec: SearchSpace, c: Choice, label: str, start: Optional[tuple] = None) -> dict:
    """A confirmed arm: its search trial, that trial's `value` at the budget it was chosen at (`budget`,
    epoch-equivalents of compute; `full`: among the trials that trained their whole budget), the trials it
    was compared with, its start (k of n in its arm), params and the config trained on the full training set."""
    t = c.trial
    cfg = trial_config(spec.base_flat, t.params, spec.dims)
    # the full training set; the whole test set unless confirm.test_limit says otherwise
    full = apply_overrides(cfg, {"data.val_fraction": 0.0, "data.test_limit": spec.confirm.test_limit})
    return {"arm": label, "family": t.family, "strategy": t.strategy, "trial_id": t.trial_id,
            "value": c.value, "budget": c.budget if is_finite(c.budget) else None, "full": c.full,
            "compared": c.compared,
            "start": list(start) if start else None, "params": t.decoded(), "config": flat_dict(full)}


def save_plan(exp_dir: Path, plan: Plan) -> None:
    """`confirm_arms.json`: arms, seeds, notes, and the budget-matched runs once decided ("matched")."""
    path = Path(exp_dir) / ARMS_FILE
    tmp = path.with_suffix(".tmp")
    body = {"arms": plan.arms, "seeds": plan.seeds, "notes": plan.notes,
            **({"matched": plan.matched} if plan.matched is not None else {}),
            **({"design": plan.design, "looks": plan.looks, "done": plan.done} if plan.design is not None else {})}
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)


def load_plan(exp_dir: Path) -> Optional[Plan]:
    """The saved plan (None before the phase started)."""
    saved = load_arms(exp_dir)
    return None if saved is None else Plan(saved["arms"], saved["seeds"], saved["notes"], saved.get("matched"),
                                           saved.get("design"), saved.get("looks"), bool(saved.get("done")))


def load_arms(exp_dir: Path) -> Optional[dict]:
    """The arms chosen when the phase started (None before): --resume confirms those, not new ones. A
    damaged file (not UTF-8, cut short, not the plan's JSON object) is one `UserError` naming it."""
    path = Path(exp_dir) / ARMS_FILE
    if not path.exists():
        return None
    again = "allowed: the plan as the search wrote it (without the file, --resume chooses the arms again)"
    try:
        saved = read_json(path)
    except UserError as exc:
        raise UserError(str(path), f"{problem_of(exc, path)}; {again}") from None
    if not isinstance(saved, dict) or not all(isinstance(saved.get(k), list) for k in ("arms", "seeds", "notes")):
        raise UserError(str(path), f"is not the confirmation's plan (a JSON object with its arms, seeds and "
                        f"notes); it may be damaged; {again}")
    return saved
