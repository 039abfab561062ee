"""`budget`: the budget-matched baseline (Kaddour et al. 2023): plain SGD for the compute of an arm that
spends less, decided once the arms' runs ended and saved for `--resume`."""

import json
from dataclasses import replace

from confirm_helpers import ARMS, arm_runs, spec

from tune_hardbatch.verdict.budget import choose_matched, plan_matched
from tune_hardbatch.verdict.confirm_plan import Plan, load_plan, plan_arms, save_plan

CHEAPER = {"plain": [10.0, 10.0], "sb=0.5": [7.45, 7.47], "delta=0.5": [9.95, 9.95], "infobatch=0.5": [7.0, 7.0],
           "sb=0.3": [7.464, 7.456]}


def test_each_arm_that_spends_less_gets_plain_sgd_for_its_compute_rounded_and_shared():
    """sb=0.5 (7.46) and sb=0.3 (7.46 too) share one run, infobatch gets plain@7; delta=0.5 is within the 1%
    tolerance: none. Each is the baseline's confirmed config with compute_budget set."""
    matched, notes = choose_matched(Plan(ARMS, [1, 2], []), arm_runs(CHEAPER))
    assert [(m["arm"], m["family"], m["compute_budget"], m["for"]) for m in matched] == \
        [("plain@7.46", "plain@budget", 7.46, ["sb=0.5", "sb=0.3"]),
         ("plain@7", "plain@budget", 7.0, ["infobatch=0.5"])]
    first = matched[0]
    assert first["config"] == {**ARMS[0]["config"], "compute_budget": 7.46} and first["trial_id"] == "s-plain"
    assert first["params"] == {"optim.lr": 0.1, "compute_budget": 7.46} and first["baseline"] == "plain"
    assert any(n.startswith("budget-matched baseline plain@7.46: plain's configuration trained for 7.46 "
                            "compute-equivalents") for n in notes)


def test_no_run_when_no_arm_spends_less_or_no_plain_arm_or_the_baseline_never_finished():
    equal = {"plain": [10.0, 10.0], "delta=0.5": [10.0, 9.95]}
    assert choose_matched(Plan([ARMS[0], ARMS[2]], [1, 2], []), arm_runs(equal)) == ([], [])
    no_plain = Plan(ARMS[1:3], [1, 2], [])
    matched, notes = choose_matched(no_plain, arm_runs({"sb=0.5": [7.0, 7.0], "delta=0.5": [10.0, 10.0]}))
    assert matched == [] and notes == ["no budget-matched baseline for sb=0.5 (less compute): no plain SGD arm "
                                       "was confirmed"]
    failed = arm_runs({"plain": [None, None], "sb=0.5": [7.0, 7.0]}, statuses={"plain": "failed"})
    assert choose_matched(Plan(ARMS[:2], [1, 2], []), failed)[0] == []  # no compute of plain to compare with


def test_the_matched_plan_is_decided_once_the_arms_ended_saved_and_reloaded_for_resume(tmp_path):
    plan = Plan(ARMS[:2], [1, 2], ["a note"])
    save_plan(tmp_path, plan)
    cut = arm_runs({"plain": [10.0, 10.0], "sb=0.5": [7.0, None]})
    cut[-1] = replace(cut[-1], status="unfinished")
    assert plan_matched(tmp_path, plan, cut).matched is None  # an arm x seed still to run: undecided
    assert "matched" not in json.loads((tmp_path / "confirm_arms.json").read_text())
    done = arm_runs({"plain": [10.0, 10.0], "sb=0.5": [7.0, 7.0]})
    decided = plan_matched(tmp_path, plan, done)
    assert [m["arm"] for m in decided.matched] == ["plain@7"] and decided.notes[0] == "a note"
    again = load_plan(tmp_path)  # what --resume reads: the same runs, whatever the arms would say now
    assert again == decided and plan_arms(spec(), tmp_path, []) == decided
    assert plan_matched(tmp_path, again, arm_runs({"plain": [10.0, 10.0], "sb=0.5": [5.0, 5.0]})) == decided
    alone = tmp_path / "alone"
    alone.mkdir()
    none = plan_matched(alone, Plan(ARMS[:1], [1, 2], []), arm_runs({"plain": [10.0, 10.0]}))
    assert none.matched == [] and load_plan(alone).matched == []  # decided: nothing to match
