"""The built-in strategies' config rules (`strategies.catalog`, applied by `registry.validate`): each bad delta, trimming p or step is one `UserError` naming
the key; `config.build_config` applies them."""

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.config import Config, apply_overrides, build_config
from tune_hardbatch.training.schedules import TRIM_SCHEDULES
from tune_hardbatch.training.strategies.registry import validate


def check(values: dict) -> None:
    validate(apply_overrides(Config(), values))  # apply_overrides itself validates nothing


@pytest.mark.parametrize("values, key, fragment", [
    ({"hard_batch.delta": 0.0}, "hard_batch.delta", "0 < delta <= 1"),
    ({"hard_batch.delta": -0.1}, "hard_batch.delta", "0 < delta <= 1"),
    ({"hard_batch.delta": 1.5}, "hard_batch.delta", "0 < delta <= 1"),
    ({"trim.p_start": 0.0}, "trim.p_start", "0 < p_start <= 1"),
    ({"trim.p_start": 1.01}, "trim.p_start", "0 < p_start <= 1"),
    ({"trim.p_end": 0.0}, "trim.p_end", "0 < p_end <= 1"),
    ({"trim.p_end": 1.2}, "trim.p_end", "0 < p_end <= 1"),
    ({"trim.schedule": "linear", "trim.p_start": 0.5, "trim.p_end": 0.6}, "trim.p_end", "p_end <= p_start"),
    ({"trim.step_at": 0.0}, "trim.step_at", "0 < step_at < 1"),
    ({"trim.step_at": 1.0}, "trim.step_at", "0 < step_at < 1"),
    ({"stepwise.fractions": [0.5, 0.8]}, "stepwise.fractions", "last fraction must be 1.0"),  # the plan's rules too
    ({"hard_batch.select": "random"}, "hard_batch.select", "needs hard_batch.delta"),
    ({"trim.select": "random"}, "trim.select", "needs a trim.schedule"),
    ({"selective_backprop.keep": 0.0}, "selective_backprop.keep", "0 < keep <= 1"),
    ({"selective_backprop.keep": 1.5}, "selective_backprop.keep", "0 < keep <= 1"),
    ({"selective_backprop.start": 1.0}, "selective_backprop.start", "0 <= start < 1"),
    ({"selective_backprop.start": 0.5, "selective_backprop.end": 0.5}, "selective_backprop.end", "start < end <= 1"),
    ({"selective_backprop.end": 1.1}, "selective_backprop.end", "0 < end <= 1"),
    ({"selective_backprop.interrupt": -1}, "selective_backprop.interrupt", "integer >= 0"),
    ({"infobatch.prune_ratio": 1.0}, "infobatch.prune_ratio", "0 <= prune_ratio < 1"),
    ({"infobatch.prune_ratio": -0.1}, "infobatch.prune_ratio", "0 <= prune_ratio < 1"),
    ({"infobatch.anneal": 0.0}, "infobatch.anneal", "0 < anneal <= 1"),
    ({"infobatch.prune_ratio": 0.5, "hard_batch.delta": 0.5}, "infobatch.prune_ratio", "with hard_batch.delta set"),
    ({"infobatch.prune_ratio": 0.5, "stepwise.fractions": "A-O"}, "infobatch.prune_ratio", "stepwise.fractions set"),
    ({"compute_budget": 0.0}, "compute_budget", "a number > 0"),
    ({"compute_budget": 3.0, "trim.schedule": "linear"}, "compute_budget", "plain SGD only, but trim.schedule"),
    ({"compute_budget": 3.0, "selective_backprop.keep": 0.5}, "compute_budget", "selective_backprop.keep"),
])
def test_bad_strategy_values_name_the_key(values, key, fragment):
    with pytest.raises(UserError) as info:
        check(values)
    assert info.value.key == key and fragment in str(info.value)


@pytest.mark.parametrize("values", [
    {},
    {"hard_batch.delta": 1.0}, {"hard_batch.delta": 0.01},  # the bounds: 1 included, anything above 0
    {"trim.p_start": 1.0, "trim.p_end": 1.0},
    {"trim.schedule": "linear", "trim.p_start": 0.5, "trim.p_end": 0.5},  # equal is not increasing
    {"trim.schedule": "step", "trim.step_at": 0.99},
])
def test_values_at_the_bounds_pass(values):
    check(values)


def test_p_end_above_p_start_is_refused_exactly_for_schedules_that_go_from_p_start_to_p_end():
    """Read off the registry: a schedule that starts at p_start and ends at p_end decreases p, so it refuses
    p_end > p_start; one that ignores p_start (constant, none) does not care. A schedule added to the registry
    is covered at once."""
    for name, p in TRIM_SCHEDULES.items():
        goes_from_start_to_end = (p(0.0, 0.9, 0.3, 0.5) == pytest.approx(0.9)
                                  and p(1.0, 0.9, 0.3, 0.5) == pytest.approx(0.3))
        values = {"trim.schedule": name, "trim.p_start": 0.5, "trim.p_end": 0.6}
        if goes_from_start_to_end:
            with pytest.raises(UserError, match=rf"^trim\.p_end: got 0\.6 > trim\.p_start 0\.5; the {name} "):
                check(values)
        else:
            check(values)
    assert {"linear", "cosine", "step"} <= set(TRIM_SCHEDULES)  # the decreasing ones the rule was written for


def test_build_config_applies_the_strategy_rules():
    with pytest.raises(UserError, match=r"^hard_batch\.delta: got 0\.0"):
        build_config({"hard_batch": {"delta": 0}})
    assert build_config(None, ["hard_batch.delta=0.5"]).hard_batch.delta == 0.5
