"""Declared arms on Ray Tune (`ray_backend.arm_search`): `ArmSearch` gives every arm exactly `trials_per_arm` trials,
each drawn and told by that arm's own searcher, also after save/restore; `ArmScheduler` (one ASHA per arm)
never stops a trial on another arm's results. The whole search, across a driver SIGKILL and --resume, is in
`test_driver.py`."""

from __future__ import annotations

import os
from collections import Counter

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from ray.tune.schedulers import ASHAScheduler, TrialScheduler  # noqa: E402
from ray.tune.search import Searcher  # noqa: E402

from tune_hardbatch.ray_backend.arm_search import ArmScheduler, ArmSearch  # noqa: E402


class Recorder(Searcher):
    """A searcher that draws lr = its count and records what it is told."""

    def __init__(self):
        super().__init__(metric="val_top1", mode="max")
        self.drawn, self.results, self.completed = [], [], []

    def suggest(self, trial_id):
        self.drawn.append(trial_id)
        return {"optim.lr": float(len(self.drawn))}

    def on_trial_result(self, trial_id, result):
        self.results.append(trial_id)

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append(trial_id)


def arm_search(per_arm=3):
    fixed = {"plain": {}, "delta=1": {"hard_batch.delta": 1.0}, "trim": {"trim.schedule": "linear"}}
    return ArmSearch({name: (Recorder(), f) for name, f in fixed.items()}, per_arm, "val_top1", "max")


def test_every_arm_gets_exactly_trials_per_arm_round_robin():
    search = arm_search(3)
    configs = [search.suggest(f"t{i}") for i in range(9)]
    assert [c["arm"] for c in configs[:3]] == ["plain", "delta=1", "trim"]  # interleaved, not arm after arm
    assert Counter(c["arm"] for c in configs) == {"plain": 3, "delta=1": 3, "trim": 3}
    assert search.suggest("t9") == Searcher.FINISHED
    assert configs[1] == {"arm": "delta=1", "hard_batch.delta": 1.0, "optim.lr": 1.0}
    assert search.searchers["trim"].drawn == ["t2", "t5", "t8"]


def test_each_arm_is_told_only_its_own_trials():
    search = arm_search(2)
    for i in range(6):
        search.suggest(f"t{i}")
    search.on_trial_result("t1", {"val_top1": 50.0})
    search.on_trial_complete("t4", {"val_top1": 60.0})
    search.on_trial_complete("unknown", {"val_top1": 1.0})  # not ours: ignored
    assert search.searchers["delta=1"].results == ["t1"] and search.searchers["delta=1"].completed == ["t4"]
    assert not search.searchers["plain"].results and not search.searchers["trim"].completed


def test_counts_survive_save_and_restore(tmp_path):
    search = arm_search(2)
    for i in range(4):
        search.suggest(f"t{i}")
    search.save(str(tmp_path / "searcher.pkl"))
    fresh = arm_search(2)
    fresh.restore(str(tmp_path / "searcher.pkl"))
    assert fresh.counts == {"plain": 2, "delta=1": 1, "trim": 1}
    rest = [fresh.suggest(f"u{i}")["arm"] for i in range(2)]
    assert sorted(rest) == ["delta=1", "trim"] and fresh.suggest("u2") == Searcher.FINISHED
    fresh.on_trial_complete("t0", {"val_top1": 1.0})  # a trial from before the restore reaches its arm
    assert fresh.searchers["plain"].completed == ["t0"]


class FakeTrial:
    def __init__(self, trial_id, arm):
        self.trial_id, self.config = trial_id, {"arm": arm}


def test_asha_per_arm_never_stops_a_trial_on_another_arms_results():
    """Three fast 'plain' trials pass the first rung at 90; a 'splits' trial that learns slowly early (10 at the
    rung) would be stopped by one ASHA over all trials, but its own arm has nothing better: it continues."""
    def make():
        return ASHAScheduler(time_attr="asha_time", metric="val_top1", mode="max", max_t=10, grace_period=1,
                             reduction_factor=2)

    joint, per_arm = make(), ArmScheduler(["plain", "splits"], make)
    fast = [FakeTrial(f"p{i}", "plain") for i in range(3)]
    slow = FakeTrial("s0", "splits")
    decisions = {}
    for name, scheduler in (("joint", joint), ("per_arm", per_arm)):
        for t in [*fast, slow]:
            scheduler.on_trial_add(None, t)
        for t in fast:
            scheduler.on_trial_result(None, t, {"asha_time": 1.0, "val_top1": 90.0})
        decisions[name] = scheduler.on_trial_result(None, slow, {"asha_time": 1.0, "val_top1": 10.0})
    assert decisions == {"joint": TrialScheduler.STOP, "per_arm": TrialScheduler.CONTINUE}
    late = FakeTrial("s1", "splits")  # the arm's own ranking still stops its weaker trials
    per_arm.on_trial_add(None, late)
    assert per_arm.on_trial_result(None, late, {"asha_time": 1.0, "val_top1": 5.0}) == TrialScheduler.STOP
