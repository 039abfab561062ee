"""Tuning quality: what the search's early stopper costs in the choice it makes, against training every trial
to the end (issue 33).

    python bench/bench_tuning.py --cifar-root /path/to/cifar10-jpeg --out bench_tuning.json
    python bench/bench_tuning.py --spaces default                        # the packaged default only (~2 min)
    python bench/bench_tuning.py --spaces cifar --cifar-root ROOT --milestones cifar:2.5,5
    python bench/bench_tuning.py --analyse --work DIR --out x.json       # the runs already in DIR, again

Per space, the SAME trials twice, by `python -m tune_hardbatch search` in a subprocess (this interpreter; set
PYTHONPATH to measure another checkout): `stopped`, with the space's own early stopper (its
`search.scheduler`), and `fifo`, with `--set search.scheduler=fifo` (every trial trains its whole budget).
Both run with `--set search.searcher=random`: each declared arm's Optuna random sampler, seeded by
`search.seed`, draws the same configurations in the same order in both runs; the benchmark checks that the
two runs' configurations match, per arm (reported, never assumed). MLflow is off in both
(`tracking.enabled=false`): it changes no trial.

The choice: the trial the tool itself chose per arm, read from the stopped run's `confirm_arms.json`
(`verdict/confirm_plan.py`: per arm its best by the search metric, a trial that trained its whole budget
before one stopped early). `confirm.seeds=0` writes no such file (no confirmation, no choice), so the
stopped run keeps the smallest confirmation, `confirm.seeds=1` (each arm's choice re-trained once: about
a trial's time per arm; the confirmation's runs are no part of the compute below); the fifo run uses
`confirm.seeds=0`.

Per declared arm (the space's `arms:`):
- regret: the best full-budget value of the search metric that any of the arm's configurations reaches
  (the fifo run) minus the fifo run's full-budget value of the configuration the stopped run chose
  (matched by configuration); 0 = the stopper chose the arm's best configuration (points of val_top1);
- compute: the sum over the arm's trials of their final `compute_equiv` in the stopped run over the same
  sum in the fifo run;
- rank correlation per rung: over the arm's trials in the fifo run, Spearman's rho between their values at
  the rung (the metric at a trial's first report whose `asha_time` reaches the rung's milestone, as the
  scheduler reads it) and their full-budget values. Milestones: `grace_period * reduction_factor**k` below
  the budget (the largest final compute_equiv of the fifo trials), from the space's search section, or
  given with --milestones (`2,4` for every space, `cifar:2.5,5` for one) where the scheduler places its
  rungs elsewhere;
- finished (start order): the positions, in the order the stopped run started its trials, of the trials
  that trained their whole budget there (asynchronous ASHA lets a trial pass a rung no other trial has
  reached yet: the first-started tend to survive).

Spaces: `default` (the packaged default: digits, four arms x 3 trials, ~1-2 min a run), `cifar`
(bench/spaces/tuning_cifar10_cpu.yaml: CIFAR-10 at CPU scale, three arms x 6 trials, ~6 min for the fifo
run on 2 cores; needs --cifar-root, a torchvision ImageFolder tree ROOT/train/<class>/*.jpg and
ROOT/test/<class>/*.jpg), or a YAML path. Printed: progress lines (each run's live-view line), then a
Markdown table per space; the whole result also goes to --out as JSON. The runs stay under --work
(each: WORK/<space>/stopped, WORK/<space>/fifo, and the CLI's output in WORK/<space>/<run>.log).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

HERE = Path(__file__).resolve().parent
SPACES = {"default": None, "cifar": HERE / "spaces" / "tuning_cifar10_cpu.yaml"}
RUNS = ("stopped", "fifo")
COMMON_SETS = ["search.searcher=random", "tracking.enabled=false"]
RUN_SETS = {"stopped": ["confirm.seeds=1"], "fifo": ["search.scheduler=fifo", "confirm.seeds=0"]}
ARMS_FILE = "confirm_arms.json"  # the tool's choice per arm (verdict/confirm_plan.py)


def log(msg: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------
# Running


def search_command(python: str, space_path, storage: Path, name: str, sets: list[str]) -> list[str]:
    cmd = [python, "-m", "tune_hardbatch", "search"]
    if space_path is not None:
        cmd.append(str(space_path))
    cmd += ["--out", str(storage)]
    for s in sets + [f"run.name={name}"]:
        cmd += ["--set", s]
    return cmd


def run_search(cmd: list[str], log_path: Path, label: str) -> dict:
    """The CLI in a subprocess, its output to `log_path`; its live-view lines (`[mm:ss] running ...`) echoed
    as progress. {rc, wall_s, started (epoch seconds)}."""
    log(f"{label}: {' '.join(cmd)}")
    started, t0 = time.time(), time.perf_counter()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)

        def pump():
            for line in proc.stdout:
                out.write(line)
                out.flush()
                if (line.startswith("[") and "running" in line) or line.startswith("results:"):
                    log(f"{label}: {line.strip()}")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        rc = proc.wait()
        reader.join(timeout=10)
    wall = time.perf_counter() - t0
    log(f"{label}: exit {rc} after {wall:.0f} s (output: {log_path})")
    return {"rc": rc, "wall_s": round(wall, 1), "started": started}


# ---------------------------------------------------------------------------------------------------
# Reading a run


def read_space(exp: Path) -> dict:
    import yaml

    return yaml.safe_load((exp / "search_space.yaml").read_text()) or {}


def read_trials(exp: Path) -> list[dict]:
    """The search trials of an experiment directory (not the confirmation's): id, params (Ray's config, the
    arm included), status (results.csv's), reports (result.json), start (epoch seconds)."""
    statuses = {}
    if (exp / "results.csv").is_file():
        with open(exp / "results.csv", newline="") as f:
            statuses = {r["trial_id"]: r["status"] for r in csv.DictReader(f)}
    trials = []
    for result in sorted(exp.glob("*/result.json")):
        reports = []
        for line in result.read_text().splitlines():
            try:
                reports.append(json.loads(line))
            except json.JSONDecodeError:
                break
        params_file = result.parent / "params.json"
        params = json.loads(params_file.read_text()) if params_file.is_file() else \
            (reports[0].get("config", {}) if reports else {})
        start = reports[0]["timestamp"] - reports[0].get("time_this_iter_s", 0.0) if reports else math.inf
        trials.append({"id": result.parent.name, "params": params, "arm": params.get("arm"),
                       "status": statuses.get(result.parent.name, "?"),
                       "reports": [{k: v for k, v in r.items() if k != "config"} for r in reports], "start": start})
    trials.sort(key=lambda t: t["start"])
    return trials


def config_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def final(t: dict, key: str):
    return t["reports"][-1].get(key) if t["reports"] else None


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def at_milestone(t: dict, metric: str, m: float):
    """The metric at the trial's first report whose asha_time reaches milestone m (None: it never did)."""
    for r in t["reports"]:
        if finite(r.get("asha_time")) and r["asha_time"] >= m - 1e-9:
            return r.get(metric)
    return None


def choice_of(exp: Path, trials: list[dict], metric: str, mode: str) -> tuple[dict, str]:
    """arm -> chosen trial id: the tool's (confirm_arms.json); without that file, the same rule applied here
    (finished first, then the furthest epoch_equiv, then the metric) and said so."""
    path = exp / ARMS_FILE
    if path.is_file():
        return {a["arm"]: a["trial_id"] for a in json.loads(path.read_text())["arms"]}, ARMS_FILE
    sign = 1 if mode == "max" else -1
    best = {}
    for t in trials:
        v = final(t, metric)
        if t["status"] not in ("finished", "stopped_early") or not finite(v):
            continue
        rank = (t["status"] == "finished", final(t, "epoch_equiv") or 0.0, sign * v)
        if t["arm"] not in best or rank > best[t["arm"]][0]:
            best[t["arm"]] = (rank, t["id"])
    return {a: b[1] for a, b in best.items()}, f"no {ARMS_FILE}: the tool's rule applied by the benchmark"


def spearman(xs: list, ys: list):
    """Spearman's rho (scipy), None with fewer than 3 pairs or a constant side."""
    from scipy.stats import spearmanr

    pairs = [(x, y) for x, y in zip(xs, ys) if finite(x) and finite(y)]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return None
    rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    return float(rho) if math.isfinite(rho) else None


def default_milestones(search: dict, budget: float) -> list[float]:
    g, rf = float(search.get("grace_period") or 1), float(search.get("reduction_factor") or 2)
    out, m = [], g
    while m < budget - 1e-9:
        out.append(round(m, 6))
        m *= rf
    return out


def rung_milestones(exp: Path):
    """The milestones the early stopper placed (synchronous halving's `rungs.jsonl`: the same for every arm),
    or None for a run without that file (a fifo run, or the asynchronous ASHA of earlier commits)."""
    path = exp / "rungs.jsonl"
    if not path.is_file():
        return None
    ladders = json.loads(path.read_text())
    return sorted({float(m) for lad in ladders.values() for m in lad["milestones"]})


def analyse(space_dir: Path, milestones=None) -> dict:
    """The comparison of WORK/<space>/stopped with WORK/<space>/fifo."""
    stopped_dir, fifo_dir = space_dir / "stopped", space_dir / "fifo"
    space = read_space(stopped_dir)
    search = space.get("search") or {}
    metric = search.get("metric") or "val_top1"
    mode = search.get("mode") or ("min" if "loss" in metric or "epoch" in metric else "max")
    sign = 1 if mode == "max" else -1
    stopped, fifo = read_trials(stopped_dir), read_trials(fifo_dir)
    chosen, chosen_from = choice_of(stopped_dir, stopped, metric, mode)
    budget = max((final(t, "compute_equiv") or 0.0 for t in fifo if t["status"] == "finished"), default=0.0)
    given = milestones is not None
    placed = rung_milestones(stopped_dir)
    milestones = milestones if given else placed if placed is not None else default_milestones(search, budget)
    arm_names = list((space.get("arms") or {}).keys()) or sorted({t["arm"] for t in stopped + fifo}, key=str)
    notes = []
    if any(t["status"] != "finished" for t in fifo):
        notes.append("fifo trials that did not train their whole budget: " + ", ".join(
            f"{t['id']} ({t['status']})" for t in fifo if t["status"] != "finished"))
    arms, all_same = [], True
    for arm in arm_names:
        s_arm = [t for t in stopped if t["arm"] == arm]
        f_arm = [t for t in fifo if t["arm"] == arm]
        s_keys = sorted(config_key(t["params"]) for t in s_arm)
        f_keys = sorted(config_key(t["params"]) for t in f_arm)
        same = s_keys == f_keys
        all_same &= same
        if not same:
            only_s = len(set(s_keys) - set(f_keys))
            only_f = len(set(f_keys) - set(s_keys))
            notes.append(f"arm {arm}: the runs' configurations differ ({only_s} only in stopped, {only_f} only in fifo)")
        full = {config_key(t["params"]): final(t, metric) for t in f_arm if t["status"] == "finished"}
        finals = [v for v in full.values() if finite(v)]
        best_full = (max if mode == "max" else min)(finals) if finals else None
        cid = chosen.get(arm)
        ct = next((t for t in s_arm if t["id"] == cid), None)
        chosen_full = full.get(config_key(ct["params"])) if ct else None
        regret = sign * (best_full - chosen_full) if finite(best_full) and finite(chosen_full) else None
        rank = 1 + sum(sign * v > sign * chosen_full for v in finals) if finite(chosen_full) else None
        c_s = sum(final(t, "compute_equiv") or 0.0 for t in s_arm)
        c_f = sum(final(t, "compute_equiv") or 0.0 for t in f_arm)
        ranked = [t for t in f_arm if t["status"] == "finished"]
        rhos = {str(m): spearman([at_milestone(t, metric, m) for t in ranked], [final(t, metric) for t in ranked])
                for m in milestones}
        arms.append({
            "arm": arm, "trials": len(s_arm), "trials_fifo": len(f_arm), "same_configs": same,
            "chosen_trial": cid, "chosen_status": ct["status"] if ct else None,
            "chosen_value_stopped": final(ct, metric) if ct else None,
            "chosen_params": {k: v for k, v in ct["params"].items() if k != "arm"} if ct else None,
            "chosen_full": chosen_full, "best_full": best_full, "regret": regret, "chosen_rank": rank,
            "compute_stopped": c_s, "compute_fifo": c_f, "compute_ratio": c_s / c_f if c_f else None,
            "rank_correlation": rhos,
            "finished_start_order": [i + 1 for i, t in enumerate(s_arm) if t["status"] == "finished"],
            "reached": {str(m): sum(at_milestone(t, metric, m) is not None for t in s_arm) for m in milestones},
        })
    total_s = sum(a["compute_stopped"] for a in arms)
    total_f = sum(a["compute_fifo"] for a in arms)
    pooled = [t for t in fifo if t["status"] == "finished"]
    return {
        "metric": metric, "mode": mode, "scheduler": search.get("scheduler"), "budget": budget,
        "grace_period": search.get("grace_period"), "reduction_factor": search.get("reduction_factor"),
        "milestones": milestones,
        "milestones_from": "--milestones" if given else "the rungs placed (rungs.jsonl)" if placed is not None
        else "grace_period * reduction_factor**k",
        "chosen_from": chosen_from, "same_configs": all_same, "arms": arms,
        "total": {"trials": len(stopped), "compute_stopped": total_s, "compute_fifo": total_f,
                  "compute_ratio": total_s / total_f if total_f else None,
                  "mean_regret": (sum(a["regret"] for a in arms) / len(arms))
                  if arms and all(finite(a["regret"]) for a in arms) else None,
                  "rank_correlation_pooled": {str(m): spearman([at_milestone(t, metric, m) for t in pooled],
                                                               [final(t, metric) for t in pooled])
                                              for m in milestones}},
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------------------
# Output


def fmt(x, digits=2) -> str:
    return f"{x:.{digits}f}" if finite(x) else "-"


def markdown(name: str, r: dict) -> str:
    ms = r["milestones"]
    head = ["arm", "trials", "chosen trial", "chosen: full-budget val (rank)", "best full-budget val", "regret",
            "compute stopped/fifo", *[f"rho @ {m:g}" for m in ms], "finished (start order)"]
    lines = [f"### {name}: {r['scheduler'] or 'the default scheduler'} vs fifo, {r['metric']} "
             f"(milestones {', '.join(f'{m:g}' for m in ms)} from {r['milestones_from']}; budget {r['budget']:.3g})",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a in r["arms"]:
        rank = f" ({a['chosen_rank']} of {a['trials_fifo']})" if a["chosen_rank"] else ""
        status = "" if a["chosen_status"] == "finished" else f" ({a['chosen_status']})"
        lines.append("| " + " | ".join([
            a["arm"], str(a["trials"]), f"{a['chosen_trial']}{status}", f"{fmt(a['chosen_full'])}{rank}",
            fmt(a["best_full"]), fmt(a["regret"]),
            f"{fmt(a['compute_stopped'], 1)}/{fmt(a['compute_fifo'], 1)} = {fmt(a['compute_ratio'])}",
            *[fmt(a["rank_correlation"][str(m)]) for m in ms],
            ",".join(map(str, a["finished_start_order"])) or "-"]) + " |")
    t = r["total"]
    lines.append("| " + " | ".join([
        "**all**", str(t["trials"]), "", "", "", f"mean {fmt(t['mean_regret'])}",
        f"{fmt(t['compute_stopped'], 1)}/{fmt(t['compute_fifo'], 1)} = {fmt(t['compute_ratio'])}",
        *[f"{fmt(t['rank_correlation_pooled'][str(m)])} (pooled)" for m in ms], ""]) + " |")
    lines.append("")
    lines.append(f"Same configurations in both runs: {'yes' if r['same_configs'] else 'NO'}; chosen trials from "
                 f"{r['chosen_from']}.")
    lines += [f"Note: {n}" for n in r["notes"]]
    return "\n".join(lines)


def parse_milestones(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, _, values = item.rpartition(":")
        out[name or "*"] = [float(v) for v in values.split(",") if v.strip()]
    return out


def package_origin(python: str) -> str:
    proc = subprocess.run([python, "-c", "import tune_hardbatch; print(tune_hardbatch.__file__)"],
                          capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr.strip()[-300:]


def git_head(path: Path) -> str:
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", default="default,cifar", help="comma-separated: default, cifar, or YAML paths")
    ap.add_argument("--cifar-root", help="the CIFAR-10 ImageFolder root (ROOT/train, ROOT/test): the cifar space")
    ap.add_argument("--work", help="where the runs go (default: a new temporary directory)")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--milestones", action="append", default=[],
                    help="rung milestones in epoch-equivalents of compute: '2,4' (every space) or 'cifar:2.5,5'")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="an extra --set for both runs")
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs `-m tune_hardbatch`")
    ap.add_argument("--analyse", action="store_true", help="no runs: compare the ones already under --work")
    args = ap.parse_args(argv)

    names = [s.strip() for s in args.spaces.split(",") if s.strip()]
    if "cifar" in names and not args.cifar_root and not args.analyse:
        ap.error("the cifar space needs --cifar-root (a CIFAR-10 ImageFolder tree)")
    if args.analyse and not args.work:
        ap.error("--analyse needs --work")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_tuning_"))
    work.mkdir(parents=True, exist_ok=True)
    milestones = parse_milestones(args.milestones)
    origin = package_origin(args.python)
    pkg_root = Path(origin).parent.parent if origin.endswith(".py") else None
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start",
            "python": args.python, "package": origin, "commit": git_head(pkg_root) if pkg_root else "?",
            "work": str(work), "extra_sets": args.sets}
    log(f"tune_hardbatch from {origin} (commit {meta['commit']}); runs under {work}")
    results = {"meta": meta, "spaces": {}}
    tables = []
    for name in names:
        space_path = SPACES[name] if name in SPACES else Path(name)
        label = name if name in SPACES else Path(name).stem
        space_dir = work / label
        space_dir.mkdir(parents=True, exist_ok=True)
        sets = list(COMMON_SETS)
        if name == "cifar" and args.cifar_root:
            sets.append(f"base.data.root={args.cifar_root}")
        sets += args.sets
        runs = {}
        for run in RUNS:
            cmd = search_command(args.python, space_path, space_dir, run, sets + RUN_SETS[run])
            runs[run] = {"command": " ".join(cmd)}
            if not args.analyse:
                if (space_dir / run).exists():
                    sys.exit(f"{space_dir / run} exists: give a new --work, or --analyse to read it")
                runs[run].update(run_search(cmd, space_dir / f"{run}.log", f"{label}/{run}"))
                if runs[run]["rc"] != 0:
                    sys.exit(f"{label}/{run} failed (exit {runs[run]['rc']}): see {space_dir / f'{run}.log'}")
                ends = [t["reports"][-1]["timestamp"] for t in read_trials(space_dir / run) if t["reports"]]
                if ends:  # the search phase alone (the stopped run's confirmation comes after it)
                    runs[run]["search_wall_s"] = round(max(ends) - runs[run]["started"], 1)
        result = analyse(space_dir, milestones.get(label, milestones.get("*")))
        result["runs"] = runs
        results["spaces"][label] = result
        table = markdown(label, result)
        walls = ", ".join(f"{r}: {runs[r]['wall_s']:.0f} s (search {runs[r].get('search_wall_s', math.nan):.0f} s)"
                          for r in RUNS if "wall_s" in runs[r])
        if walls:
            table += f"\nWall time: {walls}."
        tables.append(table)
        print("\n" + table + "\n", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        log(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
