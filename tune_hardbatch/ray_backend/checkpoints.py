"""A trial's checkpoints, the whole policy: when one is saved, what is kept, how one is loaded.

- When (`CheckpointPolicy`): with a report, every `run.checkpoint_every` epoch-equivalents, or by default
  (auto) once writing one costs at most 2% of the time since the last; always the first and last report.
- A running trial keeps its newest two intact (the newest, and one to fall back to if it is unreadable);
  older ones are hollowed: emptied, their folders left (`hollow_older`). Ray deletes none
  (`checkpoint_config`), because the experiment snapshot that --resume restores may name an older folder
  than the newest, and Ray refuses to restore from a folder that is gone.
- Loading (`load_checkpoint`): the checkpoint Ray names, else the newest readable other one that is not
  ahead of the results the driver recorded, else none (the trial starts afresh), with a warning.
- A trial that ended (finished, stopped early, diverged, failed for good) is never resumed: its newest
  checkpoint alone stays (`hollow_ended`, on a thread off Ray's controller loop). At the end of the search
  `prune_ended` deletes the folders of ended trials, except the newest one of the trials worth keeping
  (the best). Errored trials keep theirs: --resume retries them.

The folder layout (`checkpoint_<index>`, names sorting by age) is Ray's: `ray_private.trial_checkpoints`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from ray import tune

from ..output.logs import tool_logger
from ..search.trials import Trial, read_reports
from . import ray_private

CHECKPOINT_FILE = "trainer.pt"
KEEP_RUNNING = 2  # intact per running trial: the newest, and one to fall back to if it is unreadable
KEEP_ENDED = 1  # an ended trial is never resumed: its final checkpoint (MLflow may upload it) is enough
ENDED = ("finished", "stopped_early", "diverged")  # and `failed` without Ray's ERROR (out of memory, UserError)

log = tool_logger(__name__)


def checkpoint_config() -> tune.CheckpointConfig:
    """Ray's checkpoint settings for every Tuner: Ray deletes no checkpoint (`num_to_keep` None); this
    module hollows and prunes them instead (see the module docstring)."""
    return tune.CheckpointConfig(num_to_keep=None)


class CheckpointPolicy:
    """When a trial saves a checkpoint with its report: what retries and --resume continue from.

    `every` epoch-equivalents apart (`run.checkpoint_every`), or with `every` None (auto) whenever the
    time since the last checkpoint is at least `1 / AUTO_SHARE - 1` times what that checkpoint cost, so
    that checkpointing costs at most `AUTO_SHARE` of the trial's time whatever the model and the disk (a
    fixed interval cannot promise that: a 90 MB ResNet-18 checkpoint after every epoch on a fast GPU can
    double the epoch's time). Always the first report (a retry soon after the start loses little) and the
    last (the final checkpoint of the best trial is kept; see `prune_ended`), and the report that reaches a
    rung of synchronous halving (`rungs`): the trial may be paused there, and resumes from that checkpoint.
    """

    AUTO_SHARE = 0.02  # at most this share of a trial's time goes to writing checkpoints

    def __init__(self, every: Optional[float], rungs: tuple = ()):
        self.every, self.rungs = every, tuple(rungs)
        self.last_ee: Optional[float] = None
        self.last_end = time.perf_counter()
        self.cost_s = 0.0
        self.rung_time = 0.0  # the clock (`asha_time`) of the last report

    def due(self, report: dict, finished: bool) -> bool:
        time_now, before = float(report.get("asha_time", 0.0)), self.rung_time
        self.rung_time = time_now
        if finished or self.last_ee is None:
            return True
        if any(before < m <= time_now for m in self.rungs):  # the report a rung may pause the trial on:
            return True  # Ray resumes a paused trial from the checkpoint of its last report
        if self.every is not None:
            return report["epoch_equiv"] - self.last_ee >= self.every - 1e-9
        return time.perf_counter() - self.last_end >= self.cost_s * (1 / self.AUTO_SHARE - 1)

    def saved(self, report: dict, started: float) -> None:
        self.last_end = time.perf_counter()
        self.cost_s = self.last_end - started
        self.last_ee = report["epoch_equiv"]


def report_with_checkpoint(trainer, metrics: dict, trial_dir: Path) -> float:
    """Report `metrics` with a checkpoint of the trainer's state, then hollow the trial's older checkpoints
    (all but its newest `KEEP_RUNNING`); the seconds torch.save took."""
    import torch

    with tempfile.TemporaryDirectory(prefix="tune-hardbatch-ckpt-") as d:
        start = time.perf_counter()
        torch.save(trainer.state_dict(), os.path.join(d, CHECKPOINT_FILE))
        saved = time.perf_counter() - start
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
    hollow_older(trial_dir)
    return saved


def hollow_older(trial_dir: Path, keep: int = KEEP_RUNNING) -> None:
    """Empty all but the `keep` newest checkpoint folders of a trial, leaving the folders: the experiment
    snapshot that --resume restores may name any of them (Ray refuses one that is gone: "does not exist on
    storage anymore"); `load_checkpoint` then finds the named one empty and takes the newest readable one."""
    for path in ray_private.trial_checkpoints(trial_dir)[keep:]:
        for item in path.iterdir():
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)


