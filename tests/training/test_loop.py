"""The training loop: every strategy trains, accounting is exact, resume continues exactly."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from portable_loop import RECORDED, run_portable

from tune_hardbatch.metrics import convergence_epoch, json_safe
from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.loop import Trainer
from tune_hardbatch.training.strategies.plan import make_plan, stage_sizes
from tune_hardbatch.training.strategies.registry import declarations, examples

# plain SGD's bar, and the paper's three strategies at once (each strategy alone meets a bar of 60% in
# test_every_registered_strategy_trains_counts_its_compute_and_resumes_exactly)
STRATEGIES = {
    "plain": {},
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


# ---------------------------------------------------------------------------------------------------
# the strategy interface: every registered strategy, the seeds' ones unchanged, one compute axis


SPENDS_LESS = {n for d in declarations() if d.saves_compute for n in d.examples}


@pytest.mark.parametrize("name", list(examples()))
def test_every_registered_strategy_trains_counts_its_compute_and_resumes_exactly(name):
    """A few epochs of each registry example on digits: it learns, its compute is counted, and a run
    continued from a state dict after its second report repeats the straight run bit for bit."""
    mapping = {"device": "cpu", "epochs": 4, "data": {"train_limit": 600}, **examples()[name]}
    trainer, straight = train(mapping)
    last = straight[-1]
    assert last["test_top1"] > 60, last  # chance is 10%; 4 epochs of 600 digits reach 68-96% (seed 0)
    assert last["compute_equiv"] == pytest.approx(
        (last["samples_forward"] + 2 * last["samples_backward"]) / (3 * trainer.num_train))
    assert last["samples_with_grad"] <= last["samples_backward"] <= last["samples_forward"]
    if name in SPENDS_LESS:  # what `Declaration.saves_compute` promises the confirmation's budget matching
        assert last["compute_equiv"] < 0.95 * mapping["epochs"]
    else:
        assert all(r["compute_equiv"] == r["epoch_equiv"] for r in straight)
    first = Trainer(build_config(mapping))
    run = first.run()
    resumed = [next(run), next(run)]
    second = Trainer(build_config(mapping))
    second.load_state_dict(first.state_dict())
    resumed += list(second.run())
    assert [json_safe(r) for r in resumed] == [json_safe(r) | {k: r2[k] for k in TIMES}
                                               for r, r2 in zip(straight, resumed)]


TIMES = ("time_train_s", "time_eval_s", "img_per_s")  # wall clock: the only values a resume may change


@pytest.fixture(scope="module")
def portable_reports(request):
    """The recorded cases' reports on the portable kernels, for the cases of this module's selected tests only
    (`-k trim` runs trim's), all in one go: in parallel child processes (`run_portable`)."""
    names = [item.callspec.params["name"] for item in request.session.items
             if getattr(item, "module", None) is request.module and "portable_reports" in item.fixturenames]
    return run_portable(list(dict.fromkeys(names)))


@pytest.mark.e2e  # child processes on the baseline kernels: ~20 s for the six cases
@pytest.mark.parametrize("name", json.loads(RECORDED.read_text())["cases"])
def test_the_seeds_strategies_on_the_interface_give_the_recorded_metrics_bit_for_bit(name, portable_reports):
    """Every report key, compared exactly with the recording, on kernels every x86-64 CPU computes alike
    (`portable_loop`: a CPU's own kernels change the 7th digit, and a few steps later whole samples): a change
    to a strategy or the loop that moves any metric of any recorded case fails here."""
    assert portable_reports[name] == json.loads(RECORDED.read_text())["cases"][name]["reports"]


def test_selective_backprop_counts_its_scoring_forward():
    """Active from the start, every step but the interrupt's: a step costs (b + 3n) / 3b of a plain one."""
    b, m = 64, 1437
    _, reports = train({"epochs": 2, "selective_backprop": {"keep": 0.5, "start": 0.0, "end": 1.0,
                                                            "interrupt": 2}})
    steps = 2 * (m // b)
    sb_steps, n = steps // 2, 32  # steps 1, 3, ... of each 22-step epoch: (i + 1) % 2 != 0 for even i
    last = reports[-1]
    assert last["backprops"] == steps
    assert last["samples_forward"] == steps * b + sb_steps * n  # scoring b plus training n, or plain b
    assert last["samples_backward"] == (steps - sb_steps) * b + sb_steps * n
    assert last["compute_equiv"] == pytest.approx(((steps - sb_steps) * 3 * b + sb_steps * (b + 3 * n)) / (3 * m))


def test_infobatch_saves_compute_and_its_schedule_still_ends_decayed():
    _, plain = train({"epochs": 8})
    _, info = train({"epochs": 8, "infobatch": {"prune_ratio": 0.5, "anneal": 0.6}})
    assert info[0]["backprops"] == plain[0]["backprops"]  # epoch 0: every score is 3, none below the mean
    assert info[-1]["backprops"] < plain[-1]["backprops"]
    assert info[-1]["compute_equiv"] < 0.9 * plain[-1]["compute_equiv"]
    assert info[-1]["compute_equiv"] == info[-1]["epoch_equiv"]  # every trained sample forward and back
    # epochs e > 0.6 x 8 = 4.8 train on all data: the last three are full length
    assert [r["backprops"] - q["backprops"] for q, r in zip(info[-4:], info[-3:])] == [1437 // 64] * 3
    assert info[-1]["lr"] == pytest.approx(plain[-1]["lr"])  # the same last step of a fully decayed schedule
    assert info[-1]["test_top1"] > 90


def test_a_compute_budget_trains_plain_sgd_for_that_compute_with_its_schedule_decayed_within_it():
    trainer, reports = train({"epochs": 15, "compute_budget": 2.5, "optim": {"schedule": "cosine"}})
    steps = round(2.5 * 1437 / 64)  # 56 back-propagations of 64: 2 full epochs of 22 and 12 more
    assert [r["backprops"] for r in reports] == [22, 44, 56]
    assert reports[-1]["compute_equiv"] == pytest.approx(steps * 64 / 1437)
    assert trainer.planned_steps == steps
    assert reports[-1]["lr"] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * (steps - 1) / steps)))


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


