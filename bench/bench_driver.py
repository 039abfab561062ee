"""Driver capacity: how many results one driver absorbs, what each costs it, and whether its memory stays
flat, with a large cluster simulated on this machine.

    python bench/bench_driver.py                         # 2,000 trials, 32 at a time, tracking off then on
    python bench/bench_driver.py --trials 600 --cpus 16  # shorter
    python bench/bench_driver.py --only server           # MLflow through an `mlflow server`, as on a cluster
    BENCH_TRACEMALLOC=1 python bench/bench_driver.py --only off --trials 900  # where the memory grows

A local Ray is declared `--cpus` logical CPUs (a cluster of that many one-CPU trial slots), and every trial
is simulated (`ray_backend.simulated`, the `TUNE_HARDBATCH_TEST_SIMULATE` hook): it reports like a real
trial (every key, a checkpoint with its first and last report) after `--interval` seconds each, without
training, each worker's first trial held for `--warmup` seconds so that all workers start (see
`simulated`), so the driver is the bottleneck: Ray Tune's controller, Optuna (one TPE study per arm) and ASHA,
the result loggers, the live view, checkpoint pruning and, in the second run, MLflow tracking to a sqlite
store (`on`: the driver runs the store's SQL itself) or through a real `mlflow server` on 127.0.0.1 with
a sqlite store (`server`: the driver makes HTTP requests, as on a cluster whose head runs the server that
`cluster/` sets up; the server's CPU is not the driver's). The search is the packaged default's three arms
without splits (plain, delta<1, trim), `--epochs`
reports per trial, no confirmation.

Each run is its own process (`--one off|on|server`: its RSS is the driver's). Reported side by side: results
absorbed per second (from the first result to the last), the driver process's CPU seconds per result
(all its threads: Ray's controller, the live view, the loggers), the wall time per trial, the driver's RSS
after warm-up (10% of the trials) and at the end, and its slope per trial (least squares over the samples
after warm-up taken before the last trial ended: the end's RSS includes every result loaded for the report);
how long the search took after its last result (the tracking still queued is done then);
and, with tracking, the tracking process's CPU per result and RSS (MLflow's work runs there, in a child
process of the driver: `tracking.process`; its CPU is sampled every `--sample-s`, so a lower bound). One
JSON summary is printed last and written to OUT/bench_driver.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

MODES = ("off", "on", "server")  # tracking: none, MLflow's store in the driver, an `mlflow server`


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y on x."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else float("nan")


def _while_running(samples: list[dict], key: str, trials: int) -> list[tuple[float, float]]:
    """(trials ended, `key`) of the samples after warm-up (10% of the trials) and before the last trial
    ended: after it, the driver loads every result for the report."""
    return [(s["trials_ended"], s[key]) for s in samples if 0.1 * trials <= s["trials_ended"] < trials]


def _counter():
    from ray import tune

    class Results(tune.Callback):
        """Counts results and when the first and last came."""

        def __init__(self):
            self.times: list[float] = []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.times.append(time.monotonic())

        def rate(self, start: float, end: float) -> float:
            """Results per second between the given shares of all results (the steady part)."""
            n = len(self.times)
            i, j = int(start * n), max(int(start * n) + 1, int(end * n) - 1)
            return (j - i) / (self.times[j] - self.times[i]) if j < n and self.times[j] > self.times[i] else float("nan")

    return Results()


def _server(root: Path):
    """The tests' real `mlflow server` (one worker, sqlite, artifacts under `root`), started; `.stop()` it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from servers import MlflowServer

    return MlflowServer(root).start()


def _trace_growth(progress, trials: int, path: Path) -> None:
    """Snapshots at 30% and 90% of the trials ended; the allocation sites that grew most between them."""
    import threading
    import tracemalloc

    tracemalloc.start(6)

    def watch():
        snaps = []
        for share in (0.3, 0.9):
            while progress.ended < share * trials:
                time.sleep(0.5)
            snaps.append((progress.ended, tracemalloc.take_snapshot()))
        (n0, a), (n1, b) = snaps
        lines = [f"growth from {n0} to {n1} trials ended"]
        for stat in b.compare_to(a, "traceback")[:25]:
            lines.append(f"{stat.size_diff / 1024 / (n1 - n0):.2f} KiB a trial, {stat.count_diff} blocks")
            lines += [f"    {f.filename}:{f.lineno}" for f in stat.traceback]
        path.write_text("\n".join(lines))

    threading.Thread(target=watch, daemon=True).start()


