"""`verdict`: per-arm t-intervals across seeds, differences paired by seed, helps/hurts/no difference."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.comparisons import build_verdict, to_json, to_markdown, word
from tune_hardbatch.verdict.stats import holm_adjusted, min_detectable


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
    assert "delta (delta=0.5) helps against plain at 4 epoch-equivalents with 4 paired seeds" in v["sentences"][0]
    md = to_markdown(v)
    assert md.startswith("## Verdict") and "| plain (baseline) | 4 |" in md


def test_overlapping_interval_is_no_detectable_difference_and_failed_runs_are_left_out():
    plain = runs({1: 90.0, 2: 91.0, 3: 89.0})
    trim = runs({1: 92.0, 2: 88.0, 3: 90.0}) + runs({4: 99.0}, status="failed")
    v = build_verdict({"plain": plain, "trim-linear": trim}, {"plain": "plain", "trim-linear": "trim"},
                      "confirmation", [1, 2, 3], 4.0)
    arm = v["arms"][1]
    assert arm["n"] == 3 and arm["failed"] == ["t4"] and arm["word"] == "no detectable difference"
    assert "makes no detectable difference" in v["sentences"][0]


def test_words_and_the_missing_baseline():
    assert word(-2.0, True) == "hurts" and word(2.0, True) == "helps" and word(-2.0, True, False) == "helps"
    assert word(2.0, False) == "no detectable difference" and word(float("nan"), True) == "no detectable difference"
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


def test_holm_over_every_worded_comparison_and_the_delta_1_comparison():
    plain = {1: 90.0, 2: 91.0, 3: 89.5, 4: 90.2}
    groups = {"plain": runs(plain), "delta=1": runs({1: 89.8, 2: 91.3, 3: 89.1, 4: 90.0}),
              "delta=0.5": runs({1: 91.0, 2: 91.9, 3: 90.3, 4: 91.3}), "trim-linear": runs({1: 90.6, 2: 91.5, 3: 89.6, 4: 90.9})}
    v = build_verdict(groups, FAM3, "confirmation", [1, 2, 3, 4], 4.0)
    by = {a["arm"]: a for a in v["arms"]}
    comps = [(a, c) for a in v["arms"] for c in a["diffs"]]
    assert v["baseline"] == "plain" and v["comparisons"] == 4 == len(comps)
    assert [c["baseline"] for c in by["delta=0.5"]["diffs"]] == ["plain", "delta=1"]
    assert [c["baseline"] for c in by["delta=1"]["diffs"]] == ["plain"]  # delta = 1 is judged against plain too
    for a, c in comps:
        other = groups[c["baseline"]]
        ref = stats.ttest_rel([r.final("test_top1") for r in groups[a["arm"]]], [r.final("test_top1") for r in other])
        assert c["p"] == pytest.approx(ref.pvalue)
    ps = [c["p"] for _, c in comps]
    assert [c["p_holm"] for _, c in comps] == pytest.approx(holm_adjusted(ps))
    trim = by["trim-linear"]["diffs"][0]
    assert trim["p"] < 0.05 < trim["p_holm"] and trim["decision"] == "no detectable difference"  # Holm, not raw
    assert by["delta=0.5"]["word"] == "helps" and by["delta=0.5"]["diffs"][1]["decision"] == "helps"
    delta_1 = next(s for s in v["sentences"] if "against delta=1" in s)
    assert delta_1.startswith("delta (delta=0.5) helps against delta=1 (the paper's own comparison)")
    assert all("Holm-corrected over 4 comparisons at 5% familywise" in s for s in v["sentences"])


def test_no_detectable_difference_states_its_minimum_detectable_difference_and_tost():
    plain, trim = {1: 90.0, 2: 91.0, 3: 89.0}, {1: 90.3, 2: 90.8, 3: 89.4}
    v = build_verdict({"plain": runs(plain), "trim-linear": runs(trim)}, {"plain": "plain", "trim-linear": "trim"},
                      "confirmation", [1, 2, 3], 4.0, margin=1.0)
    c = v["arms"][1]["diffs"][0]
    d = [trim[s] - plain[s] for s in plain]
    assert c["sd"] == pytest.approx(stats.tstd(d)) and c["alpha_mde"] == 0.05
    assert c["min_detectable"] == pytest.approx(min_detectable(3, stats.tstd(d), 0.05))
    crit = stats.t.ppf(0.975, 2)
    ncp = c["min_detectable"] * math.sqrt(3) / c["sd"]
    assert stats.nct.sf(crit, 2, ncp) + np.nan_to_num(stats.nct.cdf(-crit, 2, ncp)) == pytest.approx(0.8, abs=1e-6)
    lower = stats.ttest_1samp(d, -1.0, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, 1.0, alternative="less").pvalue
    assert c["tost_p"] == pytest.approx(max(lower, upper)) and c["tost_equivalent"] is True and c["margin"] == 1.0
    s = v["sentences"][0]
    assert f"it could have detected a difference of {c['min_detectable']:.2g} points or more (80% power" in s
    assert "equivalent within ±1 points (two one-sided tests at 5%" in s and "not shown" not in s


def test_arms_with_fewer_than_two_paired_seeds_are_not_judged_and_leave_the_holm_family():
    groups = {"plain": runs({1: 90.0, 2: 91.0, 3: 89.0}), "delta=0.5": runs({1: 92.0, 2: 93.0, 3: 91.5}),
              "trim-linear": runs({3: 95.0}), "delta=1": runs({7: 95.0, 8: 96.0})}
    v = build_verdict(groups, FAM3, "confirmation", [1, 2, 3], 4.0)
    by = {a["arm"]: a for a in v["arms"]}
    assert v["comparisons"] == 1  # delta=0.5 vs plain only: delta=1 shares no seed with plain or delta=0.5
    assert by["trim-linear"]["word"] == "not judged" and by["trim-linear"]["diffs"][0]["n"] == 1
    assert by["delta=1"]["diffs"][0]["n"] == 0 and by["delta=0.5"]["diffs"][1]["decision"] == "not judged"
    assert "trim (trim-linear) is not judged against plain (1 paired seed)." in v["sentences"]
    assert "delta=1 is not judged against plain (0 paired seeds)." in v["sentences"]
    assert by["delta=0.5"]["diffs"][0]["p_holm"] == pytest.approx(by["delta=0.5"]["diffs"][0]["p"])  # m = 1
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
    assert s["target"] == 90.0 and s["budget"] == 4.0 and s["values"] == {1: 2.0, 2: 3.0}
    assert s["mean"] == 2.5 and s["ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * stats.tstd([2.0, 3.0]) / math.sqrt(2))
    assert s["saving_pct"] == pytest.approx(37.5) and s["reached"] == 2 == s["n"]
    assert "it reaches the baseline's accuracy at 62% of its compute" in \
        next(x for x in v["sentences"] if x.startswith("delta (delta=0.5)"))
    t = by["trim-linear"]["savings"]
    assert t["values"] == {1: 4.0, 2: None} and t["reached"] == 1 and math.isnan(t["mean"]) and math.isnan(t["saving_pct"])
    assert "it does not reach the baseline's final accuracy in 1 of 2 seeds" in \
        next(x for x in v["sentences"] if x.startswith("trim"))
    md = to_markdown(v)
    assert "| not reached (1 of 2) |" in md and "| 2.50 ± 6.35 (62%) |" in md
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


def test_a_cheaper_arm_is_also_compared_with_its_budget_matched_baseline_in_the_same_holm_family():
    """sb spends 7.46 of plain's 10: its budget-matched run plain@7.46 (plain SGD for 7.46 compute-equivalents)
    is a reference row; sb's comparison with it is a third worded comparison, Holm-adjusted with the others."""
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
    assert v["comparisons"] == 3 == len(comps) and v["budget_matched"] == {"sb=0.5": "plain@7.46"}
    assert [c["name"] for c in by["sb=0.5"]["diffs"]] == ["sb=0.5 vs plain", "sb=0.5 vs plain at equal compute (7.46)"]
    at_equal = by["sb=0.5"]["diffs"][1]
    assert at_equal["baseline"] == "plain@7.46" and at_equal["compute_budget"] == 7.46
    d = [groups["sb=0.5"][i].final("test_top1") - groups["plain@7.46"][i].final("test_top1") for i in range(4)]
    assert at_equal["mean"] == pytest.approx(sum(d) / 4)
    assert at_equal["p"] == pytest.approx(stats.ttest_rel([r.final("test_top1") for r in groups["sb=0.5"]],
                                                          [r.final("test_top1") for r in groups["plain@7.46"]]).pvalue)
    assert [c["p_holm"] for c in comps] == pytest.approx(holm_adjusted([c["p"] for c in comps]))
    assert at_equal["alpha_mde"] == pytest.approx(0.05 / 3) and "decision" in at_equal
    assert by["sb=0.5"]["word"] == by["sb=0.5"]["diffs"][0]["decision"]  # the primary word: against plain
    assert len(by["delta=0.5-random"]["diffs"]) == 1  # a random control: against plain only, not delta = 1
    ref = by["plain@7.46"]
    assert ref["diffs"] == [] and ref["savings"] is None and not ref["is_baseline"]
    assert ref["convergence_change"]["n"] == 0
    sentence = next(s for s in v["sentences"] if "at equal compute" in s)
    assert sentence.startswith("sb (sb=0.5) ") and "against plain at equal compute (plain@7.46: plain SGD trained " \
        "for 7.46 compute-equivalents, its schedule fully decayed within them) with 4 paired seeds" in sentence
    assert "Holm-corrected over 3 comparisons" in sentence and "epoch-equivalents" not in sentence
    md = to_markdown(v)
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


def test_an_arm_is_also_compared_with_its_random_control_in_the_same_holm_family():
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
    comps = [c for a in v["arms"] for c in a["diffs"]]
    assert v["comparisons"] == 4 == len(comps)
    assert [c["p_holm"] for c in comps] == pytest.approx(holm_adjusted([c["p"] for c in comps]))
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
