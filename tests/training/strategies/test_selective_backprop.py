"""Selective Backprop (SPEC section 4): Composer's rank probabilities, draw, schedule and its compute."""

import pytest
import torch
from sync_counter import SyncCounter

from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.base import Batch, Context, Tally
from tune_hardbatch.training.strategies.selective_backprop import (
    SelectiveBackprop,
    draw_probabilities,
    is_active,
    num_selected,
    select_by_loss,
)


@pytest.mark.parametrize("b, keep, expected", [
    # ((i + 0.5) / 4) ^ (1 / keep - 1) for i = 0..3, normalised by hand
    (4, 0.5, [0.0625, 0.1875, 0.3125, 0.4375]),  # exponent 1: 0.125, 0.375, 0.625, 0.875 over 2
    (4, 0.25, [0.001953125 / 0.96875, 0.052734375 / 0.96875, 0.244140625 / 0.96875, 0.669921875 / 0.96875]),
    (3, 1.0, [1 / 3] * 3),  # keep 1: exponent 0, uniform
])
def test_rank_probabilities_are_composers(b, keep, expected):
    assert draw_probabilities(b, keep).tolist() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("b, keep, n", [(64, 0.5, 32), (10, 0.33, 3), (7, 0.5, 3), (1, 0.5, 1)])
def test_n_is_int_keep_b(b, keep, n):
    assert num_selected(b, keep) == n


def test_the_draw_follows_the_loss_ranks_without_replacement():
    losses = torch.tensor([0.3, 2.0, 0.1, 5.0])  # ascending ranks: 2, 0, 1, 3
    gen = torch.Generator().manual_seed(0)
    picks = torch.stack([select_by_loss(losses, 0.25, gen) for _ in range(20000)]).flatten()  # n = 1
    freq = torch.bincount(picks, minlength=4).double() / len(picks)
    p = draw_probabilities(4, 0.25)  # by rank
    assert freq[[2, 0, 1, 3]].tolist() == pytest.approx(p.tolist(), abs=0.01)
    two = select_by_loss(torch.rand(64), 0.5, gen)
    assert len(two) == 32 and len(set(two.tolist())) == 32


@pytest.mark.parametrize("progress, step, active", [
    (0.4, 0, False),  # before start 0.5
    (0.5, 0, True),  # (0 + 1) % 2 != 0
    (0.5, 1, False),  # (1 + 1) % 2 == 0: the interrupt step trains the whole batch
    (0.89, 2, True),
    (0.9, 2, False),  # end is exclusive
])
def test_active_between_start_and_end_except_every_interrupt_th_step(progress, step, active):
    assert is_active(progress, step, 0.5, 0.9, 2) is active
    assert is_active(progress, 1, 0.5, 0.9, 0) is (0.5 <= progress < 0.9)  # interrupt 0: never interrupts


def sb(**c):
    cfg = build_config({"selective_backprop": {"keep": 0.5, **c}})
    return SelectiveBackprop(cfg, Context(cfg.seed, torch.device("cpu"), torch.Generator(), 300))


def test_select_scores_the_whole_batch_and_keeps_n_counting_b_forwards():
    s = sb(start=0.0, end=1.0, interrupt=0)
    s.start_epoch(0, 4)
    x, y, idx = torch.rand(8, 3), torch.arange(8) % 2, torch.arange(100, 108)
    seen = []

    def score(xs, ys):
        seen.append(len(xs))
        return xs.sum(1)

    tally = Tally()
    out = s.select(Batch(x, y, idx), score, 0, tally)
    assert seen == [8] and tally.forward == 8 and tally.backward == 0
    assert len(out.x) == 4 and torch.equal(out.x, x[out.idx - 100]) and torch.equal(out.y, y[out.idx - 100])
    s.start_epoch(3, 4)  # progress 0.75 < end 1.0: active; before start it is not
    late = sb(start=0.5)
    late.start_epoch(1, 4)
    assert late.select(Batch(x, y, idx), score, 0, tally) == Batch(x, y, idx) and seen == [8]


def test_selection_reads_nothing_on_the_host_and_resumes_its_draws():
    s = sb(start=0.0, interrupt=0)
    s.start_epoch(0, 2)
    batch = Batch(torch.rand(32, 3), torch.zeros(32, dtype=torch.long), torch.arange(32))
    with SyncCounter() as syncs:
        s.select(batch, lambda xs, ys: xs.sum(1), 0, Tally())
    assert syncs.total == 0, dict(syncs.where)
    state = s.state_dict()
    after = [s.select(batch, lambda xs, ys: xs.sum(1), 0, Tally()).idx for _ in range(3)]
    fresh = sb(start=0.0, interrupt=0)
    fresh.start_epoch(0, 2)
    fresh.load_state_dict(state)
    assert all(torch.equal(a, fresh.select(batch, lambda xs, ys: xs.sum(1), 0, Tally()).idx) for a in after)
