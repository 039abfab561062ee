"""The confirmation's records and the verdict from them, Ray-free: the confirmation trials' records
(`confirmed_trials`, `with_arm`: each with its arm, family and seed), how they are labelled in the live view
and described in MLflow (`ArmLabel`, `ArmRun`), each look judged (`judge_look`: the verdict over the looks so
far, its decisions recorded in the plan with the arms the next look trains), and the verdict (`judge`: from
the confirmation, budget-matched runs included, or from a seed grid's own trials; `verdict_on_disk`: judged
again from what a search left on disk), with each arm's variance split from its runs' per-example results.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..files import problem_of
from ..search.history import load_trials, read_statuses, warn_skipped
from ..search.space import SearchSpace, decode
from ..search.space.schema import CONFIRM_RESULTS_FILE
from ..search.trials import Trial, classify
from ..training.strategies.labels import strategy_keys
from .budget import choose_matched, confirm_dirs
from .comparisons import BASELINES, build_verdict, group_runs
from .confirm_plan import Plan, arms_ended, design, end_look, load_plan, tuning
from .variance import arm_split


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
    try:
        plan = load_plan(exp_dir)
    except UserError as exc:  # the report does without it: the verdict the search saved, if any
        warn_skipped(problem_of(exc), "the confirmation is not judged again")
        return None
    if plan is None:
        return None
    statuses = read_statuses(exp_dir / CONFIRM_RESULTS_FILE)
    confirmed = [with_arm(_as_reported(t), arms) for where, arms in confirm_dirs(exp_dir, plan)
                 for t in load_trials(where, statuses, phase="confirmation")]
    return verdict_from_confirmation(spec, confirmed, plan, tuning(spec, trials), exp_dir=exp_dir)


def _as_reported(t: Trial) -> Trial:
    """A confirmation trial with no recorded status yet (the phase is running or was killed): ended as its last
    report says (a confirmation run is never stopped early: a report with its whole budget is its end)."""
    if t.status in ("running", "unfinished") and t.last:
        return replace(t, status=classify("RUNNING", t.last))
    return t


def judge(spec: SearchSpace, trials: list[Trial], plan: Optional[Plan], confirmed: list[Trial],
          exp_dir: Optional[Path] = None) -> Optional[dict]:
    """The verdict: from a seed grid's own trials, else from the confirmation's; None without either."""
    if spec.self_confirming:
        return verdict_from_grid(spec, trials)
    if plan is None:
        return None
    return verdict_from_confirmation(spec, confirmed, plan, tuning(spec, trials), exp_dir=exp_dir)


def judge_look(spec: SearchSpace, exp_dir: Path, plan: Plan, look: int, confirmed: list[Trial]
               ) -> tuple[Plan, Optional[list]]:
    """Look `look` judged from the confirmation's trials so far (the verdict's own decisions, over the first
    `look` looks) and recorded in the plan: (the plan, the arms the next look trains; None: no look follows)."""
    verdict = verdict_from_confirmation(spec, confirmed, plan, looks=look)  # no exp_dir: no variance split to read
    return end_look(exp_dir, plan, look, verdict)


def verdict_from_confirmation(spec: SearchSpace, trials: list[Trial], plan: Plan, tuned: Optional[dict] = None,
                              looks: Optional[int] = None, exp_dir: Optional[Path] = None) -> dict:
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
    if looks is None and plan.looks is not None:  # the looks judged so far
        looks = sum(1 for r in plan.looks if r["judged"])
        partial = partial or not plan.done
    d = design(plan)
    return build_verdict(groups, families, "confirmation", plan.seeds, spec.budget, spec.resources.gpu, plan.notes,
                         margin=d.margin, tuning=tuned, selected_on=spec.search.metric,
                         partial=partial, arm_params={a["arm"]: a["params"] for a in every}, matched=matched,
                         design=d, looks=looks, primary=(plan.design or {}).get("primary"),
                         variance=_variance(groups, exp_dir, plan) if exp_dir is not None else None)


def _variance(groups: dict[str, list[Trial]], exp_dir: Path, plan: Plan) -> dict:
    """label -> the arm's variance split from its finished runs' per-example results (in their trial folders,
    under the confirmation's experiments)."""
    roots = [where for where, _ in confirm_dirs(exp_dir, plan)]
    out = {}
    for label, runs in groups.items():
        dirs = [d for t in runs if t.status == "finished"
                for d in (root / t.trial_id for root in roots) if d.is_dir()]
        split = arm_split(dirs) if len(dirs) >= 2 else None
        if split is not None:
            out[label] = split
    return out


def verdict_from_grid(spec: SearchSpace, trials: list[Trial]) -> dict:
    """A seed grid's own trials: arms are the trials' params except `seed` (each with every seed), in the
    space's order of values (never the order the trials came in). Where several rows share a baseline
    family (a grid over another dimension too, e.g. optim.lr), each arm is compared with the baseline row
    that has the same values of those other dimensions, else with the first in the space's order."""
    others = [k for k in spec.dim_keys if k != "seed" and k not in strategy_keys()]

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
