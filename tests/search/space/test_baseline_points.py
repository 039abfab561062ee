"""A joint search's baseline points (`dims.baseline_points` from `registry.baseline_off`): plain SGD with every
searched strategy off, Selective Backprop and InfoBatch included, so the sampler always tries the baseline
the verdict compares every strategy with."""

from __future__ import annotations

from search_helpers import BASE

from tune_hardbatch.search.space import baseline_points, validate_space
from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies import registry


def space(**dims):
    return validate_space({"base": {**BASE, "epochs": 2},
                           "space": {"optim.lr": {"loguniform": [0.01, 0.3]}, **dims}})


def test_selective_backprop_and_infobatch_are_off_in_the_baseline_point():
    s = space(**{"selective_backprop.keep": {"choice": [None, 0.5]}, "infobatch.prune_ratio": {"choice": [None, 0.5]}})
    points = baseline_points(s.dims, s.base_flat)
    assert points == [{"selective_backprop.keep": None, "infobatch.prune_ratio": None}]
    assert registry.active(build_config(None, points[0])) == []  # nothing on: plain SGD


def test_with_hard_batches_trimming_and_selective_backprop_plain_then_delta_1():
    s = space(**{"hard_batch.delta": {"choice": [None, 1.0, 0.5]}, "trim.schedule": {"choice": ["none", "linear"]},
                 "selective_backprop.keep": {"choice": [None, 0.5]}})
    plain, delta_1 = baseline_points(s.dims, s.base_flat)
    assert plain == {"hard_batch.delta": None, "trim.schedule": "none", "selective_backprop.keep": None}
    assert delta_1 == {**plain, "hard_batch.delta": 1.0}


def test_a_space_that_cannot_turn_selective_backprop_off_has_no_baseline_point():
    s = space(**{"selective_backprop.keep": {"choice": [0.5, 0.3]}})
    assert baseline_points(s.dims, s.base_flat) == []


def test_keep_1_is_off_too():
    s = space(**{"selective_backprop.keep": {"choice": [1.0, 0.5]}})
    assert baseline_points(s.dims, s.base_flat) == [{"selective_backprop.keep": 1.0}]
