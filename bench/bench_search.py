"""The search's overhead, side by side in one run: a search as users run it against the same training done
by plain processes, and the driver's load with many short trials.

    python bench/bench_search.py                    # the embedded default search (MLflow on) vs 2 processes
    python bench/bench_search.py --driver-load 200  # 200 short trials with MLflow on: what the driver absorbs

Side by side (default): 1. `tune-hardbatch search --out OUT/search` exactly as a user runs it (the
packaged default: digits, TPE + ASHA, MLflow on sqlite). 2. The same trials (the configurations it
sampled), each trained for as many reports as it made in the search (ASHA stopped some early), by
`--slots` plain processes (multiprocessing, one thread each) with the library's `Trainer`: no Ray, no
MLflow. Reported: both wall times and their ratio (goal <= 1.15); the efficiency of each, sum over trials
of (time_train_s + time_eval_s) / (wall x slots), for the search both with its whole wall time and with
Ray's start-up left out (from the first trial's start to the last trial's end; goal >= 0.85); per-trial
overhead (trial start to its first step: the first report's time minus its training and evaluation).

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


def run_cli_search(out: Path, sets: list[str]) -> tuple[float, Path]:
    """`tune-hardbatch search` in a subprocess; (wall seconds, experiment directory)."""
    cmd = [sys.executable, "-m", "tune_hardbatch", "search", "--out", str(out), *sum((["--set", s] for s in sets), [])]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"search failed ({proc.returncode}): {proc.stderr[-2000:]}")
    (exp,) = [p.parent for p in out.glob("*/search_space.yaml")]
    return wall, exp


def trials_of(exp: Path) -> list[dict]:
    """Each trial's sampled params, its reports and its time spans."""
    out = []
    for result in sorted(exp.glob("*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if not rows:
            continue
        first, last = rows[0], rows[-1]
        params = json.loads((result.parent / "params.json").read_text())
        start = first["timestamp"] - first["time_this_iter_s"]
        out.append({"params": params, "reports": len(rows), "work_s": last["time_train_s"] + last["time_eval_s"],
                    "start": start, "end": last["timestamp"], "results": len(rows),
                    "overhead_s": first["time_this_iter_s"] - first["time_train_s"] - first["time_eval_s"],
                    "blocked_s": last.get("report_blocked_s", 0.0), "checkpoint_s": last.get("checkpoint_s", 0.0),
                    "total_s": last["time_total_s"]})
    return out


def _plain_worker(job: tuple) -> float:
    """Train one trial's config for its number of reports in this process; its train + eval seconds."""
    base, dims, params, reports = job
    import torch

    from tune_hardbatch.loop import Trainer
    from tune_hardbatch.space import trial_config

    torch.set_num_threads(1)
    trainer = Trainer(trial_config(base, params, dims))
    last = None
    for i, last in enumerate(trainer.run(), start=1):
        if i == reports:
            break
    return last["time_train_s"] + last["time_eval_s"]


def run_plain(exp: Path, trials: list[dict], slots: int) -> tuple[float, float]:
    """The same trials by `slots` plain processes; (wall seconds, summed train + eval seconds)."""
    from tune_hardbatch.space import load_space

    spec = load_space(str(exp / "search_space.yaml"))
    jobs = [(spec.base_flat, spec.dims, {k: v for k, v in t["params"].items() if k in spec.dim_keys}, t["reports"])
            for t in trials]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(slots) as pool:
        work = pool.map(_plain_worker, jobs, chunksize=1)
    return time.perf_counter() - start, sum(work)


def side_by_side(out: Path, slots: int, sets: list[str]) -> dict:
    wall, exp = run_cli_search(out / "search", sets)
    trials = trials_of(exp)
    work = sum(t["work_s"] for t in trials)
    span = max(t["end"] for t in trials) - min(t["start"] for t in trials)
    plain_wall, plain_work = run_plain(exp, trials, slots)
    return {"trials": len(trials), "slots": slots, "search_wall_s": wall, "plain_wall_s": plain_wall,
            "wall_ratio": wall / plain_wall, "search_work_s": work, "plain_work_s": plain_work,
            "search_efficiency": work / (wall * slots), "search_efficiency_without_ray_startup": work / (span * slots),
            "plain_efficiency": plain_work / (plain_wall * slots),
            "overhead_per_trial_s": sum(t["overhead_s"] for t in trials) / len(trials),
            "checkpoint_share": sum(t["checkpoint_s"] for t in trials) / sum(t["total_s"] for t in trials)}


def driver_load(out: Path, n: int) -> dict:
    # the default's arms without step-wise splits (their stages would change the trials' cost): 3 arms, so n
    # rounds up to a multiple of 3 (every arm the same trials)
    sets = [f"search.trials_per_arm={-(-n // 3)}", "base.epochs=2", "base.data.train_limit=256", "arms.splits=null",
            "search.grace_period=1"]
    wall, exp = run_cli_search(out / "load", sets)
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
