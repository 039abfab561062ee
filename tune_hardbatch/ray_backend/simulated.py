"""Simulated trials, for the driver-capacity benchmark only: the `TUNE_HARDBATCH_TEST_SIMULATE` hook of the
trainable. Never set it outside tests and benchmarks.

A simulated trial reports like a real one without training: one report per epoch of its config with every
key a real report has (the same metric names, compute counters and timings), a checkpoint with its first
and last report and at each rung (a small file, so Ray's checkpoint bookkeeping runs as for real trials), `interval` seconds
of sleep before each report, and no torch, data or model. Its validation accuracy is a smooth function of
the learning rate plus noise drawn from the trial id, so the early stopper and Optuna have something to compare. A
retried or resumed trial continues from its checkpoint's epoch. So the driver (Ray Tune's controller, the
searchers, the callbacks, MLflow tracking) does all the work it does for a real search, and many trials can
run at once on a small machine: the driver's capacity, not the trials', sets the pace.

`interval=S` (default 0.05): seconds before each report. `warmup=S` (default 0): the first trial of each
worker process waits that long first. Ray Tune gives a pending trial the actor of a trial that just ended
rather than wait for a new one, and kills the one it was starting: with trials shorter than a worker's
start (seconds, when dozens start at once on a few cores), a simulated cluster never grows past a few
actors and the machine spends its cores starting workers that are killed. Holding every first trial
until all workers are up gives the cluster its full size; figures are then read after that warm-up. With tracking on, a worker draws its first trial's
curves and copies that picture for its later trials: drawing is the worker's cost, not the driver's, and
here the simulated workers share the driver's few cores.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
import time

SIMULATE_ENV = "TUNE_HARDBATCH_TEST_SIMULATE"
STATE_FILE = "simulated.json"


def settings(text: str) -> tuple[float, float]:
    """(interval, warmup) seconds from the hook's text."""
    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    interval, warmup = float(fields.get("interval", 0.05)), float(fields.get("warmup", 0.0))
    if interval < 0 or warmup < 0:
        raise ValueError(f"{SIMULATE_ENV}={text!r}: interval and warmup must be >= 0")
    return interval, warmup


def report_of(cfg, epoch: int, rng: random.Random, num_train: int, elapsed_s: float) -> dict:
    """A real report's keys for epoch `epoch` (1-based) of `cfg`: counters from the config's batch size."""
    steps = math.ceil(num_train / cfg.optim.batch_size)
    samples = epoch * num_train
    lr_fit = -abs(math.log10(cfg.optim.lr) + 1.0)  # best near lr 0.1
    val = max(1.0, min(99.0, 90.0 + 8.0 * lr_fit - 30.0 / epoch + rng.gauss(0, 1.0)))
    loss = (100.0 - val) / 40.0
    nan = float("nan")
    return {"epoch": epoch, "epoch_equiv": float(epoch), "compute_equiv": float(epoch),
            "asha_time": epoch + 0.5, "backprops": epoch * steps, "samples_forward": samples,
            "samples_backward": samples, "samples_with_grad": samples, "train_loss": loss, "train_top1": val + 2,
            "val_loss": loss, "val_top1": val, "val_top5": min(100.0, val + 8), "test_loss": loss,
            "test_top1": val - 0.5, "test_top5": min(100.0, val + 7.5), "train_loss_full": nan, "lr": cfg.optim.lr,
            "p": 1.0, "delta": 1.0, "stage": 1, "time_train_s": elapsed_s, "time_eval_s": 0.0,
            "img_per_s": samples / max(elapsed_s, 1e-9), "diverged": 0, "convergence_epoch": nan, "converged": 0,
            "epochs_to_target": nan}


def run_simulated(cfg, text: str, trial_id: str, node_id: str, curves, num_train: int = 1150,
                  rungs: tuple = ()) -> None:
    """The simulated trial of `cfg` (see the module docstring); `curves`: the worker's `Curves`, drawn as a
    real trial's are; `num_train` as digits' training split; `rungs`: halving's milestones (a report that
    reaches one carries a checkpoint, as a real trial's does)."""
    from ray import tune

    pause, warmup = settings(text)
    if not _STARTED:  # a worker's first trial holds it until the others have started (see the docstring)
        _STARTED.append(trial_id)
        time.sleep(warmup)
    first = _restored_epoch(tune.get_checkpoint()) + 1
    rng = random.Random(f"{trial_id}/{first}")
    start, history = time.perf_counter(), []
    try:
        for epoch in range(first, cfg.epochs + 1):
            time.sleep(pause)
            last = epoch == cfg.epochs
            history.append(report_of(cfg, epoch, rng, num_train, time.perf_counter() - start))
            report = {**history[-1], "report_blocked_s": 0.0, "checkpoint_s": 0.0, "node_id": node_id,
                      "budget_done": int(last)}
            if last:
                _draw(curves, history)
            at_rung = any(epoch - 0.5 < m <= epoch + 0.5 for m in rungs)  # asha_time crosses a milestone
            _report(tune, report, epoch if epoch == first or last or at_rung else None)
    except SystemExit:  # stopped by the scheduler inside tune.report
        _draw(curves, history)
        raise


_STARTED: list[str] = []  # the first trial this worker process ran
_PNG: dict[str, bytes] = {}  # the first picture this worker drew, written again for every later trial


def _draw(curves, history: list[dict]) -> None:
    """The trial's curves as the driver receives them (a real PNG in the trial folder), drawn once per
    worker process: drawing is the worker's cost, and here the workers share the driver's few cores."""
    if not curves.on:
        return
    if not _PNG:
        curves.draw(history, background=False)
        _PNG["png"] = (curves.trial_dir / "curves.png").read_bytes()
        return
    tmp = curves.trial_dir / ".curves.sim.png"
    tmp.write_bytes(_PNG["png"])
    os.replace(tmp, curves.trial_dir / "curves.png")


def _report(tune, report: dict, checkpoint_epoch) -> None:
    if checkpoint_epoch is None:
        tune.report(report)
        return
    with tempfile.TemporaryDirectory(prefix="tune-hardbatch-sim-") as d:
        with open(os.path.join(d, STATE_FILE), "w") as fh:
            json.dump({"epoch": checkpoint_epoch}, fh)
        tune.report(report, checkpoint=tune.Checkpoint.from_directory(d))


def _restored_epoch(checkpoint) -> int:
    if checkpoint is None:
        return 0
    try:
        with checkpoint.as_directory() as d, open(os.path.join(d, STATE_FILE)) as fh:
            return int(json.load(fh)["epoch"])
    except (OSError, ValueError, KeyError):
        return 0
