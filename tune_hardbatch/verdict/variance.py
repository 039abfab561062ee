"""How much of an arm's seed-to-seed variance of test accuracy is test-set sampling noise, and how much is
the model's true (distribution-level) accuracy varying across seeds.

Jordan (2024), "On the Variance of Neural Network Training with respect to Test Sets and Distributions"
(ICLR 2024, arXiv:2304.01910): runs that differ only in their seed disagree on many test examples, yet
almost all of their spread in test accuracy is what a finite test set adds on its own: each example behaves
like an independent coin flip whose probability is the example's own, and the accuracy a run would have on
the whole distribution varies far less. `variance_split` makes that split from the runs' per-example
top-1 correctness (`training.correctness`, kept by each confirmation run); `arm_split` from their folders.
Pure numpy: no Ray, no torch.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np

from ..search.history import warn_skipped
from ..training.correctness import CORRECT_FILE, load_correct

KEYS = ("runs", "examples", "total", "sampling", "model", "sampling_share", "test_set_se")


def variance_split(correct: np.ndarray) -> dict:
    """Split the seed-to-seed variance of test accuracy of S runs of one arm on the same n test examples.

    `correct`: S x n bools, run s got example i right. With accuracies a_s = 100 * mean_i correct[s, i] (in
    %) and p_i = mean_s correct[s, i], the fraction of runs that got example i right; variances in squared
    percentage points:

    - `total` = var_s(a_s), the sample variance (ddof 1) of the runs' accuracies;
    - `sampling` = mean_i[p_i (1 - p_i)] * S / (S - 1) / n * 1e4: the variance a run's accuracy would have
      if each example were an independent coin flip with probability p_i (S / (S - 1) makes p (1 - p) an
      unbiased estimate of the flip's variance): test-set sampling noise;
    - `model` = max(0, total - sampling): the variance across seeds of the model's true accuracy on the
      distribution (Jordan's distribution-wise variance);
    - `sampling_share` = sampling / total (NaN when total is 0);
    - `test_set_se` = sqrt(var_i(p_i) / n) * 100 (ddof 1, percentage points): the standard error of the
      arm's mean accuracy that comes from the fixed test set itself, which no number of seeds removes (only
      a larger test set would); with few seeds var_i(p_i) includes the p_i's own noise, so it errs high.

    Also `runs` S and `examples` n; every variance NaN when S < 2 or n is 0.
    """
    c = np.asarray(correct, dtype=bool)
    if c.ndim != 2:
        raise ValueError(f"correct must be runs x examples, got shape {c.shape}")
    s, n = c.shape
    out = {k: math.nan for k in KEYS} | {"runs": s, "examples": n}
    if s < 2 or n == 0:
        return out
    acc = 100 * c.mean(axis=1)
    p = c.mean(axis=0)
    total = float(acc.var(ddof=1))
    sampling = float(np.mean(p * (1 - p)) * s / (s - 1) / n * 1e4)
    out.update(total=total, sampling=sampling, model=max(0.0, total - sampling),
               sampling_share=sampling / total if total > 0 else math.nan,
               test_set_se=float(math.sqrt(p.var(ddof=1) / n) * 100) if n > 1 else math.nan)
    return out


def arm_split(trial_dirs: list[Path]) -> Optional[dict]:
    """`variance_split` of the runs in `trial_dirs` whose test correctness was kept (a missing or damaged
    file is skipped), those of the most common test-set size n only; None when fewer than 2 are left."""
    runs = []
    for d in trial_dirs:
        correct = load_correct(Path(d))
        if correct is not None:
            runs.append(correct)
        elif (Path(d) / CORRECT_FILE).exists():
            what = "is a directory, expected a file" if (Path(d) / CORRECT_FILE).is_dir() else \
                "is damaged or cut short (not a run's test correctness)"
            warn_skipped(f"{Path(d) / CORRECT_FILE}: {what}", "the arm's variance split leaves this run out")
    if not runs:
        return None
    n = Counter(len(c) for c in runs).most_common(1)[0][0]
    runs = [c for c in runs if len(c) == n]
    return variance_split(np.stack(runs)) if len(runs) >= 2 else None
