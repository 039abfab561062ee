"""The strategy interface: what the training loop asks its strategies, and how it counts their compute.

Each strategy is a module of pure functions plus one thin `Strategy` object that decides when to apply
them (Composer's functional API + Algorithm wrapper). The loop calls the hooks of `Strategies`, which
composes the active ones (`Strategies.build`, from the declarations in `registry`); it never names a
strategy. A strategy is built as `Class(cfg, context)`. The hooks, each a no-op by default:

- `sampler(subset, batch_size, stage)`: the `Sampler` that hands out each step's sample indices (at most one
  strategy that is on owns the sampling, `Declaration.samples`; otherwise plain reshuffled SGD);
- `start_epoch(epoch, total_epochs)`: per-epoch decisions (the trimming fraction p, the progress that
  switches Selective Backprop on);
- `select(batch, score, step, tally)`: which samples of a loaded batch to train (Selective Backprop's scoring
  forward);
- `weigh(losses, idx)`: per-sample loss weights (InfoBatch's 1 / keep_ratio);
- `reduce(terms)`: the loss to back-propagate and how many samples contribute (trimming): a host int, or a
  0-d device tensor when the count varies (a threshold's mask), accumulated on the device and read with the
  report; at most one strategy that is on reduces (`Declaration.sets_loss`); else the mean;
- `fields()`: the strategy's values in each report (p, delta);
- `state_dict()` / `load_state_dict()`: what a checkpoint needs to continue exactly (generators, scores).

Compute: every sample forwarded or back-propagated is counted in a `Tally` (no device read inside an epoch):
the loop counts the training forward and backward of what it trains, a strategy counts its own extra
forwards (Selective Backprop's scoring pass) and what its loss keeps (trimming).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Protocol, Union

import torch

from . import plugins, registry


class Batch(NamedTuple):
    x: torch.Tensor  # augmented inputs
    y: torch.Tensor  # labels
    idx: torch.Tensor  # sample ids (rows of the training tensors)


@dataclass
class Tally:
    """Samples forwarded, back-propagated and contributing a gradient since the last report (host ints).
    The back-propagated samples are the ones trained: the report's train_loss and train_top1 are theirs.
    Counts that only the device knows (a mask's) wait in `pending_with_grad`, read with the report."""

    forward: int = 0
    backward: int = 0
    with_grad: int = 0
    pending_with_grad: Optional[torch.Tensor] = None

    def add_with_grad(self, n: Union[int, torch.Tensor]) -> None:
        if isinstance(n, torch.Tensor):
            n = n.detach().to(torch.float32)
            self.pending_with_grad = n if self.pending_with_grad is None else self.pending_with_grad + n
        else:
            self.with_grad += n

    def pending(self) -> list[torch.Tensor]:
        """The device counts to read with the report (none when every count is known on the host)."""
        return [] if self.pending_with_grad is None else [self.pending_with_grad.reshape(1)]

    def settle(self, values: list[float]) -> None:
        """The host values of `pending()`, read with the report."""
        if values:
            self.with_grad += round(values[0])
            self.pending_with_grad = None


class Sampler(Protocol):
    """What the loop asks of a stage's sampler (plain SGD's, hard-batch selection's, InfoBatch's)."""

    num_batches: int  # N: the batches of an epoch

    def epoch_steps(self, epoch: int, total_epochs: int) -> int: ...  # steps of this epoch (fewer when pruned)

    def next(self) -> torch.Tensor: ...  # the next step's sample indices, on the device

    def record(self, batch_loss: torch.Tensor, losses: torch.Tensor, idx: torch.Tensor) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass(frozen=True)
class Context:
    """What a strategy is built with besides the config: the device, the partition generator (subsets and
    partitions, drawn in order), and its own random stream (`Declaration.stream`)."""

    seed: int
    device: torch.device
    partition_gen: torch.Generator
    stream: Optional[int]

    def generator(self, offset: int = 0) -> torch.Generator:
        """The strategy's generator number `offset` (< 100) of its stream."""
        return seeded(self.seed, self.stream + offset, self.device)


Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, y) -> per-sample losses, no gradient


class Strategy:
    """A strategy's thin object: hooks the loop calls, each a no-op unless the strategy overrides it."""

    def __init__(self, cfg=None, context: Optional[Context] = None):
        pass  # built as Class(cfg, context); a strategy without state keeps neither

    def sampler(self, subset: torch.Tensor, batch_size: int, stage: int) -> Optional[Sampler]:
        return None

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        pass

    def select(self, batch: Batch, score: Score, step: int, tally: Tally) -> Batch:
        return batch

    def weigh(self, losses: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return losses

    def reduce(self, terms: torch.Tensor) -> Optional[tuple[torch.Tensor, Union[int, torch.Tensor]]]:
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

    @classmethod
    def build(cls, cfg, partition_gen: torch.Generator, data_gen: torch.Generator, device: torch.device
              ) -> "Strategies":
        """The config's active strategies; plain reshuffled SGD (drawn from `data_gen`) samples when none does."""
        members = {d.name: _implementation(d)(cfg, Context(cfg.seed, device, partition_gen, d.stream))
                   for d in registry.active(cfg)}
        return cls(members, lambda subset, batch: ShuffledSampler(subset, batch, data_gen))

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
                tally.add_with_grad(reduced[1])
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


def partition(num_samples: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded permutation cut into N = floor(M / B) rows of B sample indices (remainder dropped)."""
    n = num_samples // batch_size
    perm = torch.randperm(num_samples, generator=generator, device=generator.device)
    return perm[: n * batch_size].view(n, batch_size)


class ShuffledSampler:
    """Plain mini-batch SGD: a fresh permutation every N batches (drop_last), the practitioner's baseline.

    The permutation is drawn on the device; rows are taken by Python position (no host read).
    """

    def __init__(self, subset: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.subset = subset  # sample indices this sampler draws from
        self.batch_size = batch_size
        self.generator = generator
        self.order = torch.empty(0, batch_size, dtype=torch.long, device=subset.device)
        self.pos = 0
        self.loaded = 0

    @property
    def num_batches(self) -> int:
        return len(self.subset) // self.batch_size

    def epoch_steps(self, epoch: int, total_epochs: int) -> int:
        return self.num_batches

    def next(self) -> torch.Tensor:
        if self.pos == len(self.order):
            self.order = self.subset[partition(len(self.subset), self.batch_size, self.generator)]
            self.pos = 0
        self.pos += 1
        self.loaded += 1
        return self.order[self.pos - 1]

    def record(self, batch_loss: torch.Tensor, losses: torch.Tensor, idx: torch.Tensor) -> None:
        pass

    def state_dict(self) -> dict:
        return {"order": self.order, "pos": self.pos, "loaded": self.loaded}

    def load_state_dict(self, state: dict) -> None:
        self.order = state["order"].to(self.subset.device)
        self.pos, self.loaded = state["pos"], state["loaded"]


def _implementation(decl) -> type:
    """A declaration's `Strategy` class, its module imported on first use."""
    if isinstance(decl.impl, type):
        return decl.impl
    return plugins.resolve(decl.impl, f"strategy {decl.name}'s implementation")


def seeded(seed: int, stream: int, device: torch.device) -> torch.Generator:
    """A generator of its own per strategy (`Declaration.stream`, the built-ins' in `catalog`), seeded from
    the run's seed apart from the loop's shuffles and augmentation (seed + 1) and partitions (seed), so adding
    a strategy leaves the others' draws unchanged."""
    return torch.Generator(device).manual_seed(seed * 1000 + stream)
