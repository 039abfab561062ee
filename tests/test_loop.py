"""The training loop: every strategy trains, accounting is exact, resume continues exactly."""

import math

import pytest
import torch

from tune_hardbatch.config import build_config
from tune_hardbatch.loop import Trainer
from tune_hardbatch.strategies.stepwise import make_plan, stage_sizes

STRATEGIES = {
    "plain": {},
    "fixed_partition": {"hard_batch": {"delta": 1.0}},
    "delta": {"hard_batch": {"delta": 0.5}},
    "trim": {"trim": {"schedule": "linear", "p_start": 1.0, "p_end": 0.3}},
    "stepwise": {"stepwise": {"fractions": "A-C-O"}},
    "all_three": {"hard_batch": {"delta": 0.5}, "trim": {"schedule": "linear", "p_end": 0.5},
                  "stepwise": {"fractions": "A-C-O"}},
}


def train(mapping):
    trainer = Trainer(build_config({"device": "cpu", **mapping}))
    return trainer, list(trainer.run())


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_trains_digits_well_above_chance(name):
    trainer, reports = train({"epochs": 10 if name == "plain" else 8, **STRATEGIES[name]})
    final = reports[-1]
    assert final["test_top1"] > (90.0 if name == "plain" else 60.0), final  # chance is 10%
    assert final["train_loss"] < reports[0]["train_loss"]
    assert trainer.pos.finished and not trainer.pos.diverged
    assert all(not math.isnan(r["test_loss"]) for r in reports)


def test_plain_and_delta_accounting_is_exact():
    trainer, reports = train({"epochs": 5, "hard_batch": {"delta": 0.2}})
    n, b, m = 1437 // 64, 64, 1437
    assert [r["backprops"] for r in reports] == [n * (e + 1) for e in range(5)]  # exactly E * N
    assert trainer.samplers[0].loaded == 5 * n  # batches loaded == back-propagations
    assert reports[-1]["samples_forward"] == 5 * n * b == reports[-1]["samples_with_grad"]
    assert math.isclose(reports[-1]["epoch_equiv"], 5 * n * b / m)
    assert all(r["delta"] == 0.2 and r["stage"] == 1 for r in reports)


def test_trimming_counts_only_samples_whose_loss_contributes():
    _, reports = train({"epochs": 3, "trim": {"schedule": "constant", "p_end": 0.25}})
    n = 1437 // 64
    assert reports[-1]["samples_forward"] == 3 * n * 64
    assert reports[-1]["samples_with_grad"] == 3 * n * 16
    assert all(r["p"] == 0.25 for r in reports)


def test_stepwise_stages_have_their_batch_size_lr_and_exact_sample_accounting():
    cfg = build_config({"device": "cpu", "optim": {"schedule": "none", "lr": 0.05},
                        "stepwise": {"fractions": [0.4, 1.0], "epochs": [2, 1], "batch_multipliers": [2, 1],
                                     "lr_multipliers": [0.1, 1.0]}})
    trainer = Trainer(cfg)
    sizes = stage_sizes(1437, make_plan(cfg))
    assert sizes == [574, 1437]
    assert [len(s.subset if hasattr(s, "subset") else s.batches.flatten()) for s in trainer.samplers] == \
        [574, 1437]
    reports = list(trainer.run())
    assert [r["stage"] for r in reports] == [1, 1, 2]
    assert [r["lr"] for r in reports] == pytest.approx([0.005, 0.005, 0.05])
    n1, n2 = 574 // 128, 1437 // 64
    assert [r["backprops"] for r in reports] == [n1, 2 * n1, 2 * n1 + n2]
    forwarded = 2 * n1 * 128 + n2 * 64
    assert reports[-1]["samples_forward"] == forwarded
    assert math.isclose(reports[-1]["epoch_equiv"], forwarded / 1437)


def test_optimizer_state_carries_across_stages():
    cfg = build_config({"device": "cpu", "stepwise": {"fractions": [0.5, 1.0], "epochs": [1, 1]}})
    trainer = Trainer(cfg)
    run = trainer.run()
    next(run)
    param = next(iter(trainer.model.parameters()))
    buf_after_stage1 = trainer.optimizer.state[param]["momentum_buffer"].clone()
    steps_stage1 = trainer.samplers[0].num_batches
    next(run)
    assert trainer.optimizer.state[param]["momentum_buffer"] is not None
    assert trainer.samplers[1].loaded == trainer.samplers[1].num_batches
    assert not torch.equal(buf_after_stage1, trainer.optimizer.state[param]["momentum_buffer"])
    assert steps_stage1 == (1437 // 2) // 64


def test_resume_from_a_state_dict_continues_exactly():
    mapping = {"device": "cpu", "epochs": 4, "hard_batch": {"delta": 0.5}, "trim": {"schedule": "linear"}}
    _, straight = train(mapping)
    first = Trainer(build_config(mapping))
    run = first.run()
    reports = [next(run), next(run)]
    state = first.state_dict()
    second = Trainer(build_config(mapping))
    second.load_state_dict(state)
    reports += list(second.run())
    assert [r["backprops"] for r in reports] == [r["backprops"] for r in straight]
    for a, b in zip(reports, straight):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["test_top1"] == pytest.approx(b["test_top1"], abs=1e-6)


def test_divergence_stops_the_run_and_is_reported():
    trainer, reports = train({"epochs": 6, "optim": {"lr": 1e6, "schedule": "none"}})
    assert trainer.pos.diverged
    assert reports[-1]["diverged"] == 1 and len(reports) < 6


def test_evaluation_uses_eval_mode_on_the_whole_test_set():
    trainer = Trainer(build_config({"device": "cpu", "eval_batch_size": 7}))
    seen = []
    trainer.model.register_forward_pre_hook(lambda mod, args: seen.append((mod.training, args[0].shape[0])))
    test = trainer.evaluate()
    assert all(not training for training, _ in seen)
    assert sum(n for _, n in seen) == 360  # no drop_last: 51 batches of 7 and one of 3
    assert trainer.model.training
    assert 0 <= test["test_top1"] <= test["test_top5"] <= 100


def test_cifar_jpeg_subset_through_imagefolder_learns(cifar_subset):
    _, reports = train({"epochs": 4, "data": {"name": "imagefolder", "root": str(cifar_subset)},
                        "optim": {"batch_size": 100, "lr": 0.05}})
    assert reports[-1]["test_top1"] > 20.0  # chance is 10% on 10 balanced classes
