"""The worker side: one trial inside a Ray worker process (the function trainable and what it needs).

A trial is a `Trainer` on `apply_overrides(base, params)` with a report per epoch, and a checkpoint with
it when due. It continues exactly from `ray.tune.get_checkpoint()` when Ray restores it (a retry or
--resume); when a trial saves, what it keeps and how an unreadable checkpoint is skipped: `checkpoints.py`.
A diverged run (NaN/inf loss) reports `diverged: 1` and returns normally: it is not retried. Out of GPU memory
(`torch.OutOfMemoryError`: the same settings on the same GPU share run out again) and a `UserError`
likewise: it reports its last metrics again with `oom: 1` or `user_error: 1` and the `fatal_error` (no
checkpoint) and returns; results.csv lists it as failed with the reason. Every report carries
`budget_done` (1 once the plan's budget is trained), so a trial that ends without it was stopped early
by the scheduler. Warnings of a trial travel with its next report (`warnings`) to the driver's console.
A confirmation trial that trained its whole budget keeps its final model's per-example test correctness in
its folder (`training.correctness`), written before its last report, for the verdict's variance split.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

import ray
from ray import tune

from ..errors import UserError
from ..output.logs import tool_logger
from ..search.space import trial_config
from ..tracking.records import write_config, write_curves
from ..training.config import Config, build_config
from ..training.correctness import load_correct, save_correct
from ..training.strategies.labels import strategy_name
from . import checkpoints
from .faults import CRASH_ENV, CrashHook

log = tool_logger(__name__)

# Per process, outside the caching allocator's cap: the CUDA context, cuDNN/cuBLAS workspaces (~0.5-1 GiB)
CUDA_CONTEXT_BYTES = 1 << 30

_DATA_CACHE: "OrderedDict[tuple, Any]" = OrderedDict()  # (DataConfig, synthetic seed, device) -> Dataset
THREAD_TIMEOUT_S = 30  # a reused actor's wait for the ended trial's thread (see `trainable`)
_DATA_CACHE_SIZE = 2  # a reused actor keeps the data of its last two configs (seeds of one arm, say)


def cached_dataset(cfg: Config, device):
    """Decoded data for reused actors: a small per-process LRU keyed by (data config, seed, device)."""
    from ..training.data import load_dataset

    key = (cfg.data, cfg.seed if cfg.data.name == "synthetic" else None, str(device))  # only synthetic data
    # depends on the trial seed (the splits follow data.split_seed): the seeds of an arm share one copy
    if key in _DATA_CACHE:
        _DATA_CACHE.move_to_end(key)
        return _DATA_CACHE[key]
    dataset = load_dataset(cfg.data, cfg.seed, device)
    _DATA_CACHE[key] = dataset
    while len(_DATA_CACHE) > _DATA_CACHE_SIZE:
        _DATA_CACHE.popitem(last=False)
    return dataset


class TrialWarnings:
    """Warnings of one trial, each sent once with its next report (`warnings`), so that the driver's
    console shows them (workers' own output is not forwarded: log_to_driver is off). Python warnings
    raised while the trial trains are collected too."""

    def __init__(self):
        self.pending: list[str] = []
        self.seen: set[str] = set()
        self._saved = None

    def add(self, text: str) -> None:
        log.warning(text)  # the worker's log keeps it too
        if text not in self.seen:
            self.seen.add(text)
            self.pending.append(text)

    def take(self) -> dict:
        """`{"warnings": "a | b"}` for the next report (empty when there is nothing new)."""
        out = {"warnings": " | ".join(self.pending)} if self.pending else {}
        self.pending = []
        return out

    def __enter__(self):
        self._saved = warnings.showwarning
        warnings.showwarning = lambda message, category, *args, **kwargs: self.add(
            f"{category.__name__}: {message}")
        return self

    def __exit__(self, *exc):
        warnings.showwarning = self._saved


def _no_report(trainer) -> dict:
    """What an out-of-memory trial reports when it ran out before its first report."""
    nan = float("nan")
    pos = trainer.pos if trainer is not None else None
    compute = (pos.samples_forward + 2 * pos.samples_backward) / (3 * trainer.num_train) if pos else 0.0
    return {"epoch": pos.epoch if pos else 0,
            "epoch_equiv": pos.samples_forward / trainer.num_train if pos else 0.0,
            "compute_equiv": compute,
            "backprops": pos.backprops if pos else 0, "samples_forward": pos.samples_forward if pos else 0,
            "samples_with_grad": pos.samples_with_grad if pos else 0, "diverged": 0,
            "asha_time": compute,
            **{k: nan for k in ("train_loss", "train_top1", "train_loss_full", "val_loss", "val_top1", "val_top5",
                                "test_loss", "test_top1", "test_top5", "convergence_epoch", "epochs_to_target")}}


def _prepare(cfg: Config, setup: dict):
    """Threads, device and its memory share for this trial's process."""
    import torch

    from ..training.loop import resolve_device

    torch.set_num_threads(max(1, int(setup["cpu"])))
    device = resolve_device(cfg.device)
    if device.type == "cuda" and 0 < setup["gpu"] < 1:  # the caching allocator's cap leaves the context room
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(memory_fraction(setup["gpu"], total))
    return device


def memory_fraction(gpu: float, total_bytes: int) -> float:
    """The caching allocator's cap for a `gpu` share of a card: the share less the CUDA context's room."""
    return max(0.05, gpu - CUDA_CONTEXT_BYTES / total_bytes)


def _train(trainer, crash: Optional[CrashHook], trial_id: str, node_id: str, notes: TrialWarnings,
           policy: checkpoints.CheckpointPolicy, trial_dir: Path, curves: "Curves", confirm: bool = False) -> None:
    """Resume from Ray's checkpoint if any, then report once per epoch (with a checkpoint when due).

    Each report carries what the trial has spent so far outside training (cumulative, up to the previous
    report): `report_blocked_s` inside `tune.report` (waiting for the driver; with a checkpoint, also Ray
    copying it to storage), `checkpoint_s` writing checkpoints (torch.save). The trial's curves are drawn
    (on a thread of their own: `Curves`) before its last report, or when Ray stops it inside `tune.report`
    (a rung stops it: `SystemExit`). A confirmation trial (`confirm`) that trained its whole budget writes
    its test correctness (`training.correctness`) before its last report.
    """
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        state = checkpoints.load_checkpoint(checkpoint, trial_id, warn=notes.add)
        if state is not None:
            trainer.load_state_dict(state)
    if trainer.pos.finished and trainer.history:  # the trial's final checkpoint (a stale snapshot had it
        last = trainer.history[-1]                # still running): say again how it ended
        curves.draw(trainer.history)
        if confirm and not trainer.pos.diverged and load_correct(trial_dir) is None:
            save_correct(trial_dir, trainer.test_correct())
        tune.report({**last, **notes.take(), "node_id": node_id, "budget_done": int(not trainer.pos.diverged)})
        return
    try:
        _report_epochs(trainer, crash, trial_id, node_id, notes, policy, trial_dir, curves, confirm)
    except SystemExit:  # Ray stopped the trial while it waited in tune.report
        curves.draw(trainer.history)
        raise


def _report_epochs(trainer, crash, trial_id, node_id, notes, policy, trial_dir, curves, confirm=False) -> None:
    spent = {"report_blocked_s": 0.0, "checkpoint_s": 0.0}
    for report in trainer.run():
        if crash is not None:
            crash.check(report["epoch"], trial_id, trainer.total_epochs, trainer.cfg.optim.batch_size)
        metrics = {**report, **notes.take(), **spent, "node_id": node_id,  # node_id: which Ray node ran it
                   "budget_done": int(trainer.pos.finished and not trainer.pos.diverged)}
        if trainer.pos.finished or trainer.pos.diverged:
            curves.draw(trainer.history)
        if confirm and metrics["budget_done"]:  # before the last report: the driver reads it after the trial
            save_correct(trial_dir, trainer.test_correct())
        started = time.perf_counter()
        if policy.due(report, trainer.pos.finished or trainer.pos.diverged):
            saved = checkpoints.report_with_checkpoint(trainer, metrics, trial_dir)
            policy.saved(report, started)
            spent["checkpoint_s"] += saved
            spent["report_blocked_s"] += time.perf_counter() - started - saved
        else:
            tune.report(metrics)
            spent["report_blocked_s"] += time.perf_counter() - started


class Curves:
    """A trial's MLflow artifacts, written into its folder here, on the trial's own CPU, so that the driver only
    uploads them (with tracking on: `setup["artifacts"]`): the resolved config as the trial starts, the
    learning curves (`draw`) as it ends. Drawing takes ~0.1 s of CPU: on the driver, once per trial, it
    would be most of the driver's time in a search of short trials.

    The curves are drawn on a thread of their own, so that the trial's last report, or the reset of its
    actor for the next trial (Ray waits for the ended trial's thread), does not wait for the picture; the
    tracking process waits for the file (`tracking.recorder`). The thread is not a daemon: a worker that
    Ray ends gracefully finishes the picture first."""

    def __init__(self, cfg: Config, config: dict, setup: dict, trial_id: str, trial_dir: Path):
        self.trial_dir, self.on = trial_dir, bool(setup.get("artifacts"))
        self.thread: Optional[threading.Thread] = None  # the last drawing's
        if "arm_labels" in setup:  # as the confirmation's run names (`judgement.ArmRun`)
            self.title = f"confirm {setup['arm_labels'][config['arm']]} seed {config['seed']} {trial_id}"
        else:  # as the search's run names (`tracking.trial_record`)
            self.title = f"trial {trial_id} {strategy_name(cfg)}"
        if self.on:
            write_config(cfg, trial_dir)

    def draw(self, history: list[dict], background: bool = True) -> None:
        if not self.on:
            return
        if not background:
            write_curves(history, self.trial_dir, self.title)
            return
        self.thread = threading.Thread(target=write_curves, args=(list(history), self.trial_dir, self.title),
                                       name=f"curves {self.trial_dir.name}")
        self.thread.start()


def setup_config(config: dict, setup: dict) -> Config:
    """A search trial's config (base + its sampled params), or a confirmation trial's: the full config of
    arm `config["arm"]` (`setup["arms"]`) with seed `config["seed"]`."""
    if "arms" in setup:
        return build_config(None, {**setup["arms"][config["arm"]], "seed": config["seed"]})
    return trial_config(setup["base"], config, setup["dims"])


def trainable(config: dict, setup: dict) -> None:
    """One trial (see the module docstring); `setup` holds the base config, dims, resources, test hook.

    A `UserError` inside a trial (data a worker node cannot see, say) ends it `failed` with its one line,
    like running out of GPU memory: the same config fails again, so it is not retried.
    Test hooks: `setup["crash"]` (the driver's `TUNE_HARDBATCH_TEST_CRASH`, else the worker's), e.g.
    "epoch=3,marker=/abs/dir": see `faults.CrashHook`; `setup["simulate"]` (the driver's
    `TUNE_HARDBATCH_TEST_SIMULATE`): a trial that reports without training, see `simulated`. Never set
    them outside tests and benchmarks.
    """
    # a reused actor waits this long for the ended trial's thread (Ray's default, 2 s, can be short on a
    # loaded machine, and a reset that times out fails the trial it was for)
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", str(THREAD_TIMEOUT_S))
    cfg = setup_config(config, setup)
    trial_id = tune.get_context().get_trial_id()
    trial_dir = Path(setup["exp_dir"]) / trial_id
    curves = Curves(cfg, config, setup, trial_id, trial_dir)
    if setup.get("simulate"):
        from .simulated import run_simulated

        return run_simulated(cfg, setup["simulate"], trial_id, ray.get_runtime_context().get_node_id(), curves,
                             rungs=setup.get("rungs", ()))
    import torch

    from ..training.loop import Trainer

    device = _prepare(cfg, setup)
    crash_text = setup.get("crash") or os.environ.get(CRASH_ENV)
    crash = CrashHook(crash_text) if crash_text else None
    node_id = ray.get_runtime_context().get_node_id()
    trainer, end = None, None
    with TrialWarnings() as notes:
        try:
            trainer = Trainer(cfg, dataset=cached_dataset(cfg, device))
            policy = checkpoints.CheckpointPolicy(setup.get("checkpoint_every"), setup.get("rungs", ()))
            _train(trainer, crash, trial_id, node_id, notes, policy, trial_dir, curves, confirm="arms" in setup)
        except torch.cuda.OutOfMemoryError as exc:  # = torch.OutOfMemoryError; not retried (see above)
            end = {"oom": 1, "fatal_error": f"{checkpoints.short_error(exc)} (optim.batch_size "
                                            f"{cfg.optim.batch_size}, resources.gpu {setup['gpu']:g})"}
        except UserError as exc:
            end = {"user_error": 1, "fatal_error": str(exc)}
        if end is not None:  # outside the handler: the exception's frames (and their tensors) are freed
            _report_end(trainer, end, device, trial_id, node_id, notes, curves)


def _report_end(trainer, end: dict, device, trial_id: str, node_id: str, notes: TrialWarnings, curves) -> None:
    """The last report of a trial that cannot go on (`oom` or `user_error`, and `fatal_error`): not retried."""
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
    print(f"error: trial {trial_id}: {end['fatal_error']}; not retried", file=sys.stderr, flush=True)
    curves.draw(trainer.history if trainer is not None else [], background=False)  # failed: not waited for
    last = trainer.history[-1] if trainer is not None and trainer.history else _no_report(trainer)
    tune.report({**last, **notes.take(), "budget_done": 0, "node_id": node_id, **end})
