"""The confirmation phase, Ray-free: which arms are confirmed (`plan_arms`), their configs and seeds, their
trials' records, and the verdict (`judge`: from the confirmation, or from a seed grid's own trials).

After a search, the best configuration of each declared arm (or, in a joint search, of each strategy
family present: plain, delta=1, delta, trim, splits, and each combination searched), chosen by the search's
validation metric among the trials that trained their whole budget, is trained again with `confirm.seeds`
seeds, shared by all arms, on the full training set (no validation hold-out) and evaluated on the test set.
The arms are fixed once chosen (`confirm_arms.json`): `--resume` continues the same phase. The Ray side is
`ray_backend/confirm.py`.

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

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..metrics import finite_interval, is_finite
from ..search.history import load_trials, read_statuses
from ..search.space import SearchSpace, decode, trial_config
from ..search.space.schema import ARMS_FILE, CONFIRM_DIR, CONFIRM_RESULTS_FILE
from ..search.trials import Trial
from ..training.config import apply_overrides, flat_dict
from ..training.strategies.labels import STRATEGY_KEYS
from .comparisons import BASELINES, build_verdict, compared_as, compute_of, family_of, family_rank, group_runs

MATCHED_DIR = "budget_matched"  # <experiment>/budget_matched/confirm: the budget-matched runs' Ray Tune experiment
COMPUTE_TOLERANCE = 0.01  # an arm spends less than the baseline when its mean compute is more than 1% below
MATCHED_FAMILY = "plain@budget"  # verdict.family_of('plain@7.46')
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


def matched_dir(exp_dir: Path) -> Path:
    """The budget-matched runs' Ray Tune experiment (`ray_backend.tuner.confirm_tuner` at `exp_dir/MATCHED_DIR`)."""
    return Path(exp_dir) / MATCHED_DIR / CONFIRM_DIR


def confirm_dirs(exp_dir: Path, plan: Plan) -> list[tuple[Path, list]]:
    """The confirmation's Ray Tune experiments with the arms each trained: the arms', the budget-matched runs'."""
    return [(Path(exp_dir) / CONFIRM_DIR, plan.arms), (matched_dir(exp_dir), plan.matched or [])]


