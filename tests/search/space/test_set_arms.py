"""`--set` on arms and dimensions: only what exists is dropped or changed; names holding '=' or '.' are reached
quoted (or, with '.', whole); a typo is an error listing the names the space has."""

from __future__ import annotations

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.search.space.sets import apply_space_sets

RAW = {"space": {"optim.lr": {"loguniform": [0.01, 0.1]}},
       "arms": {"plain": {}, "delta=1": {"fixed": {"hard_batch.delta": 1.0}},
                "v1.2": {"fixed": {"trim": {"schedule": "linear"}}, "space": {"trim.p_end": {"uniform": [0.2, 0.5]}}}}}


@pytest.mark.parametrize("item, arms, dims", [
    ('arms."delta=1"=null', ["plain", "v1.2"], ["optim.lr"]),
    ("arms.v1.2=null", ["plain", "delta=1"], ["optim.lr"]),
    ('arms."v1.2"=null', ["plain", "delta=1"], ["optim.lr"]),
    ("space.optim.lr=null", ["plain", "delta=1", "v1.2"], []),
    ("arms.new={fixed: {trim.schedule: step}}", ["plain", "delta=1", "v1.2", "new"], ["optim.lr"]),
])
def test_drop_or_add_what_is_named(item, arms, dims):
    raw = apply_space_sets(RAW, [item])
    assert list(raw["arms"]) == arms and list(raw["space"]) == dims
    assert list(RAW["arms"]) == ["plain", "delta=1", "v1.2"]  # the caller's mapping is left alone


def test_a_part_of_an_arm_is_changed_in_place():
    raw = apply_space_sets(RAW, ['arms."v1.2".fixed.trim.p_start=0.9', "arms.v1.2.space.trim.p_end=null",
                                 'arms."delta=1".fixed.hard_batch.select=random'])
    assert raw["arms"]["v1.2"] == {"fixed": {"trim.schedule": "linear", "trim.p_start": 0.9}, "space": {}}
    assert raw["arms"]["delta=1"]["fixed"] == {"hard_batch.delta": 1.0, "hard_batch.select": "random"}


@pytest.mark.parametrize("item, key, fragment", [
    ("arms.trimm=null", "arms.trimm", "no arm named 'trimm'"),
    ("arms.delta=1=null", "arms.delta", "did you mean 'delta=1'? quote a name"),
    ("arms.nope.fixed.trim.p_end=0.3", "arms.nope", "the space's arms: 'plain', 'delta=1', 'v1.2'"),
    ("space.optim.lrr=null", "space.optim.lrr", "space has: optim.lr"),
    ("arms.v1.2.space.optim.lr=null", "arms.v1.2.space.optim.lr", "has: trim.p_end"),
    ("arms.plain.fixed.trim.p_end=null", "arms.plain.fixed.trim.p_end", "has: none"),
    ("arms=null", "arms", "needs a key inside the section"),
    ("arms.gamma=1=null", "arms.gamma", "a new arm is a mapping {fixed: {...}, space: {...}}, got '1=null'"),
])
def test_what_does_not_exist_is_an_error_listing_what_does(item, key, fragment):
    with pytest.raises(UserError) as info:
        apply_space_sets(RAW, [item])
    assert info.value.key == key and fragment in str(info.value), str(info.value)


def test_dropping_an_arm_from_a_space_without_arms_lists_none():
    with pytest.raises(UserError, match="the space's arms: none"):
        apply_space_sets({"space": {}}, ["arms.trim=null"])
