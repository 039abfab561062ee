"""The strategy interface: what the training loop asks its strategies, and how it counts their compute.

Each strategy is a module of pure functions plus one thin `Strategy` object that decides when to apply
them (Composer's functional API + Algorithm wrapper). The loop calls the hooks of `Strategies`, which
composes the active ones (`registry.build`); it never names a strategy. The hooks, each a no-op by default:

- `sampler(subset, batch_size, stage)`: the object that hands out each step's sample indices (at most one
  strategy owns the sampling; otherwise plain reshuffled SGD);
- `start_epoch(epoch, total_epochs)`: per-epoch decisions (the trimming fraction p, the progress that
  switches Selective Backprop on);
- `select(batch, score, step, tally)`: which samples of a loaded batch to train (Selective Backprop's scoring
  forward);
- `weigh(losses, idx)`: per-sample loss weights (InfoBatch's 1 / keep_ratio);
- `reduce(terms)`: the loss to back-propagate and how many samples contribute (trimming); else the mean;
- `fields()`: the strategy's values in each report (p, delta);
- `state_dict()` / `load_state_dict()`: what a checkpoint needs to continue exactly (generators, scores).

Compute: every sample forwarded or back-propagated is counted in a `Tally` (host integers, no device read):
the loop counts the training forward and backward of what it trains, a strategy counts its own extra
forwards (Selective Backprop's scoring pass) and what its loss keeps (trimming).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import torch


class Batch(NamedTuple):
    x: torch.Tensor  # augmented inputs
    y: torch.Tensor  # labels
    idx: torch.Tensor  # sample ids (rows of the training tensors)


@dataclass
class Tally:
    """Samples forwarded, back-propagated and contributing a gradient since the last report (host ints).
    The back-propagated samples are the ones trained: the report's train_loss and train_top1 are theirs."""

    forward: int = 0
    backward: int = 0
    with_grad: int = 0


Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, y) -> per-sample losses, no gradient


class Strategy:
    """A strategy's thin object: hooks the loop calls, each a no-op unless the strategy overrides it."""

    def sampler(self, subset: torch.Tensor, batch_size: int, stage: int):
        return None

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        pass

    def select(self, batch: Batch, score: Score, step: int, tally: Tally) -> Batch:
        return batch

    def weigh(self, losses: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return losses

    def reduce(self, terms: torch.Tensor) -> Optional[tuple[torch.Tensor, int]]:
        return None

    def fields(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Strategies:
    """The active strategies, composed in registry order: the loop's only view of them."""

    def __init__(self, members: dict[str, Strategy], default_sampler):
        self.members = members
        self.default_sampler = default_sampler  # (subset, batch_size) -> plain reshuffled SGD's sampler

    def sampler(self, subset: torch.Tensor, batch_size: int, stage: int):
        for s in self.members.values():
            owned = s.sampler(subset, batch_size, stage)
            if owned is not None:
                return owned
        return self.default_sampler(subset, batch_size)

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        for s in self.members.values():
            s.start_epoch(epoch, total_epochs)

    def select(self, batch: Batch, score: Score, step: int, tally: Tally) -> Batch:
        for s in self.members.values():
            batch = s.select(batch, score, step, tally)
        return batch

    def loss(self, losses: torch.Tensor, idx: torch.Tensor, tally: Tally) -> torch.Tensor:
        """The loss to back-propagate from the per-sample losses of what was trained; counts its samples:
        all of them are forwarded and back-propagated (trimming zeroes gradients, it does not shrink the
        pass), those kept by `reduce` contribute a gradient."""
        n = losses.numel()
        tally.forward += n
        tally.backward += n
        terms = losses
        for s in self.members.values():
            terms = s.weigh(terms, idx)
        for s in self.members.values():
            reduced = s.reduce(terms)
            if reduced is not None:
                tally.with_grad += reduced[1]
                return reduced[0]
        tally.with_grad += n
        return terms.mean()

    def fields(self) -> dict:
        out = {"p": 1.0, "delta": float("nan")}
        for s in self.members.values():
            out.update(s.fields())
        return out

    def state_dict(self) -> dict:
        return {name: s.state_dict() for name, s in self.members.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, s in self.members.items():
            s.load_state_dict(state.get(name, {}))


def seeded(seed: int, stream: int, device: torch.device) -> torch.Generator:
    """A generator of its own per strategy (`stream`: 100 hard-batch control + stage, 200 trimming control,
    300 Selective Backprop, 400 InfoBatch), seeded from the run's seed apart from the loop's shuffles and
    augmentation (seed + 1) and partitions (seed), so adding a strategy leaves the others' draws unchanged."""
    return torch.Generator(device).manual_seed(seed * 1000 + stream)
