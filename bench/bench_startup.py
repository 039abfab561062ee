"""Fixed start-up of a run: process start to the end of its first 30 training steps.

Runs `tune-hardbatch train CONFIG` in a fresh process with a training set of exactly 30 batches and one
epoch, timestamps the first report line on stdout and subtracts that report's evaluation time. The first
run may decode the dataset (and fill the decode cache); the following runs show the cached start-up.

    python bench/bench_startup.py search_spaces/cifar10_resnet18.yaml --set data.root=/data/cifar10-jpeg
    python bench/bench_startup.py --repeats 3                 # the digits default, on this machine
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one_run(config, sets, steps: int) -> dict:
    cmd = [sys.executable, "-m", "tune_hardbatch", "train", "--quiet", *([config] if config else []),
           *sum((["--set", s] for s in sets), []), "--set", "epochs=1", "--set", "stepwise.fractions=null"]
    batch = _batch_size(config, sets)
    cmd += ["--set", f"data.train_limit={steps * batch}"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = json.loads(proc.stdout.readline())
    seen = time.perf_counter() - start
    proc.communicate()
    return {"to_first_report_s": seen, "eval_s": first["time_eval_s"],
            "startup_to_30_steps_s": seen - first["time_eval_s"], "train_s": first["time_train_s"],
            "backprops": first["backprops"]}


def _batch_size(config, sets) -> int:
    from tune_hardbatch.training.config import config_from_file

    return config_from_file(config, list(sets)).optim.batch_size


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    runs = [one_run(args.config, args.sets, args.steps) for _ in range(args.repeats)]
    for i, r in enumerate(runs):
        print(f"run {i + 1}: start-up to {r['backprops']} steps {r['startup_to_30_steps_s']:.2f} s "
              f"(training {r['train_s']:.2f} s, first report {r['to_first_report_s']:.2f} s)", flush=True)
    print(json.dumps({"config": args.config, "sets": args.sets, "runs": runs}))


if __name__ == "__main__":
    main()
