"""`tune-hardbatch report NAME|PATH`: the verdict, importances, tables (Markdown, CSV, JSON) and plots.

report.md opens with the verdict (judged again from the trials on disk by `judgement.verdict_on_disk`, and
written to `verdict.json`: per confirmed arm, test top-1 across seeds and its Holm-corrected paired
differences), then each arm's best search trial (`confirm_plan.best_per_arm`: the budget it was compared
at and when it started), the tuning curves with their bands and the expected gain of one more trial beside
the verdict's resolution (`verdict/tuning_curves.py`), how much each searched dimension mattered for
the validation metric (`verdict/importances.py`), then the search's trials grouped into arms (trials whose
parameters agree except for `seed`: validation and test top-1 as mean and 95% t-interval across seeds,
the convergence epoch over the runs that converged and its change against the baseline arm in %,
compute). Plots: confirmed arms with intervals, importances, every trial's validation value and the best
so far in the order the trials started, per arm its best trial's validation curve against compute, and the
tuning curves with their bands. Works on a
finished or running search (`history.load_trials` reads the trial directories). Imports no Ray.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

from ..errors import UserError
from ..metrics import finite_interval, is_finite, json_safe
from ..search.history import gpu_fraction, load_trials, optional_json, saved_space, warn_skipped
from ..search.trials import Trial, compute_of, start_order
from ..training.strategies.labels import strategy_keys
from ..verdict.comparisons import BASELINES, VERDICT_FILE
from ..verdict.comparisons import to_json as verdict_json
from ..verdict.comparisons import to_markdown as verdict_markdown
from ..verdict.confirm_plan import best_per_arm, sampler_of, start_indexes
from ..verdict.importances import importances_markdown, param_importances
from ..verdict.judgement import verdict_on_disk
from ..verdict.tuning_curves import tuning_curves, tuning_markdown
from ..verdict.words import resolution_phrase
from .formats import csv_value, fixed, pm

REPORT_FILE = "report.md"
PLOTS = ("confirmed_arms.png", "importances.png", "best_so_far.png", "best_curves.png", "tuning_curves.png",
         "confirmation_looks.png")
NOT_ARM_KEYS = {"seed", "strategy", "arm"}


def _arm_key(params: dict) -> tuple:
    return tuple(sorted((k, json.dumps(v)) for k, v in params.items() if k not in NOT_ARM_KEYS))


def _label(trial: Trial) -> str:
    extra = [f"{k.rpartition('.')[2]}={_short(v)}" for k, v in sorted(trial.params.items())
             if k not in NOT_ARM_KEYS and k not in strategy_keys() and not k.startswith("hard_batch.")]
    return " ".join([f"{trial.arm}:" if trial.arm else "", trial.strategy, *extra]).strip()


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def arm_rows(trials: list[Trial], gpu: float = 0.0) -> list[dict]:
    """One row per arm, computed from each trial's last report (finished trials for the accuracies)."""
    groups = defaultdict(list)
    for t in trials:
        groups[_arm_key(t.params)].append(t)
    rows = []
    for members in groups.values():
        done = [t for t in members if t.history and t.status in ("finished", "running")]
        last = [t.last for t in done]
        every = [t.last for t in members if t.history]
        seconds = [h.get("time_train_s", 0) + h.get("time_eval_s", 0) for h in every]
        row = {"arm": _label(members[0]), "strategy": members[0].strategy,
               "delta": members[0].params.get("hard_batch.delta"), "trials": len(members),
               "seeds": len(done)}
        for key in ("train_top1", "val_top1", "test_top1"):
            row[key], row[key + "_ci95"], _ = finite_interval([h.get(key) for h in last])
        converged = [h.get("convergence_epoch") for h in last if h.get("converged") == 1]  # the rest: censored
        row["convergence_epoch"], row["convergence_epoch_ci95"], _ = finite_interval(converged)
        row["converged"] = len(converged)  # of row["seeds"]
        row["best_test_top1"] = finite_interval([max((h["test_top1"] for h in t.history), default=math.nan)
                                          for t in done])[0]
        row["samples_forward"] = statistics.mean([h["samples_forward"] for h in every]) if every else math.nan
        row["trial_seconds"] = sum(seconds)
        row["gpu_seconds"] = sum(seconds) * gpu
        row["statuses"] = ", ".join(f"{n} {s}" for s, n in sorted(_count(t.status for t in members).items()))
        rows.append(row)
    base = baseline(rows)
    for row in rows:
        b = base["convergence_epoch"] if base else math.nan
        row["convergence_change_pct"] = 100 * (row["convergence_epoch"] - b) / b if base and b else math.nan
        row["baseline"] = base is row
    key = "val_top1" if any(is_finite(r["val_top1"]) for r in rows) else "test_top1"  # never chosen on test
    return sorted(rows, key=lambda r: -r[key] if is_finite(r[key]) else math.inf)


