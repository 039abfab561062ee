"""The search's overhead, side by side in one run: a search as users run it against the same training done
by plain processes, and the driver's load with many short trials.

    python bench/bench_search.py                    # the embedded default search (MLflow on) vs 2 processes
    python bench/bench_search.py --driver-load 200  # 200 short trials with MLflow on: what the driver absorbs

Side by side (default), like with like: 1. `tune-hardbatch search --out OUT/search` exactly as a user
runs it (the packaged default: digits, four arms tuned alike with TPE + ASHA each, then the confirmation
of every arm with its seeds, MLflow on sqlite). 2. The same trials, the search's and the confirmation's
(the configurations the search sampled and the arms x seeds it confirmed), each trained for as many
reports as it made (ASHA stopped some early), by `--slots` plain processes (multiprocessing, one thread
each) with the library's `Trainer`: no Ray, no MLflow. `--set confirm.seeds=0` leaves the confirmation
out of both sides. Reported: both wall times and their ratio (goal <= 1.3); the search's fixed costs:
from the command's start to its first trial's start, and from its last trial's end to the command's
exit; the efficiency of each side, sum over trials of (time_train_s + time_eval_s) / (wall x slots), for
the search both with its whole wall time and from the first trial's start to the last trial's end; the
trials' own train + eval seconds on each side and their ratio (goal <= 1.1); per-trial overhead (trial
start to its first step: the first report's time minus its training and evaluation).

Driver load (--driver-load N): N short trials (digits, 256 samples, 2 epochs) with MLflow on; reported:
results the driver absorbed per second of the search, and the time trials spent blocked in `tune.report`
(the worker's `report_blocked_s`) and checkpointing (`checkpoint_s`), as a share of their time.
One JSON summary is printed last and written to OUT/bench_search.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def run_cli_search(out: Path, sets: list[str]) -> tuple[float, Path, float, float]:
    """`tune-hardbatch search` in a subprocess; (wall seconds, experiment directory, its start and end as
    epoch seconds: trials' timestamps are on that clock)."""
    cmd = [sys.executable, "-m", "tune_hardbatch", "search", "--out", str(out), *sum((["--set", s] for s in sets), [])]
    start, began = time.perf_counter(), time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall, ended = time.perf_counter() - start, time.time()
    if proc.returncode != 0:
        sys.exit(f"search failed ({proc.returncode}): {proc.stderr[-2000:]}")
    (exp,) = [p.parent for p in out.glob("*/search_space.yaml")]
    return wall, exp, began, ended


def trials_of(exp: Path) -> list[dict]:
    """Each trial's full flat training config, its reports and its time spans: the search's trials, then the
    confirmation's (arm x seed)."""
    from tune_hardbatch.search.space import load_space, trial_config
    from tune_hardbatch.training.config import flat_dict

    spec = load_space(str(exp / "search_space.yaml"))
    arms = json.loads((exp / "confirm_arms.json").read_text())["arms"] if (exp / "confirm_arms.json").is_file() else []
    out = []
    for result in sorted(exp.glob("*/result.json")) + sorted(exp.glob("confirm/*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if not rows:
            continue
        first, last = rows[0], rows[-1]
        params = json.loads((result.parent / "params.json").read_text())
        if result.parent.parent.name == "confirm":  # {"arm": i, "seed": s}: the arm's full config, that seed
            config = {**arms[params["arm"]]["config"], "seed": params["seed"]}
        else:
            config = flat_dict(trial_config(spec.base_flat, params, spec.dims))
        start = first["timestamp"] - first["time_this_iter_s"]
        out.append({"config": config, "reports": len(rows), "phase": result.parent.parent.name, "work_s": last["time_train_s"] + last["time_eval_s"],
                    "start": start, "end": last["timestamp"], "results": len(rows),
                    "overhead_s": first["time_this_iter_s"] - first["time_train_s"] - first["time_eval_s"],
                    "blocked_s": last.get("report_blocked_s", 0.0), "checkpoint_s": last.get("checkpoint_s", 0.0),
                    "total_s": last["time_total_s"]})
    return out


def _plain_worker(job: tuple) -> float:
    """Train one trial's config for its number of reports in this process; its train + eval seconds."""
    config, reports = job
    import torch

    from tune_hardbatch.training.config import build_config
    from tune_hardbatch.training.loop import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(build_config(None, config))
    last = None
    for i, last in enumerate(trainer.run(), start=1):
        if i == reports:
            break
    return last["time_train_s"] + last["time_eval_s"]


def run_plain(trials: list[dict], slots: int) -> tuple[float, float]:
    """The same trials by `slots` plain processes; (wall seconds, summed train + eval seconds)."""
    jobs = [(t["config"], t["reports"]) for t in trials]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(slots) as pool:
        work = pool.map(_plain_worker, jobs, chunksize=1)
    return time.perf_counter() - start, sum(work)


def side_by_side(out: Path, slots: int, sets: list[str]) -> dict:
    wall, exp, began, ended = run_cli_search(out / "search", sets)
    trials = trials_of(exp)
    work = sum(t["work_s"] for t in trials)
    first, last = min(t["start"] for t in trials), max(t["end"] for t in trials)
    confirm = [t for t in trials if t["phase"] == "confirm"]
    search_end = max(t["end"] for t in trials if t["phase"] != "confirm")
    plain_wall, plain_work = run_plain(trials, slots)
    return {"trials": len(trials), "confirmation_trials": len(confirm), "slots": slots,
            "search_wall_s": wall, "plain_wall_s": plain_wall, "wall_ratio": wall / plain_wall,
            "before_first_trial_s": first - began, "after_last_trial_s": ended - last,
            "between_phases_s": min(t["start"] for t in confirm) - search_end if confirm else 0.0,
            "search_work_s": work, "plain_work_s": plain_work, "work_ratio": work / plain_work,
            "search_efficiency": work / (wall * slots),
            "search_efficiency_within_trials": work / ((last - first) * slots),
            "plain_efficiency": plain_work / (plain_wall * slots),
            "overhead_per_trial_s": sum(t["overhead_s"] for t in trials) / len(trials),
            "checkpoint_share": sum(t["checkpoint_s"] for t in trials) / sum(t["total_s"] for t in trials)}


def driver_load(out: Path, n: int) -> dict:
    # the default's arms without step-wise splits (their stages would change the trials' cost): 3 arms, so n
    # rounds up to a multiple of 3 (every arm the same trials)
    sets = [f"search.trials_per_arm={-(-n // 3)}", "base.epochs=2", "base.data.train_limit=256", "arms.splits=null",
            "search.grace_period=1"]
    wall, exp, _, _ = run_cli_search(out / "load", sets)
    trials = trials_of(exp)
    span = max(t["end"] for t in trials) - min(t["start"] for t in trials)
    total = sum(t["total_s"] for t in trials)
    return {"trials": len(trials), "results": sum(t["results"] for t in trials), "wall_s": wall,
            "results_per_s": sum(t["results"] for t in trials) / span,
            "blocked_in_report_s": sum(t["blocked_s"] for t in trials),
            "blocked_share": sum(t["blocked_s"] for t in trials) / total,
            "checkpoint_share": sum(t["checkpoint_s"] for t in trials) / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="working directory (default: a new temporary one)")
    parser.add_argument("--slots", type=int, default=2, help="plain processes (the search's concurrency here)")
    parser.add_argument("--driver-load", type=int, metavar="N", help="N short trials instead of side by side")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to the search (e.g. tracking.enabled=false to see what MLflow costs)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-search-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = driver_load(out, args.driver_load) if args.driver_load else side_by_side(out, args.slots, args.sets)
    summary["sets"] = args.sets
    summary.update(date=time.strftime("%Y-%m-%d"), cpus=os.cpu_count(), out=str(out))
    (out / "bench_search.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
