"""Tuning curves (`tuning_curves.py`): per arm the expected best validation value after n of its trials, from
the trials a search left, with what the estimator assumes said next to it."""

from __future__ import annotations

import pytest

from tune_hardbatch.output.plots import tuning_curves as plot_tuning_curves
from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.tuning_curves import tuning_curves, tuning_markdown


def trial(i, value, strategy="plain", arm=None, status="finished") -> Trial:
    family = strategy.split("=")[0]  # these tests' labels: plain, delta=<x>
    return Trial(f"t{i}", status, strategy=strategy, family=family, arm=arm, last={"val_top1": value})


def test_curves_per_declared_arm_from_every_trial_with_a_value():
    trials = [trial(0, 80.0, arm="plain"), trial(1, 90.0, arm="plain"), trial(2, 70.0, arm="plain", status="stopped_early"),
              trial(3, 60.0, "delta=0.5", arm="delta<1"), trial(4, float("nan"), "delta=0.3", arm="delta<1",
                                                                   status="diverged"),
              trial(5, 65.0, "delta=0.3", arm="delta<1")]
    curves = tuning_curves(trials, "val_top1", "max", order=["plain", "delta<1"])
    assert list(curves) == ["plain", "delta<1"]  # the space's order of arms
    assert list(tuning_curves(trials, "val_top1", "max")) == ["delta<1", "plain"]  # else by name
    assert curves["plain"] == pytest.approx([80.0, (80 + 90 + 90) / 3, 90.0])  # pairs of {70, 80, 90}: 80, 90, 90
    assert curves["delta<1"] == pytest.approx([62.5, 65.0])  # the diverged trial has no value: left out


def test_a_joint_search_groups_by_strategy_family_and_min_metrics_fall():
    trials = [trial(0, 0.5, "delta=0.5"), trial(1, 0.3, "delta=0.3"), trial(2, 0.4, "plain")]
    curves = tuning_curves([Trial(t.trial_id, t.status, strategy=t.strategy, family=t.family,
                                  last={"val_loss": t.last["val_top1"]})
                            for t in trials], "val_loss", "min")
    assert curves["delta"] == pytest.approx([0.4, 0.3]) and curves["plain"] == pytest.approx([0.4])


def test_table_names_the_sampler_and_the_plot_is_a_png(tmp_path):
    curves = {"plain": [80.0, 85.0, 87.0], "trim": [70.0, 75.5]}
    md = tuning_markdown(curves, "val_top1", "Optuna TPE, ASHA early stopping per arm")
    assert "Optuna TPE, ASHA early stopping per arm" in md and "independent draws" in md
    assert "| arm | trials | n=1 | n=2 | n=3 |" in md and "| trim | 2 | 70.00 | 75.50 | - |" in md
    path = plot_tuning_curves(curves, tmp_path / "tuning_curves.png", "val_top1", "Optuna TPE")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert tuning_markdown({}, "val_top1", "x") == ""