def _count(items) -> dict:
    out = defaultdict(int)
    for i in items:
        out[i] += 1
    return dict(out)


def baseline(rows: list[dict]) -> Optional[dict]:
    """The baseline arm, as the verdict's: plain reshuffled SGD if present, else delta = 1 (fixed partition)."""
    for strategy in BASELINES:
        found = [r for r in rows if r["strategy"] == strategy and r["seeds"]]
        if found:
            return max(found, key=lambda r: r["seeds"])
    return None


# ---------------------------------------------------------------------------------------------------
# Formats

COLUMNS = [("arm", "arm"), ("seeds", "seeds"), ("train_top1", "train top-1 %"), ("val_top1", "val top-1 %"),
           ("test_top1", "test top-1 %"),
           ("convergence_epoch", "conv. epoch"), ("convergence_change_pct", "conv. vs base %"),
           ("samples_forward", "samples fwd"), ("trial_seconds", "trial s"), ("gpu_seconds", "GPU s"),
           ("statuses", "trials")]


def _cell(row: dict, key: str) -> str:
    v = row[key]
    if key == "convergence_epoch" and row["converged"] < row["seeds"]:
        k, n = row["converged"], row["seeds"]
        return f"not conv. ({n - k} of {n})" if not k else \
            f"{pm({'mean': v, 'ci95': row[key + '_ci95']})} ({k} of {n} conv.)"
    if key in ("train_top1", "val_top1", "test_top1", "convergence_epoch"):
        return pm({"mean": v, "ci95": row[key + "_ci95"]})
    if key == "convergence_change_pct":
        return "base" if row["baseline"] else fixed(v, 1, signed=True)
    if key == "samples_forward":
        return fixed(v, 0, grouped=True)
    if isinstance(v, float):
        return fixed(v, 1)
    return str(v)


def to_markdown(rows: list[dict], title: str = "") -> str:
    head = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    sep = "|" + "|".join("---" if k == "arm" else "---:" for k, _ in COLUMNS) + "|"
    body = ["| " + " | ".join(_cell(r, k) for k, _ in COLUMNS) + " |" for r in rows]
    notes = ("\nMean ± 95% t-interval across seeds (finished trials, last report), ordered by validation top-1 "
             "(test top-1 is recorded, never used to choose). Convergence epoch: the first "
             "report whose train loss is not bettered by more than tol x the first loss in the next `patience` "
             "reports, over the runs that converged (\"k of n conv.\" when some did not: a run that never "
             "converged is censored, not given its last epoch); change against the baseline arm (plain if present, "
             "else delta = 1). Compute: samples forwarded per trial (mean), trial and GPU seconds summed over the "
             "arm's trials.\n")
    return (f"# {title}\n\n" if title else "") + "\n".join([head, sep, *body]) + "\n" + notes


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    keys = [k for k in rows[0] if k != "baseline"] + ["baseline"] if rows else []
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: csv_value(r[k], nan="") for k in keys})
    return buf.getvalue()


def to_json(rows: list[dict]) -> str:
    return json.dumps(json_safe(rows), indent=2)


# ---------------------------------------------------------------------------------------------------
# Plots


