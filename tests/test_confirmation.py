"""`confirmation`: which arms are confirmed (the best of each family by validation), with what config and seeds;
the confirmation trials' records and the verdict."""

from types import SimpleNamespace

from search_helpers import BASE

from tune_hardbatch.confirmation import Plan, choose_arms, confirm_seeds, confirmed_trials, judge, tuning
from tune_hardbatch.space import validate_space
from tune_hardbatch.trials import Trial
from tune_hardbatch.verdict import to_markdown


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
