"""`confirmation`: which arms are confirmed (the best of each family by validation), with what config and seeds;
the confirmation trials' records and the verdict."""

import json
from dataclasses import replace
from types import SimpleNamespace

from search_helpers import BASE

from tune_hardbatch.search.space import validate_space
from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.comparisons import family_of, to_markdown
from tune_hardbatch.verdict.confirmation import (
    Plan,
    choose_arms,
    choose_matched,
    confirm_seeds,
    confirmed_trials,
    judge,
    load_plan,
    matched_dir,
    plan_arms,
    plan_matched,
    save_plan,
    tuning,
    verdict_on_disk,
)


def spec(**confirm):
    return validate_space({"base": BASE, "space": {"hard_batch.delta": {"choice": [None, 1.0, 0.5]},
                                                    "optim.lr": {"loguniform": [0.01, 0.3]}},
                           "confirm": confirm or {"seeds": 3}})


def row(trial_id, delta, strategy, status, val, ee=6.0):
    params = {"hard_batch.delta": delta, "optim.lr": 0.1}
    return Trial(trial_id, status, strategy=strategy, params=params, active=params,
                 last={"val_top1": val, "epoch_equiv": ee})


ROWS = [row("p1", None, "plain", "stopped_early", 80.0, ee=2.0), row("p2", None, "plain", "stopped_early", 70.0, ee=4.0),
        row("d1", 0.5, "delta=0.5", "finished", 90.0), row("d2", 0.5, "delta=0.5", "finished", 95.0),
        row("d3", 0.5, "delta=0.5", "stopped_early", 99.0, ee=2.0), row("f1", 1.0, "delta=1", "diverged", 10.0)]


def test_the_best_of_each_family_by_validation_baselines_first_on_the_full_training_set():
    arms, notes = choose_arms(spec(), ROWS)
    assert [(a["family"], a["trial_id"]) for a in arms] == [("plain", "p2"), ("delta", "d2")]
    # finished beats a higher value stopped early; among those stopped early, the one that went furthest
    assert all(a["config"]["data.val_fraction"] == 0.0 for a in arms)  # confirmed on the full training set
    assert arms[1]["config"]["hard_batch.delta"] == 0.5 and arms[1]["params"] == {"hard_batch.delta": 0.5,
                                                                                 "optim.lr": 0.1}
    assert any("delta=1" in n and "diverged or failed" in n for n in notes)
    assert any(n.startswith("the baseline plain is confirmed from a trial stopped early") for n in notes)


def test_max_arms_keeps_the_baselines_and_seeds_follow_the_search_seed():
    arms, notes = choose_arms(spec(seeds=2, max_arms=1), ROWS)
    assert [a["family"] for a in arms] == ["plain"] and any("not confirmed: delta" in n for n in notes)
    assert confirm_seeds(spec(seeds=2)) == [1, 2]  # never the search's own seed (0)


def test_confirmation_records_from_a_result_grid_and_their_verdict():
    arms = [{"arm": "plain", "family": "plain", "params": {"optim.lr": 0.1}},
            {"arm": "delta=0.5", "family": "delta", "params": {"hard_batch.delta": 0.5, "seed": 0}}]
    grid = [SimpleNamespace(path=f"/s/confirm/c_{i:05d}", config={"arm": arm, "seed": seed}, error=None,
                            metrics={"test_top1": 90.0 + arm + seed, "budget_done": 1}, metrics_dataframe=None)
            for i, (arm, seed) in enumerate((a, s) for a in (0, 1) for s in (1, 2))]
    confirmed = confirmed_trials(grid, {}, arms, gpu=0.5)
    assert [(t.arm, t.family, t.seed, t.status, t.phase) for t in confirmed[1:3]] == \
        [("plain", "plain", 2, "finished", "confirmation"), ("delta=0.5", "delta", 1, "finished", "confirmation")]
    verdict = judge(spec(), [], Plan(arms, [1, 2], ["a note"]), confirmed)
    base, delta = verdict["arms"]
    assert verdict["source"] == "confirmation" and verdict["notes"] == ["a note"] and base["is_baseline"]
    assert delta["test_top1"]["values"] == {1: 92.0, 2: 93.0} and delta["diffs"][0]["mean"] == 1.0
    assert delta["params"] == {"hard_batch.delta": 0.5}  # the arm's params, without the seed
    assert judge(spec(), [], None, []) is None  # no confirmation, not a seed grid


