"""Ray's OptunaSearch, told the truth about each trial, with its study persisted for optuna-dashboard.

Ray's own `OptunaSearch` reports intermediate values at `training_iteration` (stage epochs for step-wise
trials, not equal compute), tells a trial stopped early COMPLETE with its early value (PRUNED only when the
value is None) and, when a value is NaN, lets Optuna's error leave the trial RUNNING forever. Here:

- intermediate values are reported at step `round(100 * epoch_equiv)` (hundredths of an epoch-equivalent:
  the same compute for every batch size and plan);
- a trial that ends without its budget (stopped early by the scheduler) is PRUNED, and the report it was
  stopped on is its last intermediate value (Ray hands that report to `on_trial_complete` only);
- an errored, diverged, out-of-memory or user-error trial, or one whose value is not finite, is FAIL;
- the rest are COMPLETE with their final value;
- after `--resume`, a trial a killed driver asked after its last snapshot (Ray makes it anew) is FAIL.

The study lives in `<experiment dir>/optuna.journal` (Optuna's JournalStorage): `optuna-dashboard
<experiment dir>/optuna.journal` opens it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

from optuna.storages.journal import JournalFileBackend
from ray.tune.search.optuna import OptunaSearch

from ..metrics import is_finite
from . import ray_private

STUDY_FILE = "optuna.journal"
STEP_SCALE = 100  # intermediate steps in hundredths of an epoch-equivalent


def outcome(result: Optional[dict], error: bool, metric: str) -> tuple[str, Optional[float]]:
    """(Optuna state name, value) of a trial that ended with `result` (its last report) and `error`."""
    if error or not result:
        return ("FAIL", None) if error else ("PRUNED", None)
    if result.get("oom") == 1 or result.get("user_error") == 1 or result.get("diverged") == 1:
        return "FAIL", None
    value = result.get(metric)
    if not is_finite(value):
        return "FAIL", None
    if result.get("budget_done") != 1:
        return "PRUNED", None
    return "COMPLETE", float(value)


def step_of(result: dict) -> int:
    return int(round(STEP_SCALE * float(result.get("epoch_equiv", 0.0))))


def study_storage(exp_dir: Path):
    """A JournalStorage in the experiment directory (a file: no database server, survives --resume)."""
    from optuna.storages import JournalStorage

    return JournalStorage(SingleWriterJournal(str(Path(exp_dir) / STUDY_FILE)))


class SingleWriterJournal(JournalFileBackend):
    """Optuna's journal file, written by one process: the driver that holds the experiment's lock
    (`search.prepare.lock`). Optuna's own backend takes a lock file and fsyncs for every write, a dozen times per
    trial (ask, each parameter, each intermediate value, tell): half of the driver's time in a search of
    short trials (py-spy, bench/bench_driver.py). Here a write is one append of whole lines (a reader never
    sees half of one), which the operating system keeps if the driver is killed; only a crash of the
    machine could lose the last ones."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path

    def append_logs(self, logs: list[dict]) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        with open(self.path, "ab") as fh:
            fh.write(text.encode("utf-8"))


def tpe_sampler(seed: Optional[int], startup: int, concurrency: int):
    """TPE configured explicitly, not by the defaults of whichever Optuna is installed:
    multivariate with `group` (the strategy parameters are conditional: trim.* only with trimming, ...),
    constant liar (running trials count as bad guesses, so parallel trials do not all propose the same
    point) and at least as many random start-up trials as trials run at once."""
    from optuna.exceptions import ExperimentalWarning
    from optuna.samplers import TPESampler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return TPESampler(seed=seed, n_startup_trials=max(startup, concurrency), multivariate=True, group=True,
                          constant_liar=True)


def random_sampler(seed: Optional[int]):
    """Independent uniform draws (searcher random with declared arms: each arm's own seeded sampler)."""
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=seed)


class TruthfulOptunaSearch(OptunaSearch):
    """OptunaSearch with equal-compute intermediate steps and truthful final states (see the module doc);
    its trials and study are OptunaSearch's privates, read through `ray_private` (6)."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._name_objective()
        trial = ray_private.open_optuna_trial(self, trial_id)
        value = result.get(self.metric)
        if trial is not None and is_finite(value):
            from optuna.exceptions import UpdateFinishedTrialError

            with warnings.catch_warnings():  # a step reported already (a retried trial's repeat) is kept
                warnings.simplefilter("ignore", UserWarning)
                try:
                    trial.report(float(value), step_of(result))
                except UpdateFinishedTrialError:  # told before a killed driver's last snapshot was saved:
                    ray_private.mark_told(self, trial_id)  # the journal (written at once) has its end

    def _name_objective(self) -> None:
        """The study's objective is named after the metric (optuna-dashboard shows it, not "Objective 0"):
        once per searcher (reading the study's names would read its journal at every result)."""
        if getattr(self, "_objective_named", False):
            return
        from optuna.exceptions import ExperimentalWarning

        study = ray_private.optuna_study(self)
        if study is not None and study.metric_names != [self.metric]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                study.set_metric_names([self.metric])
        self._objective_named = True

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self.fail_orphans()

    def fail_orphans(self) -> None:
        """A restored search tells FAIL to the study's trials that a killed driver asked after its last snapshot
        (no Ray trial will ever end them): none is left RUNNING forever, and TPE's constant liar stops
        counting them as running."""
        from optuna.trial import TrialState

        study = ray_private.optuna_study(self)
        for t in ray_private.orphan_optuna_trials(self):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        from optuna.trial import TrialState

        if result:  # Ray passes the report a scheduler stopped the trial on here only, not to on_trial_result
            self.on_trial_result(trial_id, result)
        state, value = outcome(result, error, self.metric)
        ray_private.tell_optuna(self, trial_id, value, getattr(TrialState, state))
