"""Hard mini-batch selection (Sahayam, Zakkam & Jayaraman 2023, "Can we learn better with hard samples?").

The training set is partitioned once into N = floor(M / B) fixed mini-batches. Round 0 trains all of them
in partition order; every later round trains the k = max(1, floor(delta * N)) batches with the highest
stored loss, in ascending batch id, refreshing only their stored losses. The caller stops after exactly
E * N back-propagations, so the last round may be partial.

`hard_batch.select: random` is its control: every round after round 0 trains k batches drawn uniformly
without replacement (seeded), in ascending batch id: the same back-propagations, chosen without hardness.
The reshuffled SGD that every strategy falls back to (`ShuffledSampler`) is in `base`.
"""

from __future__ import annotations

import math

import torch

from .base import Context, Strategy, partition


def num_selected(num_batches: int, delta: float) -> int:
    """k = max(1, floor(delta * N)); the epsilon keeps 0.7 * 10 from flooring to 6."""
    return max(1, math.floor(delta * num_batches + 1e-9))


def select_hardest(stored_losses: torch.Tensor, delta: float) -> torch.Tensor:
    """Ids of the k batches with the highest stored loss (stable: ties go to the lower id), ascending."""
    k = num_selected(stored_losses.numel(), delta)
    order = torch.sort(stored_losses, descending=True, stable=True).indices[:k]
    return torch.sort(order).values


def select_random(num_batches: int, delta: float, generator: torch.Generator) -> torch.Tensor:
    """Ids of k = max(1, floor(delta * N)) batches drawn uniformly without replacement, ascending."""
    k = num_selected(num_batches, delta)
    draw = torch.randperm(num_batches, generator=generator, device=generator.device)[:k]
    return torch.sort(draw).values


class HardBatchSampler:
    """Hands out the sample indices of the next batch to train and records the loss it trained with.

    Everything stays on the device: selection, indices and stored losses. Nothing reads a device value
    on the host: a round's rows are gathered with one tensor index when it starts, and each step takes
    its row by a Python position (indexing with a 0-d device tensor would call `.item()` every step).
    Only the batches of the current round are gathered (`loaded` counts the ones handed out).
    """

    def __init__(self, batches: torch.Tensor, delta: float, generator: torch.Generator | None = None):
        self.batches = batches  # [N, B] sample indices, fixed for the whole stage
        self.delta = delta
        self.generator = generator  # set: the random control draws the rounds' batches with it
        self.stored = torch.zeros(len(batches), device=batches.device)  # L_i, per batch
        self.round = -1
        self.ids = torch.empty(0, dtype=torch.long, device=batches.device)  # this round's batch ids
        self.rows = batches[self.ids]  # [len(ids), B]: this round's sample indices
        self.pos = 0
        self.loaded = 0

    @property
    def num_batches(self) -> int:
        return len(self.batches)

    def epoch_steps(self, epoch: int, total_epochs: int) -> int:
        """Back-propagations in the coming report epoch: N (rounds run across reports)."""
        return self.num_batches

    def _start_round(self) -> None:
        self.round += 1
        if self.round == 0:
            self.ids = torch.arange(self.num_batches, device=self.batches.device)
        elif self.generator is not None:
            self.ids = select_random(self.num_batches, self.delta, self.generator)
        else:
            self.ids = select_hardest(self.stored, self.delta)
        self.rows = self.batches[self.ids]  # gathers only this round's rows (k x B indices)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos == len(self.ids):
            self._start_round()
        self.pos += 1
        self.loaded += 1
        return self.rows[self.pos - 1]  # a view, by Python position: no host read

    def record(self, batch_loss: torch.Tensor, losses: torch.Tensor, idx: torch.Tensor) -> None:
        """Store L_i (mean untrimmed loss, before the update) for the batch just handed out."""
        self.stored.index_copy_(0, self.ids[self.pos - 1 : self.pos], batch_loss.detach().float().view(1))

    def state_dict(self) -> dict:
        return {"stored": self.stored, "round": self.round, "ids": self.ids, "pos": self.pos,
                "loaded": self.loaded, "generator": self.generator.get_state() if self.generator else None}

    def load_state_dict(self, state: dict) -> None:
        device = self.batches.device
        self.stored = state["stored"].to(device)
        self.ids = state["ids"].to(device)
        self.rows = self.batches[self.ids]
        self.round, self.pos, self.loaded = state["round"], state["pos"], state["loaded"]
        if self.generator is not None:
            self.generator.set_state(state["generator"])


class HardBatch(Strategy):
    """Owns the sampling of every stage: a fixed partition of the stage's subset (from the partition
    generator, before any other draw of it), trained by rounds of the k hardest (or random) batches."""

    def __init__(self, cfg, context: Context):
        self.delta = cfg.hard_batch.delta
        self.random = cfg.hard_batch.select == "random"
        self.context = context

    def sampler(self, subset: torch.Tensor, batch_size: int, stage: int):
        rows = partition(len(subset), batch_size, self.context.partition_gen).to(subset.device)
        gen = self.context.generator(stage) if self.random else None
        return HardBatchSampler(subset[rows], self.delta, gen)

    def fields(self) -> dict:
        return {"delta": self.delta}
