"""Step-wise progressive data (SPEC section 3; `strategies.stepwise`): nested subsets of the training set, and the
trainer using the exact plan of its own training set. The plan arithmetic is tested in test_plan.py."""

import torch

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.plan import make_plan
from tune_hardbatch.training.strategies.stepwise import nested_subsets


def forwarded(plan, num_train, batch) -> float:
    """Epoch-equivalents a plan forwards, from what the samplers do: floor(size / b) batches of b per epoch."""
    return sum(st.epochs * (size // (batch * st.batch_multiplier)) * batch * st.batch_multiplier
               for st, size in zip(plan, [int(st.fraction * num_train + 1e-9) for st in plan])) / num_train


def test_subsets_are_nested_prefixes_of_floor_f_m():
    plan = make_plan(build_config({"stepwise": {"fractions": "A-B-C-D-O"}}))
    subsets = nested_subsets(1437, plan, torch.Generator().manual_seed(0))
    assert [len(s) for s in subsets] == [287, 574, 862, 1149, 1437]
    for small, big in zip(subsets, subsets[1:]):
        assert torch.equal(big[: len(small)], small)
    assert sorted(subsets[-1].tolist()) == list(range(1437))
    again = nested_subsets(1437, plan, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(subsets, again))


def test_trainer_uses_the_exact_plan_of_its_training_set():
    from tune_hardbatch.training.loop import Trainer

    cfg = build_config({"device": "cpu", "epochs": 15, "data": {"val_fraction": 0.2},
                        "stepwise": {"fractions": "A-B-C-D-O"}})
    trainer = Trainer(cfg)
    assert trainer.num_train == 1150
    assert trainer.plan == make_plan(cfg, 1150) and trainer.plan != make_plan(cfg)
    assert abs(forwarded(trainer.plan, 1150, 64) - 15) < abs(forwarded(make_plan(cfg), 1150, 64) - 15)
