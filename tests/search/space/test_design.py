"""The shared design (`space.design`): the values of the shared dimensions that every arm's k-th start-up
trial takes. Deterministic per seed, point k the same whatever the count, each value in its dimension's
range and encoded as its Optuna sampler gives it, and space-filling (a Sobol' net). No Ray here."""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest
from search_helpers import BASE

from tune_hardbatch.search import space as SP
from tune_hardbatch.search.space.design import shared_design, unit_points, unit_value
from tune_hardbatch.search.space.dims import Dim

LR = Dim("optim.lr", "loguniform", 0.001, 1.0)
P_END = Dim("trim.p_end", "uniform", 0.2, 0.8)
BATCH = Dim("optim.batch_size", "int", 32, 256, 32)  # 8 values
PLAN = Dim("stepwise.fractions", "choice", values=(None, "[0.5, 1.0]", "A-O", "A-C-O"))
DIMS = [LR, P_END, BATCH, PLAN]


def unit_of(dim: Dim, value) -> float:
    """Where a uniform or loguniform value lies in [0, 1] of its range (log scale for loguniform)."""
    if dim.kind == "loguniform":
        return math.log(value / dim.low) / math.log(dim.high / dim.low)
    return (value - dim.low) / (dim.high - dim.low)


def test_the_same_seed_gives_the_same_design_and_another_seed_another():
    assert shared_design(DIMS, 8, 0) == shared_design(DIMS, 8, 0)
    assert [p["optim.lr"] for p in shared_design(DIMS, 8, 0)] != [p["optim.lr"] for p in shared_design(DIMS, 8, 1)]


def test_point_k_does_not_depend_on_the_count():
    """A search with 3 start-up trials and one with 10 try the same first 3 values."""
    long = shared_design(DIMS, 10, 7)
    for n in (1, 2, 3, 5, 8):
        assert shared_design(DIMS, n, 7) == long[:n]
    assert shared_design(DIMS, 0, 7) == []


def test_every_value_is_in_range_and_encoded_as_its_sampler_gives_it():
    for point in shared_design(DIMS, 64, 3):
        assert set(point) == {"optim.lr", "trim.p_end", "optim.batch_size", "stepwise.fractions"}
        assert type(point["optim.lr"]) is float and LR.low <= point["optim.lr"] <= LR.high
        assert type(point["trim.p_end"]) is float and P_END.low <= point["trim.p_end"] <= P_END.high
        batch = point["optim.batch_size"]
        assert type(batch) is int and 32 <= batch <= 256 and (batch - 32) % 32 == 0  # on the step grid
        assert point["stepwise.fractions"] in PLAN.values  # encoded: the list as its JSON string


def test_loguniform_values_spread_evenly_in_log_and_uniform_ones_in_value():
    """16 points: one in each sixteenth of the range, in log for the learning rate (a linear spread would put
    nearly all of them above 0.06, in the top decade of three)."""
    points = shared_design(DIMS, 16, 5)
    for dim in (LR, P_END):
        strata = sorted(int(unit_of(dim, p[dim.key]) * 16) for p in points)
        assert strata == list(range(16)), dim.key
    assert sum(p["optim.lr"] < 0.01 for p in points) in (5, 6)  # a third of the log range: 5 or 6 of 16


def test_ints_and_choices_take_each_value_equally_often():
    points = shared_design(DIMS, 32, 11)
    assert Counter(p["optim.batch_size"] for p in points) == {b: 4 for b in range(32, 257, 32)}
    assert Counter(p["stepwise.fractions"] for p in points) == {v: 8 for v in PLAN.values}
    three = Dim("hard_batch.delta", "choice", values=(1.0, 0.5, 0.3))
    counts = Counter(p["hard_batch.delta"] for p in shared_design([three], 16, 2))
    assert set(counts) == {1.0, 0.5, 0.3} and max(counts.values()) - min(counts.values()) <= 2


def test_the_design_fills_the_space_one_point_per_elementary_box():
    """The first 2^m points of a scrambled Sobol' sequence are a (0, m, 2)-net in its first two coordinates:
    every box of area 2^-m (4 x 4, 2 x 8, 8 x 2, 16 x 1 for m = 4) holds exactly one point. 16 independent
    uniform points leave some of the 16 cells of a 4 x 4 grid empty with probability 1 - 16!/16^16 > 0.999."""
    unit = unit_points(4, 16, 9)
    assert unit.shape == (16, 4) and ((0 <= unit) & (unit < 1)).all()
    for cols, rows in ((4, 4), (2, 8), (8, 2), (16, 1), (1, 16)):
        cells = Counter(zip((unit[:, 0] * cols).astype(int), (unit[:, 1] * rows).astype(int)))
        assert len(cells) == 16 and set(cells.values()) == {1}, (cols, rows)
    for j in range(4):  # and one point per sixteenth of every coordinate
        assert sorted((unit[:, j] * 16).astype(int)) == list(range(16))


def test_the_design_is_closer_to_uniform_than_random_points():
    """Centred L2 discrepancy of 32 design points against the 95th percentile of 200 random draws' lower
    tail: a random draw as good is rarer than 1 in 20."""
    from scipy.stats import qmc

    design = qmc.discrepancy(unit_points(3, 32, 4))
    rng = np.random.default_rng(0)
    random = sorted(qmc.discrepancy(rng.random((32, 3))) for _ in range(200))
    assert design < random[10]


def test_grid_dimensions_take_no_part_and_no_sampled_dimension_gives_empty_points():
    seeds = Dim("seed", "grid", values=(0, 1, 2))
    assert shared_design([seeds, LR], 4, 0) == [{"optim.lr": p["optim.lr"]} for p in shared_design([LR], 4, 0)]
    assert shared_design([seeds], 3, 0) == [{}, {}, {}]
    with pytest.raises(ValueError, match="grid"):
        unit_value(seeds, 0.5)
    with pytest.raises(ValueError, match="n must be >= 0"):
        shared_design([LR], -1, 0)


def test_bounds_are_kept_at_the_ends_of_the_unit_interval():
    assert LR.low <= unit_value(LR, 0.0) <= LR.low * (1 + 1e-12)
    assert unit_value(LR, 1.0) == LR.high and unit_value(P_END, 1.0) == P_END.high  # never past a bound
    assert unit_value(BATCH, 0.999999) == 256 and unit_value(BATCH, 0.0) == 32
    assert unit_value(PLAN, 0.999999) == "A-C-O"


def test_an_enqueued_design_point_is_what_optuna_suggests():
    """Each point, enqueued into an Optuna study, comes back unchanged from the space's define-by-run sampling
    (no value out of range: Optuna would warn), conditional parameters included."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = SP.validate_space({"base": {**BASE, "epochs": 4}, "space": {
        "optim.lr": {"loguniform": [0.01, 0.3]}, "trim.schedule": {"choice": ["none", "linear"]},
        "trim.p_end": {"uniform": [0.2, 0.8]}, "stepwise.fractions": {"choice": [None, [0.5, 1.0]]},
        "optim.batch_size": {"int": [32, 128, 32]}}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = SP.DefineByRun(spec.dims, spec.base_flat)
    for point in shared_design(spec.dims, 8, 0):
        study.enqueue_trial(point)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            trial = study.ask()
            space(trial)
        active = SP.active_params(point, spec.dims, spec.base_cfg)
        assert trial.params == active and set(active) <= set(point)
        study.tell(trial, 1.0)
