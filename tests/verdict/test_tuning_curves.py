"""Tuning curves (`tuning_curves.py`): per arm the expected best validation value after n of its trials over
values taken at ONE budget, with a 95% bootstrap band and the expected gain of one more trial, from the
trials a search left, with what the estimator assumes said next to it."""

from __future__ import annotations

import pytest

from tune_hardbatch.output.plots import _tuning_curves_figure
from tune_hardbatch.output.plots import tuning_curves as plot_tuning_curves
from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.stats import expected_max
from tune_hardbatch.verdict.tuning_curves import arm_curve, tuning_curves, tuning_markdown


def trial(i, value, strategy="plain", arm=None, status="finished") -> Trial:
    family = strategy.split("=")[0]  # these tests' labels: plain, delta=<x>
    return Trial(f"t{i}", status, strategy=strategy, family=family, arm=arm, last={"val_top1": value})


def climbed(i, values, status, arm="trim", step=1.0) -> Trial:
    """A trial with a report per `step` epoch-equivalents (asha_time as the halving scheduler's clock)."""
    history = [{"val_top1": v, "compute_equiv": step * (k + 1), "asha_time": step * (k + 1.5),
                "budget_done": int(status == "finished" and k == len(values) - 1)} for k, v in enumerate(values)]
    return Trial(f"{arm}{i}", status, strategy=arm, family=arm, arm=arm, last=history[-1], history=history)


def test_curves_per_declared_arm_from_every_trial_with_a_value():
    trials = [trial(0, 80.0, arm="plain"), trial(1, 90.0, arm="plain"), trial(2, 70.0, arm="plain", status="stopped_early"),
              trial(3, 60.0, "delta=0.5", arm="delta<1"), trial(4, float("nan"), "delta=0.3", arm="delta<1",
                                                                   status="diverged"),
              trial(5, 65.0, "delta=0.3", arm="delta<1")]
    curves = tuning_curves(trials, "val_top1", "max", order=["plain", "delta<1"])
    assert list(curves) == ["plain", "delta<1"]  # the space's order of arms
    assert list(tuning_curves(trials, "val_top1", "max")) == ["delta<1", "plain"]  # else by name
    # no budget recorded: each trial's last value (pairs of {70, 80, 90}: 80, 90, 90)
    assert curves["plain"].mean == pytest.approx([80.0, (80 + 90 + 90) / 3, 90.0])
    d = curves["delta<1"]
    assert d.mean == pytest.approx([62.5, 65.0]) and d.full and d.left_out == 1  # the diverged one: no value


def test_a_joint_search_groups_by_strategy_family_and_min_metrics_fall():
    trials = [trial(0, 0.5, "delta=0.5"), trial(1, 0.3, "delta=0.3"), trial(2, 0.4, "plain")]
    curves = tuning_curves([Trial(t.trial_id, t.status, strategy=t.strategy, family=t.family,
                                  last={"val_loss": t.last["val_top1"]})
                            for t in trials], "val_loss", "min")
    assert curves["delta"].mean == pytest.approx([0.4, 0.3]) and curves["plain"].mean == pytest.approx([0.4])
    assert curves["delta"].gain == pytest.approx(0.1)  # an improvement: the loss falls by 0.1
    assert curves["delta"].low[-1] <= 0.3 <= curves["delta"].high[-1]


