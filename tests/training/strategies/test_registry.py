"""The strategy registry: each declaration's examples turn it on, and only it; `Strategies.build` composes the
active ones; what the rest of the tool reads is derived from the declarations (gates, baseline, keys); two
strategies that would both choose the samples or both set the loss are refused, not ordered.
(The loop test trains every declaration's examples: tests/training/test_loop.py.)"""

import dataclasses

import pytest
import torch

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.config import Config, build_config
from tune_hardbatch.training.strategies import registry
from tune_hardbatch.training.strategies.base import Strategies
from tune_hardbatch.training.strategies.labels import strategy_keys, strategy_name

NAMES = [d.name for d in registry.declarations()]


def build(cfg):
    return Strategies.build(cfg, torch.Generator(), torch.Generator(), torch.device("cpu"))


@pytest.mark.parametrize("name", NAMES)
def test_each_declarations_examples_turn_on_that_strategy_alone(name):
    decl = registry.declared(name)
    assert decl.examples
    for mapping in decl.examples.values():
        cfg = build_config(mapping)
        assert [d.name for d in registry.active(cfg)] == [name]
        assert strategy_name(cfg) != "plain"
        assert list(build(cfg).members) == [name]


def test_plain_has_no_strategy_and_the_examples_have_distinct_labels():
    assert build(build_config({})).members == {}
    labels = [strategy_name(build_config(m)) for m in registry.examples().values()]
    assert len(set(labels)) == len(labels)


def test_the_baseline_turns_every_declared_strategy_off():
    off = registry.baseline_off()
    assert set(off) == {d.gate_key for d in registry.declarations()}
    assert registry.active(build_config(None, off)) == []
    assert set(off) <= set(strategy_keys())


def test_gates_are_the_strategies_with_conditional_fields():
    assert set(registry.gate_keys()) == {"trim.schedule", "stepwise.fractions"}
    base = build_config({})
    assert not registry.applies("trim.p_end", {}, base)  # no schedule: trimming's fields do not matter
    assert registry.applies("trim.p_end", {"trim.schedule": "linear"}, base)
    assert not registry.applies("trim.step_at", {"trim.schedule": "linear"}, base)
    assert registry.applies("trim.schedule", {}, base) and registry.applies("optim.lr", {}, base)


@pytest.mark.parametrize("hook, existing", [("samples", "infobatch"), ("sets_loss", "trim")])
def test_two_strategies_that_take_the_same_hook_are_refused(monkeypatch, hook, existing):
    """A new strategy that would take over the sampler (or the loss) beside one that already does is one
    error naming its key, whatever the registry order."""
    twin = dataclasses.replace(registry.declared(existing), name="twin", stream=None, rules=None, examples={},
                               choices={})
    monkeypatch.setitem(registry._DECLARED, "twin", twin)
    monkeypatch.setitem(registry._SOURCES, "twin", "test")
    on = {existing: dict(next(iter(registry.declared(existing).examples.values()))[existing])}
    with pytest.raises(UserError) as info:
        build_config({**on, "twin": on[existing]})
    assert info.value.key == f"twin.{twin.gate}" and f"{existing} and twin would both" in str(info.value)


def test_the_reserved_names_are_the_configs_own_fields():
    """`registry.RESERVED` is kept by hand (the registry sits below the config): it must be Config's fields."""
    assert set(registry.RESERVED) == {f.name for f in dataclasses.fields(Config)}


def test_a_declaration_that_takes_a_builtins_name_or_stream_is_refused():
    trim = registry.declared("trim")
    with pytest.raises(UserError, match="which is the built-in strategy 'trim'"):
        registry.register(dataclasses.replace(trim, section=type("Other", (), {})), "x:Y")
    with pytest.raises(UserError, match="which is the config's own"):
        registry.register(dataclasses.replace(trim, name="optim"), "x:Y")
    with pytest.raises(UserError, match="random stream 200, taken by trim"):
        registry.register(dataclasses.replace(trim, name="trim2"), "x:Y")
    assert registry.declared("trim2") is None
