"""Convergence epoch, epochs to target and confidence intervals on hand-made curves."""

import math

from tune_hardbatch.metrics import convergence_epoch, epochs_to_target, t_interval

EE = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_plateau_is_found_patience_reports_later():
    # first loss 2.0 -> margin 0.02; from report 4 (index 3, loss 0.5) nothing improves by more than 0.02
    losses = [2.0, 1.0, 0.6, 0.5, 0.49, 0.495, 0.485, 0.2]
    assert math.isnan(convergence_epoch(losses[:6], EE[:6])[0])  # index 3 + patience 3 = 6 reports needed
    assert convergence_epoch(losses[:7], EE[:7]) == (4.0, 1)
    assert convergence_epoch(losses, EE) == (4.0, 1)  # a later drop doesn't move a known convergence


def test_never_converging_gives_nan_until_final_then_last_epoch():
    losses = [2.0, 1.5, 1.0, 0.7, 0.5, 0.3, 0.2, 0.1]
    assert math.isnan(convergence_epoch(losses, EE)[0])
    assert convergence_epoch(losses, EE, final=True) == (8.0, 0)


def test_tol_and_patience_change_the_answer():
    losses = [1.0, 0.5, 0.49, 0.48, 0.47, 0.46]
    assert convergence_epoch(losses, EE[:6], tol=0.05, patience=3) == (2.0, 1)
    assert math.isnan(convergence_epoch(losses, EE[:6], tol=0.001, patience=3)[0])
    assert convergence_epoch(losses, EE[:6], tol=0.05, patience=1) == (2.0, 1)


def test_empty_and_nan_losses():
    assert math.isnan(convergence_epoch([], [])[0])
    value, converged = convergence_epoch([1.0, float("nan")], [1.0, 2.0], final=True)
    assert converged in (0, 1) and not math.isnan(value)


def test_epochs_to_target():
    acc = [50.0, 80.0, 91.0, 95.0]
    assert epochs_to_target(acc, EE[:4], 90.0) == 3.0
    assert math.isnan(epochs_to_target(acc, EE[:4], 99.0))
    assert math.isnan(epochs_to_target(acc, EE[:4], None))


def test_t_interval_across_seeds():
    mean, half = t_interval([70.0, 71.0, 72.0])
    assert mean == 71.0
    assert math.isclose(half, 4.302652729911275 * 1.0 / math.sqrt(3), rel_tol=1e-6)  # t(0.975, 2) * sd / sqrt(n)
    assert math.isnan(t_interval([70.0])[1])