# ---------------------------------------------------------------------------------------------------
# validation split, full-pass train loss, ASHA's time


def test_val_metrics_are_nan_without_a_split_and_finite_with_one():
    _, plain = train({"epochs": 2})
    assert all(math.isnan(r[k]) for r in plain for k in ("val_loss", "val_top1", "val_top5"))
    assert all(math.isnan(r["train_loss_full"]) for r in plain)  # convergence.full_pass is off
    trainer, split = train({"epochs": 3, "data": {"val_fraction": 0.2}})
    assert trainer.num_train == 1150 and len(trainer.data.val_y) == 287
    for r in split:
        assert 0 < r["val_loss"] < 10 and 0 <= r["val_top1"] <= r["val_top5"] <= 100
        assert r["epoch_equiv"] == r["samples_forward"] / 1150  # M is the training set after the split
    assert split[-1]["val_top1"] > 50  # learns; chance is 10%
    # the reported validation metrics are the model's on the held-out samples
    trainer.model.eval()
    with torch.no_grad():
        logits = trainer.model(trainer.augment.eval(trainer.data.val_x)).float()
    assert split[-1]["val_top1"] == pytest.approx(100 * (logits.argmax(1) == trainer.data.val_y).float().mean().item())
    assert split[-1]["val_loss"] == pytest.approx(F.cross_entropy(logits, trainer.data.val_y).item(), rel=1e-5)


@pytest.mark.parametrize("mapping", [{"epochs": 2}, {"epochs": 3, "stepwise": {"fractions": "A-O", "epochs": [2, 1]}}])
def test_asha_time_is_half_the_next_report_ahead_of_epoch_equiv(mapping):
    # plain digits at B=64 forwards 22 x 64 / 1437 = 0.98 epoch-equivalents a report: epoch_equiv >= 1 would
    # first hold one report late, at 1.96; step-wise A-O reports at 0.18, 0.36, then 1.34
    _, reports = train(mapping)
    ees = [r["epoch_equiv"] for r in reports]
    for r, ee, after in zip(reports, ees, ees[1:] + ees[-1:]):  # the last report: nothing comes after it
        assert r["asha_time"] == pytest.approx(ee + (after - ee) / 2)
    # a milestone of 1 epoch-equivalent is decided at the report nearest it
    first = next(i for i, r in enumerate(reports) if r["asha_time"] >= 1.0)
    assert first == min(range(len(ees)), key=lambda i: abs(ees[i] - 1.0))


def full_train_loss(trainer) -> float:
    """Mean cross-entropy of the model on the whole training set, eval() mode, the eval transform."""
    trainer.model.eval()
    with torch.no_grad():
        logits = trainer.model(trainer.augment.eval(trainer.data.train_x)).float()
    trainer.model.train()
    return F.cross_entropy(logits, trainer.data.train_y).item()


def test_full_pass_reports_the_training_set_loss_and_drives_convergence():
    mapping = {"epochs": 5, "eval_batch_size": 100, "hard_batch": {"delta": 0.5},
               "data": {"val_fraction": 0.1}, "convergence": {"full_pass": True, "patience": 1}}
    trainer, reports = train(mapping)
    assert all(math.isfinite(r["train_loss_full"]) for r in reports)
    assert reports[-1]["train_loss_full"] == pytest.approx(full_train_loss(trainer), rel=1e-5)
    assert reports[-1]["train_loss_full"] != pytest.approx(reports[-1]["train_loss"], rel=1e-3)
    full = [r["train_loss_full"] for r in reports]
    ees = [r["epoch_equiv"] for r in reports]
    for i, r in enumerate(reports):
        expected = convergence_epoch(full[: i + 1], ees[: i + 1], 0.01, 1, final=i == len(reports) - 1)
        assert (r["convergence_epoch"], r["converged"]) == pytest.approx(expected, nan_ok=True)


def test_full_pass_evaluates_the_training_set_in_eval_mode():
    trainer = Trainer(build_config({"device": "cpu", "eval_batch_size": 500, "data": {"val_fraction": 0.2},
                                    "convergence": {"full_pass": True}}))
    seen = []
    trainer.model.register_forward_pre_hook(lambda mod, args: seen.append((mod.training, args[0].shape[0])))
    metrics = trainer.evaluate()
    assert all(not training for training, _ in seen) and trainer.model.training
    assert sorted(n for _, n in seen) == sorted([287, 360, 500, 500, 150])  # val, test, train in batches
    assert metrics["train_loss_full"] == pytest.approx(full_train_loss(trainer), rel=1e-5)


def test_resume_with_a_split_and_full_pass_continues_exactly():
    mapping = {"device": "cpu", "epochs": 3, "data": {"val_fraction": 0.2}, "convergence": {"full_pass": True}}
    _, straight = train(mapping)
    first = Trainer(build_config(mapping))
    run = first.run()
    reports = [next(run)]
    second = Trainer(build_config(mapping))
    second.load_state_dict(first.state_dict())
    reports += list(second.run())
    for a, b in zip(reports, straight, strict=True):
        for key in ("val_top1", "train_loss_full", "asha_time", "test_top1"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
