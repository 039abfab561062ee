"""Declared arms on Ray Tune: every arm its own sampler and its own early stopper, the same trial count.

`ArmSearch` hands out trials round-robin over the arms that have fewer than `trials_per_arm`, each drawn by
that arm's own searcher (a `TruthfulOptunaSearch` over the arm's dimensions, so TPE models each arm apart)
and told only that arm's results; its counts are part of its saved state, so `--resume` after a driver
SIGKILL continues them exactly. `ArmScheduler` gives each arm its own ASHA: a trial is compared only with
trials of its own arm, so one strategy's early learning speed never decides another's fate.
"""

from __future__ import annotations

import pickle
from typing import Optional

from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from ..search.space.arms import ARM_KEY


class ArmSearch(Searcher):
    """One searcher per arm (`searchers`: arm name -> (Searcher, fixed part)); `trials_per_arm` each."""

    def __init__(self, searchers: dict, trials_per_arm: int, metric: str, mode: str):
        super().__init__(metric=metric, mode=mode)
        self.searchers = {name: s for name, (s, _) in searchers.items()}
        self.fixed = {name: fixed for name, (_, fixed) in searchers.items()}
        self.trials_per_arm = trials_per_arm
        self.counts = {name: 0 for name in searchers}
        self.arm_of: dict[str, str] = {}  # Ray trial id -> arm

    def set_search_properties(self, metric: Optional[str], mode: Optional[str], config: dict, **spec) -> bool:
        return all(s.set_search_properties(metric, mode, config, **spec) for s in self.searchers.values())

    def next_arm(self) -> Optional[str]:
        """The arm with the fewest trials so far (declaration order breaks ties); None when all are full."""
        open_arms = [a for a in self.counts if self.counts[a] < self.trials_per_arm]
        return min(open_arms, key=lambda a: self.counts[a]) if open_arms else None

    def suggest(self, trial_id: str):
        arm = self.next_arm()
        if arm is None:
            return Searcher.FINISHED
        sampled = self.searchers[arm].suggest(trial_id)
        if sampled is None or sampled == Searcher.FINISHED:
            return None
        self.counts[arm] += 1
        self.arm_of[trial_id] = arm
        return {ARM_KEY: arm, **self.fixed[arm], **sampled}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.arm_of:
            self.searchers[self.arm_of[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        if trial_id in self.arm_of:
            self.searchers[self.arm_of[trial_id]].on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))


class ArmScheduler(TrialScheduler):
    """One scheduler per arm (`make()` builds each, e.g. an ASHA), chosen by the trial config's arm."""

    def __init__(self, arms: list[str], make):
        super().__init__()
        self.schedulers = {arm: make() for arm in arms}
        self._metric = next(iter(self.schedulers.values())).metric

    def _of(self, trial):
        return self.schedulers[trial.config[ARM_KEY]]

    def set_search_properties(self, metric: Optional[str], mode: Optional[str], **spec) -> bool:
        return all(s.set_search_properties(metric, mode, **spec) for s in self.schedulers.values())

    def on_trial_add(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._of(trial).on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller):
        return next(iter(self.schedulers.values())).choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return "\n".join(f"{arm}: {s.debug_string()}" for arm, s in self.schedulers.items())
