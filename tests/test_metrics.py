"""Convergence epoch, epochs to target and confidence intervals on hand-made curves."""

import math

from tune_hardbatch.metrics import (
    convergence_epoch,
    epochs_to_target,
    finite_interval,
    is_finite,
    json_safe,
    t_interval,
)

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
    assert convergence_epoch([1.0, float("nan")], [1.0, 2.0], final=True) == (2.0, 0)


NAN, INF = float("nan"), float("inf")


def test_non_finite_losses_never_count_as_converged():
    # before: NaN compared as "not bettered", so a run turning NaN "converged" at the last finite report
    diverging = [2.0, 1.0, 0.6, NAN, NAN, NAN]
    assert math.isnan(convergence_epoch(diverging, EE[:6])[0])
    assert convergence_epoch(diverging, EE[:6], final=True) == (6.0, 0)
    assert convergence_epoch([2.0, 1.0, 0.6, INF, INF, INF], EE[:6], final=True) == (6.0, 0)
    # a non-finite t is never the convergence epoch, even if nothing after it is lower
    assert convergence_epoch([2.0, 1.0, NAN, 1.0, 1.0, 1.0, 1.0], EE[:7]) == (4.0, 1)
    # one non-finite loss in the window stops t from being confirmed; a later clean window does
    plateau = [2.0, 0.5, 0.5, NAN, 0.5, 0.5, 0.5, 0.5]
    assert convergence_epoch(plateau, EE) == (5.0, 1)
    # a non-finite first loss gives no margin: nothing is confirmed
    assert convergence_epoch([NAN, 1.0, 1.0, 1.0, 1.0], EE[:5], final=True) == (5.0, 0)
    # a convergence confirmed before a later divergence stays (earlier reports already said so)
    assert convergence_epoch([2.0, 0.5, 0.5, 0.5, 0.5, NAN], EE[:6], final=True) == (2.0, 1)


def test_full_pass_curve_finds_the_plateau_the_trained_batches_hide():
    # delta < 1 trains on the hardest, shifting batches: their mean loss keeps falling by more than tol;
    # the full pass over the training set (the paper's e) has flattened from report 4 on
    trained = [2.3, 1.6, 1.2, 0.95, 0.75, 0.6, 0.45, 0.35, 0.3]
    full = [2.2, 1.2, 0.8, 0.62, 0.615, 0.61, 0.612, 0.605, 0.6]
    ee = [float(i) for i in range(1, 10)]
    assert convergence_epoch(trained, ee, final=True) == (9.0, 0)
    assert convergence_epoch(full, ee, final=True) == (4.0, 1)


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


def test_finite_values_and_json_without_nan():
    assert [is_finite(v) for v in (1, 2.5, float("nan"), float("-inf"), True, None, "1")] == \
        [True, True, False, False, False, False, False]
    value = {"a": float("nan"), "b": [1.0, float("inf"), {"c": (2, float("-inf"))}], 3: "x"}
    assert json_safe(value) == {"a": None, "b": [1.0, None, {"c": [2, None]}], 3: "x"}


def test_an_interval_of_the_finite_values_only():
    mean, ci, n = finite_interval([70.0, None, 72.0, float("nan"), 71.0])
    assert (mean, n) == (71.0, 3) and ci == t_interval([70.0, 72.0, 71.0])[1]
    assert all(math.isnan(x) for x in finite_interval([None])[:2]) and finite_interval([])[2] == 0
