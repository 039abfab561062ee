"""Stateless schedules (`tune_hardbatch.training.schedules`): the learning rate per step, the trimming fraction p per
epoch, and the registries that config validation reads."""

import math

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.schedules import LR_SCHEDULES, TRIM_SCHEDULES, lr_at, p_at


def test_linear_schedule_end_points_and_constant_within_epoch():
    assert p_at("linear", 0, 10, 1.0, 0.2) == 1.0
    assert math.isclose(p_at("linear", 9, 10, 1.0, 0.2), 0.2)
    values = [p_at("linear", e, 10, 1.0, 0.2) for e in range(10)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_other_schedules():
    assert math.isclose(p_at("cosine", 0, 5, 0.9, 0.3), 0.9)
    assert math.isclose(p_at("cosine", 4, 5, 0.9, 0.3), 0.3)
    assert math.isclose(p_at("cosine", 2, 5, 0.9, 0.3), 0.6)
    assert [p_at("step", e, 10, 1.0, 0.4) for e in range(10)] == [1.0] * 5 + [0.4] * 5
    assert p_at("constant", 3, 10, 1.0, 0.35) == 0.35
    assert p_at("none", 3, 10, 0.5, 0.2) == 1.0


@pytest.mark.parametrize("schedule", ["linear", "cosine", "step", "constant", "none"])
def test_one_epoch_does_not_divide_by_zero(schedule):
    p = p_at(schedule, 0, 1, 0.8, 0.2)
    assert 0 < p <= 1


def test_lr_schedules_shape():
    assert [lr_at("none", s, 8, 0.1) for s in (0, 7)] == [0.1, 0.1]
    assert [lr_at("step", s, 8, 1.0) for s in range(8)] == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_at("cosine", 0, 10, 0.2) == 0.2 and lr_at("cosine", 5, 10, 0.2) == pytest.approx(0.1)
    up = [lr_at("onecycle", s, 100, 1.0) for s in range(100)]
    assert up[0] == pytest.approx(1 / 25) and max(up) == pytest.approx(1.0) and up.index(max(up)) == 25
    assert up[-1] == pytest.approx(1 / 75) and all(a >= b for a, b in zip(up[25:], up[26:]))


def test_cosine_matches_the_closed_forms_exactly():
    """One `cosine` shape serves both families without changing a bit of either closed form."""
    for s in range(11):
        t = s / 10
        assert lr_at("cosine", s, 10, 0.37) == 0.37 * 0.5 * (1 + math.cos(math.pi * t))
        assert p_at("cosine", s, 11, 0.9, 0.3) == 0.3 + (0.9 - 0.3) * (1 + math.cos(math.pi * t)) / 2


def test_unknown_names_raise():
    with pytest.raises(ValueError):
        lr_at("linear", 0, 10, 0.1)  # a trim schedule, not an LR one
    with pytest.raises(ValueError):
        p_at("onecycle", 0, 10)


@pytest.mark.parametrize("key, registry", [("optim.schedule", LR_SCHEDULES), ("trim.schedule", TRIM_SCHEDULES)])
def test_config_validation_reads_the_registries(key, registry):
    for name in registry:
        build_config(None, {key: name})
    with pytest.raises(UserError) as err:
        build_config(None, {key: "sawtooth"})
    assert err.value.key == key and all(name in str(err.value) for name in registry)
