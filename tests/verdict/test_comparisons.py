"""`verdict`: per-arm t-intervals across seeds, differences paired by seed, the primary family's words (helps,
hurts, equivalent, unresolved), secondary comparisons as estimates."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.comparisons import build_verdict, to_json, to_markdown
from tune_hardbatch.verdict.stats import holm, min_detectable


def runs(values, status="finished", conv=None):
    return [Trial(f"t{s}", status, "confirmation", seed=s,
                  last={"test_top1": v, "convergence_epoch": (conv or {}).get(s, 5.0), "epoch_equiv": 4.0,
                        "samples_forward": 400, "samples_with_grad": 200, "time_train_s": 3.0, "time_eval_s": 1.0})
            for s, v in values.items()]


def test_paired_difference_and_interval_equal_scipy():
    plain = {1: 90.0, 2: 91.5, 3: 89.0, 4: 90.5}
    delta = {1: 91.0, 2: 92.0, 3: 90.5, 4: 91.2}
    v = build_verdict({"plain": runs(plain), "delta=0.5": runs(delta, conv={1: 3, 2: 4, 3: 3, 4: 4})},
                      {"plain": "plain", "delta=0.5": "delta"}, "confirmation", [1, 2, 3, 4], 4.0, gpu=0.5)
    base, arm = v["arms"]
    assert base["is_baseline"] and base["word"] == "baseline" and v["baseline"] == "plain"
    d = [delta[s] - plain[s] for s in plain]
    half = stats.t.ppf(0.975, 3) * stats.tstd(d) / math.sqrt(4)
    assert arm["diffs"][0]["mean"] == pytest.approx(sum(d) / 4)
    assert arm["diffs"][0]["ci95"] == pytest.approx(half)
    assert arm["test_top1"]["mean"] == pytest.approx(sum(delta.values()) / 4)
    assert arm["convergence_change"]["mean"] == pytest.approx(3.5 - 5.0)
    assert arm["compute"]["gpu_seconds"] == pytest.approx(4.0 * 0.5)
    assert arm["word"] == "helps"  # every paired difference is positive and the interval excludes 0
    c = arm["diffs"][0]  # 2 arms x 4 seeds: the pooled term has no more df than the pairs' own (3)
    assert c["error"] == "own" and c["decided_df"] == 3 and (c["low"], c["high"]) == pytest.approx(
        (c["mean"] - half, c["mean"] + half))
    assert (f"delta (delta=0.5) against plain at 4 epoch-equivalents helps: {c['mean']:+.2f} points of test top-1 "
            f"(95% CI [{c['low']:+.2f}, {c['high']:+.2f}]; own paired sd, 3 df; 4 paired seeds)") in v["sentences"][0]
    md = to_markdown(v)
    assert md.startswith("## Verdict") and "| plain (baseline) | 4 |" in md


def test_overlapping_interval_is_no_detectable_difference_and_failed_runs_are_left_out():
    plain = runs({1: 90.0, 2: 91.0, 3: 89.0})
    trim = runs({1: 92.0, 2: 88.0, 3: 90.0}) + runs({4: 99.0}, status="failed")
    v = build_verdict({"plain": plain, "trim-linear": trim}, {"plain": "plain", "trim-linear": "trim"},
                      "confirmation", [1, 2, 3], 4.0)
    arm = v["arms"][1]
    assert arm["n"] == 3 and arm["failed"] == ["t4"] and arm["word"] == "unresolved"
    c = arm["diffs"][0]
    assert c["low"] < 0 < c["high"] and c["min_detectable"] == pytest.approx(min_detectable(3, c["sd"], 0.05))
    assert f"is not shown to differ: {c['mean']:+.2f} points" in v["sentences"][0]
    assert f"could detect {c['min_detectable']:.1f} or more" in v["sentences"][0]
    for banned in ("no detectable difference", "as good as", "indistinguishable", "none beats"):
        assert banned not in to_markdown(v)


def test_words_and_the_missing_baseline():
    v = build_verdict({"delta=0.5": runs({1: 90.0, 2: 91.0})}, {"delta=0.5": "delta"}, "grid", [1, 2], 4.0)
    assert v["baseline"] is None and v["sentences"][0].startswith("No baseline arm")


def test_delta_1_is_a_second_baseline_when_present():
    groups = {"plain": runs({1: 90.0, 2: 91.0}), "delta=1": runs({1: 89.0, 2: 90.5}),
              "delta=0.5": runs({1: 90.0, 2: 90.0})}
    v = build_verdict(groups, {"plain": "plain", "delta=1": "delta=1", "delta=0.5": "delta"}, "grid", [1, 2], 4.0)
    assert v["baselines"] == ["plain", "delta=1"]
    arm = next(a for a in v["arms"] if a["arm"] == "delta=0.5")
    assert [d["baseline"] for d in arm["diffs"]] == ["plain", "delta=1"]
    assert arm["diffs"][1]["mean"] == pytest.approx(((90 - 89) + (90 - 90.5)) / 2)


def curve_runs(finals, xs=(1.0, 2.0, 3.0, 4.0), key="epoch_equiv", start=50.0, converged=None, reach=None):
    """Runs whose test top-1 climbs linearly from `start` to `finals[seed]` over the reports at `xs`; with
    `reach` {seed: i}: the curve jumps to its final value at report i."""
    out = []
    for s, v in finals.items():
        ys = [start + (v - start) * (i + 1) / len(xs) for i in range(len(xs))]
        if reach and s in reach:
            ys = [start] * reach[s] + [v] * (len(xs) - reach[s])
        hist = [{key: x, "test_top1": y} for x, y in zip(xs, ys)]
        hist[-1].update({"convergence_epoch": 2.0 + s, "converged": (converged or {}).get(s, 1)})
        out.append(Trial(f"t{s}", "finished", "confirmation", seed=s, last=hist[-1], history=hist))
    return out


FAM3 = {"plain": "plain", "delta=1": "delta=1", "delta=0.5": "delta", "trim-linear": "trim"}


def test_a_fixed_design_is_holm_over_the_primary_family_with_the_pooled_error_term():
    """One look over every seed: the primary family (every arm against plain; delta = 1 too) decided as Holm
    would decide the t-tests on the pooled residual of the arms x seeds table; delta=0.5 against delta = 1
    (the paper's own comparison) is secondary: an estimate with a 95% interval, no words."""
    plain = {1: 90.0, 2: 91.0, 3: 89.5, 4: 90.2}
    groups = {"plain": runs(plain), "delta=1": runs({1: 89.8, 2: 91.3, 3: 89.1, 4: 90.0}),
              "delta=0.5": runs({1: 91.0, 2: 91.9, 3: 90.3, 4: 91.3}), "trim-linear": runs({1: 90.6, 2: 91.5, 3: 89.6, 4: 90.9})}
    v = build_verdict(groups, FAM3, "confirmation", [1, 2, 3, 4], 4.0)
    by = {a["arm"]: a for a in v["arms"]}
    primary = [c for a in v["arms"] for c in a["diffs"] if c["primary"]]
    assert v["comparisons"] == 3 == len(primary)
    assert [c["baseline"] for c in by["delta=0.5"]["diffs"]] == ["plain", "delta=1"]
    paper = by["delta=0.5"]["diffs"][1]
    assert not paper["primary"] and paper["decision"] == "exploratory" and paper["level"] == 0.95
    table = np.array([[groups[a][i].final("test_top1") for i in range(4)] for a in FAM3])
    resid = table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True) + table.mean()
    sd_pair, df = math.sqrt(2 * (resid ** 2).sum() / 9), 9
    ps = []
    for c in primary:
        assert c["error"] == "pooled" and c["decided_df"] == df
        assert c["decided_se"] == pytest.approx(sd_pair / 2)
        ps.append(2 * stats.t.sf(abs(c["mean"]) / (sd_pair / 2), df))
    assert [c["decision"] in ("helps", "hurts") for c in primary] == holm(ps)
    assert "vs plain: helps" in " ".join(f"{c['name']}: {c['decision']}" for c in primary)
    assert all("Holm over 3 primary comparisons at 5% familywise" in s for s in v["sentences"])
    assert len(v["sentences"]) == 3 and "delta=0.5 vs delta=1: " + f"{paper['mean']:+.2f}" in to_markdown(v)


