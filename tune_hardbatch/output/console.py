"""What a search prints: text tables, the header when it starts and the summary when it ends.

The live view during the search is `live.py`. Pure text (no Ray): `print_summary` prints the results
table (compact, best first) and then the best configuration LAST.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import yaml

from ..metrics import is_finite
from ..search.results import best_choice
from ..search.rungs import entrants, keep
from ..search.space import BEST_FILE, STATUSES, SearchSpace
from ..search.space.arms import arm_summary
from ..search.trials import Trial
from ..verdict.words import (
    MATCHED_WORD,
    PARTIAL,
    column,
    comparison_cell,
    context,
    convergence_cell,
    savings_cell,
    short_line,
)
from .formats import num, pm, yaml_value
from .logs import LOG_FILE


def short_keys(keys: list[str]) -> dict[str, str]:
    """Last dotted component, unless two keys share it (then the full key)."""
    lasts = [k.rpartition(".")[2] for k in keys]
    return {k: (last if lasts.count(last) == 1 else k) for k, last in zip(keys, lasts)}


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned text columns, two spaces apart."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if header else []
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [header, *rows]]
    return "\n".join(lines)


def print_summary(trials: list[Trial], space: SearchSpace, best: Optional[Trial], path: Path, exp_dir: Path,
                  stream) -> None:
    """The results table (compact, best first), then the best configuration LAST."""
    metric, mode = space.search.metric, space.search.mode

    def score(t):  # best first: the largest value when maximising, the smallest when minimising
        v = t.final(metric) if is_finite(t.final(metric)) else -math.inf if mode == "max" else math.inf
        return -v if mode == "max" else v

    order = sorted(trials, key=lambda t: (t.status != "finished", score(t)))
    counts = {s: sum(t.status == s for t in trials) for s in STATUSES + ("unfinished",)}
    shorts = short_keys(space.dim_keys)
    arm = ["arm"] if space.arms else []
    header = ["trial", "status", *arm, "strategy", *[shorts[k] for k in space.dim_keys], "test top1", "best", "ee",
              "backprops"] + ([metric] if metric != "test_top1" else [])
    table = []
    limit = 30
    for t in order[:limit]:
        table.append([t.trial_id, t.status, *([t.arm or "?"] if arm else []), t.strategy,
                      *[num(t.param(k)) for k in space.dim_keys],
                      num(t.final("test_top1")), num(t.best("test_top1")), num(t.final("epoch_equiv"), 3),
                      num(t.final("backprops"))] + ([num(t.final(metric))] if metric != "test_top1" else []))
    print("", file=stream)
    print(f"results: {len(trials)} trials: " + ", ".join(f"{n} {s.replace('_', ' ')}"
                                                       for s, n in counts.items() if n), file=stream)
    print(format_table(header, table), file=stream)
    if len(order) > limit:
        print(f"... {len(order) - limit} more in {path}", file=stream)
    print(f"results.csv: {path}", file=stream)
    if best is None:
        print(f"best configuration: none (no trial that finished, was stopped early or interrupted reported a "
              f"finite {metric})", file=stream, flush=True)
        return
    lines = [f"best configuration ({best.status} trial {best.trial_id}, {best.strategy}): "
             f"{chosen_at(trials, space, best)}"]
    for k in space.dim_keys:
        if k in best.active:
            lines.append(f"  {k}: {yaml_value(best.param(k))}")
    if not space.dim_keys:
        lines.append("  (no search dimensions: the base config)")
    lines.append(f"  full config: {exp_dir / BEST_FILE} (tune-hardbatch train {exp_dir / BEST_FILE})")
    print("\n".join(lines), file=stream, flush=True)


def chosen_at(trials: list[Trial], space: SearchSpace, best: Trial) -> str:
    """'val_top1 = 97.9 at the full budget' or '... at 2 epoch-equivalents of compute, the highest budget all
    12 trials reached (none trained its whole budget)': the value `best` was chosen by (`results.best_choice`)."""
    metric, c = space.search.metric, best_choice(trials, space)
    if c is None or c.trial is not best:
        return f"{metric} = {num(best.final(metric), 5)}"
    if c.full:
        return f"{metric} = {num(c.value, 5)} at the full budget (among {c.compared} trials that trained it)"
    return (f"{metric} = {num(c.value, 5)} at {num(c.budget, 3)} epoch-equivalents of compute, the highest budget "
            f"all {c.compared} compared trials reached (none trained its whole budget)")


