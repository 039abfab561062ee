"""Soak: a long search of many short trials with random injected crashes, run to completion.

    python bench/soak.py                          # 200 trials, each crashing once with probability 0.1
    python bench/soak.py --trials 50 --prob 0.2 --no-tracking

One `run_search` in this process (so the driver's memory is this process's RSS): the packaged default
space (Optuna TPE + ASHA over the learning rate, hard_batch.delta, trimming) without its step-wise
dimension, on digits with data.train_limit 256, 2 epochs, batch 64 (4 back-propagations per epoch),
test_resnet, 1 CPU per trial, run.max_failures 1, MLflow tracking to the default sqlite file under
--out (--no-tracking to leave it out). Crashes come from the test hook
`TUNE_HARDBATCH_TEST_CRASH="prob=P,seed=S,marker=DIR"`: a trial crashes once, at an epoch drawn from
1..2, with probability P (drawn from the seed and the trial id, so deterministic per trial); Ray retries
it from its last checkpoint. A trial stopped by ASHA before its crash epoch does not crash.

Every --sample-s seconds it samples the driver's RSS, its open file descriptors and threads, and the
summed RSS of every process it started (Ray's GCS, raylet, workers). At the end it checks that nothing
was lost (results.csv has every trial, each once) and prints one JSON summary last (also written to
OUT/soak.json, with every sample), with the CPU seconds a trial cost: the whole machine's busy time (the
trials keep its cores busy, so what tracking adds shows here), the driver's and the tracking process's.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _rss_kib(pid) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tracking_process(kids: list[int]):
    """(RSS MiB, CPU s) of the search's tracking process (`tracking.child`) among `kids`, or None."""
    for pid in kids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"tune_hardbatch.tracking.child" not in fh.read():
                    continue
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return _rss_kib(pid) / 1024, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return None


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (every core, every process), from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _worker_processes(exp: Path) -> int:
    """Distinct worker processes that ran the search's trials (a crashed trial's actor is not reused)."""
    pids = set()
    for path in exp.glob("*/result.json"):
        with open(path) as fh:
            pids.update(json.loads(line)["pid"] for line in fh if line.strip())
    return len(pids)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Sampler(threading.Thread):
    def __init__(self, interval_s: float, progress):
        super().__init__(daemon=True)
        self.interval_s, self.progress = interval_s, progress
        self.samples: list[dict] = []
        self.start_time = time.monotonic()
        self.done = threading.Event()

    def sample(self) -> dict:
        me = os.getpid()
        kids = _descendants(me)
        s = {"t_s": round(time.monotonic() - self.start_time, 1), "driver_rss_mib": _rss_kib(me) / 1024,
             "children_rss_mib": sum(_rss_kib(p) for p in kids) / 1024, "children": len(kids),
             "driver_fds": len(os.listdir("/proc/self/fd")), "driver_threads": threading.active_count(),
             "trials_ended": self.progress.ended}
        tracking = _tracking_process(kids)
        if tracking is not None:  # its memory and CPU are not the driver's
            s["tracking_rss_mib"], s["tracking_cpu_s"] = round(tracking[0], 1), round(tracking[1], 2)
        self.samples.append(s)
        return s

    def run(self):
        while not self.done.wait(self.interval_s):
            self.sample()


def _progress_callback():
    from ray import tune

    class Progress(tune.Callback):
        """Counts trials that ended (complete or error) and retries (recover) as Ray reports them."""

        def __init__(self):
            self.ended = self.recovered = self.errored = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.ended += 1

        def on_trial_error(self, iteration, trials, trial, **info):
            self.ended += 1
            self.errored += 1

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.recovered += 1

    return Progress()


