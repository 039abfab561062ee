"""The plug-in as its users meet it: found by its entry point, validated, trained with its varying count."""

import pytest
import torch
from loss_threshold.strategy import threshold_loss

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.loop import Trainer


def test_threshold_loss_keeps_the_samples_above_the_threshold():
    loss, kept = threshold_loss(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor(2.5))
    assert kept.item() == 2 and loss.item() == pytest.approx(3.5)


def test_its_section_is_a_config_key_with_its_rules():
    assert build_config({"loss_threshold": {"factor": 1.5}}).loss_threshold.factor == 1.5
    with pytest.raises(UserError, match=r"^loss_threshold\.factor: got 0"):
        build_config({"loss_threshold": {"factor": 0}})
    with pytest.raises(UserError, match="would both set the loss"):
        build_config({"loss_threshold": {"factor": 1.0}, "trim": {"schedule": "linear"}})


def test_it_trains_fewer_samples_with_a_gradient_than_it_back_propagates():
    reports = list(Trainer(build_config({"epochs": 2, "loss_threshold": {"factor": 1.0}})).run())
    last = reports[-1]
    assert 0 < last["samples_with_grad"] < last["samples_backward"]
    assert last["test_top1"] > 30  # digits: well above chance
