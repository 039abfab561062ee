"""Mini-batch trimming (SPEC section 2): r, gradient equivalence, schedules."""

import math

import pytest
import torch
from sync_counter import SyncCounter

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.base import Context
from tune_hardbatch.training.strategies.trim import Trim, num_kept, random_trim_loss, trim_loss


@pytest.mark.parametrize("p,b,r", [(1.0, 64, 64), (0.5, 64, 32), (0.2, 10, 2), (0.5, 5, 3), (0.25, 6, 2),
                                   (0.01, 10, 1), (0.2, 1, 1), (0.3, 7, 2)])
def test_r_is_max_1_round_p_b(p, b, r):
    assert num_kept(p, b) == r


@pytest.mark.parametrize("p", [1.0, 0.5, 0.2, 0.05])
def test_gradient_equals_mean_of_the_r_largest_losses(p):
    torch.manual_seed(0)
    x = torch.randn(37, 5)
    y = torch.randint(0, 3, (37,))
    w1 = torch.randn(5, 3, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_(True)
    losses = torch.nn.functional.cross_entropy(x @ w1, y, reduction="none")
    trim_loss(losses, p).backward()
    # manual: pick the r largest by sorting in Python, average them, differentiate
    losses2 = torch.nn.functional.cross_entropy(x @ w2, y, reduction="none")
    r = max(1, math.floor(p * 37 + 0.5))
    top = sorted(range(37), key=lambda j: -float(losses2[j].detach()))[:r]
    (sum(losses2[j] for j in top) / r).backward()
    assert torch.allclose(w1.grad, w2.grad, atol=1e-6)
    if p < 1:
        assert not torch.allclose(w1.grad, torch.autograd.grad(
            torch.nn.functional.cross_entropy(x @ w2, y), w2)[0], atol=1e-4)


def trim(**trim_cfg):
    cfg = build_config({"trim": trim_cfg})
    return Trim(cfg, Context(cfg.seed, torch.device("cpu"), torch.Generator(), 200))


def test_trim_applies_p_per_epoch_and_counts_the_samples_it_keeps():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    t = trim(schedule="constant", p_end=0.5)
    t.start_epoch(0, 3)
    assert t.fields() == {"p": 0.5}
    loss, kept = t.reduce(losses)
    assert float(loss) == 3.5 and kept == 2
    t = trim(schedule="linear", p_start=1.0, p_end=0.5)
    t.start_epoch(0, 3)
    assert [float(x) for x in t.reduce(losses)] == [2.5, 4]


def test_random_control_keeps_as_many_as_the_largest_but_drawn_uniformly():
    losses = torch.arange(10.0)
    gen = torch.Generator().manual_seed(0)
    means = [float(random_trim_loss(losses, 0.3, gen)) for _ in range(4000)]
    assert float(trim_loss(losses, 0.3)) == 8.0  # the 3 largest: 7, 8, 9
    assert math.isclose(sum(means) / len(means), 4.5, abs_tol=0.15)  # a uniform draw's mean is the mean
    assert len(set(means)) > 10
    t = trim(schedule="constant", p_end=0.3, select="random")
    t.start_epoch(0, 2)
    assert t.reduce(losses)[1] == num_kept(0.3, 10) == 3


def test_random_control_resumes_its_draws_exactly():
    t = trim(schedule="constant", p_end=0.3, select="random")
    t.start_epoch(0, 2)
    losses = torch.rand(50)
    t.reduce(losses)
    state = t.state_dict()
    after = [float(t.reduce(losses)[0]) for _ in range(3)]
    fresh = trim(schedule="constant", p_end=0.3, select="random")
    fresh.start_epoch(0, 2)
    fresh.load_state_dict(state)
    assert [float(fresh.reduce(losses)[0]) for _ in range(3)] == after


def test_trimming_reads_nothing_on_the_host():
    losses = torch.rand(37, requires_grad=True)
    with SyncCounter() as syncs:
        for p in (1.0, 0.5, 0.05):
            t = trim(schedule="constant", p_end=p, select="random" if p == 0.05 else "largest")
            t.start_epoch(0, 2)
            t.reduce(losses)[0].backward()
    assert syncs.total == 0, dict(syncs.where)