def arms_ended(plan: Plan, confirmed: list[Trial]) -> bool:
    """Whether every arm x seed of `plan` has a run that ended (finished, diverged, failed)."""
    ended = {(t.arm, t.seed) for t in confirmed if t.status not in ENDED_NOT}
    return all((a["arm"], s) in ended for a in plan.arms for s in plan.seeds)


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
    weak = [k for k, t in best.items() if family_of(t.strategy) in BASELINES and t.status != "finished"]
    if weak:
        notes.append(f"the baseline {weak[0]} is confirmed from a trial stopped early: the search tuned it less than "
                     "the arms that trained their whole budget, so a 'helps' may reflect tuning, not the strategy")

    def order_key(k):
        fam = family_of(best[k].strategy)
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
    return {"arm": label, "family": family_of(t.strategy), "strategy": t.strategy, "trial_id": t.trial_id,
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


class ArmLabel:
    """A confirmation trial's label (its arm) from its config {"arm": i, "seed": s}: for the live view."""

    def __init__(self, arms: list[dict]):
        self.names = [a["arm"] for a in arms]

    def __call__(self, config: dict) -> str:
        i = config.get("arm")
        return self.names[i] if isinstance(i, int) and i < len(self.names) else "?"


class ArmRun:
    """How a confirmation trial's MLflow child run is described: (params, tags, run name)."""

    def __init__(self, arms: list[dict]):
        self.arms = [{"arm": a["arm"], "family": a["family"], "params": a["params"], "trial_id": a["trial_id"]}
                     for a in arms]

    def __call__(self, trial_id: str, config: dict) -> tuple[dict, dict, str]:
        arm, seed = self.arms[config["arm"]], config["seed"]
        params = {**arm["params"], "seed": seed, "data.val_fraction": 0.0}
        tags = {"phase": "confirmation", "arm": arm["arm"], "family": arm["family"], "seed": str(seed),
                "strategy": arm["arm"], "search_trial": arm["trial_id"]}
        return params, tags, f"confirm {arm['arm']} seed {seed} {trial_id}"


def confirmed_trials(results, statuses: dict, arms: list[dict], gpu: Optional[float] = None) -> list[Trial]:
    """One record per confirmation trial from a Ray `ResultGrid` (duck-typed): its arm, family and seed."""
    return [with_arm(Trial.from_result(results[i], i, statuses, phase="confirmation", gpu=gpu), arms)
            for i in range(len(results))]


def with_arm(t: Trial, arms: list[dict]) -> Trial:
    """A confirmation trial (config {"arm": i, "seed": s}) with its arm's label, strategy, family and params."""
    i_arm = t.params.get("arm")
    arm = arms[i_arm] if isinstance(i_arm, int) and i_arm < len(arms) else {"arm": "?", "family": "?", "params": {}}
    return replace(t, strategy=arm.get("strategy", arm["arm"]), arm=arm["arm"], family=arm["family"],
                   seed=t.params.get("seed"), active=dict(arm["params"]))


def verdict_on_disk(spec: SearchSpace, exp_dir: Path, trials: list[Trial]) -> Optional[dict]:
    """The verdict judged again from what the search left on disk (its trials, the confirmation's arms and
    trials): `tune-hardbatch report` of a finished, interrupted or running search; None before any."""
    if spec.self_confirming:
        return verdict_from_grid(spec, trials)
    plan = load_plan(exp_dir)
    if plan is None:
        return None
    statuses = read_statuses(exp_dir / CONFIRM_RESULTS_FILE)
    confirmed = [with_arm(t, arms) for where, arms in confirm_dirs(exp_dir, plan)
                 for t in load_trials(where, statuses, phase="confirmation")]
    return verdict_from_confirmation(spec, confirmed, plan, tuning(spec, trials))


def judge(spec: SearchSpace, trials: list[Trial], plan: Optional[Plan], confirmed: list[Trial]) -> Optional[dict]:
    """The verdict: from a seed grid's own trials, else from the confirmation's; None without either."""
    if spec.self_confirming:
        return verdict_from_grid(spec, trials)
    if plan is None:
        return None
    return verdict_from_confirmation(spec, confirmed, plan, tuning(spec, trials))


def verdict_from_confirmation(spec: SearchSpace, trials: list[Trial], plan: Plan, tuned: Optional[dict] = None
                              ) -> dict:
    """The confirmation's verdict; partial when some arm x seed never ended (an interrupted phase), its
    budget-matched runs included, and when they are still undecided although some arm would get one (the
    arms ended but the phase stopped before deciding them: `--resume` trains them). Each arm with a
    budget-matched run is also compared with it (`build_verdict`'s `matched`)."""
    groups, families = group_runs(trials, lambda t: t.arm)
    every = plan.arms + (plan.matched or [])
    partial = not arms_ended(replace(plan, arms=every), trials)
    if plan.matched is None and not partial:
        partial = bool(choose_matched(plan, trials)[0])
    matched = {label: m["arm"] for m in plan.matched or [] for label in m["for"]}
    return build_verdict(groups, families, "confirmation", plan.seeds, spec.budget, spec.resources.gpu, plan.notes,
                         margin=spec.confirm.equivalence_margin, tuning=tuned, selected_on=spec.search.metric,
                         partial=partial, arm_params={a["arm"]: a["params"] for a in every}, matched=matched)


def verdict_from_grid(spec: SearchSpace, trials: list[Trial]) -> dict:
    """A seed grid's own trials: arms are the trials' params except `seed` (each with every seed), in the
    space's order of values (never the order the trials came in). Where several rows share a baseline
    family (a grid over another dimension too, e.g. optim.lr), each arm is compared with the baseline row
    that has the same values of those other dimensions, else with the first in the space's order."""
    others = [k for k in spec.dim_keys if k != "seed" and k not in STRATEGY_KEYS]

    def label(t):
        extra = [f"{k.rpartition('.')[2]}={t.param(k)}" for k in others if k in t.active]
        return " ".join([t.strategy, *extra])

    runs = [replace(t, seed=decode(t.active.get("seed", spec.base_cfg.seed))) for t in trials]
    groups, families = group_runs(runs, label)
    first = {label(t): t for t in reversed(runs)}  # one trial per arm: where its values sit in the space
    order = sorted(groups, key=lambda lab: (_grid_position(spec, first[lab]), lab))
    rest = {lab: tuple(first[lab].active.get(k, _INACTIVE) for k in others) for lab in order}
    notes = [f"each arm is compared with the baseline row of the same {', '.join(others)} (else the first "
             "baseline row in the space's order)"] if others and len(order) > 1 else []
    seeds = sorted({t.seed for t in runs})
    return build_verdict({lab: groups[lab] for lab in order}, families, "grid", seeds, spec.budget,
                         spec.resources.gpu, notes, margin=spec.confirm.equivalence_margin, tuning=tuning(spec, trials),
                         baseline_of=_matched_baselines(order, families, rest))


_INACTIVE = "<inactive>"


def _grid_position(spec: SearchSpace, t: Trial) -> tuple:
    """A grid trial's place in the space: per dimension (except seed), the index of its value among the
    dimension's values (-1 when the dimension does not apply; its value for a sampled one)."""
    out = []
    for d in spec.dims:
        if d.key == "seed":
            continue
        value = t.active.get(d.key, _INACTIVE)
        out.append(-1 if value == _INACTIVE else list(d.values).index(value) if value in d.values else 0)
    return tuple(out)


def _matched_baselines(order: list[str], families: dict, rest: dict) -> dict:
    """label -> {baseline family: the baseline row with the same other values, else the first one}."""
    out = {}
    for lab in order:
        for fam in BASELINES:
            rows = [b for b in order if families[b] == fam]
            if rows:
                out.setdefault(lab, {})[fam] = next((b for b in rows if rest[b] == rest[lab]), rows[0])
    return out