def test_equivalence_rests_on_its_90_percent_interval_and_unresolved_says_what_it_could_detect():
    plain, trim = {1: 90.0, 2: 91.0, 3: 89.0}, {1: 90.3, 2: 90.8, 3: 89.4}
    v = build_verdict({"plain": runs(plain), "trim-linear": runs(trim)}, {"plain": "plain", "trim-linear": "trim"},
                      "confirmation", [1, 2, 3], 4.0, margin=1.0)
    c = v["arms"][1]["diffs"][0]
    d = [trim[s] - plain[s] for s in plain]
    half = stats.t.ppf(0.95, 2) * stats.tstd(d) / math.sqrt(3)  # two one-sided tests at 5%: the 90% interval
    assert c["decision"] == "equivalent" and c["level"] == pytest.approx(0.90)
    assert (c["low"], c["high"]) == pytest.approx((np.mean(d) - half, np.mean(d) + half))
    lower = stats.ttest_1samp(d, -1.0, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, 1.0, alternative="less").pvalue
    assert max(lower, upper) < 0.05  # TOST agrees
    assert "is equivalent within ±1 points" in v["sentences"][0] and "decided on its 90% CI [" in v["sentences"][0]
    wide = build_verdict({"plain": runs(plain), "trim-linear": runs({1: 92.3, 2: 88.8, 3: 90.4})},
                         {"plain": "plain", "trim-linear": "trim"}, "confirmation", [1, 2, 3], 4.0, margin=1.0)
    u = wide["arms"][1]["diffs"][0]
    assert u["decision"] == "unresolved" and u["level"] == 0.95
    assert u["min_detectable"] == pytest.approx(min_detectable(3, u["sd"], 0.05))
    assert "is not shown to differ, nor shown equivalent within ±1" in wide["sentences"][0]


