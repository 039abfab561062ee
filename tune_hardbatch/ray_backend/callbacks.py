"""The driver's Ray Tune callbacks: the live view, MLflow tracking (the MLflow side is the `tracking`
package) and `CheckpointPruner`, which hollows a trial's checkpoints when it ends (the policy is
`checkpoints.py`).

`TrackingCallback` adapts Ray Tune's callback events to `tracking.SearchTracker`: one nested MLflow child
run per trial (params, every result at step = backprops, status, artifacts), for the search or (a second
callback) the confirmation phase; the work runs on `tracking.BackgroundTracker`'s thread. The parent run
is opened by the search phase (`search.start_tracking`) and closed by `publish.finish_tracking`.
The result loggers are `ray_private.history_loggers`.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Callable, Optional

from ray import tune

from ..live import LiveView
from ..space import SearchSpace
from ..tracking import (
    CURVES_FILE,
    SEND_S,
    BackgroundTracker,
    described_config,
    trial_artifacts,
    trial_files,
    trial_key,
    trial_record,
)
from ..trials import Trial, classify, read_reports
from . import ray_private
from .checkpoints import hollow_ended

TRIM_EVERY = 50  # ended trials between `release_free_memory` calls: ~10 ms each, on a heap of hundreds of MB
CURVES_POLL_S = 0.25  # a stopped trial's curves: looked for this often,
CURVES_WAIT_S = 15.0  # and this long (then drawn here): the worker draws them in ~0.2 s once Ray stops it


class LiveCallback(LiveView, tune.Callback):
    """The live view as a Ray Tune callback."""


class CheckpointPruner(tune.Callback):
    """When a trial ends (not on an error: --resume retries those), `checkpoints.hollow_ended` leaves it its
    newest checkpoint only."""

    def __init__(self, exp_dir: Path):
        self.exp_dir = Path(exp_dir)

    def on_trial_complete(self, iteration, trials, trial, **info):
        hollow_ended(self.exp_dir / trial.trial_id)


class ForgetAnalysis(tune.Callback):
    """When a trial ends, Ray forgets its running analysis of every reported key but `keep` (the search
    metric and the scheduler's time): ~80 kB a trial that the driver would otherwise hold to the end
    (`ray_private.forget_analysis`). Every `TRIM_EVERY` ended trials, the C allocator hands the pages that
    freed objects left back to the system (`release_free_memory`)."""

    def __init__(self, keep):
        self.keep = frozenset(keep)
        self.ended = 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._forget(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._forget(trial)

    def _forget(self, trial) -> None:
        ray_private.forget_analysis(trial, self.keep)
        self.ended += 1
        if self.ended % TRIM_EVERY == 0:
            release_free_memory()


def release_free_memory() -> bool:
    """glibc's `malloc_trim(0)`: free pages inside the heap and its arenas go back to the system. Without it
    a long search's driver keeps the high-water mark of every burst of results (Ray's messages, MLflow's
    SQL rows) as resident memory. False where the C library has no such call (not glibc)."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True