def test_a_seed_grid_is_its_own_confirmation():
    grid = validate_space({"base": BASE, "space": {"hard_batch.delta": {"grid": [None, 0.5]},
                                                    "seed": {"grid": [0, 1]}}, "search": {"searcher": "grid"}})
    trials = [Trial(f"t{d}{s}", "finished", strategy="plain" if d is None else "delta=0.5",
                    active={"hard_batch.delta": d, "seed": s}, last={"test_top1": 90.0 + s + (d or 0)})
              for d in (None, 0.5) for s in (0, 1)]
    verdict = judge(grid, trials, None, [])
    assert verdict["source"] == "grid" and verdict["seeds"] == [0, 1]
    assert [a["arm"] for a in verdict["arms"]] == ["plain", "delta=0.5"] and verdict["arms"][1]["n"] == 2


def lr_grid_trials():
    """A grid over delta (1.0, 0.8), optim.lr (0.1, 0.2) and seeds 0..2: at lr 0.1 delta=0.8 is clearly better
    than delta=1 at lr 0.1 but worse than delta=1 at lr 0.2 (the row that came last in the old code)."""
    top1 = {(1.0, 0.1): 80.0, (1.0, 0.2): 95.0, (0.8, 0.1): 85.0, (0.8, 0.2): 95.0}
    noise = {0: 0.0, 1: 0.3, 2: -0.2}
    return [Trial(f"t{d}-{lr}-{s}", "finished", strategy="delta=1" if d == 1.0 else "delta=0.8",
                  active={"hard_batch.delta": d, "optim.lr": lr, "seed": s},
                  last={"test_top1": top1[(d, lr)] + noise[s] * (1 + (d < 1)), "epoch_equiv": 4.0})
            for d in (1.0, 0.8) for lr in (0.1, 0.2) for s in (0, 1, 2)]


def test_a_grid_compares_each_arm_with_the_baseline_row_of_the_same_lr_whatever_the_trial_order():
    grid = validate_space({"base": BASE, "space": {"hard_batch.delta": {"grid": [1.0, 0.8]},
                                                    "optim.lr": {"grid": [0.1, 0.2]}, "seed": {"grid": [0, 1, 2]}},
                           "search": {"searcher": "grid"}})
    trials = lr_grid_trials()
    forward, backward = judge(grid, trials, None, []), judge(grid, trials[::-1], None, [])
    for verdict in (forward, backward):
        by_arm = {a["arm"]: a for a in verdict["arms"]}
        assert verdict["baseline"] == "delta=1 lr=0.1"  # the first baseline row in the space's order
        assert [d["baseline"] for d in by_arm["delta=0.8 lr=0.1"]["diffs"]] == ["delta=1 lr=0.1"]
        assert [d["baseline"] for d in by_arm["delta=0.8 lr=0.2"]["diffs"]] == ["delta=1 lr=0.2"]
        assert by_arm["delta=0.8 lr=0.1"]["diffs"][0]["mean"] > 4  # +5 at the same lr, not -10 against lr=0.2
        assert any("same optim.lr" in n for n in verdict["notes"])
    words = [{a["arm"]: (a["word"], [d["decision"] for d in a["diffs"]]) for a in v["arms"]} for v in (forward, backward)]
    assert words[0] == words[1] and forward["sentences"] == backward["sentences"]
    assert words[0]["delta=0.8 lr=0.1"][0] == "helps"


def test_confirmed_arms_carry_their_params_into_the_verdict():
    arms = [{"arm": "plain", "family": "plain", "params": {"hard_batch.delta": None, "optim.lr": 0.1}},
            {"arm": "delta=0.5", "family": "delta", "params": {"hard_batch.delta": 0.5, "optim.lr": 0.05}}]
    grid = [SimpleNamespace(path=f"/s/confirm/c_{i:05d}", config={"arm": arm, "seed": seed}, error=None,
                            metrics={"test_top1": 90.0 + arm + seed, "budget_done": 1}, metrics_dataframe=None)
            for i, (arm, seed) in enumerate((a, s) for a in (0, 1) for s in (1, 2))]
    confirmed = confirmed_trials(grid, {}, arms, gpu=0.0)
    assert all(t.active for t in confirmed)  # the confirmation trial's `active` is its arm's params
    by_arm = {a["arm"]: a for a in judge(spec(), [], Plan(arms, [1, 2], []), confirmed)["arms"]}
    assert by_arm["plain"]["params"] == {"hard_batch.delta": None, "optim.lr": 0.1}
    assert by_arm["delta=0.5"]["params"] == {"hard_batch.delta": 0.5, "optim.lr": 0.05}