def _at(samples: list[dict], fraction: float, total: int) -> dict:
    """The first sample taken when at least `fraction` of the trials had ended."""
    for s in samples:
        if s["trials_ended"] >= fraction * total:
            return s
    return samples[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--prob", type=float, default=0.1, help="probability that a trial crashes (once)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crash draws")
    parser.add_argument("--train-limit", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--no-tracking", action="store_true", help="no MLflow tracking")
    parser.add_argument("--out", help="storage directory (default: a new directory under /tmp)")
    args = parser.parse_args()

    from tune_hardbatch.ray_backend import run_search
    from tune_hardbatch.ray_backend.faults import CRASH_ENV

    out = Path(args.out or tempfile.mkdtemp(prefix="tune-hardbatch-soak-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    markers = out / "crash-markers"
    os.environ[CRASH_ENV] = f"prob={args.prob},seed={args.seed},marker={markers}"
    name = "soak-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.trials = 3 * -(-args.trials // 3)  # the default's 3 arms without splits, each the same trials
    sets = [f"search.trials_per_arm={args.trials // 3}", f"base.data.train_limit={args.train_limit}",
            f"base.epochs={args.epochs}", "base.optim.batch_size=64", "search.grace_period=1",
            "arms.splits=null", "run.max_failures=1", f"run.name={name}",
            f"tracking.enabled={'false' if args.no_tracking else 'true'}"]
    progress = _progress_callback()
    sampler = Sampler(args.sample_s, progress)
    first = sampler.sample()  # after the imports, before Ray starts
    sampler.start()
    start, busy_start, own_start = time.monotonic(), _machine_busy_s(), time.process_time()
    log = open(out / "search.log", "w")
    try:
        path = run_search(None, sets, out=str(out), callbacks=[progress], live_interval_s=60, stream=log)
    finally:
        wall = time.monotonic() - start
        busy, own = _machine_busy_s() - busy_start, time.process_time() - own_start
        sampler.done.set()
        sampler.join()
        log.close()
    last = sampler.sample()

    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    exp = path.parent
    statuses = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    crashed = sorted(p.stem for p in markers.glob("*.crashed")) if markers.is_dir() else []
    retried = sorted(p.parent.name for p in exp.glob("*/error.txt"))
    ids = [r["trial_id"] for r in rows]
    samples = sampler.samples
    during = samples[1:-1] or samples
    summary = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        "trials_asked": args.trials,
        "results_rows": len(rows),
        "unique_trials": len(set(ids)),
        "trial_dirs_with_results": sum(1 for i in ids if (exp / i / "result.json").is_file()),
        "lost": args.trials - len(set(ids)),
        "statuses": statuses,
        "completed": sum(statuses.get(s, 0) for s in ("finished", "stopped_early", "diverged")),
        "failed": statuses.get("failed", 0),
        "crashes_injected": len(crashed),
        "retried": len(retried),
        "retries_seen_by_callback": progress.recovered,
        "crashed_trials_completed": sum(1 for r in rows if r["trial_id"] in set(crashed)
                                        and r["status"] != "failed"),
        "wall_s": round(wall, 1),
        "s_per_trial": round(wall / max(1, len(rows)), 2),
        # CPU seconds a trial: on a machine the trials keep busy, what tracking costs shows here
        "cpu_s_per_trial": {"machine": round(busy / max(1, len(rows)), 3),
                            "driver": round(own / max(1, len(rows)), 3),
                            "tracking_process": round(max((x.get("tracking_cpu_s", 0.0) for x in samples),
                                                          default=0.0) / max(1, len(rows)), 3)},
        "worker_processes": _worker_processes(exp),
        "driver_rss_mib": {"start": round(first["driver_rss_mib"], 1),
                           "at_10pct_trials": round(_at(samples, 0.1, args.trials)["driver_rss_mib"], 1),
                           "at_50pct_trials": round(_at(samples, 0.5, args.trials)["driver_rss_mib"], 1),
                           "at_90pct_trials": round(_at(samples, 0.9, args.trials)["driver_rss_mib"], 1),
                           "end": round(last["driver_rss_mib"], 1),
                           "max_during": round(max(s["driver_rss_mib"] for s in during), 1)},
        "children_rss_mib": {"at_10pct_trials": round(_at(samples, 0.1, args.trials)["children_rss_mib"], 1),
                             "at_90pct_trials": round(_at(samples, 0.9, args.trials)["children_rss_mib"], 1),
                             "max_during": round(max(s["children_rss_mib"] for s in during), 1)},
        "driver_fds": {"at_10pct_trials": _at(samples, 0.1, args.trials)["driver_fds"],
                       "at_90pct_trials": _at(samples, 0.9, args.trials)["driver_fds"]},
        "samples": len(samples),
        "experiment": str(exp),
    }
    (out / "soak.json").write_text(json.dumps({**summary, "all_samples": samples}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