def hollow_ended(trial_dir: Path) -> threading.Thread:
    """Hollow (empty, not delete: see `hollow_older`) all but the newest checkpoint of a trial that ended,
    on a thread of its own (started, and returned): Ray runs its callbacks on the controller loop, which
    every trial's report waits on."""
    thread = threading.Thread(target=hollow_older, args=(Path(trial_dir), KEEP_ENDED), daemon=True)
    thread.start()
    return thread


def load_checkpoint(checkpoint, trial_id: str, warn: Optional[Callable[[str], None]] = None) -> Optional[dict]:
    """The trainer state in a trial's checkpoint, or None (start afresh).

    A checkpoint that cannot be read (truncated, corrupt, emptied by `hollow_older`, gone) is skipped with a
    warning: the newest readable other checkpoint of the trial is used instead, else the trial starts from
    the beginning. (A newer one than Ray names exists when the experiment snapshot that --resume restored
    is older than the trial's last checkpoints, after a driver was killed; one newer than the last result in
    result.json is skipped: a worker wrote it after its driver died, its reports are lost.) Its next report
    then repeats an epoch, which the live view reports on the driver's console. `warn`: where the warning
    goes (default: this module's logger, whose warnings reach stderr).
    """
    import torch

    warn = warn or log.warning

    def load(path: Path) -> dict:
        return torch.load(path, map_location="cpu", weights_only=False)

    with checkpoint.as_directory() as d:
        first = Path(d) / CHECKPOINT_FILE
        try:
            return load(first)
        except Exception as exc:  # truncated zip, unpickling error, missing file, ...
            problems = [f"{first} ({short_error(exc)})"]
    named = Path(checkpoint.path)
    recorded = _recorded_backprops(named.parent)
    for path in (p for p in ray_private.trial_checkpoints(named.parent) if p.name != named.name):
        try:
            state = load(path / CHECKPOINT_FILE)
        except Exception as exc:
            problems.append(f"{path / CHECKPOINT_FILE} ({short_error(exc)})")
            continue
        if recorded is not None and state["position"].get("backprops", 0) > recorded:
            problems.append(f"{path.name} (ahead of the results the driver recorded)")
            continue
        warn(f"trial {trial_id}: unreadable checkpoint {'; '.join(problems)}; continuing from {path.name} "
             f"(epoch {state['position']['epoch']})")
        return state
    warn(f"trial {trial_id}: unreadable checkpoint {'; '.join(problems)}; no earlier one readable: starting "
         "the trial from the beginning")
    return None


def _recorded_backprops(trial_dir: Path) -> Optional[int]:
    """The back-propagations of the trial's last result that a driver recorded (result.json), if any: a
    checkpoint beyond it was written by a worker that outlived its driver, and its reports are lost."""
    for report in reversed(read_reports(trial_dir)):  # its whole lines: one being written, or damaged, is out
        try:
            return int(report.get("backprops", 0))
        except (TypeError, ValueError):
            continue
    return None


def short_error(exc: BaseException) -> str:
    """An exception in one short line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def keep_newest(trial_dir: Path, keep: int) -> int:
    """Delete all but the `keep` newest checkpoint folders of a trial; the bytes freed."""
    freed = 0
    for path in ray_private.trial_checkpoints(trial_dir)[keep:]:
        freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        shutil.rmtree(path, ignore_errors=True)
    return freed


def ended(trial: Trial) -> bool:
    """Whether a trial ended for good: nothing, not even --resume, continues it. An errored trial (Ray's
    ERROR) has not: --resume retries it from its checkpoint."""
    return trial.status in ENDED or (trial.status == "failed" and not trial.errored)


def prune_ended(exp_dir: Path, trials: list[Trial], keep_ids: set) -> int:
    """At the end of a search (after tracking, which may upload checkpoints): delete the checkpoint folders
    of the trials that ended, all of them except the newest of the trials in `keep_ids`; the bytes freed."""
    return sum(keep_newest(Path(exp_dir) / t.trial_id, KEEP_ENDED if t.trial_id in keep_ids else 0)
               for t in trials if ended(t))