def test_the_curve_takes_every_value_at_one_budget_the_first_rung_with_halving():
    """Two trials went on to the full budget (4), two stopped at the first rung (1): the curve compares the
    four at 1, the highest budget all reached, not the finished ones' final values beside the others' early
    ones; a trial that diverged before the rung is left out, one that diverged after it counts there."""
    arm = [climbed(0, [50.0, 70.0, 90.0, 95.0], "finished"), climbed(1, [60.0, 65.0, 80.0, 85.0], "finished"),
           climbed(2, [55.0], "stopped_early"), climbed(3, [40.0], "stopped_early"),
           climbed(4, [45.0, float("nan")], "diverged"), climbed(5, [float("nan")], "diverged")]
    c = arm_curve(arm, "val_top1", "max", rungs=(1.0, 2.0))
    assert c.budget == 1.0 and not c.full and c.left_out == 1
    assert c.mean == pytest.approx(expected_max([50.0, 60.0, 55.0, 40.0, 45.0]))
    # without the early stopper's rungs: the least of the trials' furthest budgets (asha_time 1.5, compute 1)
    assert arm_curve(arm, "val_top1", "max").mean == c.mean and arm_curve(arm, "val_top1", "max").budget == 1.0
    # every trial trained its whole budget (fifo): their final values, at the full budget
    full = arm_curve(arm[:2], "val_top1", "max")
    assert full.full and full.budget == 4.0 and full.mean == pytest.approx([90.0, 95.0])


def test_the_band_contains_the_estimate_and_the_gain_is_the_last_step():
    values = [81.0, 84.5, 79.0, 88.0, 86.0, 83.0, 87.5, 72.0]
    c = arm_curve([climbed(i, [v], "finished") for i, v in enumerate(values)], "val_top1", "max")
    assert c.mean == pytest.approx(expected_max(values))
    assert all(lo - 1e-9 <= m <= hi + 1e-9 for lo, m, hi in zip(c.low, c.mean, c.high))
    assert c.high[0] - c.low[0] > 1.0  # a real band: one trial's expected value is uncertain
    assert c.gain == pytest.approx(c.mean[-1] - c.mean[-2]) and c.gain == pytest.approx((88.0 - 87.5) / 8)
    assert c.gain_low <= c.gain <= c.gain_high and c.gain_low >= 0.0
    again = arm_curve([climbed(i, [v], "finished") for i, v in enumerate(values)], "val_top1", "max")
    assert (again.low, again.high, again.gain_high) == (c.low, c.high, c.gain_high)  # seeded
    one = arm_curve([climbed(0, [80.0], "finished")], "val_top1", "max")
    assert one.mean == [80.0] and one.gain != one.gain  # one trial: no last step (NaN)


def test_table_names_the_sampler_the_budget_the_band_and_the_gain_beside_the_resolution(tmp_path):
    plain = arm_curve([climbed(i, [v], "finished", "plain") for i, v in enumerate((80.0, 85.0, 87.0))],
                      "val_top1", "max")
    trim = arm_curve([climbed(0, [70.0, 75.5], "finished", "trim"), climbed(1, [72.0], "stopped_early", "trim")],
                     "val_top1", "max")
    curves = {"plain": plain, "trim": trim}
    md = tuning_markdown(curves, "val_top1", "Optuna TPE, synchronous successive halving per arm",
                         {"trim": "its comparison with plain resolves 1.6 points of test top-1"})
    assert "Optuna TPE, synchronous successive halving per arm" in md and "independent draws" in md
    assert "Tang et al. 2020 and Dodge et al. 2021" in md and "2019" not in md
    assert "| arm | trials | at (epoch-eq.) | n=1 | n=2 | n=3 | one more trial |" in md
    assert "| trim | 2 | 1 | 71.00 [" in md and "| plain | 3 | full (1) | " in md  # trim at its first budget
    assert ("- one more trial of trim would gain about 1.0 points of val_top1 (95% bootstrap band 0-1.0; the last step "
            "of its tuning curve over 2 trials at 1 epoch-equivalents); its comparison with plain resolves 1.6 points "
            "of test top-1.") in md
    assert "- one more trial of plain would gain about 0.67 points of val_top1" in md
    assert "still rising" not in md
    path = plot_tuning_curves(curves, tmp_path / "tuning_curves.png", "val_top1", "Optuna TPE")
    assert path.read_bytes()[:4] == b"\x89PNG"
    fig = _tuning_curves_figure(curves, "val_top1", "Optuna TPE")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["plain (3 at full 1)", "trim (2 at 1)"]
    assert len(ax.collections) == 2  # a band per arm
    assert tuning_markdown({}, "val_top1", "x") == ""