class TrackingCallback(tune.Callback):
    """One nested MLflow child run per trial: params, every result at step = backprops, status, artifacts.

    Ray calls these methods on its controller loop, which trials wait on (`tune.report`): each method
    only copies what it needs and queues the work on `BackgroundTracker`'s thread (MLflow calls);
    `last`, `records` and the tracker's mapping are touched by that thread only. A trial's worker writes its
    artifacts (`worker.Curves`); the driver uploads them, and draws them itself only for a trial whose
    worker could not (one that failed for good). Per trial, the driver keeps its last result and its
    description while it runs, and nothing of it once it ended.

    `exp_dir`: where this phase's trial folders are (`<search>/confirm` for the confirmation). `phase`:
    the runs' `phase` tag and their keys in the mapping (`tracking.trial_key`: "confirm/<id>"), so the two
    phases' trials never share a run. `describe(trial_id, config) -> (params, tags, run_name)`: how a
    trial's run is described (default: the search's, from its sampled params: the flattened resolved
    config, tags strategy and phase, name "<strategy> <trial id>"); it runs on the tracking thread.
    """

    def __init__(self, tracker, spec: SearchSpace, exp_dir: Path, background: BackgroundTracker,
                 phase: str = "search", describe: Optional[Callable[[str, dict], tuple]] = None):
        self.tracker, self.spec, self.exp_dir = tracker, spec, Path(exp_dir)
        self.background = background
        self.phase, self.describe = phase, describe
        self.last: dict[str, dict] = {}  # running trial id -> its last result
        self.records: dict[str, tuple] = {}  # running trial id -> (params, tags, run name, Config or None)
        self.phase_over = False  # set by `end_the_rest`: stopped trials' curves are no longer waited for

    def __getstate__(self):  # Ray pickles callbacks into its experiment state; --resume makes fresh ones
        return {"tracker": None, "spec": None, "exp_dir": self.exp_dir, "last": {}, "background": None,
                "phase": self.phase, "describe": None, "records": {}, "phase_over": False}

    def key(self, trial_id: str) -> str:
        """The trial's key in the tracker's mapping."""
        return trial_key(trial_id, self.phase)

    def _params(self, trial) -> dict:
        if self.describe is not None:
            return dict(trial.config)
        return {k: trial.config[k] for k in self.spec.dim_keys if k in trial.config}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.background.submit(self._ensure_run, trial.trial_id, self._params(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.background.submit(self._log, trial.trial_id, self._params(trial), dict(result))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.background.submit(self._end, trial.trial_id, self._params(trial), None, _checkpoint_path(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.background.submit(self._end, trial.trial_id, self._params(trial), "failed", _checkpoint_path(trial))

    def end_the_rest(self, trials: list[Trial]) -> None:
        """After the phase: end (with artifacts) every trial whose run was not ended, e.g. those that
        finished just before an earlier driver was killed with their end still queued; then one query
        for child runs made twice (a create request retried by the client) deletes the extras. A described
        trial (a confirmation trial) whose record lacks its config is described from its params.json.
        Trials still waiting for the curves their workers draw (Ray may have ended those workers with the
        phase) are drawn here instead, so the phase ends at once."""
        self.background.submit(setattr, self, "phase_over", True)
        for t in trials:
            if t.status != "unfinished":
                params = t.params if t.params or self.describe is None else None
                self.background.submit(self._end_if_open, t.trial_id, params, t.status)
        self.background.submit(self.tracker.delete_duplicates)

    def _end_if_open(self, trial_id: str, params: Optional[dict], status: str) -> None:
        if not self.tracker.ended(self.key(trial_id)):
            self._end(trial_id, params, status, None)

    # ------------------------------------------------------------------ on the background thread
    def _record(self, trial_id: str, params: Optional[dict]) -> tuple:
        if trial_id not in self.records:
            if params is None:  # Ray's params.json in the trial folder holds the trial's config
                params = json.loads((self.exp_dir / trial_id / "params.json").read_text())
            if self.describe is None:
                run_params, tags, cfg = trial_record(self.spec, params)
                name = None  # the tracker's default: "<strategy> <trial id>"
            else:
                run_params, tags, name = self.describe(trial_id, params)
                tags, cfg = {"phase": self.phase, **tags}, described_config(self.spec, run_params)
            self.records[trial_id] = (run_params, tags, name, cfg)
        return self.records[trial_id]

    def _ensure_run(self, trial_id: str, params: Optional[dict]) -> None:
        if trial_id in self.last:
            return
        key = self.key(trial_id)
        if key not in self.tracker.mapping["trials"]:
            run_params, tags, name, _ = self._record(trial_id, params)
            self.tracker.trial_run(key, run_params, tags, name)
        reported = read_reports(self.exp_dir / trial_id)  # a restored trial's reports, uploaded if an
        for result in reported:                           # earlier driver died first (steps MLflow has
            self._buffer(key, result)                     # already are skipped)
        self.last[trial_id] = reported[-1] if reported else {}

    def _log(self, trial_id: str, params: dict, result: dict) -> None:
        self._ensure_run(trial_id, params)
        self.last[trial_id] = result
        self._buffer(self.key(trial_id), result)

    def _buffer(self, key: str, result: dict) -> None:
        if self.tracker.log_result(key, result):  # the first buffered: sent within SEND_S (or as it ends)
            self.background.later(SEND_S, self.tracker.send, key)

    def _end(self, trial_id: str, params: Optional[dict], status, checkpoint, waited_s: float = 0.0) -> None:
        self._ensure_run(trial_id, params)
        trial_dir = self.exp_dir / trial_id
        status = status or classify(None, self.last[trial_id])
        if status == "stopped_early" and not (trial_dir / CURVES_FILE).is_file() and waited_s < CURVES_WAIT_S \
                and not self.phase_over:
            # stopped inside tune.report, the worker draws its curves just after this event
            self.background.later(CURVES_POLL_S, self._end, trial_id, params, status, checkpoint,
                                  waited_s + CURVES_POLL_S)
            return
        files = trial_files(trial_dir)
        if len(files) < 2:  # its worker could not write them (e.g. it failed for good)
            _, tags, name, cfg = self._record(trial_id, params)
            title = name or f"trial {trial_id} {tags.get('strategy', '')}"
            files = trial_artifacts(cfg, read_reports(trial_dir), trial_dir, title)
        if self.tracker.log_checkpoint and checkpoint:
            files.append(Path(checkpoint))
        self.tracker.end_trial(self.key(trial_id), status, files)
        self.last.pop(trial_id, None)
        self.records.pop(trial_id, None)


def _checkpoint_path(trial):
    checkpoint = getattr(trial, "checkpoint", None)
    return getattr(checkpoint, "path", None) if checkpoint is not None else None
