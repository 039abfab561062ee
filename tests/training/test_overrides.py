"""`--set` items: keys split at dots outside double quotes, the value after the first '=' outside them, empty
parts refused, each key once."""

from __future__ import annotations

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.overrides import parse_sets, set_items, split_key


def test_quoted_parts_hold_dots_and_equals():
    assert split_key('arms."v1.2".fixed') == ("arms", "v1.2", "fixed")
    assert set_items(['arms."delta=1"=null', "optim.lr=1e-3", "x= [1, 2] ", "y="]) == [
        (("arms", "delta=1"), 'arms."delta=1"=null', None), (("optim", "lr"), "optim.lr=1e-3", 0.001),
        (("x",), "x= [1, 2] ", [1, 2]), (("y",), "y=", None)]


@pytest.mark.parametrize("item, key, fragment", [
    ("a..b=1", "a..b", "empty part"), (".b=1", ".b", "empty part"), ("b.=1", "b.", "empty part"),
    ("=3", "--set", "expected KEY=VALUE"), ("novalue", "--set", "expected KEY=VALUE"),
    ('arms."open=1', "--set", "expected KEY=VALUE"), ('a."b=1', "--set", "expected KEY=VALUE"),
    ("optim.lr=[1", "optim.lr", "malformed YAML"),
])
def test_bad_items_name_the_key(item, key, fragment):
    with pytest.raises(UserError) as info:
        set_items([item])
    assert info.value.key == key and fragment in str(info.value)


def test_a_key_twice_is_an_error_naming_both():
    with pytest.raises(UserError) as info:
        parse_sets(["optim.lr=0.1", "epochs=2", "optim.lr=0.2"])
    assert info.value.key == "optim.lr" and "'optim.lr=0.1' and 'optim.lr=0.2'" in str(info.value)
