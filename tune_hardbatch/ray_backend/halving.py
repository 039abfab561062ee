"""Synchronous successive halving on Ray Tune: `search.rungs.Ladder` (the policy) acted out on trials.

`SyncHalving` keeps one ladder per group (a declared arm, or "all" without arms). A report that reaches a
rung is recorded; if the rung is still waiting for other entrants the trial is PAUSED (Ray saves its
checkpoint, taken with that very report: the worker checkpoints at each rung, `checkpoints.CheckpointPolicy`)
and gives its slot to a trial that has not got there yet. When the last entrant arrives (or ends), the rung
decides: losers are stopped (Optuna hears PRUNED, MLflow "stopped early"), waiting survivors are resumed from
their checkpoint by `choose_trial_to_run`. The ladders are saved to `<experiment>/rungs.jsonl` (one line) after every
change: Ray pickles a scheduler once, when the Tuner is made, and restores it in that state, so after a driver
SIGKILL and `--resume` the file, not Ray, says which trials won, lost or still wait (a trial Ray's snapshot
never held leaves its rungs to the trial suggested in its place). Should every trial
of a search be waiting with nothing left to run (a searcher that gave fewer trials than planned), the rung
decides among the entrants it has, so a search never hangs.

`HeldLimiter`: Ray's ConcurrencyLimiter counts a paused trial as running, so a few trials waiting at a rung
would stop the searcher from starting the very trials they wait for; this one does not count them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from ..search.rungs import CONTINUE, STOP, WAIT, Ladder
from ..search.space.arms import ARM_KEY

# not *.json or *.pkl: Ray's restore copies those from the experiment folder to its staging folder and syncs
# them back up, so a resumed driver's file would be overwritten by the killed driver's
STATE_FILE = "rungs.jsonl"
ALL = "all"  # the group of a search without declared arms
HELD: dict[str, set] = {}  # experiment dir -> trials paused at an undecided rung (read by HeldLimiter)
_ACTION = {CONTINUE: TrialScheduler.CONTINUE, WAIT: TrialScheduler.PAUSE, STOP: TrialScheduler.STOP}


class SyncHalving(TrialScheduler):
    """One `Ladder` per group (`sizes`: group -> trials it will have), rungs at `milestones` of `time_attr`."""

    def __init__(self, sizes: dict, milestones: tuple, eta: float, metric: str, mode: str, time_attr: str,
                 exp_dir: Path):
        super().__init__()
        self._metric, self._mode, self.time_attr = metric, mode, time_attr
        self.sizes, self.milestones, self.eta = dict(sizes), tuple(milestones), eta
        self.exp_dir = str(exp_dir)
        self.ladders: Optional[dict] = None  # loaded on first use: see the module docstring
        self.trials: dict = {}  # trial id -> Ray Trial (this driver's)
        self.resume: set = set()  # waiting survivors to start again
        self.reconciled = False  # with Ray's trials (see `_reconcile`)
        self._written: Optional[str] = None  # the ladders as last saved

    @property
    def metric(self):
        return self._metric

    def set_search_properties(self, metric: Optional[str], mode: Optional[str], **spec) -> bool:
        return True  # set by the space: the searcher's metric and mode are the same

    def _state(self) -> dict:
        if self.ladders is None:
            path = Path(self.exp_dir) / STATE_FILE
            saved = json.loads(path.read_text()) if path.exists() else {}
            self.ladders = {g: Ladder.from_dict(saved[g]) if g in saved else
                            Ladder(n, self.milestones, self.eta, self._mode) for g, n in self.sizes.items()}
            self._held()
        return self.ladders

    def _held(self) -> None:
        HELD[self.exp_dir] = {t for lad in self.ladders.values() for t in lad.waiting()}

    def _save(self) -> None:
        """Write the ladders when they changed (most reports pass no rung: no write on the driver's loop)."""
        text = json.dumps({g: lad.to_dict() for g, lad in self._state().items()})
        if text == getattr(self, "_written", None):  # a scheduler pickled by an older version lacks it
            return
        path = Path(self.exp_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # whole or not at all, whenever the driver dies
        self._written = text
        self._held()

    def ladder(self, group: str) -> Ladder:
        """The rungs of `group` (an arm's name, or `ALL`)."""
        return self._state()[group]

    def _ladder(self, trial) -> Ladder:
        return self.ladder(trial.config.get(ARM_KEY, ALL))

    def on_trial_add(self, tune_controller, trial) -> None:
        self.trials[trial.trial_id] = trial
        self._ladder(trial).add(trial.trial_id)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        ladder = self._ladder(trial)
        time = float(result.get(self.time_attr) or 0.0)
        fate, decided = ladder.arrive(trial.trial_id, time, result.get(self._metric))
        self._save()
        self._act(tune_controller, decided, current=trial.trial_id)
        self.resume.discard(trial.trial_id)
        if result.get("budget_done") == 1 or result.get("diverged") == 1:
            return TrialScheduler.CONTINUE  # its last report (a rung's value when reports are coarse): it ends
        return _ACTION[fate]

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._ended(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._ended(tune_controller, trial)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._ended(tune_controller, trial)

    def _ended(self, tune_controller, trial) -> None:
        decided = self._ladder(trial).end(trial.trial_id)
        self.resume.discard(trial.trial_id)
        self._save()
        self._act(tune_controller, decided, current=trial.trial_id)

    def _act(self, tune_controller, decided: list, current: str) -> None:
        """Stop the losers that wait, mark the survivors that wait for resuming (the current trial: its
        action is the caller's answer)."""
        for _, survivors, losers in decided:
            for tid in losers:
                t = self.trials.get(tid)
                if tid != current and t is not None and t.status in (Trial.PAUSED, Trial.PENDING):
                    tune_controller.stop_trial(t)
            self.resume.update(t for t in survivors if t != current)

    def choose_trial_to_run(self, tune_controller):
        trials = tune_controller.get_trials()
        if not self.reconciled:
            self._reconcile(tune_controller, {t.trial_id for t in trials})
        for t in trials:
            if t.status == Trial.PAUSED and t.trial_id in self.resume:
                return t
        for t in trials:
            if t.status == Trial.PENDING:
                return t
        if any(t.status == Trial.PAUSED for t in trials) and \
                not any(t.status in (Trial.RUNNING, Trial.PENDING) for t in trials):
            self._force(tune_controller)  # nothing runs, nothing can come: decide with the entrants in
        return None

    def _reconcile(self, tune_controller, known: set) -> None:
        """Once, when the controller holds every trial (a fresh search: none; a resumed one: all it restored):
        forget the ladders' trials that Ray's snapshot did not keep."""
        self.reconciled = True
        for ladder in self._state().values():
            for tid in [t for t in ladder.members if t not in known]:
                self._act(tune_controller, ladder.forget(tid), current="")
        self._save()

    def _force(self, tune_controller) -> None:
        for ladder in self._state().values():
            decided = ladder.settle(force=True)
            if decided:
                self._save()
                self._act(tune_controller, decided, current="")

    def debug_string(self) -> str:
        return "; ".join(f"{g}: {[len(v) for v in lad.values]} at {lad.milestones}"
                         for g, lad in self._state().items())


class HeldLimiter(ConcurrencyLimiter):
    """A ConcurrencyLimiter that does not count the trials `SyncHalving` holds paused at a rung."""

    def __init__(self, searcher: Searcher, max_concurrent: int, exp_dir: Path):
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.exp_dir = str(exp_dir)

    def suggest(self, trial_id: str) -> Optional[dict]:
        held = len(HELD.get(self.exp_dir, set()) & self.live_trials)
        if len(self.live_trials) - held >= self.max_concurrent:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion not in (None, Searcher.FINISHED):
            self.live_trials.add(trial_id)
            self.num_unfinished_live_trials += 1
        return suggestion
