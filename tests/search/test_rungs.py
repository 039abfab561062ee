"""Synchronous successive halving's policy (`search.rungs`): rung placement, who enters and who goes on,
independent of the order in which trials arrive. Pure: no Ray."""

from __future__ import annotations

import itertools
import random

import pytest

from tune_hardbatch.search.rungs import CONTINUE, STOP, WAIT, Ladder, entrants, first_useful, keep, milestones
from tune_hardbatch.search.space import load_space
from tune_hardbatch.training.config import build_config


def test_milestones_grow_by_eta_and_stay_below_the_budget():
    assert milestones(2.5, 2, 10) == (2.5, 5.0)
    assert milestones(1, 3, 10) == (1, 3, 9)
    assert milestones(10, 2, 10) == ()


def test_entrants_stop_where_a_rung_would_compare_fewer_than_eta():
    assert entrants(6, 2, 5) == [6, 3]  # 6 -> 3 -> 1: a rung of 1 compares nothing
    assert entrants(9, 3, 5) == [9, 3]
    assert entrants(2, 3, 5) == []  # fewer trials than eta: never early-stopped
    assert keep(5, 2) == 2 and keep(2, 2) == 1


def test_no_rung_before_a_step_wise_plans_last_stage_or_while_the_rate_is_above_half_its_peak():
    from tune_hardbatch.search.rungs import high_rate_share

    assert high_rate_share("onecycle", 0.25) == pytest.approx(0.625)  # warm-up 0.25, then linear to 0
    assert high_rate_share("onecycle", 0.5) == pytest.approx(0.75)
    assert high_rate_share("cosine", 0.25) == pytest.approx(0.5) and high_rate_share("step", 0.25) == 0.5
    assert high_rate_share("none", 0.25) == 0.0  # a constant rate: any report is at the end's rate
    plain = build_config(None, {"epochs": 8, "optim.schedule": "onecycle", "optim.warmup": 0.25})
    assert first_useful(plain) == pytest.approx(5.0)
    assert first_useful(build_config(None, {"epochs": 8, "optim.schedule": "cosine"})) == pytest.approx(4.0)
    staged = build_config(None, {"epochs": 8, "optim.schedule": "onecycle", "stepwise.fractions": [0.5, 1.0]})
    assert first_useful(staged) > 5.0  # its last stage starts later, and restarts its schedule
    spec = load_space(None, ["search.grace_period=0.5"])  # the default: A-O, one-cycle
    assert spec.rungs[0] >= max(first_useful(cfg) for _, cfg in spec.corners) > 0.5
    assert any("moved to" in n for n in spec.notes)
    assert load_space(None, ["search.scheduler=fifo"]).rungs == ()


def _run(ladder: Ladder, values: dict, order: list, rungs: int) -> tuple[dict, list]:
    """Drive `ladder` like Ray does: trials start in `order`, run one at a time to their next rung; a
    waiting trial resumes once its rung decided. Returns each trial's fate and the survivors per rung."""
    fates, queue = {}, list(order)
    waiting: list = []
    while queue:
        tid = queue.pop(0)
        fate = CONTINUE
        for k, m in enumerate(ladder.milestones):
            if tid in ladder.values[k]:
                continue
            fate, decided = ladder.arrive(tid, m + 0.1, values[tid][k])
            for _, survivors, losers in decided:
                for t in survivors:
                    if t in waiting:
                        waiting.remove(t)
                        queue.append(t)
                for t in losers:
                    if t in waiting:
                        waiting.remove(t)
                        fates[t] = STOP
            if fate != CONTINUE:
                break
        if fate == WAIT:
            waiting.append(tid)
        elif fate == STOP:
            fates[tid] = STOP
        else:
            fates[tid] = "finished"
            ladder.end(tid)
    assert not waiting
    return fates, [sorted(s) for s in ladder.survivors]


def test_the_first_started_trial_is_stopped_when_it_is_the_worst_and_start_order_changes_nothing():
    rng = random.Random(0)
    values = {f"t{i}": [rng.uniform(50, 90) + 10 * i for _ in range(2)] for i in range(6)}
    values["t0"] = [1.0, 1.0]  # the worst at every rung, and started first
    results = set()
    for order in (sorted(values), sorted(values, reverse=True), ["t3", "t0", "t5", "t1", "t4", "t2"]):
        ladder = Ladder(6, (2.0, 4.0), 2, "max")
        fates, survivors = _run(ladder, values, order, 2)
        assert fates["t0"] == STOP
        results.add((tuple(sorted(fates.items())), tuple(map(tuple, survivors))))
    assert len(results) == 1  # the same survivors whatever the start order
    assert survivors == [["t3", "t4", "t5"], ["t5"]]


@pytest.mark.parametrize("seed", range(20))
def test_no_trial_survives_a_rung_at_which_it_was_the_worst(seed):
    rng = random.Random(seed)
    n, eta = rng.choice([(4, 2), (6, 2), (9, 3), (8, 2)])
    values = {f"t{i}": [rng.gauss(70, 10) for _ in range(3)] for i in range(n)}
    ladder = Ladder(n, (1.0, 2.0, 4.0), eta, "max")
    order = list(values)
    rng.shuffle(order)
    _run(ladder, values, order, 3)
    for k, survivors in enumerate(ladder.survivors):
        if survivors is None:
            continue
        entered = ladder.values[k]
        worst = min(entered, key=entered.get)
        assert worst not in survivors and len(survivors) == keep(len(entered), eta)
        assert min(entered[t] for t in survivors) >= max(v for t, v in entered.items() if t not in survivors)


