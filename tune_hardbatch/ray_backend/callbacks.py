"""The driver's Ray Tune callbacks: the live view, MLflow tracking (the MLflow side is the `tracking`
package), `CheckpointPruner`, which hollows a trial's checkpoints when it ends (the policy is
`checkpoints.py`), and `ForgetAnalysis`, which drops what Ray keeps of an ended trial.

`TrackingCallback` forwards Ray Tune's trial events to a tracking session (`tracking.TrackingProcess`):
one nested MLflow child run per trial, for the search or (a second callback) the confirmation phase. The
parent run is opened by the search phase (`search.start_tracking`) and closed by `publish.finish_tracking`.
The result loggers are `ray_private.history_loggers`.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Callable, Optional

from ray import tune

from ..output.live import LiveView
from ..search.space import SearchSpace
from ..search.space.arms import ARM_KEY
from ..search.trials import Trial
from . import ray_private
from .checkpoints import hollow_ended

TRIM_EVERY = 50  # ended trials between `release_free_memory` calls: ~10 ms each, on a heap of hundreds of MB


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
    """A phase's trial events, forwarded to tracking: one nested MLflow child run per trial (params, every
    result at step = backprops, status, artifacts), made by `tracking.TrialRecorder` in the tracking
    process (`tracking.TrackingProcess`; in tests, `tracking.LocalTracking`).

    Ray calls these methods on its controller loop, which trials wait on (`tune.report`): each only copies
    what the recorder needs and queues it (`session.call` returns at once). `exp_dir`, `phase` and
    `describe`: the recorder's (`tracking.recorder`); `describe` travels to the tracking process pickled.
    """

    def __init__(self, session, space: SearchSpace, exp_dir: Path, phase: str = "search",
                 describe: Optional[Callable[[str, dict], tuple]] = None):
        self.session, self.exp_dir, self.phase = session, Path(exp_dir), phase
        self.dim_keys = None if describe is not None else list(space.dim_keys)  # None: the whole config
        self.name = str(self.exp_dir)  # the phase's recorder in the session
        session.open_phase(self.name, self.exp_dir, phase, describe)

    def __getstate__(self):  # Ray pickles callbacks into its experiment state; --resume makes fresh ones
        return {"session": None, "exp_dir": self.exp_dir, "phase": self.phase, "dim_keys": self.dim_keys,
                "name": self.name}

    def _params(self, trial) -> dict:
        if self.dim_keys is None:
            return dict(trial.config)
        return {k: trial.config[k] for k in (*self.dim_keys, ARM_KEY) if k in trial.config}  # its arm: a tag

    def on_trial_start(self, iteration, trials, trial, **info):
        self.session.call(self.name, "start", trial.trial_id, self._params(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        report = {k: v for k, v in result.items() if k != "config"}  # the config is the params already
        self.session.call(self.name, "result", trial.trial_id, self._params(trial), report)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.session.call(self.name, "end", trial.trial_id, self._params(trial), None, _checkpoint_path(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.session.call(self.name, "end", trial.trial_id, self._params(trial), "failed", _checkpoint_path(trial))

    def end_the_rest(self, trials: list[Trial]) -> None:
        """After the phase: `TrialRecorder.end_the_rest`."""
        self.session.call(self.name, "end_the_rest", list(trials))


def _checkpoint_path(trial):
    checkpoint = getattr(trial, "checkpoint", None)
    return getattr(checkpoint, "path", None) if checkpoint is not None else None
