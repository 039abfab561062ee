"""`training.ranges`: the Range type, its text, and every numeric key of the training config and of every
declared strategy's section has one (so none is left unchecked)."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.config import Config
from tune_hardbatch.training.ranges import CONFIG_RANGES, Range, check, describe
from tune_hardbatch.training.strategies import registry

NUMERIC = (int, float)


def _numeric(hint) -> bool:
    """int, float, Optional of them, or a tuple of them (a list of numbers)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return any(a in NUMERIC or typing.get_origin(a) is tuple and typing.get_args(a)[0] in NUMERIC for a in args)


def numeric_fields(cls, prefix="") -> list[str]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.default_factory) if callable(f.default_factory) else False:
            out += numeric_fields(f.default_factory, f"{prefix}{f.name}.")
        elif _numeric(hints[f.name]) and not (hints[f.name] is bool):
            out.append(f"{prefix}{f.name}")
    return out


def test_every_numeric_key_has_a_range():
    config_keys = numeric_fields(Config)
    assert "optim.lr" in config_keys and "data.pad" in config_keys  # the walk sees nested sections
    assert sorted(set(config_keys) - set(CONFIG_RANGES)) == []
    for d in registry.declarations():
        missing = [k for k in numeric_fields(d.section) if k not in d.ranges]
        assert missing == [], f"{d.name}: numeric fields without a range: {missing}"


@pytest.mark.parametrize("rng, text", [
    (Range(1, integer=True), "an integer >= 1"),
    (Range(0, 1, low_open=True, null="off"), "0 < keep <= 1, or null (off)"),
    (Range(0, 1, high_open=True), "0 <= keep < 1"),
    (Range(1, 5, integer=True), "an integer 1 <= keep <= 5"),
    (Range(high=3), "a number <= 3"),
])
def test_describe(rng, text):
    assert describe(rng, "keep") == text


def test_check_names_the_key_the_value_and_the_range():
    rng = Range(0, 1, low_open=True, why="a share")
    for bad in (0, 1.5, True, float("nan"), None, "x"):
        with pytest.raises(UserError) as info:
            check("trim.p_end", bad, rng)
        assert str(info.value).startswith("trim.p_end: got ") and "0 < p_end <= 1 (p_end: a share)" in str(info.value)
    check("trim.p_end", 1, rng)
    check("trim.p_end", 0.5, rng)
    with pytest.raises(UserError, match=r"each entry an integer >= 1"):
        check("stepwise.epochs", (2, 0), Range(1, integer=True))
    with pytest.raises(UserError):
        check("n", 3.0, Range(1, integer=True))  # sections take integers as typed; the config coerces 3.0 first
