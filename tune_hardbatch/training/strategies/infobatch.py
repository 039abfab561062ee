"""InfoBatch (Qin et al., ICLR 2024, "InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data
Pruning"), with the semantics of its reference code (NUS-HPC-AI-Lab/InfoBatch).

Every sample has a score, 3 at first, replaced by its per-sample training loss each time it is trained.
At the start of each 0-based epoch e <= anneal x E the well-learned samples (score below the mean score)
are pruned at random: int(keep_ratio x count) of them are kept, keep_ratio = max(0.1, 1 - prune_ratio),
each with loss weight 1 / keep_ratio; every other sample stays with weight 1. The kept samples are trained
shuffled, loss = mean of weight x per-sample loss. Later epochs train on all samples with weight 1.

Epochs shrink, so a report comes after each (shorter) epoch and the learning-rate schedule runs by epoch
progress (step i of an epoch of s steps is at (e + i / s) / E): it still ends fully decayed at the run's
last step. Only kept samples are forwarded and back-propagated; that saving is the method's claim.
Knowing an epoch's length needs one host read at its start (the number of well-learned samples).
"""

from __future__ import annotations

import torch

from .base import Context, Strategy

INITIAL_SCORE = 3.0  # the reference's: above any loss a fresh 10-class model has, so epoch 0 prunes nothing


def keep_ratio(prune_ratio: float) -> float:
    return min(1.0, max(0.1, 1.0 - prune_ratio))


def prunes(epoch: int, total_epochs: int, anneal: float) -> bool:
    """The reference's `iterations <= stop_prune` with stop_prune = anneal x E (e 0-based)."""
    return epoch <= anneal * total_epochs


def prune(scores: torch.Tensor, prune_ratio: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept positions of `scores` in a random order, per-position weights) for one pruned epoch.

    One host read: the number of well-learned samples, which fixes the epoch's length. Masks are
    turned into positions by sorting, not by `nonzero`, which would read the device again."""
    ratio = keep_ratio(prune_ratio)
    well = scores < scores.mean()
    count = int(well.sum())
    n_keep = int(ratio * count)
    keys = torch.where(well, torch.rand(len(scores), generator=generator, device=scores.device), 2.0)
    chosen = torch.argsort(keys)[:n_keep]  # the well-learned come first, in random order
    weights = torch.ones_like(scores)
    weights[chosen] = 1.0 / ratio
    kept = (~well).clone()
    kept[chosen] = True
    n_kept = len(scores) - count + n_keep
    ids = torch.argsort((~kept).to(torch.uint8), stable=True)[:n_kept]
    return ids[torch.randperm(n_kept, generator=generator, device=scores.device)], weights


class InfoBatchSampler:
    """Hands out batches of the epoch's kept samples (drop_last), records their losses as scores."""

    def __init__(self, subset: torch.Tensor, batch_size: int, cfg, generator: torch.Generator):
        self.subset, self.batch_size, self.cfg, self.generator = subset, batch_size, cfg, generator
        self.scores = torch.full((int(subset.max()) + 1,), INITIAL_SCORE, device=subset.device)
        self.weights = torch.ones_like(self.scores)
        self.order = torch.empty(0, batch_size, dtype=torch.long, device=subset.device)
        self.pos = 0
        self.loaded = 0
        self.pruned = 0  # samples left out, summed over epochs

    @property
    def num_batches(self) -> int:
        """N of a full epoch: the planned length, of which pruned epochs train less."""
        return len(self.subset) // self.batch_size

    def epoch_steps(self, epoch: int, total_epochs: int) -> int:
        """Prune (or not) for this epoch; its number of steps."""
        ids = self.subset
        self.weights = torch.ones_like(self.scores)
        if prunes(epoch, total_epochs, self.cfg.anneal):
            kept, weights = prune(self.scores[self.subset], self.cfg.prune_ratio, self.generator)
            if len(kept) >= self.batch_size:
                ids, self.weights[self.subset] = self.subset[kept], weights
        else:
            ids = self.subset[torch.randperm(len(self.subset), generator=self.generator, device=ids.device)]
        steps = len(ids) // self.batch_size
        self.pruned += len(self.subset) - len(ids)
        self.order = ids[: steps * self.batch_size].view(steps, self.batch_size)
        self.pos = 0
        return steps

    def next(self) -> torch.Tensor:
        self.pos += 1
        self.loaded += 1
        return self.order[self.pos - 1]

    def record(self, batch_loss: torch.Tensor, losses: torch.Tensor, idx: torch.Tensor) -> None:
        self.scores[idx] = losses.detach().float()

    def state_dict(self) -> dict:
        return {"scores": self.scores, "weights": self.weights, "order": self.order, "pos": self.pos,
                "loaded": self.loaded, "pruned": self.pruned, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        device = self.subset.device
        self.scores, self.weights = state["scores"].to(device), state["weights"].to(device)
        self.order = state["order"].to(device)
        self.pos, self.loaded, self.pruned = state["pos"], state["loaded"], state["pruned"]
        self.generator.set_state(state["generator"])


class InfoBatch(Strategy):
    """Owns the sampling (epochs of kept samples) and weighs each trained sample's loss."""

    def __init__(self, cfg, context: Context):
        self.cfg, self.context = cfg.infobatch, context
        self.active = None

    def sampler(self, subset: torch.Tensor, batch_size: int, stage: int):
        self.active = InfoBatchSampler(subset, batch_size, self.cfg, self.context.generator())
        return self.active

    def weigh(self, losses: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return losses * self.active.weights[idx]

