"""Pure metric functions: convergence epoch, epochs to target, confidence intervals; what counts as a
finite value (`is_finite`) and JSON without NaN (`json_safe`), for every module that reports metrics.

Convergence epoch (the papers' "e", which none of them defines in code): the first report t whose train
loss is not bettered by more than `tol` x (first reported train loss) within the next `patience` reports.
It is only known `patience` reports after t; before that it is NaN. If a run ends without one, the value
is the last epoch_equiv and `converged` is 0. A non-finite loss never counts as converged: such a report
cannot be t, a window holding one confirms no t, and a non-finite first loss (no margin) confirms nothing,
so a run that diverges before its convergence is confirmed ends with converged = 0 and the last
epoch_equiv. (A convergence confirmed before a later divergence stays: earlier reports already said so.)
"""

from __future__ import annotations

import math
from typing import Sequence

NAN = float("nan")


def is_finite(v) -> bool:
    """A real number that is neither NaN nor infinite (a bool is not a metric value)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def json_safe(value):
    """`value` with every NaN and infinity (at any depth of dicts, lists and tuples) as None: standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def convergence_epoch(train_losses: Sequence[float], epoch_equivs: Sequence[float], tol: float = 0.01,
                      patience: int = 3, final: bool = False) -> tuple[float, int]:
    """(epoch_equiv of convergence or NaN, converged 0/1) given the reports so far.

    `final=True` means no more reports will come: an unknown convergence becomes the last epoch_equiv.
    """
    if not train_losses:
        return NAN, 0
    margin = tol * train_losses[0]
    for t in range(len(train_losses) - patience if math.isfinite(margin) else 0):
        window = train_losses[t + 1 : t + 1 + patience]
        if math.isfinite(train_losses[t]) and all(math.isfinite(loss) and not (loss < train_losses[t] - margin)
                                                  for loss in window):
            return float(epoch_equivs[t]), 1
    return (float(epoch_equivs[-1]), 0) if final else (NAN, 0)


def epochs_to_target(test_top1s: Sequence[float], epoch_equivs: Sequence[float], target) -> float:
    """First epoch_equiv with test top-1 >= target (percent), NaN if never or no target."""
    if target is None:
        return NAN
    for acc, ee in zip(test_top1s, epoch_equivs):
        if acc >= target:
            return float(ee)
    return NAN


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided Student-t interval across seeds (NaN width for one value)."""
    n = len(values)
    if n == 0:
        return NAN, NAN
    mean = sum(values) / n
    if n == 1:
        return mean, NAN
    from scipy.stats import t as student_t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)


def finite_interval(values: Sequence) -> tuple[float, float, int]:
    """`t_interval` of the finite values among `values` (a failed seed's None or NaN is left out), and their
    count."""
    finite = [v for v in values if is_finite(v)]
    return (*t_interval(finite), len(finite))
