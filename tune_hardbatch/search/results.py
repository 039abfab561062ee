"""A search's results: its trials as records, the rows of results.csv and confirm_results.csv, the best
trial (`best_choice`, by `trials.choose`; printing: `console.py`).

Ray-free: works on a Ray `ResultGrid` passed in (duck-typed). The files' columns are made here and only
here, from the records (other tools read them: `final_<metric>`, `best_<metric>`, ...).
"""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..output.formats import csv_value
from .space import SearchSpace
from .space.arms import arm_of
from .trials import Choice, Trial, choose

CONFIRM_COLUMNS = ("trial_id", "status", "arm", "family", "seed", "final_test_top1", "convergence_epoch",
                   "converged", "epoch_equiv", "compute_equiv", "samples_forward", "samples_with_grad", "time_s",
                   "error")
REPORTED = ("epoch_equiv", "compute_equiv", "backprops", "samples_forward")  # from the last report


def convergence(last: dict) -> dict:
    """The convergence columns: the epoch only when the run converged (censored, empty, when it never did:
    its report then holds the last epoch_equiv, which is not a convergence epoch), and the 0/1 flag."""
    flag = last.get("converged")
    return {"convergence_epoch": last.get("convergence_epoch") if flag != 0 else None, "converged": flag}


def search_trials(space: SearchSpace, results, statuses: dict) -> list[Trial]:
    """One record per trial from a Ray `ResultGrid` (and the final Trial statuses seen by the live view):
    its sampled params, the ones that apply and its strategy label."""
    trials = []
    for i in range(len(results)):
        t = Trial.from_result(results[i], i, statuses, batch_size=space.base_cfg.optim.batch_size,
                              gpu=space.resources.gpu)
        params = {k: t.params[k] for k in space.dim_keys if k in t.params}
        strategy, family, active = space.describe(params)
        trials.append(replace(t, params=params, strategy=strategy, family=family, active=active,
                              arm=arm_of(t.params)))
    return trials


def search_row(t: Trial, space: SearchSpace) -> dict:
    """A search trial's row of results.csv: id, status, strategy, each dimension (decoded; empty when it does
    not apply), test top-1 (final and best), the search metric (final and best), compute, the error."""
    metric = space.search.metric
    row = {"trial_id": t.trial_id, "status": t.status, **({"arm": t.arm} if space.arms else {}), "strategy": t.strategy,
           **{k: t.param(k) for k in space.dim_keys},
           "final_test_top1": t.final("test_top1"), "best_test_top1": t.best("test_top1"),
           **convergence(t.last), **{k: t.last.get(k) for k in REPORTED}, "time_s": t.last.get("time_total_s")}
    if metric != "test_top1":
        row[f"final_{metric}"] = t.final(metric)
        row[f"best_{metric}"] = t.best(metric, space.search.mode)
    row["error"] = t.error
    return row


def confirm_row(t: Trial) -> dict:
    """A confirmation trial's row of confirm_results.csv (`CONFIRM_COLUMNS`)."""
    last = t.last
    return {"trial_id": t.trial_id, "status": t.status, "arm": t.arm, "family": t.family, "seed": t.seed,
            "final_test_top1": t.final("test_top1"), **convergence(last), "epoch_equiv": last.get("epoch_equiv"),
            "compute_equiv": last.get("compute_equiv"),
            "samples_forward": last.get("samples_forward"), "samples_with_grad": last.get("samples_with_grad"),
            "time_s": last.get("time_total_s"),
            "error": t.error}


def write_results(trials: list[Trial], space: SearchSpace, path: Path, phase: str = "search") -> None:
    """results.csv (`phase` search) or confirm_results.csv (confirmation): one row per record, written whole
    (a temporary file, then a rename), so that `report` on the search never reads it half written."""
    row = search_row if phase == "search" else lambda t, _: confirm_row(t)
    columns = list(row(Trial("", "", phase), space))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for t in trials:
            values = row(t, space)
            writer.writerow([csv_value(values[c]) for c in columns])
    os.replace(tmp, path)


CANDIDATES = ("finished", "stopped_early", "unfinished")  # a diverged or failed trial is no best configuration


def best_choice(trials: list[Trial], space: SearchSpace) -> Optional[Choice]:
    """The search's best trial (best_config.yaml) by the rule that chooses every arm's best (`trials.choose`):
    the trials that trained their whole budget by their final search metric; when none did, the trials
    stopped early or interrupted at the highest budget all of them reached (a rung's milestone where the
    early stopper compared them there). None without a finite value."""
    return choose([t for t in trials if t.status in CANDIDATES], space.search.metric, space.search.mode,
                  space.rungs)


def best_trial(trials: list[Trial], space: SearchSpace) -> Optional[Trial]:
    """`best_choice`'s trial."""
    found = best_choice(trials, space)
    return found.trial if found is not None else None