def test_arms_with_fewer_than_two_paired_seeds_are_not_judged_and_leave_the_holm_family():
    groups = {"plain": runs({1: 90.0, 2: 91.0, 3: 89.0}), "delta=0.5": runs({1: 92.0, 2: 93.0, 3: 91.5}),
              "trim-linear": runs({3: 95.0}), "delta=1": runs({7: 95.0, 8: 96.0})}
    v = build_verdict(groups, FAM3, "confirmation", [1, 2, 3], 4.0)
    by = {a["arm"]: a for a in v["arms"]}
    assert v["comparisons"] == 3  # the primary family: each arm against plain
    assert by["trim-linear"]["word"] == "not judged" and by["trim-linear"]["diffs"][0]["n"] == 1
    assert by["delta=1"]["diffs"][0]["n"] == 0 and by["delta=1"]["word"] == "not judged"
    assert "trim (trim-linear) is not judged against plain (1 paired seed)." in v["sentences"]
    assert "delta=1 is not judged against plain (0 paired seeds)." in v["sentences"]
    assert by["delta=0.5"]["diffs"][0]["alpha"] == pytest.approx(0.05)  # the only one tested: the whole alpha
    assert "| not judged (1 paired seed) |" in to_markdown(v)


def test_a_partial_verdict_says_so_everywhere():
    v = build_verdict({"plain": runs({1: 90.0, 2: 91.0}), "delta=0.5": runs({1: 91.0, 2: 91.5})},
                      {"plain": "plain", "delta=0.5": "delta"}, "confirmation", [1, 2, 3], 4.0, partial=True)
    assert v["partial"] is True and json.loads(to_json(v))["partial"] is True
    assert all(s.endswith("(partial: from the seeds that finished).") for s in v["sentences"])
    assert to_markdown(v).startswith("## Verdict (partial: from the seeds that finished)")
    assert build_verdict({"plain": runs({1: 90.0})}, {"plain": "plain"}, "grid", [1], 4.0)["partial"] is False


def test_params_come_from_the_runs_active_params_or_the_given_arm_params():
    plain = [replace(r, active={"hard_batch.delta": None, "optim.lr": 0.1, "seed": r.seed}) for r in runs({1: 90.0, 2: 91.0})]
    failed_first = [Trial("f", "failed", "confirmation", seed=3)] + \
        [replace(r, active={"hard_batch.delta": 0.5, "stepwise.fractions": "[0.5, 1.0]"}) for r in runs({1: 92.0})]
    v = build_verdict({"plain": plain, "delta=0.5": failed_first}, {"plain": "plain", "delta=0.5": "delta"},
                      "confirmation", [1, 2], 4.0)
    by = {a["arm"]: a for a in v["arms"]}
    assert by["plain"]["params"] == {"hard_batch.delta": None, "optim.lr": 0.1}
    assert by["delta=0.5"]["params"] == {"hard_batch.delta": 0.5, "stepwise.fractions": [0.5, 1.0]}
    given = build_verdict({"plain": runs({1: 90.0})}, {"plain": "plain"}, "confirmation", [1], 4.0,
                          arm_params={"plain": {"optim.lr": 0.2, "seed": 0}})
    assert given["arms"][0]["params"] == {"optim.lr": 0.2}