def print_header(space: SearchSpace, exp_dir: Path, resuming: bool, concurrency: int, stream) -> None:
    s, r = space.search, space.resources
    lines = []
    if space.question:
        lines.append(space.question)
    lines.append(f"{'resuming' if resuming else 'search'} {exp_dir.name}: {space.num_trials} trials, "
                 f"searcher {s.searcher}, scheduler {s.scheduler}"
                 + (f" ({halving_text(space)})" if s.scheduler == "halving" else "")
                 + f", {s.metric} {s.mode}, {concurrency} at a time, {r.cpu:g} CPU"
                 + (f" + {r.gpu:g} GPU" if r.gpu else "") + " per trial")
    shared = space.arms[0].shared if space.arms else space.dims
    for d in shared:
        lines.append(f"  {d.key}: {d.describe()}" + (" (every arm)" if space.arms else ""))
    for arm in space.arms:
        lines.append(f"  arm {arm.name}: {arm_summary(arm)}; {space.search.trials_per_arm} trials")
    for note in space.notes:
        lines.append(f"  note: {note}")
    lines.append(f"  results under {exp_dir} (continue an interrupted search with --resume {exp_dir.name}); "
                 f"the libraries' logs (Ray, MLflow, Optuna) in {exp_dir / LOG_FILE}")
    print("\n".join(lines), file=stream, flush=True)


def halving_text(space: SearchSpace) -> str:
    """Where the rungs fall and how many trials of each group climb them, or why none is stopped."""
    s = space.search
    if not space.rungs:
        return f"no rung below the budget of {space.budget:g} epoch-equivalents: none stopped early"
    group = "arm" if space.arms else "search"
    sizes = sorted(set(space.group_sizes.values()))
    climbs, climbed = [], 0
    for n in sizes:
        counts = entrants(n, s.reduction_factor, len(space.rungs))
        climbed = max(climbed, len(counts))
        climbs.append(f"{' -> '.join(str(c) for c in [*counts, keep(counts[-1], s.reduction_factor)])} trials "
                      f"per {group}" if counts else f"{n} trials per {group}: fewer than reduction_factor "
                      f"{s.reduction_factor:g} to compare, not early-stopped")
    where = f"rungs at {', '.join(f'{m:g}' for m in space.rungs[:max(1, climbed)])} of {space.budget:g} " \
        "epoch-equivalents"
    return f"{where}; {'; '.join(climbs)}"


def space_yaml(space: SearchSpace) -> str:
    header = f"# {space.question}\n\n" if space.question else ""
    return header + f"# resolved search space (from {space.source}); used by --resume\n" + \
        yaml.safe_dump(space.raw, sort_keys=False)


def print_verdict(verdict: dict, stream) -> None:
    """The verdict (`verdict.comparisons.build_verdict`), printed last: a table with one line per arm (test
    top-1 across seeds, search trials, each comparison's difference and decision, convergence, the compute to
    reach the baseline's accuracy, the compute spent) (short cells: 160 columns hold four comparison columns); then what chose the
    arms, the design and how each arm was tuned, the notes, and one line of words per primary comparison
    (the full sentences are report.md's)."""
    fams = list(dict.fromkeys(c["baseline_family"] for a in verdict["arms"] for c in a["diffs"]))
    header = ["arm", "seeds", "trials", "test top-1 %", *[f"vs {column(f, short=True)}" for f in fams], "conv. epoch",
              "reaches base", "compute"]
    table = []
    for a in verdict["arms"]:
        diffs = {d["baseline_family"]: d for d in a["diffs"]}
        mark = " (base)" if a["is_baseline"] else " (matched)" if a.get("word") == MATCHED_WORD else ""
        table.append([a["arm"] + mark, str(a["n"]), num(a.get("search_trials")), pm(a["test_top1"]),
                      *["base" if a["family"] == f else comparison_cell(diffs.get(f), wide=False) for f in fams],
                      convergence_cell(a["convergence_epoch"]), savings_cell(a.get("savings")),
                      num(a["compute"].get("compute_equiv", a["compute"]["epoch_equiv"]), 3)])
    where = "confirmation runs" if verdict["source"] == "confirmation" else "the grid's own trials"
    partial = f"{PARTIAL}; " if verdict.get("partial") else ""
    print(f"\nverdict ({partial}{where}; test top-1 mean ± 95% t-interval; vs: the paired difference and its "
          "decision, unres.: unresolved, expl.: exploratory, ctl: control):", file=stream)
    if table:
        print(format_table(header, table), file=stream)
    for line in [*context(verdict), *verdict["notes"]]:
        print(f"  {line}", file=stream)
    for a in verdict["arms"]:
        for c in a["diffs"]:
            if c.get("primary", True):
                print(f"  {short_line(a, c, verdict)}", file=stream)
    stream.flush()
