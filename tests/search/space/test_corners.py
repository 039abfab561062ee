"""Every corner of a space validated before anything starts (`space.corners`), and the epoch-equivalent budget
(ASHA's max_t) as the largest corner's. No Ray here."""

import pytest
from search_helpers import BASE

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP
from tune_hardbatch.search.space import corners as K
from tune_hardbatch.search.space.distributions import parse_dims
from tune_hardbatch.training.config import build_config


def corners_of(space: dict, base: dict = None, searcher: str = "random"):
    """(budget, corners) of a space over a base config (given as dotted keys)."""
    return K.validate_corners(build_config(None, base or {}), parse_dims(space, searcher))


def test_a_bad_corner_names_the_space_key_its_value_and_the_rule():
    with pytest.raises(UserError) as info:
        corners_of({"hard_batch.delta": {"uniform": [0, 1]}})
    assert info.value.key == "space.hard_batch.delta"
    assert str(info.value).startswith("space.hard_batch.delta: uniform [0.0, 1.0] allows 0.0: got 0.0; allowed: "
                                      "0 < delta <= 1")
    with pytest.raises(UserError) as info:  # with the other dimensions' values of that corner
        corners_of({"optim.lr": {"choice": [0.1]}, "hard_batch.delta": {"choice": [1.0, 1.5]}})
    assert info.value.key == "space.hard_batch.delta" and "allows 1.5 (with optim.lr=0.1): got 1.5" in str(info.value)
    with pytest.raises(UserError) as info:  # through validate_space, as `search` does
        SP.validate_space({"base": BASE, "space": {"hard_batch.delta": {"uniform": [0, 1]}}})
    assert info.value.key == "space.hard_batch.delta"


def test_a_base_key_broken_by_a_corner_names_that_key_and_the_corner():
    base = {"trim.p_start": 0.5, "trim.p_end": 0.8}  # fine while trimming is off
    with pytest.raises(UserError) as info:
        corners_of({"trim.schedule": {"choice": ["none", "linear"]}}, base)
    assert info.value.key == "trim.p_end"
    assert str(info.value).endswith("p_end <= p_start; with space values trim.schedule='linear'")


def test_inactive_parameters_make_no_corners_of_their_own():
    budget, corners = corners_of({"trim.schedule": {"choice": ["none", "linear"]},
                                  "trim.p_end": {"uniform": [0.1, 0.5]}}, {"epochs": 3})
    assert [values for values, _ in corners] == [
        {"trim.schedule": "none"},  # p_end does not apply: one corner, not two
        {"trim.schedule": "linear", "trim.p_end": 0.1},
        {"trim.schedule": "linear", "trim.p_end": 0.5}]
    assert [cfg.trim.p_end for _, cfg in corners] == [0.2, 0.1, 0.5]  # 0.2: the default, untouched
    assert budget == 3.0


def test_budget_is_the_largest_corners_epoch_equivalents():
    budget, corners = corners_of({"stepwise.fractions": {"choice": [None, [0.5, 1.0]]},
                                  "stepwise.epochs": {"choice": [[2, 2], [6, 10]]}}, {"epochs": 4})
    # no plan: 4; [2, 2] x [0.5, 1.0]: 1 + 2 = 3; [6, 10]: 3 + 10 = 13
    assert len(corners) == 3 and budget == 13.0
    # every stage runs at least one epoch: A-O forwards 0.2 + 1.0 of a 1-epoch budget
    assert corners_of({"stepwise.fractions": {"choice": [None, "A-O"]}}, {"epochs": 1})[0] == pytest.approx(1.2)
    assert corners_of({}, {"epochs": 7}) == (7.0, [({}, build_config(None, {"epochs": 7}))])
    spec = SP.validate_space({"base": {**BASE, "epochs": 4}, "space": {
        "stepwise.fractions": {"choice": [None, [0.5, 1.0]]}, "stepwise.epochs": {"choice": [[2, 2], [6, 10]]}}})
    assert spec.budget == 13.0  # what ASHA's max_t is


def test_above_max_corners_each_dimension_is_checked_with_the_others_at_their_first_corner(monkeypatch):
    space = {"seed": {"choice": [0, 1]}, "optim.lr": {"choice": [0.1, 0.2]}, "epochs": {"choice": [2, 3]}}
    assert len(corners_of(space)[1]) == 8  # 2 x 2 x 2, all of them
    monkeypatch.setattr(K, "MAX_CORNERS", 7)
    budget, corners = corners_of(space, {"epochs": 1})
    assert sorted(tuple(v.values()) for v, _ in corners) == [(0, 0.1, 2), (0, 0.1, 3), (0, 0.2, 2), (1, 0.1, 2)]
    assert budget == 3.0
    with pytest.raises(UserError, match=r"^space\.optim\.lr: choice \[0\.1, -0\.2\] allows -0\.2"):
        corners_of({**space, "optim.lr": {"choice": [0.1, -0.2]}})  # every value is still tried