def arms_spec(**confirm):
    return validate_space({"base": BASE, "space": {"optim.lr": {"loguniform": [0.01, 0.3]}},
                           "arms": {"plain": {}, "half": {"fixed": {"hard_batch.delta": 0.5}},
                                    "sel": {"space": {"hard_batch.delta": {"choice": [0.5, 0.2]}}}},
                           "search": {"trials_per_arm": 2}, "confirm": confirm or {"seeds": 2}})


def arm_row(trial_id, arm, delta, status, val):
    params = {"optim.lr": 0.1, **({"hard_batch.delta": delta} if delta else {})}
    strategy = f"delta={delta:g}" if delta else "plain"
    return Trial(trial_id, status, strategy=strategy, params={"arm": arm, **params}, active=params, arm=arm,
                 last={"val_top1": val, "epoch_equiv": 6.0})


def test_declared_arms_are_confirmed_per_arm_even_when_two_share_a_family():
    """Two declared arms of the delta family each get confirmed (a joint search would keep one), by their
    names; the tuning says each arm's trials and that they were tuned alike."""
    trials = [arm_row("p1", "plain", None, "finished", 80.0), arm_row("p2", "plain", None, "stopped_early", 85.0),
              arm_row("h1", "half", 0.5, "finished", 82.0), arm_row("h2", "half", 0.5, "finished", 84.0),
              arm_row("s1", "sel", 0.2, "finished", 83.0), arm_row("s2", "sel", 0.5, "diverged", 10.0)]
    s = arms_spec()
    arms, notes = choose_arms(s, trials)
    assert [(a["arm"], a["family"], a["strategy"], a["trial_id"]) for a in arms] == \
        [("plain", "plain", "plain", "p1"), ("half", "delta", "delta=0.5", "h2"), ("sel", "delta", "delta=0.2", "s1")]
    assert arms[2]["config"]["hard_batch.delta"] == 0.2 and not notes
    told = tuning(s, trials)
    assert told["mode"] == "arms" and told["trials"] == {"plain": 2, "half": 2, "sel": 2}
    assert told["finished"] == {"plain": 1, "half": 2, "sel": 1} and "per arm" in told["sampler"]
    joint = tuning(spec(), ROWS)
    assert joint["mode"] == "joint" and joint["trials"] == {"plain": 2, "delta": 3, "delta=1": 1}


def _confirmation(arms, statuses):
    """Confirmation trials of `arms` x seeds 1, 2 with the given status per (arm index, seed)."""
    grid = [SimpleNamespace(path=f"/s/confirm/c_{i:05d}", config={"arm": a, "seed": seed}, error=None,
                            metrics={"test_top1": 90.0 + a + seed, "budget_done": 1, "epoch_equiv": 6.0}
                            if statuses[i] == "TERMINATED" else {}, metrics_dataframe=None)
            for i, (a, seed) in enumerate((a, s) for a in range(len(arms)) for s in (1, 2))]
    return confirmed_trials(grid, {f"c_{i:05d}": st for i, st in enumerate(statuses)}, arms)


def test_an_interrupted_confirmation_gives_a_partial_verdict_that_says_so():
    arms = [{"arm": "plain", "family": "plain", "strategy": "plain", "params": {}},
            {"arm": "half", "family": "delta", "strategy": "delta=0.5", "params": {"hard_batch.delta": 0.5}}]
    plan = Plan(arms, [1, 2], [])
    done = judge(arms_spec(), [], plan, _confirmation(arms, ["TERMINATED"] * 4))
    assert done["partial"] is False and "partial" not in to_markdown(done)
    cut = judge(arms_spec(), [], plan, _confirmation(arms, ["TERMINATED", "TERMINATED", "TERMINATED", "PENDING"]))
    assert cut["partial"] is True and "partial" in to_markdown(cut) and all("partial" in s for s in cut["sentences"])
    assert cut["selected_on"] == "val_top1" and cut["arms"][1]["params"] == {"hard_batch.delta": 0.5}


# --- the budget-matched baseline (Kaddour et al. 2023): plain SGD for the compute of an arm that spends less ---

def _arm(label, family, params=None):
    params = params or {}
    return {"arm": label, "family": family, "strategy": label, "trial_id": f"s-{label}", "value": 90.0,
            "params": {"optim.lr": 0.1, **params}, "config": {"optim.lr": 0.1, "data.val_fraction": 0.0, **params}}


