"""Step-wise progressive data (SPEC section 3): plans, nested subsets, multipliers."""

import pytest
import torch

from tune_hardbatch.config import build_config
from tune_hardbatch.strategies.plan import stage_epoch_equivs
from tune_hardbatch.strategies.stepwise import (
    default_batch_multipliers,
    default_epochs,
    default_lr_multipliers,
    make_plan,
    nested_subsets,
    resolve_fractions,
    stage_at,
)


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


# the cases at 15 epochs: (plan, M, B, epoch-equivalents forwarded by the old equal-epoch default)
BUDGET_CASES = [("A-C-O", 50000, 512, 14.172), ("A-B-C-D-O", 1437, 64, 13.807), ("B-O", 50000, 512, 15.319)]


def forwarded(plan, num_train, batch) -> float:
    """Epoch-equivalents a plan forwards, from what the samplers do: floor(size / b) batches of b per epoch."""
    return sum(st.epochs * (size // (batch * st.batch_multiplier)) * batch * st.batch_multiplier
               for st, size in zip(plan, [int(st.fraction * num_train + 1e-9) for st in plan])) / num_train


@pytest.mark.parametrize("splits, m, b, before", BUDGET_CASES)
def test_default_epochs_match_the_budget_as_whole_epochs_allow(splits, m, b, before):
    cfg = build_config({"epochs": 15, "optim": {"batch_size": b}, "stepwise": {"fractions": splits}})
    old = [max(1, round(15 / sum(resolve_fractions(splits))))] * len(resolve_fractions(splits))
    assert forwarded([st.__class__(st.index, st.fraction, e, st.batch_multiplier, st.lr_multiplier)
                      for st, e in zip(make_plan(cfg), old)], m, b) == pytest.approx(before, abs=1e-3)
    plan = make_plan(cfg, m)
    after = forwarded(plan, m, b)
    assert abs(after - 15) < abs(before - 15) and abs(after - 15) < 0.1, (after, [st.epochs for st in plan])
    epochs = [st.epochs for st in plan]
    assert max(epochs) - min(epochs) <= 1  # near-equal
    # no other choice of e / e + 1 per stage comes closer
    import itertools

    e = min(epochs)
    best = min(abs(forwarded([st.__class__(st.index, st.fraction, e + x, st.batch_multiplier, 1.0)
                              for st, x in zip(plan, extra)], m, b) - 15)
               for extra in itertools.product((0, 1), repeat=len(plan)))
    assert abs(after - 15) == pytest.approx(best)


def test_default_epochs_ties_and_the_fraction_approximation():
    # fractions only (the search side): 15 / (0.2 + 0.6 + 1.0) = 8.33 -> 8 each (14.4), +1 on C gives 15.0
    assert default_epochs((0.2, 0.6, 1.0), 15) == (8, 9, 8)
    assert make_plan(build_config({"epochs": 15, "stepwise": {"fractions": "A-C-O"}}))[1].epochs == 9
    assert default_epochs((0.2, 0.4, 0.6, 0.8, 1.0), 9) == (3,) * 5  # exact: no extra epoch
    # ties: fewer extra epochs first (e + 1 everywhere == e + 1 with none extra), then later stages first
    assert default_epochs((0.5, 1.0), 3) == (2, 2) and default_epochs((0.5, 0.5, 1.0), 5) == (2, 2, 3)
    assert default_epochs((0.5, 0.5, 1.0), 4.5) == (2, 3, 2)
    assert default_epochs((0.5, 0.5), 1.5) == (1, 2)
    assert default_epochs((0.2, 1.0), 0.5) == (1, 1)  # at least one epoch per stage
    assert default_epochs((0.2, 1.0), 15, stage_ee=(0.0, 0.0)) == default_epochs((0.2, 1.0), 15)


def test_stage_epoch_equivs_count_whole_batches():
    cfg = build_config({"optim": {"batch_size": 64}, "stepwise": {"fractions": "A-B-C-D-O"}})
    assert stage_epoch_equivs(make_plan(cfg), 1437, 64) == pytest.approx(
        [256 / 1437, 512 / 1437, 768 / 1437, 1024 / 1437, 1408 / 1437])  # 4 batches of 64, 128, 192, 256; 22
    explicit = build_config({"stepwise": {"fractions": "A-O", "epochs": [3, 4]}})
    assert [st.epochs for st in make_plan(explicit, 1437)] == [3, 4]  # explicit epochs are kept


def test_trainer_uses_the_exact_plan_of_its_training_set():
    from tune_hardbatch.loop import Trainer

    cfg = build_config({"device": "cpu", "epochs": 15, "data": {"val_fraction": 0.2},
                        "stepwise": {"fractions": "A-B-C-D-O"}})
    trainer = Trainer(cfg)
    assert trainer.num_train == 1150
    assert trainer.plan == make_plan(cfg, 1150) and trainer.plan != make_plan(cfg)
    assert abs(forwarded(trainer.plan, 1150, 64) - 15) < abs(forwarded(make_plan(cfg), 1150, 64) - 15)
