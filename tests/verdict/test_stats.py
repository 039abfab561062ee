"""`stats`: Holm, the paired t-test, its minimum detectable difference, TOST, the tuning curve, first reach;
each checked against numbers computed another way (a textbook, brute force, simulation, scipy directly)."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from tune_hardbatch.verdict.stats import (
    expected_max,
    expected_max_band,
    first_reach,
    holm,
    holm_adjusted,
    min_detectable,
    paired_t,
    t_power,
    tost,
)


def test_holm_on_the_textbook_example():
    # Holm's step-down on p = .01, .04, .03, .005, m = 4, worked by hand from Holm (1979): sorted .005 .01 .03 .04
    # times 4 3 2 1 = .02 .03 .06 .04, running maximum .02 .03 .06 .06 (statsmodels' multipletests(method="holm")
    # gives the same adjusted values)
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm_adjusted(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(p, 0.05) == [True, False, False, True]
    assert holm(p, 0.06) == [True, True, True, True]
    assert holm([]) == [] and holm_adjusted([float("nan"), 0.01]) == pytest.approx([1.0, 0.02])  # NaN: p = 1


def brute_holm(p, alpha):
    """Holm's procedure as stated: reject sorted H_(1..k) for the largest k with p_(j) <= alpha / (m - j + 1)
    for every j <= k."""
    m, order = len(p), sorted(range(len(p)), key=lambda i: p[i])
    out = [False] * m
    for j, i in enumerate(order):
        if p[i] > alpha / (m - j):
            break
        out[i] = True
    return out


def test_holm_agrees_with_the_procedure_as_stated_on_random_pvalues():
    rng = np.random.default_rng(1)
    for _ in range(200):
        p = list(rng.uniform(0, 0.1, size=rng.integers(1, 7)))
        assert holm(p, 0.05) == brute_holm(p, 0.05)


def test_paired_t_equals_scipy_and_is_nan_safe():
    d = [1.0, 0.5, 0.7, 1.5, float("nan"), None]
    out = paired_t(d)
    ref = stats.ttest_1samp([1.0, 0.5, 0.7, 1.5], 0.0)
    assert out["n"] == 4 and out["p"] == pytest.approx(ref.pvalue)
    assert out["sd"] == pytest.approx(stats.tstd([1.0, 0.5, 0.7, 1.5]))
    assert out["ci95"] == pytest.approx(stats.t.ppf(0.975, 3) * out["sd"] / 2)
    one = paired_t([2.0])
    assert one["n"] == 1 and one["mean"] == 2.0 and all(math.isnan(one[k]) for k in ("p", "sd", "ci95"))
    assert paired_t([])["n"] == 0 and math.isnan(paired_t([])["mean"])
    assert paired_t([1.0, 1.0])["p"] == 0.0 and paired_t([0.0, 0.0])["p"] == 1.0  # sd = 0


@pytest.mark.parametrize("n, sd, alpha", [(3, 1.0, 0.05), (5, 2.0, 0.0125), (10, 0.7, 0.05), (2, 1.0, 0.05)])
def test_min_detectable_has_the_asked_power_under_the_noncentral_t(n, sd, alpha):
    mde = min_detectable(n, sd, alpha)
    # direct evaluation: power of the two-sided test at the returned difference
    crit = stats.t.ppf(1 - alpha / 2, n - 1)
    ncp = mde * math.sqrt(n) / sd
    lower = np.nan_to_num(stats.nct.cdf(-crit, n - 1, ncp))  # scipy: NaN for a vanishing far tail
    assert stats.nct.sf(crit, n - 1, ncp) + lower == pytest.approx(0.8, abs=1e-6)
    assert t_power(ncp, n, alpha) == pytest.approx(0.8, abs=1e-6)
    # the normal approximation (z_{1-a/2} + z_{0.8}) sd / sqrt(n) ignores the t's heavier tails: a lower bound
    assert mde > (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8)) * sd / math.sqrt(n)


def test_min_detectable_by_simulation_and_its_edges():
    n, sd = 6, 1.5
    mde = min_detectable(n, sd)
    rng = np.random.default_rng(12345)
    samples = rng.normal(mde, sd, size=(40000, n))
    rejected = stats.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05
    assert rejected.mean() == pytest.approx(0.8, abs=0.01)  # Monte Carlo SE ~ 0.002
    big = min_detectable(2000, 1.0)
    assert big == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / math.sqrt(2000), rel=2e-3)
    assert math.isnan(min_detectable(1, 1.0)) and math.isnan(min_detectable(5, float("nan")))
    assert min_detectable(5, 0.0) == 0.0


def test_tost_equals_two_one_sided_scipy_tests():
    d = [0.2, -0.1, 0.3, 0.05, 0.15]
    out = tost(d, margin=0.5)
    lower = stats.ttest_1samp(d, -0.5, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, 0.5, alternative="less").pvalue
    assert out["p"] == pytest.approx(max(lower, upper)) and out["equivalent"] is True
    wide = tost([2.0, -1.0, 3.0], margin=0.5)
    assert wide["p"] == pytest.approx(max(stats.ttest_1samp([2.0, -1.0, 3.0], -0.5, alternative="greater").pvalue,
                                          stats.ttest_1samp([2.0, -1.0, 3.0], 0.5, alternative="less").pvalue))
    assert wide["equivalent"] is False
    assert math.isnan(tost([0.1], 0.5)["p"]) and tost([0.1], 0.5)["equivalent"] is False
    assert tost([0.1, 0.1], 0.5)["equivalent"] and not tost([0.9, 0.9], 0.5)["equivalent"]  # sd = 0


def brute_expected_max(values, n, pick=max):
    subsets = list(itertools.combinations(values, n))
    return sum(pick(s) for s in subsets) / len(subsets)


def test_expected_max_against_every_subset():
    v = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    curve = expected_max(v + [float("nan")])
    assert curve == pytest.approx([brute_expected_max(v, n) for n in range(1, 7)])
    assert curve[0] == pytest.approx(sum(v) / 6) and curve[-1] == 9.0
    assert all(a <= b for a, b in zip(curve, curve[1:]))
    low = expected_max(v, mode="min")
    assert low == pytest.approx([brute_expected_max(v, n, min) for n in range(1, 7)]) and low[-1] == 1.0
    assert expected_max([]) == [] and expected_max([5.0]) == [5.0]


def test_expected_max_stays_finite_for_many_trials():
    v = list(np.random.default_rng(0).normal(size=500))
    curve = expected_max(v)
    assert len(curve) == 500 and curve[-1] == pytest.approx(max(v)) and curve[0] == pytest.approx(np.mean(v))


def test_expected_max_band_a_seeded_bootstrap_and_the_gain_of_one_more_trial():
    v = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6]
    band = expected_max_band(v)
    assert band["mean"] == pytest.approx(expected_max(v))
    assert all(lo - 1e-9 <= m <= hi + 1e-9 for lo, m, hi in zip(band["low"], band["mean"], band["high"]))
    assert band["gain"] == pytest.approx(band["mean"][-1] - band["mean"][-2]) and band["gain"] == pytest.approx(5 / 6)
    assert 0.0 <= band["gain_low"] <= band["gain"] <= band["gain_high"]
    # the band is the percentile interval of the curves of resamples drawn with replacement (numpy, seed 0)
    draws = np.random.default_rng(0).choice(np.array(v), size=(2000, 6))
    brute = np.quantile([expected_max(d) for d in draws], [0.025, 0.975], axis=0)
    assert band["low"] == pytest.approx(list(brute[0])) and band["high"] == pytest.approx(list(brute[1]))
    assert expected_max_band(v) == band  # seeded
    low = expected_max_band(v, mode="min")
    assert low["mean"] == pytest.approx(expected_max(v, "min")) and low["gain"] == pytest.approx((1.5 - 1.0) / 6)
    assert all(lo <= m + 1e-9 and m <= hi + 1e-9 for lo, m, hi in zip(low["low"], low["mean"], low["high"]))
    flat = expected_max_band([2.0, 2.0, 2.0])
    assert flat["low"] == flat["high"] == [2.0] * 3 and flat["gain"] == 0.0
    assert math.isnan(expected_max_band([1.0])["gain"]) and expected_max_band([])["mean"] == []


def test_first_reach_and_censoring():
    curve = [(1.0, 50.0), (2.0, float("nan")), (3.0, 80.0), (4.0, 79.0), (5.0, 90.0)]
    assert first_reach(curve, 80.0) == 3.0 and first_reach(curve, 85.0) == 5.0
    assert first_reach(curve, 95.0) is None and first_reach([], 1.0) is None
