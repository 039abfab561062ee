"""Strategy labels (`labels.strategy_name`): the short name of the strategies a config turns on."""

import pytest

from tune_hardbatch.config import build_config
from tune_hardbatch.labels import STRATEGY_KEYS, strategy_name


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
])
def test_strategy_name(sets, label):
    assert strategy_name(build_config(None, sets)) == label


def test_each_strategy_key_changes_the_label():
    on = {"hard_batch.delta": 0.5, "trim.schedule": "linear", "stepwise.fractions": "A-O"}
    assert set(on) == set(STRATEGY_KEYS)
    for key in STRATEGY_KEYS:
        assert strategy_name(build_config(None, {key: on[key]})) != "plain", key