def make_plots(trials: list[Trial], verdict: Optional[dict], importances: Optional[dict], metric: str, mode: str,
               out_dir: Path, tuning: tuple = ({}, ""), rungs: Sequence[float] = ()) -> list[Path]:
    """The report's PNGs; `tuning`: (tuning curves {arm: `tuning_curves.Curve`}, the sampler's name);
    `rungs`: the early stopper's milestones (the best trials are chosen at one of them when none finished)."""
    from . import plots  # matplotlib with the Agg backend

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if verdict and verdict["arms"]:
        paths.append(plots.confirmed_arms(verdict["arms"], out_dir / PLOTS[0], baseline=verdict.get("baseline")))
    if importances is not None:
        paths.append(plots.importances(importances, out_dir / PLOTS[1]))
    paths.append(plots.best_so_far(started_points(trials, metric), out_dir / PLOTS[2], metric, mode))
    curves = best_curves(trials, metric, mode, rungs)
    if curves:
        paths.append(plots.best_curves(curves, out_dir / PLOTS[3], metric))
    if tuning[0]:
        paths.append(plots.tuning_curves(tuning[0], out_dir / PLOTS[4], metric, tuning[1]))
    if verdict and (verdict.get("design") or {}).get("trace"):
        paths.append(plots.confirmation_looks(verdict["design"], out_dir / PLOTS[5]))
    return paths


def started_points(trials: list[Trial], metric: str) -> list[tuple]:
    """(k, last value of `metric`, status) of every trial, k = 1.. in the order the trials started
    (`trials.start_order`: from their first report's timestamp), not in the order of their ids."""
    return [(k, _last(t, metric), t.status) for k, t in enumerate(start_order(trials), start=1)]


def _last(trial: Trial, metric: str) -> float:
    v = trial.final(metric)
    return float(v) if is_finite(v) else math.nan


def best_curves(trials: list[Trial], metric: str, mode: str, rungs: Sequence[float] = ()
                ) -> dict[str, tuple[list, list]]:
    """Per arm (a joint search: per strategy family), the validation curve (metric against compute, in
    epoch-equivalents) of its best trial, chosen as the confirmation chooses (`confirm_plan.best_per_arm`;
    a running trial counts as stopped early)."""
    best = best_per_arm(trials, metric, mode, rungs, statuses=("finished", "stopped_early", "running"))
    return {arm: ([compute_of(h) for h in c.trial.reports()], [h.get(metric, math.nan) for h in c.trial.reports()])
            for arm, c in sorted(best.items())}


def chosen_markdown(trials: list[Trial], metric: str, mode: str, rungs: Sequence[float] = (),
                    order: Sequence[str] = ()) -> str:
    """A table: per arm, the search trial chosen as its best (what the confirmation re-trains), the budget it
    was compared at, with how many trials, its value there, and when it started within its arm."""
    best = best_per_arm(trials, metric, mode, rungs)
    if not best:
        return ""
    starts = start_indexes(trials)
    rank = {arm: i for i, arm in enumerate(order)}
    rows = []
    for arm in sorted(best, key=lambda a: (rank.get(a, len(rank)), a)):
        c = best[arm]
        k, n = starts.get(c.trial.trial_id, (None, None))
        at = f"{c.budget:.3g}" if is_finite(c.budget) else "?"
        rows.append([arm, c.trial.trial_id, f"{k} of {n}" if k else "?",
                     f"full budget ({at})" if c.full else f"{at} (highest all reached)",
                     str(c.compared), fixed(c.value, 2)])
    head = ["arm", "chosen trial", "started", "compared at (epoch-eq. of compute)", "among", metric]
    return "\n".join([
        f"Each arm's best search trial by `{metric}` (validation) at one budget every compared trial reached: "
        "the trials that trained their whole budget, by their final values; only when none did, every trial "
        "stopped early, each at its first report reaching the highest budget all of them reached (a rung of "
        "the early stopper). A trial is never preferred for having trained longer. Started: k-th of the arm's n "
        "search trials, by start time (Ray's report timestamp minus the trial's time at its first report, whole "
        "seconds). Among: the trials compared.", "",
        "| " + " | ".join(head) + " |", "|---|---|---:|---|---:|---:|",
        *["| " + " | ".join(r) + " |" for r in rows], ""])


