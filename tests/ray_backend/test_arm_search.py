"""Declared arms on Ray Tune (`ray_backend.arm_search`): `ArmSearch` gives every arm exactly `trials_per_arm` trials,
each drawn and told by that arm's own searcher, also after save/restore, and every arm's k-th start-up trial
the shared design's point k (queued into the arm's Optuna study: never twice, never skipped, also after a
restore that finds points left waiting). Each arm's own rungs: `test_halving.py`. The whole search, across a driver SIGKILL and --resume, is in `test_driver.py` and, for the
shared design, `test_arm_design.py`."""

from __future__ import annotations

import os
from collections import Counter

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from ray.tune.search import Searcher  # noqa: E402

from tune_hardbatch.ray_backend.arm_search import ArmSearch  # noqa: E402


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


SHARED = ("optim.lr", "optim.weight_decay")  # the space's dimensions, searched alike in every arm
DESIGN_ARMS = {"plain": {}, "delta<1": {"space": {"hard_batch.delta": {"choice": [0.5, 0.3]}}},  # own dims differ
               "trim": {"fixed": {"trim.schedule": "linear"}, "space": {"trim.p_end": {"uniform": [0.3, 0.8]}}},
               "both": {"space": {"trim.schedule": {"choice": ["none", "linear"]},
                                  "trim.p_end": {"uniform": [0.3, 0.8]}, "hard_batch.delta": {"choice": [0.5, 0.3]}}}}


def design_space(**search):
    from search_helpers import BASE

    from tune_hardbatch.search import space as SP

    return SP.validate_space({
        "base": {**BASE, "epochs": 4},
        "space": {"optim.lr": {"loguniform": [0.01, 0.3]}, "optim.weight_decay": {"loguniform": [1e-5, 1e-3]}},
        "arms": DESIGN_ARMS, "search": {"trials_per_arm": 4, "startup_trials": 3, "scheduler": "fifo", **search}})


def built_arm_search(space, exp_dir, concurrency=1) -> ArmSearch:
    """The ArmSearch that `tuner.build_searcher` builds (inside its concurrency limiter), studies in exp_dir."""
    from tune_hardbatch.ray_backend.tuner import build_searcher

    searcher = build_searcher(space, concurrency, exp_dir)[0]
    while not isinstance(searcher, ArmSearch):
        searcher = searcher.searcher
    return searcher


def shared_values(config: dict) -> tuple:
    return tuple(config[k] for k in SHARED)


def suggest_all(search: ArmSearch, prefix: str, count: int) -> list[dict]:
    return [search.suggest(f"{prefix}{i}") for i in range(count)]


def by_arm(configs: list[dict]) -> dict:
    """arm -> its trials' shared values, in the order the arm's trials were suggested."""
    out: dict = {}
    for c in configs:
        out.setdefault(c["arm"], []).append(shared_values(c))
    return out


def study_of(search: ArmSearch, arm: str):
    from tune_hardbatch.ray_backend import ray_private

    return ray_private.optuna_study(search.searchers[arm])


def test_every_arms_start_up_trials_take_the_designs_shared_values(tmp_path):
    """4 arms with different own dimensions, 3 start-up trials each (TPE): trial k < 3 of every arm has the
    design's point k for the shared dimensions; its own dimensions are its sampler's; trial 3 is TPE's."""
    from tune_hardbatch.search.space.design import shared_design

    space = design_space()
    search = built_arm_search(space, tmp_path)
    assert search.startup == {arm: 3 for arm in DESIGN_ARMS}
    per_arm = by_arm(suggest_all(search, "t", 16))
    design = [shared_values(p) for p in shared_design(space.arms[0].shared, 3, space.search.seed)]
    for arm, values in per_arm.items():
        assert values[:3] == design, arm
        assert values[3] not in design, arm  # after the start-up trials, the arm's TPE models
    for arm in DESIGN_ARMS:
        trials = study_of(search, arm).get_trials(deepcopy=False)
        assert [t.user_attrs.get("shared_design_point") for t in trials] == [0, 1, 2, None]
        assert [t.state.name for t in trials] == ["RUNNING"] * 4
    both = [t.params for t in study_of(search, "both").get_trials(deepcopy=False)]
    assert all("trim.schedule" in p and "hard_batch.delta" in p for p in both)


def test_with_the_random_searcher_every_trial_takes_the_design(tmp_path):
    from tune_hardbatch.search.space.design import shared_design

    space = design_space(searcher="random")
    search = built_arm_search(space, tmp_path)
    per_arm = by_arm(suggest_all(search, "t", 16))
    design = [shared_values(p) for p in shared_design(space.arms[0].shared, 4, space.search.seed)]
    assert all(values == design for values in per_arm.values())


def test_a_restored_search_neither_queues_a_point_twice_nor_skips_one(tmp_path):
    """The driver's last snapshot holds 1 trial per arm. After it, the killed driver had asked trial 1 of
    `plain` (its Optuna trial RUNNING in the journal: told FAIL on restore), queued point 2 of `plain` and point 1 of `trim`
    and died before asking them. Resumed from the snapshot, every arm's trials 1 and 2 (which Ray runs
    again) take points 1 and 2; the stale point 2 of `plain` is ended FAIL, `trim`'s point 1 is asked as it
    waits, and nothing is left waiting."""
    from optuna.trial import TrialState

    from tune_hardbatch.search.space.design import shared_design

    space = design_space()
    search = built_arm_search(space, tmp_path)
    before = by_arm(suggest_all(search, "t", 4))
    search.save(str(tmp_path / "searcher.pkl"))
    assert search.suggest("lost0")["arm"] == "plain"
    search._enqueue_design("plain", 2)
    search._enqueue_design("trim", 1)

    resumed = built_arm_search(space, tmp_path)  # what Tuner.restore unpickles, then the snapshot's state
    resumed.restore(str(tmp_path / "searcher.pkl"))
    after = by_arm(suggest_all(resumed, "u", 8))
    design = [shared_values(p) for p in shared_design(space.arms[0].shared, 3, space.search.seed)]
    for arm in DESIGN_ARMS:
        assert before[arm] + after[arm][:2] == design, arm
        study = study_of(resumed, arm)
        assert not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)), arm
        fails = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        # plain: its orphan (asked after the snapshot: RUNNING with no Ray trial) and its stale point 2
        assert [t.user_attrs["shared_design_point"] for t in fails] == ([1, 2] if arm == "plain" else []), arm
        points = [t.user_attrs.get("shared_design_point") for t in study.get_trials(deepcopy=False)
                  if t.state == TrialState.RUNNING]
        assert points == [0, 1, 2], arm  # each point once among the trials Ray runs; none left RUNNING by the lost


def test_a_point_left_waiting_by_a_suggest_that_gave_nothing_is_asked_next(tmp_path):
    space = design_space()
    search = built_arm_search(space, tmp_path)
    suggest_all(search, "t", 4)
    search._enqueue_design("plain", 1)  # queued, then the suggest gave nothing: the count stays 1
    search._enqueue_design("plain", 1)
    study = study_of(search, "plain")
    assert len(study.get_trials(deepcopy=False)) == 2  # queued once
    assert search.suggest("t4")["arm"] == "plain"
    assert [t.user_attrs.get("shared_design_point") for t in study.get_trials(deepcopy=False)] == [0, 1]
