"""A strategy's declaration (`Declaration`): when it is on, its keys, which of its fields apply."""

from types import SimpleNamespace

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.catalog import BUILTIN


def declared(name):
    return next(d for d in BUILTIN if d.name == name)


def test_on_is_the_gate_outside_its_off_values():
    sb = declared("selective_backprop")
    assert sb.gate_key == "selective_backprop.keep"
    assert not sb.on(build_config({})) and not sb.on(build_config({"selective_backprop": {"keep": 1.0}}))
    assert sb.on(build_config({"selective_backprop": {"keep": 0.5}}))  # 1.0 keeps every sample: off too


def test_keys_are_its_section_fields_in_order():
    assert declared("trim").keys == ["trim.schedule", "trim.p_start", "trim.p_end", "trim.step_at", "trim.select"]


def test_only_the_fields_its_rule_names_apply_and_the_gate_always_does():
    trim = declared("trim")
    constant = SimpleNamespace(schedule="constant", p_start=1.0, p_end=0.5, step_at=0.5, select="largest")
    assert trim.field_applies("schedule", constant) and trim.field_applies("p_end", constant)
    assert not trim.field_applies("p_start", constant) and not trim.field_applies("step_at", constant)
    assert declared("hard_batch").field_applies("select", SimpleNamespace(delta=None, select="hardest"))
