"""Invariants of hard mini-batch selection (SPEC section 1)."""

import math

import pytest
import torch
from sync_counter import SyncCounter

from tune_hardbatch.training.strategies.base import ShuffledSampler
from tune_hardbatch.training.strategies.hard_batch import (
    HardBatchSampler,
    num_selected,
    partition,
    select_hardest,
)


def drive(sampler, steps, loss_of=lambda rows: rows.float().mean()):
    """Run `steps` back-propagations' worth of next/record; returns (batch ids, rows)."""
    ids, rows = [], []
    for _ in range(steps):
        row = sampler.next()
        rows.append(row)
        ids.append(int(sampler.ids[sampler.pos - 1]) if isinstance(sampler, HardBatchSampler) else None)
        sampler.record(loss_of(row), None, None)
    return ids, rows


def test_partition_is_fixed_disjoint_and_drops_the_remainder():
    gen = torch.Generator().manual_seed(0)
    rows = partition(103, 10, gen)
    assert rows.shape == (10, 10)
    assert len(set(rows.flatten().tolist())) == 100
    assert torch.equal(rows, partition(103, 10, torch.Generator().manual_seed(0)))
    assert not torch.equal(rows, partition(103, 10, torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("n,delta,k", [(10, 1.0, 10), (10, 0.8, 8), (10, 0.7, 7), (11, 0.5, 5), (7, 0.2, 1),
                                       (100, 0.29, 29), (13, 1 / 13, 1), (5, 0.01, 1)])
def test_k_is_max_1_floor_delta_n(n, delta, k):
    assert num_selected(n, delta) == k


def test_select_hardest_is_top_k_in_ascending_id_with_stable_ties():
    stored = torch.tensor([0.5, 2.0, 2.0, 0.1, 3.0, 2.0])
    assert select_hardest(stored, 0.5).tolist() == [1, 2, 4]  # k = 3: 3.0 (id 4), then ties 1 and 2
    assert select_hardest(stored, 1 / 6).tolist() == [4]
    assert select_hardest(stored, 1.0).tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("delta", [1.0, 0.8, 0.5, 0.2, "1/N"])
@pytest.mark.parametrize("n", [7, 13])
def test_backprop_count_is_e_times_n_and_rounds_follow_the_stored_losses(delta, n):
    delta = 1 / n if delta == "1/N" else delta
    epochs = 4
    batches = torch.arange(n * 3).view(n, 3)
    sampler = HardBatchSampler(batches, delta)
    losses = torch.rand(n, generator=torch.Generator().manual_seed(n))  # a fixed "loss" per batch
    k = num_selected(n, delta)
    trained = []
    for _ in range(epochs * n):  # the loop stops at exactly E * N back-propagations
        row = sampler.next()
        bid = int(row[0]) // 3
        trained.append(bid)
        sampler.record(losses[bid] + 0.01 * trained.count(bid), None, None)
    assert sampler.loaded == epochs * n == len(trained)
    assert trained[:n] == list(range(n))  # round 0: all batches in partition order
    rounds = [trained[n + i : n + i + k] for i in range(0, len(trained) - n, k)]
    assert all(len(r) == k for r in rounds[:-1]) and 1 <= len(rounds[-1]) <= k  # last round may be partial
    for r in rounds:
        assert r == sorted(r)  # trained in ascending batch id


def test_selection_picks_the_top_k_stored_and_refreshes_only_trained_batches():
    n, delta = 10, 0.3
    sampler = HardBatchSampler(torch.arange(n * 2).view(n, 2), delta)
    first = [5.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 0.5, 6.0, 4.0]
    for loss in first:
        sampler.next()
        sampler.record(torch.tensor(loss), None, None)
    assert sampler.stored.tolist() == first
    expected = torch.tensor(first).topk(3).indices.sort().values.tolist()  # ids 2, 4, 6
    got = []
    for _ in range(3):
        row = sampler.next()
        got.append(int(row[0]) // 2)
        sampler.record(torch.tensor(0.0), None, None)
    assert got == expected == [2, 4, 6]
    after = sampler.stored.tolist()
    assert [after[i] for i in (2, 4, 6)] == [0.0, 0.0, 0.0]
    assert [v for i, v in enumerate(after) if i not in (2, 4, 6)] == [v for i, v in enumerate(first)
                                                                      if i not in (2, 4, 6)]
    # the next round selects from the refreshed losses: 6.0 (id 8), 5.0 (id 0), 4.0 (id 9), ascending
    assert int(sampler.next()[0]) // 2 == 0
    assert sampler.ids.tolist() == [0, 8, 9]


def test_delta_one_repeats_the_same_order_every_epoch():
    n = 10
    sampler = HardBatchSampler(partition(50, 5, torch.Generator().manual_seed(3)), 1.0)
    _, rows = drive(sampler, 3 * n, loss_of=lambda r: torch.rand(()))
    epochs = [torch.stack(rows[e * n : (e + 1) * n]) for e in range(3)]
    assert torch.equal(epochs[0], epochs[1]) and torch.equal(epochs[1], epochs[2])


def test_shuffled_sampler_reshuffles_every_epoch_and_covers_n_batches():
    sampler = ShuffledSampler(torch.arange(50), 5, torch.Generator().manual_seed(0))
    _, rows = drive(sampler, 20)
    e0, e1 = torch.cat(rows[:10]), torch.cat(rows[10:])
    assert sorted(e0.tolist()) == list(range(50)) == sorted(e1.tolist())
    assert not torch.equal(e0, e1)


def test_sampler_state_round_trips_mid_round():
    n = 8
    a = HardBatchSampler(torch.arange(n * 2).view(n, 2), 0.5)
    drive(a, n + 2, loss_of=lambda r: r.float().sum())
    b = HardBatchSampler(torch.arange(n * 2).view(n, 2), 0.5)
    b.load_state_dict(a.state_dict())
    _, ra = drive(a, 7, loss_of=lambda r: r.float().sum())
    _, rb = drive(b, 7, loss_of=lambda r: r.float().sum())
    assert all(torch.equal(x, y) for x, y in zip(ra, rb))
    assert a.loaded == b.loaded == n + 9
    assert math.isclose(float(a.stored.sum()), float(b.stored.sum()))


@pytest.mark.parametrize("delta", [None, 1.0, 0.5])
def test_samplers_never_read_the_device_on_the_host(delta):
    """next/record across rounds (selection included) queue device work only: no .item(), no mask."""
    subset, batch = torch.arange(60), 6
    if delta is None:
        sampler = ShuffledSampler(subset, batch, torch.Generator().manual_seed(0))
    else:
        sampler = HardBatchSampler(partition(60, batch, torch.Generator().manual_seed(0)), delta)
    with SyncCounter() as syncs:
        for _ in range(35):  # 3.5 epochs of 10 batches: several rounds and a partial one
            sampler.record(sampler.next().float().mean(), None, None)
    assert syncs.total == 0, dict(syncs.where)