def one(args) -> dict:
    """One search in this process (tracking `args.one`); its figures."""
    from soak import Sampler, _progress_callback

    from tune_hardbatch.ray_backend import run_search
    from tune_hardbatch.ray_backend.driver import init_ray, ray_env
    from tune_hardbatch.ray_backend.simulated import SIMULATE_ENV

    os.environ[SIMULATE_ENV] = f"interval={args.interval},warmup={args.warmup}"
    out = Path(args.out).resolve()
    per_arm = -(-args.trials // 3)
    sets = [f"search.trials_per_arm={per_arm}", f"base.epochs={args.epochs}", "search.grace_period=1",
            "arms.splits=null", "confirm.seeds=0", "run.max_failures=1", f"run.name=driver-{args.one}",
            f"tracking.enabled={'false' if args.one == 'off' else 'true'}"]
    if args.one == "server":
        sets.append(f"tracking.uri={args.uri}")
    progress, results = _progress_callback(), _counter()
    sampler = Sampler(args.sample_s, progress)
    ray_env(local=True)
    init_ray(None, args.cpus, 0)  # the declared cluster: run_search uses the Ray this process started
    first = sampler.sample()
    sampler.start()
    if os.environ.get("BENCH_TRACEMALLOC"):  # diagnosis: where the driver's memory grows per trial
        _trace_growth(progress, 3 * per_arm, out / f"tracemalloc-{args.one}.txt")
    cpu0, start = _cpu_s(), time.monotonic()
    with open(out / f"search-{args.one}.log", "w") as log:
        run_search(None, sets, out=str(out), callbacks=[progress, results], live_interval_s=30, stream=log)
    wall, cpu = time.monotonic() - start, _cpu_s() - cpu0
    after_last = time.monotonic() - results.times[-1] if results.times else float("nan")
    sampler.done.set()
    sampler.join()
    last = sampler.sample()
    trials = 3 * per_arm
    warm = _while_running(sampler.samples, "driver_rss_mib", trials)
    tracked = [s for s in sampler.samples if "tracking_cpu_s" in s]
    tracking_cpu = tracked[-1]["tracking_cpu_s"] if tracked else 0.0  # its last sample: a lower bound
    tracking_warm = _while_running(tracked, "tracking_rss_mib", trials)
    return {"tracking": args.one, "trials": trials, "trials_ended": progress.ended, "results": len(results.times),
            "wall_s": round(wall, 1), "s_per_trial": round(wall / trials, 3),
            "results_per_s": round(results.rate(0.2, 0.95), 1),
            "driver_cpu_s": round(cpu, 1), "driver_cpu_ms_per_result": round(1000 * cpu / max(1, len(results.times)), 2),
            "driver_rss_mib": {"start": round(first["driver_rss_mib"], 1),
                               "after_warmup": round(warm[0][1], 1) if warm else None,
                               "end": round(last["driver_rss_mib"], 1)},
            "rss_mib_per_trial": round(_slope(warm), 4),
            "end_after_last_result_s": round(after_last, 1),
            "tracking_process": {"cpu_s": tracking_cpu,
                                 "cpu_ms_per_result": round(1000 * tracking_cpu / max(1, len(results.times)), 2),
                                 "rss_mib_end": tracked[-1]["tracking_rss_mib"] if tracked else None,
                                 "rss_mib_per_trial": round(_slope(tracking_warm), 4)} if tracked else None,
            "samples": sampler.samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--cpus", type=int, default=32, help="logical CPUs declared to Ray: trials at once")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds before each simulated report")
    parser.add_argument("--epochs", type=int, default=8, help="reports per trial that is not stopped")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds the first trial of each worker waits (default: 1.5 s a declared CPU)")
    parser.add_argument("--sample-s", type=float, default=2.0, help="seconds between memory samples")
    parser.add_argument("--only", choices=MODES, nargs="+", help="these runs only (default: off, then on)")
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="storage directory (default: a new directory under /tmp)")
    args = parser.parse_args()
    args.warmup = 1.5 * args.cpus if args.warmup is None else args.warmup
    if args.one:
        Path(args.out, f"driver-{args.one}.json").write_text(json.dumps(one(args)))
        return
    out = Path(args.out or tempfile.mkdtemp(prefix="tune-hardbatch-driver-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for mode in args.only or ["off", "on"]:
        server = _server(out / "mlflow-server") if mode == "server" else None
        cmd = [sys.executable, __file__, "--one", mode, "--out", str(out), "--trials", str(args.trials),
               "--cpus", str(args.cpus), "--interval", str(args.interval), "--epochs", str(args.epochs),
               "--warmup", str(args.warmup),
               "--sample-s", str(args.sample_s), *(["--uri", server.uri] if server else [])]
        print(f"{mode}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        try:
            subprocess.run(cmd, check=True)
        finally:
            if server:
                server.stop()
        runs[mode] = json.loads((out / f"driver-{mode}.json").read_text())
    summary = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
               "command": " ".join([Path(sys.executable).name, *sys.argv]),
               "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
               **{mode: {k: v for k, v in r.items() if k != "samples"} for mode, r in runs.items()}}
    (out / "bench_driver.json").write_text(json.dumps({**summary, "runs": runs}, indent=1))
    for mode, r in runs.items():
        print(f"tracking {mode:6}: {r['results']} results from {r['trials']} trials in {r['wall_s']} s: "
              f"{r['results_per_s']} results/s, {r['driver_cpu_ms_per_result']} driver CPU ms a result, "
              f"RSS {r['driver_rss_mib']['after_warmup']} -> {r['driver_rss_mib']['end']} MiB "
              f"({r['rss_mib_per_trial']} MiB a trial); done {r['end_after_last_result_s']} s after the last result"
              + (f"; tracking process: {r['tracking_process']['cpu_ms_per_result']} CPU ms a result, RSS "
                 f"{r['tracking_process']['rss_mib_end']} MiB ({r['tracking_process']['rss_mib_per_trial']} MiB a trial)"
                 if r.get("tracking_process") else ""), file=sys.stderr)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
