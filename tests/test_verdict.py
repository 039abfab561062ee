"""`verdict`: per-arm t-intervals across seeds, differences paired by seed, helps/hurts/no difference."""

import math

import pytest
from scipy import stats

from tune_hardbatch.trials import Trial
from tune_hardbatch.verdict import build_verdict, family_of, to_markdown, word


def runs(values, status="finished", conv=None):
    return [Trial(f"t{s}", status, "confirmation", seed=s,
                  last={"test_top1": v, "convergence_epoch": (conv or {}).get(s, 5.0), "epoch_equiv": 4.0,
                        "samples_forward": 400, "samples_with_grad": 200, "time_train_s": 3.0, "time_eval_s": 1.0})
            for s, v in values.items()]


@pytest.mark.parametrize("label, family", [("plain", "plain"), ("delta=1", "delta=1"), ("delta=0.5", "delta"),
                                           ("delta=0.2+trim-linear", "delta+trim"), ("splits=A-O", "splits"),
                                           ("delta=1+trim-cosine+splits=0.5-1", "delta=1+trim+splits")])
def test_families(label, family):
    assert family_of(label) == family


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
