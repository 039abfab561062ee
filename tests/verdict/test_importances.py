"""`importances`: fANOVA importances of the searched dimensions over finished trials, conditional ones apart."""

import math
import random
from dataclasses import replace

import pytest

from tune_hardbatch.search.space import Dim
from tune_hardbatch.search.trials import Trial
from tune_hardbatch.verdict.importances import importances_markdown, param_importances

LR = Dim("optim.lr", "loguniform", 0.01, 0.3)
DELTA = Dim("hard_batch.delta", "choice", values=(None, 1.0, 0.5, 0.2))
SCHEDULE = Dim("trim.schedule", "choice", values=("none", "linear"))
P_END = Dim("trim.p_end", "uniform", 0.2, 0.8)
SEED = Dim("seed", "grid", values=(0, 1, 2))


def trial(i, params, value, status="finished"):
    history = [{"val_top1": 10.0}, {"val_top1": value}]
    return Trial(f"t{i:02d}", status, params=params, history=history, last=history[-1])


def lr_only(n, seed=0):
    """n trials whose value is a function of the learning rate alone; delta (and the seed) are noise."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        lr = 10 ** rng.uniform(-2, math.log10(0.3))
        out.append(trial(i, {"optim.lr": lr, "hard_batch.delta": rng.choice(DELTA.values), "seed": i % 3},
                         90 - 30 * (math.log10(lr) + 1.2) ** 2))
    return out


def test_the_parameter_that_determines_the_value_ranks_first_and_noise_near_zero():
    trials = lr_only(30)
    result = param_importances(trials, [LR, DELTA, SEED], "val_top1", "max")
    assert result["evaluator"] == "fANOVA" and result["n_trials"] == 30
    assert list(result["values"]) == ["optim.lr", "hard_batch.delta"]  # the seed is never scored
    assert result["values"]["optim.lr"] > 0.9 and result["values"]["hard_batch.delta"] < 0.05
    assert math.isclose(sum(result["values"].values()), 1.0)
    assert result["warning"] is None and result["conditional"] == {}
    assert param_importances(trials, [LR, DELTA, SEED], "val_top1", "max") == result  # deterministic


def test_conditional_parameter_is_scored_over_its_subset_and_inactive_values_are_ignored():
    rng = random.Random(1)
    trials = []
    for i in range(30):
        schedule = ("none", "linear")[i % 3 == 0]
        lr, p_end = 10 ** rng.uniform(-2, -0.6), rng.uniform(0.2, 0.8)
        value = 80 + 5 * (lr > 0.05) + (20 * p_end if schedule == "linear" else 0)
        # a random searcher stores p_end in every trial: it only applies with a trimming schedule
        trials.append(trial(i, {"optim.lr": lr, "trim.schedule": schedule, "trim.p_end": p_end}, value))
    result = param_importances(trials, [LR, SCHEDULE, P_END], "val_top1", "max")
    assert set(result["values"]) == {"optim.lr", "trim.schedule"}
    cond = result["conditional"]["trim.p_end"]
    assert cond["n"] == 10 and cond["among"] == "trials with trim.schedule != none"
    assert cond["value"] > 0.5  # within the trimmed trials p_end decides the value
    text = importances_markdown(result)
    assert "| `trim.p_end` (among trials with trim.schedule != none) |" in text and "| 10 |" in text
    assert "those stopped at a rung are left out" in text  # the importances describe the survivors, and say so


def test_a_gate_fixed_by_a_single_valued_grid_makes_its_parameters_global():
    """trim.schedule: grid [linear] is excluded (it cannot vary) but still turns trim.p_end on."""
    rng = random.Random(2)
    trials = [trial(i, {"optim.lr": 0.05, "hard_batch.delta": rng.choice(DELTA.values), "trim.schedule": "linear",
                        "trim.p_end": (p := rng.uniform(0.2, 0.8))}, 60 + 30 * p) for i in range(12)]
    dims = [LR, DELTA, Dim("trim.schedule", "grid", values=("linear",)), P_END]
    result = param_importances(trials, dims, "val_top1", "max")
    assert list(result["values"]) == ["trim.p_end", "hard_batch.delta"] and result["conditional"] == {}


def test_few_trials_give_a_warning():
    result = param_importances(lr_only(8), [LR, DELTA, SEED], "val_top1", "max")
    assert result["values"] and result["n_trials"] == 8
    assert result["warning"] == "importances from 8 finished trials of 2 dimensions: indicative only"
    assert "> Warning: importances from 8 finished trials" in importances_markdown(result)


def test_fewer_than_three_usable_trials_give_no_importances():
    trials = lr_only(6)
    trials[0] = replace(trials[0], status="stopped_early")
    trials[1] = replace(trials[1], status="diverged")
    trials[2].history[-1]["val_top1"] = float("nan")  # the last report, as `last` too
    trials[3] = replace(trials[3], history=[], last={})
    result = param_importances(trials, [LR, DELTA], "val_top1", "max")
    assert result["n_trials"] == 2 and result["values"] == {} and result["conditional"] == {}
    assert result["warning"].startswith("no importances: 2 finished trial(s)")
    assert importances_markdown(result).startswith("> no importances")


def test_fewer_than_two_varying_dimensions_give_no_importances():
    trials = [trial(i, {"optim.lr": 0.01 * (i + 1), "hard_batch.delta": 0.5}, 50.0 + i) for i in range(12)]
    result = param_importances(trials, [LR, DELTA], "val_top1", "max")
    assert result["values"] == {} and "1 varying dimension" in result["warning"]


@pytest.mark.parametrize("stored", [[0.5, 1.0], "[0.5, 1.0]"])
def test_encoded_and_decoded_choice_values_are_the_same_choice(stored):
    """Optuna stores list choices as JSON strings, the other searchers as lists."""
    splits = Dim("stepwise.fractions", "choice", values=("[0.5, 1.0]", "A-C-O"))
    rng = random.Random(3)
    trials = [trial(i, {"optim.lr": 10 ** rng.uniform(-2, -0.6), "stepwise.fractions": stored if i % 2 else "A-C-O"},
                    70.0 + 10 * (i % 2) + rng.random()) for i in range(12)]
    result = param_importances(trials, [LR, splits], "val_top1", "max")
    assert list(result["values"])[0] == "stepwise.fractions" and result["n_trials"] == 12
