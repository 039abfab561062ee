"""The verdict: per strategy arm, test top-1 across seeds, its paired difference from the baseline, and a
plain sentence (helps, hurts, or no detectable difference). Pure: no Ray, no MLflow, no torch.

Arms come from the confirmation phase (the best configuration of each strategy family, re-trained with
the same seeds on the full training set) or, for a grid that runs every arm with several seeds and
selects nothing, from the grid's own trials. Differences are paired by seed: d_s = arm_s - baseline_s,
and the 95% interval is Student's t over the d_s. A strategy "helps" only when that interval excludes
zero in its favour.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Optional

from .formats import fixed, pm
from .metrics import finite_interval, is_finite, json_safe
from .trials import Trial

VERDICT_FILE = "verdict.json"
BASELINES = ("plain", "delta=1")  # reshuffled SGD (the practitioner's), the paper's fixed partition
WORDS = ("helps", "hurts", "no detectable difference")


def family_of(strategy: str) -> str:
    """'delta=0.5+trim-linear+splits=A-C-O' -> 'delta+trim+splits'; 'delta=1' and 'plain' stay."""
    if strategy in ("plain", "invalid", "?"):
        return strategy
    parts = []
    for part in strategy.split("+"):
        if part.startswith("delta="):
            parts.append("delta=1" if float(part[6:]) == 1.0 else "delta")
        else:
            parts.append(part.split("-")[0].split("=")[0])
    return "+".join(parts)


def family_rank(status: str, epoch_equiv, value: float, mode: str) -> tuple:
    """How the best trial of a strategy family is chosen (the confirmed arm, the report's curve): one that
    trained its whole budget first, then the one that went furthest, then the search metric."""
    return (status == "finished", round(epoch_equiv or 0.0, 2), value if mode == "max" else -value)


def _stat(values: list) -> dict:
    mean, ci, n = finite_interval(values)
    return {"mean": mean, "ci95": ci, "n": n}


def _paired(a: dict, b: dict) -> dict:
    """Mean and 95% t-interval of a[seed] - b[seed] over the seeds both have (finite)."""
    seeds = sorted(s for s in a if s in b and is_finite(a[s]) and is_finite(b[s]))
    out = _stat([a[s] - b[s] for s in seeds])
    out["seeds"] = seeds
    return out


def word(diff: dict, larger_is_better: bool = True) -> str:
    """helps | hurts | no detectable difference, from a paired difference's interval."""
    mean, ci = diff["mean"], diff["ci95"]
    if not (is_finite(mean) and is_finite(ci)):
        return WORDS[2]
    sign = 1 if larger_is_better else -1
    if sign * (mean - sign * ci) > 0:
        return WORDS[0]
    if sign * (mean + sign * ci) < 0:
        return WORDS[1]
    return WORDS[2]


def arm_entry(arm: str, family: str, runs: list[Trial], gpu: float) -> dict:
    """One arm from its trials (each with its seed and last report)."""
    ok = [r for r in runs if r.status in ("finished", "diverged") and r.last]
    by_seed = {r.seed: r.final("test_top1") for r in ok}
    seconds = [(r.last.get("time_train_s") or 0) + (r.last.get("time_eval_s") or 0) for r in ok]

    def mean_of(key):
        vals = [r.final(key) for r in ok if is_finite(r.final(key))]
        return sum(vals) / len(vals) if vals else math.nan

    return {
        "arm": arm, "family": family, "is_baseline": False, "n": len(ok),
        "seeds": sorted(by_seed), "trial_ids": [r.trial_id for r in runs],
        "failed": [r.trial_id for r in runs if r not in ok],
        "params": {k: v for k, v in runs[0].decoded().items() if k != "seed"} if runs else {},
        "test_top1": {**_stat(list(by_seed.values())), "values": by_seed},
        "convergence_epoch": {**_stat([r.final("convergence_epoch") for r in ok]),
                              "values": {r.seed: r.final("convergence_epoch") for r in ok}},
        "compute": {"epoch_equiv": mean_of("epoch_equiv"), "samples_forward": mean_of("samples_forward"),
                    "samples_with_grad": mean_of("samples_with_grad"),
                    "trial_seconds": sum(seconds) / len(seconds) if seconds else math.nan,
                    "gpu_seconds": (sum(seconds) / len(seconds)) * gpu if seconds else math.nan},
    }


def build_verdict(groups: dict[str, list[dict]], families: dict[str, str], source: str, seeds: list,
                  budget: float, gpu: float = 0.0, notes: Optional[list[str]] = None) -> dict:
    """The verdict of arms {label: runs}; `families`: label -> strategy family."""
    arms = [arm_entry(label, families[label], runs, gpu) for label, runs in groups.items()]
    present = {a["family"]: a for a in arms if a["n"]}
    baselines = [b for b in BASELINES if b in present]
    for a in arms:
        a["is_baseline"] = bool(baselines) and a is present.get(baselines[0])
        a["diffs"] = [{"baseline": present[b]["arm"], **_paired(a["test_top1"]["values"],
                                                               present[b]["test_top1"]["values"])}
                      for b in baselines if present[b] is not a]
        base = present.get(baselines[0]) if baselines else None
        a["convergence_change"] = _paired(a["convergence_epoch"]["values"], base["convergence_epoch"]["values"]) \
            if base is not None and base is not a else {"mean": math.nan, "ci95": math.nan, "n": 0, "seeds": []}
        a["word"] = "baseline" if a["is_baseline"] else (word(a["diffs"][0]) if a["diffs"] else "no baseline")
    arms.sort(key=lambda a: (not a["is_baseline"], -(a["test_top1"]["mean"] if is_finite(a["test_top1"]["mean"])
                                                      else -math.inf)))
    verdict = {"source": source, "metric": "test_top1", "seeds": list(seeds), "budget": budget,
               "baseline": present[baselines[0]]["arm"] if baselines else None,
               "baselines": [present[b]["arm"] for b in baselines], "arms": arms, "notes": list(notes or [])}
    verdict["sentences"] = sentences(verdict)
    return verdict


def sentences(verdict: dict) -> list[str]:
    """One plain sentence per non-baseline arm (and one when there is no baseline to compare with)."""
    out = []
    if verdict["baseline"] is None:
        return ["No baseline arm (plain SGD, hard_batch.delta null; or delta = 1) was confirmed, so no "
                "strategy can be judged: add it to the space."]
    for a in verdict["arms"]:
        if a["is_baseline"]:
            continue
        d = a["diffs"][0]
        n = d["n"]
        amount = f"{d['mean']:+.2f} ± {d['ci95']:.2f}" if is_finite(d["ci95"]) else \
            (f"{d['mean']:+.2f}, no interval" if is_finite(d["mean"]) else "no paired seeds")
        scale = f"at {verdict['budget']:g} epoch-equivalents with {n} paired seed{'s' * (n != 1)}"
        what = {"helps": "helps", "hurts": "hurts",
                "no detectable difference": "makes no detectable difference"}.get(a["word"], a["word"])
        out.append(f"{a['family']} ({a['arm']}) {what} against {d['baseline']} {scale} "
                   f"(test top-1 {amount} points, paired 95% CI).")
    return out


def to_markdown(verdict: dict) -> str:
    """'## Verdict': the table of arms and the sentences (report.md opens with it)."""
    bases = verdict["baselines"]
    head = ["arm", "seeds", "test top-1 %", *[f"vs {b} (paired)" for b in bases], "conv. epoch",
            "conv. change", "epoch-eq.", "samples fwd", "samples w/ grad", "GPU s"]
    rows = []
    for a in verdict["arms"]:
        diffs = {d["baseline"]: d for d in a["diffs"]}
        c = a["compute"]
        rows.append([a["arm"] + (" (baseline)" if a["is_baseline"] else ""), str(a["n"]), pm(a["test_top1"]),
                     *[("base" if b == a["arm"] else pm(diffs.get(b, {}), signed=True)) for b in bases],
                     pm(a["convergence_epoch"]), pm(a["convergence_change"], signed=True),
                     *[fixed(c[k], d, grouped=True) for k, d in (("epoch_equiv", 2), ("samples_forward", 0),
                                                                 ("samples_with_grad", 0), ("gpu_seconds", 1))]])
    source = ("confirmation runs: the best configuration of each strategy family (by validation), re-trained "
              "on the full training set" if verdict["source"] == "confirmation"
              else "the grid's own trials (every arm with every seed; nothing selected)")
    lines = ["## Verdict", "", *[f"- {s}" for s in verdict["sentences"]], "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
             *["| " + " | ".join(r) + " |" for r in rows], "",
             f"Test top-1 mean ± 95% t-interval across seeds {verdict['seeds']}, from {source}; differences "
             "are paired by seed. Compute per run: epoch-equivalents and samples forwarded, samples whose "
             "loss has a gradient (trimming keeps fewer), GPU seconds (train + eval x GPU share). The "
             "budget is equal in back-propagations for plain and delta runs, in epoch-equivalents for "
             "step-wise runs (see the epoch-eq. column).", *[f"\nNote: {n}" for n in verdict["notes"]], ""]
    return "\n".join(lines)


def to_json(verdict: dict) -> str:
    return json.dumps(json_safe(verdict), indent=2) + "\n"


def group_runs(runs: list[Trial], label_of) -> tuple[dict, dict]:
    """{label: trials}, {label: family} (a confirmation: arms by their label; a grid: by their params)."""
    groups, families = defaultdict(list), {}
    for r in runs:
        label = label_of(r)
        groups[label].append(r)
        families[label] = family_of(r.strategy)
    return dict(groups), families
