"""Mini-batch trimming (SPEC section 2): r, gradient equivalence, schedules."""

import math

import pytest
import torch
from sync_counter import SyncCounter

from tune_hardbatch.config import TrimConfig
from tune_hardbatch.strategies.trim import Trimmer, num_kept, trim_loss


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


def test_trimmer_applies_p_and_is_off_by_default():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert not Trimmer(TrimConfig()).enabled
    t = Trimmer(TrimConfig(schedule="constant", p_end=0.5))
    assert t.enabled and t.p(0, 3) == 0.5
    assert float(t.loss(losses, 0.5)) == 3.5
    assert float(t.loss(losses, 1.0)) == 2.5


def test_trimming_reads_nothing_on_the_host():
    losses = torch.rand(37, requires_grad=True)
    with SyncCounter() as syncs:
        for p in (1.0, 0.5, 0.05):
            Trimmer(TrimConfig(schedule="constant", p_end=p)).loss(losses, p).backward()
    assert syncs.total == 0, dict(syncs.where)
