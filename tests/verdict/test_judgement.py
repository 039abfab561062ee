"""`judgement`: the confirmation trials' records and the verdict (from the confirmation, its budget-matched
runs included, from a seed grid's own trials, or judged again from disk)."""

import json
from dataclasses import replace
from types import SimpleNamespace

from confirm_helpers import ARMS, arm_runs, arms_spec, runs_of, spec
from search_helpers import BASE

from tune_hardbatch.search.space import validate_space
from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.budget import choose_matched, matched_dir
from tune_hardbatch.verdict.comparisons import to_markdown
from tune_hardbatch.verdict.confirm_plan import Plan, save_plan
from tune_hardbatch.verdict.judgement import confirmed_trials, judge, verdict_on_disk


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
                    family="plain" if d is None else "delta",
                    active={"hard_batch.delta": d, "seed": s}, last={"test_top1": 90.0 + s + (d or 0)})
              for d in (None, 0.5) for s in (0, 1)]
    verdict = judge(grid, trials, None, [])
    assert verdict["source"] == "grid" and verdict["seeds"] == [0, 1]
    assert [a["arm"] for a in verdict["arms"]] == ["plain", "delta=0.5"] and verdict["arms"][1]["n"] == 2


def lr_grid_trials():
    """A grid over delta (1.0, 0.8), optim.lr (0.1, 0.2) and seeds 0..2: at lr 0.1 delta=0.8 is clearly better
    than delta=1 at lr 0.1 but worse than delta=1 at lr 0.2 (the row that comes last in trial order)."""
    top1 = {(1.0, 0.1): 80.0, (1.0, 0.2): 95.0, (0.8, 0.1): 85.0, (0.8, 0.2): 95.0}
    noise = {0: 0.0, 1: 0.3, 2: -0.2}
    return [Trial(f"t{d}-{lr}-{s}", "finished", strategy="delta=1" if d == 1.0 else "delta=0.8",
                  family="delta=1" if d == 1.0 else "delta",
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
    assert verdict["comparisons"] == 1 and c["decision"] == "exploratory" and by["plain@7"]["diffs"] == [] and by["plain@7"]["savings"] is None
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


def test_report_on_a_running_confirmation_counts_the_runs_that_reported_their_whole_budget(tmp_path):
    """Before confirm_results.csv exists (the phase runs, or its driver was killed), a run whose last report
    has its whole budget is finished, one that diverged is diverged, and the others are unfinished: the
    verdict on disk judges what ended, marked partial."""
    plan = Plan(ARMS[:2], [1, 2, 3], [])
    arms = arm_runs({"plain": [10.0, 10.0, 10.0], "sb=0.5": [10.0, 10.0, 10.0]})
    ended = [replace(t, last={**t.last, "budget_done": 1}) for t in arms if t.seed < 3]
    diverged = [replace(t, last={**t.last, "diverged": 1, "budget_done": 0}) for t in arms if t.seed == 3
                and t.arm == "sb=0.5"]
    running = [replace(t, last={**t.last, "budget_done": 0}) for t in arms if t.seed == 3 and t.arm == "plain"]
    save_plan(tmp_path, plan)
    _write_runs(tmp_path / "confirm", ended + diverged + running, ["plain", "sb=0.5"])
    v = verdict_on_disk(spec(), tmp_path, [])
    by = {a["arm"]: a for a in v["arms"]}
    assert by["plain"]["n"] == 2 and by["sb=0.5"]["n"] == 3  # a diverged run counts, a running one does not
    assert v["partial"] is True and by["sb=0.5"]["diffs"][0]["n"] == 2
