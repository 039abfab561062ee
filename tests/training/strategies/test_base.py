"""The strategy interface (`strategies.base`): hooks compose in order, the tally counts the compute."""

import math

import torch

from tune_hardbatch.training.strategies.base import Batch, Strategies, Strategy, Tally


class Halves(Strategy):
    """A toy: trains the first half of each batch, weighs sample i by i, owns no sampler."""

    def select(self, batch, score, step, tally):
        tally.forward += len(batch.y)  # pretends to score
        h = len(batch.y) // 2
        return Batch(batch.x[:h], batch.y[:h], batch.idx[:h])

    def weigh(self, losses, idx):
        return losses * idx.float()


class Largest(Strategy):
    def reduce(self, terms):
        return terms.max(), 1

    def fields(self):
        return {"p": 0.5}


def test_hooks_compose_select_weigh_reduce_and_count_every_sample():
    s = Strategies({"halves": Halves(), "largest": Largest()}, default_sampler=lambda subset, b: ("plain", b))
    tally = Tally()
    batch = s.select(Batch(torch.zeros(8, 2), torch.zeros(8), torch.arange(8)), None, 0, tally)
    loss = s.loss(torch.ones(4), batch.idx, tally)
    assert float(loss) == 3.0  # weighed by idx 0..3, then the largest
    assert (tally.forward, tally.backward, tally.with_grad) == (8 + 4, 4, 1)
    assert s.sampler(torch.arange(10), 5, 0) == ("plain", 5)  # nobody owns sampling: plain SGD
    fields = s.fields()
    assert fields["p"] == 0.5 and math.isnan(fields["delta"])  # a default no strategy set


def test_without_strategies_the_loss_is_the_mean_of_all():
    s, tally = Strategies({}, default_sampler=None), Tally()
    assert float(s.loss(torch.tensor([1.0, 2.0, 6.0]), torch.arange(3), tally)) == 3.0
    assert (tally.forward, tally.backward, tally.with_grad) == (3, 3, 3)


def test_the_first_strategy_that_owns_a_sampler_samples():
    class Owner(Strategy):
        def sampler(self, subset, batch_size, stage):
            return ("owned", stage)

    s = Strategies({"a": Strategy(), "b": Owner()}, default_sampler=lambda subset, b: "plain")
    assert s.sampler(torch.arange(4), 2, 1) == ("owned", 1)
