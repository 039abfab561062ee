"""Strategy labels and families (`labels`): the short name of the strategies a config turns on, and what it is
compared as, both from the declarations."""

import pytest

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.labels import strategy_family, strategy_keys, strategy_name


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
    assert set(on) | set(needs) == set(strategy_keys())
    for key in on:
        assert strategy_name(build_config(None, {key: on[key]})) != "plain", key
    for key, (value, twin) in needs.items():
        assert strategy_name(build_config(None, {key: value, **twin})) != strategy_name(build_config(None, twin))


@pytest.mark.parametrize("sets, family", [
    ([], "plain"),
    (["hard_batch.delta=1"], "delta=1"),  # the paper's fixed partition is a baseline of its own
    (["hard_batch.delta=1", "hard_batch.select=random"], "delta-random"),
    (["hard_batch.delta=0.5"], "delta"),
    (["hard_batch.delta=0.5", "hard_batch.select=random"], "delta-random"),
    (["trim.schedule=linear", "trim.select=random"], "trim-random"),
    (["hard_batch.delta=0.5", "trim.schedule=cosine", "stepwise.fractions=A-O"], "delta+trim+splits"),
    (["stepwise.fractions=[0.25, 1.0]"], "splits"),
    (["hard_batch.delta=1", "trim.schedule=cosine", "stepwise.fractions=[0.5, 1.0]"], "delta=1+trim+splits"),
    (["selective_backprop.keep=0.5"], "sb"),
    (["infobatch.prune_ratio=0.5"], "infobatch"),
    (["compute_budget=7.46"], "plain@budget"),
])
def test_strategy_family(sets, family):
    assert strategy_family(build_config(None, sets)) == family
