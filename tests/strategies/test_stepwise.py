"""Step-wise progressive data (SPEC section 3): plans, nested subsets, multipliers."""

import pytest
import torch

from tune_hardbatch.config import build_config
from tune_hardbatch.strategies.stepwise import (default_batch_multipliers, default_lr_multipliers, make_plan,
                                                nested_subsets, resolve_fractions, stage_at)


def test_named_plans_resolve_to_the_papers_fractions():
    assert resolve_fractions("A-B-C-D-O") == (0.2, 0.4, 0.6, 0.8, 1.0)
    assert resolve_fractions("A-C-O") == (0.2, 0.6, 1.0)
    assert resolve_fractions(None) == (1.0,)
    with pytest.raises(ValueError, match="unknown split 'X'"):
        resolve_fractions("A-X-O")


def test_paper_defaults_for_multipliers():
    assert default_batch_multipliers((0.2, 0.4, 0.6, 0.8, 1.0)) == (1, 2, 3, 4, 1)
    assert default_batch_multipliers((0.2, 0.6, 1.0)) == (1, 3, 1)
    assert default_lr_multipliers(5) == (1.0, 0.02, 0.02, 0.02, 1.0)
    assert default_lr_multipliers(2) == (1.0, 1.0)


def test_plan_from_config_and_default_epochs_give_equal_compute():
    cfg = build_config({"epochs": 9, "stepwise": {"fractions": "A-B-C-D-O"}})
    plan = make_plan(cfg)
    assert [st.epochs for st in plan] == [3] * 5  # 3 epochs x (0.2+0.4+0.6+0.8+1.0) = 9 epoch-equivalents
    explicit = build_config({"stepwise": {"fractions": [0.5, 1.0], "epochs": [2, 4],
                                          "batch_multipliers": [2, 1], "lr_multipliers": [0.5, 1.0]}})
    assert [(s.fraction, s.epochs, s.batch_multiplier, s.lr_multiplier) for s in make_plan(explicit)] == \
        [(0.5, 2, 2, 0.5), (1.0, 4, 1, 1.0)]
    single = make_plan(build_config({"epochs": 7}))
    assert len(single) == 1 and single[0].epochs == 7 and single[0].fraction == 1.0


def test_subsets_are_nested_prefixes_of_floor_f_m():
    plan = make_plan(build_config({"stepwise": {"fractions": "A-B-C-D-O"}}))
    subsets = nested_subsets(1437, plan, torch.Generator().manual_seed(0))
    assert [len(s) for s in subsets] == [287, 574, 862, 1149, 1437]
    for small, big in zip(subsets, subsets[1:]):
        assert torch.equal(big[: len(small)], small)
    assert sorted(subsets[-1].tolist()) == list(range(1437))
    again = nested_subsets(1437, plan, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(subsets, again))


def test_stage_at_maps_global_epochs():
    plan = make_plan(build_config({"stepwise": {"fractions": [0.5, 1.0], "epochs": [2, 3]}}))
    assert [stage_at(e, plan) for e in range(5)] == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError):
        stage_at(5, plan)
