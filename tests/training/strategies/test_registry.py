"""The strategy registry: each entry's examples turn it on, and only it; `build` composes the active ones.
(The loop test trains every entry's examples: tests/test_loop.py.)"""

import pytest
import torch

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.labels import strategy_name
from tune_hardbatch.training.strategies.registry import REGISTRY, build, examples


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_entrys_examples_turn_on_that_entry_alone(name):
    for mapping in REGISTRY[name].examples.values():
        cfg = build_config(mapping)
        assert [n for n, e in REGISTRY.items() if e.on(cfg)] == [name]
        assert strategy_name(cfg) != "plain"
        assert list(build(cfg, torch.Generator(), torch.Generator(), torch.device("cpu")).members) == [name]


def test_plain_has_no_strategy_and_the_examples_have_distinct_labels():
    assert build(build_config({}), torch.Generator(), torch.Generator(), torch.device("cpu")).members == {}
    labels = [strategy_name(build_config(m)) for m in examples().values()]
    assert len(set(labels)) == len(labels)
