"""The split of an arm's seed-to-seed variance of test accuracy (`verdict.variance`): test-set sampling
noise against the variance of the model's true accuracy (Jordan 2024), on simulated runs whose per-example
probabilities, and whose per-run shifts of them, are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tune_hardbatch.training.correctness import save_correct
from tune_hardbatch.verdict.variance import arm_split, variance_split

RUNS, EXAMPLES = 200, 2000


def simulated(shift_sd: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RUNS x EXAMPLES coin flips: example i right with probability q_i (+ the run's shift, N(0, shift_sd))."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.2, 0.8, EXAMPLES)  # far enough from 0 and 1 that a shift of a few sd is never clipped
    shift = rng.normal(0.0, shift_sd, (RUNS, 1))
    return rng.random((RUNS, EXAMPLES)) < q + shift, q


def test_without_model_variance_the_spread_is_all_test_set_sampling():
    correct, q = simulated(shift_sd=0.0)
    split = variance_split(correct)
    expected = np.mean(q * (1 - q)) / EXAMPLES * 1e4  # the coin flips' variance of an accuracy, in %^2
    assert split["runs"] == RUNS and split["examples"] == EXAMPLES
    assert split["sampling"] == pytest.approx(expected, rel=0.05)
    assert split["sampling_share"] == pytest.approx(1.0, abs=0.25)  # the sample variance of 200 runs: +-10%
    assert split["model"] < 0.25 * split["sampling"]
    assert split["total"] == pytest.approx(np.var(100 * correct.mean(axis=1), ddof=1))
    # the fixed test set's own standard error of the arm's mean: sd(q) / sqrt(n), in percentage points
    assert split["test_set_se"] == pytest.approx(np.std(q, ddof=1) / math.sqrt(EXAMPLES) * 100, rel=0.05)


def test_a_per_run_shift_of_the_true_accuracy_is_recovered_as_model_variance():
    correct, q = simulated(shift_sd=0.02)  # true accuracies 2 percentage points apart (sd): model variance 4 %^2
    split = variance_split(correct)
    assert split["model"] == pytest.approx(4.0, rel=0.25)  # the sample variance of 200 runs: +-10%
    sampling = np.mean(q * (1 - q)) / EXAMPLES * 1e4  # ~1.1 %^2: the shift hardly changes the coin flips
    assert split["sampling"] == pytest.approx(sampling, rel=0.05)
    assert split["total"] == pytest.approx(split["sampling"] + split["model"])
    assert split["sampling_share"] == pytest.approx(sampling / (sampling + 4.0), abs=0.07)


def test_fewer_than_two_runs_or_no_spread_give_nan():
    one = variance_split(np.ones((1, 10), dtype=bool))
    assert one["runs"] == 1 and one["examples"] == 10
    assert all(math.isnan(one[k]) for k in ("total", "sampling", "model", "sampling_share", "test_set_se"))
    same = variance_split(np.tile([True, False, True], (4, 1)))  # every run alike: no variance at all
    assert same["total"] == 0.0 and same["sampling"] == 0.0 and same["model"] == 0.0
    assert math.isnan(same["sampling_share"])
    with pytest.raises(ValueError):
        variance_split(np.ones(10, dtype=bool))


def test_arm_split_reads_the_runs_files_and_keeps_those_of_one_test_set_size(tmp_path):
    correct, _ = simulated(shift_sd=0.0)
    dirs = [tmp_path / f"t{i}" for i in range(5)]
    for d, c in zip(dirs[:3], correct[:3]):
        save_correct(d, c)
    save_correct(dirs[3], correct[3, :100])  # another test set: left out
    # dirs[4] kept nothing (a run that did not train its whole budget): skipped
    split = arm_split(dirs)
    assert split == variance_split(correct[:3])
    assert arm_split(dirs[3:]) is None and arm_split([]) is None