ARMS = [_arm("plain", "plain"), _arm("sb=0.5", "sb", {"selective_backprop.keep": 0.5}),
        _arm("delta=0.5", "delta", {"hard_batch.delta": 0.5}),
        _arm("infobatch=0.5", "infobatch", {"infobatch.prune_ratio": 0.5}),
        _arm("sb=0.3", "sb", {"selective_backprop.keep": 0.3})]


def runs_of(label, family, computes, top1=90.0, status="finished", i_arm=0):
    """Confirmation records of one arm, one per seed (1, 2, ...), with their final compute and test top-1."""
    return [Trial(f"{label}-{s}", status, "confirmation", strategy=label, arm=label, family=family, seed=s,
                  params={"arm": i_arm, "seed": s},
                  last={"compute_equiv": c, "epoch_equiv": 10.0, "test_top1": top1 + s} if c is not None else {})
            for s, c in enumerate(computes, start=1)]


def arm_runs(computes: dict, statuses=None) -> list[Trial]:
    return [t for i, a in enumerate(ARMS) if a["arm"] in computes
            for t in runs_of(a["arm"], a["family"], computes[a["arm"]],
                             status=(statuses or {}).get(a["arm"], "finished"), i_arm=i)]


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
    assert family_of(first["strategy"]) == "plain@budget"
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


def test_the_verdict_compares_the_cheaper_arm_at_equal_compute_and_is_partial_without_its_runs():
    plan = Plan(ARMS[:2], [1, 2], [])
    arms = arm_runs({"plain": [10.0, 10.0], "sb=0.5": [7.0, 7.0]})
    undecided = judge(spec(), [], plan, arms)  # the arms ended, the matched runs were never decided
    assert undecided["partial"] is True and all(len(a["diffs"]) <= 1 for a in undecided["arms"])
    plan = replace(plan, matched=choose_matched(plan, arms)[0])
    matched = runs_of("plain@7", "plain@budget", [7.0, 7.0], top1=89.0)
    verdict = judge(spec(), [], plan, arms + matched)
    by = {a["arm"]: a for a in verdict["arms"]}
    assert verdict["partial"] is False and verdict["budget_matched"] == {"sb=0.5": "plain@7"}
    assert [a["arm"] for a in verdict["arms"]] == ["plain", "plain@7", "sb=0.5"]
    c = by["sb=0.5"]["diffs"][1]
    assert c["name"] == "sb=0.5 vs plain at equal compute (7)" and c["baseline"] == "plain@7" and c["mean"] == 1.0
    assert verdict["comparisons"] == 2 and by["plain@7"]["diffs"] == [] and by["plain@7"]["savings"] is None
    assert by["plain@7"]["params"]["compute_budget"] == 7.0 and by["plain@7"]["word"] == "budget-matched baseline"
    cut = judge(spec(), [], plan, arms + matched[:1])
    assert cut["partial"] is True


def _write_runs(root, runs, arms_labels):
    for t in runs:
        d = root / t.trial_id
        d.mkdir(parents=True)
        (d / "params.json").write_text(json.dumps({"arm": arms_labels.index(t.arm), "seed": t.seed}))
        (d / "result.json").write_text(json.dumps(t.last) + "\n")


def test_the_report_finds_the_budget_matched_runs_on_disk(tmp_path):
    """`tune-hardbatch report` judges again from disk: the arms in confirm/, the matched runs in
    budget_matched/confirm/, their statuses in confirm_results.csv: the same verdict as at the end."""
    plan = Plan(ARMS[:2], [1, 2], [])
    arms = arm_runs({"plain": [10.0, 10.0], "sb=0.5": [7.0, 7.0]})
    plan = replace(plan, matched=choose_matched(plan, arms)[0])
    matched = [replace(t, params={"arm": 0, "seed": t.seed})
               for t in runs_of("plain@7", "plain@budget", [7.0, 7.0], top1=89.0)]
    save_plan(tmp_path, plan)
    _write_runs(tmp_path / "confirm", arms, ["plain", "sb=0.5"])
    _write_runs(matched_dir(tmp_path), matched, ["plain@7"])
    (tmp_path / "confirm_results.csv").write_text("trial_id,status\n" + "".join(
        f"{t.trial_id},finished\n" for t in arms + matched))
    on_disk = verdict_on_disk(spec(), tmp_path, [])
    at_end = judge(spec(), [], plan, arms + matched)
    assert on_disk["sentences"] == at_end["sentences"] and on_disk["partial"] is False
    assert [c["name"] for a in on_disk["arms"] for c in a["diffs"]] == ["sb=0.5 vs plain",
                                                                        "sb=0.5 vs plain at equal compute (7)"]
