"""The verdict: per strategy arm, test top-1 across seeds, its paired comparisons with the baseline, the
convergence epoch (censored when a run never converged), the compute at which it reaches the baseline's
accuracy, and plain sentences. Pure: no Ray, no MLflow, no torch. Wording: `words.py`.

Arms come from the confirmation phase (the best configuration of each declared arm or strategy family,
re-trained with the same seeds on the full training set) or, for a grid that runs every arm with several
seeds and selects nothing, from the grid's own trials. Differences are paired by seed: d_s = arm_s - baseline_s.

The baseline is plain reshuffled SGD when present, else delta = 1 (the paper's fixed partition). Every
other arm is compared with it, each delta < 1 arm also with delta = 1 (the paper's own comparison), and an
arm that spends less compute than the baseline also with its budget-matched baseline when the confirmation
trained one (`matched`: plain SGD for the arm's compute with its schedule fully decayed within it, Kaddour
et al. 2023; the comparison "sb vs plain at equal compute (7.46)"); a budget-matched row is a reference,
compared with nothing itself; an arm whose random control was confirmed ('delta<1' and 'delta<1-random')
is also compared with it (the effect of hardness at equal compute).

The primary family (`confirm.primary`, else every arm but a random control against the baseline, and every
arm against its random control) carries words, decided by `sequential` (group-sequential repeated
intervals, Holm across the family, a pooled error term where the variances allow): "helps", "hurts",
"equivalent" within the resolution, "unresolved" after the last look (with the difference it could have
detected), "open" while looks remain. The other comparisons are estimates with a 95% interval, marked
exploratory. Savings compare each seed's curve with that seed's baseline run.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Optional

from ..metrics import finite_interval, is_finite, json_safe
from ..search.space.sections import pair_names
from ..search.trials import Trial, compute_of
from . import sequential
from .stats import first_reach, paired_t
from .words import CONTROL, MATCHED_WORD, sentences, to_markdown  # noqa: F401 - to_markdown: report.md's verdict

VERDICT_FILE = "verdict.json"
BASELINES = ("plain", "delta=1")  # reshuffled SGD (the practitioner's), the paper's fixed partition
WORDS = ("helps", "hurts", "equivalent", sequential.UNRESOLVED, sequential.OPEN)
NOT_JUDGED = sequential.NOT_JUDGED
ALPHA = sequential.ALPHA  # familywise, over the primary comparisons of one verdict
POWER = sequential.POWER  # of the difference an unresolved comparison could have detected
RANDOM = "-random"  # a random control's family: its twin's family with this suffix (labels.strategy_family)


def compared_as(trial: Trial) -> str:
    """What a search trial is compared as: its declared arm, else its strategy family (a joint search)."""
    return trial.arm or trial.family or "?"


def _stat(values: list) -> dict:
    mean, ci, n = finite_interval(values)
    return {"mean": mean, "ci95": ci, "n": n}


def _paired(a: dict, b: dict) -> dict:
    """Mean and 95% t-interval of a[seed] - b[seed] over the seeds both have (finite)."""
    seeds = sorted(s for s in a if s in b and is_finite(a[s]) and is_finite(b[s]))
    out = _stat([a[s] - b[s] for s in seeds])
    out["seeds"] = seeds
    return out


def _convergence(ok: list[Trial]) -> dict:
    """Convergence epoch over the runs that converged (censored: a run with `converged` 0 has no epoch,
    never its last one); `converged` k of `n` runs. A report without `converged` (older runs) counts as
    converged when its epoch is finite."""
    values = {}
    for r in ok:
        epoch, flag = r.final("convergence_epoch"), r.final("converged")
        values[r.seed] = epoch if is_finite(epoch) and flag != 0 else None
    mean, ci, k = finite_interval(list(values.values()))
    return {"mean": mean, "ci95": ci, "converged": k, "n": len(ok), "values": values}


def _params(runs: list[Trial], given: Optional[dict]) -> dict:
    """The arm's parameters without the seed: `given` (the confirmation's arm), else the first run's
    active parameters that has any."""
    if given is None:
        given = next((r.decoded() for r in runs if r.active), {})
    return {k: v for k, v in given.items() if k != "seed"}


def arm_entry(arm: str, family: str, runs: list[Trial], gpu: float, params: Optional[dict] = None) -> dict:
    """One arm from its trials (each with its seed, last report and history)."""
    ok = [r for r in runs if r.status in ("finished", "diverged") and r.last]
    by_seed = {r.seed: r.final("test_top1") for r in ok}
    seconds = [(r.last.get("time_train_s") or 0) + (r.last.get("time_eval_s") or 0) for r in ok]

    def mean_of(values):
        vals = [v for v in values if is_finite(v)]
        return sum(vals) / len(vals) if vals else math.nan

    return {
        "arm": arm, "family": family, "is_baseline": False, "n": len(ok),
        "seeds": sorted(by_seed), "trial_ids": [r.trial_id for r in runs],
        "failed": [r.trial_id for r in runs if r not in ok], "params": _params(runs, params),
        "test_top1": {**_stat(list(by_seed.values())), "values": by_seed},
        "convergence_epoch": _convergence(ok),
        "compute": {**{k: mean_of([r.final(k) for r in ok])
                       for k in ("epoch_equiv", "samples_forward", "samples_with_grad")},
                    "compute_equiv": mean_of([compute_of(r.last) for r in ok]),
                    "by_seed": {r.seed: compute_of(r.last) for r in ok},
                    "trial_seconds": mean_of(seconds), "gpu_seconds": mean_of(seconds) * gpu},
        "curves": {r.seed: [(compute_of(h), h.get("test_top1")) for h in (r.history or [r.last])] for r in ok},
    }


def savings(arm: dict, base: dict) -> dict:
    """Per seed, the compute at which the arm's test top-1 first reaches that seed's baseline run's final
    test top-1, as a share of that baseline run's compute (`reach`); mean and 95% interval of the shares
    when every paired seed reached it (else censored: `reached` k of `n`), and the saving 1 - share, in %."""
    target, budget = base["test_top1"]["values"], base["compute"]["by_seed"]
    seeds = [s for s in arm["curves"] if is_finite(target.get(s)) and is_finite(budget.get(s)) and budget[s] > 0]
    values = {}
    for s in seeds:
        reach = first_reach(arm["curves"][s], target[s])
        values[s] = None if reach is None else reach / budget[s]
    reached = sum(v is not None for v in values.values())
    every = reached == len(values) and reached > 0
    stat = _stat(list(values.values())) if every else {"mean": math.nan, "ci95": math.nan, "n": reached}
    return {"values": values, "reached": reached, "n": len(values), "mean": stat["mean"], "ci95": stat["ci95"],
            "saving_pct": 100 * (1 - stat["mean"]) if every else math.nan}


def compare(arm: dict, base: dict) -> dict:
    """The paired comparison of `arm` with `base` (test top-1, by seed) over every seed both have: its own
    t-statistics (`paired_t`); the decision and the interval it rests on come from `decide`."""
    a, b = arm["test_top1"]["values"], base["test_top1"]["values"]
    seeds = sorted(s for s in a if s in b and is_finite(a[s]) and is_finite(b[s]))
    d = [a[s] - b[s] for s in seeds]
    return {"name": f"{arm['arm']} vs {base['arm']}", "arm": arm["arm"], "baseline": base["arm"],
            "baseline_family": base["family"], **paired_t(d), "seeds": seeds}


def kind_of(c: dict) -> str:
    """What a comparison's other arm is to the arm: baseline, delta=1 (the paper's), random control, equal
    compute (a budget-matched run)."""
    if c.get("compute_budget") is not None:
        return "equal compute"
    return CONTROL if c["baseline_family"] == CONTROL else c["baseline_family"]


def is_primary(c: dict, family: str, base_family: Optional[str], chosen: Optional[list]) -> bool:
    """Whether a comparison carries words: those named in `confirm.primary` when given (`chosen`); else every
    arm (not a random control) against the baseline, and every arm against its random control."""
    if chosen is not None:
        return c["name"] in chosen
    kind = kind_of(c)
    return kind == CONTROL or (kind == base_family and not family.endswith(RANDOM))


def decide(arms: list[dict], design: sequential.Design, looks: int, chosen: Optional[list] = None
           ) -> tuple[int, list]:
    """Each comparison's decision (in place): the primary ones by the group-sequential design over its first
    `looks` looks (`sequential.replay`: helps, hurts, equivalent, unresolved at the last look, open before
    it), each with the repeated interval it rests on, its error term (pooled or own) and df; the secondary
    ones an estimate with a 95% interval, marked exploratory. Returns the number of primary comparisons and,
    for a sequential design, the looks' trace (`sequential.trace`: each look's intervals)."""
    values = {a["arm"]: a["test_top1"]["values"] for a in arms}
    base = next((a["family"] for a in arms if a["is_baseline"]), None)
    family = {a["arm"]: a["family"] for a in arms}
    pairs = [(c, sequential.Comparison(c["name"], c["arm"], c["baseline"],
                                       is_primary(c, family[c["arm"]], base, chosen), kind_of(c)))
             for a in arms for c in a["diffs"]]
    comps = [p for _, p in pairs]
    m = max(1, sum(p.primary for p in comps))
    decided = sequential.replay(design, values, comps, looks) if looks else {}
    pooled = sequential.error_term(values, [p for p in comps if p.primary])
    for c, p in pairs:
        if p.primary:
            d = decided.get(p.name) or {**sequential.exploratory(values, p, pooled), "decision": sequential.OPEN}
            d = {**d, "min_detectable": sequential.detectable(d)}
        else:
            d = sequential.exploratory(values, p, pooled)
        c.update({"primary": p.primary, "decision": d["decision"], "judged": d["n"] >= 2,
                  "raw95": list(sequential.raw_interval(d)),
                  **{f"decided_{k}": d.get(k) for k in ("n", "mean", "se", "sd", "df", "look")},
                  **{k: d.get(k) for k in ("error", "level", "low", "high", "alpha", "min_detectable", "within")}})
        c["fixed_seeds"] = sequential.fixed_seeds_for(d["sd"], design.margin, design.alpha / m,
                                                      df_extra=d["df"] - d["n"] + 1) \
            if p.primary and design.margin else math.nan
    trace = sequential.trace(design, values, comps, looks) if len(design.looks) > 1 and looks else []
    return sum(p.primary for p in comps), trace


def _baselines(arms: list[dict], baseline_of: Optional[dict]):
    """(the first arm with runs of each baseline family, in order; a function (arm, family) -> the arm it is
    compared with: `baseline_of[arm label][family]` when given, else that family's first arm)."""
    first: dict[str, dict] = {}
    for a in arms:
        if a["n"]:
            first.setdefault(a["family"], a)
    by_label = {a["arm"]: a for a in arms}

    def against(a: dict, family: str) -> Optional[dict]:
        label = (baseline_of or {}).get(a["arm"], {}).get(family)
        return by_label.get(label, first.get(family)) if label else first.get(family)

    return {f: first[f] for f in BASELINES if f in first}, against


def _comparisons(a: dict, base: Optional[dict], present: dict, against, controls: dict) -> list[dict]:
    """The worded comparisons of arm `a`: with the baseline; a delta < 1 arm also with delta = 1 (only the
    family 'delta': delta = 1 is the paper's reference for hard batches); an arm whose random control was
    confirmed ('delta' and 'delta-random', 'trim' and 'trim-random') also with it: the same compute and
    the same number of samples, chosen without hardness, so the difference is the effect of *hardness*
    (Okanovic et al. 2023). `controls`: family -> its first arm with runs."""
    if base is None or a["family"] == base["family"]:
        return []
    families = [base["family"]] + (["delta=1"] if a["family"] == "delta" and "delta=1" in present
                                   and base["family"] != "delta=1" else [])
    out = [compare(a, b) for f in families if (b := against(a, f)) is not None]
    control = None if a["family"].endswith(RANDOM) else controls.get(a["family"] + RANDOM)
    if control is not None:
        out.append({**compare(a, control), "baseline_family": CONTROL})
    return out


def build_verdict(groups: dict[str, list[Trial]], families: dict[str, str], source: str, seeds: list,
                  budget: float, gpu: float = 0.0, notes: Optional[list[str]] = None, *,
                  margin: Optional[float] = None, tuning: Optional[dict] = None, selected_on: Optional[str] = None,
                  partial: bool = False, arm_params: Optional[dict] = None,
                  baseline_of: Optional[dict] = None, matched: Optional[dict] = None,
                  design: Optional[sequential.Design] = None, looks: Optional[int] = None,
                  primary: Optional[list] = None, variance: Optional[dict] = None) -> dict:
    """The verdict of arms {label: runs}; `families`: label -> strategy family; `margin`: the equivalence
    margin (points); `tuning`: the search's {"mode", "sampler", "trials", "finished"}; `selected_on`: the
    metric that chose the arms; `partial`: an interrupted confirmation; `arm_params`: label -> params;
    `baseline_of`: label -> {baseline family: the label it is compared with} (a grid's rows matched on
    their other dimensions); `matched`: label -> its budget-matched baseline's label; `design` (None: one
    look over every seed) and `looks` judged (None: all); `primary`: `confirm.primary` (None: the default
    family); `variance`: label -> the arm's `variance.variance_split`."""
    arms = [arm_entry(label, families[label], runs, gpu, (arm_params or {}).get(label))
            for label, runs in groups.items()]
    present, against = _baselines(arms, baseline_of)
    base = next(iter(present.values()), None)
    references = set((matched or {}).values())
    _arm_diffs(arms, base, present, against, matched or {}, tuning)
    notes = list(notes or []) + _chosen_pairs(arms, primary)
    if design is None:
        design = sequential.Design(tuple(seeds), (len(seeds),), ALPHA, margin)
    judged = len(design.looks) if looks is None else looks
    m, trace = decide(arms, design, judged, primary)
    _resolutions(arms)
    for a in arms:
        reference = a["arm"] in references
        a["variance"] = (variance or {}).get(a["arm"])
        a["word"] = "baseline" if a["is_baseline"] else MATCHED_WORD if reference else \
            (a["diffs"][0]["decision"] if a["diffs"] else "no baseline")
        partner = against(a, base["family"]) if base is not None else None
        a["savings"] = None if a["is_baseline"] or reference or partner is None else savings(a, partner)
    for a in arms:
        a.pop("curves")  # learning curves: in the runs' own records, not in verdict.json
    arms.sort(key=lambda a: (0 if a["is_baseline"] else 1 if a["arm"] in references else 2,
                             -(a["test_top1"]["mean"] if is_finite(a["test_top1"]["mean"]) else -math.inf)))
    verdict = {"source": source, "metric": "test_top1", "seeds": list(seeds), "budget": budget,
               "baseline": base["arm"] if base is not None else None,
               "baselines": [b["arm"] for b in present.values()], "comparisons": m, "alpha": ALPHA,
               "power": POWER, "margin": margin, "selected_on": selected_on, "tuning": tuning,
               "partial": bool(partial), "budget_matched": dict(matched or {}), "arms": arms,
               "design": {"seeds": list(design.seeds), "looks": list(design.looks), "alpha": design.alpha,
                          "margin": design.margin, "judged": judged, "sequential": len(design.looks) > 1,
                          "primary": primary, "trace": trace},
               "notes": list(notes or [])}
    verdict["sentences"] = sentences(verdict)
    return verdict


def _arm_diffs(arms: list[dict], base: Optional[dict], present: dict, against, matched: dict,
               tuning: Optional[dict]) -> None:
    """Each arm's comparisons (`diffs`: `_comparisons`, and the one at equal compute), its convergence change
    against its baseline and its tuning (in place); a budget-matched run is compared with nothing itself."""
    by_label, references = {a["arm"]: a for a in arms}, set(matched.values())
    controls = {f: a for a in reversed(arms) if a["n"] and (f := a["family"]).endswith(RANDOM)}
    none = {"mean": math.nan, "ci95": math.nan, "n": 0, "seeds": []}
    for a in arms:
        a["is_baseline"] = base is not None and a["family"] == base["family"]
        reference = a["arm"] in references
        a["diffs"] = [] if reference else _comparisons(a, base, present, against, controls)
        if not reference and a["arm"] in matched and matched[a["arm"]] in by_label:
            a["diffs"].append(_at_equal_compute(a, by_label[matched[a["arm"]]], base))
        partner = against(a, base["family"]) if base is not None and not reference else None
        a["convergence_change"] = _paired(a["convergence_epoch"]["values"], partner["convergence_epoch"]["values"]) \
            if partner is not None and not a["is_baseline"] else dict(none)
        _tuning(a, tuning)
        if reference:  # a budget-matched run was not searched: its family's curve is the baseline's
            a["tuning_gain"] = None


def _chosen_pairs(arms: list[dict], primary: Optional[list]) -> list[str]:
    """`confirm.primary`'s comparisons that no default rule makes, added to their arm (in place; the column
    "vs chosen"); notes for names that match no confirmed arm."""
    by_label, notes = {a["arm"]: a for a in arms}, []
    have = {c["name"] for a in arms for c in a["diffs"]}
    for name in primary or []:
        left, right = pair_names(name)
        if name in have:
            continue
        if left in by_label and right in by_label:
            by_label[left]["diffs"].append({**compare(by_label[left], by_label[right]),
                                            "baseline_family": CHOSEN})
        else:
            notes.append(f"confirm.primary names {name!r}, but no such arms were confirmed")
    return notes


CHOSEN = "chosen"  # the column of comparisons only confirm.primary asks for


def _at_equal_compute(a: dict, ref: dict, base: Optional[dict]) -> dict:
    """Arm `a` against its budget-matched baseline `ref` (plain SGD for `a`'s compute, `compute_budget` in its
    params, else its measured compute): "sb vs plain at equal compute (7.46)"."""
    c = compare(a, ref)
    c["compute_budget"] = ref["params"].get("compute_budget", ref["compute"]["compute_equiv"])
    plain = base["arm"] if base is not None and base["family"] == "plain" else "plain"
    c["name"] = f"{a['arm']} vs {plain} at equal compute ({c['compute_budget']:g})"
    return c


def _tuning(arm: dict, tuning: Optional[dict]) -> None:
    """The arm's number of search trials (and of those that trained their whole budget) and the expected gain
    of one more search trial (`tuning_gain`, from its tuning curve; None for a grid), by label or family."""
    def count(key):
        table = (tuning or {}).get(key) or {}
        return table.get(arm["arm"], table.get(arm["family"]))

    arm["search_trials"], arm["search_finished"] = count("trials"), count("finished")
    gain = count("gains")
    arm["tuning_gain"] = {**gain, "metric": tuning.get("metric"), "resolution": math.nan, "against": None} \
        if gain is not None else None


def _resolutions(arms: list[dict]) -> None:
    """Beside each arm's expected gain of one more trial, the resolution of its comparison with the baseline
    (its minimum detectable difference); the baseline's: the largest of the comparisons with it."""
    for a in arms:
        g = a.get("tuning_gain")
        if g is None:
            continue
        if a["is_baseline"]:
            mdes = [b["diffs"][0]["min_detectable"] for b in arms if b["diffs"] and
                    b["diffs"][0]["baseline"] == a["arm"] and is_finite(b["diffs"][0]["min_detectable"])]
            g.update(resolution=max(mdes) if mdes else math.nan, against=None)
        elif a["diffs"] and is_finite(a["diffs"][0]["min_detectable"]):
            g.update(resolution=a["diffs"][0]["min_detectable"], against=a["diffs"][0]["baseline"])


def to_json(verdict: dict) -> str:
    return json.dumps(json_safe(verdict), indent=2) + "\n"


def group_runs(runs: list[Trial], label_of) -> tuple[dict, dict]:
    """{label: trials}, {label: family} (a confirmation: arms by their label; a grid: by their params)."""
    groups, families = defaultdict(list), {}
    for r in runs:
        label = label_of(r)
        groups[label].append(r)
        families[label] = r.family or "?"
    return dict(groups), families
