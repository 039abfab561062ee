"""Declared arms on Ray Tune: every arm its own sampler and its own early stopper, the same trial count.

`ArmSearch` hands out trials round-robin over the arms that have fewer than `trials_per_arm`, each drawn by
that arm's own searcher (a `TruthfulOptunaSearch` over the arm's dimensions, so TPE models each arm apart)
and told only that arm's results; its counts are part of its saved state, so `--resume` after a driver
SIGKILL continues them exactly. The shared dimensions (the space's `space` section) of every arm's k-th
start-up trial take point k of one design drawn for the search (`search.space.design.shared_design`):
enqueued into the arm's Optuna study right before it is asked, so each sampler draws only its arm's own
dimensions, and arms that search more dimensions still try the same learning rates. Each arm's early
stopping is its own too (`halving.SyncHalving` keeps a ladder per arm): a trial is compared only with trials
of its own arm, so one strategy's early learning speed never decides another's fate.
"""

from __future__ import annotations

import pickle
from typing import Optional

from ray.tune.search import Searcher

from ..search.space.arms import ARM_KEY
from ..search.space.design import shared_design
from . import ray_private
from .optuna_search import TruthfulOptunaSearch

DESIGN_ATTR = "shared_design_point"  # an enqueued Optuna trial's user attribute: its design point's index


class ArmSearch(Searcher):
    """One searcher per arm (`searchers`: arm name -> (Searcher, fixed part)); `trials_per_arm` each.

    With `shared` (the shared dimensions) and `startup` (arm -> how many of its trials its sampler draws
    at random), each searcher an Optuna one: an arm's trial k < startup takes the design's point k for the
    shared dimensions (`shared_design(shared, max startup, seed)`, drawn here once and saved with the
    state, so a resumed search keeps it whatever the seed)."""

    design: list = []  # a search saved before it had a design (no attribute to restore) enqueues nothing
    startup: dict = {}

    def __init__(self, searchers: dict, trials_per_arm: int, metric: str, mode: str, shared=(),
                 seed: Optional[int] = None, startup: Optional[dict] = None):
        super().__init__(metric=metric, mode=mode)
        self.searchers = {name: s for name, (s, _) in searchers.items()}
        self.fixed = {name: fixed for name, (_, fixed) in searchers.items()}
        self.trials_per_arm = trials_per_arm
        self.counts = {name: 0 for name in searchers}
        self.arm_of: dict[str, str] = {}  # Ray trial id -> arm
        self.startup = dict(startup or {}) if shared else {}
        self.design = shared_design(shared, max(self.startup.values(), default=0), seed)

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
        self._enqueue_design(arm, self.counts[arm])
        sampled = self.searchers[arm].suggest(trial_id)
        if sampled is None or sampled == Searcher.FINISHED:
            return None
        self.counts[arm] += 1
        self.arm_of[trial_id] = arm
        return {ARM_KEY: arm, **self.fixed[arm], **sampled}

    def _enqueue_design(self, arm: str, k: int) -> None:
        """Queue design point k (the shared keys only) as the next trial of `arm`'s study, if its trial k is a
        start-up trial.

        The queue is the study's WAITING trials (in its journal), the count this searcher's (from the last
        snapshot): a driver killed between enqueue and ask, or a suggest that gave nothing, leaves a point
        waiting. Point k waiting first is the one the next ask takes (not queued twice); any other waiting
        trial (a point queued for a trial past the snapshot, which the resumed search runs again) is ended
        FAIL first, since the study asks its oldest waiting trial next and point k would come too late."""
        if k >= min(self.startup.get(arm, 0), len(self.design)) or not self.design[k]:
            return
        from optuna.trial import TrialState

        study = ray_private.optuna_study(self.searchers[arm])
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if waiting and waiting[0].user_attrs.get(DESIGN_ATTR) == k:
            return
        for _ in waiting:
            study.tell(study.ask(), state=TrialState.FAIL)
        study.enqueue_trial(self.design[k], user_attrs={DESIGN_ATTR: k})

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
        for searcher in self.searchers.values():  # their own restore is not called: this pickle holds them
            if isinstance(searcher, TruthfulOptunaSearch):
                searcher.fail_orphans()