# ---------------------------------------------------------------------------------------------------
# Entry points


def build_report(exp_dir: Path, verdict: Optional[dict] = None) -> tuple[list[Trial], list[dict], Path, list[Path]]:
    """Write report.md and the plots into the search directory; return (trials, rows, report, plots).
    `verdict`: the search's own (at its end); else judged again from the trials on disk (and verdict.json
    rewritten), else verdict.json as it is (a search whose confirmation left no confirm_arms.json)."""
    trials = load_trials(exp_dir)
    if not trials:
        raise UserError("NAME", f"{exp_dir} holds no trials yet")
    space = saved_space(exp_dir)
    metric, mode = (space.search.metric, space.search.mode) if space else ("val_top1", "max")
    if verdict is None:
        verdict = _verdict(exp_dir, space, trials)
    importances = param_importances(trials, space.dims, metric, mode, base=space.base_cfg) \
        if space is not None and space.dims else None
    rows = arm_rows(trials, gpu_fraction(exp_dir))
    order, rungs = ([a.name for a in space.arms], space.rungs) if space is not None else ((), ())
    grid = space is not None and space.self_confirming
    curves = tuning_curves(trials, metric, mode, order, rungs)
    sampler = sampler_of(space) if space is not None else "the search's sampler"
    plot_paths = make_plots(trials, verdict, importances, metric, mode, exp_dir, (curves, sampler), rungs)
    parts = [f"# Search {exp_dir.name}\n", verdict_markdown(verdict) if verdict else
             "## Verdict\n\nNo verdict yet: it comes after the search and its confirmation phase.\n"]
    chosen = "" if grid else chosen_markdown(trials, metric, mode, rungs, order)
    if chosen:
        parts.append(f"## Each arm's best trial\n\n{chosen}")
    if curves:
        parts.append(f"## Tuning curves\n\n{tuning_markdown(curves, metric, sampler, resolutions(verdict, curves))}")
    if importances is not None:
        parts.append(f"## What mattered for {metric}\n\n{importances_markdown(importances)}\n")
    parts.append("## Search trials by arm\n\n" + to_markdown(rows))
    parts.append("\n".join(f"![{p.stem}]({p.name})" for p in plot_paths) + "\n")
    report = exp_dir / REPORT_FILE
    try:
        report.write_text("\n".join(parts))
    except OSError as exc:  # e.g. a directory in its place: nothing to print from
        raise UserError(str(report), f"cannot write it ({exc.strerror or exc})") from None
    return trials, rows, report, plot_paths


def resolutions(verdict: Optional[dict], curves: dict) -> dict[str, str]:
    """arm of the tuning curves -> the resolution of its comparison in the verdict (by label, else family)."""
    out = {}
    for a in (verdict or {}).get("arms", []):
        key = a["arm"] if a["arm"] in curves else a.get("family")
        phrase = resolution_phrase(a)
        if key in curves and phrase:
            out.setdefault(key, phrase)
    return out


def _verdict(exp_dir: Path, space, trials: list[Trial]) -> Optional[dict]:
    judged = verdict_on_disk(space, exp_dir, trials) if space is not None else None
    path = exp_dir / VERDICT_FILE
    if judged is not None:
        try:
            path.write_text(verdict_json(judged))
        except OSError as exc:
            warn_skipped(f"{path}: cannot write it ({exc.strerror or exc})", "the report shows the verdict judged now")
        return judged
    saved = optional_json(path, "the report has no verdict")
    if saved is not None and not (isinstance(saved, dict) and isinstance(saved.get("arms"), list)):
        warn_skipped(f"{path}: is not a verdict (a JSON object with its arms)", "the report has no verdict")
        return None
    return saved


def render(rows: list[dict], fmt: str, title: str = "") -> str:
    return {"md": lambda: to_markdown(rows, title), "csv": lambda: to_csv(rows), "json": lambda: to_json(rows)}[fmt]()
