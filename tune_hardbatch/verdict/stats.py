"""Pure statistics for the verdict and the tuning curves: Holm's step-down procedure (`holm`,
`holm_adjusted`), the paired t-test (`paired_t`), its minimum detectable difference at a given power
(`min_detectable`, exact through the noncentral t), two one-sided tests for equivalence (`tost`), the
expected best of n trials (`expected_max`, the tuning curve: the without-replacement estimator; its
bootstrap band and the expected gain of one more trial, `expected_max_band`) and the first compute at which
a learning curve reaches a level (`first_reach`). numpy and scipy only: no Ray, MLflow or torch.

Non-finite inputs are left out (a failed seed's None or NaN) unless a function says otherwise.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from scipy import optimize
from scipy import stats as sps
from scipy.special import gammaln

NAN = float("nan")


def _finite(values: Sequence) -> np.ndarray:
    """The finite numbers of `values` as a float array (None, NaN, infinities and bools left out)."""
    return np.array([float(v) for v in values
                     if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)], dtype=float)


def holm_adjusted(pvalues: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values: with p sorted ascending, p~_(j) = max over k <= j of
    min(1, (m - k + 1) p_(k)), returned in the input order. A non-finite p counts as 1 (never rejected)."""
    p = np.array([v if isinstance(v, (int, float)) and math.isfinite(v) else 1.0 for v in pvalues], dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return [float(x) for x in out]


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects at familywise error rate `alpha`."""
    return [q <= alpha for q in holm_adjusted(pvalues)]


def paired_t(diffs: Sequence[float]) -> dict:
    """The one-sample t-test of paired differences against 0: mean, 95% t-interval half-width `ci95`,
    standard deviation `sd` (n - 1), `n` and the two-sided p-value `p`. NaN where n < 2 leaves them
    undefined; with sd = 0 the test is degenerate: p = 1 when the mean is 0, else 0."""
    d = _finite(diffs)
    n = len(d)
    mean = float(d.mean()) if n else NAN
    if n < 2:
        return {"mean": mean, "ci95": NAN, "sd": NAN, "n": n, "p": NAN}
    sd = float(d.std(ddof=1))
    ci = float(sps.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    if sd == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
    else:
        p = float(2 * sps.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return {"mean": mean, "ci95": ci, "sd": sd, "n": n, "p": p}


def t_power(ncp: float, n: int, alpha: float = 0.05, df: Optional[float] = None) -> float:
    """Power of the two-sided one-sample t-test at level `alpha` with n observations when the true
    standardised effect gives noncentrality `ncp` (= delta sqrt(n) / sd): P(|T| > t_crit), T ~ nct(df, ncp);
    `df` n - 1 unless given (a pooled error term's)."""
    df = n - 1 if df is None else df
    crit = float(sps.t.ppf(1 - alpha / 2, df))
    upper = float(sps.nct.sf(crit, df, ncp))
    lower = float(sps.nct.cdf(-crit, df, ncp))  # scipy returns NaN for a far, vanishing lower tail
    return (upper if math.isfinite(upper) else 1 - float(sps.nct.cdf(crit, df, ncp))) + \
        (lower if math.isfinite(lower) else 0.0)


def min_detectable(n: int, sd: float, alpha: float = 0.05, power: float = 0.8, df: Optional[float] = None) -> float:
    """Minimum detectable difference: the smallest true mean difference that a two-sided paired t-test
    at level `alpha` detects with probability `power`, with n pairs whose differences have standard
    deviation `sd` (`df`: of its estimate, n - 1 unless given). Exact: the noncentrality at which `t_power` equals `power` (scipy's brentq), times
    sd / sqrt(n). NaN when n < 2 or sd is not finite; 0 when sd is 0.

    The verdict passes alpha = familywise alpha / number of comparisons (Bonferroni's level, the
    strictest step of Holm's procedure), so the figure is conservative for every comparison."""
    if n is None or n < 2 or not (isinstance(sd, (int, float)) and math.isfinite(sd)):
        return NAN
    if sd == 0:
        return 0.0
    high = 1.0
    while t_power(high, n, alpha, df) < power:
        high *= 2
    ncp = optimize.brentq(lambda x: t_power(x, n, alpha, df) - power, 0.0, high, xtol=1e-10)
    return float(ncp * abs(sd) / math.sqrt(n))


def tost(diffs: Sequence[float], margin: float, alpha: float = 0.05) -> dict:
    """Two one-sided t-tests (Schuirmann 1987) of equivalence of the paired mean difference within
    ±`margin`: H0 mean <= -margin and H0 mean >= +margin; `p` is the larger of the two one-sided p-values
    and `equivalent` is p < alpha. p NaN (not equivalent) with fewer than 2 differences; with sd = 0,
    p = 0 inside the margin and 1 outside it."""
    d = _finite(diffs)
    n = len(d)
    if n < 2 or not (isinstance(margin, (int, float)) and math.isfinite(margin)) or margin <= 0:
        return {"p": NAN, "equivalent": False}
    mean, se = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(n)
    if se == 0.0:
        p = 0.0 if abs(mean) < margin else 1.0
    else:
        p_lower = float(sps.t.sf((mean + margin) / se, n - 1))  # H0: mean <= -margin
        p_upper = float(sps.t.cdf((mean - margin) / se, n - 1))  # H0: mean >= +margin
        p = max(p_lower, p_upper)
    return {"p": p, "equivalent": bool(p < alpha)}


def expected_max(values: Sequence[float], mode: str = "max") -> list[float]:
    """The tuning curve: for n = 1..N, the expected best of n trials drawn without replacement from the N
    finite observed values, the unbiased without-replacement estimator (Tang et al. 2020, "Showing your
    work doesn't always work"; Dodge et al. 2021, "Expected validation performance and estimation of a
    random variable's maximum"; not Dodge et al. 2019's, which draws with replacement from the empirical
    distribution and is biased): with v sorted ascending, E[max_n] = sum_i v_(i) C(i-1, n-1) / C(N, n).
    `mode` "min": the expected smallest (a metric to minimise)."""
    v = _finite(values)
    sign = 1.0 if mode == "max" else -1.0
    return [sign * float(x) for x in _expected_max_weights(len(v)) @ np.sort(sign * v)]


def _expected_max_weights(big_n: int) -> np.ndarray:
    """W (N x N): row n-1 holds the weights C(i-1, n-1) / C(N, n) of the ascending values i = 1..N."""
    i = np.arange(1, big_n + 1)
    w = np.zeros((big_n, big_n))
    for n in range(1, big_n + 1):
        ok = i >= n
        w[n - 1, ok] = np.exp(_log_comb(i[ok] - 1, n - 1) - _log_comb(big_n, n))
        w[n - 1] /= w[n - 1].sum()  # sums to 1 up to rounding
    return w


BOOTSTRAP = 2000  # resamples of the tuning curves' bands
BOOTSTRAP_SEED = 0


def expected_max_band(values: Sequence[float], mode: str = "max", level: float = 0.95,
                      resamples: int = BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> dict:
    """The tuning curve with a percentile bootstrap band, and the expected gain of one more trial.

    Seeded numpy resampling (not scipy.stats.bootstrap): `resamples` samples of N values drawn with
    replacement from the N finite values, the curve `expected_max` of each; per n, the (1 - level) / 2 and
    (1 + level) / 2 quantiles of those curves. The gain of one more trial is the curve's last step,
    E[best of N] - E[best of N - 1] (an improvement: positive for both modes), with the same quantiles of
    the resampled curves' last steps. Returns {"mean", "low", "high"} (lists, n = 1..N) and "gain",
    "gain_low", "gain_high" (NaN with fewer than 2 values)."""
    v = _finite(values)
    sign = 1.0 if mode == "max" else -1.0
    big_n = len(v)
    w = _expected_max_weights(big_n)
    mean = w @ np.sort(sign * v)
    draws = np.random.default_rng(seed).choice(sign * v, size=(resamples, big_n)) if big_n else \
        np.zeros((resamples, 0))
    curves = np.sort(draws, axis=1) @ w.T  # resamples x N
    q = [(1 - level) / 2, (1 + level) / 2]
    low, high = np.quantile(curves, q, axis=0) if big_n else (np.zeros(0), np.zeros(0))
    out = {"mean": [sign * float(x) for x in mean], "low": [], "high": []}
    for lo, hi in zip(low, high):  # a band for "min" runs the other way round
        out["low"].append(float(min(sign * lo, sign * hi)))
        out["high"].append(float(max(sign * lo, sign * hi)))
    if big_n < 2:
        return {**out, "gain": NAN, "gain_low": NAN, "gain_high": NAN}
    # the last step in closed form, (v_(N) - v_(N-1)) / N: exact, and an improvement (>= 0) in both modes
    top = np.sort(draws, axis=1)[:, -2:]
    g_low, g_high = np.quantile((top[:, 1] - top[:, 0]) / big_n, q)
    last = np.sort(sign * v)[-2:]
    return {**out, "gain": float((last[1] - last[0]) / big_n), "gain_low": float(g_low), "gain_high": float(g_high)}


def _log_comb(a, b):
    """log C(a, b) through the log-gamma function (a >= b >= 0)."""
    return gammaln(np.asarray(a, dtype=float) + 1) - gammaln(b + 1) - gammaln(np.asarray(a, dtype=float) - b + 1)


def first_reach(curve: Sequence[tuple], threshold: float) -> Optional[float]:
    """The x (compute) of the first point (x, y) of `curve`, in order, whose y >= `threshold`; None when
    no point reaches it (censored at the curve's end). Points with a non-finite x or y are skipped."""
    for x, y in curve:
        if _finite([x, y]).size == 2 and y >= threshold:
            return float(x)
    return None