def test_a_trial_that_ends_without_a_value_enters_as_the_worst_and_does_not_hold_the_rung():
    ladder = Ladder(3, (2.0,), 2, "max")
    assert ladder.arrive("a", 2.1, 80.0)[0] == WAIT
    assert ladder.arrive("b", 2.1, 70.0)[0] == WAIT
    decided = ladder.end("c")  # diverged before the rung
    assert decided == [(0, ["a"], ["b", "c"])]
    assert ladder.fate("a", 2.1) == CONTINUE and ladder.fate("b", 2.1) == STOP


def test_a_group_smaller_than_eta_climbs_no_rung():
    ladder = Ladder(2, (2.0, 4.0), 3, "max")
    assert ladder.milestones == ()
    assert ladder.arrive("a", 5.0, 10.0)[0] == CONTINUE


def test_forced_settle_decides_with_the_entrants_in_when_no_other_can_come():
    ladder = Ladder(4, (2.0,), 2, "min")  # a loss: lower is better
    ladder.arrive("a", 2.1, 0.5)
    ladder.arrive("b", 2.1, 0.3)
    ladder.arrive("c", 2.1, 0.9)
    assert ladder.settle() == []  # the fourth has not come
    assert ladder.settle(force=True) == [(0, ["b"], ["a", "c"])]


def test_a_ladder_saved_and_loaded_goes_on_the_same():
    values = {t: [v, v] for t, v in zip("abcd", (10.0, 40.0, 30.0, 20.0))}
    whole = Ladder(4, (1.0, 2.0), 2, "max")
    _run(whole, values, list("abcd"), 2)
    for cut in range(1, 4):  # a driver killed after `cut` trials reached rung 0, then resumed from the file
        ladder = Ladder(4, (1.0, 2.0), 2, "max")
        for t in "abcd"[:cut]:
            ladder.arrive(t, 1.1, values[t][0])
        ladder = Ladder.from_dict(ladder.to_dict())
        for t in "abcd"[:cut]:
            assert ladder.fate(t, 1.1) == WAIT
        _run(ladder, values, list("abcd"), 2)
        assert ladder.survivors == whole.survivors == [["b", "c"], ["b"]]


def test_reports_repeated_after_a_retry_are_not_recorded_twice():
    ladder = Ladder(2, (1.0,), 2, "max")
    ladder.arrive("a", 1.2, 50.0)
    assert ladder.arrive("a", 1.2, 99.0)[0] == WAIT  # the retried run's repeat of the rung's report
    assert ladder.values[0]["a"] == 50.0
    ladder.arrive("b", 1.2, 60.0)
    assert ladder.fate("a", 1.2) == STOP and ladder.fate("b", 5.0) == CONTINUE


def test_every_start_order_of_a_small_group_gives_the_same_survivors():
    values = {t: [v, v + 1] for t, v in zip("abcd", (3.0, 1.0, 4.0, 2.0))}
    seen = set()
    for order in itertools.permutations("abcd"):
        ladder = Ladder(4, (1.0, 2.0), 2, "max")
        _run(ladder, values, list(order), 2)
        seen.add(tuple(map(tuple, ladder.survivors)))
    assert seen == {(("c", "a"), ("c",))}  # survivors best first


def test_a_trial_the_resumed_driver_never_saw_leaves_its_rungs_to_its_replacement():
    ladder = Ladder(3, (1.0,), 2, "max")
    ladder.add("ghost")  # suggested, then the driver was killed before Ray's snapshot held it
    ladder.arrive("a", 1.1, 50.0)
    assert ladder.forget("ghost") == [] and "ghost" not in ladder.members
    ladder.arrive("lost", 1.1, 70.0)
    ladder.arrive("b", 1.1, 60.0)
    assert ladder.survivors[0] == ["lost"]  # decided with a trial Ray no longer has
    assert ladder.forget("lost") == [] and ladder.survivors[0] is None  # its replacement will enter
    assert ladder.fate("b", 1.1) == WAIT
    assert ladder.arrive("new", 1.1, 55.0) == (STOP, [(0, ["b"], ["new", "a"])])
    assert ladder.fate("b", 1.1) == CONTINUE and "lost" not in ladder.members

def test_without_a_grace_period_the_first_rung_is_where_values_start_to_predict_the_end():
    from tune_hardbatch.search.rungs import first_rung

    assert first_rung(None, 2.25) == 2.25 and first_rung(None, 0.0) == 1.0  # at least 1 epoch-equivalent
    assert first_rung(3, 2.25) == 3 and first_rung(2, 2.25) == 2.25
    short = load_space(None, ["base.epochs=2"])  # the default shortened: its rungs shrink with it
    assert short.search.grace_period is None and 0 < short.rungs[0] < short.budget
