"""`confirm_plan`: which arms are confirmed (the best of each family by validation), with what config and
seeds, and how the search tuned them."""

import pytest
from confirm_helpers import arms_spec, spec

from tune_hardbatch.errors import UserError
from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.confirm_plan import arms_ended, choose_arms, confirm_seeds, load_plan, plan_arms, tuning


def row(trial_id, delta, strategy, status, val, ee=6.0, history=()):
    """A search trial; `history`: its earlier reports (epoch-equivalents, val_top1) before the last one."""
    params = {"hard_batch.delta": delta, "optim.lr": 0.1}
    family = "plain" if delta is None else "delta=1" if delta == 1.0 else "delta"
    last = {"val_top1": val, "epoch_equiv": ee, "budget_done": int(status == "finished")}
    reports = [{"val_top1": v, "epoch_equiv": e, "budget_done": 0} for e, v in history] + [last]
    return Trial(trial_id, status, strategy=strategy, family=family, params=params, active=params,
                 last=last, history=reports)


# plain: none finished, so both at 2 epoch-equivalents, the highest budget both reached: p2 (82 there) beats
# p1 (80), whatever p2's later value; delta: the finished ones by their final values (d2), never d3 stopped
# at a rung with a higher early value
ROWS = [row("p1", None, "plain", "stopped_early", 80.0, ee=2.0),
        row("p2", None, "plain", "stopped_early", 70.0, ee=4.0, history=[(2.0, 82.0)]),
        row("d1", 0.5, "delta=0.5", "finished", 90.0), row("d2", 0.5, "delta=0.5", "finished", 95.0),
        row("d3", 0.5, "delta=0.5", "stopped_early", 99.0, ee=2.0), row("f1", 1.0, "delta=1", "diverged", 10.0)]


def test_the_best_of_each_family_by_validation_baselines_first_on_the_full_training_set():
    arms, notes = choose_arms(spec(), ROWS)
    assert [(a["family"], a["trial_id"]) for a in arms] == [("plain", "p2"), ("delta", "d2")]
    # the value and budget it was chosen at: the common budget when none finished, else the full one
    assert [(a["value"], a["budget"], a["full"], a["compared"]) for a in arms] == [(82.0, 2.0, False, 2),
                                                                                   (95.0, 6.0, True, 2)]
    assert all(a["config"]["data.val_fraction"] == 0.0 for a in arms)  # confirmed on the full training set
    assert arms[1]["config"]["hard_batch.delta"] == 0.5 and arms[1]["params"] == {"hard_batch.delta": 0.5,
                                                                                 "optim.lr": 0.1}
    assert any("delta=1" in n and "diverged or failed" in n for n in notes)
    assert any("plain (trial p2, val_top1 82 at 2 epoch-equivalents)" in n for n in notes)
    assert any(n.startswith("the baseline plain is confirmed from a trial stopped early") for n in notes)


def test_max_arms_keeps_the_baselines_and_seeds_follow_the_search_seed():
    arms, notes = choose_arms(spec(seeds=2, max_arms=1), ROWS)
    assert [a["family"] for a in arms] == ["plain"] and any("not confirmed: delta" in n for n in notes)
    assert confirm_seeds(spec(seeds=2)) == [1, 2]  # never the search's own seed (0)


def arm_row(trial_id, arm, delta, status, val):
    params = {"optim.lr": 0.1, **({"hard_batch.delta": delta} if delta else {})}
    strategy = f"delta={delta:g}" if delta else "plain"
    family = "delta" if delta else "plain"
    return Trial(trial_id, status, strategy=strategy, family=family, params={"arm": arm, **params}, active=params,
                 arm=arm,
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
    assert "synchronous successive halving" in told["sampler"]
    # each arm's expected gain of one more trial: its tuning curve's last step over its values at one budget
    assert told["metric"] == "val_top1" and told["gains"]["half"]["gain"] == pytest.approx((84.0 - 82.0) / 2)
    assert told["gains"]["plain"]["gain"] == pytest.approx((85.0 - 80.0) / 2) and not told["gains"]["plain"]["full"]
    assert told["gains"]["half"]["full"] and told["gains"]["sel"]["trials"] == 1  # the diverged one: no value
    joint = tuning(spec(), ROWS)
    assert joint["mode"] == "joint" and joint["trials"] == {"plain": 2, "delta": 3, "delta=1": 1}


def test_the_plan_is_chosen_once_saved_and_reloaded_for_resume(tmp_path):
    """`plan_arms` chooses and saves the arms when the phase first starts; later (`--resume`) it returns those,
    whatever the trials say now; an unreadable `confirm_arms.json` is a user error."""
    plan = plan_arms(spec(), tmp_path, ROWS)
    assert [a["trial_id"] for a in plan.arms] == ["p2", "d2"] and plan.seeds == [1, 2, 3] and plan.matched is None
    assert load_plan(tmp_path) == plan and plan_arms(spec(), tmp_path, []) == plan
    assert not arms_ended(plan, [])
    (tmp_path / "confirm_arms.json").write_text("{")
    with pytest.raises(UserError):
        load_plan(tmp_path)
    assert load_plan(tmp_path / "never") is None
