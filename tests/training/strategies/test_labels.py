"""Strategy labels (`labels.strategy_name`): the short name of the strategies a config turns on."""

import pytest

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.labels import STRATEGY_KEYS, strategy_name


@pytest.mark.parametrize("sets, label", [
    ([], "plain"),
    (["trim.p_end=0.5", "stepwise.epochs=null"], "plain"),  # strategy parameters alone turn nothing on
    (["hard_batch.delta=1"], "delta=1"),  # the fixed partition: 1.0 prints as 1
    (["hard_batch.delta=0.5"], "delta=0.5"),
    (["hard_batch.delta=0.125"], "delta=0.125"),
    (["trim.schedule=linear"], "trim-linear"),
    (["trim.schedule=constant"], "trim-constant"),
    (["stepwise.fractions=A-C-O"], "splits=A-C-O"),  # a named plan keeps its name
    (["stepwise.fractions=[0.25, 1.0]"], "splits=0.25-1"),  # explicit fractions, joined by '-'
    (["hard_batch.delta=0.5", "trim.schedule=cosine", "stepwise.fractions=A-O"], "delta=0.5+trim-cosine+splits=A-O"),
    (["trim.schedule=step", "hard_batch.delta=1"], "delta=1+trim-step"),  # always delta, trim, splits order
    (["hard_batch.delta=0.5", "hard_batch.select=random"], "delta=0.5-random"),  # the random controls
    (["trim.schedule=linear", "trim.select=random"], "trim-linear-random"),
    (["selective_backprop.keep=0.5"], "sb=0.5"),
    (["selective_backprop.keep=1"], "plain"),  # keep 1 trains every sample: off
    (["infobatch.prune_ratio=0.5"], "infobatch=0.5"),
    (["compute_budget=7.5"], "plain@7.5"),  # plain SGD on a compute budget
])
def test_strategy_name(sets, label):
    assert strategy_name(build_config(None, sets)) == label


def test_each_strategy_key_changes_the_label():
    on = {"hard_batch.delta": 0.5, "trim.schedule": "linear", "stepwise.fractions": "A-O",
          "selective_backprop.keep": 0.5, "infobatch.prune_ratio": 0.5, "compute_budget": 3.0}
    needs = {"hard_batch.select": ("random", {"hard_batch.delta": 0.5}),  # a control changes its twin's label
             "trim.select": ("random", {"trim.schedule": "linear"})}
    assert set(on) | set(needs) == set(STRATEGY_KEYS)
    for key in on:
        assert strategy_name(build_config(None, {key: on[key]})) != "plain", key
    for key, (value, twin) in needs.items():
        assert strategy_name(build_config(None, {key: value, **twin})) != strategy_name(build_config(None, twin))