def test_convergence_is_censored_and_its_change_is_over_pairs_that_both_converged():
    base = curve_runs({1: 90.0, 2: 91.0, 3: 89.0})
    arm = curve_runs({1: 91.0, 2: 91.0, 3: 90.0}, converged={2: 0})
    v = build_verdict({"plain": base, "delta=0.5": arm}, {"plain": "plain", "delta=0.5": "delta"}, "confirmation",
                      [1, 2, 3], 4.0)
    a = v["arms"][1]
    conv = a["convergence_epoch"]
    assert conv["converged"] == 2 and conv["n"] == 3 and conv["values"][2] is None  # never its last epoch
    assert conv["mean"] == pytest.approx((3.0 + 5.0) / 2)
    assert a["convergence_change"]["n"] == 2 and a["convergence_change"]["seeds"] == [1, 3]
    assert a["convergence_change"]["mean"] == pytest.approx(0.0)
    assert "not converged in 1 of 3 runs" in v["sentences"][0]
    md = to_markdown(v)
    assert "| not conv. (1 of 3) | +0.00 ± 0.00 (2 pairs) |" in md and "| 4.00 ± " in md  # the baseline's epoch


def test_savings_the_compute_to_reach_the_baselines_accuracy_and_censoring():
    base = curve_runs({1: 90.0, 2: 90.0}, xs=(1.0, 2.0, 3.0, 4.0), key="compute_equiv")
    fast = curve_runs({1: 92.0, 2: 92.0}, xs=(1.0, 2.0, 3.0, 4.0), key="compute_equiv", reach={1: 1, 2: 2})
    slow = curve_runs({1: 95.0, 2: 88.0}, xs=(1.0, 2.0, 3.0, 4.0), key="compute_equiv", reach={1: 3})
    groups = {"plain": base, "delta=0.5": fast, "trim-linear": slow}
    v = build_verdict(groups, FAM3, "confirmation", [1, 2], 4.0)
    by = {a["arm"]: a for a in v["arms"]}
    s = by["delta=0.5"]["savings"]
    assert s["values"] == {1: 0.5, 2: 0.75}  # the compute to reach that seed's baseline run, over its compute
    assert s["mean"] == 0.625 and s["ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * stats.tstd([0.5, 0.75]) / math.sqrt(2))
    assert s["saving_pct"] == pytest.approx(37.5) and s["reached"] == 2 == s["n"]
    assert "it reaches the baseline's accuracy at 62% of its compute" in \
        next(x for x in v["sentences"] if x.startswith("delta (delta=0.5)"))
    t = by["trim-linear"]["savings"]
    assert t["values"] == {1: 1.0, 2: None} and t["reached"] == 1 and math.isnan(t["mean"]) and math.isnan(t["saving_pct"])
    assert "it does not reach the baseline's final accuracy in 1 of 2 seeds" in \
        next(x for x in v["sentences"] if x.startswith("trim"))
    md = to_markdown(v)
    assert "| not reached (1 of 2) |" in md and "| 62% ± 159% |" in md
    slow_base = curve_runs({1: 90.0, 2: 96.0}, xs=(1.0, 2.0, 3.0, 4.0), key="compute_equiv")  # seed 2 is higher
    alone = build_verdict({"plain": slow_base, "plain-again": curve_runs({1: 90.0, 2: 96.0}, key="compute_equiv")},
                          {"plain": "plain", "plain-again": "delta"}, "confirmation", [1, 2], 4.0)
    assert alone["arms"][1]["savings"]["reached"] == 2  # the same runs reach their own seed's baseline
    assert by["plain"]["savings"] is None and "curves" not in by["plain"]
    assert json.loads(to_json(v))["arms"][1]["savings"]["values"]  # JSON-safe


def test_selection_tuning_and_the_one_baseline():
    groups = {"plain": runs({1: 90.0, 2: 91.0}), "delta=1": runs({1: 89.0, 2: 90.5}), "delta=0.5": runs({1: 91.0, 2: 91.6})}
    tuning = {"mode": "joint", "sampler": "optuna TPE", "trials": {"plain": 4, "delta=1": 2, "delta": 14},
              "finished": {"plain": 4, "delta=1": 1, "delta": 9}}
    v = build_verdict(groups, FAM3, "confirmation", [1, 2], 4.0, selected_on="val_loss", tuning=tuning)
    md = to_markdown(v)
    by = {a["arm"]: a for a in v["arms"]}
    assert by["delta=0.5"]["search_trials"] == 14 and by["delta=0.5"]["search_finished"] == 9
    assert "Arms chosen by val_loss on validation data" in md
    assert "Search trials per arm (optuna TPE): plain 4 (4 trained their whole budget)" in md
    assert "delta=0.5 14 (9 trained their whole budget)" in md and "tuned unequally" in md
    assert "| arm | seeds | trials | test top-1 % | vs plain (paired) | vs delta=1 (paired) |" in md
    assert md.count("(baseline)") == 1 and "The baseline is plain" in md and v["tuning"] == tuning
    grid = build_verdict(groups, FAM3, "grid", [1, 2], 4.0)
    assert "nothing selected" in to_markdown(grid) and "Search trials" not in to_markdown(grid)
    assert "| trials |" not in to_markdown(grid)
    alone = build_verdict({"delta=1": runs({1: 89.0, 2: 90.5}), "delta=0.5": runs({1: 91.0, 2: 91.6})}, FAM3,
                          "confirmation", [1, 2], 4.0)
    assert alone["baseline"] == "delta=1" and [c["baseline"] for c in alone["arms"][1]["diffs"]] == ["delta=1"]
    assert "chosen by the search metric (not recorded)" in to_markdown(alone)


def test_baseline_of_picks_the_compared_row():
    groups = {"plain a": runs({1: 80.0, 2: 81.0}), "plain b": runs({1: 90.0, 2: 91.0}),
              "delta=0.5 b": runs({1: 91.0, 2: 92.5})}
    fams = {"plain a": "plain", "plain b": "plain", "delta=0.5 b": "delta"}
    v = build_verdict(groups, fams, "grid", [1, 2], 4.0, baseline_of={"delta=0.5 b": {"plain": "plain b"}})
    arm = next(a for a in v["arms"] if a["arm"] == "delta=0.5 b")
    assert v["baseline"] == "plain a" and arm["diffs"][0]["baseline"] == "plain b"
    assert arm["diffs"][0]["mean"] == pytest.approx(1.25)
    assert [a["is_baseline"] for a in v["arms"]].count(True) == 2  # both plain rows are baselines, not judged


def compute_runs(values, compute):
    return [replace(r, last={**r.last, "compute_equiv": compute}) for r in runs(values)]


def test_a_cheaper_arm_is_also_compared_with_its_budget_matched_baseline_as_a_secondary_comparison():
    """sb spends 7.46 of plain's 10: its budget-matched run plain@7.46 (plain SGD for 7.46 compute-equivalents)
    is a reference row; sb's comparison with it is an estimate with its interval (secondary), unless
    confirm.primary names it."""
    plain = {1: 90.0, 2: 91.0, 3: 89.5, 4: 90.2}
    groups = {"plain": compute_runs(plain, 10.0),
              "plain@7.46": compute_runs({1: 89.0, 2: 90.1, 3: 88.4, 4: 89.0}, 7.46),
              "sb=0.5": compute_runs({1: 90.1, 2: 91.0, 3: 89.6, 4: 90.2}, 7.46),
              "delta=0.5-random": compute_runs({1: 90.6, 2: 91.5, 3: 89.6, 4: 90.9}, 10.0)}
    fams = {"plain": "plain", "plain@7.46": "plain@budget", "sb=0.5": "sb", "delta=0.5-random": "delta-random"}
    v = build_verdict(groups, fams, "confirmation", [1, 2, 3, 4], 10.0,
                      arm_params={"plain@7.46": {"compute_budget": 7.46}}, matched={"sb=0.5": "plain@7.46"})
    by = {a["arm"]: a for a in v["arms"]}
    comps = [c for a in v["arms"] for c in a["diffs"]]
    assert [a["arm"] for a in v["arms"]][:2] == ["plain", "plain@7.46"]  # the reference right after the baseline
    assert len(comps) == 3 and v["comparisons"] == 1 and v["budget_matched"] == {"sb=0.5": "plain@7.46"}
    assert [c["name"] for c in by["sb=0.5"]["diffs"]] == ["sb=0.5 vs plain", "sb=0.5 vs plain at equal compute (7.46)"]
    at_equal = by["sb=0.5"]["diffs"][1]
    assert at_equal["baseline"] == "plain@7.46" and at_equal["compute_budget"] == 7.46
    d = [groups["sb=0.5"][i].final("test_top1") - groups["plain@7.46"][i].final("test_top1") for i in range(4)]
    assert at_equal["mean"] == pytest.approx(sum(d) / 4)
    assert at_equal["p"] == pytest.approx(stats.ttest_rel([r.final("test_top1") for r in groups["sb=0.5"]],
                                                          [r.final("test_top1") for r in groups["plain@7.46"]]).pvalue)
    assert at_equal["decision"] == "exploratory" and not at_equal["primary"]
    assert by["sb=0.5"]["word"] == by["sb=0.5"]["diffs"][0]["decision"]  # the primary word: against plain
    assert len(by["delta=0.5-random"]["diffs"]) == 1  # a random control: against plain only, not delta = 1
    ref = by["plain@7.46"]
    assert ref["diffs"] == [] and ref["savings"] is None and not ref["is_baseline"]
    assert ref["convergence_change"]["n"] == 0
    assert not any("at equal compute" in s for s in v["sentences"])
    md = to_markdown(v)
    assert f"sb=0.5 vs plain at equal compute (7.46): {at_equal['mean']:+.2f} points (95% CI" in md
    chosen = build_verdict(groups, fams, "confirmation", [1, 2, 3, 4], 10.0, arm_params={"plain@7.46": {"compute_budget": 7.46}},
                           matched={"sb=0.5": "plain@7.46"}, primary=["sb=0.5 vs plain at equal compute (7.46)"])
    sentence = next(s for s in chosen["sentences"] if "at equal compute" in s)
    assert sentence.startswith("sb (sb=0.5) against plain at equal compute (plain@7.46: plain SGD trained for 7.46 "
                               "compute-equivalents, its schedule fully decayed within them) ")
    assert chosen["comparisons"] == 1 and "Holm over 1 primary comparison" in sentence
    assert "| vs plain (paired) | vs plain at equal compute (paired) |" in md
    assert "| plain@7.46 (budget-matched) | 4 |" in md
    assert "budget-matched baseline" in md
    written = {a["arm"]: a for a in json.loads(to_json(v))["arms"]}
    assert written["sb=0.5"]["diffs"][1]["name"] == "sb=0.5 vs plain at equal compute (7.46)"


def test_without_a_matched_run_nothing_changes_and_its_absence_is_not_judged():
    groups = {"plain": compute_runs({1: 90.0, 2: 91.0}, 10.0), "sb=0.5": compute_runs({1: 90.5, 2: 91.2}, 7.0)}
    fams = {"plain": "plain", "sb=0.5": "sb"}
    plain = build_verdict(groups, fams, "confirmation", [1, 2], 10.0)
    assert plain["budget_matched"] == {} and plain["comparisons"] == 1 and "equal compute" not in to_markdown(plain)
    missing = build_verdict(groups, fams, "confirmation", [1, 2], 10.0, matched={"sb=0.5": "plain@7"})
    assert missing["comparisons"] == 1 and len(missing["arms"][1]["diffs"]) == 1  # its runs never came: no row


def test_an_arm_is_also_compared_with_its_random_control_in_the_primary_family():
    """delta<1 against delta<1-random (as many batches, drawn at random): the effect of hardness itself; the
    control is compared with plain only, and an arm without a confirmed control gets no such comparison."""
    groups = {"plain": runs({1: 90.0, 2: 91.0, 3: 89.5}), "delta<1": runs({1: 91.0, 2: 92.1, 3: 90.4}),
              "delta<1-random": runs({1: 90.2, 2: 91.1, 3: 89.9}), "trim": runs({1: 90.1, 2: 91.0, 3: 89.6})}
    fams = {"plain": "plain", "delta<1": "delta", "delta<1-random": "delta-random", "trim": "trim"}
    v = build_verdict(groups, fams, "confirmation", [1, 2, 3], 10.0)
    by = {a["arm"]: a for a in v["arms"]}
    control = by["delta<1"]["diffs"][-1]
    assert [c["baseline"] for c in by["delta<1"]["diffs"]] == ["plain", "delta<1-random"]
    assert control["baseline_family"] == "random control"
    assert control["mean"] == pytest.approx(((91.0 - 90.2) + (92.1 - 91.1) + (90.4 - 89.9)) / 3)
    assert [c["baseline"] for c in by["delta<1-random"]["diffs"]] == ["plain"]
    assert [c["baseline"] for c in by["trim"]["diffs"]] == ["plain"]  # no trim-random confirmed
    primary = {c["name"] for a in v["arms"] for c in a["diffs"] if c["primary"]}
    assert primary == {"delta<1 vs plain", "delta<1 vs delta<1-random", "trim vs plain"} == set(
        list(primary)) and v["comparisons"] == 3
    assert by["delta<1-random"]["diffs"][0]["decision"] == "exploratory"  # a control against plain: secondary
    md = to_markdown(v)
    assert "vs random control (paired)" in md and "against its random control delta<1-random" in md


def test_each_arms_gain_of_one_more_trial_stands_beside_the_resolution_of_its_comparison():
    """The search's tuning curves' last steps (`tuning.gains`) go into each arm (`tuning_gain`) with the
    minimum detectable difference of its comparison with the baseline; the baseline's: the coarsest of those
    with it; in the printed and Markdown context lines, and in verdict.json."""
    groups = {"plain": runs({1: 90.0, 2: 91.0, 3: 89.0}), "delta=0.5": runs({1: 91.0, 2: 91.6, 3: 90.1}),
              "trim-linear": runs({1: 90.2, 2: 92.0, 3: 88.5})}
    gain = {"trials": 6, "budget": 2.0, "full": False, "gain": 0.3, "gain_low": 0.0, "gain_high": 0.9}
    tuning = {"mode": "arms", "sampler": "Optuna TPE", "trials": {"plain": 6, "delta": 6, "trim": 6},
              "finished": {"plain": 2, "delta": 2, "trim": 2}, "metric": "val_top1",
              "gains": {"plain": {**gain, "full": True, "budget": 4.0}, "delta": gain}}
    v = build_verdict(groups, FAM3, "confirmation", [1, 2, 3], 4.0, tuning=tuning)
    by = {a["arm"]: a for a in v["arms"]}
    delta, trim = by["delta=0.5"], by["trim-linear"]
    assert delta["tuning_gain"]["resolution"] == pytest.approx(delta["diffs"][0]["min_detectable"])
    assert delta["tuning_gain"]["against"] == "plain" and trim["tuning_gain"] is None  # no curve: nothing said
    assert by["plain"]["tuning_gain"]["resolution"] == pytest.approx(
        max(delta["diffs"][0]["min_detectable"], trim["diffs"][0]["min_detectable"]))
    md = to_markdown(v)
    mde = delta["diffs"][0]["min_detectable"]
    assert (f"One more trial of delta=0.5 would gain about 0.3 points of val_top1 (95% bootstrap band 0-0.9; the last "
            f"step of its tuning curve over 6 trials at 2 epoch-equivalents); its comparison with plain resolves "
            f"{mde:.1f} points of test top-1.") in md
    assert "One more trial of plain would gain about 0.3 points of val_top1 (95% bootstrap band 0-0.9; the last step " \
        "of its tuning curve over 6 trials at the full budget); the coarsest comparison with it resolves" in md
    assert json.loads(to_json(v))["arms"][1]["tuning_gain"]["gain"] == 0.3


def test_confirm_primary_chooses_the_family_and_may_name_any_pair_of_confirmed_arms():
    groups = {"plain": runs({1: 90.0, 2: 91.0, 3: 89.5}), "delta=0.5": runs({1: 91.0, 2: 92.1, 3: 90.4}),
              "trim-linear": runs({1: 90.1, 2: 91.0, 3: 89.6})}
    v = build_verdict(groups, FAM3, "confirmation", [1, 2, 3], 4.0,
                      primary=["trim-linear vs delta=0.5", "trim-linear vs nope"])
    comps = {c["name"]: c for a in v["arms"] for c in a["diffs"]}
    assert v["comparisons"] == 1 and comps["trim-linear vs delta=0.5"]["primary"]
    assert comps["trim-linear vs delta=0.5"]["baseline_family"] == "chosen"
    assert comps["delta=0.5 vs plain"]["decision"] == "exploratory"
    assert len(v["sentences"]) == 1 and v["sentences"][0].startswith("trim (trim-linear) against delta=0.5")
    assert any("'trim-linear vs nope'" in n for n in v["notes"])
