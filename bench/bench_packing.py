"""Packing trials on one GPU: 4 trials at 0.25 GPU each against the same 4 trials at 1 GPU each.

Each setting runs `tune-hardbatch search` twice on a grid of 4 seeds (FIFO, no MLflow): packed (all four
at once on the GPU) and one at a time. Reported per setting: aggregate steady-state img/s (the sum of the
concurrent trials' median img/s after their first epoch; for one-at-a-time, the mean of the trials), search
wall time, and per-trial start-up (trial start to the end of set-up, i.e. Ray's time_total_s at the first
report minus that report's training and evaluation time), with the ratios packed / one-at-a-time.

    python bench/bench_packing.py --data /data/cifar10-jpeg            # the issue's three settings on a GPU
    python bench/bench_packing.py --quick                              # CPU: 2 trials x 1 CPU vs 1 x 2 CPUs
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

SETTINGS = {  # name -> base config overrides
    "mobilenetv3_small_100_128px": {"model": {"name": "mobilenetv3_small_100"}, "data": {"image_size": 128}},
    "resnet18_32px": {"model": {"name": "resnet18", "cifar_stem": False}},
    "cifar_resnet18_32px": {"model": {"name": "resnet18", "cifar_stem": True}},
}


def space(args, overrides: dict, gpu: float, cpu: float, trials: int) -> dict:
    data = {"name": "imagefolder", "root": args.data} if args.data else {"name": "synthetic"}
    data.update({"train_limit": args.steps * args.batch, "augment": "crop_flip", **overrides.get("data", {})})
    base = {"epochs": args.epochs, "device": "auto" if gpu else "cpu", "data": data,
            "model": overrides["model"], "optim": {"batch_size": args.batch, "lr": 0.1, "schedule": "onecycle"}}
    return {"base": base, "space": {"seed": {"grid": list(range(trials))}},
            "search": {"searcher": "grid", "scheduler": "fifo", "max_concurrent": None},
            "resources": {"cpu": cpu, "gpu": gpu}, "tracking": {"enabled": False},
            "run": {"max_failures": 0}}


def measure(spec: dict, out: Path, name: str) -> dict:
    from tune_hardbatch.output.report import load_trials
    from tune_hardbatch.ray_backend import run_search

    start = time.perf_counter()
    run_search(spec, out=str(out), sets=[f"run.name={name}"], live_interval_s=60)
    wall = time.perf_counter() - start
    trials = load_trials(out / name)
    rates, startups = [], []
    for t in trials:
        h = t["history"]
        rates.append(statistics.median(r["img_per_s"] for r in h[1:]) if len(h) > 1 else h[0]["img_per_s"])
        startups.append(h[0]["time_total_s"] - h[0]["time_train_s"] - h[0]["time_eval_s"])
    return {"wall_s": wall, "trial_img_per_s": rates, "startup_s": statistics.mean(startups)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="an ImageFolder root (train/, test/); default synthetic 3x32x32")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="CPU: test_resnet on digits-sized data")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-packing-"))
    results = {}
    if args.quick:
        args.batch, args.steps, args.epochs = 64, 15, 3
        settings = {"test_resnet_32px_cpu": {"model": {"name": "test_resnet"}}}
        arms = {"packed": (0, 1, 2), "alone": (0, 2, 2)}  # (gpu, cpu, trials)
    else:
        settings = {k: SETTINGS[k] for k in args.settings.split(",")}
        arms = {"packed": (0.25, 2, 4), "alone": (1, 2, 4)}
    for name, overrides in settings.items():
        res = {arm: measure(space(args, overrides, gpu, cpu, n), out, f"{name}-{arm}")
               for arm, (gpu, cpu, n) in arms.items()}
        packed, alone = res["packed"], res["alone"]
        res["aggregate_img_per_s_ratio"] = sum(packed["trial_img_per_s"]) / statistics.mean(alone["trial_img_per_s"])
        res["wall_time_ratio"] = alone["wall_s"] / packed["wall_s"]
        results[name] = res
        print(f"{name}: aggregate img/s x{res['aggregate_img_per_s_ratio']:.2f}, wall time x"
              f"{res['wall_time_ratio']:.2f} (packed {packed['wall_s']:.0f} s vs {alone['wall_s']:.0f} s), "
              f"start-up {packed['startup_s']:.1f} s / {alone['startup_s']:.1f} s", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
